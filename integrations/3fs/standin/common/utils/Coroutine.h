// STAND-IN (txkv integrations/3fs/standin): not 3FS, not folly::coro. CoTask<T> is a lazy
// C++20 coroutine; CoTryTask<T> = CoTask<Result<T>> as in 3FS. blockingWait(task) drives
// it on the calling thread with its own executor (like folly::coro::blockingWait), so
// coroutines resume there even when a txkv callback fires on the txkv I/O thread.
#pragma once

#include <condition_variable>
#include <coroutine>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "common/utils/Result.h"

namespace hf3fs {
namespace standin {

class Executor {
 public:
  void add(std::function<void()> fn) {
    {
      std::lock_guard l(mu_);
      q_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }
  // Runs queued work until done() is true.
  template <typename Done>
  void drive(Done done) {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock l(mu_);
        cv_.wait(l, [&] { return !q_.empty() || done(); });
        if (q_.empty()) return;
        fn = std::move(q_.front());
        q_.pop_front();
      }
      fn();
    }
  }
  void wake() { cv_.notify_all(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
};

inline Executor*& currentExecutorRef() {
  static thread_local Executor* ex = nullptr;
  return ex;
}
inline Executor* currentExecutor() { return currentExecutorRef(); }

template <typename T>
class Task;

struct PromiseBase {
  std::coroutine_handle<> continuation = std::noop_coroutine();
  std::exception_ptr error;

  std::suspend_always initial_suspend() noexcept { return {}; }
  auto final_suspend() noexcept {
    struct Final {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<>) noexcept { return cont; }
      void await_resume() noexcept {}
      std::coroutine_handle<> cont;
    };
    return Final{continuation};
  }
  void unhandled_exception() { error = std::current_exception(); }
};

template <typename T>
struct TaskPromise : PromiseBase {
  std::optional<T> value;
  Task<T> get_return_object();
  template <typename U>
  void return_value(U&& u) {
    value.emplace(std::forward<U>(u));
  }
};

template <>
struct TaskPromise<void> : PromiseBase {
  Task<void> get_return_object();
  void return_void() {}
};

template <typename T>
class [[nodiscard]] Task {
 public:
  using promise_type = TaskPromise<T>;
  explicit Task(std::coroutine_handle<promise_type> h) : h_(h) {}
  Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Task& operator=(Task&& o) noexcept {
    if (this != &o) {
      if (h_) h_.destroy();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  ~Task() {
    if (h_) h_.destroy();
  }

  auto operator co_await() && {
    struct Awaiter {
      std::coroutine_handle<promise_type> h;
      bool await_ready() { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<> cont) {
        h.promise().continuation = cont;
        return h;
      }
      T await_resume() {
        if (h.promise().error) std::rethrow_exception(h.promise().error);
        if constexpr (!std::is_void_v<T>) return std::move(*h.promise().value);
      }
    };
    return Awaiter{h_};
  }

 private:
  std::coroutine_handle<promise_type> h_;
};

template <typename T>
Task<T> TaskPromise<T>::get_return_object() {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}
inline Task<void> TaskPromise<void>::get_return_object() {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}

// A fire-and-forget driver coroutine used by blockingWait.
struct Detached {
  struct promise_type {
    Detached get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
};

template <typename T>
T blockingWait(Task<T> task) {
  Executor ex;
  Executor* prev = std::exchange(currentExecutorRef(), &ex);
  std::mutex mu;
  bool done = false;
  std::optional<std::conditional_t<std::is_void_v<T>, char, T>> out;
  std::exception_ptr error;
  auto driver = [&](Task<T> t) -> Detached {
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
  currentExecutorRef() = prev;
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<T>) return std::move(*out);
}

}  // namespace standin

template <typename T>
using CoTask = standin::Task<T>;

template <typename T>
using CoTryTask = CoTask<std::conditional_t<std::is_void_v<T>, Result<Void>, Result<T>>>;

}  // namespace hf3fs
