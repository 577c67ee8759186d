// txkv C++ client: Database and transactions, the same operations and semantics
// as the TypeScript client (shared/spec/client-api.md).
//
// Threading and the async API
// ---------------------------
// A Database owns one I/O thread running a boost::asio::io_context; every socket,
// timer and reply is handled there. The *Async methods take a completion callback
// that is called exactly once, either
//   - on the Database's I/O thread (when the server answered or the connection failed), or
//   - inline on the calling thread, before the *Async call returns, when the answer is
//     known without the network (read-your-writes hit, CANCELED, TIMEOUT, bad argument).
// Callbacks must not block: hand the result to your executor (this is what a folly
// coroutine wrapper does: fulfil a folly::Promise and co_await its SemiFuture, which
// resumes on the awaiting coroutine's executor). See integrations/3fs/TxkvAwait.h.
//
// The blocking methods (no Async suffix) wait for the callback on a std::future.
// Never call them on the I/O thread (from inside a callback): they return FAILED there.
//
// Transactions are handles: copies refer to the same transaction. All methods of a
// transaction may be called from any thread; calls are serialized by a mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "txkv/error.h"
#include "txkv/keys.h"

namespace txkv {

struct ConnectOptions {
  std::vector<std::string> endpoints;  // "ws://host:port[/path]" or "wss://host:port[/path]" (TLS)
  std::string token;                   // sent in HelloRequest
  // wss:// only: PEM file of the CA(s) that signed the servers' certificates (as the TS
  // client's caFile); empty = the system CA store. The certificate must name the
  // endpoint's host (DNS name or IP). Unreadable file: INVALID_ARGUMENT at connect.
  std::string caFile;
  int64_t transactionTimeoutMs = 10'000;
  int maxRetryCount = 10;              // used by Database::transact
  int connectionPoolSize = 2;          // WebSockets per Database, spread over endpoints
  int64_t connectTimeoutMs = 5'000;    // TCP connect + WebSocket handshake + Hello
  int64_t maxBackoffMs = 2'000;        // reconnect backoff cap (starts at 25 ms, doubles)
  std::string clientName = "txkv-cpp";
};

template <typename T>
using Callback = std::function<void(Result<T>)>;

namespace detail {
class DatabaseImpl;
class TransactionImpl;
}  // namespace detail

class ReadTransaction {
 public:
  // Pins the read version (> 0); reads then happen at it. As FoundationDB: only once and
  // before anything was read or getReadVersion asked; otherwise (or for version <= 0) the
  // transaction's next call fails with INVALID_ARGUMENT (this call returns nothing).
  void setReadVersion(int64_t version);

  void getReadVersionAsync(Callback<int64_t> cb);
  void snapshotGetAsync(std::string_view key, Callback<std::optional<Bytes>> cb);
  void getAsync(std::string_view key, Callback<std::optional<Bytes>> cb);
  void snapshotGetRangeAsync(const KeySelector& begin, const KeySelector& end, RangeOptions opts,
                             Callback<RangeResult> cb);
  void getRangeAsync(const KeySelector& begin, const KeySelector& end, RangeOptions opts, Callback<RangeResult> cb);

  Result<int64_t> getReadVersion();
  Result<std::optional<Bytes>> snapshotGet(std::string_view key);
  Result<std::optional<Bytes>> get(std::string_view key);
  Result<RangeResult> snapshotGetRange(const KeySelector& begin, const KeySelector& end, RangeOptions opts = {});
  Result<RangeResult> getRange(const KeySelector& begin, const KeySelector& end, RangeOptions opts = {});

  // After cancel() every further call fails with CANCELED (until reset()).
  void cancel();
  // Back to a fresh state: new read version on next read, nothing buffered, not canceled,
  // a new timeout period.
  void reset();

  bool valid() const { return impl_ != nullptr; }

