// Layer 7: a FIFO counting semaphore with deadlines, counting bytes and blocks together (`amount`)
// against a limit on each.
//
// What is taken (committed) never passes the limits, except by a wait that asked to overcommit.
// A take that fits while nobody waits succeeds at once. One that does not fit joins a FIFO queue
// of waiter records (in arrival order) and sleeps until it is granted, refused or past its
// deadline. Whoever gives back (give, give_and_take, a reclaim between a waiter's sleeps, raised
// limits) hands the freed amount to the waiters at the head that now fit, commits it for them and
// wakes them: strictly in arrival order, so a large request at the head is not overtaken by small
// ones behind it. Lowering the limits refuses at once every queued waiter that could no longer fit
// at all, instead of letting it hold up everyone behind it until its deadline.
//
// The semaphore has no policy of its own; two interfaces carry them:
// - a `semaphore_observer` (given at construction) is told, under the lock, of every change of the
//   count, the limits or the queue, so that state derived from them stays in step (a pool's
//   flags word, the backoff's reset);
// - a `wait_hooks` (given to each wait) paces the wait's steps (backoff), acts between its sleeps
//   (reclaiming credit stranded elsewhere, stall reports) and keeps its statistics.
//
// Asynchronous waits (async_waiter): a take that no thread sleeps in. It queues like a blocking
// wait, in the same FIFO; its steps (deadline, reclaim, alarm) are run by the async driver's thread
// (async_driver.hpp), and so is its completion, once it has left the queue: never the thread that
// granted it (a free deep in the pool) and never with a lock held. The semaphore lists itself with
// the driver while it has async waiters queued or completions to run; close() ends every async wait
// (cancelled) and waits until the driver has let go of the semaphore.
//
// Thread safety: all members are thread-safe. One mutex guards the queue and the count's writes;
// committed(), limits(), peak() and waiting() are read lock-free. The mutex is never held while a
// hook may call out (reclaim, alarm) or while sleeping; the observer and the hooks called under
// it (see each) must not block or call the semaphore back. A wait is a cancellation point that
// the queue survives (pthread_cancel unlinks the waiter as its thread unwinds).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>

#include "base/amount.hpp"

namespace bpool::detail {

using steady = std::chrono::steady_clock;

/// The count and the queue as a semaphore_observer is shown them (taken under the lock).
struct semaphore_state {
    amount committed;  ///< What is taken.
    amount limit;      ///< The limits (fifo_semaphore::unlimited where there is none).
    bool queued;       ///< Whether anyone waits in the queue.
};

/// What changed, for a semaphore_observer.
enum class semaphore_change : unsigned char {
    taken,     ///< The count rose: a take, or an overcommit.
    released,  ///< The count fell (a give, reclaimed credit, a child's reset after fork());
               ///< waiters that now fit were granted.
    queue,     ///< A waiter joined or left the queue (those behind one that left may be granted).
    limits,    ///< The limits changed; unfit waiters were refused, those that fit granted.
};

/// Keeps state derived from a semaphore's count in step with it.
class semaphore_observer {
  public:
    /// Effects: whatever the policy derives from `s` after the change `what`. Called under the
    /// semaphore's lock after every change, by the thread that made it; must not block or call the
    /// semaphore.
    virtual void changed(const semaphore_state& s, semaphore_change what) noexcept = 0;

  protected:
    ~semaphore_observer() = default;
};

/// The policies of one wait: what a waiter does at each step between its sleeps. Called on the
/// waiting thread only; `next_step` is the only one a wait cannot do without.
class wait_hooks {
  public:
    /// Effects: notes that the wait queued (it did not fit on arrival). Called under the lock.
    virtual void queued() noexcept {}
    /// Effects: takes back what is stranded outside the semaphore, if together it could cover
    /// `missing` (what the queue up to and including this waiter lacks; each positive part).
    /// Returns: the amount taken back, still committed: the semaphore releases it for the queue.
    /// Called at the start of every step, without the lock.
    virtual amount reclaim(amount /*missing*/) noexcept { return {}; }
    /// Returns: the first instant at which `alarm` is due for a wait measured from `start`
    /// (time_point::max(): never). Called once, under the lock.
    [[nodiscard]] virtual steady::time_point first_alarm(
        steady::time_point /*start*/) const noexcept {
        return steady::time_point::max();
    }
    /// Effects: acts on a wait that has lasted `waited` and is still queued (e.g. a stall
    /// report); it may throw, the wait then unwinds out of the queue. Returns: the next instant at
    /// which it is due (time_point::max(): never). Called without the lock.
    virtual steady::time_point alarm(std::chrono::nanoseconds /*waited*/) {
        return steady::time_point::max();
    }
    /// Returns: how long the next sleep lasts at most (a give that grants the wait ends it
    /// sooner). Called under the lock.
    virtual std::chrono::nanoseconds next_step() noexcept = 0;
    /// Effects: notes the end of a queued wait that lasted `waited` (granted, refused, timed out
    /// or unwinding). Called under the lock.
    virtual void ended(std::chrono::nanoseconds /*waited*/) noexcept {}

