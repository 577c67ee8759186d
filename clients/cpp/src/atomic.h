// Atomic operations (wire MutationType 5..14): the value a key gets when one is applied
// to the value it has. FoundationDB's semantics, the same as src/keys/atomic.ts (the
// TypeScript client and the shards); the table test is test/atomic_test.cc.
#pragma once

#include <optional>
#include <string_view>

#include "txkv/keys.h"
#include "wire.h"

namespace txkv::detail {

bool isAtomic(proto::MutationType t);
// nullopt = the key ends up absent (compareAndClear); `existing` nullopt = absent.
std::optional<Bytes> applyAtomic(proto::MutationType t, const std::optional<Bytes>& existing, std::string_view param);

}  // namespace txkv::detail
