// Wire messages of schemas/txkv.fbs as plain C++ values, and the one place that
// encodes/decodes FlatBuffers Frames (wire.cc is the only TU that includes the
// flatc-generated header). Every received frame goes through flatbuffers::Verifier.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "txkv/error.h"
#include "txkv/keys.h"

namespace txkv::proto {

inline constexpr uint32_t kProtocolVersion = 1;

enum class MutationType : uint8_t {
  kSet = 0,
  kClear = 1,
  kClearRange = 2,
  kSetVersionstampedKey = 3,
  kSetVersionstampedValue = 4,
  // atomic operations (src/atomic.h)
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
std::string_view mutationTypeName(MutationType t);

struct Mutation {
  MutationType type = MutationType::kSet;
  Bytes key;
  Bytes param;
  int32_t offset = 0;
  bool operator==(const Mutation&) const = default;
};

struct HelloRequest {
  uint32_t protocolVersion = kProtocolVersion;
  std::string token;
  std::string clientName;
  bool operator==(const HelloRequest&) const = default;
};
struct HelloReply {
  uint32_t protocolVersion = 0;
  std::string serverVersion;
  bool readOnly = false;
  std::string databaseId;  // "" from servers that predate it (spec, "Clusters")
  bool operator==(const HelloReply&) const = default;
};
struct GetReadVersionRequest {
  bool operator==(const GetReadVersionRequest&) const = default;
};
struct GetReadVersionReply {
  int64_t readVersion = 0;
  bool operator==(const GetReadVersionReply&) const = default;
};
struct GetRequest {
  int64_t readVersion = 0;
  Bytes key;
  bool operator==(const GetRequest&) const = default;
};
struct GetReply {
  bool present = false;
  Bytes value;
  bool operator==(const GetReply&) const = default;
};
struct GetRangeRequest {
  int64_t readVersion = 0;
  Bytes beginKey;
  bool beginInclusive = true;
  Bytes endKey;
  bool endInclusive = false;
  int32_t limit = 0;
  bool reverse = false;
  bool operator==(const GetRangeRequest&) const = default;
};
struct GetRangeReply {
  std::vector<KeyValue> kvs;
  bool hasMore = false;
  bool operator==(const GetRangeReply&) const = default;
};
struct CommitRequest {
  int64_t readVersion = 0;
  std::vector<KeyRange> readConflicts;
  std::vector<Mutation> mutations;
  bool operator==(const CommitRequest&) const = default;
};
struct CommitReply {
  int64_t commitVersion = 0;
  Bytes versionstamp;
  bool operator==(const CommitReply&) const = default;
};
struct ErrorReply {
  std::string code;
  std::string message;
  bool operator==(const ErrorReply&) const = default;
};

// Alternatives in the order of the schema's `union Body` (index + 1 = union tag).
using Body = std::variant<HelloRequest, HelloReply, GetReadVersionRequest, GetReadVersionReply, GetRequest,
                          GetReply, GetRangeRequest, GetRangeReply, CommitRequest, CommitReply, ErrorReply>;
std::string_view bodyTypeName(const Body& b);

struct Envelope {
  uint32_t requestId = 0;
  Body body;
  bool operator==(const Envelope&) const = default;
};

// One Frame (file identifier "TXKV") holding the envelopes, in order.
std::string encodeFrame(const std::vector<Envelope>& envelopes);
// Verifies (flatbuffers::Verifier, identifier, union tags, required bodies) and decodes.
// A frame that fails is PROTOCOL_ERROR with a message saying why.
Result<std::vector<Envelope>> decodeFrame(const void* data, size_t size);

}  // namespace txkv::proto
