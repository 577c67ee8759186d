// FlatBuffers encode/decode of txkv Frames. The only TU that includes the
// flatc-generated header (txkv_generated.h, made at build time from schemas/txkv.fbs).
#include "wire.h"

#include <flatbuffers/flatbuffers.h>

#include <type_traits>

#include "txkv_generated.h"

namespace fbw = txkv::wire;  // generated code

namespace txkv::proto {
namespace {

using Builder = flatbuffers::FlatBufferBuilder;
template <typename T>
using Off = flatbuffers::Offset<T>;

Off<flatbuffers::Vector<uint8_t>> bytes(Builder& b, std::string_view s) {
  return b.CreateVector(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

Bytes toBytes(const flatbuffers::Vector<uint8_t>* v) {
  return v ? Bytes(reinterpret_cast<const char*>(v->data()), v->size()) : Bytes();
}
std::string toString(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

// Returns {union tag, offset of the body table}.
std::pair<fbw::Body, Off<void>> encodeBody(Builder& b, const Body& body) {
  return std::visit(
      [&](const auto& m) -> std::pair<fbw::Body, Off<void>> {
        using M = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<M, HelloRequest>) {
          auto token = b.CreateString(m.token);
          auto name = b.CreateString(m.clientName);
          return {fbw::Body_HelloRequest, fbw::CreateHelloRequest(b, m.protocolVersion, token, name).Union()};
        } else if constexpr (std::is_same_v<M, HelloReply>) {
          auto sv = b.CreateString(m.serverVersion);
          // absent when empty, as from servers that predate it (the golden vectors have none)
          auto id = m.databaseId.empty() ? flatbuffers::Offset<flatbuffers::String>() : b.CreateString(m.databaseId);
          return {fbw::Body_HelloReply, fbw::CreateHelloReply(b, m.protocolVersion, sv, m.readOnly, id).Union()};
        } else if constexpr (std::is_same_v<M, GetReadVersionRequest>) {
          return {fbw::Body_GetReadVersionRequest, fbw::CreateGetReadVersionRequest(b).Union()};
        } else if constexpr (std::is_same_v<M, GetReadVersionReply>) {
          return {fbw::Body_GetReadVersionReply, fbw::CreateGetReadVersionReply(b, m.readVersion).Union()};
        } else if constexpr (std::is_same_v<M, GetRequest>) {
          auto key = bytes(b, m.key);
          return {fbw::Body_GetRequest, fbw::CreateGetRequest(b, m.readVersion, key).Union()};
        } else if constexpr (std::is_same_v<M, GetReply>) {
          auto value = bytes(b, m.value);
          return {fbw::Body_GetReply, fbw::CreateGetReply(b, m.present, value).Union()};
        } else if constexpr (std::is_same_v<M, GetRangeRequest>) {
          auto bk = bytes(b, m.beginKey);
          auto ek = bytes(b, m.endKey);
          return {fbw::Body_GetRangeRequest,
                  fbw::CreateGetRangeRequest(b, m.readVersion, bk, m.beginInclusive, ek, m.endInclusive, m.limit,
                                             m.reverse)
                      .Union()};
        } else if constexpr (std::is_same_v<M, GetRangeReply>) {
          std::vector<Off<fbw::KeyValue>> kvs;
          kvs.reserve(m.kvs.size());
          for (const auto& kv : m.kvs) {
            auto k = bytes(b, kv.key);
            auto v = bytes(b, kv.value);
            kvs.push_back(fbw::CreateKeyValue(b, k, v));
          }
          auto vec = b.CreateVector(kvs);
          return {fbw::Body_GetRangeReply, fbw::CreateGetRangeReply(b, vec, m.hasMore).Union()};
        } else if constexpr (std::is_same_v<M, CommitRequest>) {
          std::vector<Off<fbw::KeyRange>> rcs;
          rcs.reserve(m.readConflicts.size());
          for (const auto& r : m.readConflicts) {
            auto bg = bytes(b, r.begin);
            auto en = bytes(b, r.end);
            rcs.push_back(fbw::CreateKeyRange(b, bg, en));
          }
          std::vector<Off<fbw::Mutation>> muts;
          muts.reserve(m.mutations.size());
          for (const auto& mu : m.mutations) {
            auto k = bytes(b, mu.key);
            Off<flatbuffers::Vector<uint8_t>> p = 0;
            if (mu.type != MutationType::kClear) p = bytes(b, mu.param);
            muts.push_back(fbw::CreateMutation(b, static_cast<fbw::MutationType>(mu.type), k, p, mu.offset));
          }
          auto rv = b.CreateVector(rcs);
          auto mv = b.CreateVector(muts);
          return {fbw::Body_CommitRequest, fbw::CreateCommitRequest(b, m.readVersion, rv, mv).Union()};
        } else if constexpr (std::is_same_v<M, CommitReply>) {
          auto vs = bytes(b, m.versionstamp);
          return {fbw::Body_CommitReply, fbw::CreateCommitReply(b, m.commitVersion, vs).Union()};
        } else {
          static_assert(std::is_same_v<M, ErrorReply>);
          auto code = b.CreateString(m.code);
          auto msg = b.CreateString(m.message);
          return {fbw::Body_ErrorReply, fbw::CreateErrorReply(b, code, msg).Union()};
        }
      },
      body);
}

Result<Body> decodeBody(const fbw::Envelope& e) {
  switch (e.body_type()) {
    case fbw::Body_HelloRequest: {
      auto m = e.body_as_HelloRequest();
      return Body{HelloRequest{m->protocol_version(), toString(m->token()), toString(m->client_name())}};
    }
    case fbw::Body_HelloReply: {
      auto m = e.body_as_HelloReply();
      return Body{HelloReply{m->protocol_version(), toString(m->server_version()), m->read_only(), toString(m->database_id())}};
    }
    case fbw::Body_GetReadVersionRequest:
      return Body{GetReadVersionRequest{}};
    case fbw::Body_GetReadVersionReply:
      return Body{GetReadVersionReply{e.body_as_GetReadVersionReply()->read_version()}};
    case fbw::Body_GetRequest: {
      auto m = e.body_as_GetRequest();
      return Body{GetRequest{m->read_version(), toBytes(m->key())}};
    }
    case fbw::Body_GetReply: {
      auto m = e.body_as_GetReply();
      return Body{GetReply{m->present(), toBytes(m->value())}};
    }
    case fbw::Body_GetRangeRequest: {
      auto m = e.body_as_GetRangeRequest();
      return Body{GetRangeRequest{m->read_version(), toBytes(m->begin_key()), m->begin_inclusive(),
                                  toBytes(m->end_key()), m->end_inclusive(), m->limit(), m->reverse()}};
    }
    case fbw::Body_GetRangeReply: {
      auto m = e.body_as_GetRangeReply();
      GetRangeReply r;
      r.hasMore = m->has_more();
      if (m->kvs()) {
        r.kvs.reserve(m->kvs()->size());
        for (auto kv : *m->kvs()) {
          if (!kv) return TxnError(ErrorCode::kProtocolError, "GetRangeReply.kvs holds a null entry");
          r.kvs.push_back(KeyValue{toBytes(kv->key()), toBytes(kv->value())});
        }
      }
      return Body{std::move(r)};
    }
    case fbw::Body_CommitRequest: {
      auto m = e.body_as_CommitRequest();
      CommitRequest r;
      r.readVersion = m->read_version();
      if (m->read_conflicts()) {
        for (auto kr : *m->read_conflicts()) {
          if (!kr) return TxnError(ErrorCode::kProtocolError, "CommitRequest.read_conflicts holds a null entry");
          r.readConflicts.push_back(KeyRange{toBytes(kr->begin()), toBytes(kr->end())});
        }
      }
      if (m->mutations()) {
        for (auto mu : *m->mutations()) {
          if (!mu) return TxnError(ErrorCode::kProtocolError, "CommitRequest.mutations holds a null entry");
          auto t = static_cast<uint8_t>(mu->type());
          if (t > static_cast<uint8_t>(MutationType::kCompareAndClear)) {
            return TxnError(ErrorCode::kProtocolError, "unknown MutationType " + std::to_string(t));
          }
          r.mutations.push_back(
              Mutation{static_cast<MutationType>(t), toBytes(mu->key()), toBytes(mu->param()), mu->offset()});
        }
      }
      return Body{std::move(r)};
    }
    case fbw::Body_CommitReply: {
      auto m = e.body_as_CommitReply();
      return Body{CommitReply{m->commit_version(), toBytes(m->versionstamp())}};
    }
    case fbw::Body_ErrorReply: {
      auto m = e.body_as_ErrorReply();
      return Body{ErrorReply{toString(m->code()), toString(m->message())}};
    }
    default:
      break;
  }
  return TxnError(ErrorCode::kProtocolError,
                  "envelope " + std::to_string(e.request_id()) + " has unknown or missing body type " +
                      std::to_string(static_cast<int>(e.body_type())));
}

}  // namespace

std::string_view mutationTypeName(MutationType t) {
  switch (t) {
    case MutationType::kSet: return "Set";
    case MutationType::kClear: return "Clear";
    case MutationType::kClearRange: return "ClearRange";
    case MutationType::kSetVersionstampedKey: return "SetVersionstampedKey";
    case MutationType::kSetVersionstampedValue: return "SetVersionstampedValue";
    case MutationType::kAdd: return "Add";
    case MutationType::kBitAnd: return "BitAnd";
    case MutationType::kBitOr: return "BitOr";
    case MutationType::kBitXor: return "BitXor";
    case MutationType::kMax: return "Max";
    case MutationType::kMin: return "Min";
    case MutationType::kByteMax: return "ByteMax";
    case MutationType::kByteMin: return "ByteMin";
    case MutationType::kAppendIfFits: return "AppendIfFits";
    case MutationType::kCompareAndClear: return "CompareAndClear";
  }
  return "?";
}

std::string_view bodyTypeName(const Body& b) {
  static constexpr std::string_view kNames[] = {
      "HelloRequest", "HelloReply", "GetReadVersionRequest", "GetReadVersionReply", "GetRequest", "GetReply",
      "GetRangeRequest", "GetRangeReply", "CommitRequest", "CommitReply", "ErrorReply"};
  static_assert(std::variant_size_v<Body> == std::size(kNames));
  return kNames[b.index()];
}

std::string encodeFrame(const std::vector<Envelope>& envelopes) {
  Builder b(256);
  std::vector<Off<fbw::Envelope>> envs;
  envs.reserve(envelopes.size());
  for (const auto& e : envelopes) {
    auto [tag, body] = encodeBody(b, e.body);
    // The union tag order of the schema is the variant order + 1; checked here once.
    if (static_cast<size_t>(tag) != e.body.index() + 1) throw std::logic_error("Body variant out of schema order");
    envs.push_back(fbw::CreateEnvelope(b, e.requestId, tag, body));
  }
  auto vec = b.CreateVector(envs);
  fbw::FinishFrameBuffer(b, fbw::CreateFrame(b, vec));
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

Result<std::vector<Envelope>> decodeFrame(const void* data, size_t size) {
  if (size < 8) return TxnError(ErrorCode::kProtocolError, "frame of " + std::to_string(size) + " bytes is too short");
  if (!flatbuffers::BufferHasIdentifier(data, fbw::FrameIdentifier())) {
    return TxnError(ErrorCode::kProtocolError, "frame lacks the file identifier TXKV");
  }
  flatbuffers::Verifier verifier(static_cast<const uint8_t*>(data), size);
  if (!fbw::VerifyFrameBuffer(verifier)) {
    return TxnError(ErrorCode::kProtocolError, "frame of " + std::to_string(size) + " bytes failed verification");
  }
  auto frame = fbw::GetFrame(data);
  std::vector<Envelope> out;
  if (!frame->envelopes() || frame->envelopes()->size() == 0) {
    return TxnError(ErrorCode::kProtocolError, "frame holds no envelopes");
  }
  out.reserve(frame->envelopes()->size());
  for (auto e : *frame->envelopes()) {
    if (!e) return TxnError(ErrorCode::kProtocolError, "frame holds a null envelope");
    auto body = decodeBody(*e);
    if (!body) return body.error();
    out.push_back(Envelope{e->request_id(), std::move(body).value()});
  }
  return out;
}

}  // namespace txkv::proto
