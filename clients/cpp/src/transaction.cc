// Transactions: read versions, read-your-writes, client-side read-conflict tracking,
// buffered writes with the spec's limits, commit. Any thread; state under mu_,
// callbacks always run with mu_ released.
#include <future>
#include <random>
#include <thread>

#include "atomic.h"
#include "database_impl.h"
#include "write_buffer.h"

namespace txkv {
namespace detail {

namespace {
TxnError canceledError() { return TxnError(ErrorCode::kCanceled, "the transaction was canceled"); }
TxnError resetError() { return TxnError(ErrorCode::kCanceled, "the transaction was reset while this call was in flight"); }
TxnError unexpectedReply(std::string_view want, const proto::Body& got) {
  return TxnError(ErrorCode::kProtocolError,
                  "expected " + std::string(want) + ", the server sent " + std::string(proto::bodyTypeName(got)));
}
bool isSystemKey(std::string_view k) { return !k.empty() && static_cast<unsigned char>(k[0]) == 0xff; }
}  // namespace

class TransactionImpl : public std::enable_shared_from_this<TransactionImpl> {
 public:
  TransactionImpl(std::shared_ptr<DatabaseImpl> db, bool readOnly)
      : db_(std::move(db)), readOnly_(readOnly), start_(Clock::now()) {}

  // ------------------------------------------------------------------ versions
  // As FoundationDB (read_version_already_set, version_invalid): once, positive, and
  // before anything was read. The call returns nothing, so a refusal fails the
  // transaction's next call (read, write or commit) with INVALID_ARGUMENT.
  void setReadVersion(int64_t v) {
    std::lock_guard lock(mu_);
    if (refused_) return;
    if (v <= 0) {
      refused_ = TxnError(ErrorCode::kInvalidArgument, "setReadVersion: the read version must be positive, got " + std::to_string(v));
    } else if (readVersionSet_) {
      refused_ = TxnError(ErrorCode::kInvalidArgument, "setReadVersion: the read version is already set (it may be set once per transaction)");
    } else if (readStarted_) {
      refused_ = TxnError(ErrorCode::kInvalidArgument,
                          "setReadVersion after the transaction read or asked getReadVersion: its reads would mix two snapshots");
    } else {
      readVersionSet_ = true;
      readVersion_ = v;
    }
  }

  void getReadVersion(Callback<int64_t> cb) {
    uint64_t gen;
    {
      std::lock_guard lock(mu_);
      if (auto e = unusable()) return deliverLater(std::move(cb), *e);
      readStarted_ = true;
      gen = gen_;
    }
    withReadVersion(gen, std::move(cb));
  }

  // ------------------------------------------------------------------ reads
  void get(std::string_view key, bool snapshot, Callback<std::optional<Bytes>> cb) {
    std::vector<proto::Mutation> pending;
    uint64_t gen;
    Clock::time_point deadline;
    {
      std::unique_lock lock(mu_);
      if (auto e = unusable()) {
        lock.unlock();
        return cb(*e);
      }
      readStarted_ = true;
      if (writes_.unreadable(key)) {
        lock.unlock();
        return cb(unreadableError(key));
      }
      if (auto buffered = writes_.lookup(key)) {
        // Decided by our own writes: no server read, no read conflict (as MemTransaction).
        lock.unlock();
        return cb(std::move(*buffered));
      }
      if (!snapshot && !readOnly_) readConflicts_.push_back(KeyRange{Bytes(key), keyAfter(key)});
      gen = gen_;
      deadline = deadline_();
      pending = writes_.pendingAtomics(key);
    }
    if (!pending.empty()) {
      // read-your-writes of atomic operations: the server's value with them applied
      cb = [pending = std::move(pending), cb = std::move(cb)](Result<std::optional<Bytes>> r) mutable {
        if (!r) return cb(std::move(r));
        std::optional<Bytes> v = std::move(*r);
        for (const auto& m : pending) v = applyAtomic(m.type, v, m.param);
        cb(std::move(v));
      };
    }
    auto self = shared_from_this();
    withReadVersion(gen, [self, gen, deadline, key = Bytes(key), cb = std::move(cb)](Result<int64_t> rv) mutable {
      if (!rv) return cb(rv.error());
      self->db_->submit(OutgoingRequest{
          proto::GetRequest{*rv, std::move(key)}, false, deadline,
          [self, gen, cb = std::move(cb)](Result<proto::Body> r) {
            if (auto e = self->stale(gen)) return cb(*e);
            if (!r) return cb(r.error());
            auto* reply = std::get_if<proto::GetReply>(&*r);
            if (!reply) return cb(unexpectedReply("GetReply", *r));
            if (!reply->present) return cb(std::optional<Bytes>());
            cb(std::optional<Bytes>(std::move(reply->value)));
          }});
    });
  }

