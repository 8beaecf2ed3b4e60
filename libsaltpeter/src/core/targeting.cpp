#include "saltpeter/targeting.hpp"

#include <fnmatch.h>

#include <regex>
#include <vector>

namespace saltpeter {

// A compiled expression tree. Leaves hold one engine's test; inner nodes combine them.
struct TargetMatcher::Node {
    enum class Kind { glob, pcre, list, grain, grain_pcre, op_and, op_or, op_not };
    Kind kind = Kind::glob;
    std::string pattern;                 // glob / grain value glob / list items joined
    std::string grain;                   // grain key for grain kinds
    std::vector<std::string> items;      // list
    std::shared_ptr<const std::regex> regex;
    std::shared_ptr<const Node> left;
    std::shared_ptr<const Node> right;
};

namespace {

using Node = TargetMatcher::Node;
using NodePtr = std::shared_ptr<const Node>;

std::vector<std::string> split_list(std::string_view text) {
    std::vector<std::string> items;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        const std::size_t comma = text.find(',', pos);
        std::string_view item = text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        if (!item.empty()) items.emplace_back(item);
        if (comma == std::string_view::npos) break;
        pos = comma + 1;
    }
    return items;
}

Result<NodePtr> make_regex_node(Node::Kind kind, std::string_view pattern, std::string grain,
                                std::string_view context) {
    auto node = std::make_shared<Node>();
    node->kind = kind;
    node->pattern = std::string(pattern);
    node->grain = std::move(grain);
    try {
        node->regex = std::make_shared<const std::regex>(node->pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
        return Error{std::string(context) + ": '" + node->pattern + "' is not a valid regular expression (" + e.what() + ")", ""};
    }
    return NodePtr(node);
}

// "key:value" for grain targets; the value may itself hold ':' (nested keys use "a:b:value").
Result<NodePtr> make_grain_node(Node::Kind kind, std::string_view spec, std::string_view context) {
    const std::size_t colon = spec.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
        return Error{std::string(context) + ": '" + std::string(spec) + "' must be 'grain:value'", ""};
    }
    std::string key(spec.substr(0, colon));
    std::string_view value = spec.substr(colon + 1);
    if (kind == Node::Kind::grain_pcre) return make_regex_node(kind, value, std::move(key), context);
    auto node = std::make_shared<Node>();
    node->kind = kind;
    node->grain = std::move(key);
    node->pattern = std::string(value);
    return NodePtr(node);
}

Result<NodePtr> make_leaf(TargetType type, std::string_view text, std::string_view context) {
    switch (type) {
        case TargetType::glob: {
            auto node = std::make_shared<Node>();
            node->kind = Node::Kind::glob;
            node->pattern = std::string(text);
            return NodePtr(node);
        }
        case TargetType::pcre: return make_regex_node(Node::Kind::pcre, text, "", context);
        case TargetType::list: {
            auto node = std::make_shared<Node>();
            node->kind = Node::Kind::list;
            node->items = split_list(text);
            return NodePtr(node);
        }
        case TargetType::grain: return make_grain_node(Node::Kind::grain, text, context);
        case TargetType::grain_pcre: return make_grain_node(Node::Kind::grain_pcre, text, context);
        default:
            return Error{std::string(context) + ": target type '" + std::string(to_string(type)) +
                             "' is evaluated by the Salt master and cannot be matched locally",
                         ""};
    }
}

// Recursive descent over compound tokens with Python's precedence (not > and > or), which is
// what Salt's compound matcher ends up evaluating.
class CompoundParser {
public:
    CompoundParser(std::string_view expression) : m_expression(expression) {
        std::size_t pos = 0;
        while (pos < expression.size()) {
            const char c = expression[pos];
            if (c == ' ' || c == '\t') {
                ++pos;
            } else if (c == '(' || c == ')') {
                m_tokens.emplace_back(1, c);
                ++pos;
            } else {
                std::size_t end = pos;
                while (end < expression.size() && expression[end] != ' ' && expression[end] != '\t' &&
                       expression[end] != '(' && expression[end] != ')') {
                    ++end;
                }
                m_tokens.emplace_back(expression.substr(pos, end - pos));
                pos = end;
            }
        }
    }

    Result<NodePtr> parse() {
        if (m_tokens.empty()) return fail("it is empty");
        auto node = parse_or();
        if (!node) return node;
        if (m_pos != m_tokens.size()) return fail("unexpected '" + m_tokens[m_pos] + "'");
        return node;
    }

private:
    Error fail(const std::string& why) const {
        return Error{"compound target '" + std::string(m_expression) + "': " + why, ""};
    }
    bool at(std::string_view word) const { return m_pos < m_tokens.size() && m_tokens[m_pos] == word; }

