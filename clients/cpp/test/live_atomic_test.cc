// Atomic operations against a live server: concurrent adds never conflict and sum
// exactly; get inside the transaction sees the operation applied; an add conflicts a
// transaction that read the key.
#include <thread>

#include "live_support.h"

namespace txkv::live {

using Atomic = LiveTest;
using namespace std::string_literals;

namespace {
std::string le64(uint64_t n) {
  std::string b(8, '\0');
  for (int i = 0; i < 8; i++) b[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return b;
}
uint64_t readLe64(const std::optional<Bytes>& v) {
  uint64_t n = 0;
  if (!v) return 0;
  for (size_t i = 0; i < 8 && i < v->size(); i++) n |= static_cast<uint64_t>(static_cast<uint8_t>((*v)[i])) << (8 * i);
  return n;
}
}  // namespace

TEST_F(Atomic, ConcurrentAddsNeverConflictAndSumExactly) {
  auto key = prefix() + "counter";
  std::vector<Transaction> txs;
  for (int i = 0; i < 20; i++) {
    txs.push_back(db->createTransaction());
    must(txs.back().getReadVersion());
  }
  for (auto& tx : txs) must(tx.add(key, le64(1)));
  for (auto& tx : txs) must(tx.commit());
  Transaction r = db->createTransaction();
  EXPECT_EQ(readLe64(must(r.get(key))), 20u);
}

TEST_F(Atomic, GetSeesTheOperationAppliedAndAnAddConflictsAReader) {
  auto key = prefix() + "ryw";
  put(*db, {{key, le64(41)}});
  Transaction tx = db->createTransaction();
  must(tx.add(key, le64(1)));
  EXPECT_EQ(readLe64(must(tx.get(key))), 42u);
  Transaction other = db->createTransaction();
  must(other.atomicOp(key, le64(10), AtomicOp::kAdd));
  must(other.commit());
  auto st = tx.commit();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kConflict);
  Transaction r = db->createTransaction();
  EXPECT_EQ(readLe64(must(r.get(key))), 51u);
  Transaction cac = db->createTransaction();
  must(cac.atomicOp(key, le64(51), AtomicOp::kCompareAndClear));
  must(cac.commit());
  Transaction r2 = db->createTransaction();
  EXPECT_EQ(must(r2.get(key)), std::nullopt);
}

}  // namespace txkv::live
