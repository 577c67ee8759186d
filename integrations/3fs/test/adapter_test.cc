// CustomKvEngine / CustomTransaction through 3FS's interface: error mapping parity with
// FoundationDB, every operation against a live txkv server (TXKV_URL), the real
// TransactionHelper::listByPrefix through the adapter, and a WithTransaction-style retry
// loop under contention. The same source builds against txkv's stand-in headers and inside
// 3FS against the real ones (folly::coro::blockingWait, ...); the StandInParity tests pin
// the behaviour of 3FS/folly the stand-in imitates, so they pass with both.
#include <arpa/inet.h>
#include <folly/experimental/coro/BlockingWait.h>
#include <folly/futures/Future.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "CustomKvEngine.h"
#include "CustomTransaction.h"

namespace hf3fs::kv {
namespace {

using folly::coro::blockingWait;
using Sel = IReadOnlyTransaction::KeySelector;

std::string url() {
  const char* u = std::getenv("TXKV_URL");
  return u ? u : "";
}

std::string prefix() {
  static std::atomic<uint64_t> n{0};
  static const uint64_t run = std::random_device{}();
  return "3fs/" + std::to_string(run % 1000000) + "-" + std::to_string(n++) + "/";
}

TEST(ErrorMapping, EveryTxkvCodeMapsAndRetriesAsTheSpecSays) {
  using txkv::ErrorCode;
  const std::vector<std::pair<ErrorCode, status_code_t>> want = {
      {ErrorCode::kConflict, TransactionCode::kConflict},
      {ErrorCode::kTooOld, TransactionCode::kTooOld},
      {ErrorCode::kFutureVersion, TransactionCode::kFutureVersion},
      {ErrorCode::kThrottled, TransactionCode::kThrottled},
      {ErrorCode::kResourceConstrained, TransactionCode::kResourceConstrained},
      {ErrorCode::kMaybeCommitted, TransactionCode::kMaybeCommitted},
      {ErrorCode::kNetworkError, TransactionCode::kNetworkError},
      {ErrorCode::kCanceled, TransactionCode::kCanceled},
      {ErrorCode::kTimeout, TransactionCode::kFailed},
      {ErrorCode::kReadOnly, TransactionCode::kFailed},
      {ErrorCode::kInvalidArgument, TransactionCode::kFailed},
      {ErrorCode::kKeyTooLarge, TransactionCode::kFailed},
      {ErrorCode::kValueTooLarge, TransactionCode::kFailed},
      {ErrorCode::kTransactionTooLarge, TransactionCode::kFailed},
      {ErrorCode::kUnauthorized, TransactionCode::kFailed},
      {ErrorCode::kProtocolError, TransactionCode::kFailed},
      {ErrorCode::kFailed, TransactionCode::kFailed},
      {ErrorCode::kUnavailable, TransactionCode::kThrottled},
  };
  size_t n = 0;
  txkv::errorCodeTable(&n);
  ASSERT_EQ(want.size(), n) << "every txkv code is mapped";
  for (auto [code, tc] : want) {
    txkv::TxnError e(code, "m");
    Status s = CustomTransaction::toStatus(e);
    EXPECT_EQ(s.code(), tc) << e.codeName();
    EXPECT_NE(std::string(s.message()).find(std::string(e.codeName())), std::string::npos) << "message keeps the code";
    // 3FS's retry decision equals txkv's (MAYBE_COMMITTED: only when the caller opts in).
    EXPECT_EQ(TransactionHelper::isRetryable(s, false), e.retryable()) << e.codeName();
    EXPECT_EQ(TransactionHelper::isRetryable(s, true), txkv::shouldRetry(e, true)) << e.codeName();
    EXPECT_EQ(txkv::errorCodeInfo(code).threeFs == "kFailed", tc == TransactionCode::kFailed) << e.codeName();
  }
}

TEST(Config, GettersReturnSmallValuesByValueAndSettersCheck) {
  CustomKvConfig c;
  static_assert(std::is_same_v<decltype(c.connection_pool_size()), int>);
  static_assert(std::is_same_v<decltype(c.transaction_timeout_ms()), long>);
  static_assert(std::is_same_v<decltype(c.auth_token()), const std::string&>);
  static_assert(std::is_same_v<decltype(c.cluster_endpoints()), const std::vector<std::string>&>);
  static_assert(std::is_same_v<decltype(c.set_max_retry_count(1)), bool>);
  EXPECT_FALSE(c.set_connection_pool_size(0)) << "the checker refuses it";
  EXPECT_EQ(c.connection_pool_size(), 4) << "and the value is unchanged";
  EXPECT_TRUE(c.set_connection_pool_size(8));
  EXPECT_EQ(c.connection_pool_size(), 8);
  EXPECT_FALSE(c.set_transaction_timeout_ms(0));
  EXPECT_FALSE(c.set_max_retry_count(-1));
  EXPECT_TRUE(c.set_max_retry_count(0));
  EXPECT_FALSE(c.set_connect_timeout_ms(-5));
}

TEST(StandInParity, StatusAsThreeFsDeclaresIt) {
  static_assert(!std::is_default_constructible_v<Status>);
  static_assert(!std::is_convertible_v<Status, bool>, "operator bool is explicit");
  static_assert(std::is_constructible_v<bool, Status>);
  Status ok = Status::OK;
  EXPECT_TRUE(ok.isOK());
  EXPECT_TRUE(static_cast<bool>(ok));
  EXPECT_EQ(ok.code(), StatusCode::kOK);
  Status bad(TransactionCode::kConflict, "busy", 42);
  EXPECT_FALSE(static_cast<bool>(bad));
  EXPECT_EQ(bad.message(), "busy");
  ASSERT_TRUE(bad.hasPayload());
  EXPECT_EQ(*bad.payload<int>(), 42);
  Status copy = bad;
  EXPECT_EQ(copy.code(), TransactionCode::kConflict);
  IReadOnlyTransaction::KeyValue kv(std::string_view("k"), std::string_view("v"));
  auto [k, v] = kv.pair();
  EXPECT_EQ(k, "k");
  EXPECT_EQ(v, "v");
}

CoTryTask<int> addOne(Result<int> in) {
  CO_RETURN_ON_ERROR(in);
  co_return *in + 1;
}

TEST(StandInParity, CoReturnOnErrorMovesTheErrorAndNamesAnEmptyOne) {
  EXPECT_EQ(blockingWait(addOne(5)).value(), 6);
  auto conflict = blockingWait(addOne(makeError(TransactionCode::kConflict, "busy")));
  ASSERT_TRUE(conflict.hasError());
  EXPECT_EQ(conflict.error().code(), TransactionCode::kConflict);
  EXPECT_EQ(conflict.error().message(), "busy");
  auto unnamed = blockingWait(addOne(makeError(StatusCode::kInvalidArg)));
  ASSERT_TRUE(unnamed.hasError());
  EXPECT_EQ(unnamed.error().code(), StatusCode::kInvalidArg);
  EXPECT_NE(std::string(unnamed.error().message()).find("adapter_test.cc:"), std::string::npos)
      << unnamed.error().message();
  Result<int> held = makeError(TransactionCode::kTooOld, "old");
  auto fromHeld = [](Result<int>& r) -> CoTryTask<int> {
    CO_RETURN_ON_ERROR(r);
    co_return 0;
  };
  auto moved = blockingWait(fromHeld(held));
  ASSERT_TRUE(moved.hasError());
  EXPECT_EQ(moved.error().message(), "old");
  EXPECT_TRUE(held.error().message().empty()) << "CO_RETURN_ON_ERROR moves the error out";
}

CoTask<int> awaitValue(folly::SemiFuture<int> f) { co_return co_await std::move(f); }

TEST(StandInParity, ADestroyedUnfulfilledPromiseRaisesBrokenPromise) {
  auto [promise, future] = folly::makePromiseContract<int>();
  { auto dropped = std::move(promise); }
  EXPECT_THROW(blockingWait(awaitValue(std::move(future))), folly::BrokenPromise);
  // Fulfilled from another thread: the awaiting coroutine still completes.
  auto [p2, f2] = folly::makePromiseContract<int>();
  std::thread t([p = std::move(p2)]() mutable {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    p.setValue(7);
  });
  EXPECT_EQ(blockingWait(awaitValue(std::move(f2))), 7);
  t.join();
}

TEST(Config, MapsToConnectOptionsAndTheExampleNamesEveryKey) {
  CustomKvConfig c;
  c.set_cluster_endpoints({"ws://10.0.0.1:7070", "ws://10.0.0.2:7070"});
  c.set_transaction_timeout_ms(2500);
  c.set_max_retry_count(7);
  c.set_connection_pool_size(3);
  c.set_ca_file("/etc/txkv/ca.pem");
  auto o = CustomKvEngine::toConnectOptions(c);
  EXPECT_EQ(o.caFile, "/etc/txkv/ca.pem");
  EXPECT_EQ(o.endpoints.size(), 2u);
  EXPECT_EQ(o.transactionTimeoutMs, 2500);
  EXPECT_EQ(o.maxRetryCount, 7);
  EXPECT_EQ(o.connectionPoolSize, 3);
  std::ifstream in(TXKV_EXAMPLE_TOML);
  ASSERT_TRUE(in) << TXKV_EXAMPLE_TOML;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string toml = ss.str();
  for (const char* k : {"[kv_engine]", "kv_engine_type = \"custom\"", "[kv_engine.custom_kv]", "cluster_endpoints", "ca_file",
                        "transaction_timeout_ms", "max_retry_count", "connection_pool_size"}) {
    EXPECT_NE(toml.find(k), std::string::npos) << k;
  }
  CustomKvConfig empty;
  auto bad = CustomKvEngine::create(empty);
  ASSERT_TRUE(bad.hasError());
  EXPECT_EQ(bad.error().code(), StatusCode::kInvalidConfig);
}

class AdapterLive : public ::testing::Test {
 protected:
  void SetUp() override {
    if (url().empty()) GTEST_SKIP() << "TXKV_URL is not set";
    CustomKvConfig c;
    c.set_cluster_endpoints({url()});
    c.set_connection_pool_size(2);
    auto e = CustomKvEngine::create(c);
    ASSERT_FALSE(e.hasError()) << e.error().describe();
    engine = std::move(*e);
  }
  std::unique_ptr<CustomKvEngine> engine;
};

#define ASSERT_OK(expr)                                                         \
  do {                                                                          \
    auto&& _r = (expr);                                                         \
    ASSERT_FALSE(_r.hasError()) << #expr << ": " << _r.error().describe();     \
  } while (0)

TEST_F(AdapterLive, EveryOperationThroughTheInterface) {
  auto p = prefix();
  auto body = [&]() -> CoTask<void> {
    auto w = engine->createReadWriteTransaction();
    for (int i = 0; i < 5; ++i) {
      auto r = co_await w->set(p + "k" + std::to_string(i), "v" + std::to_string(i));
      EXPECT_FALSE(r.hasError());
    }
    auto own = co_await w->get(p + "k3");  // read-your-writes through the adapter
    EXPECT_EQ(own.value(), std::optional<String>("v3"));
    EXPECT_FALSE((co_await w->commit()).hasError());
    EXPECT_GT(w->getCommittedVersion(), 0);

    auto r = engine->createReadWriteTransaction();
    auto v = co_await r->get(p + "k1");
    EXPECT_EQ(v.value(), std::optional<String>("v1"));
    auto sv = co_await r->snapshotGet(p + "missing");
    EXPECT_EQ(sv.value(), std::nullopt);
    String b = p + "k1", e = p + "k4";
    auto range = co_await r->getRange(Sel(b, false), Sel(e, true), 2);
    EXPECT_EQ(range->kvs.size(), 2u);
    EXPECT_TRUE(range->hasMore);
    if (!range->kvs.empty()) EXPECT_EQ(range->kvs[0].key, p + "k2");
    auto snap = co_await r->snapshotGetRange(Sel(b, true), Sel(e, false), 0);
    EXPECT_EQ(snap->kvs.size(), 3u);
    EXPECT_FALSE(snap->hasMore);

    auto ro = engine->createReadonlyTransaction();
    auto rov = co_await ro->snapshotGet(p + "k0");
    EXPECT_EQ(rov.value(), std::optional<String>("v0"));

    auto c = engine->createReadWriteTransaction();
    auto* ct = dynamic_cast<CustomTransaction*>(c.get());
    EXPECT_FALSE((co_await ct->clearRange(p + "k0", p + "k2")).hasError());
    EXPECT_FALSE((co_await c->clear(p + "k4")).hasError());
    EXPECT_FALSE((co_await c->commit()).hasError());
    auto after = engine->createReadWriteTransaction();
    String pe = p + "~";
    auto left = co_await after->getRange(Sel(p, true), Sel(pe, false), 0);
    EXPECT_EQ(left->kvs.size(), 2u);
    if (left->kvs.size() == 2) {
      EXPECT_EQ(left->kvs[0].key, p + "k2");
      EXPECT_EQ(left->kvs[1].key, p + "k3");
    }
  };
  blockingWait(body());
}

TEST_F(AdapterLive, ListByPrefixThroughTransactionHelper) {
  auto p = prefix();
  auto body = [&]() -> CoTask<void> {
    // 2,500 rows under p (more than txkv's default page of 1,000: listByPrefix must page),
    // the prefix key itself, and a neighbour just past prefixListEndKey(p).
    auto w = engine->createReadWriteTransaction();
    for (int i = 0; i < 2500; ++i) {
      char buf[8];
      snprintf(buf, sizeof buf, "%04d", i);
      (void)co_await w->set(p + buf, std::to_string(i));
    }
    (void)co_await w->set(p, "self");
    String after = TransactionHelper::prefixListEndKey(p);
    (void)co_await w->set(after + "x", "outside");
    EXPECT_FALSE((co_await w->commit()).hasError());

    using Opts = TransactionHelper::ListByPrefixOptions;
    auto r = engine->createReadonlyTransaction();
    auto all = co_await TransactionHelper::listByPrefix(*r, p, Opts());
    EXPECT_FALSE(all.hasError());
    if (all.hasError()) co_return;
    EXPECT_EQ(all->size(), 2501u);
    EXPECT_TRUE(std::is_sorted(all->begin(), all->end(), [](auto& a, auto& b) { return a.key < b.key; }));
    if (!all->empty()) {
      auto [k, v] = all->front().pair();
      EXPECT_EQ(k, p);
      EXPECT_EQ(v, "self");
      EXPECT_EQ(all->back().key, p + "2499");
    }
    auto exclusive = co_await TransactionHelper::listByPrefix(*r, p, Opts().withInclusive(false));
    EXPECT_EQ(exclusive->size(), 2500u);
    auto limited = co_await TransactionHelper::listByPrefix(*r, p, Opts().withLimit(1500));
    EXPECT_EQ(limited->size(), 1500u);
    if (limited->size() == 1500u) EXPECT_EQ(limited->back().key, p + "1498");
    // Not a snapshot: through getRange (read conflicts), same rows.
    auto rw = engine->createReadWriteTransaction();
    auto conflicting = co_await TransactionHelper::listByPrefix(*rw, p, Opts().withSnapshot(false).withLimit(1001));
    EXPECT_EQ(conflicting->size(), 1001u);
    // The unpacking overload; an unpack error comes back as is.
    auto sizes = co_await TransactionHelper::listByPrefix<size_t>(
        *r, p, Opts().withLimit(3), [](const String&, const String& value) -> Result<size_t> { return value.size(); });
    EXPECT_EQ(sizes.value(), (std::vector<size_t>{4, 1, 1}));
    auto failed = co_await TransactionHelper::listByPrefix<int>(
        *r, p, Opts(), [](const String&, const String&) -> Result<int> { return makeError(StatusCode::kInvalidArg, "nope"); });
    EXPECT_TRUE(failed.hasError() && failed.error().code() == StatusCode::kInvalidArg);
  };
  blockingWait(body());
}

TEST_F(AdapterLive, ErrorsArriveAsThreeFsCodes) {
  auto p = prefix();
  auto body = [&]() -> CoTask<void> {
    // CONFLICT -> kConflict, retryable
    auto t1 = engine->createReadWriteTransaction();
    (void)co_await t1->get(p + "c");
    auto t2 = engine->createReadWriteTransaction();
    (void)co_await t2->set(p + "c", "other");
    EXPECT_FALSE((co_await t2->commit()).hasError());
    (void)co_await t1->set(p + "c", "mine");
    auto c1 = co_await t1->commit();
    EXPECT_TRUE(c1.hasError());
    if (c1.hasError()) {
      EXPECT_EQ(c1.error().code(), TransactionCode::kConflict);
      EXPECT_TRUE(TransactionHelper::isRetryable(c1.error(), false));
    }
    // addReadConflict conflicts too
    auto t3 = engine->createReadWriteTransaction();
    (void)co_await dynamic_cast<CustomTransaction&>(*t3).getReadVersion();  // pin it before t4 commits
    (void)co_await t3->addReadConflict(p + "c");
    (void)co_await t3->addReadConflictRange(p + "d", p + "e");
    auto t4 = engine->createReadWriteTransaction();
    (void)co_await t4->set(p + "d1", "x");
    EXPECT_FALSE((co_await t4->commit()).hasError());
    (void)co_await t3->set(p + "z", "x");
    auto c3 = co_await t3->commit();
    EXPECT_TRUE(c3.hasError() && c3.error().code() == TransactionCode::kConflict);
    // bad versionstamp offset -> kInvalidArg at the call, as FDBTransaction
    auto t5 = engine->createReadWriteTransaction();
    auto bad = co_await t5->setVersionstampedValue(p + "v", String(9, '\0'), 0);
    EXPECT_TRUE(bad.hasError() && bad.error().code() == StatusCode::kInvalidArg);
    // versionstamped key/value, committed version and stamp
    String tmpl = p + "vs/" + String(10, '\0');
    EXPECT_FALSE((co_await t5->setVersionstampedKey(tmpl, uint32_t(p.size() + 3), "val")).hasError());
    EXPECT_FALSE((co_await t5->setVersionstampedValue(p + "v", String(12, '\0'), 2)).hasError());
    EXPECT_FALSE((co_await t5->commit()).hasError());
    auto stamp = co_await dynamic_cast<CustomTransaction&>(*t5).getVersionstamp();
    EXPECT_EQ(stamp->size(), 10u);
    auto t6 = engine->createReadWriteTransaction();
    auto v = co_await t6->get(p + "v");
    EXPECT_TRUE(v->has_value());
    if (v->has_value()) EXPECT_EQ(v->value().substr(2, 10), *stamp);
    // cancel -> kCanceled, not retryable
    (void)co_await t6->cancel();
    auto canceled = co_await t6->get(p + "v");
    EXPECT_TRUE(canceled.hasError() && canceled.error().code() == TransactionCode::kCanceled);
    EXPECT_FALSE(TransactionHelper::isRetryable(canceled.error(), true));
    // reset clears cancel
    t6->reset();
    EXPECT_FALSE((co_await t6->get(p + "v")).hasError());
    // system keyspace write -> kFailed (INVALID_ARGUMENT in the message)
    auto sys = co_await t6->set("\xff/x", "v");
    EXPECT_TRUE(sys.hasError() && sys.error().code() == TransactionCode::kFailed);
    // FUTURE_VERSION -> kFutureVersion
    auto t7 = engine->createReadWriteTransaction();
    auto rv = co_await dynamic_cast<CustomTransaction&>(*t7).getReadVersion();
    auto t8 = engine->createReadWriteTransaction();
    t8->setReadVersion(*rv + 1'000'000'000'000);
    auto fut = co_await t8->get(p + "c");
    EXPECT_TRUE(fut.hasError() && fut.error().code() == TransactionCode::kFutureVersion);
    // a write-nothing commit: -1
    auto t9 = engine->createReadWriteTransaction();
    EXPECT_FALSE((co_await t9->commit()).hasError());
    EXPECT_EQ(t9->getCommittedVersion(), -1);
  };
  blockingWait(body());
}

TEST(AdapterNetwork, UnreachableClusterIsNetworkErrorNotRetryable) {
  // A port that was free a moment ago (bind to 0, read it back, close).
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  CustomKvConfig c;
  c.set_cluster_endpoints({"ws://127.0.0.1:" + std::to_string(port)});
  auto e = CustomKvEngine::create(c);
  ASSERT_FALSE(e.hasError());
  auto txn = (*e)->createReadWriteTransaction();
  auto r = blockingWait(txn->get("k"));
  ASSERT_TRUE(r.hasError());
  EXPECT_EQ(r.error().code(), TransactionCode::kNetworkError);
  EXPECT_FALSE(TransactionHelper::isRetryable(r.error(), true));
}

// The shape of 3FS's WithTransaction + its retry strategy: run the handler, commit, and on
// an error TransactionHelper::isRetryable accepts, back off, reset and run again.
template <typename Handler>
CoTryTask<void> withTransaction(IKVEngine& engine, Handler handler, int maxRetry, std::atomic<int>& retries) {
  auto txn = engine.createReadWriteTransaction();
  std::mt19937 rng(std::random_device{}());
  for (int attempt = 0;; ++attempt) {
    auto r = co_await handler(*txn);
    if (!r.hasError()) {
      auto c = co_await txn->commit();
      if (!c.hasError()) co_return Void{};
      r = makeError(c.error());
    }
    if (!TransactionHelper::isRetryable(r.error(), false) || attempt >= maxRetry) co_return makeError(r.error());
    ++retries;
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % (1000u << std::min(attempt, 5))));
    txn->reset();
  }
}

