// STAND-IN (txkv integrations/3fs/standin): not 3FS. Status as 3FS's public header declares
// it: no default constructor; Status::OK (a tag converting to a kOK status); code + message,
// optionally with a payload (std::any); `explicit operator bool` true when OK; copyable; a
// moved-from Status reads as kOK with no message (3FS keeps code and message behind one
// pointer that the move takes).
#pragma once

#include <any>
#include <string>
#include <string_view>
#include <utility>

#include "common/utils/StatusCode.h"
#include "common/utils/String.h"

namespace hf3fs {

struct status_ok_t {};

class [[nodiscard]] Status {
 public:
  Status() = delete;
  explicit Status(status_code_t code) : code_(code) {}
  constexpr static status_ok_t OK{};
  /* implicit */ Status(status_ok_t) : Status(StatusCode::kOK) {}
  Status(status_code_t code, std::string_view msg) : code_(code), msg_(msg) {}
  Status(status_code_t code, std::string&& msg) : code_(code), msg_(std::move(msg)) {}
  Status(status_code_t code, const char* msg) : Status(code, std::string_view(msg)) {}
  template <typename T>
  Status(status_code_t code, std::string_view msg, T&& payload) : Status(code, msg) {
    payload_ = std::forward<T>(payload);
  }

  Status(const Status&) = default;
  Status& operator=(const Status&) = default;
  Status(Status&& o) noexcept
      : code_(std::exchange(o.code_, StatusCode::kOK)), msg_(std::exchange(o.msg_, {})), payload_(std::exchange(o.payload_, {})) {}
  Status& operator=(Status&& o) noexcept {
    if (this != &o) {
      code_ = std::exchange(o.code_, StatusCode::kOK);
      msg_ = std::exchange(o.msg_, {});
      payload_ = std::exchange(o.payload_, {});
    }
    return *this;
  }

  status_code_t code() const { return code_; }
  std::string_view message() const { return msg_; }
  bool isOK() const { return code_ == StatusCode::kOK; }
  explicit operator bool() const { return isOK(); }
  String describe() const {
    String s = std::string(StatusCode::toString(code_)) + "(" + std::to_string(code_) + ")";
    return msg_.empty() ? s : s + " " + msg_;
  }

  bool hasPayload() const { return payload_.has_value(); }
  template <typename T>
  T* payload() {
    return std::any_cast<T>(&payload_);
  }
  template <typename T>
  const T* payload() const {
    return std::any_cast<const T>(&payload_);
  }

 private:
  status_code_t code_;
  String msg_;
  std::any payload_;
};

}  // namespace hf3fs
