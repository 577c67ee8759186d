// Atomic operations against FoundationDB's documented results (the same table as the
// TypeScript side, test/unit/keys/atomic.test.ts, in part), and read-your-writes of them
// in the write buffer. No server.
#include <gtest/gtest.h>

#include "atomic.h"
#include "write_buffer.h"

namespace txkv::detail {
namespace {

using MT = proto::MutationType;
using namespace std::string_literals;

std::optional<Bytes> hex(const char* h) {
  if (!h) return std::nullopt;
  Bytes out;
  for (size_t i = 0; h[i] && h[i + 1]; i += 2) out.push_back(static_cast<char>(std::stoi(std::string(h + i, 2), nullptr, 16)));
  return out;
}

struct Row {
  MT op;
  const char* existing;  // nullptr = absent
  const char* param;
  const char* expected;  // nullptr = absent
};

TEST(Atomic, FoundationDbTable) {
  const Row rows[] = {
      {MT::kAdd, "ff000000", "01000000", "00010000"},      // carry
      {MT::kAdd, "ffffffff", "01000000", "00000000"},      // carry out dropped
      {MT::kAdd, "ffff", "0100000000", "0000010000"},      // existing shorter
      {MT::kAdd, "0102030405", "0100", "0202"},            // existing longer: cut
      {MT::kAdd, nullptr, "05000000", "05000000"},         // missing key
      {MT::kBitAnd, "ff", "ffff", "ff00"},
      {MT::kBitAnd, nullptr, "abcd", "abcd"},
      {MT::kBitAnd, "", "abcd", "0000"},
      {MT::kBitOr, "01", "0000", "0100"},
      {MT::kBitXor, "ff", "ff00ff", "0000ff"},
      {MT::kMax, "0001", "ff00", "0001"},
      {MT::kMax, "070001", "0600", "0700"},
      {MT::kMin, "01", "0002", "0100"},
      {MT::kMin, nullptr, "0300", "0300"},
      {MT::kMin, "", "0300", "0000"},
      {MT::kByteMax, "6162", "61", "6162"},
      {MT::kByteMin, "6162", "61", "61"},
      {MT::kByteMin, nullptr, "7a", "7a"},
      {MT::kAppendIfFits, "6162", "6364", "61626364"},
      {MT::kAppendIfFits, nullptr, "6364", "6364"},
      {MT::kCompareAndClear, "6162", "6162", nullptr},
      {MT::kCompareAndClear, "6162", "6163", "6162"},
      {MT::kCompareAndClear, nullptr, "61", nullptr},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(applyAtomic(r.op, hex(r.existing), *hex(r.param)), hex(r.expected))
        << proto::mutationTypeName(r.op) << "(" << (r.existing ? r.existing : "absent") << ", " << r.param << ")";
  }
}

TEST(Atomic, AppendIfFitsKeepsTheValueAtTheLimit) {
  const Bytes existing(kMaxValueBytes - 2, 'a');
  EXPECT_EQ(applyAtomic(MT::kAppendIfFits, existing, "bc")->size(), kMaxValueBytes);
  EXPECT_EQ(applyAtomic(MT::kAppendIfFits, existing, "bcd"), existing);
}

TEST(Atomic, WriteBufferFoldsKnownValuesAndAppliesPendingOnesToServerRows) {
  WriteBuffer w;
  w.set("a", "x");
  w.atomic(MT::kAppendIfFits, "a", "y");
  EXPECT_EQ(w.lookup("a"), std::optional<std::optional<Bytes>>(std::optional<Bytes>("xy")));
  w.atomic(MT::kAdd, "c", "\x01\x00"s);
  w.atomic(MT::kAdd, "c", "\x02\x00"s);
  EXPECT_EQ(w.lookup("c"), std::nullopt) << "unknown base: ask the server";
  EXPECT_EQ(w.pendingAtomics("c").size(), 2u);
  w.atomic(MT::kAppendIfFits, "d", "new");
  const std::vector<KeyValue> server{{"b", "sb"}, {"c", "\x05\x00"s}};
  MergeStep m = mergeCovered(w, server, true, "a", "z", 10, false);
  ASSERT_EQ(m.kvs.size(), 4u);
  EXPECT_EQ(m.kvs[0], (KeyValue{"a", "xy"}));
  EXPECT_EQ(m.kvs[1], (KeyValue{"b", "sb"}));
  EXPECT_EQ(m.kvs[2], (KeyValue{"c", "\x08\x00"s}));
  EXPECT_EQ(m.kvs[3], (KeyValue{"d", "new"}));
  const auto muts = w.mutations();
  ASSERT_EQ(muts.size(), 4u);
  EXPECT_EQ(muts[0].type, MT::kSet);
  EXPECT_EQ(muts[1].type, MT::kAdd);
  EXPECT_EQ(muts[2].type, MT::kAdd);
  EXPECT_EQ(muts[3].type, MT::kAppendIfFits);
  w.clearRange("c", "e");
  EXPECT_EQ(w.mutations().size(), 2u) << "a clearRange drops the pending operations it covers";
}

}  // namespace
}  // namespace txkv::detail
