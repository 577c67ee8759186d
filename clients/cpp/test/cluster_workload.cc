// A 3FS-metadata-like workload for failover tests (test/cluster/cpp-failover.test.ts):
// workers run read-modify-write transactions on shared counters (an inode allocator's
// shape) plus one "inode" key per attempt, with snapshot and range reads, through one
// Database given every node of a cluster, while the test kills, restarts or stops nodes.
//
//   txkv_cluster_workload --endpoints ws://a,ws://b,ws://c --prefix P [--workers 4]
//                         [--counters 2] [--timeout-ms 10000] [--max-seconds 120]
//
// Runs until stdin says "stop" (or closes, or --max-seconds). Every 100 ms it prints
// "progress <commits acknowledged> <attempts ended>"; at the end one line
// "result {json}" with every attempt's outcome, for the test to check against every
// node's stored data:
//   - attempt a of worker w wrote P/i/<w>/<a> = "<counter>:<value>" and P/c/<counter> = value;
//   - outcome "committed" (with its version), "maybe" (MAYBE_COMMITTED), or "not" (any
//     other error: the spec says nothing of it may be stored);
// and the client-side checks made during the run ("violations"): a read version below an
// acknowledged commit's version, a commit version not above it, a counter read below a
// value acknowledged before the
// transaction began (a stale read), an acknowledged inode key missing from a snapshot
// read or a range read, an error code the spec does not name.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "txkv/client.h"

namespace {

using Clock = std::chrono::steady_clock;

int64_t epochMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string jsonString(std::string_view s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else {
      o += c;
    }
  }
  return o + "\"";
}

struct Attempt {
  int worker;
  int64_t id;
  int counter;
  int64_t value;
  std::string outcome;  // committed | maybe | not
  std::string code;     // "" when committed
  std::string stage;    // where it failed: grv, get, snapshotGet, getRange, commit
  int64_t version = -1;
  int64_t startMs = 0, endMs = 0;
};

