// range.test.mjs: selectors, limit/hasMore, reverse, default page, paging.
#include "live_support.h"

namespace txkv::live {

class Range : public LiveTest {
 protected:
  std::string p, foo, foo1, foo2;
  void SetUp() override {
    LiveTest::SetUp();
    if (IsSkipped()) return;
    p = prefix();
    foo = p + "unittest.foo";
    foo1 = p + "unittest.foo1";
    foo2 = p + "unittest.foo2";
    put(*db, {{foo, "bar"}, {foo1, "bar"}, {foo2, "bar"}});
  }
  std::vector<std::string> q(const std::string& bk, bool bi, const std::string& ek, bool ei, RangeOptions o = {},
                             bool snapshot = false) {
    Transaction tx = db->createTransaction();
    auto r = must(snapshot ? tx.snapshotGetRange(sel(bk, bi), sel(ek, ei), o) : tx.getRange(sel(bk, bi), sel(ek, ei), o));
    lastHasMore = r.hasMore;
    return keysOf(r.kvs);
  }
  bool lastHasMore = false;
  using V = std::vector<std::string>;
};

TEST_F(Range, BothModesInclusiveExclusiveAndLimit) {
  for (bool snapshot : {true, false}) {
    EXPECT_EQ(q(foo, true, foo, true, {100}, snapshot), V{foo});
    EXPECT_FALSE(lastHasMore);
    EXPECT_EQ(q(foo, false, foo2, false, {100}, snapshot), V{foo1});
    EXPECT_FALSE(lastHasMore);
    EXPECT_EQ(q(foo, true, foo2, true, {2}, snapshot), (V{foo, foo1}));
    EXPECT_TRUE(lastHasMore);
  }
}

TEST_F(Range, SelectorCombinations) {
  EXPECT_EQ(q(foo, false, foo2, true), (V{foo1, foo2}));
  EXPECT_EQ(q(foo, true, foo2, false), (V{foo, foo1}));
  EXPECT_EQ(q(foo, true, foo2, true), (V{foo, foo1, foo2}));
  EXPECT_EQ(q(foo, false, foo, true), V{});
  EXPECT_EQ(q(foo, true, foo, false), V{});
  EXPECT_EQ(q(foo1, false, foo1, false), V{});
  EXPECT_EQ(q(p, true, p + "~", false), (V{foo, foo1, foo2}));
  EXPECT_EQ(q(p + "unittest.fo", false, p + "unittest.foo1", true), (V{foo, foo1}));
  std::string fooNul = foo + std::string(1, '\0');
  put(*db, {{fooNul, "z"}});
  EXPECT_EQ(q(foo, false, foo1, false), V{fooNul});
}

TEST_F(Range, ReverseReturnsTheSameRowsBackwards) {
  EXPECT_EQ(q(foo, true, foo2, true, {0, true}), (V{foo2, foo1, foo}));
  EXPECT_FALSE(lastHasMore);
  EXPECT_EQ(q(foo, true, foo2, true, {2, true}), (V{foo2, foo1}));
  EXPECT_TRUE(lastHasMore);
  EXPECT_EQ(q(foo, false, foo2, false, {5, true}, true), V{foo1});
  EXPECT_FALSE(lastHasMore);
}

TEST_F(Range, DefaultPageAndPagingVisitEveryKeyOnce) {
  auto pp = prefix();
  V keys;
  std::vector<std::pair<std::string, std::string>> pairs;
  for (int i = 0; i < 30; ++i) {
    char buf[8];
    snprintf(buf, sizeof buf, "%03d", i);
    keys.push_back(pp + buf);
    pairs.emplace_back(keys.back(), "v" + std::to_string(i));
  }
  put(*db, pairs);
  Transaction tx = db->createTransaction();
  auto b = sel(pp, true), e = sel(pp + "~", false);
  auto r0 = must(tx.getRange(b, e));
  EXPECT_EQ(r0.kvs.size(), 30u);
  EXPECT_FALSE(r0.hasMore);
  EXPECT_EQ(r0.kvs[3].value, "v3");
  for (int limit : {1, 7, 10, 29, 30, 31}) {
    for (bool reverse : {false, true}) {
      auto all = readAll(tx, b, e, limit, reverse);
      V want = keys;
      if (reverse) std::reverse(want.begin(), want.end());
      EXPECT_EQ(keysOf(all), want) << "limit " << limit << " reverse " << reverse;
    }
    auto r = must(tx.getRange(b, e, {limit}));
    EXPECT_EQ(r.kvs.size(), static_cast<size_t>(std::min(limit, 30)));
    if (limit < 30) EXPECT_TRUE(r.hasMore) << limit;
  }
}

}  // namespace txkv::live

namespace txkv::live {

// limit <= 0: the default page of 1000 rows (docs/protocol.md), hasMore when cut. The client
// sends the 1000 explicitly, so this checks the client side of the contract.
TEST_F(Range, DefaultPageIsAThousandRows) {
  auto pp = prefix("page");
  Transaction w = db->createTransaction();
  for (int i = 0; i < 1001; ++i) {
    char buf[8];
    snprintf(buf, sizeof buf, "%04d", i);
    must(w.set(pp + buf, "v"));
  }
  must(w.commit());
  Transaction tx = db->createTransaction();
  auto r = must(tx.snapshotGetRange(sel(pp, true), sel(pp + "~", false)));
  EXPECT_EQ(r.kvs.size(), 1000u);
  EXPECT_TRUE(r.hasMore);
  auto rest = must(tx.snapshotGetRange(sel(r.kvs.back().key, false), sel(pp + "~", false), {0}));
  EXPECT_EQ(rest.kvs.size(), 1u);
  EXPECT_FALSE(rest.hasMore);
}

}  // namespace txkv::live
