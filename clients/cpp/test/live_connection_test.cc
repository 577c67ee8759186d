// Connection loss, through a TCP proxy the test controls: a connection that drops while a
// commit is in flight yields MAYBE_COMMITTED (and here the commit really happened), during
// reads NETWORK_ERROR; unanswered requests time out; the pool reconnects afterwards.
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
  void refuse(bool on) { refuse_ = on; }
  void killAll() {
    std::lock_guard l(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
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
    for (;;) {
      ssize_t n = ::recv(from, buf, sizeof buf, 0);
      if (n <= 0) break;
      if (isReply && swallow_) continue;
      if (::send(to, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
    }
    ::shutdown(from, SHUT_RDWR);
    ::shutdown(to, SHUT_RDWR);
  }

  int listenFd_ = -1;
  int port_ = 0;
  int upstreamPort_ = 0;
  std::atomic<bool> stopping_{false}, swallow_{false}, refuse_{false};
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

TEST_F(ConnectionLoss, DropDuringReadIsNetworkError) {
  Proxy proxy(serverUrl());
  auto pdb = connectDb(through(proxy));
  Transaction tx = pdb->createTransaction();
  must(tx.getReadVersion());
  proxy.swallowReplies(true);
  std::promise<Result<std::optional<Bytes>>> done;
  tx.getAsync(prefix() + "k", [&](Result<std::optional<Bytes>> r) { done.set_value(std::move(r)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  proxy.killAll();
  EXPECT_TRUE(failsWith(done.get_future().get(), ErrorCode::kNetworkError));
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

}  // namespace
}  // namespace txkv::live