  struct RangeRead {
    Bytes begin, end;  // byte bounds [begin, end)
    KeySelector firstBegin, firstEnd;
    size_t limit;
    bool reverse, snapshot;
    uint64_t gen;
    Clock::time_point deadline;
    int64_t readVersion = 0;
    std::vector<KeyValue> rows;  // all server rows so far, in scan order
    bool serverDone = false;
    Callback<RangeResult> cb;
  };

  void getRange(const KeySelector& begin, const KeySelector& end, RangeOptions opts, bool snapshot,
                Callback<RangeResult> cb) {
    auto st = std::make_shared<RangeRead>();
    {
      std::unique_lock lock(mu_);
      if (auto e = unusable()) {
        lock.unlock();
        return cb(*e);
      }
      readStarted_ = true;
      st->begin = beginBound(begin);
      st->end = endBound(end);
      st->firstBegin = begin;
      st->firstEnd = end;
      st->limit = static_cast<size_t>(opts.limit > 0 ? opts.limit : kDefaultRangeLimit);
      st->reverse = opts.reverse;
      st->snapshot = snapshot || readOnly_;
      st->gen = gen_;
      st->deadline = deadline_();
      st->cb = std::move(cb);
      if (!(st->begin < st->end)) {
        lock.unlock();
        return st->cb(RangeResult{});
      }
    }
    auto self = shared_from_this();
    withReadVersion(st->gen, [self, st](Result<int64_t> rv) {
      if (!rv) return st->cb(rv.error());
      st->readVersion = *rv;
      self->fetchPage(st);
    });
  }

  // ------------------------------------------------------------------ writes
  Status addReadConflictRange(std::string_view begin, std::string_view end) {
    std::lock_guard lock(mu_);
    if (auto e = unusableForWrite()) return *e;
    if (end < begin) return invertedError("addReadConflictRange", begin, end);
    if (begin < end) readConflicts_.push_back(KeyRange{Bytes(begin), Bytes(end)});
    return okStatus();
  }

  Status set(std::string_view key, std::string_view value) {
    std::lock_guard lock(mu_);
    if (auto e = unusableForWrite()) return *e;
    if (auto e = checkKey(key, "set")) return *e;
    if (auto e = checkValue(value)) return *e;
    if (isSystemKey(key)) return systemKeyError("set");
    if (auto e = account(mutationBytes(key.size(), value.size()))) return *e;
    writes_.set(key, value);
    return okStatus();
  }

  Status clear(std::string_view key) {
    std::lock_guard lock(mu_);
    if (auto e = unusableForWrite()) return *e;
    if (auto e = checkKey(key, "clear")) return *e;
    if (isSystemKey(key)) return systemKeyError("clear");
    if (auto e = account(mutationBytes(key.size(), 0))) return *e;
    writes_.clear(key);
    return okStatus();
  }

  Status clearRange(std::string_view begin, std::string_view end) {
    std::lock_guard lock(mu_);
    if (auto e = unusableForWrite()) return *e;
    if (auto e = checkKey(begin, "clearRange begin")) return *e;
    if (end.size() > kMaxKeyBytes + 1) return *checkKey(end, "clearRange end");
    if (end < begin) return invertedError("clearRange", begin, end);
    if (begin == end) return okStatus();  // an empty range: nothing to clear
    // Reaching into the system keyspace: begin in it, or end past "\xff".
    if (isSystemKey(begin) || end > std::string_view("\xff", 1)) return systemKeyError("clearRange");
    if (auto e = account(mutationBytes(begin.size(), end.size(), true))) return *e;
    writes_.clearRange(begin, end);
    return okStatus();
  }

