// STAND-IN (txkv integrations/3fs/standin): not folly. folly::coro::blockingWait(task):
// runs the task to completion on the calling thread with an executor of its own (so
// awaited SemiFutures resume here even when fulfilled on another thread) and returns its
// value or rethrows its exception, as folly's does. Same name and header path as folly,
// so code using it compiles unchanged inside 3FS.
#pragma once

#include <exception>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "folly/experimental/coro/Task.h"

namespace folly::coro {
namespace standin_detail {
// A fire-and-forget driver coroutine.
struct Detached {
  struct promise_type {
    Detached get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
};
}  // namespace standin_detail

template <typename T>
T blockingWait(Task<T> task) {
  standin_detail::Executor ex;
  standin_detail::Executor* prev = std::exchange(standin_detail::currentExecutorRef(), &ex);
  std::mutex mu;
  bool done = false;
  std::optional<std::conditional_t<std::is_void_v<T>, char, T>> out;
  std::exception_ptr error;
  auto driver = [&](Task<T> t) -> standin_detail::Detached {
    try {
      if constexpr (std::is_void_v<T>) {
        co_await std::move(t);
      } else {
        out.emplace(co_await std::move(t));
      }
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard l(mu);
      done = true;
    }
    ex.wake();
  };
  ex.add([&] { driver(std::move(task)); });
  ex.drive([&] {
    std::lock_guard l(mu);
    return done;
  });
  standin_detail::currentExecutorRef() = prev;
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<T>) return std::move(*out);
}

}  // namespace folly::coro
