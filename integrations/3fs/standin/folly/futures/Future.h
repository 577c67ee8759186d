// STAND-IN (txkv integrations/3fs/standin): not folly. Just enough of folly::Promise /
// folly::SemiFuture / folly::makePromiseContract for the adapter: a SemiFuture can be
// co_awaited inside a stand-in CoTask and resumes the coroutine on the executor that
// drives it (blockingWait's), never on the thread that fulfils the promise.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "common/utils/Coroutine.h"

namespace folly {

namespace standin_detail {
template <typename T>
struct Shared {
  std::mutex mu;
  std::optional<T> value;
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
        return s->value.has_value();
      }
      bool await_suspend(std::coroutine_handle<> h) {
        auto* ex = hf3fs::standin::currentExecutor();
        std::lock_guard l(s->mu);
        if (s->value) return false;
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
  Promise(Promise&&) noexcept = default;
  Promise& operator=(Promise&&) noexcept = default;

  SemiFuture<T> getSemiFuture() { return SemiFuture<T>(s_); }
  void setValue(T v) {
    std::function<void()> cb;
    {
      std::lock_guard l(s_->mu);
      s_->value.emplace(std::move(v));
      cb = std::move(s_->onReady);
    }
    if (cb) cb();
  }

 private:
  std::shared_ptr<standin_detail::Shared<T>> s_;
};

template <typename T>
std::pair<Promise<T>, SemiFuture<T>> makePromiseContract() {
  Promise<T> p;
  auto f = p.getSemiFuture();
  return {std::move(p), std::move(f)};
}

}  // namespace folly
