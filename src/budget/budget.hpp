// Layer 6: capacity and backoff. The budget owns the pool's limits (bytes and blocks) and the count
// of what is committed against them: bytes and blocks that are live, or leased to thread caches as
// credit, or granted to a request that is about to use them. committed <= limit at all times unless
// a request overcommits, which is what makes the cap exact.
//
// Leases: a thread cache takes credit in leases (its request plus an extra that shrinks as the
// headroom does) so that the fast path never touches the budget. Requests that do not fit wait in
// a FIFO queue of waiter records (tickets in arrival order); whoever gives back (a free under
// pressure, a reclaim of stranded credit, a capacity change) hands the freed amount to the waiters
// at the head that now fit, and wakes them. Waiters sleep in steps paced by exponential backoff
// with jitter; each step may also reclaim credit stranded in idle thread caches (through the
// reclaimer callback). A request that may not wait (fail, bypass) is refused only after credit
// stranded in caches, if it could make the request fit, was reclaimed (reclaimer::reclaim_for);
// queued waiters whose need passes lowered limits are refused at once. The pool-wide backoff
// interval grows with each step and resets when usage is back under the cap with nobody waiting.
//
// Thread safety: all members are thread-safe. One mutex guards the queue and the counters' writes;
// committed() and the limits are read lock-free, fill_stats takes the mutex briefly. The mutex is
// never held while calling out (reclaimer, on_stall callback) or sleeping. An on_stall callback
// that throws loses its report; the exception goes no further.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include <bpool/pool_options.hpp>
#include <bpool/stats.hpp>

#include "base/amount.hpp"
#include "base/pool_flags.hpp"

namespace bpool::detail {

using steady = std::chrono::steady_clock;

/// How one request behaves at the cap. `start` is the instant the request's wait is measured
/// from and `deadline` was computed from, so that a request that gives up at its deadline reports
/// at least the time it was allowed to wait.
struct wait_policy {
    exhaustion policy = exhaustion::wait;
    steady::time_point deadline = steady::time_point::max();
    steady::time_point start{};
};

/// What a request at the cap ended with.
enum class outcome : unsigned char { granted, overcommitted, bypass, refused, timed_out };

/// Reclaims credit stranded in thread caches (implemented by the pool by quiescing them).
class reclaimer {
  public:
    /// Takes the credit held by thread caches out of them if, together, they hold at least
    /// `missing` (each positive part of it), and returns it: still committed, for the caller to
    /// give back (zero if none was taken). Called without budget locks, by a request that would
    /// otherwise be refused at once (`fail`, `bypass`) and at every step of a wait, so that
    /// credit stranded in idle caches never makes the cap refuse or delay what fits, while a pool
    /// that is really full costs a request only a look at the caches, not a quiesce.
    virtual amount reclaim_for(amount missing) noexcept = 0;

  protected:
    ~reclaimer() = default;
};

class budget {
  public:
    /// Throws std::bad_alloc if copying `options.on_stall` does.
    budget(std::atomic<std::uint32_t>& flags, const pool_options& options);
    budget(const budget&) = delete;
    budget& operator=(const budget&) = delete;

    static constexpr std::int64_t unlimited = INT64_MAX / 4;

    /// Sets the limits (0: unlimited) and hands freed headroom to waiters.
    void set_limits(std::size_t bytes, std::size_t blocks) noexcept;
    [[nodiscard]] std::size_t capacity() const noexcept;
    [[nodiscard]] std::size_t max_live_blocks() const noexcept;

    /// What try_lease did.
    enum class lease_result : unsigned char {
        leased,      ///< `*granted` is committed to the caller.
        pace_first,  ///< Usage is above the soft threshold: sleep `*pause` (outside any
                     ///< operation and lock), then ask again with `pace` false. Nothing committed.
        refused,     ///< At the cap, or others wait: nothing committed.
    };

    /// Takes `need`, plus (if `extra`) an extra lease that shrinks with the headroom, if it fits
    /// and nobody waits. With `pace`, a request above the soft threshold is told to pause first;
    /// it commits nothing then, so that no credit sits unspent while its owner sleeps.
    lease_result try_lease(amount need, bool extra, bool pace, amount* granted,
                           std::chrono::nanoseconds* pause) noexcept;

    /// Gives `a` back and hands it to waiters that now fit.
    void give(amount a) noexcept;

    /// Takes exactly `need` for a request at the cap, following `wp` (waits, refuses, bypasses,
    /// or overcommits). `requested` is the caller's size, for reports. Blocks the calling thread;
    /// must be called with no pool lock held and outside any thread-cache operation. `*waited`
    /// is measured from `wp.start`. A wait is a cancellation point that the queue survives
    /// (pthread_cancel unlinks the waiter as the thread unwinds). A waiter that can no longer fit
    /// because the limits were lowered below its need is refused (or, under overcommit, proceeds)
    /// at once.
    outcome acquire(amount need, std::size_t requested, const wait_policy& wp, reclaimer& r,
                    std::chrono::nanoseconds* waited);

    [[nodiscard]] amount committed() const noexcept {
        return {committed_bytes_.load(std::memory_order_relaxed),
                committed_blocks_.load(std::memory_order_relaxed)};
    }
    /// The highest committed byte count since construction: an upper bound of the peak of live
    /// bytes (what is live is always committed).
    [[nodiscard]] std::size_t peak_committed() const noexcept;

