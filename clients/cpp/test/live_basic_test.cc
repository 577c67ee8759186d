// basic.test.mjs: set/get/clear, snapshotGet vs get, binary keys, empty values,
// memcmp order, read-only transactions, visibility of acknowledged commits.
#include <algorithm>
#include <random>

#include "live_support.h"

namespace txkv::live {

using Basic = LiveTest;

TEST_F(Basic, SetThenGetAndSnapshotGetInANewTransaction) {
  auto p = prefix();
  std::vector<std::string> keys = {p + "foo", p + "foo1", p + "foo2"};
  Transaction tx = db->createTransaction();
  for (auto& k : keys) must(tx.set(k, "unittest.bar"));
  must(tx.commit());
  Transaction rw = db->createTransaction();
  for (auto& k : keys) EXPECT_EQ(must(rw.get(k)), "unittest.bar");
  ReadTransaction ro = db->createReadOnlyTransaction();
  for (auto& k : keys) EXPECT_EQ(must(ro.snapshotGet(k)), "unittest.bar");
  for (auto& k : keys) EXPECT_EQ(must(ro.get(k)), "unittest.bar");
  EXPECT_EQ(must(ro.get(p + "absent")), std::nullopt);
  EXPECT_EQ(must(ro.snapshotGet(p + "absent")), std::nullopt);
}

TEST_F(Basic, OldReadVersionDoesNotSeeALaterCommitANewOneDoes) {
  auto p = prefix();
  Transaction old = db->createTransaction();
  must(old.getReadVersion());
  put(*db, {{p + "foo", "v1"}});
  EXPECT_EQ(must(old.get(p + "foo")), std::nullopt);
  EXPECT_EQ(must(old.snapshotGet(p + "foo")), std::nullopt);
  Transaction fresh = db->createTransaction();
  EXPECT_EQ(must(fresh.get(p + "foo")), "v1");
}

TEST_F(Basic, ClearRemovesKeysAndCancelAfterCommitIsHarmless) {
  auto p = prefix();
  std::vector<std::string> keys = {p + "foo", p + "foo1", p + "foo2"};
  put(*db, {{keys[0], "x"}, {keys[1], "x"}, {keys[2], "x"}});
  Transaction tx = db->createTransaction();
  for (auto& k : keys) must(tx.clear(k));
  must(tx.clear(p + "never-existed"));
  must(tx.commit());
  tx.cancel();
  Transaction r = db->createTransaction();
  for (auto& k : keys) EXPECT_EQ(must(r.get(k)), std::nullopt);
}

TEST_F(Basic, OverwriteKeepsTheLatestValue) {
  auto k = prefix() + "k";
  put(*db, {{k, "one"}});
  put(*db, {{k, "two"}});
  Transaction tx = db->createTransaction();
  EXPECT_EQ(must(tx.get(k)), "two");
}

TEST_F(Basic, BinaryKeysAndValuesRoundTrip) {
  auto p = prefix();
  std::string key = p + bytes({0x00, 0x01, 0xfe, 0xff, 0x80});
  std::string val = bytes({0xff, 0x00, 0xc3, 0x28});
  put(*db, {{key, val}, {p + "h\xc3\xa9llo", "v\xc3\xa4lue"}});
  Transaction tx = db->createTransaction();
  EXPECT_EQ(hex(*must(tx.get(key))), hex(val));
  EXPECT_EQ(must(tx.get(p + "h\xc3\xa9llo")), "v\xc3\xa4lue");
}

TEST_F(Basic, EmptyValueIsDistinctFromAbsent) {
  auto k = prefix() + "empty";
  put(*db, {{k, ""}});
  Transaction tx = db->createTransaction();
  auto v = must(tx.get(k));
  ASSERT_TRUE(v.has_value()) << "an empty value must read as present";
  EXPECT_EQ(v->size(), 0u);
}

TEST_F(Basic, KeysOrderAsUnsignedBytes) {
  auto p = prefix();
  std::vector<std::vector<int>> suffixes = {{0x00}, {0x01}, {0x7f}, {0x80}, {0xc3, 0xa9}, {0xe2, 0x9c, 0x93},
                                            {0xfe}, {0xff}, {0xff, 0x00}, {0xff, 0xff}};
  std::vector<std::string> keys;
  for (auto& s : suffixes) {
    std::string k = p;
    for (int c : s) k.push_back(static_cast<char>(c));
    keys.push_back(k);
  }
  auto shuffled = keys;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937{7});
  std::vector<std::pair<std::string, std::string>> pairs;
  for (auto& k : shuffled) pairs.emplace_back(k, "v");
  put(*db, pairs);
  ReadTransaction tx = db->createReadOnlyTransaction();
  auto r = must(tx.getRange(sel(p, true), sel(p + bytes({0xff, 0xff}), true), {100}));
  EXPECT_EQ(keysOf(r.kvs), keys);
  EXPECT_FALSE(r.hasMore);
}

TEST_F(Basic, ReadOnlyTransactionServesEveryRead) {
  auto p = prefix();
  put(*db, {{p + "a", "1"}, {p + "b", "2"}});
  ReadTransaction ro = db->createReadOnlyTransaction();
  EXPECT_GT(must(ro.getReadVersion()), 0);
  EXPECT_EQ(must(ro.get(p + "a")), "1");
  EXPECT_EQ(must(ro.snapshotGet(p + "b")), "2");
  auto r1 = must(ro.getRange(sel(p, true), sel(p + "~", false)));
  auto r2 = must(ro.snapshotGetRange(sel(p, true), sel(p + "~", false)));
  EXPECT_EQ(keysOf(r1.kvs), (std::vector<std::string>{p + "a", p + "b"}));
  EXPECT_EQ(keysOf(r2.kvs), keysOf(r1.kvs));
  EXPECT_EQ(r1.kvs[1].value, "2");
}

TEST_F(Basic, AsyncCallbacksAndConcurrentReadsShareOneReadVersion) {
  auto p = prefix();
  put(*db, {{p + "a", "1"}, {p + "b", "2"}, {p + "c", "3"}});
  Transaction tx = db->createTransaction();
  std::vector<std::promise<Result<std::optional<Bytes>>>> ps(3);
  std::vector<std::string> ks = {p + "a", p + "b", p + "c"};
  for (size_t i = 0; i < 3; ++i) {
    tx.getAsync(ks[i], [&ps, i](Result<std::optional<Bytes>> r) { ps[i].set_value(std::move(r)); });
  }
  EXPECT_EQ(must(ps[0].get_future().get()), "1");
  EXPECT_EQ(must(ps[1].get_future().get()), "2");
  EXPECT_EQ(must(ps[2].get_future().get()), "3");
}

TEST_F(Basic, BlockingCallOnTheIoThreadIsRefused) {
  Transaction tx = db->createTransaction();
  std::promise<Result<std::optional<Bytes>>> inner;
  tx.getAsync(prefix() + "k", [&](Result<std::optional<Bytes>>) {
    inner.set_value(tx.get("other"));  // on the I/O thread: must not deadlock
  });
  auto r = inner.get_future().get();
  EXPECT_TRUE(failsWith(r, ErrorCode::kFailed));
}

}  // namespace txkv::live
