// Shared setup for the live suites (the C++ mirror of ../shared/conformance/helpers.mjs):
// a Database on TXKV_URL (tests skip without it), byte helpers and error assertions.
#pragma once

#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "txkv/client.h"

namespace txkv::live {

// TXKV_URL, or "" (then every live test skips).
std::string serverUrl();
ConnectOptions options(ConnectOptions extra = {});
std::shared_ptr<Database> connectDb(ConnectOptions extra = {});

class LiveTest : public ::testing::Test {
 protected:
  void SetUp() override;
  static std::shared_ptr<Database> sharedDb();
  std::shared_ptr<Database> db;
};

// What must() throws: a std::runtime_error with the TxnError text (gtest prints it), and
// the code, for the few tests that start over on one (a scan past the MVCC window).
struct CallFailed : std::runtime_error {
  CallFailed(const char* what, const TxnError& e)
      : std::runtime_error(std::string(what) + " failed: " + e.describe()), code(e.code()) {}
  ErrorCode code;
};

// The value of r, or a test failure (thrown as CallFailed).
template <typename T>
T must(Result<T> r, const char* what = "call") {
  if (!r.ok()) throw CallFailed(what, r.error());
  return std::move(r).value();
}
inline void must(Status s, const char* what = "call") {
  if (!s.ok()) throw CallFailed(what, s.error());
}

// Expect a TxnError with `code` (and the retryable flag of the spec's table).
::testing::AssertionResult hasCode(const std::optional<TxnError>& e, ErrorCode code);
template <typename T>
::testing::AssertionResult failsWith(const Result<T>& r, ErrorCode code) {
  return hasCode(r.ok() ? std::nullopt : std::optional<TxnError>(r.error()), code);
}
// A buffered write may fail at the call or at commit() (the spec allows both).
::testing::AssertionResult failsAtCallOrCommit(Transaction& tx, const Status& atCall, ErrorCode code);

std::string prefix(const std::string& tag = "cpp");
std::string hex(std::string_view s);
inline std::string bytes(std::initializer_list<int> v) {
  std::string s;
  for (int c : v) s.push_back(static_cast<char>(c));
  return s;
}
std::vector<std::string> keysOf(const std::vector<KeyValue>& kvs);

int64_t put(Database& db, const std::vector<std::pair<std::string, std::string>>& pairs);
int64_t writeFrom(Database& db, const std::string& key, const std::string& value = "x");
std::vector<KeyValue> readAll(ReadTransaction& tx, KeySelector begin, KeySelector end, int limit = 0,
                              bool reverse = false, bool snapshot = false);
inline KeySelector sel(std::string key, bool inclusive) { return KeySelector{std::move(key), inclusive}; }

}  // namespace txkv::live
