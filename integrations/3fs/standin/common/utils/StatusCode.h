// STAND-IN (txkv integrations/3fs/standin): not 3FS. The status codes the adapter uses,
// with the numeric values 3FS publishes in src/common/utils/StatusCodeDetails.h.
#pragma once

#include <cstdint>
#include <string_view>

namespace hf3fs {
using status_code_t = uint16_t;

namespace StatusCode {
inline constexpr status_code_t kOK = 0;
inline constexpr status_code_t kInvalidArg = 3;
inline constexpr status_code_t kInvalidConfig = 4;
inline constexpr status_code_t kReadOnlyMode = 34;
inline constexpr status_code_t kUnknown = 999;
std::string_view toString(status_code_t code);
}  // namespace StatusCode

namespace TransactionCode {
inline constexpr status_code_t kFailed = 1000;
inline constexpr status_code_t kConflict = 1001;
inline constexpr status_code_t kThrottled = 1002;
inline constexpr status_code_t kTooOld = 1003;
inline constexpr status_code_t kNetworkError = 1004;
inline constexpr status_code_t kCanceled = 1005;
inline constexpr status_code_t kMaybeCommitted = 1006;
inline constexpr status_code_t kRetryable = 1007;
inline constexpr status_code_t kResourceConstrained = 1008;
inline constexpr status_code_t kProcessBehind = 1009;
inline constexpr status_code_t kFutureVersion = 1010;
}  // namespace TransactionCode

inline std::string_view StatusCode::toString(status_code_t code) {
  switch (code) {
    case kOK: return "OK";
    case kInvalidArg: return "InvalidArg";
    case kInvalidConfig: return "InvalidConfig";
    case kReadOnlyMode: return "ReadOnlyMode";
    case TransactionCode::kFailed: return "Transaction::Failed";
    case TransactionCode::kConflict: return "Transaction::Conflict";
    case TransactionCode::kThrottled: return "Transaction::Throttled";
    case TransactionCode::kTooOld: return "Transaction::TooOld";
    case TransactionCode::kNetworkError: return "Transaction::NetworkError";
    case TransactionCode::kCanceled: return "Transaction::Canceled";
    case TransactionCode::kMaybeCommitted: return "Transaction::MaybeCommitted";
    case TransactionCode::kRetryable: return "Transaction::Retryable";
    case TransactionCode::kResourceConstrained: return "Transaction::ResourceConstrained";
    case TransactionCode::kProcessBehind: return "Transaction::ProcessBehind";
    case TransactionCode::kFutureVersion: return "Transaction::FutureVersion";
  }
  return "Unknown";
}

}  // namespace hf3fs