    static NodePtr combine(Node::Kind kind, NodePtr left, NodePtr right) {
        auto node = std::make_shared<Node>();
        node->kind = kind;
        node->left = std::move(left);
        node->right = std::move(right);
        return node;
    }

    Result<NodePtr> parse_or() {
        auto left = parse_and();
        if (!left) return left;
        NodePtr node = *left;
        while (at("or")) {
            ++m_pos;
            auto right = parse_and();
            if (!right) return right;
            node = combine(Node::Kind::op_or, node, *right);
        }
        return node;
    }

    Result<NodePtr> parse_and() {
        auto left = parse_not();
        if (!left) return left;
        NodePtr node = *left;
        while (at("and")) {
            ++m_pos;
            auto right = parse_not();
            if (!right) return right;
            node = combine(Node::Kind::op_and, node, *right);
        }
        return node;
    }

    Result<NodePtr> parse_not() {
        if (at("not")) {
            ++m_pos;
            auto operand = parse_not();
            if (!operand) return operand;
            return combine(Node::Kind::op_not, *operand, nullptr);
        }
        return parse_atom();
    }

    Result<NodePtr> parse_atom() {
        if (m_pos >= m_tokens.size()) {
            return fail(m_pos == 0 ? "it is empty" : "'" + m_tokens[m_pos - 1] + "' needs an operand");
        }
        const std::string token = m_tokens[m_pos++];
        if (token == "(") {
            auto inner = parse_or();
            if (!inner) return inner;
            if (!at(")")) return fail("missing ')'");
            ++m_pos;
            return inner;
        }
        if (token == ")" || token == "and" || token == "or") return fail("unexpected '" + token + "'");
        const std::string context = "compound target '" + std::string(m_expression) + "'";
        if (token.size() >= 2 && token[1] == '@') {
            const std::string_view value = std::string_view(token).substr(2);
            switch (token[0]) {
                case 'L': return make_leaf(TargetType::list, value, context);
                case 'E': return make_leaf(TargetType::pcre, value, context);
                case 'G': return make_leaf(TargetType::grain, value, context);
                case 'P': return make_leaf(TargetType::grain_pcre, value, context);
                case 'I':
                case 'J':
                case 'S':
                case 'N':
                case 'R':
                    return fail("'" + token + "' is evaluated by the Salt master and cannot be matched locally");
                default: return fail("unknown target engine '" + token.substr(0, 2) + "'");
            }
        }
        return make_leaf(TargetType::glob, token, context);
    }

    std::string_view m_expression;
    std::vector<std::string> m_tokens;
    std::size_t m_pos = 0;
};

bool glob_match(const std::string& pattern, std::string_view text) {
    return fnmatch(pattern.c_str(), std::string(text).c_str(), 0) == 0;
}

bool evaluate(const Node& node, const MinionInfo& minion) {
    auto grain_value = [&](const std::string& key) -> const std::string* {
        if (key == "id") return &minion.id;
        auto it = minion.grains.find(key);
        return it == minion.grains.end() ? nullptr : &it->second;
    };
    switch (node.kind) {
        case Node::Kind::glob: return glob_match(node.pattern, minion.id);
        // Salt's pcre engine uses re.match: anchored at the start, not at the end.
        case Node::Kind::pcre:
            return std::regex_search(minion.id, *node.regex, std::regex_constants::match_continuous);
        case Node::Kind::list:
            for (const auto& item : node.items) {
                if (item == minion.id) return true;
            }
            return false;
        case Node::Kind::grain: {
            const std::string* value = grain_value(node.grain);
            return value != nullptr && glob_match(node.pattern, *value);
        }
        case Node::Kind::grain_pcre: {
            const std::string* value = grain_value(node.grain);
            return value != nullptr && std::regex_search(*value, *node.regex, std::regex_constants::match_continuous);
        }
        case Node::Kind::op_and: return evaluate(*node.left, minion) && evaluate(*node.right, minion);
        case Node::Kind::op_or: return evaluate(*node.left, minion) || evaluate(*node.right, minion);
        case Node::Kind::op_not: return !evaluate(*node.left, minion);
    }
    return false;
}

}  // namespace

Result<TargetMatcher> TargetMatcher::compile(std::string_view expression, TargetType type) {
    Result<NodePtr> root = type == TargetType::compound
                               ? CompoundParser(expression).parse()
                               : make_leaf(type, expression, "target '" + std::string(expression) + "'");
    if (!root) return root.error();
    return TargetMatcher(*root);
}

bool TargetMatcher::matches(const MinionInfo& minion) const { return evaluate(*m_root, minion); }

bool TargetMatcher::matches(std::string_view minion_id) const {
    return matches(MinionInfo{std::string(minion_id), {}});
}

}  // namespace saltpeter
