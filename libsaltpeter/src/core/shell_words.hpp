#pragma once
// The one place that turns an argv into a POSIX shell command line. Salt's cmd.run_all takes a
// command line that the minion's shell runs, so every transport that sends an argv through Salt
// (salt CLI, salt-api) quotes it here. Pure functions; never throw.

#include <string>
#include <string_view>
#include <vector>

namespace saltpeter::detail {

/// `word` as one shell word: unchanged when it is made only of characters no shell treats
/// specially (letters, digits, `_-./:,+@%`), else single-quoted with `'` written as `'\''`. The
/// empty word is `''`. `=` always quotes, so that a first word is never taken as an assignment.
std::string shell_quote(std::string_view word);

/// The argv as one command line: every element through shell_quote, joined by single spaces.
/// `/bin/sh -c` on the result runs exactly that argv again, whatever the bytes.
std::string shell_command_line(const std::vector<std::string>& argv);

}  // namespace saltpeter::detail
