// txkv C++ client: byte keys, selectors, ranges and the spec's size limits.
// Keys and values are std::string holding raw bytes; they compare as unsigned
// bytes (memcmp order), which is what std::string's operator< does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace txkv {

using Bytes = std::string;

inline constexpr size_t kMaxKeyBytes = 10'000;
inline constexpr size_t kMaxValueBytes = 100'000;
inline constexpr size_t kMaxTransactionBytes = 10'000'000;
inline constexpr size_t kVersionstampBytes = 10;
// A transaction's size as the server counts it (src/keys/limits.ts, FoundationDB's
// accounting): a mutation is its key and param plus 40, plus its write-conflict range
// ([key, key + 0x00), or [begin, end) for a clearRange) plus 32; a read-conflict range its
// bounds plus 32. The overheads keep many tiny mutations from making a commit frame past
// the server's frame limit, which closes the connection (MAYBE_COMMITTED, not TOO_LARGE).
inline constexpr size_t mutationBytes(size_t key, size_t param, bool range = false) {
  return key + param + 40 + 32 + (range ? key + param : 2 * key + 1);
}
inline constexpr size_t readConflictBytes(size_t begin, size_t end) { return begin + end + 32; }
// limit <= 0 means this many rows (the server's documented default page size).
inline constexpr int32_t kDefaultRangeLimit = 1000;
inline constexpr std::string_view kMetadataVersionKey{"\xff/metadataVersion", 17};

// begin {key, true}: first key >= key; {key, false}: first key > key.
// end   {key, false}: keys < key;      {key, true}:  keys <= key.
struct KeySelector {
  Bytes key;
  bool inclusive = true;
};

struct KeyValue {
  Bytes key;
  Bytes value;
  bool operator==(const KeyValue&) const = default;
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  bool hasMore = false;
};

struct RangeOptions {
  int32_t limit = 0;  // <= 0: kDefaultRangeLimit
  bool reverse = false;
};

// Half-open [begin, end).
struct KeyRange {
  Bytes begin;
  Bytes end;
  bool operator==(const KeyRange&) const = default;
};

// The first key after `key` in memcmp order: key + "\0".
inline Bytes keyAfter(std::string_view key) {
  Bytes k(key);
  k.push_back('\0');
  return k;
}

// As 3FS's TransactionHelper::prefixListEndKey: increment the last byte that is
// not 0xff and drop the 0xff bytes after it ("" when every byte is 0xff).
inline Bytes prefixEnd(std::string_view prefix) {
  Bytes k(prefix);
  while (!k.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(k.back());
    if (c != 0xff) {
      ++c;
      return k;
    }
    k.pop_back();
  }
  return k;
}

// Selector pair -> byte bounds [begin, end).
inline Bytes beginBound(const KeySelector& s) { return s.inclusive ? s.key : keyAfter(s.key); }
inline Bytes endBound(const KeySelector& s) { return s.inclusive ? keyAfter(s.key) : s.key; }

}  // namespace txkv
