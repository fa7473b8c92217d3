/// @file
/// bpool/buffer_pool.hpp: a thread-safe pool of bpool::buffer over a capped pool_resource.
#pragma once

#include <cstddef>
#include <memory>
#include <memory_resource>
#include <optional>

#include <bpool/async.hpp>
#include <bpool/buffer.hpp>
#include <bpool/errors.hpp>
#include <bpool/pool_options.hpp>

namespace bpool {

class pool_resource;

/// Options of a `buffer_pool`. An aggregate: use designated initializers, e.g.
/// `bpool::buffer_pool_options{.write_backoff = true}`.
struct buffer_pool_options {
    /// What a request does at the cap: `get()` at the live-buffer cap (`max_live`); and, for a
    /// pool that owns its `pool_resource`, every request at the memory capacity (it becomes the
    /// resource's `on_exhaustion`). A pool over a borrowed resource leaves memory requests to that
    /// resource's own options.
    exhaustion on_exhaustion = exhaustion::wait;

    /// How waits at the cap are paced and when they give up (as `on_exhaustion`: the live-buffer
    /// cap always, memory requests only for a pool that owns its resource).
    backoff_options backoff{};

    /// The storage a fresh buffer reserves in `get()` (0: none, the first write allocates).
    std::size_t default_capacity = std::size_t{32} << 10;

    /// A buffer whose capacity is above this size has its storage freed to upstream when it is
    /// put back or destroyed, instead of being kept for reuse (so that a burst of large buffers
    /// does not pin memory). It becomes the owned resource's `largest_pooled_block`, normalized
    /// like it (to the size class at or below, within [16 B, 1 MiB]): a `pool_resource` keeps idle
    /// exactly the blocks up to that size. A pool over a borrowed resource requires
    /// `max_pooled_size >= resource.options().largest_pooled_block` and uses the latter.
    std::size_t max_pooled_size = std::size_t{1} << 20;

    /// Whether a write (or `append`, `reserve`, `resize`) that must grow a buffer while the pool is
    /// at its capacity waits under `on_exhaustion` and `backoff` (the seed's `WriteBackOff`).
    /// When false such a growth is refused at once: `write` returns `errc::capacity_exceeded`,
    /// whatever an enclosing `exhaustion_scope` says (the growth never waits, overcommits or
    /// bypasses). When true the pool's policy applies, and an enclosing scope's policy and
    /// deadline override it as for any request.
    bool write_backoff = false;

    /// The initial cap on buffers checked out at once (0: no cap); see `set_max_live`.
    std::size_t max_live = 0;

    /// For a pool that owns its `pool_resource`: what its `target_size` limits, the memory of the
    /// buffers checked out (`capacity_scope::live`, the default) or everything the resource holds
    /// from upstream, idle storage included (`capacity_scope::held`: a budget). It becomes the
    /// resource's `capacity_covers`; a borrowed resource keeps its own.
    capacity_scope capacity_covers = capacity_scope::live;
};

/// An asynchronous request for a buffer (`buffer_pool::async_get`): derive from it and override
/// `on_complete`. The request is its own record while it waits (nothing is allocated for it); see
/// `async_request` for its lifetime and where the completion runs.
class buffer_request : public async_request {
  protected:
    /// Effects: a request that is not pending.
    buffer_request() noexcept = default;
    /// Effects: destroys the request, which must not be pending.
    virtual ~buffer_request() = default;

    /// Effects: the request ended with `s`. `granted`: `b` is checked out, as from `get()`
    /// (empty, with `capacity() >= default_capacity`, counted in `live()`); otherwise `b` is
    /// empty and nothing is checked out. Called once per start, never with a pool lock held; it
    /// must not throw (the program terminates if it does).
    virtual void on_complete(buffer b, async_status s) noexcept = 0;

