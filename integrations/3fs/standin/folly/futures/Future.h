// STAND-IN (txkv integrations/3fs/standin): not folly. Just enough of folly::Promise /
// folly::SemiFuture / folly::makePromiseContract for the adapter, with folly's observable
// behaviour: a SemiFuture co_awaited in a coro::Task resumes the coroutine on the executor
// that drives it (blockingWait's), never on the thread that fulfils the promise; a Promise
// destroyed unfulfilled completes its future with folly::BrokenPromise (the awaiter throws,
// it does not hang); fulfilling twice throws folly::PromiseAlreadySatisfied.
#pragma once

#include <folly/experimental/coro/Task.h>

#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <utility>

namespace folly {

class PromiseException : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};
class BrokenPromise : public PromiseException {
 public:
  explicit BrokenPromise(const std::string& type) : PromiseException("Broken promise for type name `" + type + '`') {}
};
class PromiseAlreadySatisfied : public PromiseException {
 public:
  PromiseAlreadySatisfied() : PromiseException("Promise already satisfied") {}
};

namespace standin_detail {
template <typename T>
struct Shared {
  std::mutex mu;
  std::optional<T> value;
  std::exception_ptr error;
  bool ready = false;
  std::function<void()> onReady;
};
}  // namespace standin_detail

template <typename T>
class SemiFuture {
 public:
  explicit SemiFuture(std::shared_ptr<standin_detail::Shared<T>> s) : s_(std::move(s)) {}

  auto operator co_await() && {
    struct Awaiter {
      std::shared_ptr<standin_detail::Shared<T>> s;
      bool await_ready() {
        std::lock_guard l(s->mu);
        return s->ready;
      }
      bool await_suspend(std::coroutine_handle<> h) {
        auto* ex = coro::standin_detail::currentExecutor();
        std::lock_guard l(s->mu);
        if (s->ready) return false;
        s->onReady = [ex, h] {
          if (ex) {
            ex->add([h] { h.resume(); });
          } else {
            h.resume();
          }
        };
        return true;
      }
      T await_resume() {
        std::lock_guard l(s->mu);
        if (s->error) std::rethrow_exception(s->error);
        return std::move(*s->value);
      }
    };
    return Awaiter{s_};
  }

 private:
  std::shared_ptr<standin_detail::Shared<T>> s_;
};

template <typename T>
class Promise {
 public:
  Promise() : s_(std::make_shared<standin_detail::Shared<T>>()) {}
  Promise(Promise&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Promise& operator=(Promise&& o) noexcept {
    if (this != &o) {
      breakIfUnfulfilled();
      s_ = std::exchange(o.s_, nullptr);
    }
    return *this;
  }
  Promise(const Promise&) = delete;
  Promise& operator=(const Promise&) = delete;
  ~Promise() { breakIfUnfulfilled(); }

  SemiFuture<T> getSemiFuture() { return SemiFuture<T>(s_); }
  void setValue(T v) {
    complete([&](standin_detail::Shared<T>& s) { s.value.emplace(std::move(v)); });
  }
  void setException(std::exception_ptr e) {
    complete([&](standin_detail::Shared<T>& s) { s.error = std::move(e); });
  }
  bool isFulfilled() const {
    std::lock_guard l(s_->mu);
    return s_->ready;
  }

 private:
  template <typename Fill>
  void complete(Fill fill) {
    std::function<void()> cb;
    {
      std::lock_guard l(s_->mu);
      if (s_->ready) throw PromiseAlreadySatisfied();
      fill(*s_);
      s_->ready = true;
      cb = std::move(s_->onReady);
    }
    if (cb) cb();
  }
  void breakIfUnfulfilled() {
    if (!s_) return;
    {
      std::lock_guard l(s_->mu);
      if (s_->ready) return;
    }
    setException(std::make_exception_ptr(BrokenPromise(typeid(T).name())));
  }

  std::shared_ptr<standin_detail::Shared<T>> s_;
};

template <typename T>
std::pair<Promise<T>, SemiFuture<T>> makePromiseContract() {
  Promise<T> p;
  auto f = p.getSemiFuture();
  return {std::move(p), std::move(f)};
}

}  // namespace folly
