// Layer 7: a pool's capacity: its limits (bytes and blocks) and what is committed against them,
// a fifo_semaphore (fifo_semaphore.hpp) with the pool's policies on it. Committed are bytes and
// blocks that are live, or leased to thread caches as credit, or granted to a request that is
// about to use them; committed <= limit at all times unless a request overcommits, which is what
// makes the cap exact.
//
// Leases: a thread cache takes credit in leases (its request plus an extra that shrinks as the
// headroom does) so that the fast path never touches the budget. A request that does not fit
// waits in the semaphore's FIFO queue; whoever gives back hands the freed amount to the waiters
// at the head that now fit. The policies on the semaphore:
// - the flags word: flag_pressure while requests wait or usage is at a limit, flag_pacing above
//   the soft threshold (read by every fast path, raised and lowered as the count changes);
// - backoff (backoff.hpp): waiters sleep in steps of a pool-wide interval that grows with
//   jitter, and resets when usage is back under the cap with nobody waiting;
// - reclaiming: each step of a wait may take back credit stranded in idle thread caches (the
//   reclaimer); a request that may not wait (fail, bypass) is refused only after that credit, if
//   it could make the request fit, was reclaimed (take_after_reclaim);
// - pacing (pacing.hpp): above the soft threshold a lease is told to pause first;
// - stall reports (stall_report.hpp) and the exhaustion statistics (wait_stats.hpp).
//
// Thread safety: all members are thread-safe. Lock order: the reclaim mutex (refusals that
// reclaim), then the semaphore's; neither is held while calling out (reclaimer, on_stall
// callback) or sleeping. committed() and the limits are read lock-free; fill_stats takes the
// semaphore's lock briefly. An on_stall callback that throws loses its report; the exception goes
// no further.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>

#include <bpool/pool_options.hpp>
#include <bpool/stats.hpp>

#include "base/amount.hpp"
#include "base/pool_flags.hpp"
#include "budget/backoff.hpp"
#include "budget/fifo_semaphore.hpp"
#include "budget/pacing.hpp"
#include "budget/stall_report.hpp"
#include "budget/wait_stats.hpp"

namespace bpool::detail {

/// How one request behaves at the cap. `start` is the instant the request's wait is measured
/// from and `deadline` was computed from, so that a request that gives up at its deadline reports
/// at least the time it was allowed to wait.
struct wait_policy {
    exhaustion policy = exhaustion::wait;                     ///< What to do at the cap.
    steady::time_point deadline = steady::time_point::max();  ///< When a wait gives up.
    steady::time_point start{};                               ///< What the wait is measured from.
};

/// What a request at the cap ended with.
enum class outcome : unsigned char {
    granted,
    overcommitted,
    bypass,
    refused,
    timed_out,
    cancelled
};

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

class budget final : private semaphore_observer {
  public:
    /// Effects: an unlimited budget that raises and lowers the bits of `flags` (which must
    /// outlive it) as its count changes, with the backoff, pacing and stall reports of `options`
    /// (normalized). Throws std::bad_alloc if copying `options.on_stall` does.
    budget(std::atomic<std::uint32_t>& flags, const pool_options& options);
    budget(const budget&) = delete;
    budget& operator=(const budget&) = delete;

    /// A limit that no count reaches: "no limit" (the semaphore's).
    static constexpr std::int64_t unlimited = fifo_semaphore::unlimited;

    /// Effects: sets the limits (0: unlimited) and the lease size, and hands freed headroom to
    /// waiters (refusing those that can no longer fit). Thread-safe.
    void set_limits(std::size_t bytes, std::size_t blocks) noexcept {
        sem_.set_limits(bytes, blocks);
    }
    /// Returns: the byte limit (0: unlimited). Lock-free.
    [[nodiscard]] std::size_t capacity() const noexcept { return sem_.byte_limit(); }
    /// Returns: the block limit (0: unlimited). Lock-free.
    [[nodiscard]] std::size_t max_live_blocks() const noexcept { return sem_.block_limit(); }

    /// What try_lease did.
    enum class lease_result : unsigned char {
        leased,      ///< `*granted` is committed to the caller.
        pace_first,  ///< Usage is above the soft threshold: sleep `*pause` (outside any
                     ///< operation and lock), then ask again with `pace` false. Nothing committed.
        refused,     ///< At the cap, or others wait: nothing committed.
    };