  Status setVersionstampedKey(std::string_view key, int64_t offset, std::string_view value) {
    std::lock_guard lock(mu_);
    if (auto e = unusableForWrite()) return *e;
    if (auto e = checkKey(key, "setVersionstampedKey")) return *e;
    if (auto e = checkValue(value)) return *e;
    if (isSystemKey(key)) return systemKeyError("setVersionstampedKey");
    if (auto e = checkOffset("setVersionstampedKey", "key", offset, key.size())) return *e;
    if (auto e = account(mutationBytes(key.size(), value.size()))) return *e;
    writes_.addVersionstamped(proto::Mutation{proto::MutationType::kSetVersionstampedKey, Bytes(key), Bytes(value),
                                              static_cast<int32_t>(offset)});
    return okStatus();
  }

  Status setVersionstampedValue(std::string_view key, std::string_view value, int64_t offset) {
    std::lock_guard lock(mu_);
    if (auto e = unusableForWrite()) return *e;
    if (auto e = checkKey(key, "setVersionstampedValue")) return *e;
    if (auto e = checkValue(value)) return *e;
    if (isSystemKey(key) && key != kMetadataVersionKey) return systemKeyError("setVersionstampedValue");
    if (auto e = checkOffset("setVersionstampedValue", "value", offset, value.size())) return *e;
    if (auto e = account(mutationBytes(key.size(), value.size()))) return *e;
    writes_.addVersionstamped(proto::Mutation{proto::MutationType::kSetVersionstampedValue, Bytes(key), Bytes(value),
                                              static_cast<int32_t>(offset)});
    return okStatus();
  }

  Status atomicOp(std::string_view key, std::string_view param, AtomicOp op) {
    std::lock_guard lock(mu_);
    if (auto e = unusableForWrite()) return *e;
    const auto type = static_cast<proto::MutationType>(op);
    if (!isAtomic(type)) return TxnError(ErrorCode::kInvalidArgument, "atomicOp: unknown operation " + std::to_string(static_cast<int>(op)));
    if (auto e = checkKey(key, "atomicOp")) return *e;
    if (auto e = checkValue(param)) return *e;
    if (isSystemKey(key)) return systemKeyError("atomicOp");
    if (auto e = account(mutationBytes(key.size(), param.size()))) return *e;
    writes_.atomic(type, key, param);
    return okStatus();
  }

  // ------------------------------------------------------------------ commit
  void commit(Callback<Void> cb) {
    uint64_t gen;
    std::optional<TxnError> tooLarge;
    std::shared_ptr<proto::CommitRequest> req = std::make_shared<proto::CommitRequest>();
    {
      std::unique_lock lock(mu_);
      std::optional<TxnError> err = unusableForWrite();
      if (!err && state_ == CommitState::kCommitting) {
        err = TxnError(ErrorCode::kInvalidArgument, "commit() called while a commit is in flight");
      }
      if (!err && state_ == CommitState::kFailed) err = *commitError_;
      if (err) {
        lock.unlock();
        return cb(*err);
      }
      if (state_ == CommitState::kCommitted) {
        lock.unlock();
        return cb(Void{});
      }
      req->mutations = writes_.mutations();
      if (req->mutations.empty()) {
        // Nothing written: nothing is sent, nothing can conflict; version -1.
        state_ = CommitState::kCommitted;
        committedVersion_ = -1;
        auto waiters = std::move(vsWaiters_);
        vsWaiters_.clear();
        lock.unlock();
        for (auto& w : waiters) w(noVersionstamp());
        return cb(Void{});
      }
      req->readConflicts = readConflicts_;
      state_ = CommitState::kCommitting;
      gen = gen_;
      // read conflicts count toward the limit too, as on the server
      size_t total = bytes_;
      for (const auto& r : readConflicts_) total += readConflictBytes(r.begin.size(), r.end.size());
      if (total > kMaxTransactionBytes) {
        tooLarge = TxnError(ErrorCode::kTransactionTooLarge,
                            "transaction is " + std::to_string(total) + " bytes with its " +
                                std::to_string(readConflicts_.size()) + " read-conflict ranges (" +
                                std::to_string(total - bytes_) + " bytes); limit " + std::to_string(kMaxTransactionBytes));
      }
    }
    if (tooLarge) return commitDone(gen, *tooLarge, std::move(cb));
    auto self = shared_from_this();
    withReadVersion(gen, [self, gen, req, cb = std::move(cb)](Result<int64_t> rv) mutable {
      if (!rv) return self->commitDone(gen, rv.error(), std::move(cb));
      req->readVersion = *rv;
      auto deadline = Clock::now() + std::chrono::milliseconds(self->db_->options().transactionTimeoutMs);
      self->db_->submit(OutgoingRequest{std::move(*req), true, deadline,
                                        [self, gen, cb = std::move(cb)](Result<proto::Body> r) mutable {
                                          if (!r) return self->commitDone(gen, r.error(), std::move(cb));
                                          auto* reply = std::get_if<proto::CommitReply>(&*r);
                                          if (!reply) {
                                            return self->commitDone(gen, unexpectedReply("CommitReply", *r),
                                                                    std::move(cb));
                                          }
                                          self->commitDone(gen, std::move(*reply), std::move(cb));
                                        }});
    });
  }

