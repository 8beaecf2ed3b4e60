// The single shell-quoting helper used by the salt CLI and salt-api transports.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/shell_words.hpp"

using saltpeter::detail::shell_command_line;
using saltpeter::detail::shell_quote;

TEST_CASE("shell words: safe words stay bare, everything else is single-quoted") {
    CHECK(shell_command_line({"/usr/local/bin/sp_wrapper"}) == "/usr/local/bin/sp_wrapper");
    CHECK(shell_command_line({"echo", "a b", "it's", "$HOME", ""}) == "echo 'a b' 'it'\\''s' '$HOME' ''");
    // An assignment-looking first word must not become an assignment, `~` must not expand.
    CHECK(shell_command_line({"FOO=bar", "~/x"}) == "'FOO=bar' '~/x'");
    CHECK(shell_quote("m1,m2:/a-b_c.d+e@f%") == "m1,m2:/a-b_c.d+e@f%");
    CHECK(shell_quote("a;b|c&d`e`\"f\"\\g\nh*?[]") == "'a;b|c&d`e`\"f\"\\g\nh*?[]'");
    CHECK(shell_quote("''") == "''\\'''\\'''");
    CHECK(shell_command_line({}).empty());
}