    /// Effects: takes `need`, plus an extra lease that shrinks with the headroom and is at most
    /// `most_extra` (no_extra: none), if it fits and nobody waits; never waits. With `pace`, a
    /// request above the soft threshold is told to pause first; it commits nothing then, so that no
    /// credit sits unspent while its owner sleeps. Returns what it did. Thread-safe.
    lease_result try_lease(amount need, amount most_extra, bool pace, amount* granted,
                           std::chrono::nanoseconds* pause) noexcept;

    /// Effects: a request of `requested` bytes was told to pace (try_lease's `pace_first`): the
    /// first since usage last crossed the soft threshold upwards reports it through on_pressure.
    /// Call outside any operation, with no pool lock held. Thread-safe.
    void paced(std::size_t requested);

    /// Effects: gives `a` back and hands it to waiters that now fit. Thread-safe.
    void give(amount a) noexcept { sem_.give(a); }

    /// Effects: takes exactly `need` for a request at the cap, following `wp` (waits, refuses,
    /// bypasses, or overcommits). `requested` is the caller's size, for reports. Blocks the
    /// calling thread; must be called with no pool lock held and outside any thread-cache
    /// operation. A wait is a cancellation point that the queue survives (pthread_cancel unlinks
    /// the waiter as the thread unwinds). A waiter that can no longer fit because the limits were
    /// lowered below its need is refused (or, under overcommit, proceeds) at once.
    /// Returns how the request ended; `*waited` is measured from `wp.start` for a request that
    /// queued, 0 for one that did not. Thread-safe.
    outcome acquire(amount need, std::size_t requested, const wait_policy& wp, reclaimer& r,
                    std::chrono::nanoseconds* waited);

    /// Returns: what is committed now. Lock-free.
    [[nodiscard]] amount committed() const noexcept { return sem_.committed(); }
    /// Returns: the highest committed byte count since construction: an upper bound of the peak
    /// of live bytes (what is live is always committed). Lock-free.
    [[nodiscard]] std::size_t peak_committed() const noexcept {
        return static_cast<std::size_t>(sem_.peak().bytes);
    }

    /// Returns: the lease size, the most extra credit a thread cache gets beyond its request.
    /// Lock-free.
    [[nodiscard]] std::int64_t lease_bytes() const noexcept {
        return lease_bytes_.load(std::memory_order_relaxed);
    }
    /// Returns: the most extra credit of each part a thread cache gets. Lock-free.
    [[nodiscard]] amount lease() const noexcept { return {lease_bytes(), max_lease_blocks}; }
    /// The most extra blocks a lease gives beyond its request.
    static constexpr std::int64_t max_lease_blocks = std::int64_t{1} << 16;
    /// try_lease's `most_extra` for no extra lease, and for the full one.
    static constexpr amount no_extra{0, 0};
    static constexpr amount full_extra{INT64_MAX, INT64_MAX};

    /// fork(): the prepare handler takes the locks (in their order); the parent's handler
    /// releases them.
    void lock_for_fork() noexcept;
    /// See lock_for_fork.
    void unlock_after_fork() noexcept;
    /// The child's handler: releases the locks and forgets every waiter and every refusal that
    /// was reclaiming (their threads do not exist in the child).
    void reset_after_fork() noexcept;

    /// Effects: fills the exhaustion fields of `s`. Thread-safe; takes the semaphore's lock.
    void fill_stats(pool_stats& s) const;

    /// Reads the pool's live bytes, for on_stall reports.
    using live_reader = stall_reporter::live_reader;
    /// Effects: on_stall reports read the live bytes by `f(ctx)`. Call before the pool is shared.
    void set_live_reader(live_reader f, const void* ctx) noexcept {
        stall_.set_live_reader(f, ctx);
    }

    /// One request's wait in the semaphore's queue: the budget's policies at each of its steps
    /// (counted as a wait when it queues; reclaims for the queue; the stall report; the backoff).
    class request_wait final : public wait_hooks {
      public:
        request_wait(budget& b, reclaimer& r, std::size_t requested) noexcept
            : b_(b), r_(r), requested_(requested) {}
        /// Whether the request queued (one refused or overcommitted on arrival did not wait).
        [[nodiscard]] bool was_queued() const noexcept { return queued_; }
        /// The reclaimer its steps use.
        [[nodiscard]] reclaimer& reclaimer_of() const noexcept { return r_; }
        void queued() noexcept override;
        amount reclaim(amount missing) noexcept override;
        [[nodiscard]] steady::time_point first_alarm(
            steady::time_point start) const noexcept override;
        steady::time_point alarm(std::chrono::nanoseconds waited) override;
        std::chrono::nanoseconds next_step() noexcept override;
        void ended(std::chrono::nanoseconds waited) noexcept override;