  int64_t committedVersion() const {
    std::lock_guard lock(mu_);
    return state_ == CommitState::kCommitted ? committedVersion_ : -1;
  }

  void getVersionstamp(Callback<Bytes> cb) {
    std::unique_lock lock(mu_);
    if (canceled_) {
      lock.unlock();
      return cb(canceledError());
    }
    switch (state_) {
      case CommitState::kCommitted: {
        Result<Bytes> r = committedVersion_ < 0 ? Result<Bytes>(noVersionstamp()) : Result<Bytes>(versionstamp_);
        lock.unlock();
        return cb(std::move(r));
      }
      case CommitState::kFailed: {
        TxnError e = *commitError_;
        lock.unlock();
        return cb(e);
      }
      default:
        vsWaiters_.push_back(std::move(cb));
    }
  }

  // ------------------------------------------------------------------ cancel / reset
  void cancel() {
    std::vector<Callback<Bytes>> waiters;
    {
      std::lock_guard lock(mu_);
      canceled_ = true;
      waiters = std::move(vsWaiters_);
      vsWaiters_.clear();
    }
    for (auto& w : waiters) w(canceledError());
  }

  void reset() {
    std::vector<Callback<int64_t>> rvWaiters;
    std::vector<Callback<Bytes>> vsWaiters;
    {
      std::lock_guard lock(mu_);
      ++gen_;
      canceled_ = false;
      start_ = Clock::now();
      readVersion_.reset();
      readVersionSet_ = false;
      readStarted_ = false;
      refused_.reset();
      grvInFlight_ = false;
      rvWaiters = std::move(rvWaiters_);
      rvWaiters_.clear();
      vsWaiters = std::move(vsWaiters_);
      vsWaiters_.clear();
      writes_.reset();
      readConflicts_.clear();
      bytes_ = 0;
      state_ = CommitState::kOpen;
      committedVersion_ = -1;
      versionstamp_.clear();
      commitError_.reset();
    }
    for (auto& w : rvWaiters) w(resetError());
    for (auto& w : vsWaiters) w(resetError());
  }

 private:
  enum class CommitState { kOpen, kCommitting, kCommitted, kFailed };

  Clock::time_point deadline_() const {
    return start_ + std::chrono::milliseconds(db_->options().transactionTimeoutMs);
  }

