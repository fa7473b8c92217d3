// Layer 7: the soft threshold, a policy on a fifo_semaphore's byte count: above `threshold` (a
// fraction of the byte limit) every take is paced by a pause that grows smoothly from nothing at
// the threshold to `max_pause` at the limit, so producers slow down before they meet the cap.
//
// Thread safety: immutable; every member may be called from any thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "budget/fifo_semaphore.hpp"

namespace bpool::detail {

class pacing {
  public:
    /// Effects: pacing above `threshold` (normalized: in (0, 1), or 0 for none) of the byte
    /// limit, up to `max_pause` at the limit.
    pacing(double threshold, std::chrono::nanoseconds max_pause) noexcept
        : threshold_(threshold), max_pause_(max_pause) {}

    /// Returns: the pause owed by a take that leaves `committed_bytes` committed under a byte
    /// limit of `limit_bytes` (fifo_semaphore::unlimited: none); zero at or below the threshold.
    [[nodiscard]] std::chrono::nanoseconds pause(std::int64_t committed_bytes,
                                                 std::int64_t limit_bytes) const noexcept {
        if (threshold_ <= 0 || limit_bytes >= fifo_semaphore::unlimited)
            return std::chrono::nanoseconds{0};
        const auto limit = static_cast<double>(limit_bytes);
        const double threshold = threshold_ * limit;
        const auto used = static_cast<double>(committed_bytes);
        if (used <= threshold) return std::chrono::nanoseconds{0};
        const double x = std::min((used - threshold) / (limit - threshold), 1.0);
        // Quadratic: barely noticeable just above the threshold, max_pause at the cap.
        return std::chrono::nanoseconds(
            static_cast<std::int64_t>(x * x * static_cast<double>(max_pause_.count())));
    }

  private:
    const double threshold_;
    const std::chrono::nanoseconds max_pause_;
};

}  // namespace bpool::detail
