// versionstamp.test.mjs: versionstamped keys and values, invalid offsets, metadataVersion.
#include <random>

#include "live_support.h"

namespace txkv::live {

using Versionstamps = LiveTest;

int64_t versionOfStamp(const std::string& s) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(s[static_cast<size_t>(i)]);
  return static_cast<int64_t>(v);
}

TEST_F(Versionstamps, HundredCommitsGiveHundredOrderedUniqueKeys) {
  auto p = prefix("vsk");
  std::string tmpl = p + std::string(10, '\0');
  std::vector<std::string> stamps;
  for (int i = 0; i < 100; ++i) {
    Transaction tx = db->createTransaction();
    must(tx.setVersionstampedKey(tmpl, static_cast<int64_t>(p.size()), std::to_string(i)));
    must(tx.commit());
    std::string stamp = must(tx.getVersionstamp());
    ASSERT_EQ(stamp.size(), 10u);
    EXPECT_EQ(versionOfStamp(stamp), tx.getCommittedVersion());
    stamps.push_back(stamp);
  }
  ReadTransaction tx = db->createReadOnlyTransaction();
  auto r = must(tx.getRange(sel(p, true), sel(prefixEnd(p), false), {120}));
  ASSERT_EQ(r.kvs.size(), 100u);
  EXPECT_FALSE(r.hasMore);
  for (size_t i = 0; i < 100; ++i) {
    EXPECT_EQ(r.kvs[i].key.size(), p.size() + 10);
    EXPECT_EQ(r.kvs[i].key.substr(0, p.size()), p);
    EXPECT_EQ(r.kvs[i].value, std::to_string(i)) << "keys sort in commit order";
    EXPECT_EQ(hex(r.kvs[i].key.substr(p.size())), hex(stamps[i]));
    if (i > 0) EXPECT_LT(stamps[i - 1], stamps[i]);
  }
}

TEST_F(Versionstamps, ValueAtRandomOffsetsReplacesOnlyTenBytes) {
  auto key = prefix("vsv") + "value";
  std::string buffer(1024, 'a');
  std::string prev(10, '\0');
  std::vector<int64_t> offsets = {0, 1024 - 10};
  std::mt19937 rng(11);
  for (int i = 0; i < 38; ++i) offsets.push_back(rng() % (1024 - 10 + 1));
  for (int64_t off : offsets) {
    Transaction tx = db->createTransaction();
    must(tx.setVersionstampedValue(key, buffer, off));
    must(tx.commit());
    ReadTransaction r = db->createReadOnlyTransaction();
    auto v = must(r.get(key));
    ASSERT_TRUE(v.has_value());
    ASSERT_EQ(v->size(), 1024u);
    auto o = static_cast<size_t>(off);
    EXPECT_EQ(v->substr(0, o), buffer.substr(0, o));
    EXPECT_EQ(v->substr(o + 10), buffer.substr(o + 10));
    std::string stamp = v->substr(o, 10);
    EXPECT_GT(stamp, prev);
    EXPECT_EQ(versionOfStamp(stamp), tx.getCommittedVersion());
    EXPECT_EQ(hex(stamp), hex(must(tx.getVersionstamp())));
    prev = stamp;
  }
}

TEST_F(Versionstamps, InvalidOffsetsFailWithInvalidArgument) {
  auto p = prefix("vsbad");
  auto n = static_cast<int64_t>(p.size());
  struct Case {
    const char* name;
    std::function<Status(Transaction&)> fn;
  };
  std::vector<Case> cases = {
      {"key offset+10 > length", [&](Transaction& tx) { return tx.setVersionstampedKey(p + std::string(10, '\0'), n + 1, "v"); }},
      {"key shorter than 10", [&](Transaction& tx) { return tx.setVersionstampedKey("short", 0, "v"); }},
      {"key negative offset", [&](Transaction& tx) { return tx.setVersionstampedKey(p + std::string(10, '\0'), -1, "v"); }},
      {"value offset+10 > length", [&](Transaction& tx) { return tx.setVersionstampedValue(p + "k", std::string(12, '\0'), 3); }},
      {"value of 9 bytes", [&](Transaction& tx) { return tx.setVersionstampedValue(p + "k", std::string(9, '\0'), 0); }},
      {"value negative offset", [&](Transaction& tx) { return tx.setVersionstampedValue(p + "k", std::string(20, '\0'), -1); }},
  };
  for (auto& c : cases) {
    Transaction tx = db->createTransaction();
    EXPECT_TRUE(failsAtCallOrCommit(tx, c.fn(tx), ErrorCode::kInvalidArgument)) << c.name;
  }
  Transaction check = db->createTransaction();
  EXPECT_EQ(must(check.getRange(sel(p, true), sel(prefixEnd(p), false))).kvs.size(), 0u);
  Transaction tx = db->createTransaction();
  must(tx.setVersionstampedKey(p + "edge" + std::string(10, '\0'), n + 4, "k-edge"));
  must(tx.setVersionstampedValue(p + "v-edge", std::string(10, '\1'), 0));
  must(tx.commit());
  std::string stamp = must(tx.getVersionstamp());
  Transaction r = db->createTransaction();
  auto rk = must(r.getRange(sel(p + "edge", true), sel(p + "edgf", false)));
  ASSERT_EQ(rk.kvs.size(), 1u);
  EXPECT_EQ(hex(rk.kvs[0].key), hex(p + "edge" + stamp));
  EXPECT_EQ(hex(*must(r.get(p + "v-edge"))), hex(stamp));
}

TEST_F(Versionstamps, MetadataVersionOnlyThroughSetVersionstampedValue) {
  std::string mv(kMetadataVersionKey);
  Transaction bad = db->createTransaction();
  EXPECT_TRUE(failsAtCallOrCommit(bad, bad.set(mv, "x"), ErrorCode::kInvalidArgument));
  Transaction tx = db->createTransaction();
  must(tx.setVersionstampedValue(mv, std::string(10, '\0'), 0));
  must(tx.commit());
  std::string stamp = must(tx.getVersionstamp());
  Transaction r = db->createTransaction();
  auto v = must(r.get(mv));
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->size(), 10u);
  EXPECT_GE(*v, stamp);
}

TEST_F(Versionstamps, GetVersionstampAfterCancelFailsWithCanceled) {
  Transaction tx = db->createTransaction();
  must(tx.setVersionstampedValue(prefix("vsc") + "k", std::string(10, '\0'), 0));
  tx.cancel();
  EXPECT_TRUE(failsWith(tx.getVersionstamp(), ErrorCode::kCanceled));
}

TEST_F(Versionstamps, GetVersionstampAsyncResolvesAfterCommit) {
  Transaction tx = db->createTransaction();
  must(tx.setVersionstampedValue(prefix("vsa") + "k", std::string(10, '\0'), 0));
  std::promise<Result<Bytes>> p;
  tx.getVersionstampAsync([&](Result<Bytes> r) { p.set_value(std::move(r)); });
  must(tx.commit());
  auto stamp = must(p.get_future().get());
  EXPECT_EQ(versionOfStamp(stamp), tx.getCommittedVersion());
}

}  // namespace txkv::live
