// Read-your-writes buffer and merge, without a server (MemTransaction::getRangeImpl semantics).
#include <gtest/gtest.h>

#include "write_buffer.h"

namespace txkv::detail {
namespace {

std::vector<std::string> keysOf(const std::vector<KeyValue>& kvs) {
  std::vector<std::string> out;
  for (const auto& kv : kvs) out.push_back(kv.key);
  return out;
}
std::vector<KeyValue> rows(std::initializer_list<const char*> keys) {
  std::vector<KeyValue> out;
  for (auto k : keys) out.push_back({k, std::string("s") + k});
  return out;
}

TEST(WriteBuffer, LookupSeesSetsClearsAndClearRanges) {
  WriteBuffer w;
  w.set("a", "1");
  w.clear("b");
  w.clearRange("k2", "k5");
  EXPECT_EQ(w.lookup("a"), std::optional<std::optional<Bytes>>(std::optional<Bytes>("1")));
  EXPECT_EQ(w.lookup("b"), std::optional<std::optional<Bytes>>(std::optional<Bytes>()));
  EXPECT_EQ(w.lookup("k3"), std::optional<std::optional<Bytes>>(std::optional<Bytes>()));
  EXPECT_EQ(w.lookup("k5"), std::nullopt) << "the end of clearRange is exclusive";
  EXPECT_EQ(w.lookup("c"), std::nullopt);
  w.set("k3", "again");
  EXPECT_EQ(w.lookup("k3"), std::optional<std::optional<Bytes>>(std::optional<Bytes>("again")));
}

TEST(WriteBuffer, ClearRangeDropsEarlierSetsAndMergesRanges) {
  WriteBuffer w;
  w.set("k25", "x");
  w.clearRange("k2", "k3");
  w.clearRange("k3", "k4");  // touching: one range for reads
  w.clearRange("a", "b");
  w.clearRange("a0", "a5");  // inside
  EXPECT_EQ(w.lookup("k35"), std::optional<std::optional<Bytes>>(std::optional<Bytes>()));
  auto m = w.mutations();  // sent in call order; the set inside a later clearRange is dropped
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0], (proto::Mutation{proto::MutationType::kClearRange, "k2", "k3", 0}));
  EXPECT_EQ(m[1], (proto::Mutation{proto::MutationType::kClearRange, "k3", "k4", 0}));
  EXPECT_EQ(m[2], (proto::Mutation{proto::MutationType::kClearRange, "a", "b", 0}));
  EXPECT_EQ(m[3], (proto::Mutation{proto::MutationType::kClearRange, "a0", "a5", 0}));
}

// issue 10 item 4: mutations take effect in the order they were called
TEST(WriteBuffer, MutationsInCallOrderVersionstampedIncluded) {
  WriteBuffer w;
  std::string vsk = "log/" + std::string(10, '\0');
  w.addVersionstamped({proto::MutationType::kSetVersionstampedKey, vsk, "v", 4});
  w.clearRange("log/", "log0");
  w.addVersionstamped({proto::MutationType::kSetVersionstampedValue, "v", std::string(10, '\0'), 0});
  w.set("b", "2");
  w.clear("a");
  auto m = w.mutations();
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m[0].type, proto::MutationType::kSetVersionstampedKey);
  EXPECT_EQ(m[1], (proto::Mutation{proto::MutationType::kClearRange, "log/", "log0", 0}));
  EXPECT_EQ(m[2].type, proto::MutationType::kSetVersionstampedValue);
  EXPECT_EQ(m[3], (proto::Mutation{proto::MutationType::kSet, "b", "2", 0}));
  EXPECT_EQ(m[4], (proto::Mutation{proto::MutationType::kClear, "a", "", 0}));
  EXPECT_TRUE(w.unreadable("v"));
  w.set("v", "plain");  // a later set of the same key replaces the versionstamped value
  EXPECT_FALSE(w.unreadable("v"));
  m = w.mutations();
  for (const auto& mu : m) EXPECT_NE(mu.type, proto::MutationType::kSetVersionstampedValue);
  EXPECT_EQ(m.back(), (proto::Mutation{proto::MutationType::kSet, "v", "plain", 0}));
}

// issue 10 item 3
TEST(WriteBuffer, PendingVersionstampedValueIsUnreadableAndHidesTheServerRow) {
  WriteBuffer w;
  w.addVersionstamped({proto::MutationType::kSetVersionstampedValue, "a", std::string(10, '\0'), 0});
  EXPECT_TRUE(w.unreadable("a"));
  EXPECT_TRUE(w.shadows("a"));
  EXPECT_EQ(w.firstUnreadableIn("", "b"), std::optional<Bytes>("a"));
  EXPECT_EQ(w.firstUnreadableIn("a0", "b"), std::nullopt);
  w.clearRange("a", "b");
  EXPECT_FALSE(w.unreadable("a"));
}

