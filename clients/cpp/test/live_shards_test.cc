// shards.test.mjs: keys with different first bytes spread over shards: ordered cross-shard
// ranges, atomicity under concurrent readers, snapshots, failed commits leave no trace.
#include <atomic>
#include <random>
#include <thread>

#include "live_support.h"

namespace txkv::live {

class Shards : public LiveTest {
 protected:
  static inline const std::vector<int> kFirst = {0x00, 0x01, 0x30, 0x61, 0x6d, 0x7a, 0x80, 0xc0, 0xfe};
  static std::string token() { return prefix("").substr(1, 16); }
  static std::vector<std::string> spread(const std::string& t, int i = 0) {
    std::vector<std::string> out;
    for (int fb : kFirst) out.push_back(std::string(1, static_cast<char>(fb)) + "sh/" + t + "/" + std::to_string(i));
    return out;
  }
  // Scan the whole user keyspace page by page, keep our keys, check strict order.
  static std::vector<KeyValue> scanMine(ReadTransaction& tx, const std::string& t, int limit = 0,
                                        bool reverse = false, bool snapshot = false) {
    std::vector<KeyValue> mine;
    KeySelector b{std::string(1, '\0'), true}, e{"\xff", false};
    std::optional<std::string> prev;
    for (int page = 0; page < 100000; ++page) {
      RangeOptions o{limit, reverse};
      auto r = must(snapshot ? tx.snapshotGetRange(b, e, o) : tx.getRange(b, e, o));
      for (auto& kv : r.kvs) {
        if (prev) {
          if (reverse ? !(kv.key < *prev) : !(*prev < kv.key)) throw std::runtime_error("rows out of key order");
        }
        prev = kv.key;
        if (kv.key.find("sh/" + t + "/") != std::string::npos) mine.push_back(kv);
      }
      if (!r.hasMore) return mine;
      if (r.kvs.empty()) throw std::runtime_error("hasMore with an empty page");
      (reverse ? e : b) = KeySelector{r.kvs.back().key, false};
    }
    throw std::runtime_error("scan did not end");
  }
};

TEST_F(Shards, CrossShardRangesInKeyOrderForwardAndReverseWithPaging) {
  auto t = token();
  std::vector<std::string> keys;
  for (int i = 0; i < 4; ++i) for (auto& k : spread(t, i)) keys.push_back(k);
  Transaction tx = db->createTransaction();
  auto shuffled = keys;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937{3});
  for (auto& k : shuffled) must(tx.set(k, hex(k)));
  must(tx.commit());
  auto sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  for (int limit : {0, 5, 1}) {
    // A fresh read version per pass: a whole-keyspace scan by 1 row must finish inside the
    // MVCC window (5 s). The keyspace holds every earlier suite's keys, one round trip each
    // at limit 1: at load ~25 a pass took over 5 s and failed TOO_OLD (16:30, 2026-11-30),
    // so a pass that runs past the window starts over at a new read version, as transact()
    // would, a few times.
    for (int attempt = 0;; ++attempt) {
      try {
        ReadTransaction r = db->createReadOnlyTransaction();
        auto fwd = scanMine(r, t, limit);
        auto rev = scanMine(r, t, limit, true, true);
        EXPECT_EQ(keysOf(fwd), sorted) << "limit " << limit;
        for (auto& kv : fwd) EXPECT_EQ(kv.value, hex(kv.key));
        EXPECT_EQ(keysOf(rev), std::vector<std::string>(sorted.rbegin(), sorted.rend())) << "limit " << limit;
        break;
      } catch (const CallFailed& e) {
        if (e.code != ErrorCode::kTooOld || attempt == 3) throw;
      }
    }
  }
}

TEST_F(Shards, ALimitedRangeSpanningShardsReturnsItsFirstRows) {
  auto t = token();
  std::vector<std::string> keys = {"\x02sh/" + t + "/x", "\x62sh/" + t + "/x", "\xfdsh/" + t + "/x"};
  Transaction tx = db->createTransaction();
  for (auto& k : keys) must(tx.set(k, "v"));
  must(tx.commit());
  Transaction rt = db->createTransaction();
  auto r = must(rt.getRange(sel(keys[0], true), sel(keys[2], true), {1}));
  EXPECT_EQ(r.kvs.at(0).key, keys[0]);
  EXPECT_TRUE(r.hasMore);
  auto rr = must(rt.getRange(sel(keys[0], true), sel(keys[2], true), {1, true}));
  EXPECT_EQ(rr.kvs.at(0).key, keys[2]);
  EXPECT_TRUE(rr.hasMore);
  auto ex = must(rt.getRange(sel(keys[0], false), sel(keys[2], false), {10000}));
  std::vector<std::string> mine;
  for (auto& kv : ex.kvs) if (kv.key.find("sh/" + t + "/") != std::string::npos) mine.push_back(kv.key);
  EXPECT_EQ(mine, std::vector<std::string>{keys[1]});
}

