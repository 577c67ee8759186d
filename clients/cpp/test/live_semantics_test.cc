// Issue 10 (items 1-5, 10) through the C++ client: the same inputs as the TS SDK's
// test/integration/fdb-semantics.test.ts, against a live server.
#include "live_support.h"

namespace txkv::live {

using Semantics = LiveTest;

// item 1
TEST_F(Semantics, SetReadVersionAfterAReadFailsAndTheConcurrentWriteIsNotLost) {
  auto bal = prefix("sem") + "bal";
  put(*db, {{bal, "100"}});
  Transaction a = db->createTransaction();
  EXPECT_EQ(must(a.get(bal)), std::optional<Bytes>("100"));
  put(*db, {{bal, "50"}});
  int64_t fresh = must(db->createTransaction().getReadVersion());
  a.setReadVersion(fresh);
  Status s = a.set(bal, "110");  // the refusal fails the transaction's next call
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(hasCode(s.error(), ErrorCode::kInvalidArgument));
  EXPECT_TRUE(failsWith(a.commit(), ErrorCode::kInvalidArgument));
  EXPECT_EQ(must(db->createTransaction().get(bal)), std::optional<Bytes>("50"));

  Transaction twice = db->createTransaction();
  twice.setReadVersion(fresh);
  twice.setReadVersion(fresh);
  EXPECT_TRUE(failsWith(twice.get(bal), ErrorCode::kInvalidArgument));
  Transaction zero = db->createTransaction();
  zero.setReadVersion(0);
  EXPECT_TRUE(failsWith(zero.get(bal), ErrorCode::kInvalidArgument));
  Transaction afterGrv = db->createTransaction();
  must(afterGrv.getReadVersion());
  afterGrv.setReadVersion(fresh);
  EXPECT_TRUE(failsWith(afterGrv.getReadVersion(), ErrorCode::kInvalidArgument));
  afterGrv.reset();
  afterGrv.setReadVersion(fresh);
  EXPECT_EQ(must(afterGrv.get(bal)), std::optional<Bytes>("50"));
}

// item 2
TEST_F(Semantics, InvertedRangesFailAtTheCallEqualEndsAreEmpty) {
  Transaction tx = db->createTransaction();
  Status c = tx.addReadConflictRange("b", "a");
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(hasCode(c.error(), ErrorCode::kInvalidArgument));
  Status r = tx.clearRange("b", "a");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(hasCode(r.error(), ErrorCode::kInvalidArgument));
  must(tx.addReadConflictRange("a", "a"));
  must(tx.clearRange("a", "a"));
  auto rows = must(tx.getRange(sel("b", true), sel("a", false)));
  EXPECT_TRUE(rows.kvs.empty());
}

// item 3
TEST_F(Semantics, PendingVersionstampedValueIsUnreadableInGetsAndRanges) {
  auto p = prefix("semvs");
  put(*db, {{p + "a", "old"}, {p + "a0", "after"}});
  Transaction tx = db->createTransaction();
  must(tx.setVersionstampedValue(p + "a", std::string(10, '\0'), 0));
  EXPECT_TRUE(failsWith(tx.getRange(sel(p, true), sel(p + "b", false)), ErrorCode::kInvalidArgument));
  EXPECT_TRUE(failsWith(tx.getRange(sel(p, true), sel(p + "b", false), {0, true}), ErrorCode::kInvalidArgument));
  EXPECT_TRUE(failsWith(tx.snapshotGetRange(sel(p, true), sel(p + "b", false)), ErrorCode::kInvalidArgument));
  EXPECT_TRUE(failsWith(tx.get(p + "a"), ErrorCode::kInvalidArgument));
  EXPECT_TRUE(failsWith(tx.snapshotGet(p + "a"), ErrorCode::kInvalidArgument));
  auto r = must(tx.getRange(sel(p + "a", true), sel(p + "b", false), {1, true}));  // stops before it
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].key, p + "a0");
}

// item 4
TEST_F(Semantics, VersionstampedKeyThenClearRangeLeavesNothing) {
  auto p = prefix("semlog");
  Transaction tx = db->createTransaction();
  must(tx.setVersionstampedKey(p + std::string(10, '\0'), static_cast<int64_t>(p.size()), "v"));
  must(tx.clearRange(p, prefixEnd(p)));
  must(tx.commit());
  ReadTransaction r = db->createReadOnlyTransaction();
  EXPECT_TRUE(readAll(r, sel(p, true), sel(prefixEnd(p), false)).empty());
}

// item 5
TEST_F(Semantics, SelectorsOnAMaximumSizeKey) {
  auto p = prefix("semmax");
  std::string k = p + std::string(kMaxKeyBytes - p.size(), 'a');
  std::string k2 = p + std::string(kMaxKeyBytes - p.size() - 1, 'a') + "b";
  put(*db, {{k, "1"}, {k2, "2"}});
  Transaction tx = db->createTransaction();
  auto after = must(tx.getRange(sel(k, false), sel(prefixEnd(p), false)));
  ASSERT_EQ(after.kvs.size(), 1u);
  EXPECT_EQ(after.kvs[0].value, "2");
  auto upTo = must(tx.getRange(sel(p, true), sel(k, true)));
  ASSERT_EQ(upTo.kvs.size(), 1u);
  EXPECT_EQ(upTo.kvs[0].value, "1");
  must(tx.set(p + "done", "1"));
  must(tx.commit());  // its read conflicts end at k + 0x00, one byte over the key limit
}

// item 10
TEST_F(Semantics, AnEndpointWithoutSchemeIsInvalidArgument) {
  ConnectOptions o;
  o.endpoints = {"127.0.0.1:7070"};
  auto r = Database::connect(o);
  EXPECT_TRUE(failsWith(r, ErrorCode::kInvalidArgument));
  ConnectOptions neg = options();
  neg.transactionTimeoutMs = -5;
  EXPECT_TRUE(failsWith(Database::connect(neg), ErrorCode::kInvalidArgument));
  ConnectOptions pool = options();
  pool.connectionPoolSize = -1;
  EXPECT_TRUE(failsWith(Database::connect(pool), ErrorCode::kInvalidArgument));
}

}  // namespace txkv::live
