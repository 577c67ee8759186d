// A 3FS transaction (IReadWriteTransaction) over a txkv transaction. Goes to src/fdb/.
// Every operation maps to the txkv C++ client; txkv errors map to 3FS TransactionCodes
// so that TransactionHelper::isRetryable decides as it does with FoundationDB.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "common/kv/ITransaction.h"
#include "common/utils/Coroutine.h"
#include "common/utils/Result.h"
#include "common/utils/Status.h"
#include "txkv/client.h"

namespace hf3fs::kv {

class CustomTransaction : public IReadWriteTransaction {
 public:
  CustomTransaction(std::shared_ptr<txkv::Database> db, txkv::Transaction tx)
      : db_(std::move(db)), tx_(std::move(tx)) {}

  // Read operations
  CoTryTask<std::optional<String>> snapshotGet(std::string_view key) override;
  CoTryTask<GetRangeResult> snapshotGetRange(const KeySelector& begin, const KeySelector& end, int32_t limit) override;
  CoTryTask<std::optional<String>> get(std::string_view key) override;
  CoTryTask<GetRangeResult> getRange(const KeySelector& begin, const KeySelector& end, int32_t limit) override;

  CoTryTask<void> cancel() override;

  CoTryTask<void> addReadConflict(std::string_view key) override;
  CoTryTask<void> addReadConflictRange(std::string_view begin, std::string_view end) override;

  // Write operations (buffered in the client until commit)
  CoTryTask<void> set(std::string_view key, std::string_view value) override;
  CoTryTask<void> clear(std::string_view key) override;
  CoTryTask<void> setVersionstampedKey(std::string_view key, uint32_t offset, std::string_view value) override;
  CoTryTask<void> setVersionstampedValue(std::string_view key, std::string_view value, uint32_t offset) override;
  CoTryTask<void> clearRange(std::string_view begin, std::string_view end);  // as FDBTransaction: tests/tools

  CoTryTask<void> commit() override;
  void reset() override;

  void setReadVersion(int64_t version) override;
  CoTryTask<int64_t> getReadVersion();
  int64_t getCommittedVersion() override;
  CoTryTask<String> getVersionstamp();  // 10 bytes, after a successful commit

  // The one mapping txkv code -> 3FS status (spec table "3FS TransactionCode").
  static Status toStatus(const txkv::TxnError& e);

 private:
  std::shared_ptr<txkv::Database> db_;  // keeps the client alive as long as the transaction
  txkv::Transaction tx_;
};

}  // namespace hf3fs::kv
