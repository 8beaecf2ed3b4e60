#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "saltpeter/targeting.hpp"

using namespace saltpeter;

namespace {

const std::vector<MinionInfo> k_minions = {
    {"m1", {{"os", "Debian"}, {"role", "web"}}},
    {"m2", {{"os", "Debian"}, {"role", "db"}}},
    {"m3", {{"os", "Ubuntu"}, {"role", "web"}}},
    {"db-01.example.com", {{"os", "Debian"}, {"role", "db"}}},
};

std::string matched(std::string_view expression, TargetType type) {
    auto matcher = TargetMatcher::compile(expression, type);
    REQUIRE_MESSAGE(matcher.ok(), matcher.error().message);
    std::string ids;
    for (const auto& m : k_minions) {
        if (matcher->matches(m)) ids += (ids.empty() ? "" : ",") + m.id;
    }
    return ids;
}

std::string error_of(std::string_view expression, TargetType type) {
    auto matcher = TargetMatcher::compile(expression, type);
    REQUIRE_FALSE(matcher.ok());
    return matcher.error().message;
}

}  // namespace

TEST_CASE("glob, pcre and list targets") {
    CHECK(matched("*", TargetType::glob) == "m1,m2,m3,db-01.example.com");
    CHECK(matched("m*", TargetType::glob) == "m1,m2,m3");
    CHECK(matched("m[12]", TargetType::glob) == "m1,m2");
    CHECK(matched("m?", TargetType::glob) == "m1,m2,m3");
    CHECK(matched("*.example.com", TargetType::glob) == "db-01.example.com");
    CHECK(matched("m[12]", TargetType::pcre) == "m1,m2");
    CHECK(matched("db", TargetType::pcre) == "db-01.example.com");  // anchored at the start only
    CHECK(matched("example", TargetType::pcre) == "");
    CHECK(matched("m1,m3", TargetType::list) == "m1,m3");
    CHECK(matched("m1, m3 ,nosuch", TargetType::list) == "m1,m3");
    CHECK(matched("", TargetType::list) == "");
}

TEST_CASE("grain targets glob the grain value; the id grain is the minion id") {
    CHECK(matched("os:Debian", TargetType::grain) == "m1,m2,db-01.example.com");
    CHECK(matched("role:w*", TargetType::grain) == "m1,m3");
    CHECK(matched("id:m1", TargetType::grain) == "m1");
    CHECK(matched("missing:x", TargetType::grain) == "");
    CHECK(matched("os:Deb.*", TargetType::grain_pcre) == "m1,m2,db-01.example.com");
    CHECK(error_of("nocolon", TargetType::grain) == "target 'nocolon': 'nocolon' must be 'grain:value'");
}

TEST_CASE("compound targets: the transcript's examples and precedence") {
    CHECK(matched("m1 or G@id:m2", TargetType::compound) == "m1,m2");
    CHECK(matched("E@m[0-9] and not L@m2", TargetType::compound) == "m1,m3");
    CHECK(matched("G@os:Debian and G@role:db", TargetType::compound) == "m2,db-01.example.com");
    // not binds tighter than and, and tighter than or
    CHECK(matched("m1 or m2 and G@role:web", TargetType::compound) == "m1");
    CHECK(matched("( m1 or m2 ) and G@role:web", TargetType::compound) == "m1");
    CHECK(matched("(m1 or m3) and G@role:web", TargetType::compound) == "m1,m3");
    CHECK(matched("not not m1", TargetType::compound) == "m1");
    CHECK(matched("P@os:Ubu.* or L@m1,m2", TargetType::compound) == "m1,m2,m3");
}

TEST_CASE("bad targets are reported with the expression and the reason") {
    CHECK(error_of("m1 and", TargetType::compound) == "compound target 'm1 and': 'and' needs an operand");
    CHECK(error_of("", TargetType::compound) == "compound target '': it is empty");
    CHECK(error_of("(m1 or m2", TargetType::compound) == "compound target '(m1 or m2': missing ')'");
    CHECK(error_of("m1 m2", TargetType::compound) == "compound target 'm1 m2': unexpected 'm2'");
    CHECK(error_of("X@foo", TargetType::compound) == "compound target 'X@foo': unknown target engine 'X@'");
    CHECK(error_of("I@role:db", TargetType::compound).find("evaluated by the Salt master") != std::string::npos);
    CHECK(error_of("web", TargetType::nodegroup).find("evaluated by the Salt master") != std::string::npos);
    CHECK(error_of("m[", TargetType::pcre).find("is not a valid regular expression") != std::string::npos);
}
