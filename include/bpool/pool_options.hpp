/// @file
/// bpool/pool_options.hpp: everything that configures a pool_resource, in one aggregate.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>

namespace bpool {

/// What a request does when it would take live memory past the pool's capacity or live-block cap.
enum class exhaustion : unsigned char {
    wait,        ///< Wait for memory to be given back (backoff paces the wait; a release wakes the
                 ///< waiter at once); throw `capacity_exceeded` after `backoff.max_elapsed`. A
                 ///< request larger than the whole limit throws at once: no release can help it.
    overcommit,  ///< Wait the same way, then proceed past the cap instead of failing (a request
                 ///< larger than the whole limit proceeds at once).
    bypass,      ///< Serve the request from upstream at once, outside the pool; never cached.
    fail,        ///< Throw `capacity_exceeded` at once.
};

/// What a pool's capacity limits (`pool_options::capacity_covers`).
enum class capacity_scope : unsigned char {
    live,  ///< Live bytes: blocks handed out and not given back. The idle memory the pool keeps
           ///< for reuse (bounded by `max_cached_bytes`) and the slack of chunks come on top.
    held,  ///< Everything the pool holds from upstream, live and idle: a memory budget.
           ///< `stats().upstream_bytes` never exceeds the capacity (bypass blocks, and an
           ///< overcommit that ran out of patience, aside); a request that would need more from
           ///< upstream first makes the pool give idle memory back (every thread's cache
           ///< included), and only then follows `on_exhaustion`. An asynchronous request
           ///< whose block cannot then be had under it completes as `refused`.
};

/// Exponential backoff with jitter that paces a waiting request. Defaults: 50 us, x2, +-50 %,
/// at most 50 ms a step, give up after 15 s.
struct backoff_options {
    /// The first step of a wait. A release of memory ends a step early.
    std::chrono::nanoseconds initial_interval = std::chrono::microseconds(50);
    /// Each further step is this many times longer (normalized to at least 1).
    double multiplier = 2.0;
    /// Each step is randomized by +-this fraction of itself (normalized into [0, 1]).
    double randomization = 0.5;
    /// No step is longer than this (normalized to at least `initial_interval`).
    std::chrono::nanoseconds max_interval = std::chrono::milliseconds(50);
    /// A request gives up (or, under `overcommit`, proceeds) after waiting this long in total.
    std::chrono::nanoseconds max_elapsed = std::chrono::seconds(15);
};

/// What `pool_options::on_stall` is told.
struct stall_event {
    /// Why the callback runs.
    enum class kind : unsigned char {
        stalled,    ///< The request has waited longer than `stall_warning` and still waits.
        timed_out,  ///< The request gave up (it will throw `capacity_exceeded`).
    };
    kind what;                        ///< Why the callback runs.
    std::size_t requested;            ///< Bytes requested.
    std::chrono::nanoseconds waited;  ///< Time waited so far.
    std::size_t live_bytes;           ///< Live bytes of the pool when the callback runs.
    std::size_t capacity;             ///< Capacity in force (0: unlimited).
};

/// What `pool_options::on_pressure` is told.
struct pressure_event {
    /// How close the pool is to its cap.
    enum class level : unsigned char {
        soft,  ///< Usage crossed the soft threshold (`delay_threshold`) upwards: requests are
               ///< paced from now on.
        wait,  ///< A request does not fit under the cap and is about to wait for memory.
    };
    level what;              ///< Why the callback runs.
    std::size_t requested;   ///< Bytes of the request that met the pressure.
    std::size_t live_bytes;  ///< Live bytes of the pool when the callback runs.
    std::size_t capacity;    ///< Capacity in force.
};

/// Options of a `bpool::pool_resource`. An aggregate: use designated initializers, e.g.
/// `bpool::pool_options{.capacity = 64 << 20, .on_exhaustion = bpool::exhaustion::wait}`.
/// The constructor normalizes them once; `pool_resource::options()` returns what is in force.
struct pool_options {
    /// The largest request served from the size classes; larger requests (and alignments the
    /// classes cannot honour) go straight to upstream and are never cached. Normalized to the size
    /// class at or below it, within [16 B, 1 MiB]. Each such request asks upstream for at least a
    /// page (so that the pool knows it by the page it starts in), while the capacity counts its
    /// size: below 4 KiB, upstream holds more than the capacity counts (`stats().unused_bytes`).
    std::size_t largest_pooled_block = std::size_t{1} << 20;

