// The network side of a Database, seen by transactions: submit a request, get its
// reply body (or a TxnError) through a callback. Implemented in connection.cc, the
// only TU that includes Boost.Asio/Beast (keeps the build fast).
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "txkv/client.h"
#include "wire.h"

namespace txkv::detail {

using Clock = std::chrono::steady_clock;

// What the reply callback receives: the reply body (never an ErrorReply: those arrive
// as TxnError), or the error of the request (NETWORK_ERROR, MAYBE_COMMITTED, TIMEOUT...).
using ReplyCallback = std::function<void(Result<proto::Body>)>;

struct OutgoingRequest {
  proto::Body body;
  bool isCommit = false;         // a connection lost after sending it => MAYBE_COMMITTED
  Clock::time_point deadline;    // no reply by then => TIMEOUT (reads) / MAYBE_COMMITTED (commit)
  ReplyCallback done;
  int connectAttempts = 0;       // connections tried that could not be opened
  bool reasked = false;          // a read already asked again after its connection dropped
};

class DatabaseImpl {
 public:
  virtual ~DatabaseImpl() = default;
  // Thread-safe. `done` runs exactly once, on the I/O thread (or inline when closed).
  virtual void submit(OutgoingRequest req) = 0;
  virtual void close() = 0;
  virtual const ConnectOptions& options() const = 0;
};

Result<std::shared_ptr<DatabaseImpl>> makeDatabaseImpl(ConnectOptions options);
// True on any txkv Database's I/O thread (blocking calls refuse to run there).
bool onIoThread();

}  // namespace txkv::detail
