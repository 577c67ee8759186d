// STAND-IN (txkv integrations/3fs/standin): not 3FS. Result<T> = folly::Expected<T, Status>.
#pragma once

#include <folly/Expected.h>
#include <folly/Unit.h>

#include "common/utils/Status.h"

#define CO_RETURN_ON_ERROR(result)                                   \
  do {                                                               \
    auto&& _result = (result);                                       \
    if (_result.hasError()) co_return ::hf3fs::makeError(_result.error()); \
  } while (0)

namespace hf3fs {

template <typename T>
using Result = folly::Expected<T, Status>;

using Void = folly::Unit;

template <typename... Args>
[[nodiscard]] inline folly::Unexpected<Status> makeError(Args&&... args) {
  return folly::makeUnexpected(Status(std::forward<Args>(args)...));
}

}  // namespace hf3fs