  // mu_ held.
  std::optional<TxnError> unusable() const {
    if (canceled_) return canceledError();
    if (refused_) return refused_;
    if (Clock::now() > deadline_()) {
      return TxnError(ErrorCode::kTimeout, "the transaction is older than transactionTimeoutMs (" +
                                               std::to_string(db_->options().transactionTimeoutMs) + " ms)");
    }
    return std::nullopt;
  }
  std::optional<TxnError> unusableForWrite() const {
    if (auto e = unusable()) return e;
    if (readOnly_) return TxnError(ErrorCode::kInvalidArgument, "write on a read-only transaction");
    return std::nullopt;
  }
  static std::optional<TxnError> checkKey(std::string_view key, std::string_view what) {
    if (key.size() > kMaxKeyBytes) {
      return TxnError(ErrorCode::kKeyTooLarge, std::string(what) + ": key is " + std::to_string(key.size()) +
                                                   " bytes; limit " + std::to_string(kMaxKeyBytes));
    }
    return std::nullopt;
  }
  static std::optional<TxnError> checkValue(std::string_view value) {
    if (value.size() > kMaxValueBytes) {
      return TxnError(ErrorCode::kValueTooLarge, "value is " + std::to_string(value.size()) + " bytes; limit " +
                                                     std::to_string(kMaxValueBytes));
    }
    return std::nullopt;
  }
  static std::optional<TxnError> checkOffset(std::string_view what, std::string_view of, int64_t offset,
                                             size_t size) {
    if (offset < 0 || static_cast<uint64_t>(offset) + kVersionstampBytes > size) {
      return TxnError(ErrorCode::kInvalidArgument, std::string(what) + ": offset " + std::to_string(offset) +
                                                       " + 10 exceeds the " + std::string(of) + " length " +
                                                       std::to_string(size));
    }
    return std::nullopt;
  }
  static TxnError systemKeyError(std::string_view what) {
    return TxnError(ErrorCode::kInvalidArgument,
                    std::string(what) + ": keys beginning with 0xff are the system keyspace (writes refused)");
  }
  static TxnError invertedError(std::string_view what, std::string_view begin, std::string_view end) {
    return TxnError(ErrorCode::kInvalidArgument, std::string(what) + ": begin (" + std::to_string(begin.size()) +
                                                     " bytes) is after end (" + std::to_string(end.size()) +
                                                     " bytes): an inverted range");
  }
  static TxnError unreadableError(std::string_view key) {
    return TxnError(ErrorCode::kInvalidArgument,
                    "accessed unreadable: key " + printableKey(key) +
                        " has a pending setVersionstampedValue in this transaction; its value is known only after commit");
  }
  static std::string printableKey(std::string_view k) {
    std::string out;
    static const char* hex = "0123456789abcdef";
    for (size_t i = 0; i < k.size() && i < 64; ++i) {
      auto c = static_cast<unsigned char>(k[i]);
      if (c >= 0x20 && c < 0x7f && c != '\\') {
        out += static_cast<char>(c);
      } else {
        out += "\\x";
        out += hex[c >> 4];
        out += hex[c & 15];
      }
    }
    if (k.size() > 64) out += "... (" + std::to_string(k.size()) + " bytes)";
    return out;
  }
  static TxnError noVersionstamp() {
    return TxnError(ErrorCode::kFailed, "the transaction wrote nothing, so it has no versionstamp");
  }
  std::optional<TxnError> account(size_t n) {
    if (bytes_ + n > kMaxTransactionBytes) {
      return TxnError(ErrorCode::kTransactionTooLarge, "transaction would affect " + std::to_string(bytes_ + n) +
                                                           " bytes; limit " + std::to_string(kMaxTransactionBytes));
    }
    bytes_ += n;
    return std::nullopt;
  }

  // Replies of an older generation (reset since) or of a canceled transaction.
  std::optional<TxnError> stale(uint64_t gen) const {
    std::lock_guard lock(mu_);
    if (gen != gen_) return resetError();
    if (canceled_) return canceledError();
    return std::nullopt;
  }

  template <typename T>
  static void deliverLater(Callback<T> cb, TxnError e) {
    cb(std::move(e));
  }

