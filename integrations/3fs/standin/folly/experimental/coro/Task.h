// STAND-IN (txkv integrations/3fs/standin): not folly. folly::coro::Task<T> reduced to a
// lazy C++20 coroutine: it starts when awaited (or driven by blockingWait), resumes its
// awaiter when done and rethrows the coroutine's exception there. Written for txkv from
// folly's public behaviour; no folly code.
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

namespace folly::coro {
namespace standin_detail {

// The executor blockingWait drives on its own thread; awaited SemiFutures resume there.
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
struct TaskPromise;

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

}  // namespace standin_detail

template <typename T>
class [[nodiscard]] Task {
 public:
  using promise_type = standin_detail::TaskPromise<T>;
  explicit Task(std::coroutine_handle<promise_type> h) : h_(h) {}
  Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Task& operator=(Task&& o) noexcept {
    if (this != &o) {
      if (h_) h_.destroy();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
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

namespace standin_detail {
template <typename T>
struct TaskPromise : PromiseBase {
  std::optional<T> value;
  Task<T> get_return_object() { return Task<T>(std::coroutine_handle<TaskPromise>::from_promise(*this)); }
  template <typename U>
  void return_value(U&& u) {
    value.emplace(std::forward<U>(u));
  }
};

template <>
struct TaskPromise<void> : PromiseBase {
  Task<void> get_return_object() { return Task<void>(std::coroutine_handle<TaskPromise>::from_promise(*this)); }
  void return_void() {}
};
}  // namespace standin_detail

}  // namespace folly::coro
