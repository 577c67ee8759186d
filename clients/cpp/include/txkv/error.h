// txkv C++ client: the error codes of the spec, the one error type (TxnError)
// and Result<T>. The code table mirrors shared/spec/client-api.md "Errors" and
// src/errors.ts; it only grows, nothing is renamed or reused.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace txkv {

enum class ErrorCode {
  kConflict,
  kTooOld,
  kFutureVersion,
  kThrottled,
  kResourceConstrained,
  kMaybeCommitted,
  kNetworkError,
  kCanceled,
  kTimeout,
  kReadOnly,
  kInvalidArgument,
  kKeyTooLarge,
  kValueTooLarge,
  kTransactionTooLarge,
  kUnauthorized,
  kProtocolError,
  kFailed,
  kUnavailable,  // second revision: no leader right now, or the server is shutting down (retryable)
};

struct ErrorCodeInfo {
  ErrorCode code;
  std::string_view name;     // the wire/API string, e.g. "CONFLICT"
  bool retryable;            // as the spec's table
  std::string_view threeFs;  // the 3FS TransactionCode it maps to (kFailed when none)
};

// Every code, in the order of the spec's table.
const ErrorCodeInfo* errorCodeTable(size_t* count);
const ErrorCodeInfo& errorCodeInfo(ErrorCode code);
std::string_view errorCodeName(ErrorCode code);
// Unknown strings map to nullopt (the caller turns them into FAILED, keeping the text).
std::optional<ErrorCode> errorCodeFromName(std::string_view name);

// The one error type. Returned inside Result<T>; thrown only by Result<T>::value()
// and the blocking helpers when the caller asks for exceptions.
class TxnError : public std::runtime_error {
 public:
  TxnError(ErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}

  ErrorCode code() const noexcept { return code_; }
  std::string_view codeName() const noexcept { return errorCodeName(code_); }
  bool retryable() const noexcept { return errorCodeInfo(code_).retryable; }
  std::string message() const { return what(); }
  // "CONFLICT: read set overwritten ..." for logs.
  std::string describe() const;

  // Rebuilds a wire ErrorReply; unknown codes become FAILED with the code in the text.
  static TxnError fromWire(std::string_view code, std::string_view message);

 private:
  ErrorCode code_;
};

// Retry decision in one place (as the TS client's shouldRetry): retryable codes,
// plus MAYBE_COMMITTED only when the caller opts in.
bool shouldRetry(const TxnError& e, bool allowMaybeCommitted = false);

struct Void {};

// Either a value or a TxnError. value() throws the TxnError when there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::in_place_index<0>, std::move(v)) {}  // NOLINT(implicit)
  Result(TxnError e) : v_(std::in_place_index<1>, std::move(e)) {}  // NOLINT(implicit)

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  bool hasError() const noexcept { return !ok(); }

  T& value() & {
    throwIfError();
    return std::get<0>(v_);
  }
  const T& value() const& {
    throwIfError();
    return std::get<0>(v_);
  }
  T&& value() && {
    throwIfError();
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  T* operator->() { return &value(); }
  const TxnError& error() const { return std::get<1>(v_); }

 private:
  void throwIfError() const {
    if (v_.index() != 0) throw std::get<1>(v_);
  }
  std::variant<T, TxnError> v_;
};

using Status = Result<Void>;
inline Status okStatus() { return Void{}; }

}  // namespace txkv
