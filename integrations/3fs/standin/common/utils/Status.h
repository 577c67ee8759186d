// STAND-IN (txkv integrations/3fs/standin): not 3FS. A Status with code and message.
#pragma once

#include <string>
#include <string_view>

#include "common/utils/StatusCode.h"
#include "common/utils/String.h"

namespace hf3fs {

class [[nodiscard]] Status {
 public:
  explicit Status(status_code_t code) : code_(code) {}
  Status(status_code_t code, std::string_view msg) : code_(code), msg_(msg) {}
  Status(status_code_t code, std::string&& msg) : code_(code), msg_(std::move(msg)) {}
  Status(status_code_t code, const char* msg) : code_(code), msg_(msg) {}

  status_code_t code() const { return code_; }
  std::string_view message() const { return msg_; }
  bool isOK() const { return code_ == StatusCode::kOK; }
  String describe() const {
    return std::string(StatusCode::toString(code_)) + "(" + std::to_string(code_) + ") " + msg_;
  }

 private:
  status_code_t code_;
  String msg_;
};

}  // namespace hf3fs