TEST_F(Shards, CrossShardCommitsAreAtomicForConcurrentReaders) {
  auto t = token();
  auto keys = spread(t);
  {
    Transaction init = db->createTransaction();
    for (auto& k : keys) must(init.set(k, "gen-0"));
    must(init.commit());
  }
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::atomic<int> partial{0};
  std::string error;
  std::mutex errMu;
  auto reader = [&](bool useRange) {
    try {
      while (!stop) {
        ReadTransaction tx = db->createReadOnlyTransaction();
        std::vector<std::string> vals;
        if (useRange) {
          for (auto& kv : scanMine(tx, t, 0, false, true)) vals.push_back(kv.value);
        } else {
          std::vector<std::promise<Result<std::optional<Bytes>>>> ps(keys.size());
          for (size_t i = 0; i < keys.size(); ++i) {
            tx.getAsync(keys[i], [&ps, i](Result<std::optional<Bytes>> r) { ps[i].set_value(std::move(r)); });
          }
          for (auto& p : ps) vals.push_back(must(p.get_future().get()).value_or("<absent>"));
        }
        if (vals.size() != keys.size()) ++partial;
        for (auto& v : vals) if (v != vals[0]) ++partial;
        ++reads;
      }
    } catch (const std::exception& e) {
      std::lock_guard l(errMu);
      error = e.what();
    }
  };
  std::thread r1(reader, false), r2(reader, false), r3(reader, true);
  for (int g = 1; g <= 40; ++g) {
    Transaction tx = db->createTransaction();
    for (auto& k : keys) must(tx.set(k, "gen-" + std::to_string(g)));
    must(tx.commit());
  }
  stop = true;
  r1.join();
  r2.join();
  r3.join();
  EXPECT_EQ(error, "");
  EXPECT_EQ(partial.load(), 0) << "a reader saw a partial commit";
  EXPECT_GT(reads.load(), 0);
}

TEST_F(Shards, SnapshotHoldsOnEveryShard) {
  auto t = token();
  auto keys = spread(t);
  {
    Transaction w = db->createTransaction();
    for (auto& k : keys) must(w.set(k, "before"));
    must(w.commit());
  }
  ReadTransaction reader = db->createReadOnlyTransaction();
  EXPECT_EQ(must(reader.get(keys[0])), "before");
  {
    Transaction w2 = db->createTransaction();
    for (auto& k : keys) must(w2.set(k, "after"));
    must(w2.clear(keys.back()));
    must(w2.commit());
  }
  for (auto& k : keys) EXPECT_EQ(must(reader.get(k)), "before") << hex(k);
  auto rows = scanMine(reader, t);
  EXPECT_EQ(rows.size(), keys.size());
  for (auto& kv : rows) EXPECT_EQ(kv.value, "before");
  ReadTransaction fresh = db->createReadOnlyTransaction();
  EXPECT_EQ(must(fresh.get(keys.back())), std::nullopt);
  EXPECT_EQ(must(fresh.get(keys[0])), "after");
}

TEST_F(Shards, AFailedCrossShardCommitLeavesNoTrace) {
  auto t = token();
  auto keys = spread(t);
  Transaction tx = db->createTransaction();
  must(tx.get(keys[3]));
  for (auto& k : keys) must(tx.set(k, "never"));
  writeFrom(*db, keys[3], "intruder");
  EXPECT_TRUE(failsWith(tx.commit(), ErrorCode::kConflict));
  Transaction c = db->createTransaction();
  for (auto& k : keys) must(c.set(k, "never"));
  c.cancel();
  (void)c.commit();
  ReadTransaction r = db->createReadOnlyTransaction();
  for (size_t i = 0; i < keys.size(); ++i) {
    auto v = must(r.get(keys[i]));
    if (i == 3) EXPECT_EQ(v, "intruder");
    else EXPECT_EQ(v, std::nullopt) << hex(keys[i]);
  }
}

TEST_F(Shards, ClearRangeOnEveryShard) {
  auto t = token();
  auto keys = spread(t);
  {
    Transaction w = db->createTransaction();
    for (auto& k : keys) must(w.set(k, "v"));
    must(w.commit());
  }
  Transaction c = db->createTransaction();
  for (auto& k : keys) must(c.clearRange(k, keyAfter(k)));
  must(c.commit());
  ReadTransaction r = db->createReadOnlyTransaction();
  EXPECT_EQ(scanMine(r, t).size(), 0u);
}

}  // namespace txkv::live
