// STAND-IN (txkv integrations/3fs/standin): not 3FS. The transaction interface of the 3FS
// metadata service as its public header declares it (names, parameter and return types),
// plus TransactionHelper re-implemented from its documented behaviour.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "common/utils/Coroutine.h"
#include "common/utils/Result.h"
#include "common/utils/Status.h"
#include "common/utils/String.h"

namespace hf3fs::kv {

static constexpr std::string_view kMetadataVersionKey = "\xff/metadataVersion";
using Versionstamp = std::array<uint8_t, 10>;

class IReadOnlyTransaction {
 public:
  virtual ~IReadOnlyTransaction() = default;

  virtual void setReadVersion(int64_t version) = 0;
  virtual CoTryTask<std::optional<String>> snapshotGet(std::string_view key) = 0;
  virtual CoTryTask<std::optional<String>> get(std::string_view key) { co_return co_await snapshotGet(key); }

  struct KeyValue {
    String key;
    String value;
    KeyValue(String k, String v) : key(std::move(k)), value(std::move(v)) {}
    KeyValue(std::string_view k, std::string_view v) : key(k), value(v) {}
  };

  struct KeySelector {
    std::string_view key;
    bool inclusive;
    KeySelector(std::string_view k, bool argInclusive) : key(k), inclusive(argInclusive) {}
  };

  struct GetRangeResult {
    std::vector<KeyValue> kvs;
    bool hasMore;
    GetRangeResult(std::vector<KeyValue> argKvs, bool argHasMore) : kvs(std::move(argKvs)), hasMore(argHasMore) {}
    GetRangeResult(GetRangeResult&&) = default;
    GetRangeResult& operator=(GetRangeResult&&) = default;
    GetRangeResult(const GetRangeResult&) = delete;  // move-only, as folly::MoveOnly
  };

  virtual CoTryTask<GetRangeResult> snapshotGetRange(const KeySelector& begin, const KeySelector& end,
                                                     int32_t limit) = 0;
  virtual CoTryTask<GetRangeResult> getRange(const KeySelector& begin, const KeySelector& end, int32_t limit) = 0;

  virtual CoTryTask<void> cancel() = 0;
  virtual void reset() = 0;
};

class IReadWriteTransaction : public IReadOnlyTransaction {
 public:
  ~IReadWriteTransaction() override = default;

  CoTryTask<std::optional<String>> get(std::string_view key) override = 0;
  CoTryTask<GetRangeResult> getRange(const KeySelector& begin, const KeySelector& end, int32_t limit) override = 0;

  virtual CoTryTask<void> addReadConflict(std::string_view key) = 0;
  virtual CoTryTask<void> addReadConflictRange(std::string_view begin, std::string_view end) = 0;

  virtual CoTryTask<void> set(std::string_view key, std::string_view value) = 0;
  virtual CoTryTask<void> clear(std::string_view key) = 0;

  virtual CoTryTask<void> setVersionstampedKey(std::string_view key, uint32_t offset, std::string_view value) = 0;
  virtual CoTryTask<void> setVersionstampedValue(std::string_view key, std::string_view value, uint32_t offset) = 0;

  virtual CoTryTask<void> commit() = 0;
  virtual int64_t getCommittedVersion() = 0;
};

struct TransactionHelper {
  // 3FS documents these TransactionCodes as retryable; MaybeCommitted only when the
  // caller allows it; NetworkError, Canceled, Failed and non-transaction codes are not.
  static bool isRetryable(const Status& error, bool allowMaybeCommitted) {
    switch (error.code()) {
      case TransactionCode::kConflict:
      case TransactionCode::kThrottled:
      case TransactionCode::kTooOld:
      case TransactionCode::kRetryable:
      case TransactionCode::kResourceConstrained:
      case TransactionCode::kProcessBehind:
      case TransactionCode::kFutureVersion:
        return true;
      case TransactionCode::kMaybeCommitted:
        return allowMaybeCommitted;
      default:
        return false;
    }
  }
  static String keyAfter(std::string_view key) { return String(key) + '\0'; }
};

}  // namespace hf3fs::kv