TEST_F(AdapterLive, WithTransactionRetryLoopUnderContention) {
  auto key = prefix() + "counter";
  std::atomic<int> retries{0}, failures{0};
  auto increment = [&](IReadWriteTransaction& txn) -> CoTryTask<void> {
    auto v = co_await txn.get(key);
    CO_RETURN_ON_ERROR(v);
    int n = v->has_value() ? std::stoi(**v) : 0;
    co_return co_await txn.set(key, std::to_string(n + 1));
  };
  auto worker = [&] {
    for (int i = 0; i < 25; ++i) {
      auto r = blockingWait(withTransaction(*engine, increment, 1000, retries));
      if (r.hasError()) {
        ++failures;
        ADD_FAILURE() << r.error().describe();
      }
    }
  };
  std::vector<std::thread> ts;
  for (int i = 0; i < 8; ++i) ts.emplace_back(worker);
  for (auto& t : ts) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto check = engine->createReadonlyTransaction();
  auto v = blockingWait(check->snapshotGet(key));
  ASSERT_FALSE(v.hasError());
  EXPECT_EQ(v->value_or("?"), "200");
  EXPECT_GT(retries.load(), 0) << "8 concurrent workers on one key must have conflicted";
}

}  // namespace
}  // namespace hf3fs::kv
