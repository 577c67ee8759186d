// Read-your-writes: the transaction's buffered writes and the pure merge of
// buffered writes into server reads (as 3FS's MemTransaction::getRangeImpl does).
// No I/O, no locking: TransactionImpl owns one WriteBuffer under its mutex.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include "txkv/keys.h"
#include "wire.h"

namespace txkv::detail {

class WriteBuffer {
 public:
  void set(std::string_view key, std::string_view value);
  void clear(std::string_view key);
  void clearRange(std::string_view begin, std::string_view end);  // [begin, end)
  void addVersionstamped(proto::Mutation m);
  // An atomic operation (atomic.h). On a value the buffer knows (set, cleared) it folds
  // into that value; otherwise it is sent as is and reads apply it to the server's value.
  void atomic(proto::MutationType type, std::string_view key, std::string_view param);
  // Atomic operations waiting for the server's value of `key` (empty: none).
  std::vector<proto::Mutation> pendingAtomics(std::string_view key) const;

  // What a read of `key` sees from the buffer alone: nullopt = not decided by the
  // buffer (ask the server); a value = set here; an empty optional inside = cleared here.
  std::optional<std::optional<Bytes>> lookup(std::string_view key) const;
  // True when a server row at `key` is hidden or replaced by the buffer.
  bool shadows(std::string_view key) const;
  // A key with a pending setVersionstampedValue: its value is known only after commit,
  // so no read may see it (FoundationDB: accessed_unreadable).
  bool unreadable(std::string_view key) const { return unreadable_.contains(key); }
  // The first such key in [begin, end), if any.
  std::optional<Bytes> firstUnreadableIn(std::string_view begin, std::string_view end) const;
  bool inClearedRange(std::string_view key) const;

  // Buffered sets (with a value) whose key lies in [begin, end), ascending.
  std::vector<KeyValue> setsIn(std::string_view begin, std::string_view end) const;

  // What commit sends: every mutation in call order (the server applies them in that
  // order, versionstamped ones included), less those a later call made pointless: a
  // point write of a key drops that key's earlier point writes, a clearRange drops the
  // point writes inside it. A setVersionstampedKey is never dropped (its key is unknown).
  std::vector<proto::Mutation> mutations() const;
  bool empty() const { return live_ == 0; }
  // Keys in [begin, end) with pending atomic operations, ascending.
  std::vector<Bytes> atomicKeysIn(std::string_view begin, std::string_view end) const;
  void reset();

 private:
  size_t append(proto::Mutation m);
  // A point write of `key` supersedes its earlier point writes in the log.
  void dropPoints(std::string_view begin, std::string_view end);
  void logPoint(proto::Mutation m, bool supersedes);

  std::map<Bytes, std::optional<Bytes>, std::less<>> points_;
  std::map<Bytes, Bytes, std::less<>> cleared_;  // begin -> end, disjoint and not touching
  std::map<Bytes, std::vector<proto::Mutation>, std::less<>> atomics_;
  std::set<Bytes, std::less<>> unreadable_;
  std::vector<std::optional<proto::Mutation>> log_;  // call order; nullopt = superseded
  std::multimap<Bytes, size_t, std::less<>> pointAt_;  // live point writes of the log, by key
  size_t live_ = 0;
};

// One step of a read-your-writes range read. `serverRows` are all rows the server
// returned so far for [begin, end) in scan order (ascending, or descending when
// reverse); `serverDone` says the server has no more. The region the server has
// covered is merged with the buffer and cut at `limit`.
struct MergeStep {
  std::vector<KeyValue> kvs;   // merged rows, in scan order, at most `limit`
  bool moreInCovered = false;  // rows remain in the covered region past the limit
};
MergeStep mergeCovered(const WriteBuffer& buffer, const std::vector<KeyValue>& serverRows, bool serverDone,
                       std::string_view begin, std::string_view end, size_t limit, bool reverse);

// The read-conflict range of a range read of [begin, end) that returned `kvs`:
// the whole range, or when cut by the limit (hasMore) only as far as the rows reach.
std::optional<KeyRange> rangeReadConflict(std::string_view begin, std::string_view end,
                                          const std::vector<KeyValue>& kvs, bool hasMore, bool reverse);

}  // namespace txkv::detail
