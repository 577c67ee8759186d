// STAND-IN (txkv integrations/3fs/standin): not 3FS. As in 3FS, CoTask<T> is
// folly::coro::Task<T> and CoTryTask<T> = CoTask<Result<T>> (Result<Void> for void);
// here folly::coro::Task is the stand-in's (folly/experimental/coro/Task.h).
#pragma once

#include <folly/experimental/coro/Task.h>

#include <type_traits>

#include "common/utils/Result.h"

namespace hf3fs {

template <typename T>
using CoTask = folly::coro::Task<T>;

template <typename T>
using CoTryTask = CoTask<std::conditional_t<std::is_void_v<T>, Result<Void>, Result<T>>>;

}  // namespace hf3fs
