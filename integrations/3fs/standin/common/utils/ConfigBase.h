// STAND-IN (txkv integrations/3fs/standin): not 3FS. ConfigBase/CONFIG_ITEM/CONFIG_OBJ
// reduced to typed members with a getter, a setter and equality; no TOML loading.
#pragma once

#include <string>
#include <type_traits>
#include <vector>

namespace hf3fs {

namespace standin {
template <typename T>
struct ConfigValue {
  using type = std::decay_t<T>;
};
template <size_t N>
struct ConfigValue<const char (&)[N]> {
  using type = std::string;
};
template <size_t N>
struct ConfigValue<char const[N]> {
  using type = std::string;
};
}  // namespace standin

template <typename Derived>
struct ConfigBase {
  bool operator==(const ConfigBase&) const = default;
};

#define CONFIG_ITEM(name, defaultValue, ...)                                                    \
 public:                                                                                        \
  using name##_type = typename ::hf3fs::standin::ConfigValue<decltype((defaultValue))>::type;   \
  const name##_type& name() const { return name##_; }                                           \
  void set_##name(name##_type v) { name##_ = std::move(v); }                                    \
                                                                                                \
 private:                                                                                       \
  name##_type name##_ = name##_type(defaultValue);                                              \
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
