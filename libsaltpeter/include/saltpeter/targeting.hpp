#pragma once
// TargetMatcher: Salt targeting evaluated locally over known minions: glob, pcre, list, grain,
// grain_pcre and compound (and/or/not, parentheses, L@ E@ G@ P@ and bare globs). Used by the
// `local` transport and by maintenance entries written as target expressions. Expressions Salt
// evaluates on the master only (pillar, nodegroup, ipcidr, range) are reported as unsupported.

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "saltpeter/config.hpp"
#include "saltpeter/result.hpp"

namespace saltpeter {

/// What the matcher knows about one minion.
struct MinionInfo {
    std::string id;
    std::map<std::string, std::string> grains;  ///< flat "key" -> "value" (nested keys as "a:b")
};

class TargetMatcher {
public:
    /// Compiles `expression` of `type`. Errors name the expression and what is wrong
    /// ("compound target 'a and': 'and' needs an operand", "target type 'pillar' needs the Salt master").
    static Result<TargetMatcher> compile(std::string_view expression, TargetType type);

    /// True when the minion is targeted. The `id` grain is always the minion id.
    bool matches(const MinionInfo& minion) const;
    /// Shortcut for a minion known only by its id.
    bool matches(std::string_view minion_id) const;

    struct Node;

private:
    explicit TargetMatcher(std::shared_ptr<const Node> root) : m_root(std::move(root)) {}
    std::shared_ptr<const Node> m_root;
};

}  // namespace saltpeter