  private:
    friend class buffer_pool;
    static constexpr std::size_t storage_size = 640;
    alignas(std::max_align_t) unsigned char storage_[storage_size];  // the pool's record
};

/// A thread-safe pool of `bpool::buffer`s, growable byte buffers with a cap on their memory:
/// `get()` checks a buffer out, destroying it or `put()` gives it back. Buffers draw their storage
/// from a `pool_resource` whose capacity caps the memory of all of them; an optional cap on the
/// number of buffers checked out (`set_max_live`) bounds how many exist at once.
///
/// Storage given back goes to the resource, whose per-thread caches keep it for the next buffer
/// (bounded by its `max_cached_bytes`); storage larger than `max_pooled_size` goes back to
/// upstream at once. Idle storage does not count against the capacity: only buffers checked out
/// do.
///
/// Lifetime: every buffer obtained from a pool must be destroyed or put back before the pool is
/// destroyed (a buffer of a destroyed pool cannot exist: its storage would dangle). A checked build
/// (`BPOOL_CHECKED`) aborts with a message in the destructor if buffers are still checked out.
/// Empty (moved-from) buffers may outlive the pool.
///
/// Thread safety: every member may be called concurrently from any thread, except the destructor.
/// Buffers themselves are used by one thread at a time (see `buffer`).
class buffer_pool {
  public:
    /// Effects: a pool that owns a `pool_resource` over `upstream` (which must outlive the pool)
    /// with capacity `target_size` bytes (0: unlimited), `options.on_exhaustion`,
    /// `options.backoff` and `largest_pooled_block = options.max_pooled_size`.
    /// Throws: `std::invalid_argument` if `upstream` is null; `std::bad_alloc`.
    explicit buffer_pool(std::size_t target_size, const buffer_pool_options& options = {},
                         std::pmr::memory_resource* upstream = std::pmr::get_default_resource());

    /// Effects: a pool over `resource`, which must outlive the pool; its capacity and policy
    /// govern memory, `options.on_exhaustion` and `options.backoff` only the live-buffer cap.
    /// Throws: `std::invalid_argument` if `options.max_pooled_size` is below the resource's
    /// `largest_pooled_block` (the resource would keep such blocks); `std::bad_alloc`.
    explicit buffer_pool(pool_resource& resource, const buffer_pool_options& options = {});

    /// Effects: destroys the pool and, if it owns one, its resource. Every buffer it handed out
    /// must be gone (destroyed, put back or moved from); a checked build aborts otherwise.
    ~buffer_pool();

    buffer_pool(const buffer_pool&) = delete;
    buffer_pool& operator=(const buffer_pool&) = delete;

    /// Returns the resource buffers draw from (owned or borrowed). Thread-safe.
    [[nodiscard]] pool_resource& resource() const noexcept;

    /// Returns the options in force, normalized (`max_pooled_size` is the size above which
    /// storage is freed; `max_live` the current cap).
    /// Throws nothing. Thread-safe: `max_live` is read at the call (it may change concurrently
    /// through `set_max_live`); the other options never change after construction.
    [[nodiscard]] buffer_pool_options options() const noexcept;

    /// Effects: checks a buffer out: empty, with `capacity() >= options().default_capacity`.
    /// At the live-buffer cap `on_exhaustion` decides: `wait` (until a buffer is given back, at
    /// most `backoff.max_elapsed`), `overcommit` (the same wait, then past the cap), `bypass`
    /// (a buffer whose storage comes from upstream, outside the resource's capacity and never
    /// cached; it still counts in `live()`), `fail`. At the memory capacity the resource's policy
    /// decides. An enclosing `exhaustion_scope` applies to both.
    /// Returns: the buffer, counted in `live()` until it is destroyed or put back.
    /// Throws: `capacity_exceeded` when refused or timed out at either cap (at the live-buffer
    /// cap its `capacity()` is 0 and `what()` names the cap); `std::length_error` if
    /// `default_capacity` exceeds `buffer::max_size()`; `std::bad_alloc` if upstream fails.
    /// Nothing is checked out when it throws. Thread-safe.
    [[nodiscard]] buffer get();

