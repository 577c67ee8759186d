// versions.test.mjs: committed versions, read versions, setReadVersion, FUTURE_VERSION,
// cancel, reset, transaction timeout.
#include <thread>

#include "live_support.h"

namespace txkv::live {

using Versions = LiveTest;

TEST_F(Versions, CommittedVersionsStrictlyIncrease) {
  auto p = prefix();
  int64_t prev = -1;
  for (int i = 0; i < 10; ++i) {
    Transaction tx = db->createTransaction();
    must(tx.set(p + std::to_string(i % 3), std::to_string(i)));
    must(tx.commit());
    EXPECT_GT(tx.getCommittedVersion(), prev);
    prev = tx.getCommittedVersion();
  }
}

TEST_F(Versions, WriteNothingTransactionsReportMinusOne) {
  auto p = prefix();
  Transaction empty = db->createTransaction();
  must(empty.commit());
  EXPECT_EQ(empty.getCommittedVersion(), -1);
  Transaction readsOnly = db->createTransaction();
  must(readsOnly.get(p + "k"));
  must(readsOnly.getRange(sel(p, true), sel(p + "~", false)));
  must(readsOnly.commit());
  EXPECT_EQ(readsOnly.getCommittedVersion(), -1);
  Transaction rw = db->createTransaction();
  must(rw.get(p + "k"));
  put(*db, {{p + "k", "x"}});
  must(rw.commit());
  EXPECT_EQ(rw.getCommittedVersion(), -1);
}

TEST_F(Versions, ReadVersionCoversEveryAcknowledgedCommit) {
  auto p = prefix();
  for (int i = 0; i < 5; ++i) {
    Transaction w = db->createTransaction();
    must(w.set(p + "k", std::to_string(i)));
    must(w.commit());
    Transaction r = db->createTransaction();
    EXPECT_GE(must(r.getReadVersion()), w.getCommittedVersion());
    EXPECT_EQ(must(r.get(p + "k")), std::to_string(i));
  }
  auto db2 = connectDb();
  Transaction w = db->createTransaction();
  must(w.set(p + "other-conn", "seen"));
  must(w.commit());
  Transaction r2 = db2->createTransaction();
  EXPECT_EQ(must(r2.get(p + "other-conn")), "seen");
}

TEST_F(Versions, SetReadVersionReadsOldValues) {
  auto p = prefix();
  int64_t v1 = put(*db, {{p + "k", "one"}, {p + "gone", "here"}});
  Transaction w = db->createTransaction();
  must(w.set(p + "k", "two"));
  must(w.clear(p + "gone"));
  must(w.set(p + "new", "born"));
  must(w.commit());
  int64_t v2 = w.getCommittedVersion();
  ASSERT_GT(v2, v1);
  ReadTransaction old = db->createReadOnlyTransaction();
  old.setReadVersion(v1);
  EXPECT_EQ(must(old.getReadVersion()), v1);
  EXPECT_EQ(must(old.get(p + "k")), "one");
  EXPECT_EQ(must(old.get(p + "gone")), "here");
  EXPECT_EQ(must(old.get(p + "new")), std::nullopt);
  auto r = must(old.getRange(sel(p, true), sel(p + "~", false)));
  EXPECT_EQ(keysOf(r.kvs), (std::vector<std::string>{p + "gone", p + "k"}));
  Transaction now = db->createTransaction();
  now.setReadVersion(v2);
  EXPECT_EQ(must(now.get(p + "k")), "two");
  EXPECT_EQ(must(now.get(p + "gone")), std::nullopt);
}

TEST_F(Versions, AReadVersionAheadOfTheServerFailsWithFutureVersion) {
  Transaction tx = db->createTransaction();
  int64_t rv = must(tx.getReadVersion());
  Transaction t2 = db->createTransaction();
  t2.setReadVersion(rv + 1'000'000'000'000);
  EXPECT_TRUE(failsWith(t2.get(prefix() + "k"), ErrorCode::kFutureVersion));
}

TEST_F(Versions, CancelFailsEveryFurtherCallAndWritesNothing) {
  auto p = prefix();
  Transaction tx = db->createTransaction();
  must(tx.set(p + "k", "v"));
  tx.cancel();
  EXPECT_TRUE(failsWith(tx.get(p + "k"), ErrorCode::kCanceled));
  EXPECT_TRUE(failsWith(tx.snapshotGet(p + "k"), ErrorCode::kCanceled));
  EXPECT_TRUE(failsWith(tx.getRange(sel(p, true), sel(p + "~", false)), ErrorCode::kCanceled));
  EXPECT_TRUE(failsWith(tx.snapshotGetRange(sel(p, true), sel(p + "~", false)), ErrorCode::kCanceled));
  EXPECT_TRUE(failsWith(tx.getReadVersion(), ErrorCode::kCanceled));
  EXPECT_TRUE(failsWith(tx.set(p + "k2", "v"), ErrorCode::kCanceled));
  EXPECT_TRUE(failsWith(tx.clear(p + "k"), ErrorCode::kCanceled));
  EXPECT_TRUE(failsWith(tx.clearRange(p + "a", p + "b"), ErrorCode::kCanceled));
  EXPECT_TRUE(failsWith(tx.addReadConflictKey(p + "k"), ErrorCode::kCanceled));
  EXPECT_TRUE(failsWith(tx.addReadConflictRange(p + "a", p + "b"), ErrorCode::kCanceled));
  EXPECT_TRUE(failsWith(tx.setVersionstampedValue(p + "vs", std::string(10, '\0'), 0), ErrorCode::kCanceled));
  EXPECT_TRUE(failsWith(tx.commit(), ErrorCode::kCanceled));
  Transaction r = db->createTransaction();
  EXPECT_EQ(must(r.get(p + "k")), std::nullopt);
  ReadTransaction ro = db->createReadOnlyTransaction();
  ro.cancel();
  EXPECT_TRUE(failsWith(ro.get(p + "k"), ErrorCode::kCanceled));
}

TEST_F(Versions, ResetGivesAFreshTransaction) {
  auto p = prefix();
  Transaction tx = db->createTransaction();
  int64_t rv1 = must(tx.getReadVersion());
  must(tx.set(p + "dropped", "x"));
  put(*db, {{p + "later", "y"}});
  tx.cancel();
  tx.reset();
  EXPECT_GT(must(tx.getReadVersion()), rv1);
  EXPECT_EQ(must(tx.get(p + "later")), "y");
  EXPECT_EQ(must(tx.get(p + "dropped")), std::nullopt);
  must(tx.commit());
  EXPECT_EQ(tx.getCommittedVersion(), -1);
  tx.reset();
  must(tx.set(p + "after-reset", "z"));
  must(tx.commit());
  EXPECT_GT(tx.getCommittedVersion(), 0);
  Transaction r = db->createTransaction();
  EXPECT_EQ(must(r.get(p + "after-reset")), "z");
}

TEST_F(Versions, ATransactionOlderThanItsTimeoutFailsWithTimeout) {
  ConnectOptions o;
  o.transactionTimeoutMs = 300;
  auto db2 = connectDb(o);
  Transaction tx = db2->createTransaction();
  must(tx.get(prefix() + "k"));
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_TRUE(failsWith(tx.get(prefix() + "k"), ErrorCode::kTimeout));
  tx.reset();
  must(tx.get(prefix() + "k"));
}

}  // namespace txkv::live

