// IReadWriteTransaction over the txkv C++ client. Each awaited operation starts the txkv
// *Async call and co_awaits a folly SemiFuture fulfilled by its callback (txkv I/O thread),
// so the coroutine resumes on its own executor, never on txkv's thread.
#include "CustomTransaction.h"

#include <folly/futures/Future.h>

#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace hf3fs::kv {
namespace {

template <typename T, typename Start>
CoTask<txkv::Result<T>> awaitTxkv(Start start) {
  auto [promise, future] = folly::makePromiseContract<txkv::Result<T>>();
  auto shared = std::make_shared<folly::Promise<txkv::Result<T>>>(std::move(promise));
  start([shared](txkv::Result<T> r) { shared->setValue(std::move(r)); });
  co_return co_await std::move(future);
}

Result<Void> fromStatus(const txkv::Status& s) {
  if (s.ok()) return Void{};
  return makeError(CustomTransaction::toStatus(s.error()));
}

txkv::KeySelector toSelector(const IReadOnlyTransaction::KeySelector& s) {
  return txkv::KeySelector{txkv::Bytes(s.key), s.inclusive};
}

IReadOnlyTransaction::GetRangeResult toRangeResult(txkv::RangeResult&& r) {
  std::vector<IReadOnlyTransaction::KeyValue> kvs;
  kvs.reserve(r.kvs.size());
  for (auto& kv : r.kvs) kvs.emplace_back(String(std::move(kv.key)), String(std::move(kv.value)));
  return IReadOnlyTransaction::GetRangeResult(std::move(kvs), r.hasMore);
}

}  // namespace

Status CustomTransaction::toStatus(const txkv::TxnError& e) {
  using txkv::ErrorCode;
  status_code_t code = TransactionCode::kFailed;
  switch (e.code()) {
    case ErrorCode::kConflict: code = TransactionCode::kConflict; break;
    case ErrorCode::kTooOld: code = TransactionCode::kTooOld; break;
    case ErrorCode::kFutureVersion: code = TransactionCode::kFutureVersion; break;
    case ErrorCode::kThrottled: code = TransactionCode::kThrottled; break;
    case ErrorCode::kResourceConstrained: code = TransactionCode::kResourceConstrained; break;
    case ErrorCode::kUnavailable: code = TransactionCode::kThrottled; break;
    case ErrorCode::kMaybeCommitted: code = TransactionCode::kMaybeCommitted; break;
    case ErrorCode::kNetworkError: code = TransactionCode::kNetworkError; break;
    case ErrorCode::kCanceled: code = TransactionCode::kCanceled; break;
    // TIMEOUT, READ_ONLY, INVALID_ARGUMENT, the size limits, UNAUTHORIZED, PROTOCOL_ERROR
    // and FAILED are not retryable: kFailed, as FoundationDB's equivalents map in 3FS.
    default: code = TransactionCode::kFailed; break;
  }
  return Status(code, "txkv " + e.describe());
}

CoTryTask<std::optional<String>> CustomTransaction::snapshotGet(std::string_view key) {
  auto r = co_await awaitTxkv<std::optional<txkv::Bytes>>([&](auto cb) { tx_.snapshotGetAsync(key, std::move(cb)); });
  if (!r.ok()) co_return makeError(toStatus(r.error()));
  co_return std::move(r).value();
}

CoTryTask<std::optional<String>> CustomTransaction::get(std::string_view key) {
  auto r = co_await awaitTxkv<std::optional<txkv::Bytes>>([&](auto cb) { tx_.getAsync(key, std::move(cb)); });
  if (!r.ok()) co_return makeError(toStatus(r.error()));
  co_return std::move(r).value();
}

