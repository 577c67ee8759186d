// See atomic.h. Little-endian unsigned integers for add/max/min/bit*, the operand's
// length wins; byteMax/byteMin compare bytes; appendIfFits keeps the value when the
// result would pass the value limit; compareAndClear clears on equality.
#include "atomic.h"

#include <algorithm>

namespace txkv::detail {

namespace {
Bytes fit(std::string_view existing, size_t n) {
  Bytes out(n, '\0');
  std::copy_n(existing.begin(), std::min(existing.size(), n), out.begin());
  return out;
}
// < 0 when `existing`, taken at param's length, is the smaller little-endian number.
int compareLittleEndian(std::string_view existing, std::string_view param) {
  for (size_t i = param.size(); i-- > 0;) {
    const int e = i < existing.size() ? static_cast<uint8_t>(existing[i]) : 0;
    const int p = static_cast<uint8_t>(param[i]);
    if (e != p) return e - p;
  }
  return 0;
}
}  // namespace

bool isAtomic(proto::MutationType t) {
  const auto v = static_cast<uint8_t>(t);
  return v >= static_cast<uint8_t>(proto::MutationType::kAdd) && v <= static_cast<uint8_t>(proto::MutationType::kCompareAndClear);
}

std::optional<Bytes> applyAtomic(proto::MutationType t, const std::optional<Bytes>& existing, std::string_view param) {
  using MT = proto::MutationType;
  const bool emptyOrAbsent = !existing || existing->empty();
  switch (t) {
    case MT::kAdd: {
      if (emptyOrAbsent || param.empty()) return Bytes(param);
      Bytes out(param.size(), '\0');
      unsigned carry = 0;
      for (size_t i = 0; i < param.size(); i++) {
        const unsigned sum = (i < existing->size() ? static_cast<uint8_t>((*existing)[i]) : 0u) + static_cast<uint8_t>(param[i]) + carry;
        out[i] = static_cast<char>(sum & 0xff);
        carry = sum >> 8;
      }
      return out;
    }
    case MT::kBitAnd: {
      if (!existing) return Bytes(param);
      Bytes out = fit(*existing, param.size());
      for (size_t i = 0; i < param.size(); i++) out[i] = static_cast<char>(out[i] & param[i]);
      return out;
    }
    case MT::kBitOr:
    case MT::kBitXor: {
      if (emptyOrAbsent || param.empty()) return Bytes(param);
      Bytes out = fit(*existing, param.size());
      for (size_t i = 0; i < param.size(); i++) out[i] = static_cast<char>(t == MT::kBitOr ? (out[i] | param[i]) : (out[i] ^ param[i]));
      return out;
    }
    case MT::kMax:
      if (emptyOrAbsent || param.empty()) return Bytes(param);
      return compareLittleEndian(*existing, param) > 0 ? fit(*existing, param.size()) : Bytes(param);
    case MT::kMin:
      if (!existing || param.empty()) return Bytes(param);
      return compareLittleEndian(*existing, param) < 0 ? fit(*existing, param.size()) : Bytes(param);
    case MT::kByteMax:
      if (!existing) return Bytes(param);
      return std::string_view(*existing) > param ? *existing : Bytes(param);
    case MT::kByteMin:
      if (!existing) return Bytes(param);
      return std::string_view(*existing) < param ? *existing : Bytes(param);
    case MT::kAppendIfFits:
      if (emptyOrAbsent) return Bytes(param);
      if (param.empty() || existing->size() + param.size() > kMaxValueBytes) return *existing;
      return *existing + Bytes(param);
    case MT::kCompareAndClear:
      if (!existing || *existing == param) return std::nullopt;
      return existing;
    default:
      return existing;
  }
}

}  // namespace txkv::detail