struct Shared {
  std::string prefix;
  int counters = 2;
  std::vector<std::atomic<int64_t>> ackedValue;    // highest counter value acknowledged, per counter
  std::atomic<int64_t> ackedVersion{0};             // highest commit version acknowledged
  std::atomic<int64_t> commits{0}, ended{0};
  std::atomic<int64_t> maxCallMs{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<Attempt> attempts;
  std::vector<std::string> violations;
  std::map<std::string, int64_t> codes;  // "stage:CODE" -> count
  explicit Shared(int n) : counters(n), ackedValue(n) {}

  void violation(const std::string& v) {
    std::lock_guard lock(mu);
    if (violations.size() < 200) violations.push_back(v);
  }
  void noteCall(Clock::time_point t0) {
    int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    int64_t cur = maxCallMs.load();
    while (ms > cur && !maxCallMs.compare_exchange_weak(cur, ms)) {
    }
  }
};

std::string counterKey(const Shared& s, int c) { return s.prefix + "/c/" + std::to_string(c); }
std::string inodeDir(const Shared& s, int w) { return s.prefix + "/i/" + std::to_string(w) + "/"; }
std::string inodeKey(const Shared& s, int w, int64_t a) {
  char b[24];
  std::snprintf(b, sizeof b, "%08lld", static_cast<long long>(a));
  return inodeDir(s, w) + b;
}

// The spec's codes (shared/spec/client-api.md "Errors" and "Clusters").
bool specNames(std::string_view code) {
  static const char* names[] = {"CONFLICT", "TOO_OLD", "FUTURE_VERSION", "THROTTLED", "RESOURCE_CONSTRAINED",
                                "MAYBE_COMMITTED", "NETWORK_ERROR", "CANCELED", "TIMEOUT", "READ_ONLY",
                                "INVALID_ARGUMENT", "KEY_TOO_LARGE", "VALUE_TOO_LARGE", "TRANSACTION_TOO_LARGE",
                                "UNAUTHORIZED", "PROTOCOL_ERROR", "FAILED", "UNAVAILABLE"};
  return std::any_of(std::begin(names), std::end(names), [&](const char* n) { return code == n; });
}

void worker(txkv::Database& db, Shared& s, int w) {
  std::minstd_rand rng(static_cast<unsigned>(w * 7919 + 1));
  int64_t lastCommitted = -1;  // this worker's last acknowledged attempt
  int retry = 0;
  for (int64_t a = 0; !s.stop.load(); ++a) {
    int c = static_cast<int>(rng() % static_cast<unsigned>(s.counters));
    Attempt at{w, a, c, 0, "not", "", "", -1, epochMs(), 0};
    // what was acknowledged before this transaction began: it must see all of it
    int64_t mustSeeValue = s.ackedValue[c].load();
    int64_t mustSeeVersion = s.ackedVersion.load();
    txkv::Transaction tx = db.createTransaction();
    std::optional<txkv::TxnError> err;
    auto fail = [&](const char* stage, const txkv::TxnError& e) {
      err = e;
      at.stage = stage;
    };
    auto t0 = Clock::now();
    do {
      auto rv = tx.getReadVersion();
      s.noteCall(t0);
      if (!rv) {
        fail("grv", rv.error());
        break;
      }
      if (*rv < mustSeeVersion) {
        s.violation("worker " + std::to_string(w) + " attempt " + std::to_string(a) + ": read version " +
                    std::to_string(*rv) + " below the acknowledged commit version " + std::to_string(mustSeeVersion));
      }
      t0 = Clock::now();
      auto got = tx.get(counterKey(s, c));
      s.noteCall(t0);
      if (!got) {
        fail("get", got.error());
        break;
      }
      int64_t n = got->has_value() ? std::stoll(**got) : 0;
      if (n < mustSeeValue) {
        s.violation("worker " + std::to_string(w) + " attempt " + std::to_string(a) + ": stale read of counter " +
                    std::to_string(c) + ": " + std::to_string(n) + " < acknowledged " + std::to_string(mustSeeValue) +
                    " (read version " + std::to_string(*rv) + ")");
      }
      if (lastCommitted >= 0) {
        // snapshot read of this worker's last acknowledged inode (no read conflict)
        t0 = Clock::now();
        auto snap = tx.snapshotGet(inodeKey(s, w, lastCommitted));
        s.noteCall(t0);
        if (!snap) {
          fail("snapshotGet", snap.error());
          break;
        }
        if (!snap->has_value()) {
          s.violation("worker " + std::to_string(w) + ": acknowledged inode " + inodeKey(s, w, lastCommitted) +
                      " missing from a snapshot read at " + std::to_string(*rv));
        }
        // the last inode of this worker's directory, as a range read (a readdir's shape)
        t0 = Clock::now();
        std::string dir = inodeDir(s, w);
        std::string dirEnd = dir;
        dirEnd.back() = static_cast<char>(dirEnd.back() + 1);
        auto range = tx.getRange({dir, true}, {dirEnd, false}, {.limit = 1, .reverse = true});
        s.noteCall(t0);
        if (!range) {
          fail("getRange", range.error());
          break;
        }
        if (range->kvs.empty() || range->kvs[0].key < inodeKey(s, w, lastCommitted)) {
          s.violation("worker " + std::to_string(w) + ": range read at " + std::to_string(*rv) + " ends before " +
                      inodeKey(s, w, lastCommitted));
        }
      }
      at.value = n + 1;
      (void)tx.set(counterKey(s, c), std::to_string(n + 1));
      (void)tx.set(inodeKey(s, w, a), std::to_string(c) + ":" + std::to_string(n + 1));
      t0 = Clock::now();
      auto st = tx.commit();
      s.noteCall(t0);
      if (!st) {
        fail("commit", st.error());
        break;
      }
      at.outcome = "committed";
      at.version = tx.getCommittedVersion();
      // spec 2 and 5: a commit begun after another was acknowledged gets a higher version
      if (at.version <= mustSeeVersion) {
        s.violation("worker " + std::to_string(w) + " attempt " + std::to_string(a) + ": committed at version " +
                    std::to_string(at.version) + ", not above the acknowledged " + std::to_string(mustSeeVersion));
      }
    } while (false);
    at.endMs = epochMs();
    if (err) {
      at.code = std::string(err->codeName());
      if (err->code() == txkv::ErrorCode::kMaybeCommitted) at.outcome = "maybe";
      if (err->code() == txkv::ErrorCode::kMaybeCommitted && at.stage != "commit") {
        s.violation("MAYBE_COMMITTED at " + at.stage + " (no commit was sent): " + err->message());
      }
      if (!specNames(at.code)) s.violation("a code the spec does not name: " + err->describe());
    } else {
      // acknowledged: later transactions must see it
      int64_t cur = s.ackedValue[c].load();
      while (at.value > cur && !s.ackedValue[c].compare_exchange_weak(cur, at.value)) {
      }
      cur = s.ackedVersion.load();
      while (at.version > cur && !s.ackedVersion.compare_exchange_weak(cur, at.version)) {
      }
      lastCommitted = a;
      s.commits.fetch_add(1);
    }
    {
      std::lock_guard lock(s.mu);
      if (err) {
        ++s.codes[at.stage + ":" + at.code];
        if (s.codes.size() < 64 && err->code() != txkv::ErrorCode::kConflict) {
          // first message of each stage:code, for the report
          std::string k = "msg " + at.stage + ":" + at.code;
          if (!s.codes.count(k)) {
            s.codes[k] = 0;
            std::cerr << "workload: worker " << w << " " << at.stage << ": " << err->describe() << "\n";
          }
        }
      }
      s.attempts.push_back(at);
    }
    s.ended.fetch_add(1);
    if (err && txkv::shouldRetry(*err, false)) {
      // transact()'s backoff, in short (the test looks at what each attempt did)
      int64_t ms = err->code() == txkv::ErrorCode::kUnavailable ? 50 : 5;
      for (int i = 0; i < retry && ms < 1000; ++i) ms *= 2;
      ms = std::min<int64_t>(ms, 1000);
      ++retry;
      std::this_thread::sleep_for(std::chrono::milliseconds(ms / 2 + static_cast<int64_t>(rng() % (ms / 2 + 1))));
    } else if (err) {
      // not retryable (NETWORK_ERROR, MAYBE_COMMITTED, TIMEOUT): a 3FS service answers its
      // caller with the error; the next request comes a little later
      retry = 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } else {
      retry = 0;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string endpoints, prefix = "wl";
  int workers = 4, counters = 2;
  int64_t timeoutMs = 10'000, maxSeconds = 120;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--endpoints") endpoints = v;
    else if (k == "--prefix") prefix = v;
    else if (k == "--workers") workers = std::stoi(v);
    else if (k == "--counters") counters = std::stoi(v);
    else if (k == "--timeout-ms") timeoutMs = std::stoll(v);
    else if (k == "--max-seconds") maxSeconds = std::stoll(v);
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  txkv::ConnectOptions o;
  for (size_t p = 0; p <= endpoints.size();) {
    size_t q = endpoints.find(',', p);
    if (q == std::string::npos) q = endpoints.size();
    if (q > p) o.endpoints.push_back(endpoints.substr(p, q - p));
    p = q + 1;
  }
  o.transactionTimeoutMs = timeoutMs;
  o.connectionPoolSize = static_cast<int>(o.endpoints.size());
  auto db = txkv::Database::connect(o);
  if (!db) {
    std::cerr << "connect: " << db.error().describe() << "\n";
    return 2;
  }
  Shared s(counters);
  s.prefix = prefix;
  auto start = Clock::now();
  std::vector<std::thread> ts;
  for (int w = 0; w < workers; ++w) ts.emplace_back([&, w] { worker(**db, s, w); });
  std::thread input([&] {
    std::string line;
    while (std::getline(std::cin, line) && line != "stop") {
    }
    s.stop = true;
  });
  input.detach();
  while (!s.stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::cout << "progress " << s.commits.load() << " " << s.ended.load() << std::endl;
    if (Clock::now() - start > std::chrono::seconds(maxSeconds)) s.stop = true;
  }
  for (auto& t : ts) t.join();
  (*db)->close();

  std::ostringstream out;
  out << "result {\"maxCallMs\":" << s.maxCallMs.load() << ",\"violations\":[";
  for (size_t i = 0; i < s.violations.size(); ++i) out << (i ? "," : "") << jsonString(s.violations[i]);
  out << "],\"codes\":{";
  bool first = true;
  for (auto& [k, v] : s.codes) {
    if (k.rfind("msg ", 0) == 0) continue;
    out << (first ? "" : ",") << jsonString(k) << ":" << v;
    first = false;
  }
  out << "},\"attempts\":[";
  for (size_t i = 0; i < s.attempts.size(); ++i) {
    const auto& a = s.attempts[i];
    out << (i ? "," : "") << "[" << a.worker << "," << a.id << "," << a.counter << "," << a.value << ","
        << jsonString(a.outcome) << "," << jsonString(a.code) << "," << jsonString(a.stage) << "," << a.version << ","
        << a.startMs << "," << a.endMs << "]";
  }
  out << "]}";
  std::cout << out.str() << std::endl;
  return 0;
}
