#include "live_support.h"

#include <cstdlib>
#include <mutex>
#include <random>

namespace txkv::live {

std::string serverUrl() {
  const char* u = std::getenv("TXKV_URL");
  return u ? u : "";
}

ConnectOptions options(ConnectOptions extra) {
  if (extra.endpoints.empty()) extra.endpoints = {serverUrl()};
  if (const char* t = std::getenv("TXKV_TOKEN")) extra.token = t;
  return extra;
}

std::shared_ptr<Database> connectDb(ConnectOptions extra) {
  auto db = Database::connect(options(std::move(extra)));
  if (!db.ok()) throw std::runtime_error("connect: " + db.error().describe());
  return std::move(db).value();
}

void LiveTest::SetUp() {
  if (serverUrl().empty()) GTEST_SKIP() << "TXKV_URL is not set (scripts/test-cpp.sh starts a server)";
  db = sharedDb();
}

std::shared_ptr<Database> LiveTest::sharedDb() {
  static std::once_flag once;
  static std::shared_ptr<Database> db;
  std::call_once(once, [] { db = connectDb(); });
  return db;
}

::testing::AssertionResult hasCode(const std::optional<TxnError>& e, ErrorCode code) {
  if (!e) return ::testing::AssertionFailure() << "expected TxnError " << errorCodeName(code) << ", but it succeeded";
  if (e->code() != code) {
    return ::testing::AssertionFailure() << "expected " << errorCodeName(code) << ", got " << e->describe();
  }
  if (e->retryable() != errorCodeInfo(code).retryable) {
    return ::testing::AssertionFailure() << errorCodeName(code) << ".retryable is wrong";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult failsAtCallOrCommit(Transaction& tx, const Status& atCall, ErrorCode code) {
  if (!atCall.ok()) return hasCode(atCall.error(), code);
  Status c = tx.commit();
  return hasCode(c.ok() ? std::nullopt : std::optional<TxnError>(c.error()), code);
}

std::string prefix(const std::string& tag) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[24];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return tag + "/" + buf + "/";
}

std::string hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

std::vector<std::string> keysOf(const std::vector<KeyValue>& kvs) {
  std::vector<std::string> out;
  for (const auto& kv : kvs) out.push_back(kv.key);
  return out;
}

int64_t put(Database& db, const std::vector<std::pair<std::string, std::string>>& pairs) {
  Transaction tx = db.createTransaction();
  for (const auto& [k, v] : pairs) must(tx.set(k, v), "set");
  must(tx.commit(), "commit");
  return tx.getCommittedVersion();
}

int64_t writeFrom(Database& db, const std::string& key, const std::string& value) {
  return put(db, {{key, value}});
}

std::vector<KeyValue> readAll(ReadTransaction& tx, KeySelector begin, KeySelector end, int limit, bool reverse,
                              bool snapshot) {
  std::vector<KeyValue> out;
  for (int page = 0; page < 100000; ++page) {
    RangeOptions o{limit, reverse};
    RangeResult r = must(snapshot ? tx.snapshotGetRange(begin, end, o) : tx.getRange(begin, end, o), "getRange");
    out.insert(out.end(), r.kvs.begin(), r.kvs.end());
    if (!r.hasMore) return out;
    if (r.kvs.empty()) throw std::runtime_error("hasMore=true with an empty page");
    if (reverse) {
      end = KeySelector{r.kvs.back().key, false};
    } else {
      begin = KeySelector{r.kvs.back().key, false};
    }
  }
  throw std::runtime_error("too many pages");
}

}  // namespace txkv::live
