// STAND-IN (txkv integrations/3fs/standin): not 3FS.
#pragma once

#include <string>

namespace hf3fs {
using String = std::string;
}  // namespace hf3fs
