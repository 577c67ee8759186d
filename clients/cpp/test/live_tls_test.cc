// wss:// (TLS) against a txkv server in TLS mode. Needs what scripts/test-cpp.sh starts:
// TXKV_TLS_URL (wss://localhost:PORT, tokens as TXKV_AUTH_URL: "cpp-rw-token") and
// TXKV_TLS_CA (the server's self-signed certificate; its only name is DNS:localhost, so
// wss://127.0.0.1 must fail the name check). Skipped without them.
#include <cstdlib>

#include "live_support.h"

namespace txkv::live {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

Result<std::shared_ptr<Database>> tlsDb(const std::string& url, const std::string& caFile,
                                        const std::string& token = "cpp-rw-token") {
  ConnectOptions o;
  o.endpoints = {url};
  o.caFile = caFile;
  o.token = token;
  o.connectionPoolSize = 1;
  o.connectTimeoutMs = 3000;
  o.transactionTimeoutMs = 5000;
  return Database::connect(o);
}

// "wss://localhost:PORT" -> "wss://127.0.0.1:PORT" (same server, a name the certificate lacks).
std::string byIp(std::string url) {
  auto at = url.find("localhost");
  return at == std::string::npos ? url : url.replace(at, 9, "127.0.0.1");
}

class Tls : public ::testing::Test {
 protected:
  void SetUp() override {
    url = env("TXKV_TLS_URL");
    ca = env("TXKV_TLS_CA");
    if (url.empty() || ca.empty()) GTEST_SKIP() << "TXKV_TLS_URL / TXKV_TLS_CA are not set";
  }
  std::string url, ca;
};

TEST_F(Tls, WssWithCaFileAndTokenReadsWritesAndCommits) {
  ASSERT_EQ(url.rfind("wss://", 0), 0u) << url;
  auto db = must(tlsDb(url, ca), "connect");
  auto k = prefix("tls") + "k";
  Transaction tx = db->createTransaction();
  must(tx.set(k, "secure"));
  must(tx.commit(), "commit");
  EXPECT_GT(tx.getCommittedVersion(), 0);
  Transaction rd = db->createTransaction();
  EXPECT_EQ(must(rd.get(k)), "secure");
  auto range = must(rd.getRange({k, true}, {k + "\xff", false}, {}));
  EXPECT_EQ(range.kvs.size(), 1u);
}

TEST_F(Tls, TokenIsStillCheckedOverTls) {
  auto db = must(tlsDb(url, ca, "wrong-token"), "connect");
  Transaction tx = db->createTransaction();
  EXPECT_TRUE(failsWith(tx.getReadVersion(), ErrorCode::kUnauthorized));
}

TEST_F(Tls, UntrustedCertificateIsNetworkError) {
  auto db = must(tlsDb(url, ""), "connect");  // system CA store: does not know the self-signed cert
  Transaction tx = db->createTransaction();
  auto r = tx.getReadVersion();
  ASSERT_TRUE(failsWith(r, ErrorCode::kNetworkError));
  EXPECT_NE(r.error().message().find("certificate verify failed"), std::string::npos) << r.error().describe();
}

TEST_F(Tls, CertificateNotNamingTheHostIsNetworkError) {
  auto db = must(tlsDb(byIp(url), ca), "connect");  // trusted CA, but the cert names only localhost
  Transaction tx = db->createTransaction();
  auto r = tx.getReadVersion();
  ASSERT_TRUE(failsWith(r, ErrorCode::kNetworkError));
  EXPECT_NE(r.error().message().find("TLS handshake"), std::string::npos) << r.error().describe();
}

TEST_F(Tls, PlainWebSocketToTheTlsPortFails) {
  std::string plain = "ws://" + url.substr(6);
  ConnectOptions o;
  o.endpoints = {plain};
  o.token = "cpp-rw-token";
  o.connectionPoolSize = 1;
  o.connectTimeoutMs = 2000;
  o.transactionTimeoutMs = 3000;
  auto db = must(Database::connect(o), "connect");
  Transaction tx = db->createTransaction();
  auto r = tx.getReadVersion();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().code() == ErrorCode::kNetworkError || r.error().code() == ErrorCode::kTimeout)
      << r.error().describe();
}

TEST(TlsOptions, UnreadableCaFileIsInvalidArgumentAtConnect) {
  auto r = tlsDb("wss://localhost:1", "/nonexistent/ca.pem");
  ASSERT_TRUE(failsWith(r, ErrorCode::kInvalidArgument));
  EXPECT_NE(r.error().message().find("/nonexistent/ca.pem"), std::string::npos);
}

TEST(TlsOptions, SchemesOtherThanWsAndWssAreInvalidArgument) {
  ConnectOptions o;
  o.endpoints = {"http://localhost:1"};
  EXPECT_TRUE(failsWith(Database::connect(o), ErrorCode::kInvalidArgument));
  o.endpoints = {"wss://localhost"};  // port 443 by default: parses
  EXPECT_TRUE(Database::connect(o).ok());
}

}  // namespace
}  // namespace txkv::live
