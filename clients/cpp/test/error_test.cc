// The error table matches the spec (code strings and retryable flags).
#include <gtest/gtest.h>

#include <map>

#include "txkv/error.h"

namespace txkv {

TEST(ErrorTable, MatchesTheSpec) {
  // shared/spec/client-api.md, "Errors" (and ../shared/conformance/helpers.mjs RETRYABLE).
  const std::map<std::string, bool> spec = {
      {"CONFLICT", true},          {"TOO_OLD", true},          {"FUTURE_VERSION", true},
      {"THROTTLED", true},         {"RESOURCE_CONSTRAINED", true}, {"MAYBE_COMMITTED", false},
      {"NETWORK_ERROR", false},    {"CANCELED", false},        {"TIMEOUT", false},
      {"READ_ONLY", false},        {"INVALID_ARGUMENT", false}, {"KEY_TOO_LARGE", false},
      {"VALUE_TOO_LARGE", false},  {"TRANSACTION_TOO_LARGE", false}, {"UNAUTHORIZED", false},
      {"PROTOCOL_ERROR", false},   {"FAILED", false},          {"UNAVAILABLE", true},
  };
  size_t n = 0;
  const ErrorCodeInfo* table = errorCodeTable(&n);
  ASSERT_EQ(n, spec.size());
  for (size_t i = 0; i < n; ++i) {
    auto it = spec.find(std::string(table[i].name));
    ASSERT_NE(it, spec.end()) << table[i].name;
    EXPECT_EQ(table[i].retryable, it->second) << table[i].name;
    EXPECT_EQ(errorCodeFromName(table[i].name), table[i].code);
    TxnError e(table[i].code, "m");
    EXPECT_EQ(e.codeName(), table[i].name);
    EXPECT_EQ(e.retryable(), it->second);
  }
}

TEST(ErrorTable, WireCodesRoundTripAndUnknownBecomesFailed) {
  auto e = TxnError::fromWire("TOO_OLD", "old");
  EXPECT_EQ(e.code(), ErrorCode::kTooOld);
  EXPECT_EQ(e.message(), "old");
  auto u = TxnError::fromWire("SOMETHING_NEW", "x");
  EXPECT_EQ(u.code(), ErrorCode::kFailed);
  EXPECT_NE(u.message().find("SOMETHING_NEW"), std::string::npos);
}

TEST(ErrorTable, ShouldRetryOptsIntoMaybeCommitted) {
  TxnError maybe(ErrorCode::kMaybeCommitted, "");
  EXPECT_FALSE(shouldRetry(maybe));
  EXPECT_TRUE(shouldRetry(maybe, true));
  EXPECT_TRUE(shouldRetry(TxnError(ErrorCode::kConflict, "")));
  EXPECT_FALSE(shouldRetry(TxnError(ErrorCode::kNetworkError, ""), true));
}

TEST(ResultType, ValueThrowsTheTxnError) {
  Result<int> r = TxnError(ErrorCode::kCanceled, "c");
  EXPECT_FALSE(r.ok());
  try {
    (void)r.value();
    FAIL() << "value() must throw";
  } catch (const TxnError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCanceled);
  }
  Result<int> ok = 3;
  EXPECT_EQ(*ok, 3);
}

}  // namespace txkv