  // Runs k with the read version: the pinned one, or one GetReadVersion shared by every
  // read that needs it meanwhile.
  void withReadVersion(uint64_t gen, Callback<int64_t> k) {
    std::unique_lock lock(mu_);
    if (gen != gen_) {
      lock.unlock();
      return k(resetError());
    }
    if (readVersion_) {
      int64_t v = *readVersion_;
      lock.unlock();
      return k(v);
    }
    rvWaiters_.push_back(std::move(k));
    if (grvInFlight_) return;
    grvInFlight_ = true;
    auto deadline = deadline_();
    lock.unlock();
    auto self = shared_from_this();
    db_->submit(OutgoingRequest{proto::GetReadVersionRequest{}, false, deadline, [self, gen](Result<proto::Body> r) {
                                  Result<int64_t> rv = TxnError(ErrorCode::kFailed, "");
                                  if (!r) {
                                    rv = r.error();
                                  } else if (auto* reply = std::get_if<proto::GetReadVersionReply>(&*r)) {
                                    rv = reply->readVersion;
                                  } else {
                                    rv = unexpectedReply("GetReadVersionReply", *r);
                                  }
                                  std::vector<Callback<int64_t>> waiters;
                                  {
                                    std::lock_guard lock(self->mu_);
                                    if (gen != self->gen_) return;  // reset already failed the waiters
                                    self->grvInFlight_ = false;
                                    if (rv.ok()) {
                                      if (!self->readVersion_) self->readVersion_ = *rv;
                                      rv = *self->readVersion_;
                                    }
                                    waiters = std::move(self->rvWaiters_);
                                    self->rvWaiters_.clear();
                                  }
                                  for (auto& w : waiters) w(rv);
                                }});
  }

  void fetchPage(const std::shared_ptr<RangeRead>& st) {
    proto::GetRangeRequest req;
    req.readVersion = st->readVersion;
    req.limit = static_cast<int32_t>(st->limit);
    req.reverse = st->reverse;
    req.beginKey = st->firstBegin.key;
    req.beginInclusive = st->firstBegin.inclusive;
    req.endKey = st->firstEnd.key;
    req.endInclusive = st->firstEnd.inclusive;
    if (!st->rows.empty()) {  // continue after the last row the server gave us
      if (st->reverse) {
        req.endKey = st->rows.back().key;
        req.endInclusive = false;
      } else {
        req.beginKey = st->rows.back().key;
        req.beginInclusive = false;
      }
    }
    auto self = shared_from_this();
    db_->submit(OutgoingRequest{std::move(req), false, st->deadline, [self, st](Result<proto::Body> r) {
                                  if (!r) return st->cb(r.error());
                                  auto* reply = std::get_if<proto::GetRangeReply>(&*r);
                                  if (!reply) return st->cb(unexpectedReply("GetRangeReply", *r));
                                  self->onPage(st, std::move(*reply));
                                }});
  }

  void onPage(const std::shared_ptr<RangeRead>& st, proto::GetRangeReply page) {
    bool shortPage = page.hasMore && page.kvs.size() < st->limit;
    // An empty page that claims more would loop forever: treat it as the end.
    st->serverDone = !page.hasMore || page.kvs.empty();
    for (auto& kv : page.kvs) st->rows.push_back(std::move(kv));
    RangeResult result;
    {
      std::unique_lock lock(mu_);
      if (st->gen != gen_ || canceled_) {
        lock.unlock();
        return st->cb(st->gen != gen_ ? resetError() : canceledError());
      }
      MergeStep step = mergeCovered(writes_, st->rows, st->serverDone, st->begin, st->end, st->limit, st->reverse);
      if (step.kvs.size() >= st->limit) {
        result.hasMore = step.moreInCovered || !st->serverDone;
      } else if (st->serverDone) {
        result.hasMore = false;
      } else if (shortPage && !step.kvs.empty()) {
        result.hasMore = true;  // the server cut the page by size: return what we have
      } else {
        lock.unlock();
        return fetchPage(st);  // our clears ate the page: read further
      }
      result.kvs = std::move(step.kvs);
      // the part of the range this result stands for: a key with a pending versionstamped
      // value inside it would have been a row of the result
      Bytes extentBegin = st->begin, extentEnd = st->end;
      if (result.hasMore && !result.kvs.empty()) {
        if (st->reverse) extentBegin = result.kvs.back().key;
        else extentEnd = keyAfter(result.kvs.back().key);
      }
      if (auto k = writes_.firstUnreadableIn(extentBegin, extentEnd)) {
        lock.unlock();
        return st->cb(unreadableError(*k));
      }
      if (!st->snapshot) {
        if (auto c = rangeReadConflict(st->begin, st->end, result.kvs, result.hasMore, st->reverse)) {
          readConflicts_.push_back(std::move(*c));
        }
      }
    }
    st->cb(std::move(result));
  }

