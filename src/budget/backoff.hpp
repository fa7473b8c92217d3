// Layer 7: exponential backoff with jitter, a policy on a fifo_semaphore. It paces the steps of
// the waits (each sleeps one interval, give or take the jitter, then looks again: a grant wakes a
// waiter at once, so the interval bounds only how often it looks), and the interval grows with
// each step of any waiter: one interval per semaphore. A release that leaves the count under the
// limits with nobody waiting resets it, so the next exhaustion starts afresh (as the seed's Put
// resets its backoff).
//
// Thread safety: next_step and changed are called under the semaphore's lock (one caller at a
// time, which is what guards the interval's growth); interval() is read lock-free.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include <bpool/pool_options.hpp>

#include "budget/fifo_semaphore.hpp"

namespace bpool::detail {

class jittered_backoff final : public semaphore_observer, public wait_hooks {
  public:
    /// Effects: a backoff at `options.initial_interval`. `options` must be normalized
    /// (pool/options.hpp: intervals of 1 us at least, multiplier >= 1, randomization in [0, 1]).
    explicit jittered_backoff(const backoff_options& options) noexcept;
    jittered_backoff(const jittered_backoff&) = delete;
    jittered_backoff& operator=(const jittered_backoff&) = delete;

    /// Returns: the next step's sleep, the interval scaled by a random factor within
    /// 1 +- randomization, 1 us at least; grows the interval by the multiplier up to max_interval.
    /// Called under the semaphore's lock.
    std::chrono::nanoseconds next_step() noexcept override;
    /// Effects: after a release or a change of limits that leaves the count below both limits
    /// with nobody waiting, resets the interval to initial_interval. Called under the semaphore's
    /// lock.
    void changed(const semaphore_state& s, semaphore_change what) noexcept override;
    /// Returns: the interval in force (the next step's, before jitter). Lock-free.
    [[nodiscard]] std::chrono::nanoseconds interval() const noexcept {
        return std::chrono::nanoseconds(interval_ns_.load(std::memory_order_relaxed));
    }
    /// Returns: the options it was made with.
    [[nodiscard]] const backoff_options& options() const noexcept { return options_; }

  private:
    const backoff_options options_;
    std::atomic<std::int64_t> interval_ns_;  // written under the semaphore's lock
};

}  // namespace bpool::detail