 protected:
  friend class Database;
  explicit ReadTransaction(std::shared_ptr<detail::TransactionImpl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<detail::TransactionImpl> impl_;
};

// FoundationDB's atomic operations (values = the wire's MutationType). Semantics:
// little-endian unsigned integers for add/max/min/bit*, the operand's length wins, a
// missing key stores the operand (compareAndClear: stays missing); see the spec.
enum class AtomicOp : uint8_t {
  kAdd = 5,
  kBitAnd = 6,
  kBitOr = 7,
  kBitXor = 8,
  kMax = 9,
  kMin = 10,
  kByteMax = 11,
  kByteMin = 12,
  kAppendIfFits = 13,
  kCompareAndClear = 14,
};

class Transaction : public ReadTransaction {
 public:
  Status addReadConflictKey(std::string_view key);
  Status addReadConflictRange(std::string_view begin, std::string_view end);  // [begin, end)
  Status set(std::string_view key, std::string_view value);
  Status clear(std::string_view key);
  Status clearRange(std::string_view begin, std::string_view end);  // [begin, end)
  // Replace the 10 bytes at `offset` of the key (value) with the versionstamp at commit.
  Status setVersionstampedKey(std::string_view key, int64_t offset, std::string_view value);
  Status setVersionstampedValue(std::string_view key, std::string_view value, int64_t offset);
  // Applied at commit to the value there; adds no read conflict. A later get() in this
  // transaction sees the result. Errors: INVALID_ARGUMENT (system key, unknown op),
  // KEY_TOO_LARGE, VALUE_TOO_LARGE (param).
  Status atomicOp(std::string_view key, std::string_view param, AtomicOp op);
  Status add(std::string_view key, std::string_view param) { return atomicOp(key, param, AtomicOp::kAdd); }

  void commitAsync(Callback<Void> cb);
  Status commit();
  // After a successful commit: its version; -1 for a transaction that wrote nothing.
  int64_t getCommittedVersion() const;
  // 10 bytes; completes after a successful commit (fails with the commit's error).
  void getVersionstampAsync(Callback<Bytes> cb);
  Result<Bytes> getVersionstamp();

 private:
  friend class Database;
  using ReadTransaction::ReadTransaction;
};

class Database {
 public:
  // Validates the options and starts the I/O thread. Connections are opened lazily,
  // on the first request, so an unreachable server shows up as NETWORK_ERROR there.
  static Result<std::shared_ptr<Database>> connect(ConnectOptions options);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Transaction createTransaction();
  ReadTransaction createReadOnlyTransaction();

  // Retry loop (blocking): runs fn on a transaction, commits, and on a retryable error
  // (shouldRetry; MAYBE_COMMITTED only with allowMaybeCommitted) resets and runs again,
  // up to maxRetryCount retries with exponential backoff. fn returns Result<T>.
  template <typename T>
  Result<T> transact(const std::function<Result<T>(Transaction&)>& fn, bool allowMaybeCommitted = false);

  // Fails every pending request with NETWORK_ERROR, closes the sockets, joins the I/O thread.
  void close();
  const ConnectOptions& options() const;

 private:
  explicit Database(std::shared_ptr<detail::DatabaseImpl> impl) : impl_(std::move(impl)) {}
  // UNAVAILABLE (a cluster electing a leader, 2-2.5 s after one dies) waits longer: see transaction.cc.
  void backoffSleep(int attempt, ErrorCode code);
  std::shared_ptr<detail::DatabaseImpl> impl_;
};

template <typename T>
Result<T> Database::transact(const std::function<Result<T>(Transaction&)>& fn, bool allowMaybeCommitted) {
  Transaction tx = createTransaction();
  for (int attempt = 0;; ++attempt) {
    Result<T> r = fn(tx);
    std::optional<TxnError> err;
    if (r.ok()) {
      Status c = tx.commit();
      if (c.ok()) return r;
      err = c.error();
    } else {
      err = r.error();
    }
    if (!shouldRetry(*err, allowMaybeCommitted) || attempt >= options().maxRetryCount) return *err;
    backoffSleep(attempt, err->code());
    tx.reset();
  }
}

}  // namespace txkv