CoTryTask<IReadOnlyTransaction::GetRangeResult> CustomTransaction::snapshotGetRange(const KeySelector& begin,
                                                                                   const KeySelector& end,
                                                                                   int32_t limit) {
  auto b = toSelector(begin), e = toSelector(end);
  auto r = co_await awaitTxkv<txkv::RangeResult>(
      [&](auto cb) { tx_.snapshotGetRangeAsync(b, e, txkv::RangeOptions{limit, false}, std::move(cb)); });
  if (!r.ok()) co_return makeError(toStatus(r.error()));
  co_return toRangeResult(std::move(r).value());
}

CoTryTask<IReadOnlyTransaction::GetRangeResult> CustomTransaction::getRange(const KeySelector& begin,
                                                                           const KeySelector& end, int32_t limit) {
  auto b = toSelector(begin), e = toSelector(end);
  auto r = co_await awaitTxkv<txkv::RangeResult>(
      [&](auto cb) { tx_.getRangeAsync(b, e, txkv::RangeOptions{limit, false}, std::move(cb)); });
  if (!r.ok()) co_return makeError(toStatus(r.error()));
  co_return toRangeResult(std::move(r).value());
}

CoTryTask<void> CustomTransaction::cancel() {
  tx_.cancel();
  co_return Void{};
}

CoTryTask<void> CustomTransaction::addReadConflict(std::string_view key) {
  co_return fromStatus(tx_.addReadConflictKey(key));
}

CoTryTask<void> CustomTransaction::addReadConflictRange(std::string_view begin, std::string_view end) {
  co_return fromStatus(tx_.addReadConflictRange(begin, end));
}

CoTryTask<void> CustomTransaction::set(std::string_view key, std::string_view value) {
  co_return fromStatus(tx_.set(key, value));
}

CoTryTask<void> CustomTransaction::clear(std::string_view key) { co_return fromStatus(tx_.clear(key)); }

CoTryTask<void> CustomTransaction::clearRange(std::string_view begin, std::string_view end) {
  co_return fromStatus(tx_.clearRange(begin, end));
}

CoTryTask<void> CustomTransaction::setVersionstampedKey(std::string_view key, uint32_t offset,
                                                        std::string_view value) {
  // Same check and code as FDBTransaction, before anything is buffered.
  if (uint64_t(offset) + sizeof(Versionstamp) > key.size()) {
    co_return makeError(StatusCode::kInvalidArg, "setVersionstampedKey: " + std::to_string(offset) +
                                                     " + sizeof(kv::Versionstamp) > key.size " +
                                                     std::to_string(key.size()));
  }
  co_return fromStatus(tx_.setVersionstampedKey(key, offset, value));
}

CoTryTask<void> CustomTransaction::setVersionstampedValue(std::string_view key, std::string_view value,
                                                          uint32_t offset) {
  if (uint64_t(offset) + sizeof(Versionstamp) > value.size()) {
    co_return makeError(StatusCode::kInvalidArg, "setVersionstampedValue: " + std::to_string(offset) +
                                                     " + sizeof(kv::Versionstamp) > value.size " +
                                                     std::to_string(value.size()));
  }
  co_return fromStatus(tx_.setVersionstampedValue(key, value, offset));
}

CoTryTask<void> CustomTransaction::commit() {
  auto r = co_await awaitTxkv<txkv::Void>([&](auto cb) { tx_.commitAsync(std::move(cb)); });
  if (!r.ok()) co_return makeError(toStatus(r.error()));
  co_return Void{};
}

void CustomTransaction::reset() { tx_.reset(); }

void CustomTransaction::setReadVersion(int64_t version) {
  // as 3FS's FDB adapter: a negative version means "none"; otherwise the client's rules
  // apply (a second call, one after a read, or 0 fail the next call with INVALID_ARGUMENT)
  if (version >= 0) tx_.setReadVersion(version);
}

CoTryTask<int64_t> CustomTransaction::getReadVersion() {
  auto r = co_await awaitTxkv<int64_t>([&](auto cb) { tx_.getReadVersionAsync(std::move(cb)); });
  if (!r.ok()) co_return makeError(toStatus(r.error()));
  co_return *r;
}

