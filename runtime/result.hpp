// result<T>: a value or an error that names what is wrong. Errors are values
// in Troupe: nothing below the actor shells throws across a module boundary.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace troupe {

/// What went wrong, in one sentence that names the thing at fault
/// ("table local, key node/self: record does not parse").
class error {
public:
  explicit error(std::string message) : message_(std::move(message)) {}
  const std::string& message() const noexcept { return message_; }

  /// The same error with context in front: "opening data dir /x: <message>".
  error with_context(const std::string& context) const {
    return error{context + ": " + message_};
  }

private:
  std::string message_;
};

template <class T>
class [[nodiscard]] result {
public:
  result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  result(troupe::error err) : state_(std::in_place_index<1>, std::move(err)) {}

  bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const troupe::error& error() const { return std::get<1>(state_); }

private:
  std::variant<T, troupe::error> state_;
};

/// result<void>: success, or an error.
template <>
class [[nodiscard]] result<void> {
public:
  result() = default;
  result(troupe::error err) : error_(std::move(err)) {}

  bool ok() const noexcept { return !error_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  const troupe::error& error() const { return *error_; }

private:
  std::optional<troupe::error> error_;
};

using status = result<void>;

} // namespace troupe
