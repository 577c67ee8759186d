// Read-your-writes buffer and merge. Pure: unit-tested in test/write_buffer_test.cc.
#include "write_buffer.h"

#include <algorithm>

#include "atomic.h"

namespace txkv::detail {

namespace {
// A set/clear/clearRange replaces earlier versionstamped values written to the same key.
template <typename Pred>
void dropVersionstampedValues(std::vector<proto::Mutation>& v, Pred covers) {
  std::erase_if(v, [&](const proto::Mutation& m) {
    return m.type == proto::MutationType::kSetVersionstampedValue && covers(m.key);
  });
}
}  // namespace

void WriteBuffer::set(std::string_view key, std::string_view value) {
  if (auto it = atomics_.find(key); it != atomics_.end()) atomics_.erase(it);
  points_.insert_or_assign(Bytes(key), Bytes(value));
  dropVersionstampedValues(versionstamped_, [&](const Bytes& k) { return k == key; });
}

void WriteBuffer::clear(std::string_view key) {
  if (auto it = atomics_.find(key); it != atomics_.end()) atomics_.erase(it);
  points_.insert_or_assign(Bytes(key), std::nullopt);
  dropVersionstampedValues(versionstamped_, [&](const Bytes& k) { return k == key; });
}

void WriteBuffer::clearRange(std::string_view begin, std::string_view end) {
  if (!(begin < end)) return;
  points_.erase(points_.lower_bound(begin), points_.lower_bound(end));
  atomics_.erase(atomics_.lower_bound(begin), atomics_.lower_bound(end));
  dropVersionstampedValues(versionstamped_, [&](const Bytes& k) { return begin <= k && k < end; });
  Bytes b(begin), e(end);
  // Union with every range that overlaps or touches [b, e).
  auto it = cleared_.upper_bound(b);
  if (it != cleared_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= b) it = prev;
  }
  while (it != cleared_.end() && it->first <= e) {
    b = std::min(b, it->first);
    e = std::max(e, it->second);
    it = cleared_.erase(it);
  }
  cleared_.emplace(std::move(b), std::move(e));
}

void WriteBuffer::addVersionstamped(proto::Mutation m) {
  if (m.type == proto::MutationType::kSetVersionstampedValue) {
    if (auto it = atomics_.find(m.key); it != atomics_.end()) atomics_.erase(it);
  }
  versionstamped_.push_back(std::move(m));
}

void WriteBuffer::atomic(proto::MutationType type, std::string_view key, std::string_view param) {
  if (auto it = atomics_.find(key); it != atomics_.end()) {
    it->second.push_back({type, Bytes(key), Bytes(param), 0});
    return;
  }
  if (auto known = lookup(key)) {
    std::optional<Bytes> v = applyAtomic(type, *known, param);
    if (v) set(key, *v);
    else clear(key);
    return;
  }
  atomics_[Bytes(key)].push_back({type, Bytes(key), Bytes(param), 0});
}

std::vector<proto::Mutation> WriteBuffer::pendingAtomics(std::string_view key) const {
  if (auto it = atomics_.find(key); it != atomics_.end()) return it->second;
  return {};
}

std::vector<Bytes> WriteBuffer::atomicKeysIn(std::string_view begin, std::string_view end) const {
  std::vector<Bytes> out;
  if (!(begin < end)) return out;
  for (auto it = atomics_.lower_bound(begin); it != atomics_.end() && std::string_view(it->first) < end; ++it) out.push_back(it->first);
  return out;
}

bool WriteBuffer::inClearedRange(std::string_view key) const {
  auto it = cleared_.upper_bound(key);
  if (it == cleared_.begin()) return false;
  --it;
  return key < std::string_view(it->second);
}

std::optional<std::optional<Bytes>> WriteBuffer::lookup(std::string_view key) const {
  if (auto it = points_.find(key); it != points_.end()) return it->second;
  if (inClearedRange(key)) return std::optional<Bytes>();
  return std::nullopt;
}

bool WriteBuffer::shadows(std::string_view key) const {
  return points_.contains(key) || atomics_.contains(key) || inClearedRange(key);
}

