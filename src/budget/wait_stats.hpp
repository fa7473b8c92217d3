// Layer 7: the exhaustion statistics of a cap: what the requests at it ended with, and how long
// they waited (total, longest, a histogram in power-of-two buckets of microseconds).
//
// Thread safety: every member may be called from any thread; the counters are independent relaxed
// atomics, so a reader sees each one's recent value, not one instant of all of them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include <bpool/stats.hpp>

namespace bpool::detail {

class wait_stats {
  public:
    /// What a request at the cap did, counted in the pool_stats field of the same name.
    enum event : unsigned char { waits, timeouts, failures, overcommits, bypasses, paced, events };

    /// Effects: counts one `e`.
    void count(event e) noexcept { counts_[e].fetch_add(1, std::memory_order_relaxed); }
    /// Effects: records a finished wait of `waited` (total, longest, histogram).
    void record_wait(std::chrono::nanoseconds waited) noexcept;
    /// Effects: fills the counters, total_wait, max_wait and wait_histogram of `s`.
    void fill(pool_stats& s) const noexcept;

  private:
    std::atomic<std::uint64_t> counts_[events]{};
    std::atomic<std::int64_t> total_wait_ns_{0}, max_wait_ns_{0};
    std::atomic<std::uint64_t> histogram_[pool_stats::wait_buckets]{};
};

}  // namespace bpool::detail
