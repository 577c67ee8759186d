#include "vectors_catalog.h"

#include <limits>

namespace txkv::vectors {
namespace {

using jsonlite::Value;
using namespace std::string_literals;

constexpr int64_t kRv = 1'700'000'000'123'456;

Value bytesJ(std::string_view b) { return Value::string(toHex(b)); }
Value i64J(int64_t v) { return Value::string(std::to_string(v)); }

Value bodyJson(const proto::Body& body) {
  return std::visit(
      [](const auto& m) -> Value {
        using M = std::decay_t<decltype(m)>;
        Value o = Value::object();
        if constexpr (std::is_same_v<M, proto::HelloRequest>) {
          o.add("protocol_version", Value::integer(m.protocolVersion));
          o.add("token", Value::string(m.token));
          o.add("client_name", Value::string(m.clientName));
        } else if constexpr (std::is_same_v<M, proto::HelloReply>) {
          o.add("protocol_version", Value::integer(m.protocolVersion));
          o.add("server_version", Value::string(m.serverVersion));
          o.add("read_only", Value::boolean(m.readOnly));
        } else if constexpr (std::is_same_v<M, proto::GetReadVersionRequest>) {
        } else if constexpr (std::is_same_v<M, proto::GetReadVersionReply>) {
          o.add("read_version", i64J(m.readVersion));
        } else if constexpr (std::is_same_v<M, proto::GetRequest>) {
          o.add("read_version", i64J(m.readVersion));
          o.add("key", bytesJ(m.key));
        } else if constexpr (std::is_same_v<M, proto::GetReply>) {
          o.add("present", Value::boolean(m.present));
          o.add("value", bytesJ(m.value));
        } else if constexpr (std::is_same_v<M, proto::GetRangeRequest>) {
          o.add("read_version", i64J(m.readVersion));
          o.add("begin_key", bytesJ(m.beginKey));
          o.add("begin_inclusive", Value::boolean(m.beginInclusive));
          o.add("end_key", bytesJ(m.endKey));
          o.add("end_inclusive", Value::boolean(m.endInclusive));
          o.add("limit", Value::integer(m.limit));
          o.add("reverse", Value::boolean(m.reverse));
        } else if constexpr (std::is_same_v<M, proto::GetRangeReply>) {
          Value kvs = Value::array();
          for (const auto& kv : m.kvs) kvs.push(Value::object().add("key", bytesJ(kv.key)).add("value", bytesJ(kv.value)));
          o.add("kvs", std::move(kvs));
          o.add("has_more", Value::boolean(m.hasMore));
        } else if constexpr (std::is_same_v<M, proto::CommitRequest>) {
          o.add("read_version", i64J(m.readVersion));
          Value rc = Value::array();
          for (const auto& r : m.readConflicts) rc.push(Value::object().add("begin", bytesJ(r.begin)).add("end", bytesJ(r.end)));
          o.add("read_conflicts", std::move(rc));
          Value ms = Value::array();
          for (const auto& mu : m.mutations) {
            ms.push(Value::object()
                        .add("type", Value::string(std::string(proto::mutationTypeName(mu.type))))
                        .add("key", bytesJ(mu.key))
                        .add("param", bytesJ(mu.param))
                        .add("offset", Value::integer(mu.offset)));
          }
          o.add("mutations", std::move(ms));
        } else if constexpr (std::is_same_v<M, proto::CommitReply>) {
          o.add("commit_version", i64J(m.commitVersion));
          o.add("versionstamp", bytesJ(m.versionstamp));
        } else {
          o.add("code", Value::string(m.code));
          o.add("message", Value::string(m.message));
        }
        return o;
      },
      body);
}

std::vector<Vector> build() {
  using namespace txkv::proto;
  std::vector<Vector> v;
  const std::string binKey = "\x00\x01\xff"s + "k";
  const std::string stamp = "\x00\x06\x0a\x4b\x9b\x3d\x16\x41\x00\x00"s;
  v.push_back({"hello_request", "first request on a connection", {{1, HelloRequest{1, "secret-token", "vectors"}}}});
  v.push_back({"hello_reply", "server greeting", {{1, HelloReply{1, "0.1.0", false}}}});
  v.push_back({"hello_reply_read_only", "greeting of a read-only server", {{1, HelloReply{1, "0.1.0", true}}}});
  v.push_back({"get_read_version_request", "empty table body", {{2, GetReadVersionRequest{}}}});
  v.push_back({"get_read_version_reply", "int64 read version", {{2, GetReadVersionReply{kRv}}}});
  v.push_back({"get_read_version_reply_big",
               "int64 beyond 2^53 and the maximum request id (bigint on the TS side)",
               {{std::numeric_limits<uint32_t>::max(), GetReadVersionReply{9'007'199'254'740'993}}}});
  v.push_back({"get_request", "binary key with 0x00 and 0xff bytes", {{3, GetRequest{kRv, binKey}}}});
  v.push_back({"get_reply_present", "value with 0x00 and 0xff bytes", {{3, GetReply{true, "value\x00\xff"s}}}});
  v.push_back({"get_reply_absent", "absent key: present=false, no value", {{4, GetReply{false, ""}}}});
  v.push_back({"get_reply_empty_value", "present key with an empty value", {{5, GetReply{true, ""}}}});
  v.push_back({"get_range_request",
               "every selector field away from its default",
               {{6, GetRangeRequest{kRv, "a", false, "z\xff"s, true, 10, true}}}});
  v.push_back({"get_range_request_defaults",
               "selector fields at their schema defaults (begin_inclusive=true, end_inclusive=false, limit=0, reverse=false)",
               {{6, GetRangeRequest{kRv, "a", true, "b", false, 0, false}}}});
  v.push_back({"get_range_reply",
               "two rows (one with an empty value) and has_more",
               {{6, GetRangeReply{{{"a", "1"}, {"b\x00"s, ""}}, true}}}});
  v.push_back({"get_range_reply_empty", "no rows, has_more=false", {{6, GetRangeReply{{}, false}}}});
  v.push_back({"commit_request",
               "read conflicts and one mutation of every type, in the SDK's order",
               {{7, CommitRequest{kRv,
                                  {{"k1", "k1\x00"s}, {"a", "b"}},
                                  {{MutationType::kClearRange, "a", "b", 0},
                                   {MutationType::kSet, "k", "v", 0},
                                   {MutationType::kClear, "x", "", 0},
                                   {MutationType::kSetVersionstampedKey, "p" + std::string(10, '\0') + "q", "val", 1},
                                   {MutationType::kSetVersionstampedValue, std::string(kMetadataVersionKey),
                                    std::string(10, '\0'), 0}}}}}});
  v.push_back({"commit_request_atomic",
               "one atomic operation of every type, on key c, in call order",
               {{7, CommitRequest{kRv,
                                  {},
                                  {{MutationType::kAdd, "c", "\x01\x00\x00\x00\x00\x00\x00\x00"s, 0},
                                   {MutationType::kBitAnd, "c", "\x0f", 0},
                                   {MutationType::kBitOr, "c", "\xf0", 0},
                                   {MutationType::kBitXor, "c", "\xff", 0},
                                   {MutationType::kMax, "c", "\x02", 0},
                                   {MutationType::kMin, "c", "\x01", 0},
                                   {MutationType::kByteMax, "c", "z", 0},
                                   {MutationType::kByteMin, "c", "a", 0},
                                   {MutationType::kAppendIfFits, "c", "+", 0},
                                   {MutationType::kCompareAndClear, "c", "x", 0}}}}}});
  v.push_back({"commit_reply", "commit version and its 10-byte versionstamp",
               {{7, CommitReply{1'700'000'000'123'457, stamp}}}});
  v.push_back({"error_reply", "an error reply to a request", {{8, ErrorReply{"CONFLICT", "read set overwritten"}}}});
  v.push_back({"error_reply_unparsable_frame", "the server's answer to a frame it cannot parse: request id 0",
               {{0, ErrorReply{"PROTOCOL_ERROR", "cannot parse frame"}}}});
  v.push_back({"batch_frame",
               "three requests of one tick in one Frame, in order",
               {{10, GetReadVersionRequest{}}, {11, GetRequest{kRv, "k"}}, {12, GetRangeRequest{kRv, "a", true, "b", false, 0, false}}}});
  v.push_back({"batch_replies",
               "replies sharing one Frame, out of request order, with an error among them",
               {{12, GetRangeReply{{{"a", "1"}}, false}}, {10, GetReadVersionReply{kRv}}, {11, ErrorReply{"TOO_OLD", "read version too old"}}}});
  v.push_back({"utf8_strings", "non-ASCII token and error message",
               {{1, HelloRequest{1, "t\xc3\xa9st-\xe2\x9c\x93", "cli\xe9\x8d\xb5"}}}});
  return v;
}

}  // namespace

std::string toHex(std::string_view bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

const std::vector<Vector>& catalog() {
  static const std::vector<Vector> v = build();
  return v;
}

const Vector* findVector(const std::string& name) {
  for (const auto& v : catalog()) {
    if (v.name == name) return &v;
  }
  return nullptr;
}

jsonlite::Value envelopesToJson(const std::vector<proto::Envelope>& envelopes) {
  Value arr = Value::array();
  for (const auto& e : envelopes) {
    arr.push(Value::object()
                 .add("request_id", Value::integer(e.requestId))
                 .add("body_type", Value::string(std::string(proto::bodyTypeName(e.body))))
                 .add("body", bodyJson(e.body)));
  }
  return arr;
}

jsonlite::Value sidecarJson(const Vector& v) {
  return Value::object()
      .add("name", Value::string(v.name))
      .add("description", Value::string(v.description))
      .add("envelopes", envelopesToJson(v.envelopes));
}

}  // namespace txkv::vectors
