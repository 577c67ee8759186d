// STAND-IN (txkv integrations/3fs/standin): not 3FS. ConfigBase/CONFIG_ITEM/CONFIG_OBJ with
// the accessors 3FS's public header gives them, no TOML loading:
//   CONFIG_ITEM(name, default[, checker])
//     name()          returns small trivially-copyable values (<= 8 bytes: ints, bool,
//                     double, ...) by value, anything else (std::string, vectors) by const&;
//     set_name(v)     takes the same type, returns bool: false (and the value unchanged)
//                     when the optional checker, a callable bool(value), rejects v.
//   A string-literal default makes a std::string item.
//   CONFIG_OBJ(name, Type) a nested config: name() const& and name() &.
#pragma once

#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace hf3fs {

namespace standin {
template <typename T>
inline constexpr bool kByValue = std::is_trivially_copyable_v<T> && sizeof(T) <= 8;
template <typename T>
using ConfigGet = std::conditional_t<kByValue<T>, T, const T&>;
template <typename T>
using ConfigStored = std::conditional_t<std::is_same_v<T, const char*>, std::string, T>;

template <typename T>
class ConfigItem {
 public:
  using Checker = std::function<bool(ConfigGet<T>)>;
  template <typename D>
  explicit ConfigItem(D&& def, Checker checker = nullptr) : value_(std::forward<D>(def)), checker_(std::move(checker)) {}
  ConfigGet<T> get() const { return value_; }
  bool set(ConfigGet<T> v) {
    if (checker_ && !checker_(v)) return false;
    value_ = v;
    return true;
  }
  bool operator==(const ConfigItem& o) const { return value_ == o.value_; }

 private:
  T value_;
  Checker checker_;
};
}  // namespace standin

template <typename Derived>
struct ConfigBase {
  bool operator==(const ConfigBase&) const = default;
};

#define CONFIG_ITEM(name, defaultValue, ...)                                                                \
 private:                                                                                                   \
  using T##name = ::hf3fs::standin::ConfigStored<std::decay_t<decltype(defaultValue)>>;                     \
                                                                                                            \
 public:                                                                                                    \
  ::hf3fs::standin::ConfigGet<T##name> name() const { return name##_.get(); }                               \
  bool set_##name(::hf3fs::standin::ConfigGet<T##name> v) { return name##_.set(v); }                        \
                                                                                                            \
 private:                                                                                                   \
  ::hf3fs::standin::ConfigItem<T##name> name##_ = ::hf3fs::standin::ConfigItem<T##name>(defaultValue __VA_OPT__(, ) __VA_ARGS__); \
                                                                                                            \
 public:

#define CONFIG_OBJ(name, Type, ...)                  \
 public:                                            \
  const Type& name() const { return name##_; }      \
  Type& name() { return name##_; }                  \
                                                    \
 private:                                           \
  Type name##_{};                                   \
                                                    \
 public:

}  // namespace hf3fs
