// STAND-IN (txkv integrations/3fs/standin): not 3FS. Result<T> = folly::Expected<T, Status>,
// makeError, and CO_RETURN_ON_ERROR with 3FS's documented behaviour: on an error it
// co_returns it *moved* out of the result, and when the error has no message it returns
// the same code with the message "<file>:<line>, '<expr>' has error" instead.
#pragma once

#include <folly/Expected.h>
#include <folly/Unit.h>

#include <string>
#include <utility>

#include "common/utils/Status.h"

namespace hf3fs {

template <typename T>
using Result = folly::Expected<T, Status>;

using Void = folly::Unit;

template <typename... Args>
[[nodiscard]] inline folly::Unexpected<Status> makeError(Args&&... args) {
  return folly::makeUnexpected(Status(std::forward<Args>(args)...));
}

namespace standin {
inline std::string errorAt(const char* file, int line, const char* expr) {
  return std::string(file) + ":" + std::to_string(line) + ", '" + expr + "' has error";
}
}  // namespace standin

}  // namespace hf3fs

#define CO_RETURN_ERROR(result)                                                                                      \
  do {                                                                                                               \
    if ((result).error().message().empty())                                                                          \
      co_return ::hf3fs::makeError((result).error().code(), ::hf3fs::standin::errorAt(__FILE__, __LINE__, #result)); \
    else                                                                                                             \
      co_return ::hf3fs::makeError(std::move((result).error()));                                                     \
  } while (0)

#define CO_RETURN_ON_ERROR(result)                 \
  do {                                             \
    auto&& _result = (result);                     \
    if (_result.hasError()) CO_RETURN_ERROR(_result); \
  } while (0)
