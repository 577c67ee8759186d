// ryw.test.mjs: buffered set/clear/clearRange merged into get and getRange.
#include "live_support.h"

namespace txkv::live {

class Ryw : public LiveTest {
 protected:
  using V = std::vector<std::string>;
  static KeySelector b(const std::string& p) { return sel(p, true); }
  static KeySelector e(const std::string& p) { return sel(p + "~", false); }
};

TEST_F(Ryw, GetAndSnapshotGetSeeOwnSetAndClear) {
  auto p = prefix();
  put(*db, {{p + "a", "old"}, {p + "b", "old"}});
  Transaction tx = db->createTransaction();
  must(tx.set(p + "a", "new"));
  must(tx.clear(p + "b"));
  must(tx.set(p + "c", "fresh"));
  EXPECT_EQ(must(tx.get(p + "a")), "new");
  EXPECT_EQ(must(tx.snapshotGet(p + "a")), "new");
  EXPECT_EQ(must(tx.get(p + "b")), std::nullopt);
  EXPECT_EQ(must(tx.snapshotGet(p + "b")), std::nullopt);
  EXPECT_EQ(must(tx.get(p + "c")), "fresh");
  Transaction other = db->createTransaction();
  EXPECT_EQ(must(other.get(p + "a")), "old");
  EXPECT_EQ(must(other.get(p + "c")), std::nullopt);
  must(tx.commit());
  Transaction after = db->createTransaction();
  EXPECT_EQ(must(after.get(p + "a")), "new");
  EXPECT_EQ(must(after.get(p + "b")), std::nullopt);
  EXPECT_EQ(must(after.get(p + "c")), "fresh");
}

TEST_F(Ryw, GetRangeMergesInKeyOrderWithLimitsReverseAndPaging) {
  auto p = prefix();
  put(*db, {{p + "k1", "s1"}, {p + "k3", "s3"}, {p + "k5", "s5"}, {p + "k7", "s7"}});
  Transaction tx = db->createTransaction();
  must(tx.set(p + "k2", "t2"));
  must(tx.clear(p + "k3"));
  must(tx.set(p + "k5", "t5"));
  must(tx.set(p + "k0", "t0"));
  must(tx.set(p + "k9", "t9"));
  V all = {p + "k0", p + "k1", p + "k2", p + "k5", p + "k7", p + "k9"};
  for (bool snapshot : {false, true}) {
    auto r = must(snapshot ? tx.snapshotGetRange(b(p), e(p)) : tx.getRange(b(p), e(p)));
    EXPECT_EQ(keysOf(r.kvs), all);
    V values;
    for (auto& kv : r.kvs) values.push_back(kv.value);
    EXPECT_EQ(values, (V{"t0", "s1", "t2", "t5", "s7", "t9"}));
    EXPECT_FALSE(r.hasMore);
  }
  auto r = must(tx.getRange(b(p), e(p), {3}));
  EXPECT_EQ(keysOf(r.kvs), (V{p + "k0", p + "k1", p + "k2"}));
  EXPECT_TRUE(r.hasMore);
  EXPECT_EQ(must(tx.getRange(b(p), e(p), {6})).kvs.size(), 6u);
  r = must(tx.getRange(b(p), e(p), {2, true}));
  EXPECT_EQ(keysOf(r.kvs), (V{p + "k9", p + "k7"}));
  EXPECT_TRUE(r.hasMore);
  V rev(all.rbegin(), all.rend());
  for (int limit : {1, 2, 4}) {
    EXPECT_EQ(keysOf(readAll(tx, b(p), e(p), limit)), all) << limit;
    EXPECT_EQ(keysOf(readAll(tx, b(p), e(p), limit, true)), rev) << limit;
  }
}

TEST_F(Ryw, BufferedClearsDoNotLeaveHolesInALimitedPage) {
  auto p = prefix();
  V keys;
  std::vector<std::pair<std::string, std::string>> pairs;
  for (int i = 0; i < 10; ++i) {
    keys.push_back(p + "k" + std::to_string(i));
    pairs.emplace_back(keys.back(), "v");
  }
  put(*db, pairs);
  Transaction tx = db->createTransaction();
  for (int i = 0; i < 6; ++i) must(tx.clear(keys[i]));
  auto r = must(tx.getRange(b(p), e(p), {3}));
  EXPECT_EQ(keysOf(r.kvs), (V{keys[6], keys[7], keys[8]}));
  EXPECT_TRUE(r.hasMore);
  auto r2 = must(tx.getRange(b(p), e(p), {2, true}));
  EXPECT_EQ(keysOf(r2.kvs), (V{keys[9], keys[8]}));
  EXPECT_EQ(keysOf(readAll(tx, b(p), e(p), 2)), V(keys.begin() + 6, keys.end()));
}

TEST_F(Ryw, ClearRangeIsMergedAndLaterSetsInsideAreVisible) {
  auto p = prefix();
  std::vector<std::pair<std::string, std::string>> pairs;
  for (int i = 1; i <= 6; ++i) pairs.emplace_back(p + "k" + std::to_string(i), "v");
  put(*db, pairs);
  Transaction tx = db->createTransaction();
  must(tx.set(p + "k25", "before-clear"));
  must(tx.clearRange(p + "k2", p + "k5"));
  EXPECT_EQ(must(tx.get(p + "k3")), std::nullopt);
  EXPECT_EQ(must(tx.get(p + "k25")), std::nullopt);
  EXPECT_EQ(must(tx.get(p + "k5")), "v");
  EXPECT_EQ(keysOf(must(tx.getRange(b(p), e(p))).kvs), (V{p + "k1", p + "k5", p + "k6"}));
  must(tx.set(p + "k3", "again"));
  auto r = must(tx.getRange(b(p), e(p), {2}));
  EXPECT_EQ(keysOf(r.kvs), (V{p + "k1", p + "k3"}));
  EXPECT_TRUE(r.hasMore);
  r = must(tx.snapshotGetRange(b(p), e(p), {0, true}));
  EXPECT_EQ(keysOf(r.kvs), (V{p + "k6", p + "k5", p + "k3", p + "k1"}));
  must(tx.commit());
  Transaction t2 = db->createTransaction();
  auto after = must(t2.getRange(b(p), e(p)));
  EXPECT_EQ(keysOf(after.kvs), (V{p + "k1", p + "k3", p + "k5", p + "k6"}));
  EXPECT_EQ(after.kvs[1].value, "again");
}

TEST_F(Ryw, AnotherTransactionsBufferIsInvisible) {
  auto p = prefix();
  put(*db, {{p + "a", "1"}});
  Transaction w = db->createTransaction();
  must(w.set(p + "b", "2"));
  must(w.clear(p + "a"));
  ReadTransaction ro = db->createReadOnlyTransaction();
  EXPECT_EQ(keysOf(must(ro.getRange(b(p), e(p))).kvs), V{p + "a"});
  w.cancel();
}

}  // namespace txkv::live
