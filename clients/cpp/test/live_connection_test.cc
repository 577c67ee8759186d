// Connection loss, through a TCP proxy the test controls: a connection that drops while a
// commit is in flight yields MAYBE_COMMITTED (and here the commit really happened, once: it
// is never sent again); reads in flight are asked once more over another connection, at
// the same read version, and fail NETWORK_ERROR only when no server is left to ask;
// unanswered requests time out; the pool reconnects afterwards.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "live_support.h"

namespace txkv::live {
namespace {

class Proxy {
 public:
  explicit Proxy(const std::string& url) {
    auto colon = url.rfind(':');
    upstreamPort_ = std::stoi(url.substr(colon + 1));
    listenFd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listenFd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = loopback(0);
    if (::bind(listenFd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("bind");
    socklen_t len = sizeof a;
    ::getsockname(listenFd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(listenFd_, 16);
    acceptor_ = std::thread([this] { acceptLoop(); });
  }
  ~Proxy() {
    stopping_ = true;
    ::shutdown(listenFd_, SHUT_RDWR);
    ::close(listenFd_);
    killAll();
    acceptor_.join();
    std::lock_guard l(mu_);
    for (auto& t : pumps_) t.join();
  }
  std::string url() const { return "ws://127.0.0.1:" + std::to_string(port_); }
  void swallowReplies(bool on) { swallow_ = on; }
  // Swallows the replies of every connection from its `chunks`-th reply chunk on: with 2,
  // a new connection's WebSocket upgrade and HelloReply pass (the client sends its Hello
  // only after the upgrade, so they come in two), then its requests go unanswered.
  void swallowRepliesAfter(int chunks) {
    passChunks_ = chunks;
    swallow_ = true;
  }
  int swallowed() const { return swallowed_; }
  void refuse(bool on) { refuse_ = on; }
  void killAll() {
    std::lock_guard l(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
  }
  // Cuts every connection and lets the next ones through with their replies (a node that
  // dropped its connections, then answers again). Under mu_: a connection accepted after
  // this has its pumps started with swallow_ already off, so no held reply leaks out of
  // the cut connections and none of a new one is lost.
  void cutAll() {
    std::lock_guard l(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    swallow_ = false;
  }

 private:
  static sockaddr_in loopback(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    return a;
  }
  void acceptLoop() {
    while (!stopping_) {
      int c = ::accept(listenFd_, nullptr, nullptr);
      if (c < 0) return;
      if (refuse_) {
        ::close(c);
        continue;
      }
      int u = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a = loopback(upstreamPort_);
      if (::connect(u, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(c);
        ::close(u);
        continue;
      }
      std::lock_guard l(mu_);
      fds_.push_back(c);
      fds_.push_back(u);
      pumps_.emplace_back([this, c, u] { pump(c, u, false); });
      pumps_.emplace_back([this, c, u] { pump(u, c, true); });
    }
  }
  void pump(int from, int to, bool isReply) {
    char buf[65536];
    int forwarded = 0;
    for (;;) {
      ssize_t n = ::recv(from, buf, sizeof buf, 0);
      if (n <= 0) break;
      if (isReply && swallow_ && forwarded >= passChunks_) {
        ++swallowed_;
        continue;
      }
      ++forwarded;
      if (::send(to, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
    }
    ::shutdown(from, SHUT_RDWR);
    ::shutdown(to, SHUT_RDWR);
  }

  int listenFd_ = -1;
  int port_ = 0;
  int upstreamPort_ = 0;
  std::atomic<bool> stopping_{false}, swallow_{false}, refuse_{false};
  std::atomic<int> passChunks_{0}, swallowed_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> pumps_;
};

using ConnectionLoss = LiveTest;

ConnectOptions through(const Proxy& proxy, int64_t timeoutMs = 5000) {
  ConnectOptions o;
  o.endpoints = {proxy.url()};
  o.connectionPoolSize = 1;
  o.transactionTimeoutMs = timeoutMs;
  o.maxBackoffMs = 100;
  return o;
}

TEST_F(ConnectionLoss, DropDuringCommitIsMaybeCommittedAndThePoolReconnects) {
  Proxy proxy(serverUrl());
  auto pdb = connectDb(through(proxy));
  auto key = prefix() + "maybe";
  {
    Transaction warm = pdb->createTransaction();
    must(warm.getReadVersion());  // connection up, read version known
  }
  Transaction tx = pdb->createTransaction();
  must(tx.getReadVersion());
  must(tx.set(key, "committed?"));
  proxy.swallowReplies(true);
  std::promise<Status> done;
  tx.commitAsync([&](Status s) { done.set_value(std::move(s)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // the server commits; its reply is lost
  proxy.killAll();
  Status s = done.get_future().get();
  EXPECT_TRUE(hasCode(s.ok() ? std::nullopt : std::optional<TxnError>(s.error()), ErrorCode::kMaybeCommitted));
  proxy.swallowReplies(false);
  // The pool reconnects (backoff) and the "maybe" was in fact a commit.
  Transaction check = pdb->createTransaction();
  auto v = check.get(key);
  for (int i = 0; i < 20 && !v.ok(); ++i) {  // the first try may race the reconnect backoff
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    check.reset();
    v = check.get(key);
  }
  EXPECT_EQ(must(std::move(v)), "committed?");
}

// The replies are held (the server answered, nothing arrived) while a get, a range read and
// a read version are in flight, then the connection drops: each is asked once more over a
// new connection, the reads at the transaction's read version (a write committed after it
// stays unseen), and the transaction goes on with its read conflicts.
TEST_F(ConnectionLoss, DropDuringReadsAsksThemAgainAtTheSameReadVersion) {
  Proxy proxy(serverUrl());
  auto pdb = connectDb(through(proxy));
  auto p = prefix();
  put(*pdb, {{p + "rr/k", "v1"}});
  Transaction tx = pdb->createTransaction();
  int64_t rv = must(tx.getReadVersion());
  put(*db, {{p + "rr/k", "v2"}});  // after rv, not through the proxy
  proxy.swallowReplies(true);
  std::promise<Result<std::optional<Bytes>>> get;
  std::promise<Result<RangeResult>> range;
  std::promise<Result<int64_t>> grv;
  tx.getAsync(p + "rr/k", [&](auto r) { get.set_value(std::move(r)); });
  tx.getRangeAsync(sel(p + "rr/", true), sel(p + "rr0", false), {}, [&](auto r) { range.set_value(std::move(r)); });
  Transaction fresh = pdb->createTransaction();
  fresh.getReadVersionAsync([&](auto r) { grv.set_value(std::move(r)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // all three answered, the answers held
  proxy.cutAll();
  EXPECT_EQ(must(get.get_future().get(), "get"), "v1");
  auto kvs = must(range.get_future().get(), "getRange").kvs;
  ASSERT_EQ(kvs.size(), 1u);
  EXPECT_EQ(kvs[0].value, "v1");
  EXPECT_GT(must(grv.get_future().get(), "getReadVersion"), rv);
  EXPECT_EQ(must(tx.getReadVersion()), rv);
  must(tx.set(p + "rr/other", "x"));
  EXPECT_TRUE(failsWith(tx.commit(), ErrorCode::kConflict));  // it read rr/k at rv; v2 came after
}

// Two endpoints (two proxies to one server, as two nodes of a cluster): the node behind A
// drops its connections and refuses new ones; the reads in flight on A are answered over B.
TEST_F(ConnectionLoss, ReadsInFlightOnADeadEndpointAreAnsweredByTheOther) {
  Proxy a(serverUrl()), b(serverUrl());
  ConnectOptions o = through(a);
  o.endpoints = {a.url(), b.url()};
  o.connectionPoolSize = 2;
  auto pdb = connectDb(o);
  auto p = prefix();
  int64_t rv = put(*pdb, {{p + "k0", "0"}, {p + "k1", "1"}, {p + "k2", "2"}, {p + "k3", "3"}, {p + "k4", "4"}, {p + "k5", "5"}});
  for (int i = 0; i < 4; ++i) must(pdb->createTransaction().getReadVersion());  // both connections up
  a.swallowReplies(true);
  // least loaded first: the six gets go three to each endpoint
  std::vector<Transaction> txs;
  std::vector<std::promise<Result<std::optional<Bytes>>>> got(6);
  for (int i = 0; i < 6; ++i) {
    txs.push_back(pdb->createTransaction());
    txs.back().setReadVersion(rv);
    txs.back().getAsync(p + "k" + std::to_string(i), [&got, i](auto r) { got[i].set_value(std::move(r)); });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  a.refuse(true);
  a.cutAll();
  for (int i = 0; i < 6; ++i) EXPECT_EQ(must(got[i].get_future().get(), "get"), std::to_string(i)) << "key " << i;
}

// Asked again, but the server is gone (the proxy refuses): NETWORK_ERROR, once.
TEST_F(ConnectionLoss, DropDuringReadWithNoServerLeftIsNetworkError) {
  Proxy proxy(serverUrl());
  auto pdb = connectDb(through(proxy));
  Transaction tx = pdb->createTransaction();
  must(tx.getReadVersion());
  proxy.swallowReplies(true);
  std::promise<Result<std::optional<Bytes>>> done;
  tx.getAsync(prefix() + "k", [&](Result<std::optional<Bytes>> r) { done.set_value(std::move(r)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  proxy.refuse(true);
  proxy.killAll();
  EXPECT_TRUE(failsWith(done.get_future().get(), ErrorCode::kNetworkError));
}

// A read asked again whose second connection drops too fails NETWORK_ERROR: it is asked
// once more, not until its deadline.
TEST_F(ConnectionLoss, AReadIsAskedAgainOnlyOnce) {
  Proxy proxy(serverUrl());
  auto pdb = connectDb(through(proxy, 3000));
  Transaction tx = pdb->createTransaction();
  must(tx.getReadVersion());
  auto heldReplies = [&](int atLeast) {
    for (int i = 0; i < 500 && proxy.swallowed() < atLeast; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return proxy.swallowed();
  };
  proxy.swallowRepliesAfter(2);
  std::promise<Result<std::optional<Bytes>>> done;
  tx.getAsync(prefix() + "k", [&](Result<std::optional<Bytes>> r) { done.set_value(std::move(r)); });
  int first = heldReplies(1);
  ASSERT_GE(first, 1);
  proxy.killAll();
  ASSERT_GT(heldReplies(first + 1), first);  // the second ask was answered, on a new connection; held too
  proxy.killAll();
  EXPECT_TRUE(failsWith(done.get_future().get(), ErrorCode::kNetworkError));
}

// A commit in flight when the connection drops is not sent again, though the pool has a
// new connection at once: MAYBE_COMMITTED, and its atomic add is applied exactly once.
TEST_F(ConnectionLoss, DropDuringCommitIsNotSentAgain) {
  Proxy proxy(serverUrl());
  auto pdb = connectDb(through(proxy));
  auto key = prefix() + "once";
  must(pdb->createTransaction().getReadVersion());  // connection up
  Transaction tx = pdb->createTransaction();
  must(tx.getReadVersion());
  must(tx.add(key, bytes({1, 0, 0, 0, 0, 0, 0, 0})));
  proxy.swallowReplies(true);
  std::promise<Status> done;
  tx.commitAsync([&](Status s) { done.set_value(std::move(s)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the server commits; its reply is held
  proxy.cutAll();
  Status s = done.get_future().get();
  EXPECT_TRUE(hasCode(s.ok() ? std::nullopt : std::optional<TxnError>(s.error()), ErrorCode::kMaybeCommitted));
  Transaction check = db->createTransaction();  // the add happened, once
  must(check.getReadVersion());
  EXPECT_EQ(hex(must(check.get(key)).value_or("missing")), hex(bytes({1, 0, 0, 0, 0, 0, 0, 0})));
}

TEST_F(ConnectionLoss, UnansweredReadTimesOutUnansweredCommitIsMaybeCommitted) {
  Proxy proxy(serverUrl());
  auto pdb = connectDb(through(proxy, 400));
  Transaction tx = pdb->createTransaction();
  must(tx.getReadVersion());
  proxy.swallowReplies(true);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(failsWith(tx.get(prefix() + "k"), ErrorCode::kTimeout));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  Transaction w = pdb->createTransaction();
  w.setReadVersion(1);
  must(w.set(prefix() + "k", "v"));
  EXPECT_TRUE(failsWith(w.commit(), ErrorCode::kMaybeCommitted));
}

TEST_F(ConnectionLoss, RefusedConnectionsFailFastThenRecover) {
  Proxy proxy(serverUrl());
  proxy.refuse(true);
  auto pdb = connectDb(through(proxy));
  Transaction tx = pdb->createTransaction();
  EXPECT_TRUE(failsWith(tx.getReadVersion(), ErrorCode::kNetworkError));
  proxy.refuse(false);
  Result<int64_t> rv = TxnError(ErrorCode::kFailed, "not tried");
  for (int i = 0; i < 40 && !rv.ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    tx.reset();
    rv = tx.getReadVersion();
  }
  EXPECT_TRUE(rv.ok()) << rv.error().describe();
}

// Spec "Clusters": endpoints that answer with different database ids (here TXKV_URL and
// TXKV_READONLY_URL: two servers, two data directories) are refused with INVALID_ARGUMENT
// naming both, instead of the caller's reads and writes going to whichever answers.
TEST(DatabaseIds, EndpointsOfTwoDatabasesAreRefusedNamingBoth) {
  const char* other = std::getenv("TXKV_READONLY_URL");
  if (serverUrl().empty() || !other || !*other) GTEST_SKIP() << "needs TXKV_URL and TXKV_READONLY_URL";
  auto db = connectDb({.endpoints = {serverUrl(), other}, .connectionPoolSize = 2});
  // requests of one I/O tick, spread over both connections while they open: the ones on the
  // connection whose server answered second fail
  std::vector<std::promise<Result<int64_t>>> ps(10);
  std::vector<Transaction> txs;
  for (auto& p : ps) {
    txs.push_back(db->createTransaction());
    txs.back().getReadVersionAsync([&p](Result<int64_t> r) { p.set_value(std::move(r)); });
  }
  int refused = 0;
  for (auto& p : ps) {
    auto r = p.get_future().get();
    if (r.ok()) continue;
    ++refused;
    EXPECT_TRUE(hasCode(r.error(), ErrorCode::kInvalidArgument));
    EXPECT_NE(r.error().message().find(serverUrl()), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find(other), std::string::npos) << r.error().message();
  }
  EXPECT_GT(refused, 0);
}

}  // namespace
}  // namespace txkv::live