  protected:
    ~wait_hooks() = default;
};

/// How one wait may end. `start` is the instant the wait is measured from and `deadline` was
/// computed from, so that a wait that gives up at its deadline reports at least what it was given.
struct wait_terms {
    steady::time_point start{};                               ///< What the wait is measured from.
    steady::time_point deadline = steady::time_point::max();  ///< When it gives up.
    bool overcommit = false;  ///< Take past the limits when the wait ends without a grant.
};

class fifo_semaphore {
    struct waiter;

  public:
    class async_waiter;

    /// A limit that no count reaches: "no limit".
    static constexpr std::int64_t unlimited = INT64_MAX / 4;

    /// What a try_take did.
    enum class take_result : unsigned char {
        taken,           ///< Committed to the caller.
        behind_waiters,  ///< Others wait: nothing taken, whether or not it fits.
        over_limits,     ///< Larger than the limits themselves: it can never fit.
        no_room,         ///< It does not fit now.
        declined,        ///< It fitted, but the caller's `extra` declined to take it.
    };

    /// How a wait ended.
    enum class wait_result : unsigned char {
        granted,        ///< Committed to the caller, within the limits.
        overcommitted,  ///< Committed past the limits (the terms asked to overcommit).
        refused,        ///< Larger than the limits, on arrival or after they were lowered.
        timed_out,      ///< Past the deadline; nothing committed.
        cancelled,      ///< An async wait ended by cancel() or close(); nothing committed.
    };

    /// Effects: an unlimited semaphore with nothing taken; `observer` (may be null) is told of
    /// every change and must outlive the semaphore.
    explicit fifo_semaphore(semaphore_observer* observer = nullptr) noexcept
        : observer_(observer) {}
    /// Effects: close().
    ~fifo_semaphore();
    fifo_semaphore(const fifo_semaphore&) = delete;
    fifo_semaphore& operator=(const fifo_semaphore&) = delete;

    /// Effects: sets the limits (0: unlimited); refuses the queued waiters that can no longer fit
    /// and grants those that now fit, in order. What is already taken is kept even above them.
    void set_limits(std::size_t bytes, std::size_t blocks) noexcept;
    /// Returns: the byte limit (0: unlimited). Lock-free.
    [[nodiscard]] std::size_t byte_limit() const noexcept;
    /// Returns: the block limit (0: unlimited). Lock-free.
    [[nodiscard]] std::size_t block_limit() const noexcept;
    /// Returns: both limits (`unlimited` where there is none). Lock-free.
    [[nodiscard]] amount limits() const noexcept {
        return {limit_bytes_.load(std::memory_order_relaxed),
                limit_blocks_.load(std::memory_order_relaxed)};
    }
    /// Returns: what is taken now. Lock-free (a moment's value while others take and give).
    [[nodiscard]] amount committed() const noexcept {
        return {committed_bytes_.load(std::memory_order_relaxed),
                committed_blocks_.load(std::memory_order_relaxed)};
    }
    /// Returns: the highest count of each part since construction. Lock-free.
    [[nodiscard]] amount peak() const noexcept {
        return {peak_bytes_.load(std::memory_order_relaxed),
                peak_blocks_.load(std::memory_order_relaxed)};
    }
    /// Returns: whether `need` passes a limit by itself (it can never fit). Lock-free.
    [[nodiscard]] bool larger_than_limits(amount need) const noexcept;
    /// Returns: the number of threads in wait() that queued and have not returned yet (a granted
    /// one counts until it wakes). Lock-free.
    [[nodiscard]] std::size_t waiting() const noexcept {
        return waiting_.load(std::memory_order_relaxed);
    }
    /// Returns: the start of the wait at the head of the queue, time_point::max() if nobody
    /// waits. Takes the lock.
    [[nodiscard]] steady::time_point oldest_start() const;

