#include "CustomKvEngine.h"

#include <type_traits>

#include "CustomTransaction.h"

namespace hf3fs::kv {

txkv::ConnectOptions CustomKvEngine::toConnectOptions(const CustomKvConfig& config) {
  txkv::ConnectOptions o;
  o.endpoints.assign(config.cluster_endpoints().begin(), config.cluster_endpoints().end());
  o.token = config.auth_token();
  o.caFile = config.ca_file();
  o.transactionTimeoutMs = config.transaction_timeout_ms();
  o.maxRetryCount = config.max_retry_count();
  o.connectionPoolSize = config.connection_pool_size();
  o.connectTimeoutMs = config.connect_timeout_ms();
  o.clientName = "3fs-meta";
  return o;
}

Result<std::unique_ptr<CustomKvEngine>> CustomKvEngine::create(const CustomKvConfig& config) {
  auto db = txkv::Database::connect(toConnectOptions(config));
  if (!db.ok()) {
    return makeError(StatusCode::kInvalidConfig, "kv_engine.custom_kv: " + db.error().describe());
  }
  return std::make_unique<CustomKvEngine>(std::move(db).value());
}

std::unique_ptr<IReadWriteTransaction> CustomKvEngine::createReadWriteTransaction() {
  return std::make_unique<CustomTransaction>(db_, db_->createTransaction());
}

// Signature check (see CustomTransaction.cc): IKVEngine's two methods, exactly.
static_assert(std::is_same_v<decltype(&IKVEngine::createReadonlyTransaction),
                             std::unique_ptr<IReadOnlyTransaction> (IKVEngine::*)()>);
static_assert(std::is_same_v<decltype(&IKVEngine::createReadWriteTransaction),
                             std::unique_ptr<IReadWriteTransaction> (IKVEngine::*)()>);

}  // namespace hf3fs::kv