// ryw.test.mjs "getRange merges buffered sets and clears in key order"
TEST(MergeCovered, MergesInKeyOrderWithLimitAndReverse) {
  WriteBuffer w;
  w.set("k2", "t2");
  w.clear("k3");
  w.set("k5", "t5");
  w.set("k0", "t0");
  w.set("k9", "t9");
  auto server = rows({"k1", "k3", "k5", "k7"});
  auto all = mergeCovered(w, server, true, "k", "l", 1000, false);
  EXPECT_EQ(keysOf(all.kvs), (std::vector<std::string>{"k0", "k1", "k2", "k5", "k7", "k9"}));
  EXPECT_EQ(all.kvs[3].value, "t5");
  EXPECT_FALSE(all.moreInCovered);
  auto cut = mergeCovered(w, server, true, "k", "l", 3, false);
  EXPECT_EQ(keysOf(cut.kvs), (std::vector<std::string>{"k0", "k1", "k2"}));
  EXPECT_TRUE(cut.moreInCovered);
  auto exact = mergeCovered(w, server, true, "k", "l", 6, false);
  EXPECT_EQ(exact.kvs.size(), 6u);
  EXPECT_FALSE(exact.moreInCovered);
  std::vector<KeyValue> rev(server.rbegin(), server.rend());
  auto r = mergeCovered(w, rev, true, "k", "l", 2, true);
  EXPECT_EQ(keysOf(r.kvs), (std::vector<std::string>{"k9", "k7"}));
  EXPECT_TRUE(r.moreInCovered);
}

TEST(MergeCovered, OnlyTheCoveredRegionIsMergedWhileTheServerHasMore) {
  WriteBuffer w;
  w.set("k4", "t4");  // beyond the covered region [k, k2\0): must wait for the next page
  w.set("k15", "t15");
  auto server = rows({"k1", "k2"});
  auto s = mergeCovered(w, server, false, "k", "l", 10, false);
  EXPECT_EQ(keysOf(s.kvs), (std::vector<std::string>{"k1", "k15", "k2"}));
  std::vector<KeyValue> rev = rows({"k9", "k8"});
  w.set("k85", "x");
  w.set("k1", "y");
  auto r = mergeCovered(w, rev, false, "k", "l", 10, true);
  EXPECT_EQ(keysOf(r.kvs), (std::vector<std::string>{"k9", "k85", "k8"}));
}

TEST(MergeCovered, ClearsDoNotLeaveHolesInALimitedPage) {
  WriteBuffer w;
  for (int i = 0; i < 6; ++i) w.clear("k" + std::to_string(i));
  auto server = rows({"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"});
  auto s = mergeCovered(w, server, true, "k", "l", 3, false);
  EXPECT_EQ(keysOf(s.kvs), (std::vector<std::string>{"k6", "k7", "k8"}));
  EXPECT_TRUE(s.moreInCovered);
  // Only the first three server rows arrived (limit 3, more on the server): nothing to emit yet.
  auto partial = mergeCovered(w, rows({"k0", "k1", "k2"}), false, "k", "l", 3, false);
  EXPECT_TRUE(partial.kvs.empty());
}

TEST(MergeCovered, ClearRangeThenSetInside) {
  WriteBuffer w;
  w.set("k25", "before-clear");
  w.clearRange("k2", "k5");
  w.set("k3", "again");
  auto server = rows({"k1", "k2", "k3", "k4", "k5", "k6"});
  auto s = mergeCovered(w, server, true, "k", "l", 1000, false);
  EXPECT_EQ(keysOf(s.kvs), (std::vector<std::string>{"k1", "k3", "k5", "k6"}));
  EXPECT_EQ(s.kvs[1].value, "again");
}

TEST(RangeReadConflict, WholeRangeOrUpToTheLastReturnedRow) {
  auto kvs = rows({"k1", "k2"});
  EXPECT_EQ(rangeReadConflict("k1", std::string("k5\0", 3), kvs, false, false), (KeyRange{"k1", std::string("k5\0", 3)}));
  EXPECT_EQ(rangeReadConflict("k1", "k6", kvs, true, false), (KeyRange{"k1", std::string("k2\0", 3)}));
  auto rev = rows({"k5", "k4"});
  EXPECT_EQ(rangeReadConflict("k1", "k6", rev, true, true), (KeyRange{"k4", "k6"}));
  EXPECT_EQ(rangeReadConflict("b", "a", {}, false, false), std::nullopt);
}

TEST(Keys, SelectorsToBoundsAndPrefixEnd) {
  EXPECT_EQ(beginBound({"a", true}), "a");
  EXPECT_EQ(beginBound({"a", false}), std::string("a\0", 2));
  EXPECT_EQ(endBound({"z", false}), "z");
  EXPECT_EQ(endBound({"z", true}), std::string("z\0", 2));
  EXPECT_EQ(prefixEnd("ab"), "ac");
  EXPECT_EQ(prefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(prefixEnd(std::string("\xff\xff", 2)), "");
}

}  // namespace
}  // namespace txkv::detail
