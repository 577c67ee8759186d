// The code table of the spec ("Errors"), one row per code. Keep in step with
// src/errors.ts; the table only grows.
#include "txkv/error.h"

#include <iterator>

namespace txkv {
namespace {

constexpr ErrorCodeInfo kTable[] = {
    {ErrorCode::kConflict, "CONFLICT", true, "kConflict"},
    {ErrorCode::kTooOld, "TOO_OLD", true, "kTooOld"},
    {ErrorCode::kFutureVersion, "FUTURE_VERSION", true, "kFutureVersion"},
    {ErrorCode::kThrottled, "THROTTLED", true, "kThrottled"},
    {ErrorCode::kResourceConstrained, "RESOURCE_CONSTRAINED", true, "kResourceConstrained"},
    {ErrorCode::kMaybeCommitted, "MAYBE_COMMITTED", false, "kMaybeCommitted"},
    {ErrorCode::kNetworkError, "NETWORK_ERROR", false, "kNetworkError"},
    {ErrorCode::kCanceled, "CANCELED", false, "kCanceled"},
    {ErrorCode::kTimeout, "TIMEOUT", false, "kFailed"},
    {ErrorCode::kReadOnly, "READ_ONLY", false, "kFailed"},
    {ErrorCode::kInvalidArgument, "INVALID_ARGUMENT", false, "kFailed"},
    {ErrorCode::kKeyTooLarge, "KEY_TOO_LARGE", false, "kFailed"},
    {ErrorCode::kValueTooLarge, "VALUE_TOO_LARGE", false, "kFailed"},
    {ErrorCode::kTransactionTooLarge, "TRANSACTION_TOO_LARGE", false, "kFailed"},
    {ErrorCode::kUnauthorized, "UNAUTHORIZED", false, "kFailed"},
    {ErrorCode::kProtocolError, "PROTOCOL_ERROR", false, "kFailed"},
    {ErrorCode::kFailed, "FAILED", false, "kFailed"},
    {ErrorCode::kUnavailable, "UNAVAILABLE", true, "kThrottled"},
};

constexpr bool tableInEnumOrder() {
  for (size_t i = 0; i < std::size(kTable); ++i) {
    if (static_cast<size_t>(kTable[i].code) != i) return false;
  }
  return true;
}
static_assert(tableInEnumOrder(), "kTable rows must follow the ErrorCode enum order");

}  // namespace

const ErrorCodeInfo* errorCodeTable(size_t* count) {
  *count = std::size(kTable);
  return kTable;
}

const ErrorCodeInfo& errorCodeInfo(ErrorCode code) { return kTable[static_cast<size_t>(code)]; }

std::string_view errorCodeName(ErrorCode code) { return errorCodeInfo(code).name; }

std::optional<ErrorCode> errorCodeFromName(std::string_view name) {
  for (const auto& row : kTable) {
    if (row.name == name) return row.code;
  }
  return std::nullopt;
}

std::string TxnError::describe() const { return std::string(codeName()) + ": " + what(); }

TxnError TxnError::fromWire(std::string_view code, std::string_view message) {
  if (auto c = errorCodeFromName(code)) return TxnError(*c, std::string(message));
  return TxnError(ErrorCode::kFailed, std::string(code) + ": " + std::string(message));
}

bool shouldRetry(const TxnError& e, bool allowMaybeCommitted) {
  if (e.code() == ErrorCode::kMaybeCommitted) return allowMaybeCommitted;
  return e.retryable();
}

}  // namespace txkv