    /// Effects: takes `need` if it fits and nobody waits; never waits. Returns what it did; when
    /// nothing was taken and `missing` is not null, `*missing` is what taking it now would pass
    /// the limits by (each part; negative: room left).
    take_result try_take(amount need, amount* missing = nullptr) noexcept;
    /// Effects: as try_take, and if `need` fits, calls `extra(after, limits)` under the lock
    /// (`after`: the count with `need` taken), which returns what to take beyond `need` (it must
    /// fit too), or std::nullopt to take nothing (`declined`). `extra` must not block or call the
    /// semaphore.
    template <class Extra>
    take_result try_take_with(amount need, Extra&& extra) noexcept;
    /// Effects: gives `a` back and grants the waiters at the head that now fit.
    void give(amount a) noexcept;
    /// Effects: gives `back` back and takes `need` under one hold of the lock, if `need` fits and
    /// nobody waits, so that no other taker can take the room in between; what is left goes to
    /// the waiters. Returns whether `need` was taken.
    bool give_and_take(amount back, amount need) noexcept;
    /// Effects: takes `need`: at once if it fits and nobody waits; else (unless it is larger than
    /// the limits) queued, sleeping in steps paced by `hooks` until granted, refused (the limits
    /// were lowered below it) or past `terms.deadline`. Under `terms.overcommit`, a wait that ends
    /// without a grant takes `need` anyway. Blocks the calling thread; a cancellation point.
    /// Returns how it ended. Throws what `hooks.alarm` throws (nothing is taken then).
    wait_result wait(amount need, const wait_terms& terms, wait_hooks& hooks);

    /// Effects: begins an asynchronous take of `w`'s need under its terms: at once if it fits and
    /// nobody waits (granted), or if it is larger than the limits (refused, or overcommitted under
    /// its terms); otherwise `w` joins the queue and its completion runs on the async driver's
    /// thread when it leaves it. `w` must stay put until then. Returns: how it ended at once
    /// (`w.completed` is not called then), or std::nullopt if it queued. Refused at once too if
    /// the driver's thread cannot be started. Never blocks on a wait.
    std::optional<wait_result> wait_async(async_waiter& w) noexcept;
    /// Effects: if `w` is queued, unlinks it and ends it as `cancelled` (those behind it may be
    /// granted); its completion then runs on the driver's thread. Returns whether it was queued
    /// (false: it ended already, and its completion has run or will run with that ending).
    bool cancel(async_waiter& w) noexcept;
    /// Effects: ends every async wait, queued or granted but not yet completed, as `cancelled`
    /// (what was granted is given back), runs their completions on the calling thread, and waits
    /// until the driver's thread no longer uses the semaphore. Idempotent; call before anything
    /// the completions or the hooks use is destroyed. New async waits are refused afterwards.
    void close() noexcept;
    /// Effects: the async driver's work on this semaphore at `now`: ends the async waits past
    /// their deadlines, runs the due step (reclaim) and alarm of the first async waiter, then runs
    /// at most one completion, with no lock held. Returns: when it is due next
    /// (time_point::max(): it has no async waiter left; `now`: a completion is pending).
    /// Called by the driver's thread only.
    steady::time_point drive_async(steady::time_point now) noexcept;

    /// fork(): the prepare handler takes the lock; the parent's handler releases it.
    void lock_for_fork() noexcept { mutex_.lock(); }
    /// See lock_for_fork.
    void unlock_after_fork() noexcept { mutex_.unlock(); }
    /// The child's handler: releases the lock and forgets every waiter (their threads do not exist
    /// in the child; their records are copies on stacks nobody runs on). The count is kept.
    void reset_after_fork() noexcept;

  private:
    friend class async_driver;
    friend struct async_driver_access;
    // The driver's bookkeeping (async_driver.cpp): its list of semaphores with async work.
    // Guarded by the driver's mutex, never by this semaphore's.
    struct driver_link {
        fifo_semaphore* prev = nullptr;
        fifo_semaphore* next = nullptr;
        steady::time_point due = steady::time_point::max();
        bool listed = false;
        bool poked = false;  // work arrived since the driver last looked
    };
    struct thread_waiter;
    class queue_guard;

