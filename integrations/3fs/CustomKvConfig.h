// Configuration of the txkv engine for 3FS ([kv_engine.custom_kv] in the service's TOML;
// see configs/custom_kv_example.toml). Goes to src/fdb/ next to HybridKvEngineConfig.h.
#pragma once

#include <string>
#include <vector>

#include "common/utils/ConfigBase.h"

namespace hf3fs::kv {

struct CustomKvConfig : public ConfigBase<CustomKvConfig> {
  // txkv servers, e.g. ["wss://kv1:7070", "wss://kv2:7070"] (TLS) or ["ws://10.0.0.1:7070"].
  CONFIG_ITEM(cluster_endpoints, std::vector<std::string>{});
  // wss:// only: PEM file of the CA that signed the servers' certificates ("" = system store).
  CONFIG_ITEM(ca_file, "");
  // A transaction older than this fails its next call (TIMEOUT -> TransactionCode::kFailed).
  CONFIG_ITEM(transaction_timeout_ms, 10000L, [](long v) { return v > 0; });
  // Passed to the txkv client (its own transact() loop). Meta operations keep being retried
  // by 3FS's WithTransaction under the service's TransactionRetry settings.
  CONFIG_ITEM(max_retry_count, 10, [](int v) { return v >= 0; });
  // WebSockets per engine, spread over cluster_endpoints.
  CONFIG_ITEM(connection_pool_size, 4, [](int v) { return v >= 1 && v <= 1024; });
  // Sent in txkv's HelloRequest when the server requires a token.
  CONFIG_ITEM(auth_token, "");
  CONFIG_ITEM(connect_timeout_ms, 5000L, [](long v) { return v > 0; });
};

}  // namespace hf3fs::kv
