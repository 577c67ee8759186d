// IKVEngine over a txkv cluster: one txkv::Database (a pool of WebSockets over
// cluster_endpoints, one I/O thread) shared by every transaction it creates.
// Goes to src/fdb/; selected by [kv_engine] kv_engine_type = "custom".
#pragma once

#include <memory>

#include "CustomKvConfig.h"
#include "common/kv/IKVEngine.h"
#include "common/utils/Result.h"
#include "txkv/client.h"

namespace hf3fs::kv {

class CustomKvEngine : public IKVEngine {
 public:
  // Validates the config and starts the client; connections open on first use.
  static Result<std::unique_ptr<CustomKvEngine>> create(const CustomKvConfig& config);
  static txkv::ConnectOptions toConnectOptions(const CustomKvConfig& config);

  explicit CustomKvEngine(std::shared_ptr<txkv::Database> db) : db_(std::move(db)) {}

  // As FDBKVEngine: a read-only transaction is a read-write one that is never committed.
  std::unique_ptr<IReadOnlyTransaction> createReadonlyTransaction() override { return createReadWriteTransaction(); }
  std::unique_ptr<IReadWriteTransaction> createReadWriteTransaction() override;

  const std::shared_ptr<txkv::Database>& database() const { return db_; }

 private:
  std::shared_ptr<txkv::Database> db_;
};

}  // namespace hf3fs::kv
