// STAND-IN (txkv integrations/3fs/standin): not folly. Minimal folly::Unit.
#pragma once

namespace folly {
struct Unit {
  constexpr bool operator==(const Unit&) const { return true; }
};
}  // namespace folly
