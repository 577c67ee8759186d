// Connections and the pool of a Database. I/O thread only (except submit/close, which
// post to it). The only TU that includes Boost.Asio/Beast.
//
// A Connection is one WebSocket to one endpoint: Hello first, then requests batched
// per I/O tick into one Frame, replies matched by request id, a sweep timer for
// deadlines, and reconnect with exponential backoff. A connection lost with requests
// in flight fails commits with MAYBE_COMMITTED (the only place that code is born) and
// asks each read (get, range page, read version) once more over another connection
// (Pool::reask), as FoundationDB retries a read on another storage server: at its read
// version a read is idempotent. A read already asked again fails NETWORK_ERROR. Requests
// not yet sent are kept and sent on the next connection.
//
// wss:// endpoints run the same WebSocket over OpenSSL (boost::beast::ssl_stream): the
// peer's chain is verified against ConnectOptions::caFile (or the system store) and its
// name against the endpoint's host (DNS name or IP address, RFC 2818 style).
#include <boost/asio/io_context.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <algorithm>
#include <atomic>
#include <deque>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>

#include "database_impl.h"

namespace txkv::detail {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using PlainWs = websocket::stream<tcp::socket>;
using TlsWs = websocket::stream<beast::ssl_stream<tcp::socket>>;
using boost::system::error_code;

thread_local bool tlOnIoThread = false;

struct Endpoint {
  std::string url, host, port, path;
  bool tls = false;
};

Result<Endpoint> parseEndpoint(const std::string& url) {
  Endpoint ep{url, "", "80", "/"};
  std::string rest;
  if (url.rfind("wss://", 0) == 0) {
    ep.tls = true;
    ep.port = "443";
    rest = url.substr(6);
  } else if (url.rfind("ws://", 0) == 0) {
    rest = url.substr(5);
  } else {
    return TxnError(ErrorCode::kInvalidArgument, "endpoint " + url + " must start with ws:// or wss://");
  }
  auto slash = rest.find('/');
  if (slash != std::string::npos) {
    ep.path = rest.substr(slash);
    rest.resize(slash);
  }
  if (!rest.empty() && rest[0] == '[') {  // [v6]:port
    auto close = rest.find(']');
    if (close == std::string::npos) return TxnError(ErrorCode::kInvalidArgument, "endpoint " + url + ": bad IPv6 host");
    ep.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') ep.port = rest.substr(close + 2);
  } else {
    auto colon = rest.rfind(':');
    ep.host = rest.substr(0, colon);
    if (colon != std::string::npos) ep.port = rest.substr(colon + 1);
  }
  if (ep.host.empty() || ep.port.empty() ||
      !std::all_of(ep.port.begin(), ep.port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return TxnError(ErrorCode::kInvalidArgument, "endpoint " + url + ": expected ws[s]://host:port[/path]");
  }
  return ep;
}

class Pool;

constexpr size_t kMaxBatchedFrameBytes = 2u * 1024 * 1024;
// The server's per-frame limit (MAX_FRAME_ENVELOPES, docs/protocol.md "Limits"): it
// closes a connection whose frame holds more envelopes, before decoding any of them.
constexpr size_t kMaxFrameEnvelopes = 10000;

// Payload bytes of a request, for cutting batches into frames.
size_t approximateBytes(const proto::Body& body) {
  size_t n = 64;
  if (auto* c = std::get_if<proto::CommitRequest>(&body)) {
    for (const auto& r : c->readConflicts) n += r.begin.size() + r.end.size() + 16;
    for (const auto& m : c->mutations) n += m.key.size() + m.param.size() + 24;
  } else if (auto* g = std::get_if<proto::GetRequest>(&body)) {
    n += g->key.size();
  } else if (auto* r = std::get_if<proto::GetRangeRequest>(&body)) {
    n += r->beginKey.size() + r->endKey.size();
  }
  return n;
}

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class State { kIdle, kConnecting, kReady, kBackoff };

  Connection(asio::io_context& ioc, Endpoint ep, Pool& pool, const ConnectOptions& opts, ssl::context* tls)
      : ioc_(ioc), ep_(std::move(ep)), pool_(pool), opts_(opts), tls_(tls), resolver_(ioc), timer_(ioc), sweepTimer_(ioc) {}

  State state() const { return state_; }
  Clock::time_point backoffUntil() const { return backoffUntil_; }
  size_t load() const { return inflight_.size() + waiting_.size(); }
  const std::string& url() const { return ep_.url; }

  void submit(OutgoingRequest r) {
    waiting_.push_back(std::move(r));
    armSweep();
    switch (state_) {
      case State::kReady: scheduleFlush(); break;
      case State::kIdle: startConnect(); break;
      case State::kConnecting: break;
      case State::kBackoff: armReconnect(); break;
    }
  }

  // Open the connection ahead of need (pool warm-up).
  void warmUp() {
    if (state_ == State::kIdle) startConnect();
  }

  void shutdown(const TxnError& why) {
    closed_ = true;
    ++epoch_;
    timer_.cancel();
    sweepTimer_.cancel();
    resolver_.cancel();
    closeSocket();
    failAll(why, TxnError(ErrorCode::kMaybeCommitted, why.message() + " while the commit was in flight"));
  }

 private:
  struct Inflight {
    bool isCommit;
    Clock::time_point deadline;
    ReplyCallback done;
    bool reasked = false;
    // A read's request, kept (moved back from the encoded frame, no copy) to be asked
    // again if this connection drops before the reply; empty for commits and re-asks.
    std::optional<proto::Body> body;
  };

  void startConnect() {
    if (closed_) return;
    state_ = State::kConnecting;
    helloDone_ = false;
    uint64_t epoch = ++epoch_;
    ws_.reset();
    wss_.reset();
    if (ep_.tls) {
      wss_ = std::make_unique<TlsWs>(ioc_, *tls_);
    } else {
      ws_ = std::make_unique<PlainWs>(ioc_);
    }
    readBuf_.clear();
    timer_.expires_after(std::chrono::milliseconds(opts_.connectTimeoutMs));
    timer_.async_wait([self = shared_from_this(), epoch](error_code ec) {
      if (ec || epoch != self->epoch_ || self->state_ != State::kConnecting) return;
      self->connectFailed("timed out after " + std::to_string(self->opts_.connectTimeoutMs) + " ms");
    });
    resolver_.async_resolve(ep_.host, ep_.port, [self = shared_from_this(), epoch](error_code ec, tcp::resolver::results_type results) {
      if (epoch != self->epoch_) return;
      if (ec) return self->connectFailed("resolve: " + ec.message());
      asio::async_connect(self->socket(), results, [self, epoch](error_code ec, const tcp::endpoint&) {
        if (epoch != self->epoch_) return;
        if (ec) return self->connectFailed("connect: " + ec.message());
        self->socket().set_option(tcp::no_delay(true), ec);
        if (!self->wss_) return self->wsHandshake(epoch);
        self->tlsHandshake(epoch);
      });
    });
  }

  // wss://: SNI (names only, never an IP), then the chain (caFile or the system store)
  // and the certificate's name/IP against the endpoint's host.
  void tlsHandshake(uint64_t epoch) {
    auto& tls = wss_->next_layer();
    error_code notAnAddress;
    asio::ip::make_address(ep_.host, notAnAddress);
    if (notAnAddress && !SSL_set_tlsext_host_name(tls.native_handle(), ep_.host.c_str())) {
      return connectFailed("TLS: cannot set the server name " + ep_.host);
    }
    tls.set_verify_mode(ssl::verify_peer);
    tls.set_verify_callback(ssl::host_name_verification(ep_.host));
    tls.async_handshake(ssl::stream_base::client, [self = shared_from_this(), epoch](error_code ec) {
      if (epoch != self->epoch_) return;
      if (ec) return self->connectFailed("TLS handshake: " + ec.message());
      self->wsHandshake(epoch);
    });
  }

  void wsHandshake(uint64_t epoch) {
    withWs([&](auto& ws) {
      ws.binary(true);
      ws.read_message_max(512u * 1024 * 1024);
      ws.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
        req.set(beast::http::field::user_agent, "txkv-cpp");
      }));
      ws.async_handshake(ep_.host + ":" + ep_.port, ep_.path, [self = shared_from_this(), epoch](error_code ec) {
        if (epoch != self->epoch_) return;
        if (ec) return self->connectFailed("websocket handshake: " + ec.message());
        self->sendHello();
        self->doRead(epoch);
      });
    });
  }

  // The WebSocket of this connection (plain or over TLS; one of the two exists once connecting).
  template <typename F>
  void withWs(F&& f) {
    if (wss_) {
      f(*wss_);
    } else {
      f(*ws_);
    }
  }
  tcp::socket& socket() { return wss_ ? beast::get_lowest_layer(*wss_) : ws_->next_layer(); }

  void sendHello() {
    helloId_ = takeId();
    proto::HelloRequest hello{proto::kProtocolVersion, opts_.token, opts_.clientName};
    writeQueue_.push_back(std::make_shared<std::string>(proto::encodeFrame({{helloId_, std::move(hello)}})));
    doWrite(epoch_);
  }

  void onHello(Result<proto::Body> r) {
    if (r.ok() && std::holds_alternative<proto::HelloReply>(*r)) {
      // endpoints of two databases (a copy-pasted list, a node of another cluster): the
      // requests this connection holds fail INVALID_ARGUMENT naming both, instead of
      // splitting the caller's data between them (spec "Clusters"; the TypeScript pool too)
      if (auto e = checkDatabase(std::get<proto::HelloReply>(*r).databaseId)) r = std::move(*e);
    }
    if (r.ok() && std::holds_alternative<proto::HelloReply>(*r)) {
      timer_.cancel();
      state_ = State::kReady;
      helloDone_ = true;
      failures_ = 0;
      readOnly_ = std::get<proto::HelloReply>(*r).readOnly;
      scheduleFlush();
      return;
    }
    // The server answered but refused us (UNAUTHORIZED, PROTOCOL_ERROR): fail what waits
    // with that error, not NETWORK_ERROR; then back off like any failed connect.
    TxnError e = r.ok() ? TxnError(ErrorCode::kProtocolError, "expected HelloReply") : r.error();
    TxnError withUrl(e.code(), e.code() == ErrorCode::kInvalidArgument ? e.message() : ep_.url + ": " + e.message());
    ++epoch_;
    auto waiting = std::move(waiting_);
    waiting_.clear();
    enterBackoff();
    for (auto& w : waiting) w.done(withUrl);
  }

  void connectFailed(const std::string& why) {
    if (state_ != State::kConnecting) return;
    ++epoch_;
    timer_.cancel();
    enterBackoff();
    TxnError e(ErrorCode::kNetworkError, "cannot reach " + ep_.url + ": " + why);
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& w : waiting) {
      ++w.connectAttempts;
      failover(std::move(w), e);
    }
  }

  void failover(OutgoingRequest r, const TxnError& e);  // defined after Pool
  std::optional<TxnError> checkDatabase(const std::string& id);  // defined after Pool

  void enterBackoff() {
    closeSocket();
    state_ = State::kBackoff;
    ++failures_;
    int64_t delay = 25;
    for (int i = 1; i < failures_ && delay < opts_.maxBackoffMs; ++i) delay *= 2;
    delay = std::min<int64_t>(delay, opts_.maxBackoffMs);
    static thread_local std::minstd_rand rng{std::random_device{}()};
    delay = delay / 2 + static_cast<int64_t>(rng() % static_cast<uint64_t>(delay / 2 + 1));  // jitter
    backoffUntil_ = Clock::now() + std::chrono::milliseconds(delay);
    reconnectArmed_ = false;
    if (!waiting_.empty()) armReconnect();
  }

  void armReconnect() {
    if (reconnectArmed_ || closed_) return;
    reconnectArmed_ = true;
    timer_.expires_at(backoffUntil_);
    uint64_t epoch = epoch_;
    timer_.async_wait([self = shared_from_this(), epoch](error_code ec) {
      if (ec || epoch != self->epoch_ || self->state_ != State::kBackoff) return;
      self->reconnectArmed_ = false;
      if (!self->waiting_.empty()) self->startConnect();
    });
  }

  void closeSocket() {
    if (ws_ || wss_) {
      error_code ec;
      socket().close(ec);
    }
    writeQueue_.clear();
    writing_ = false;
  }

  // The connection broke after it was up: in-flight reads fail with `readError`,
  // in-flight commits with MAYBE_COMMITTED; requests not yet sent wait for the next connection.
  void lost(const TxnError& readError) {
    if (state_ != State::kReady && state_ != State::kConnecting) return;
    ++epoch_;
    timer_.cancel();
    TxnError maybe(ErrorCode::kMaybeCommitted,
                   "connection to " + ep_.url + " lost while the commit was in flight: " + readError.message());
    auto inflight = std::move(inflight_);
    inflight_.clear();
    enterBackoff();  // first: a re-ask then prefers any connection that is not backing off
    // A dropped connection (NETWORK_ERROR, not a bad frame) is most often a node killed or
    // restarted: its reads are asked once more elsewhere (Pool::reask), where transact()
    // would not retry NETWORK_ERROR. Commits are never sent twice.
    bool reask = readError.code() == ErrorCode::kNetworkError;
    for (auto& [id, f] : inflight) {
      if (f.isCommit) {
        f.done(maybe);
      } else if (reask && f.body && !f.reasked) {
        reaskElsewhere(OutgoingRequest{std::move(*f.body), false, f.deadline, std::move(f.done), 0, true});
      } else {
        f.done(readError);
      }
    }
  }

  void reaskElsewhere(OutgoingRequest r);  // defined after Pool

  void failAll(const TxnError& readError, const TxnError& commitError) {
    auto inflight = std::move(inflight_);
    inflight_.clear();
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& [id, f] : inflight) f.done(f.isCommit ? commitError : readError);
    for (auto& w : waiting) w.done(readError);
  }

  uint32_t takeId() {
    for (;;) {
      uint32_t id = nextId_++;
      if (id != 0 && !inflight_.contains(id)) return id;
    }
  }

  void scheduleFlush() {
    if (flushPosted_) return;
    flushPosted_ = true;
    asio::post(ioc_, [self = shared_from_this()] { self->flush(); });
  }

  // Everything submitted during one I/O tick goes out together: in one Frame, or in several
  // when it passes kMaxBatchedFrameBytes or kMaxFrameEnvelopes.
  void flush() {
    flushPosted_ = false;
    if (state_ != State::kReady || waiting_.empty()) return;
    std::vector<proto::Envelope> envs;
    size_t frameBytes = 0;
    auto cut = [&] {
      if (envs.empty()) return;
      writeQueue_.push_back(std::make_shared<std::string>(proto::encodeFrame(envs)));
      // encoded: a read that may be asked again gets its request back
      for (auto& env : envs) {
        auto& f = inflight_.at(env.requestId);
        if (!f.isCommit && !f.reasked) f.body = std::move(env.body);
      }
      envs.clear();
      frameBytes = 0;
    };
    auto now = Clock::now();
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& w : waiting) {
      if (w.deadline <= now) {
        w.done(TxnError(ErrorCode::kTimeout, "transaction timed out before the request was sent"));
        continue;
      }
      // Big commits get frames of their own, well under the server's maxFrameBytes (16 MiB).
      size_t bytes = approximateBytes(w.body);
      if (!envs.empty() && (frameBytes + bytes > kMaxBatchedFrameBytes || envs.size() == kMaxFrameEnvelopes)) cut();
      uint32_t id = takeId();
      envs.push_back(proto::Envelope{id, std::move(w.body)});
      frameBytes += bytes;
      inflight_.emplace(id, Inflight{w.isCommit, w.deadline, std::move(w.done), w.reasked, std::nullopt});
    }
    cut();
    doWrite(epoch_);
  }

  void doWrite(uint64_t epoch) {
    if (writing_ || writeQueue_.empty() || (!ws_ && !wss_)) return;
    writing_ = true;
    auto buf = writeQueue_.front();
    withWs([&](auto& ws) {
      ws.async_write(asio::buffer(*buf), [self = shared_from_this(), epoch, buf](error_code ec, size_t) {
        if (epoch != self->epoch_) return;
        self->writing_ = false;
        if (!self->writeQueue_.empty()) self->writeQueue_.pop_front();
        if (ec) return self->brokenSocket("write: " + ec.message());
        self->doWrite(epoch);
      });
    });
  }

  void doRead(uint64_t epoch) {
    withWs([&](auto& ws) {
      ws.async_read(readBuf_, [self = shared_from_this(), epoch](error_code ec, size_t) { self->onRead(epoch, ec); });
    });
  }

  void onRead(uint64_t epoch, error_code ec) {
    if (epoch != epoch_) return;
    if (ec) return brokenSocket("read: " + ec.message());
    bool binary = false;
    withWs([&](auto& ws) { binary = ws.got_binary(); });
    if (!binary) {
      readBuf_.consume(readBuf_.size());
      return brokenOnProtocol("server sent a text message");
    }
    auto data = readBuf_.data();
    auto frame = proto::decodeFrame(data.data(), data.size());
    readBuf_.consume(readBuf_.size());
    if (!frame) return brokenOnProtocol(frame.error().message());
    for (auto& env : *frame) {
      if (epoch != epoch_) return;  // a reply callback may have closed us
      dispatch(std::move(env));
    }
    if (epoch == epoch_) doRead(epoch);
  }

  void brokenSocket(const std::string& why) {
    if (state_ == State::kConnecting) return connectFailed(why);
    lost(TxnError(ErrorCode::kNetworkError, "connection to " + ep_.url + " lost (" + why + ")"));
  }

  void brokenOnProtocol(const std::string& why) {
    if (state_ == State::kConnecting) return connectFailed(why);
    lost(TxnError(ErrorCode::kProtocolError, ep_.url + " sent a bad frame: " + why));
  }

  void dispatch(proto::Envelope env) {
    Result<proto::Body> r = std::move(env.body);
    if (auto* er = std::get_if<proto::ErrorReply>(&*r)) r = TxnError::fromWire(er->code, er->message);
    if (!helloDone_ && env.requestId == helloId_) return onHello(std::move(r));
    if (env.requestId == 0) {
      // The server could not parse one of our frames: its requests get no reply and
      // fail by deadline. This is a client bug worth seeing in the log.
      std::cerr << "txkv: " << ep_.url << " rejected a frame: " << (r.ok() ? "?" : r.error().describe()) << "\n";
      return;
    }
    auto it = inflight_.find(env.requestId);
    if (it == inflight_.end()) return;  // answered after its deadline
    auto done = std::move(it->second.done);
    inflight_.erase(it);
    done(std::move(r));
  }

  void armSweep() {
    if (sweepArmed_ || closed_) return;
    sweepArmed_ = true;
    sweepTimer_.expires_after(std::chrono::milliseconds(50));
    sweepTimer_.async_wait([self = shared_from_this()](error_code ec) {
      self->sweepArmed_ = false;
      if (ec || self->closed_) return;
      self->sweep();
    });
  }

  void sweep() {
    auto now = Clock::now();
    std::vector<std::pair<ReplyCallback, TxnError>> expired;
    for (auto it = inflight_.begin(); it != inflight_.end();) {
      if (it->second.deadline <= now) {
        expired.emplace_back(std::move(it->second.done),
                             it->second.isCommit
                                 ? TxnError(ErrorCode::kMaybeCommitted,
                                            "no reply to the commit from " + ep_.url + " within the timeout")
                                 : TxnError(ErrorCode::kTimeout, "no reply from " + ep_.url + " within the transaction timeout"));
        it = inflight_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (it->deadline <= now) {
        expired.emplace_back(std::move(it->done),
                             TxnError(ErrorCode::kTimeout, "transaction timed out waiting for a connection to " + ep_.url));
        it = waiting_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [done, e] : expired) done(e);
    if (!inflight_.empty() || !waiting_.empty()) armSweep();
  }

  asio::io_context& ioc_;
  Endpoint ep_;
  Pool& pool_;
  const ConnectOptions& opts_;
  ssl::context* tls_;  // the Pool's; set when the endpoint is wss://
  tcp::resolver resolver_;
  asio::steady_timer timer_;  // connect timeout, then reconnect backoff
  asio::steady_timer sweepTimer_;
  std::unique_ptr<PlainWs> ws_;   // ws://
  std::unique_ptr<TlsWs> wss_;    // wss://
  beast::flat_buffer readBuf_;
  State state_ = State::kIdle;
  uint64_t epoch_ = 0;  // bumped on every (re)connect and loss; stale handlers return
  bool closed_ = false;
  bool helloDone_ = false;
  bool readOnly_ = false;
  uint32_t helloId_ = 0;
  uint32_t nextId_ = 1;
  int failures_ = 0;
  Clock::time_point backoffUntil_{};
  bool reconnectArmed_ = false;
  bool sweepArmed_ = false;
  bool flushPosted_ = false;
  bool writing_ = false;
  std::deque<OutgoingRequest> waiting_;
  std::unordered_map<uint32_t, Inflight> inflight_;
  std::deque<std::shared_ptr<std::string>> writeQueue_;
};

class Pool final : public DatabaseImpl {
 public:
  Pool(ConnectOptions opts, std::vector<Endpoint> eps, std::unique_ptr<ssl::context> tls)
      : opts_(std::move(opts)), tls_(std::move(tls)), work_(ioc_.get_executor()) {
    size_t n = std::max<size_t>(1, static_cast<size_t>(std::max(1, opts_.connectionPoolSize)));
    n = std::max(n, eps.size());
    for (size_t i = 0; i < n; ++i) {
      conns_.push_back(std::make_shared<Connection>(ioc_, eps[i % eps.size()], *this, opts_, tls_.get()));
    }
    thread_ = std::thread([this] {
      tlOnIoThread = true;
      ioc_.run();
    });
  }

  ~Pool() override {
    close();
  }

  void submit(OutgoingRequest req) override {
    std::unique_lock lock(mu_);
    if (closed_) {
      lock.unlock();
      req.done(TxnError(ErrorCode::kNetworkError, "the Database was closed"));
      return;
    }
    asio::post(ioc_, [this, r = std::move(req)]() mutable { route(std::move(r)); });
  }

  void close() override {
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      closed_ = true;
      asio::post(ioc_, [this] {
        // Fails every pending request, cancels timers, closes sockets: run() then
        // returns by itself once the aborted handlers have run (and dropped their refs).
        for (auto& c : conns_) c->shutdown(TxnError(ErrorCode::kNetworkError, "the Database was closed"));
      });
    }
    work_.reset();
    if (thread_.joinable()) {
      if (std::this_thread::get_id() == thread_.get_id()) {
        thread_.detach();  // closed from a callback: the thread ends after this handler
      } else {
        thread_.join();
      }
    }
  }

  const ConnectOptions& options() const override { return opts_; }

  // I/O thread. Ready connections first (round robin, least loaded), then ones being
  // opened, then idle ones, then the one whose backoff ends first. `avoid`: the endpoint
  // whose connection just dropped under this (re-asked) read; its other connections come
  // after those of every other endpoint (a killed node drops them all, one by one).
  void route(OutgoingRequest r, const std::string* avoid = nullptr) {
    if (closed_) return r.done(TxnError(ErrorCode::kNetworkError, "the Database was closed"));
    for (auto& c : conns_) c->warmUp();
    Connection* best = nullptr;
    size_t n = conns_.size();
    size_t start = rr_++;
    constexpr int kBackingOff = 6;
    auto rank = [avoid](const Connection& c) {
      int r = kBackingOff;
      switch (c.state()) {
        case Connection::State::kReady: r = 0; break;
        case Connection::State::kConnecting: r = 1; break;
        case Connection::State::kIdle: r = 2; break;
        case Connection::State::kBackoff: return kBackingOff;
      }
      return avoid && c.url() == *avoid ? r + 3 : r;
    };
    for (size_t i = 0; i < n; ++i) {
      Connection* c = conns_[(start + i) % n].get();
      if (!best) {
        best = c;
        continue;
      }
      int rc = rank(*c), rb = rank(*best);
      bool ready = c->state() == Connection::State::kReady;
      if (rc < rb || (rc == rb && ready && c->load() < best->load()) ||
          (rc == rb && rc == kBackingOff && c->backoffUntil() < best->backoffUntil())) {
        best = c;
      }
    }
    best->submit(std::move(r));
  }

  // A read whose connection (to `from`) dropped with it in flight: asked once more, on
  // another live connection, one being opened, or (none left) the first to reconnect.
  // If that one cannot be opened either, failover() ends it with NETWORK_ERROR.
  void reask(OutgoingRequest r, const std::string& from) { route(std::move(r), &from); }

  // The database id a connection's server reported: the first one seen is this pool's;
  // another one is INVALID_ARGUMENT. "" (a server that predates ids) passes.
  std::optional<TxnError> checkDatabase(const std::string& url, const std::string& id) {
    if (id.empty()) return std::nullopt;
    if (databaseId_.empty()) {
      databaseId_ = id;
      databaseUrl_ = url;
    }
    if (id == databaseId_) return std::nullopt;
    return TxnError(ErrorCode::kInvalidArgument,
                    "endpoints of different databases: " + databaseUrl_ + " serves database " + databaseId_ + " but " +
                        url + " serves database " + id +
                        "; list only the endpoints of one database (one server or one cluster)");
  }

  // A request whose connection could not be opened: try another connection that is
  // not backing off, at most once per pool member; then NETWORK_ERROR.
  void failover(OutgoingRequest r, const TxnError& e) {
    bool other = std::any_of(conns_.begin(), conns_.end(),
                             [](auto& c) { return c->state() != Connection::State::kBackoff; });
    if (other && r.connectAttempts < static_cast<int>(conns_.size())) return route(std::move(r));
    r.done(e);
  }

 private:
  ConnectOptions opts_;
  std::unique_ptr<ssl::context> tls_;  // only when an endpoint is wss://
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::shared_ptr<Connection>> conns_;
  size_t rr_ = 0;
  std::string databaseId_, databaseUrl_;  // the first database id a server reported, and where
  std::mutex mu_;
  std::atomic<bool> closed_{false};
  std::thread thread_;
};

