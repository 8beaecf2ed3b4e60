#pragma once
// Result<T>: the value of an operation that can fail in an expected way (bad YAML, a bad cron
// field, a bad frame). Bugs and start-up failures throw instead; see docs/ARCHITECTURE.md.

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace saltpeter {

/// An expected failure. `message` is complete and printable on its own; `field` names the
/// field or key the failure is about when there is one (e.g. "dow"), so callers can point at it.
struct Error {
    std::string message;
    std::string field;
};

/// Holds either a T or an Error. Accessing the wrong alternative throws std::logic_error (a bug).
template <typename T>
class Result {
public:
    Result(T value) : m_state(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
    Result(Error error) : m_state(std::in_place_index<1>, std::move(error)) {}  // NOLINT

    bool ok() const noexcept { return m_state.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & { check_value(); return std::get<0>(m_state); }
    const T& value() const& { check_value(); return std::get<0>(m_state); }
    T&& value() && { check_value(); return std::get<0>(std::move(m_state)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    const Error& error() const {
        if (ok()) throw std::logic_error("Result::error() called on a value");
        return std::get<1>(m_state);
    }

private:
    void check_value() const {
        if (!ok()) throw std::logic_error("Result::value() called on an error: " + std::get<1>(m_state).message);
    }
    std::variant<T, Error> m_state;
};

/// Result of an operation that returns nothing on success.
struct Ok {};
using Status = Result<Ok>;

}  // namespace saltpeter