      private:
        budget& b_;
        reclaimer& r_;
        const std::size_t requested_;
        bool queued_ = false;
    };

    /// A request at the cap that no thread waits in (acquire_async): the caller's record, which
    /// must stay put until `finished` has run (or acquire_async returned an outcome).
    class async_request : private fifo_semaphore::async_waiter {
      public:
        /// Effects: a request for exactly `n` against `b`, `requested` bytes for reports,
        /// following `wp`; its wait reclaims through `r` (both must outlive it).
        async_request(budget& b, reclaimer& r, amount n, std::size_t requested,
                      const wait_policy& wp) noexcept;
        /// Effects: ends the request as `cancelled` if it is still queued. Returns whether it was
        /// (`finished` then runs on the async driver's thread with outcome::cancelled).
        bool cancel() noexcept;

      protected:
        ~async_request() override = default;
        /// Effects: the queued request ended with `o` (granted, overcommitted: `need` is committed
        /// to it; refused, timed_out, cancelled). Called once, on the async driver's thread (or
        /// in the pool's destructor), with no lock held.
        virtual void finished(outcome o) noexcept = 0;

      private:
        friend class budget;
        void completed(fifo_semaphore::wait_result r) noexcept override;
        budget& b_;
        request_wait hooks_;
        const std::size_t requested_;
        const bool overcommit_;
    };

    /// Effects: as acquire, for `r`, without blocking: what can be decided at once (fail and
    /// bypass always; a request that fits, after reclaiming, or one larger than the limits) is
    /// returned; otherwise `r` queues, and its `finished` runs when it leaves the queue. A request
    /// about to queue reports on_pressure first (on the calling thread). Call with no pool lock
    /// held. Returns: the outcome, or std::nullopt if it queued. Thread-safe.
    std::optional<outcome> acquire_async(async_request& r, const wait_policy& wp);

    /// Effects: ends every async request (as cancelled, on the calling thread) and waits until
    /// the async driver no longer uses the budget; new ones end as cancelled at once. Call first
    /// thing in the owner's destructor.
    void close() noexcept { sem_.close(); }

  private:
    /// The policies kept in step with the count (under the semaphore's lock).
    void changed(const semaphore_state& s, semaphore_change what) noexcept override;
    void update_flags(const semaphore_state& s) noexcept;
    /// The extra of a lease that leaves `after` committed under `limit`.
    [[nodiscard]] amount extra_lease(amount after, amount limit, amount most) const noexcept;
    /// The fail and bypass policies: what may be taken at once, after reclaiming.
    outcome take_or_refuse(amount need, exhaustion policy, reclaimer& r);
    /// Reclaims stranded credit if that can make `need` fit, then gives it back and takes `need`
    /// in one step, so that no other request can take it in between; a few times while other
    /// threads keep leasing.
    bool take_after_reclaim(amount need, reclaimer& r);
    /// Before a request queues: with an on_pressure callback, a last look, then the callback
    /// (`wait` level). Returns whether `need` was taken.
    bool taken_before_pressure(amount need, std::size_t requested);
    /// The wait and overcommit policies: a wait in the semaphore's queue.
    outcome wait_at_cap(amount need, std::size_t requested, const wait_policy& wp, reclaimer& r,
                        std::chrono::nanoseconds* waited);
    /// Counts and reports how a wait ended.
    outcome settle(fifo_semaphore::wait_result result, std::size_t requested,
                   std::chrono::nanoseconds waited);
    void report(stall_event::kind what, std::size_t requested, std::chrono::nanoseconds waited);

    std::atomic<std::uint32_t>& flags_;
    const pacing pacing_;
    jittered_backoff backoff_;
    stall_reporter stall_;
    wait_stats stats_;
    std::atomic<std::int64_t> lease_bytes_{0};  // written under the semaphore's lock
    // Whether this crossing of the soft threshold was reported: set by the first paced request,
    // cleared (under the semaphore's lock) when usage falls back below the threshold.
    std::atomic<bool> soft_reported_{false};

    // Refused requests reclaiming stranded credit right now, and where those that found nothing
    // wait for them to give it back (guarded by reclaim_mutex_, taken before the semaphore's).
    std::mutex reclaim_mutex_;
    int reclaiming_ = 0;
    std::condition_variable reclaimed_;

    fifo_semaphore sem_;  // last: it tells this budget (its observer) of changes from now on
};

}  // namespace bpool::detail