void Connection::failover(OutgoingRequest r, const TxnError& e) { pool_.failover(std::move(r), e); }
void Connection::reaskElsewhere(OutgoingRequest r) { pool_.reask(std::move(r), ep_.url); }
std::optional<TxnError> Connection::checkDatabase(const std::string& id) { return pool_.checkDatabase(ep_.url, id); }

// TLS 1.2+, peers verified against caFile (PEM, one or more CAs) or the system store.
Result<std::unique_ptr<ssl::context>> makeTlsContext(const ConnectOptions& o) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                   ec);
  if (!o.caFile.empty()) {
    ctx->load_verify_file(o.caFile, ec);
    if (ec) return TxnError(ErrorCode::kInvalidArgument, "caFile " + o.caFile + " cannot be read: " + ec.message());
  } else {
    ctx->set_default_verify_paths(ec);
    if (ec) return TxnError(ErrorCode::kInvalidArgument, "no caFile and no system CA store: " + ec.message());
  }
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

}  // namespace

Result<std::shared_ptr<DatabaseImpl>> makeDatabaseImpl(ConnectOptions options) {
  if (options.endpoints.empty()) return TxnError(ErrorCode::kInvalidArgument, "ConnectOptions.endpoints is empty");
  // 0 means the default; a negative setting is a mistake, named rather than silently replaced
  auto negative = [](const char* name, int64_t v) {
    return TxnError(ErrorCode::kInvalidArgument, std::string("ConnectOptions.") + name + " must be >= 0 (0 = the default), got " + std::to_string(v));
  };
  if (options.transactionTimeoutMs < 0) return negative("transactionTimeoutMs", options.transactionTimeoutMs);
  if (options.connectTimeoutMs < 0) return negative("connectTimeoutMs", options.connectTimeoutMs);
  if (options.maxBackoffMs < 0) return negative("maxBackoffMs", options.maxBackoffMs);
  if (options.maxRetryCount < 0) return negative("maxRetryCount", options.maxRetryCount);
  if (options.connectionPoolSize < 0) return negative("connectionPoolSize", options.connectionPoolSize);
  std::vector<Endpoint> eps;
  for (const auto& url : options.endpoints) {
    auto ep = parseEndpoint(url);
    if (!ep) return ep.error();
    eps.push_back(std::move(ep).value());
  }
  std::unique_ptr<ssl::context> tls;
  if (std::any_of(eps.begin(), eps.end(), [](const Endpoint& e) { return e.tls; })) {
    auto made = makeTlsContext(options);
    if (!made) return made.error();
    tls = std::move(made).value();
  }
  if (options.transactionTimeoutMs <= 0) options.transactionTimeoutMs = 10'000;
  if (options.connectTimeoutMs <= 0) options.connectTimeoutMs = 5'000;
  if (options.maxBackoffMs < 25) options.maxBackoffMs = 25;
  return std::shared_ptr<DatabaseImpl>(std::make_shared<Pool>(std::move(options), std::move(eps), std::move(tls)));
}

bool onIoThread() { return tlOnIoThread; }

}  // namespace txkv::detail