    /// Effects: checks a buffer out like `get()`, but never waits, never goes past either cap and
    /// never bypasses the pool, whatever `on_exhaustion` and an enclosing `exhaustion_scope` say:
    /// for an event loop, which must not block. It succeeds when a live slot is free and nobody
    /// waits for one, and the buffer's `default_capacity` can be had under the memory capacity
    /// now; otherwise nothing is checked out (try again when a buffer comes back).
    /// Returns: the buffer, empty, with `capacity() >= options().default_capacity`, counted in
    /// `live()` like `get()`'s; `std::nullopt` at either cap, or if `default_capacity` exceeds
    /// `buffer::max_size()` or upstream fails. Throws nothing. Thread-safe.
    [[nodiscard]] std::optional<buffer> try_get() noexcept;

    /// Effects: checks a buffer out like `get()` without ever blocking the calling thread, for an
    /// event loop: `r.on_complete` runs with the buffer as soon as both caps let it through.
    /// First a live slot, under `on_exhaustion` (or an enclosing `exhaustion_scope`'s policy and
    /// deadline, read now): it waits in the same arrival order as blocking `get()`s, `fail`
    /// refuses and `bypass` takes upstream storage at once, `overcommit` proceeds when the wait
    /// runs out. Then the buffer's `default_capacity`, as `resource().async_allocate` asks for it:
    /// under the resource's own policy and `backoff.max_elapsed`, measured from when the slot was
    /// granted. A request that can be decided at once completes before this returns, on the
    /// calling thread; otherwise on bpool's completion thread. Nothing is checked out unless
    /// `on_complete` is told `granted`. `r` must not be pending.
    /// Returns: true if the request completed at once, false if it waits.
    /// Throws nothing. Thread-safe.
    bool async_get(buffer_request& r) noexcept;

    /// Effects: gives `b` back (its storage to the resource, its checkout ends); `b` becomes
    /// empty. The same as destroying `b`, which is what happens when a buffer is simply dropped.
    /// An empty `b` is a no-op. `b` must come from this pool: a checked build aborts otherwise;
    /// an unchecked build gives it back to the pool or resource it came from. Thread-safe.
    void put(buffer&& b) noexcept;

    /// Returns the number of buffers checked out (bypassing ones included): a buffer counts from
    /// the moment `get()` has it ready to return until it is destroyed or put back, and a `get()`
    /// still waiting, at the live-buffer cap or at the memory capacity, is not counted. Exact:
    /// every buffer knows whether it is checked out, so the count never drifts. Thread-safe.
    [[nodiscard]] std::size_t live() const noexcept;

    /// Effects: caps the number of buffers checked out at `n` (0: no cap); buffers served by the
    /// `bypass` policy do not count against it. Raising the cap wakes `get()`s that now fit;
    /// lowering it below `live()` takes nothing back, new `get()`s wait. Thread-safe.
    void set_max_live(std::size_t n) noexcept;

    /// Returns the live-buffer cap in force (0: none). Thread-safe.
    [[nodiscard]] std::size_t max_live() const noexcept;

  private:
    class async_checkout;

    // A buffer over the resource that holds one of the live slots, with no storage yet.
    static buffer slotted(detail::buffer_pool_core& core) noexcept;
    // The checked-out buffer of an async_get: a slot (or bypass) and storage `p` of `block` bytes
    // (null: none). Counted in live() from now on.
    static buffer checked_out(detail::buffer_pool_core& core, bool slot, void* p,
                              std::size_t block) noexcept;
    // The end of an async_get: its record is retired and destroyed, then `r` completes.
    static void complete(buffer_request& r, buffer b, async_status s) noexcept;

    std::unique_ptr<detail::buffer_pool_core> core_;
};

}  // namespace bpool