std::vector<KeyValue> WriteBuffer::setsIn(std::string_view begin, std::string_view end) const {
  std::vector<KeyValue> out;
  if (!(begin < end)) return out;
  for (auto it = points_.lower_bound(begin); it != points_.end() && std::string_view(it->first) < end; ++it) {
    if (it->second) out.push_back(KeyValue{it->first, *it->second});
  }
  return out;
}

std::vector<proto::Mutation> WriteBuffer::mutations() const {
  std::vector<proto::Mutation> out;
  out.reserve(cleared_.size() + points_.size() + versionstamped_.size());
  for (const auto& [b, e] : cleared_) out.push_back({proto::MutationType::kClearRange, b, e, 0});
  for (const auto& [k, v] : points_) {
    if (v) {
      out.push_back({proto::MutationType::kSet, k, *v, 0});
    } else if (!inClearedRange(k)) {
      out.push_back({proto::MutationType::kClear, k, {}, 0});
    }
  }
  for (const auto& m : versionstamped_) out.push_back(m);
  for (const auto& [k, ms] : atomics_) out.insert(out.end(), ms.begin(), ms.end());
  return out;
}

void WriteBuffer::reset() {
  points_.clear();
  cleared_.clear();
  versionstamped_.clear();
  atomics_.clear();
}

MergeStep mergeCovered(const WriteBuffer& buffer, const std::vector<KeyValue>& serverRows, bool serverDone,
                       std::string_view begin, std::string_view end, size_t limit, bool reverse) {
  MergeStep out;
  // The covered region: the whole range once the server is done; otherwise up to and
  // including the last server row (forward: [begin, keyAfter(last)); reverse: [last, end)).
  Bytes coveredBegin(begin), coveredEnd(end);
  if (!serverDone && !serverRows.empty()) {
    if (reverse) {
      coveredBegin = serverRows.back().key;
    } else {
      coveredEnd = keyAfter(serverRows.back().key);
    }
  } else if (!serverDone) {
    return out;  // nothing covered yet
  }
  std::vector<KeyValue> sets = buffer.setsIn(coveredBegin, coveredEnd);
  // keys with pending atomic operations: the server's row (or its absence) with them applied
  for (const Bytes& k : buffer.atomicKeysIn(coveredBegin, coveredEnd)) {
    std::optional<Bytes> v;
    for (const auto& row : serverRows) {
      if (row.key == k) v = row.value;
    }
    for (const auto& m : buffer.pendingAtomics(k)) v = applyAtomic(m.type, v, m.param);
    if (v) sets.push_back(KeyValue{k, *v});
  }
  std::sort(sets.begin(), sets.end(), [](const KeyValue& a, const KeyValue& b) { return a.key < b.key; });
  if (reverse) std::reverse(sets.begin(), sets.end());
  auto before = [reverse](const Bytes& a, const Bytes& b) { return reverse ? b < a : a < b; };

  size_t si = 0, bi = 0;
  auto nextServer = [&]() -> const KeyValue* {
    while (si < serverRows.size() && buffer.shadows(serverRows[si].key)) ++si;
    return si < serverRows.size() ? &serverRows[si] : nullptr;
  };
  for (;;) {
    const KeyValue* s = nextServer();
    const KeyValue* w = bi < sets.size() ? &sets[bi] : nullptr;
    if (!s && !w) break;
    if (out.kvs.size() >= limit) {
      out.moreInCovered = true;
      break;
    }
    if (s && (!w || before(s->key, w->key))) {
      out.kvs.push_back(*s);
      ++si;
    } else {
      // A buffered set wins over a server row of the same key (that row is shadowed anyway).
      out.kvs.push_back(*w);
      ++bi;
    }
  }
  return out;
}

std::optional<KeyRange> rangeReadConflict(std::string_view begin, std::string_view end,
                                          const std::vector<KeyValue>& kvs, bool hasMore, bool reverse) {
  KeyRange r{Bytes(begin), Bytes(end)};
  if (hasMore && !kvs.empty()) {
    if (reverse) {
      r.begin = kvs.back().key;
    } else {
      r.end = keyAfter(kvs.back().key);
    }
  }
  if (!(r.begin < r.end)) return std::nullopt;
  return r;
}

}  // namespace txkv::detail