  template <typename R>
  void commitDone(uint64_t gen, R&& outcome, Callback<Void> cb) {
    std::vector<Callback<Bytes>> waiters;
    Result<Bytes> forWaiters = TxnError(ErrorCode::kFailed, "");
    Status forCaller = okStatus();
    {
      std::lock_guard lock(mu_);
      if constexpr (std::is_same_v<std::decay_t<R>, TxnError>) {
        forCaller = outcome;
        forWaiters = outcome;
        if (gen == gen_) {
          state_ = CommitState::kFailed;
          commitError_ = outcome;
        }
      } else {
        if (gen == gen_) {
          state_ = CommitState::kCommitted;
          committedVersion_ = outcome.commitVersion;
          versionstamp_ = outcome.versionstamp;
        }
        forWaiters = outcome.versionstamp;
      }
      if (gen == gen_) {
        waiters = std::move(vsWaiters_);
        vsWaiters_.clear();
      }
    }
    for (auto& w : waiters) w(forWaiters);
    cb(std::move(forCaller));
  }

  mutable std::mutex mu_;
  std::shared_ptr<DatabaseImpl> db_;
  const bool readOnly_;
  uint64_t gen_ = 0;  // bumped by reset(); replies of an older generation change nothing
  bool canceled_ = false;
  Clock::time_point start_;
  std::optional<int64_t> readVersion_;
  bool readVersionSet_ = false;  // setReadVersion pinned readVersion_
  bool readStarted_ = false;     // something was read or getReadVersion asked
  std::optional<TxnError> refused_;  // a refused setReadVersion: fails every later call
  bool grvInFlight_ = false;
  std::vector<Callback<int64_t>> rvWaiters_;
  WriteBuffer writes_;
  std::vector<KeyRange> readConflicts_;
  size_t bytes_ = 0;
  CommitState state_ = CommitState::kOpen;
  int64_t committedVersion_ = -1;
  Bytes versionstamp_;
  std::optional<TxnError> commitError_;
  std::vector<Callback<Bytes>> vsWaiters_;
};

}  // namespace detail

// ---------------------------------------------------------------------- blocking glue
namespace {
template <typename T, typename Start>
Result<T> waitFor(Start&& start) {
  if (detail::onIoThread()) {
    return TxnError(ErrorCode::kFailed, "blocking txkv call on the Database's I/O thread (use the *Async form)");
  }
  auto p = std::make_shared<std::promise<Result<T>>>();
  auto f = p->get_future();
  start([p](Result<T> r) { p->set_value(std::move(r)); });
  return f.get();
}
TxnError invalidHandle() { return TxnError(ErrorCode::kInvalidArgument, "empty transaction handle"); }
}  // namespace

void ReadTransaction::setReadVersion(int64_t version) { impl_->setReadVersion(version); }
void ReadTransaction::getReadVersionAsync(Callback<int64_t> cb) { impl_->getReadVersion(std::move(cb)); }
void ReadTransaction::snapshotGetAsync(std::string_view key, Callback<std::optional<Bytes>> cb) {
  impl_->get(key, true, std::move(cb));
}
void ReadTransaction::getAsync(std::string_view key, Callback<std::optional<Bytes>> cb) {
  impl_->get(key, false, std::move(cb));
}
void ReadTransaction::snapshotGetRangeAsync(const KeySelector& begin, const KeySelector& end, RangeOptions opts,
                                            Callback<RangeResult> cb) {
  impl_->getRange(begin, end, opts, true, std::move(cb));
}
void ReadTransaction::getRangeAsync(const KeySelector& begin, const KeySelector& end, RangeOptions opts,
                                    Callback<RangeResult> cb) {
  impl_->getRange(begin, end, opts, false, std::move(cb));
}
Result<int64_t> ReadTransaction::getReadVersion() {
  if (!impl_) return invalidHandle();
  return waitFor<int64_t>([&](auto cb) { getReadVersionAsync(std::move(cb)); });
}
Result<std::optional<Bytes>> ReadTransaction::snapshotGet(std::string_view key) {
  if (!impl_) return invalidHandle();
  return waitFor<std::optional<Bytes>>([&](auto cb) { snapshotGetAsync(key, std::move(cb)); });
}
Result<std::optional<Bytes>> ReadTransaction::get(std::string_view key) {
  if (!impl_) return invalidHandle();
  return waitFor<std::optional<Bytes>>([&](auto cb) { getAsync(key, std::move(cb)); });
}
Result<RangeResult> ReadTransaction::snapshotGetRange(const KeySelector& begin, const KeySelector& end,
                                                      RangeOptions opts) {
  if (!impl_) return invalidHandle();
  return waitFor<RangeResult>([&](auto cb) { snapshotGetRangeAsync(begin, end, opts, std::move(cb)); });
}
Result<RangeResult> ReadTransaction::getRange(const KeySelector& begin, const KeySelector& end, RangeOptions opts) {
  if (!impl_) return invalidHandle();
  return waitFor<RangeResult>([&](auto cb) { getRangeAsync(begin, end, opts, std::move(cb)); });
}
void ReadTransaction::cancel() { impl_->cancel(); }
void ReadTransaction::reset() { impl_->reset(); }

Status Transaction::addReadConflictKey(std::string_view key) { return impl_->addReadConflictRange(key, keyAfter(key)); }
Status Transaction::addReadConflictRange(std::string_view begin, std::string_view end) {
  return impl_->addReadConflictRange(begin, end);
}
Status Transaction::set(std::string_view key, std::string_view value) { return impl_->set(key, value); }
Status Transaction::atomicOp(std::string_view key, std::string_view param, AtomicOp op) { return impl_->atomicOp(key, param, op); }
Status Transaction::clear(std::string_view key) { return impl_->clear(key); }
Status Transaction::clearRange(std::string_view begin, std::string_view end) { return impl_->clearRange(begin, end); }
Status Transaction::setVersionstampedKey(std::string_view key, int64_t offset, std::string_view value) {
  return impl_->setVersionstampedKey(key, offset, value);
}
Status Transaction::setVersionstampedValue(std::string_view key, std::string_view value, int64_t offset) {
  return impl_->setVersionstampedValue(key, value, offset);
}
void Transaction::commitAsync(Callback<Void> cb) { impl_->commit(std::move(cb)); }
Status Transaction::commit() {
  if (!impl_) return invalidHandle();
  return waitFor<Void>([&](auto cb) { commitAsync(std::move(cb)); });
}
int64_t Transaction::getCommittedVersion() const { return impl_->committedVersion(); }
void Transaction::getVersionstampAsync(Callback<Bytes> cb) { impl_->getVersionstamp(std::move(cb)); }
Result<Bytes> Transaction::getVersionstamp() {
  if (!impl_) return invalidHandle();
  return waitFor<Bytes>([&](auto cb) { getVersionstampAsync(std::move(cb)); });
}

// ---------------------------------------------------------------------- Database
Result<std::shared_ptr<Database>> Database::connect(ConnectOptions options) {
  auto impl = detail::makeDatabaseImpl(std::move(options));
  if (!impl) return impl.error();
  return std::shared_ptr<Database>(new Database(std::move(impl).value()));
}

Database::~Database() { close(); }

Transaction Database::createTransaction() {
  return Transaction(std::make_shared<detail::TransactionImpl>(impl_, false));
}
ReadTransaction Database::createReadOnlyTransaction() {
  return ReadTransaction(std::make_shared<detail::TransactionImpl>(impl_, true));
}
void Database::close() { impl_->close(); }
const ConnectOptions& Database::options() const { return impl_->options(); }

// Equal jitter, 5 ms doubling to 1 s. UNAVAILABLE starts at 50 ms: a replica answers it at
// once while the cluster has no leader (2-2.5 s after a kill -9 of the leader), and from
// 5 ms the 10 retries of transact() were spent in 1.6-3.3 s; from 50 ms they span 3.275-6.55 s
// (the TypeScript SDK's retryDelayMs does the same).
void Database::backoffSleep(int attempt, ErrorCode code) {
  static thread_local std::minstd_rand rng{std::random_device{}()};
  int64_t ms = code == ErrorCode::kUnavailable ? 50 : 5;
  for (int i = 0; i < attempt && ms < 1000; ++i) ms *= 2;
  ms = std::min<int64_t>(ms, 1000);
  ms = ms / 2 + static_cast<int64_t>(rng() % static_cast<uint64_t>(ms / 2 + 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

}  // namespace txkv
