// conflict.test.mjs: CONFLICT from get, read-conflict keys/ranges and getRange (with
// limit), none from snapshot reads or blind writes; TransactionConflict port.
#include <atomic>
#include <functional>
#include <thread>

#include "live_support.h"

namespace txkv::live {

class Conflict : public LiveTest {
 protected:
  // Open tx, let read(tx) read, commit a write of `victim` elsewhere, then tx writes
  // something outside every range read and commits.
  void scenario(const std::string& p, const std::function<void(Transaction&)>& read, const std::string& victim,
                bool expectConflict) {
    static std::atomic<int> seq{0};
    std::string out = p + "~out" + std::to_string(seq++);
    Transaction tx = db->createTransaction();
    must(tx.getReadVersion());
    read(tx);
    writeFrom(*db, victim, "other");
    must(tx.set(out, "mine"));
    Status c = tx.commit();
    Transaction check = db->createTransaction();
    if (expectConflict) {
      EXPECT_TRUE(hasCode(c.ok() ? std::nullopt : std::optional<TxnError>(c.error()), ErrorCode::kConflict))
          << "write of " << victim.substr(p.size()) << " after the read";
      EXPECT_EQ(must(check.get(out)), std::nullopt) << "a conflicting commit writes nothing";
    } else {
      EXPECT_TRUE(c.ok()) << "write of " << victim.substr(p.size()) << " must not conflict: "
                          << (c.ok() ? "" : c.error().describe());
      EXPECT_EQ(must(check.get(out)), "mine");
    }
  }
};

TEST_F(Conflict, GetAddsAReadConflict) {
  auto p = prefix();
  put(*db, {{p + "k", "v"}});
  scenario(p, [&](Transaction& tx) { must(tx.get(p + "k")); }, p + "k", true);
  scenario(p, [&](Transaction& tx) { must(tx.get(p + "absent")); }, p + "absent", true);
  scenario(p, [&](Transaction& tx) { must(tx.get(p + "k")); }, p + "k2", false);
}

TEST_F(Conflict, SnapshotReadsAddNone) {
  auto p = prefix();
  put(*db, {{p + "k", "v"}, {p + "a", "1"}, {p + "c", "3"}});
  scenario(p, [&](Transaction& tx) { must(tx.snapshotGet(p + "k")); }, p + "k", false);
  auto rr = [&](Transaction& tx) { must(tx.snapshotGetRange(sel(p + "a", true), sel(p + "z", false))); };
  scenario(p, rr, p + "c", false);
  scenario(p, rr, p + "b", false);
}

TEST_F(Conflict, ExplicitReadConflictKeysAndRanges) {
  auto p = prefix();
  scenario(p, [&](Transaction& tx) { must(tx.addReadConflictKey(p + "k")); }, p + "k", true);
  auto q = prefix();
  scenario(q, [&](Transaction& tx) { must(tx.addReadConflictKey(q + "k")); }, q + "k" + std::string(1, '\0'), false);
  auto range = [&](Transaction& tx) { must(tx.addReadConflictRange(p + "b", p + "d")); };
  scenario(p, range, p + "b", true);
  scenario(p, range, p + "c-new", true);
  scenario(p, range, p + "d", false);
  scenario(p, range, p + "a", false);
}

TEST_F(Conflict, GetRangeConflictsAnywhereInsideIncludingPhantoms) {
  auto p = prefix();
  put(*db, {{p + "a", "1"}, {p + "c", "3"}, {p + "e", "5"}});
  auto read = [&](Transaction& tx) { must(tx.getRange(sel(p + "a", true), sel(p + "e", false))); };
  scenario(p, read, p + "c", true);
  scenario(p, read, p + "b", true);
  scenario(p, read, p + "e", false);
  auto readIncl = [&](Transaction& tx) { must(tx.getRange(sel(p + "a", false), sel(p + "e", true))); };
  scenario(p, readIncl, p + "e", true);
  scenario(p, readIncl, p + "a", false);
}

TEST_F(Conflict, ARangeCutByLimitConflictsOnlyUpToItsLastRow) {
  auto p = prefix();
  put(*db, {{p + "k1", "v"}, {p + "k2", "v"}, {p + "k3", "v"}, {p + "k4", "v"}, {p + "k5", "v"}});
  auto fwd = [&](Transaction& tx) {
    auto r = must(tx.getRange(sel(p + "k1", true), sel(p + "k5", true), {2}));
    EXPECT_EQ(r.kvs.size(), 2u);
    EXPECT_TRUE(r.hasMore);
  };
  scenario(p, fwd, p + "k2", true);
  scenario(p, fwd, p + "k15", true);
  scenario(p, fwd, p + "k3", false);
  scenario(p, fwd, p + "k5", false);
  auto rev = [&](Transaction& tx) {
    auto r = must(tx.getRange(sel(p + "k1", true), sel(p + "k5", true), {2, true}));
    EXPECT_EQ(r.kvs[1].key, p + "k4");
    EXPECT_TRUE(r.hasMore);
  };
  scenario(p, rev, p + "k4", true);
  scenario(p, rev, p + "k5", true);
  scenario(p, rev, p + "k2", false);
}

TEST_F(Conflict, BlindWritesNeverConflict) {
  auto p = prefix();
  Transaction tx = db->createTransaction();
  must(tx.getReadVersion());
  writeFrom(*db, p + "k", "other");
  must(tx.set(p + "k", "mine"));
  must(tx.clear(p + "j"));
  must(tx.commit());
  Transaction r = db->createTransaction();
  EXPECT_EQ(must(r.get(p + "k")), "mine");
}

TEST_F(Conflict, AResetTransactionCommitsAfterAConflict) {
  auto p = prefix();
  put(*db, {{p + "n", "1"}});
  Transaction tx = db->createTransaction();
  int v = std::stoi(*must(tx.get(p + "n")));
  writeFrom(*db, p + "n", "10");
  must(tx.set(p + "n", std::to_string(v + 1)));
  EXPECT_TRUE(failsWith(tx.commit(), ErrorCode::kConflict));
  tx.reset();
  int v2 = std::stoi(*must(tx.get(p + "n")));
  EXPECT_EQ(v2, 10);
  must(tx.set(p + "n", std::to_string(v2 + 1)));
  must(tx.commit());
  Transaction r = db->createTransaction();
  EXPECT_EQ(must(r.get(p + "n")), "11");
}

// Port of 3FS TransactionConflict: 8 concurrent loops x 50 transactions over 5 keys.
class TransactionConflict : public LiveTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(TransactionConflict, EightLoopsOfFifty) {
  const std::string op = GetParam();
  auto p = prefix("tc");
  std::atomic<int> conflicts{0}, commits{0}, others{0};
  auto loop = [&] {
    for (int j = 0; j < 50; ++j) {
      Transaction tx = db->createTransaction();
      std::string key = p + std::to_string(j % 5);
      if (!tx.getReadVersion().ok()) { ++others; continue; }
      if (op == "get") (void)tx.get(key);
      else if (op == "snapshotGet") (void)tx.snapshotGet(key);
      else (void)tx.addReadConflictKey(key);
      (void)tx.set(key, key);
      Status c = tx.commit();
      if (c.ok()) ++commits;
      else if (c.error().code() == ErrorCode::kConflict) ++conflicts;
      else ++others;
    }
  };
  std::vector<std::thread> ts;
  for (int i = 0; i < 8; ++i) ts.emplace_back(loop);
  for (auto& t : ts) t.join();
  EXPECT_EQ(others.load(), 0);
  EXPECT_EQ(commits + conflicts, 400);
  if (op == "snapshotGet") {
    EXPECT_EQ(conflicts.load(), 0) << "snapshot reads never conflict";
  } else {
    EXPECT_GT(conflicts.load(), 0) << op << ": concurrent read-modify-write must produce CONFLICTs";
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, TransactionConflict, ::testing::Values("get", "snapshotGet", "addReadConflictKey"));

}  // namespace txkv::live