    /// What taking `need` now would meet (mutex held).
    [[nodiscard]] take_result admits(amount need) const noexcept;
    [[nodiscard]] bool fits(amount need) const noexcept;
    [[nodiscard]] amount missing_for(amount need) const noexcept;
    /// What the queue lacks, up to and including `w`, of fitting under the limits (mutex held).
    [[nodiscard]] amount missing_through(const waiter* w) const noexcept;
    void commit(amount a) noexcept;
    /// Gives `a` back, grants the waiters that now fit and tells the observer (mutex held).
    void release(amount a) noexcept;
    void grant_waiters() noexcept;
    void refuse_unfit_waiters() noexcept;
    void enqueue(waiter* w, wait_hooks& hooks) noexcept;
    void remove(waiter* w) noexcept;
    /// Queues `w` and waits in steps until it is no longer queued or is past its deadline.
    wait_result queue_and_wait(std::unique_lock<std::mutex>& lock, amount need,
                               const wait_terms& terms, wait_hooks& hooks);
    /// The start of a step: what `hooks` reclaims, released for the queue.
    void reclaim_step(std::unique_lock<std::mutex>& lock, waiter& w, wait_hooks& hooks);
    wait_result settle(const waiter& w, const wait_terms& terms) noexcept;
    void notify(semaphore_change what) noexcept;
    /// Wakes a waiter that left the queue: a thread's condition variable, or an async waiter's
    /// completion queued for the driver (mutex held).
    void wake(waiter* w) noexcept;
    /// Ends queued async waiter `w` (unlinked already) with `state` (mutex held).
    void end_async(async_waiter& w, unsigned char state) noexcept;
    /// The async waits' deadlines, step and alarm at `now` (mutex held; released around hooks).
    void step_async(std::unique_lock<std::mutex>& lock, steady::time_point now) noexcept;
    [[nodiscard]] steady::time_point next_async_due() const noexcept;

    semaphore_observer* const observer_;
    mutable std::mutex mutex_;
    waiter* head_ = nullptr;  // FIFO queue of waiters (guarded by mutex_)
    waiter* tail_ = nullptr;
    async_waiter* done_head_ = nullptr;  // async waits ended, completions to run (mutex_)
    async_waiter* done_tail_ = nullptr;
    std::size_t async_queued_ = 0;  // async waiters in the queue (mutex_)
    bool closed_ = false;           // (mutex_)
    driver_link driver_link_;       // (the driver's mutex)

    // Written under mutex_, read lock-free.
    std::atomic<std::int64_t> limit_bytes_{unlimited};
    std::atomic<std::int64_t> limit_blocks_{unlimited};
    std::atomic<std::int64_t> committed_bytes_{0};
    std::atomic<std::int64_t> committed_blocks_{0};
    std::atomic<std::int64_t> peak_bytes_{0};
    std::atomic<std::int64_t> peak_blocks_{0};
    std::atomic<std::size_t> waiting_{0};
};

// One take in the queue. Its fields are guarded by the semaphore's mutex once it is queued.
struct fifo_semaphore::waiter {
    enum state_kind : unsigned char { queued, granted, rejected, expired, cancelled, idle };
    waiter(amount n, steady::time_point s, bool a) noexcept : need(n), start(s), is_async(a) {}
    const amount need;
    const steady::time_point start;
    const bool is_async;
    state_kind state = idle;
    waiter* next = nullptr;
};

/// An asynchronous take (wait_async): the caller's record, which must stay put from wait_async
/// until its completion has run (or wait_async returned a result).
class fifo_semaphore::async_waiter : private waiter {
  public:
    /// Effects: a take of `need` under `terms`, its steps paced and acted on by `hooks` (which
    /// must outlive the wait): `reclaim` and `alarm` run on the driver's thread.
    async_waiter(amount n, const wait_terms& terms, wait_hooks& hooks) noexcept
        : waiter(n, terms.start, true),
          deadline_(terms.deadline),
          overcommit_(terms.overcommit),
          hooks_(hooks) {}
    async_waiter(const async_waiter&) = delete;
    async_waiter& operator=(const async_waiter&) = delete;

    /// Effects: the wait that queued ended with `r` (granted and overcommitted: committed to the
    /// caller). Called once, on the driver's thread (or close()'s caller), with no lock held; the
    /// record may be destroyed or reused from here on.
    virtual void completed(wait_result r) noexcept = 0;

    /// Returns: what the wait takes.
    [[nodiscard]] amount need_amount() const noexcept { return need; }
    /// Returns: the instant the wait is measured from.
    [[nodiscard]] steady::time_point started_at() const noexcept { return start; }

  protected:
    virtual ~async_waiter() = default;

  private:
    friend class fifo_semaphore;
    const steady::time_point deadline_;
    const bool overcommit_;
    wait_hooks& hooks_;
    fifo_semaphore* sem_ = nullptr;
    steady::time_point alarm_ = steady::time_point::max();
    steady::time_point step_ = steady::time_point::min();  // the next reclaim step
    async_waiter* done_next_ = nullptr;
    wait_result result_ = wait_result::cancelled;
};

template <class Extra>
fifo_semaphore::take_result fifo_semaphore::try_take_with(amount need, Extra&& extra) noexcept {
    std::lock_guard lock(mutex_);
    const take_result r = admits(need);
    if (r != take_result::taken) return r;
    const std::optional<amount> more = extra(committed() + need, limits());
    if (!more) return take_result::declined;
    commit(need + *more);
    notify(semaphore_change::taken);
    return r;
}

}  // namespace bpool::detail
