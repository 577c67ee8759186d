// STAND-IN (txkv integrations/3fs/standin): not folly. Minimal folly::Expected /
// folly::Unexpected / folly::makeUnexpected with the members 3FS code uses.
#pragma once

#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

namespace folly {

template <typename E>
class Unexpected {
 public:
  explicit Unexpected(E e) : e_(std::move(e)) {}
  E& error() & { return e_; }
  const E& error() const& { return e_; }
  E&& error() && { return std::move(e_); }

 private:
  E e_;
};

template <typename E>
Unexpected<std::decay_t<E>> makeUnexpected(E&& e) {
  return Unexpected<std::decay_t<E>>(std::forward<E>(e));
}

template <typename T, typename E>
class Expected {
 public:
  template <typename U = T, typename = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                                        !std::is_same_v<std::decay_t<U>, Unexpected<E>> &&
                                                        !std::is_same_v<std::decay_t<U>, Expected>>>
  Expected(U&& v) : v_(std::in_place_index<0>, std::forward<U>(v)) {}  // NOLINT
  Expected(Unexpected<E> u) : v_(std::in_place_index<1>, std::move(u).error()) {}  // NOLINT

  bool hasValue() const { return v_.index() == 0; }
  bool hasError() const { return v_.index() == 1; }
  explicit operator bool() const { return hasValue(); }

  T& value() & { check(); return std::get<0>(v_); }
  const T& value() const& { check(); return std::get<0>(v_); }
  T&& value() && { check(); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  E& error() & { return std::get<1>(v_); }
  const E& error() const& { return std::get<1>(v_); }
  E&& error() && { return std::get<1>(std::move(v_)); }

 private:
  void check() const {
    if (hasError()) throw std::logic_error("folly::Expected stand-in: value() on an error");
  }
  std::variant<T, E> v_;
};

}  // namespace folly
