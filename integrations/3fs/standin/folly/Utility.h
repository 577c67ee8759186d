// STAND-IN (txkv integrations/3fs/standin): not folly. folly::MoveOnly: a base that makes
// a type move-only (3FS's GetRangeResult derives from it).
#pragma once

namespace folly {
struct MoveOnly {
  constexpr MoveOnly() noexcept = default;
  ~MoveOnly() noexcept = default;
  MoveOnly(MoveOnly&&) noexcept = default;
  MoveOnly& operator=(MoveOnly&&) noexcept = default;
  MoveOnly(const MoveOnly&) = delete;
  MoveOnly& operator=(const MoveOnly&) = delete;
};
}  // namespace folly
