// STAND-IN (txkv integrations/3fs/standin): not 3FS. The transaction interface of the 3FS
// metadata service as its public header declares it (names, parameter and return types),
// plus TransactionHelper re-implemented from its documented behaviour.
#pragma once

#include <folly/Utility.h>

#include <array>
#include <cassert>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <tuple>
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
    std::tuple<const String&, const String&> pair() const { return {key, value}; }
  };

  struct KeySelector {
    std::string_view key;
    bool inclusive;
    KeySelector(std::string_view k, bool argInclusive) : key(k), inclusive(argInclusive) {}
  };

  struct GetRangeResult : public folly::MoveOnly {
    std::vector<KeyValue> kvs;
    bool hasMore;
    GetRangeResult(std::vector<KeyValue> argKvs, bool argHasMore) : kvs(std::move(argKvs)), hasMore(argHasMore) {}
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

// Re-implemented from 3FS's documented behaviour (declarations as its header has them).
struct TransactionHelper {
  static bool isTransactionError(const Status& error) {
    return error.code() >= TransactionCode::kFailed && error.code() <= TransactionCode::kFutureVersion;
  }

  // These TransactionCodes are retryable; MaybeCommitted only when the caller allows it;
  // NetworkError, Canceled, Failed and non-transaction codes are not.
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

  // The first key after `key`: key + '\0'.
  static String keyAfter(std::string_view key) { return String(key) + '\0'; }

  // The first key after every key starting with `prefix`: drop trailing 0xff bytes, then
  // increment the last byte ("" when the prefix is all 0xff).
  static String prefixListEndKey(std::string_view prefix) {
    String end(prefix);
    while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
    if (!end.empty()) end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
    return end;
  }

  struct ListByPrefixOptions {
    bool snapshot = true;
    bool inclusive = true;
    size_t limit = 0;

    ListByPrefixOptions() = default;
    ListByPrefixOptions& withSnapshot(bool v) {
      snapshot = v;
      return *this;
    }
    ListByPrefixOptions& withInclusive(bool v) {
      inclusive = v;
      return *this;
    }
    ListByPrefixOptions& withLimit(size_t v) {
      limit = v;
      return *this;
    }
  };

  using KeyValue = IReadOnlyTransaction::KeyValue;

  // Every row whose key starts with `prefix` (at most options.limit, 0 = all): pages of
  // (snapshot)GetRange over [prefix, prefixListEndKey(prefix)) asking for what is still
  // missing (limit ? limit - got : 0 = the engine's default page), following hasMore, each
  // next page starting exclusively after the last key received.
  static CoTryTask<std::vector<KeyValue>> listByPrefix(IReadOnlyTransaction& txn, std::string_view prefix,
                                                       ListByPrefixOptions options) {
    assert(!prefix.empty() && static_cast<unsigned char>(prefix[0]) != 0xff);
    auto page = options.snapshot ? &IReadOnlyTransaction::snapshotGetRange : &IReadOnlyTransaction::getRange;
    String beginKey(prefix);
    String endKey = prefixListEndKey(prefix);
    IReadOnlyTransaction::KeySelector begin(beginKey, options.inclusive);
    IReadOnlyTransaction::KeySelector end(endKey, false);
    std::vector<KeyValue> out;
    while (options.limit == 0 || out.size() < options.limit) {
      auto r = co_await (txn.*page)(begin, end, static_cast<int32_t>(options.limit ? options.limit - out.size() : 0));
      CO_RETURN_ON_ERROR(r);
      for (auto& kv : r->kvs) {
        if (!kv.key.starts_with(prefix)) throw std::logic_error("listByPrefix: a key outside the prefix");
        out.push_back(std::move(kv));
      }
      if (!r->hasMore) break;
      if (r->kvs.empty()) throw std::logic_error("listByPrefix: hasMore with an empty page");
      beginKey = out.back().key;
      begin = IReadOnlyTransaction::KeySelector(beginKey, false);
    }
    co_return out;
  }

  template <typename T, typename Fn>
  static CoTryTask<std::vector<T>> listByPrefix(IReadOnlyTransaction& txn, std::string_view prefix,
                                                ListByPrefixOptions options, Fn&& unpack) {
    auto list = co_await listByPrefix(txn, prefix, options);
    CO_RETURN_ON_ERROR(list);
    std::vector<T> res;
    for (auto& [k, v] : *list) {
      auto entry = unpack(k, v);
      CO_RETURN_ON_ERROR(entry);
      res.push_back(std::move(*entry));
    }
    co_return res;
  }
};

}  // namespace hf3fs::kv