int64_t CustomTransaction::getCommittedVersion() { return tx_.getCommittedVersion(); }

CoTryTask<String> CustomTransaction::getVersionstamp() {
  auto r = co_await awaitTxkv<txkv::Bytes>([&](auto cb) { tx_.getVersionstampAsync(std::move(cb)); });
  if (!r.ok()) co_return makeError(toStatus(r.error()));
  co_return std::move(r).value();
}

// Signature check: the exact member-function-pointer type of every method of 3FS's
// transaction interfaces, so that a drift between the interface this adapter was written
// for and the headers it is compiled against (3FS's real ones, or txkv's stand-in) fails
// the build here, naming the method, instead of compiling into something else.
namespace signature_check {
using RO = IReadOnlyTransaction;
using RW = IReadWriteTransaction;
using Sel = RO::KeySelector;
template <typename Got, typename Want>
constexpr bool kSame = std::is_same_v<Got, Want>;
static_assert(kSame<decltype(&RO::setReadVersion), void (RO::*)(int64_t)>);
static_assert(kSame<decltype(&RO::snapshotGet), CoTryTask<std::optional<String>> (RO::*)(std::string_view)>);
static_assert(kSame<decltype(&RO::get), CoTryTask<std::optional<String>> (RO::*)(std::string_view)>);
static_assert(kSame<decltype(&RO::snapshotGetRange),
                    CoTryTask<RO::GetRangeResult> (RO::*)(const Sel&, const Sel&, int32_t)>);
static_assert(kSame<decltype(&RO::getRange), CoTryTask<RO::GetRangeResult> (RO::*)(const Sel&, const Sel&, int32_t)>);
static_assert(kSame<decltype(&RO::cancel), CoTryTask<void> (RO::*)()>);
static_assert(kSame<decltype(&RO::reset), void (RO::*)()>);
static_assert(kSame<decltype(&RW::get), CoTryTask<std::optional<String>> (RW::*)(std::string_view)>);
static_assert(kSame<decltype(&RW::getRange), CoTryTask<RO::GetRangeResult> (RW::*)(const Sel&, const Sel&, int32_t)>);
static_assert(kSame<decltype(&RW::addReadConflict), CoTryTask<void> (RW::*)(std::string_view)>);
static_assert(kSame<decltype(&RW::addReadConflictRange), CoTryTask<void> (RW::*)(std::string_view, std::string_view)>);
static_assert(kSame<decltype(&RW::set), CoTryTask<void> (RW::*)(std::string_view, std::string_view)>);
static_assert(kSame<decltype(&RW::clear), CoTryTask<void> (RW::*)(std::string_view)>);
static_assert(kSame<decltype(&RW::setVersionstampedKey),
                    CoTryTask<void> (RW::*)(std::string_view, uint32_t, std::string_view)>);
static_assert(kSame<decltype(&RW::setVersionstampedValue),
                    CoTryTask<void> (RW::*)(std::string_view, std::string_view, uint32_t)>);
static_assert(kSame<decltype(&RW::commit), CoTryTask<void> (RW::*)()>);
static_assert(kSame<decltype(&RW::getCommittedVersion), int64_t (RW::*)()>);
// The types the adapter relies on around them.
static_assert(kSame<CoTryTask<void>, CoTask<Result<Void>>>);
static_assert(kSame<decltype(RO::KeyValue::key), String> && kSame<decltype(RO::KeyValue::value), String>);
static_assert(kSame<decltype(RO::GetRangeResult::kvs), std::vector<RO::KeyValue>>);
static_assert(!std::is_copy_constructible_v<RO::GetRangeResult> && std::is_move_constructible_v<RO::GetRangeResult>);
static_assert(sizeof(Versionstamp) == 10);
}  // namespace signature_check

}  // namespace hf3fs::kv
