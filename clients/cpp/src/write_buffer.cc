// Read-your-writes buffer and merge. Pure: unit-tested in test/write_buffer_test.cc.
#include "write_buffer.h"

#include <algorithm>

#include "atomic.h"

namespace txkv::detail {

size_t WriteBuffer::append(proto::Mutation m) {
  log_.emplace_back(std::move(m));
  ++live_;
  return log_.size() - 1;
}

void WriteBuffer::dropPoints(std::string_view begin, std::string_view end) {
  auto first = pointAt_.lower_bound(begin);
  auto last = pointAt_.lower_bound(end);
  for (auto it = first; it != last; ++it) {
    if (log_[it->second]) {
      log_[it->second].reset();
      --live_;
    }
  }
  pointAt_.erase(first, last);
}

void WriteBuffer::logPoint(proto::Mutation m, bool supersedes) {
  Bytes key = m.key;
  if (supersedes) dropPoints(key, keyAfter(key));
  pointAt_.emplace(std::move(key), append(std::move(m)));
}

void WriteBuffer::set(std::string_view key, std::string_view value) {
  if (auto it = atomics_.find(key); it != atomics_.end()) atomics_.erase(it);
  points_.insert_or_assign(Bytes(key), Bytes(value));
  unreadable_.erase(Bytes(key));
  logPoint({proto::MutationType::kSet, Bytes(key), Bytes(value), 0}, true);
}

void WriteBuffer::clear(std::string_view key) {
  if (auto it = atomics_.find(key); it != atomics_.end()) atomics_.erase(it);
  points_.insert_or_assign(Bytes(key), std::nullopt);
  unreadable_.erase(Bytes(key));
  logPoint({proto::MutationType::kClear, Bytes(key), Bytes(), 0}, true);
}

void WriteBuffer::clearRange(std::string_view begin, std::string_view end) {
  if (!(begin < end)) return;
  points_.erase(points_.lower_bound(begin), points_.lower_bound(end));
  atomics_.erase(atomics_.lower_bound(begin), atomics_.lower_bound(end));
  unreadable_.erase(unreadable_.lower_bound(begin), unreadable_.lower_bound(end));
  dropPoints(begin, end);
  append({proto::MutationType::kClearRange, Bytes(begin), Bytes(end), 0});
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
  if (m.type == proto::MutationType::kSetVersionstampedKey) {
    append(std::move(m));  // its final key is known only at commit: it supersedes nothing
    return;
  }
  if (auto it = atomics_.find(m.key); it != atomics_.end()) atomics_.erase(it);
  points_.erase(m.key);
  unreadable_.insert(m.key);
  logPoint(std::move(m), true);
}

void WriteBuffer::atomic(proto::MutationType type, std::string_view key, std::string_view param) {
  if (auto it = atomics_.find(key); it != atomics_.end()) {
    it->second.push_back({type, Bytes(key), Bytes(param), 0});
    logPoint({type, Bytes(key), Bytes(param), 0}, false);
    return;
  }
  // (a key with a pending versionstamped value has no value to fold into yet)
  if (auto known = unreadable_.contains(key) ? std::nullopt : lookup(key)) {
    std::optional<Bytes> v = applyAtomic(type, *known, param);
    if (v) set(key, *v);
    else clear(key);
    return;
  }
  atomics_[Bytes(key)].push_back({type, Bytes(key), Bytes(param), 0});
  logPoint({type, Bytes(key), Bytes(param), 0}, false);
}

std::optional<Bytes> WriteBuffer::firstUnreadableIn(std::string_view begin, std::string_view end) const {
  auto it = unreadable_.lower_bound(begin);
  if (it != unreadable_.end() && std::string_view(*it) < end) return *it;
  return std::nullopt;
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
  return points_.contains(key) || atomics_.contains(key) || unreadable_.contains(key) || inClearedRange(key);
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
  out.reserve(live_);
  for (const auto& m : log_) {
    if (m) out.push_back(*m);
  }
  return out;
}

void WriteBuffer::reset() {
  points_.clear();
  cleared_.clear();
  atomics_.clear();
  unreadable_.clear();
  log_.clear();
  pointAt_.clear();
  live_ = 0;
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
