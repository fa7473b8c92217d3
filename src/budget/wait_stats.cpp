#include "budget/wait_stats.hpp"

#include <algorithm>
#include <bit>

namespace bpool::detail {

void wait_stats::record_wait(std::chrono::nanoseconds waited) noexcept {
    const std::int64_t ns = waited.count();
    total_wait_ns_.fetch_add(ns, std::memory_order_relaxed);
    std::int64_t max = max_wait_ns_.load(std::memory_order_relaxed);
    while (ns > max && !max_wait_ns_.compare_exchange_weak(max, ns, std::memory_order_relaxed)) {
    }
    const auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(ns / 1000, 1));
    const auto bucket = std::min<std::size_t>(std::bit_width(us) - 1, pool_stats::wait_buckets - 1);
    histogram_[bucket].fetch_add(1, std::memory_order_relaxed);
}

void wait_stats::fill(pool_stats& s) const noexcept {
    const auto n = [&](event e) { return counts_[e].load(std::memory_order_relaxed); };
    s.waits = n(waits);
    s.timeouts = n(timeouts);
    s.failures = n(failures);
    s.overcommits = n(overcommits);
    s.bypasses = n(bypasses);
    s.paced = n(paced);
    s.total_wait = std::chrono::nanoseconds(total_wait_ns_.load(std::memory_order_relaxed));
    s.max_wait = std::chrono::nanoseconds(max_wait_ns_.load(std::memory_order_relaxed));
    for (std::size_t i = 0; i < pool_stats::wait_buckets; ++i)
        s.wait_histogram[i] = histogram_[i].load(std::memory_order_relaxed);
}

}  // namespace bpool::detail
