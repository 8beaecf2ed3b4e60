// The job policies as pure functions; see dispatch_policy.hpp. No clock reads here.
#include "core/dispatch_policy.hpp"

#include <algorithm>
#include <numeric>

#include "saltpeter/exit_code_mapper.hpp"

namespace saltpeter {
namespace policy {

namespace {

// SplitMix64: a tiny generator whose output is fixed by its definition, so a seed picks the same
// subset on every build (std::shuffle and the std distributions are implementation-defined).
std::uint64_t split_mix(std::uint64_t& state) noexcept {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

}  // namespace

std::string_view to_string(Admission a) noexcept {
    switch (a) {
        case Admission::start: return "start";
        case Admission::replace: return "replace";
        case Admission::skip_overlap: return "skip_overlap";
        case Admission::skip_maintenance: return "skip_maintenance";
        case Admission::queue_maintenance: return "queue_maintenance";
    }
    return "start";
}

Admission admit(Concurrency concurrency, std::size_t running, bool global_maintenance, bool run_now,
                bool force) noexcept {
    if (global_maintenance) return run_now ? Admission::queue_maintenance : Admission::skip_maintenance;
    if (running == 0) return Admission::start;
    switch (concurrency) {
        case Concurrency::allow: return Admission::start;
        case Concurrency::replace: return Admission::replace;
        case Concurrency::forbid: return run_now && force ? Admission::start : Admission::skip_overlap;
    }
    return Admission::skip_overlap;
}

std::vector<std::string> choose_subset(const std::vector<std::string>& minions, unsigned n, std::uint64_t seed) {
    if (n == 0 || n >= minions.size()) return minions;
    std::vector<std::size_t> index(minions.size());
    std::iota(index.begin(), index.end(), std::size_t{0});
    std::uint64_t state = seed;
    // Partial Fisher-Yates: the first n slots end up holding a uniform choice.
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t span = index.size() - i;
        const std::size_t j = i + static_cast<std::size_t>(split_mix(state) % span);
        std::swap(index[i], index[j]);
    }
    index.resize(n);
    std::sort(index.begin(), index.end());
    std::vector<std::string> chosen;
    chosen.reserve(n);
    for (std::size_t i : index) chosen.push_back(minions[i]);
    return chosen;
}

std::vector<std::vector<std::string>> plan_batches(const std::vector<std::string>& minions, unsigned canary,
                                                   const Amount& batch_size) {
    std::vector<std::vector<std::string>> batches;
    std::size_t pos = 0;
    if (canary > 0 && !minions.empty()) {
        const std::size_t n = std::min<std::size_t>(canary, minions.size());
        batches.emplace_back(minions.begin(), minions.begin() + static_cast<std::ptrdiff_t>(n));
        pos = n;
    }
    const std::size_t rest = minions.size() - pos;
    if (rest == 0) return batches;
    std::size_t size = batch_size.is_set() ? batch_size.resolve(static_cast<unsigned>(rest)) : rest;
    if (size == 0) size = rest;
    while (pos < minions.size()) {
        const std::size_t n = std::min(size, minions.size() - pos);
        batches.emplace_back(minions.begin() + static_cast<std::ptrdiff_t>(pos),
                             minions.begin() + static_cast<std::ptrdiff_t>(pos + n));
        pos += n;
    }
    return batches;
}

bool should_stop(unsigned failed, unsigned total, const Amount& max_failures, bool canary_batch,
                 unsigned failed_in_batch) noexcept {
    if (canary_batch && failed_in_batch > 0) return true;
    return max_failures.is_set() && failed >= max_failures.resolve(total);
}

std::string stop_reason(unsigned failed, unsigned total, const Amount& max_failures, bool canary_batch,
                        unsigned failed_in_batch) {
    if (canary_batch && failed_in_batch > 0) {
        return "canary failed (" + std::to_string(failed_in_batch) + " of the canary target(s))";
    }
    if (max_failures.is_set() && failed >= max_failures.resolve(total)) {
        return "max_failures reached (" + std::to_string(failed) + " failed, limit " +
               std::to_string(max_failures.resolve(total)) +
               (max_failures.percent ? " = " + std::to_string(max_failures.value) + "% of " + std::to_string(total)
                                     : std::string()) +
               ")";
    }
    return std::string();
}

bool retryable(int code) noexcept {
    return code != 0 && code != ExitCodeMapper::code(Outcome::killed) && code != ExitCodeMapper::code(Outcome::skipped);
}

std::chrono::seconds retry_delay(unsigned attempt, std::chrono::seconds backoff,
                                 std::chrono::seconds backoff_max) noexcept {
    if (backoff.count() <= 0) return std::chrono::seconds{0};
    const auto cap = std::max(backoff_max, std::chrono::seconds{0});
    std::chrono::seconds delay = backoff;
    for (unsigned i = 1; i < attempt && delay < cap; ++i) delay *= 2;
    return std::min(delay, cap);
}

std::uint64_t mix64(std::uint64_t h) noexcept {
    // MurmurHash3's fmix64: FNV-1a alone leaves names that differ in their last digits
    // clustered modulo small windows (job0..job499 hit 186 of 301 seconds instead of ~244).
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

std::uint64_t fnv1a(std::string_view text) noexcept {
    std::uint64_t hash = 0xcbf29ce484222325ULL;
    for (const char c : text) {
        hash ^= static_cast<unsigned char>(c);
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

std::chrono::seconds splay_offset(std::string_view job, std::chrono::seconds splay) noexcept {
    if (splay.count() <= 0) return std::chrono::seconds{0};
    const auto window = static_cast<std::uint64_t>(splay.count()) + 1;
    return std::chrono::seconds{static_cast<std::chrono::seconds::rep>(mix64(fnv1a(job)) % window)};
}

MisfireDecision decide_misfire(Misfire misfire, std::chrono::seconds grace, SysSeconds latest, std::uint32_t missed,
                               SysSeconds now, std::chrono::seconds on_time) {
    MisfireDecision d;
    d.latest = latest;
    const auto late = now - latest;
    if (late <= on_time && late >= std::chrono::seconds{0}) {
        d.run = true;
        d.missed = missed;
        if (missed > 0) {
            d.reason = std::to_string(missed) + " earlier fire time(s) passed without a run; running the current one";
        }
        return d;
    }
    d.missed = missed + 1;
    const std::string count = std::to_string(d.missed) + " fire time(s) missed, the latest " +
                              std::to_string(late.count()) + " s ago";
    if (misfire == Misfire::skip) {
        d.reason = count + "; misfire: skip, no catch-up run";
        return d;
    }
    if (late <= grace) {
        d.run = true;
        d.catch_up = true;
        d.reason = count + "; misfire: run_once, one catch-up run (within misfire_grace " +
                   std::to_string(grace.count()) + " s)";
        return d;
    }
    d.reason = count + "; misfire: run_once, but the latest is beyond misfire_grace " + std::to_string(grace.count()) +
               " s; no catch-up run";
    return d;
}

Missed missed_fire_times(const CronExpression& expr, const TimeZone& zone, SysSeconds last, SysSeconds now,
                         std::uint32_t limit) {
    Missed m;
    std::optional<SysSeconds> t = expr.next_after(last, zone);
    while (t && *t <= now && m.count < limit) {
        ++m.count;
        m.latest = *t;
        t = expr.next_after(*t, zone);
    }
    return m;
}

}  // namespace policy
}  // namespace saltpeter
