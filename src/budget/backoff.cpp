#include "budget/backoff.hpp"

#include <algorithm>

namespace bpool::detail {

namespace {

// A per-thread xorshift generator for jitter: no shared state, no lock.
double unit_random() noexcept {
    thread_local std::uint64_t state =
        0x9E3779B97F4A7C15ull ^ reinterpret_cast<std::uintptr_t>(&state);
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return static_cast<double>(state >> 11) * 0x1.0p-53;
}

}  // namespace

jittered_backoff::jittered_backoff(const backoff_options& options) noexcept
    : options_(options), interval_ns_(options.initial_interval.count()) {}

std::chrono::nanoseconds jittered_backoff::next_step() noexcept {
    const auto interval = static_cast<double>(interval_ns_.load(std::memory_order_relaxed));
    const double r = options_.randomization;
    const double jitter = 1.0 - r + 2.0 * r * unit_random();
    const auto step = std::chrono::nanoseconds(static_cast<std::int64_t>(interval * jitter));
    const double grown = std::min(interval * options_.multiplier,
                                  static_cast<double>(options_.max_interval.count()));
    interval_ns_.store(static_cast<std::int64_t>(grown), std::memory_order_relaxed);
    return std::max(step, std::chrono::nanoseconds{1000});
}

void jittered_backoff::changed(const semaphore_state& s, semaphore_change what) noexcept {
    if (what != semaphore_change::released && what != semaphore_change::limits) return;
    if (!s.queued && s.committed.bytes < s.limit.bytes && s.committed.blocks < s.limit.blocks)
        interval_ns_.store(options_.initial_interval.count(), std::memory_order_relaxed);
}

}  // namespace bpool::detail
