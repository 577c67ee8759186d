// transact.test.mjs: the retry loop.
#include <atomic>
#include <thread>

#include "live_support.h"

namespace txkv::live {

using Transact = LiveTest;

TEST_F(Transact, ReturnsTheResultAndCommits) {
  auto p = prefix();
  auto r = db->transact<int>([&](Transaction& tx) -> Result<int> {
    if (auto s = tx.set(p + "k", "v"); !s.ok()) return s.error();
    return 42;
  });
  EXPECT_EQ(must(std::move(r)), 42);
  Transaction c = db->createTransaction();
  EXPECT_EQ(must(c.get(p + "k")), "v");
}

TEST_F(Transact, EightWorkersTimesTwentyFiveIncrementsTotalExactly200) {
  auto p = prefix();
  ConnectOptions o;
  o.maxRetryCount = 1000;
  auto db2 = connectDb(o);
  put(*db2, {{p + "counter", "0"}});
  std::atomic<int> attempts{0}, failures{0};
  auto worker = [&] {
    for (int i = 0; i < 25; ++i) {
      auto r = db2->transact<Void>([&](Transaction& tx) -> Result<Void> {
        ++attempts;
        auto v = tx.get(p + "counter");
        if (!v.ok()) return v.error();
        int n = std::stoi(v->value_or("0"));
        return tx.set(p + "counter", std::to_string(n + 1));
      });
      if (!r.ok()) ++failures;
    }
  };
  std::vector<std::thread> ts;
  for (int i = 0; i < 8; ++i) ts.emplace_back(worker);
  for (auto& t : ts) t.join();
  EXPECT_EQ(failures.load(), 0);
  Transaction c = db->createTransaction();
  EXPECT_EQ(must(c.get(p + "counter")), "200");
  EXPECT_GE(attempts.load(), 200);
}

TEST_F(Transact, GivesUpAfterMaxRetryCount) {
  auto p = prefix();
  ConnectOptions o;
  o.maxRetryCount = 2;
  auto db2 = connectDb(o);
  int calls = 0;
  auto r = db2->transact<Void>([&](Transaction& tx) -> Result<Void> {
    ++calls;
    (void)tx.get(p + "k");
    writeFrom(*db, p + "k", std::to_string(calls));
    return tx.set(p + "k", "mine");
  });
  EXPECT_TRUE(failsWith(r, ErrorCode::kConflict));
  EXPECT_GE(calls, 2);
  EXPECT_LE(calls, 3);
}

// A leader failover answers UNAVAILABLE for 2-2.5 s: the default 10 retries outlast 3 s of it.
TEST_F(Transact, OutlastsThreeSecondsOfUnavailable) {
  auto p = prefix();
  auto t0 = std::chrono::steady_clock::now();
  int calls = 0;
  auto r = db->transact<Void>([&](Transaction& tx) -> Result<Void> {
    ++calls;
    if (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3)) {
      return TxnError(ErrorCode::kUnavailable, "no leader (simulated election)");
    }
    return tx.set(p + "after-election", "ok");
  });
  must(std::move(r));
  EXPECT_LE(calls, 11);
}

TEST_F(Transact, DoesNotRetryNonRetryableErrors) {
  auto p = prefix();
  int calls = 0;
  auto r = db->transact<Void>([&](Transaction& tx) -> Result<Void> {
    ++calls;
    return tx.set(p + "big", std::string(100'001, 'x'));
  });
  EXPECT_TRUE(failsWith(r, ErrorCode::kValueTooLarge));
  EXPECT_EQ(calls, 1);
}

}  // namespace txkv::live