namespace txkv::live {

// Spec "Read versions": getReadVersion() covers every commit acknowledged before the call.
// This found a server bug (acknowledging a commit while a lower version was still in
// flight); the server now acknowledges only once every lower version has finished.
TEST_F(Versions, ReadVersionCoversAcknowledgedCommitsUnderContention) {
  auto p = prefix();
  auto other = connectDb();  // contention on its own connections
  std::atomic<bool> stop{false};
  auto contend = [&] {
    while (!stop) {
      // Read-modify-write of one key with a short random pause, as 3FS's retry loop does.
      Transaction t = other->createTransaction();
      auto v = t.get(p + "hot");
      (void)t.set(p + "hot", v.ok() && *v ? **v + "x" : "x");
      std::this_thread::sleep_for(std::chrono::microseconds(std::rand() % 2000));
      (void)t.commit();
    }
  };
  std::vector<std::thread> ts;
  for (int i = 0; i < 8; ++i) ts.emplace_back(contend);
  int stale = 0;
  for (int i = 0; i < 300; ++i) {
    Transaction w = db->createTransaction();
    must(w.set(p + "k" + std::to_string(i), "v"));
    must(w.commit());
    Transaction r = db->createTransaction();
    int64_t rv = must(r.getReadVersion());
    if (rv < w.getCommittedVersion()) ++stale;
  }
  stop = true;
  for (auto& t : ts) t.join();
  EXPECT_EQ(stale, 0) << "read versions below an already acknowledged commit version";
}

}  // namespace txkv::live