    /// The lease size: the most extra credit a thread cache gets beyond its request.
    [[nodiscard]] std::int64_t lease_bytes() const noexcept {
        return lease_bytes_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] amount lease() const noexcept { return {lease_bytes(), max_lease_blocks}; }
    static constexpr std::int64_t max_lease_blocks = std::int64_t{1} << 16;

    /// fork(): the prepare handler takes the lock; the parent's handler releases it.
    void lock_for_fork() noexcept { mutex_.lock(); }
    /// See lock_for_fork.
    void unlock_after_fork() noexcept { mutex_.unlock(); }
    /// The child's handler: releases the lock and forgets every waiter (their threads do not
    /// exist in the child; their records are copies on stacks nobody runs on).
    void reset_after_fork() noexcept;

    /// Fills the exhaustion fields of `s`.
    void fill_stats(pool_stats& s) const;

    /// Sets the on_stall callback context (the pool's live bytes reader for reports).
    using live_reader = std::size_t (*)(const void*) noexcept;
    void set_live_reader(live_reader f, const void* ctx) noexcept {
        live_reader_ = f;
        live_ctx_ = ctx;
    }

  private:
    struct waiter {
        enum state_kind : unsigned char { queued, granted, rejected };
        amount need;
        steady::time_point start;
        state_kind state = queued;
        waiter* next = nullptr;
        std::condition_variable cv;
    };
    class queue_guard;

    [[nodiscard]] bool fits(amount need) const noexcept;
    [[nodiscard]] bool larger_than_limits(amount need) const noexcept;
    /// Commits `need` if it fits and nobody waits (mutex held).
    bool take_now(amount need) noexcept;
    /// The fail/bypass step: reclaims stranded credit if that can make `need` fit, then gives it
    /// back and takes `need` in one step, so that no other request can take it in between; a few
    /// times while other threads keep leasing (mutex held on entry and exit, released meanwhile).
    bool take_after_reclaim(std::unique_lock<std::mutex>& lock, amount need, reclaimer& r);
    /// Queues, waits in backoff steps until granted, rejected or past the deadline.
    outcome wait(std::unique_lock<std::mutex>& lock, amount need, std::size_t requested,
                 const wait_policy& wp, reclaimer& r);
    void refuse_unfit_waiters() noexcept;
    /// What committing `need` now would take past the limits (each part; negative: room left).
    [[nodiscard]] amount missing_for(amount need) const noexcept;
    /// What the queue lacks, up to and including `w`, of fitting under the limits (mutex held).
    [[nodiscard]] amount missing_through(const waiter* w) const noexcept;
    /// Takes credit that `r` reclaimed back from commitment and hands it on (mutex held).
    void take_back(amount got) noexcept;
    void commit(amount a) noexcept;
    void grant_waiters() noexcept;
    void reset_backoff_if_under() noexcept;
    void remove(waiter* w) noexcept;
    void update_flags() noexcept;
    void record_wait(std::chrono::nanoseconds waited) noexcept;
    std::chrono::nanoseconds next_step() noexcept;
    /// The pause owed by a request that leaves `committed_bytes` committed (soft threshold).
    [[nodiscard]] std::chrono::nanoseconds pacing_pause(
        std::int64_t committed_bytes) const noexcept;
    void report(stall_event::kind what, std::size_t requested, std::chrono::nanoseconds waited);

    std::atomic<std::uint32_t>& flags_;
    const backoff_options backoff_;
    const double delay_threshold_;
    const std::chrono::nanoseconds stall_warning_;
    const std::function<void(const stall_event&)> on_stall_;
    live_reader live_reader_ = nullptr;
    const void* live_ctx_ = nullptr;

    mutable std::mutex mutex_;
    waiter* head_ = nullptr;  // FIFO queue of waiters (guarded by mutex_)
    waiter* tail_ = nullptr;
    std::chrono::nanoseconds interval_;  // the pool-wide backoff step (guarded by mutex_)
    // Refused requests reclaiming stranded credit right now, and where those that found nothing
    // wait for them to give it back (guarded by mutex_).
    int reclaiming_ = 0;
    std::condition_variable reclaimed_;

    // Written under mutex_, read lock-free.
    std::atomic<std::int64_t> limit_bytes_{unlimited};
    std::atomic<std::int64_t> limit_blocks_{unlimited};
    std::atomic<std::int64_t> committed_bytes_{0};
    std::atomic<std::int64_t> committed_blocks_{0};
    std::atomic<std::int64_t> lease_bytes_{0};
    std::atomic<std::int64_t> peak_committed_bytes_{0};

    // Statistics.
    std::atomic<std::uint64_t> waits_{0}, timeouts_{0}, failures_{0}, overcommits_{0}, bypasses_{0},
        paced_{0};
    std::atomic<std::size_t> waiting_{0};
    std::atomic<std::int64_t> total_wait_ns_{0}, max_wait_ns_{0};
    std::atomic<std::uint64_t> histogram_[pool_stats::wait_buckets]{};
};

}  // namespace bpool::detail
