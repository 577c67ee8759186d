// STAND-IN (txkv integrations/3fs/standin): not 3FS. The engine interface as 3FS declares it.
#pragma once

#include <memory>

#include "common/kv/ITransaction.h"

namespace hf3fs::kv {
class IKVEngine {
 public:
  virtual ~IKVEngine() = default;
  virtual std::unique_ptr<IReadOnlyTransaction> createReadonlyTransaction() = 0;
  virtual std::unique_ptr<IReadWriteTransaction> createReadWriteTransaction() = 0;
};
}  // namespace hf3fs::kv