    /// Upper bound on idle memory kept by the pool (thread caches, central lists, free blocks in
    /// chunks); beyond it, memory goes back to upstream. Half of it is the allowance all thread
    /// caches share. 0 selects the default, 8 MiB (see the README's "Retention").
    std::size_t max_cached_bytes = 0;

    /// Hard limit on live bytes (blocks handed out and not yet given back, counted at their block
    /// size). 0: unlimited. Changeable at run time with `set_capacity`.
    std::size_t capacity = 0;

    /// Hard limit on live blocks. 0: unlimited. Changeable with `set_max_live_blocks`.
    std::size_t max_live_blocks = 0;

    /// What `capacity` limits: live bytes (the default), or everything held from upstream
    /// (`capacity_scope::held`, a budget that covers what the OS sees). Fixed at construction.
    capacity_scope capacity_covers = capacity_scope::live;

    /// What a request does at the capacity or the live-block cap.
    exhaustion on_exhaustion = exhaustion::wait;

    /// How waiting requests are paced and when they give up.
    backoff_options backoff{};

    /// Soft threshold, as a fraction of `capacity` in (0, 1); 0 turns it off. Above it, every
    /// allocation is delayed by a pause that grows smoothly from 0 at the threshold to
    /// `backoff.max_interval` at the capacity, so that producers slow down before the hard cap.
    /// Not paced: `try_allocate` (and the steps of `allocate_at_least` that never wait), and
    /// allocations inside an `exhaustion_scope` whose policy is `fail` or `bypass`.
    double delay_threshold = 0.0;

    /// A waiting request reports a stall through `on_stall` once it has waited this long.
    std::chrono::nanoseconds stall_warning = std::chrono::seconds(1);

    /// Called (off the fast path, on the waiting thread, with no pool lock held) when a request has
    /// waited longer than `stall_warning`, and each time a request gives up. May be empty.
    /// It must not allocate from the same pool.
    std::function<void(const stall_event&)> on_stall{};

    /// Called so that the application can give memory back (drop its own caches: a database's
    /// block cache, idle buffers) before requests are slowed down or wait: with `level::soft`
    /// once each time usage crosses the soft threshold upwards (by the first request paced after
    /// the crossing, before it pauses), and with `level::wait` each time a request at the cap is
    /// about to wait, which then looks again whether it fits before it waits. Called on the
    /// requesting thread, off the fast path, with no pool lock held and outside the pool's
    /// operations, so it may free memory to the pool (that is its point) and read `stats()`; it
    /// must not allocate from the same pool. An exception it throws is ignored. May be empty.
    std::function<void(const pressure_event&)> on_pressure{};
};

/// Overrides, for the calling thread, the exhaustion policy and/or a deadline of every allocation
/// it makes through any pool while the scope lives; e.g. a latency-critical section in which a
/// container must fail fast instead of waiting. Scopes nest: the innermost policy wins and the
/// earliest deadline of all enclosing scopes applies. Must be destroyed on the thread that created
/// it, in reverse order of creation (it is an RAII object: neither copyable nor movable).
class exhaustion_scope {
  public:
    /// The clock of deadlines.
    using clock = std::chrono::steady_clock;

    /// Effects: from now on, this thread's requests at the cap follow `policy`.
    explicit exhaustion_scope(exhaustion policy) noexcept;
    /// Effects: from now on, this thread's waits end at `deadline` at the latest (then the request
    /// throws `capacity_exceeded`, or proceeds under `overcommit`).
    explicit exhaustion_scope(clock::time_point deadline) noexcept;
    /// Effects: both of the above.
    exhaustion_scope(exhaustion policy, clock::time_point deadline) noexcept;
    /// Effects: restores the policy and deadline in force before this scope.
    ~exhaustion_scope();

    exhaustion_scope(const exhaustion_scope&) = delete;
    exhaustion_scope& operator=(const exhaustion_scope&) = delete;

    /// Internal: applies this scope's (effective) policy and deadline to a request.
    void apply(exhaustion* policy, clock::time_point* deadline, bool keep_policy) const noexcept {
        if (has_policy_ && !keep_policy) *policy = policy_;
        if (deadline_ < *deadline) *deadline = deadline_;
    }

  private:
    void install() noexcept;

    bool has_policy_;
    exhaustion policy_;
    clock::time_point deadline_;
    const exhaustion_scope* outer_;
};

}  // namespace bpool
