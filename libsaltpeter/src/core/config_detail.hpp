#pragma once
// Private helpers of the config module, exposed to the unit tests (tests/unit/test_config.cpp).

#include <string>
#include <string_view>
#include <vector>

#include "saltpeter/cron_expression.hpp"
#include "saltpeter/time.hpp"
#include "saltpeter/time_zone.hpp"

namespace saltpeter::config_detail {

/// Levenshtein distance between a and b.
std::size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate closest to `key` (edit distance <= 2, or `key` of 3+ characters is a prefix of
/// it); empty when none is close.
std::string closest_key(std::string_view key, const std::vector<std::string_view>& candidates);

/// The consecutive spans of `zone` that overlap [from, to), in time order.
std::vector<ZoneSpan> spans_between(const TimeZone& zone, SysSeconds from, SysSeconds to);

/// A wall-clock fire time that a UTC offset change skips (gap) or repeats (overlap).
struct DstConflict {
    enum class Kind { gap, overlap };
    Kind kind = Kind::gap;
    LocalSeconds wall;       ///< the first affected wall time at which the expression fires
    SysSeconds transition;   ///< the instant of the offset change
    ZoneSpan before;
    ZoneSpan after;
};

/// For each offset change between consecutive `spans`, the first wall time inside the skipped or
/// repeated window at which `expr` fires (at most one conflict per change).
std::vector<DstConflict> find_dst_conflicts(const CronExpression& expr, const std::vector<ZoneSpan>& spans);

}  // namespace saltpeter::config_detail
