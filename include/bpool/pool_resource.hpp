/// @file
/// bpool/pool_resource.hpp: the pool itself, a thread-safe std::pmr::memory_resource.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory_resource>

#include <bpool/async.hpp>
#include <bpool/errors.hpp>
#include <bpool/pool_options.hpp>
#include <bpool/stats.hpp>

// The namespace is documented here once for all headers: Doxygen checks the members of a namespace
// (free functions, constants, enums) only once the namespace itself is documented.
/// bpool: a capped, thread-caching `std::pmr::memory_resource` (`pool_resource`), the buffers
/// drawn from it (`buffer`, `buffer_pool`), and adapters for `std::pmr` containers,
/// allocator-aware code (`allocator`), streams (`basic_streambuf`) and Boost.Container.
namespace bpool {

namespace detail {
class pool_core;
}

/// A block and its size, as `allocate_at_least` returns it (C++23's `std::allocation_result`).
struct allocation_result {
    void* ptr = nullptr;  ///< The block; null if none was allocated.
    /// Its size, all usable, at least what was asked for: give the block back with
    /// `deallocate(ptr, bytes, alignment)` on the resource it came from.
    std::size_t bytes = 0;
};

/// An asynchronous request for a block (`pool_resource::async_allocate`): derive from it and
/// override `on_complete`. The request is its own record while it waits (nothing is allocated
/// for it); see `async_request` for its lifetime and where the completion runs.
class memory_request : public async_request {
  protected:
    /// Effects: a request that is not pending.
    memory_request() noexcept = default;
    /// Effects: destroys the request, which must not be pending.
    virtual ~memory_request() = default;

    /// Effects: the request ended with `s`. `granted`: `p` is a block of at least the requested
    /// bytes and alignment, live in the pool (give it back with `deallocate(p, bytes, alignment)`
    /// or `deallocate_unsized(p)`); otherwise `p` is null. Called once per start, never with a
    /// pool lock held; it must not throw (the program terminates if it does).
    virtual void on_complete(void* p, async_status s) noexcept = 0;

  private:
    friend class detail::pool_core;
    static constexpr std::size_t storage_size = 256;
    alignas(std::max_align_t) unsigned char storage_[storage_size];  // the pool's record
};

/// A thread-safe `std::pmr::memory_resource` that serves requests up to `largest_pooled_block`
/// (1 MiB by default) from size classes (about four per doubling), through per-thread caches, under
/// an optional hard cap on live memory with a backoff-on-exhaustion policy.
///
/// Requests above `largest_pooled_block`, or with an alignment no class up to it honours, go
/// straight to upstream (still counted against the capacity) and are never cached. Blocks of the
/// classes up to 16 KiB are aligned to the largest power of two that divides their size (a 4 KiB
/// or 16 KiB block to its size, a 5 KiB block to 1 KiB); a request is served by the smallest class
/// that is large and aligned enough. Blocks of the classes from 20 KiB up are aligned to
/// `alignof(std::max_align_t)` (so that upstream pads none of them), and each of those classes
/// has a twin whose blocks are page-aligned, which serves the requests that need more, up to
/// 4 KiB. So with the default `largest_pooled_block` a request of any size up to 1 MiB that needs
/// up to 4 KiB alignment (a 64 KiB `O_DIRECT` buffer) is pooled and cached. Every block is aligned
/// to at least `alignof(std::max_align_t)`. The pool knows every block by its address (`owns`,
/// `usable_size`, `deallocate_unsized`).
///
/// Thread safety: every member may be called concurrently from any thread, except the destructor.
/// A block may be deallocated by another thread than the one that allocated it. The destructor
/// returns all memory to upstream, including blocks still handed out (as `std::pmr` pools do); it
/// must not run concurrently with other calls on the same pool. Threads that used the pool may
/// outlive it.
class pool_resource final : public std::pmr::memory_resource {
  public:
    /// Effects: a pool with default options over `std::pmr::get_default_resource()`.
    /// Throws: `std::bad_alloc` if its bookkeeping cannot be allocated.
    pool_resource();

    /// Effects: a pool with `options` (normalized: see `options()`) drawing its chunks and its
    /// large blocks from `upstream`, which must outlive the pool.
    /// Throws: `std::bad_alloc` if its bookkeeping cannot be allocated; `std::invalid_argument` if
    /// `upstream` is null.
    explicit pool_resource(const pool_options& options,
                           std::pmr::memory_resource* upstream = std::pmr::get_default_resource());

    /// Effects: gives every chunk and every large block back to upstream. Thread caches that other
    /// threads still hold for this pool become inert (a few hundred bytes each, no pooled memory)
    /// and are freed when those threads exit, or earlier when a new pool reuses the slot. In a
    /// checked build, reports blocks still live.
    ~pool_resource() override;

    pool_resource(const pool_resource&) = delete;
    pool_resource& operator=(const pool_resource&) = delete;

    /// Returns the options in force: as given, normalized (classes rounded, fractions clamped,
    /// defaults filled in), with the current capacity and live-block cap.
    [[nodiscard]] pool_options options() const;

    /// Returns the resource chunks and large blocks come from.
    [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept;

    /// Returns a snapshot of every counter. O(threads x size classes); takes an internal lock.
    [[nodiscard]] pool_stats stats() const;

    /// Returns the bytes handed out and not given back (block sizes). Exact when no other thread
    /// is allocating; while others run, a recent value and never more than the capacity (under
    /// `wait` and `fail`). O(threads that use the pool): reads each thread cache's credit under a
    /// short internal lock, and never stops the other threads.
    [[nodiscard]] std::size_t live_bytes() const noexcept;

    /// Returns the number of blocks handed out and not given back. Same cost and precision as
    /// `live_bytes()`.
    [[nodiscard]] std::size_t live_blocks() const noexcept;

    /// Effects: takes the idle blocks of every thread's cache and of the central lists back to
    /// their chunks and gives every chunk without a live block (idle blocks of the classes above
    /// 16 KiB included: each is its own chunk) back to upstream. Briefly pauses other threads'
    /// use of this pool.
    /// Returns: the number of bytes given back to upstream.
    std::size_t trim();

    /// Returns the bytes a request of `bytes` with `alignment` costs against the capacity: its size
    /// class, or for requests served by upstream directly `bytes` rounded up to 16.
    /// Throws nothing; returns 0 if `alignment` is not a power of two or the size overflows.
    [[nodiscard]] std::size_t block_size(
        std::size_t bytes, std::size_t alignment = alignof(std::max_align_t)) const noexcept;

    // --- capacity ----------------------------------------------------------------------------

    /// Effects: sets the hard limit on live bytes (0: unlimited). Raising it wakes waiters that now
    /// fit; lowering it below the live bytes makes new requests wait (nothing is taken back).
    /// Thread-safe; briefly pauses other threads' use of this pool.
    void set_capacity(std::size_t bytes);

    /// Effects: sets the hard limit on live blocks (0: unlimited), like `set_capacity`.
    void set_max_live_blocks(std::size_t blocks);

    /// Returns the capacity in force (0: unlimited).
    [[nodiscard]] std::size_t capacity() const noexcept;

    /// Returns the live-block cap in force (0: unlimited).
    [[nodiscard]] std::size_t max_live_blocks() const noexcept;

    /// Effects: allocates like `allocate` but never waits: at the cap, or on any error (bad
    /// alignment, upstream failure), returns `nullptr`. The `bypass` and `overcommit` policies do
    /// not apply. Thread-safe.
    [[nodiscard]] void* try_allocate(std::size_t bytes,
                                     std::size_t alignment = alignof(std::max_align_t)) noexcept;

    /// Effects: for a container that grows geometrically by replacing its block (the old one stays
    /// live while it is copied), allocates a block of at least `min` bytes, larger where that can
    /// be had at once (C++23's `allocate_at_least`, with a size to prefer). The first of these
    /// that succeeds:
    /// 1. if `preferred > min`, a block of `preferred` bytes, like `try_allocate`: never waiting,
    ///    never paced, whatever the pool's policy and any `exhaustion_scope`;
    /// 2. the same way, the largest block above `block_size(min, alignment)` (and below the first)
    ///    that takes at most half of the headroom left above it (what the capacity leaves after
    ///    live blocks and the credit other threads' caches hold), so that other requests keep the
    ///    rest;
    /// 3. `allocate(min, alignment)`, exactly: under the pool's policy (waiting with backoff,
    ///    `fail`, `overcommit`, `bypass`), an enclosing `exhaustion_scope` and the soft
    ///    threshold's pacing.
    /// Near the capacity, where the doubled block no longer fits beside the one it replaces, the
    /// second step keeps growth geometric: asking for exactly what each write needs would copy
    /// the whole container at every write; and only the request for what is needed meets the
    /// policy, so that a growth that can succeed is not refused (or kept waiting) for its slack.
    /// Returns: the block and its size, all usable: a `block_size` of at least
    /// `block_size(min, alignment)` and at most `block_size(preferred, alignment)` when
    /// `preferred` is larger. Give it back with `deallocate(ptr, bytes, alignment)` (or
    /// `deallocate_unsized`). Never a null block: failures throw.
    /// Throws: what `allocate(min, alignment)` throws: `capacity_exceeded` at the cap per the
    /// policy (refused, or after the wait); `std::invalid_argument` if `alignment` is not a power
    /// of two; `std::bad_alloc` if the size overflows or upstream fails. The first two steps
    /// throw nothing: any failure there moves on to the next step.
    /// Thread safety: thread-safe, like `allocate`.
    [[nodiscard]] allocation_result allocate_at_least(
        std::size_t min, std::size_t preferred, std::size_t alignment = alignof(std::max_align_t));

    /// Effects: allocates `bytes` aligned to `alignment` without ever blocking the calling thread,
    /// for an event loop: `r.on_complete` runs with the block as soon as the request fits. A
    /// request that can be decided at once (it fits now, after taking back credit idle thread
    /// caches hold; the policy is `fail` or `bypass`; it is larger than the cap; the alignment is
    /// not a power of two) completes before this returns, on the calling thread. Otherwise it
    /// waits at the cap in the same arrival order as blocking requests, under the same rules: the
    /// pool's `on_exhaustion` (or an enclosing `exhaustion_scope`'s, read now), the deadline
    /// `backoff.max_elapsed` (or the scope's) from now, `overcommit` proceeding past the cap when
    /// it runs out, a capacity lowered below it refusing it, `on_pressure` called (on this thread)
    /// before it queues, and its wait in `stats()`; it then completes on bpool's completion thread.
    /// Upstream is never waited for: an upstream that is itself a capped pool is asked under
    /// `exhaustion::fail`, and its refusal completes the request as `failed`.
    /// `r` must not be pending; it is pending until `on_complete` begins.
    /// Returns: true if the request completed at once, false if it waits.
    /// Throws nothing. Thread-safe.
    bool async_allocate(memory_request& r, std::size_t bytes,
                        std::size_t alignment = alignof(std::max_align_t)) noexcept;

    /// Effects: allocates like `allocate`, waiting at the cap (whatever the pool's policy) for at
    /// most `timeout` (and not past an `exhaustion_scope` deadline).
    /// Throws: `capacity_exceeded` after the timeout; `std::invalid_argument` for an alignment that
    /// is not a power of two; `std::bad_alloc` if the size overflows or upstream fails.
    [[nodiscard]] void* allocate_for(std::size_t bytes, std::size_t alignment,
                                     std::chrono::nanoseconds timeout);

    // --- blocks by address ---------------------------------------------------------------------

    /// Effects: gives back block `p` of this pool without its size or alignment (`nullptr`: a
    /// no-op), with the same accounting, caching and capacity wake-ups as `deallocate`. The pool
    /// finds the block's size class from its address (the pagemap: two loads, no lock).
    /// Stops the program with a message naming `p` and the pool if `p` is not a block this pool
    /// handed out (another pool's or `malloc`'s block, a stack address, an interior pointer), in
    /// every build. A block given back twice is reported by the checked build (`BPOOL_CHECKED`).
    /// Thread-safe; `p` may have been allocated by any thread.
    void deallocate_unsized(void* p);

    /// Returns the block size of block `p` of this pool: what `block_size` said for the request
    /// that allocated it, all of it usable; 0 for `nullptr` or any pointer that is not the start
    /// of a block of this pool. O(1), no lock, thread-safe.
    [[nodiscard]] std::size_t usable_size(const void* p) const noexcept;

    /// Returns whether `p` is the start of a block this pool handed out and has not given back
    /// to upstream (a live block, or one given back to the pool and kept idle for reuse). Any
    /// pointer may be asked about. O(1), no lock, thread-safe.
    [[nodiscard]] bool owns(const void* p) const noexcept;

  protected:
    /// Effects: allocates `bytes` aligned to `alignment` (0 bytes: a unique 16-byte block).
    /// Throws: `std::invalid_argument` if `alignment` is not a power of two; `std::bad_alloc` if
    /// the size overflows or upstream fails; `capacity_exceeded` at the cap per the policy.
    void* do_allocate(std::size_t bytes, std::size_t alignment) override;

    /// Effects: gives back a block from `allocate(bytes, alignment)`; `nullptr` is a no-op. The
    /// block is found by its address, as `deallocate_unsized` does: a size or alignment other than
    /// the allocation's is reported by the checked build and otherwise does no harm; a pointer
    /// that is not a block of this pool stops the program in every build.
    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;

    /// Returns true only for the same object: blocks of one pool cannot go to another.
    [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override;

  private:
    detail::pool_core* core_;
};

/// Effects: `allocate_at_least` over any resource, for a container that may live in a pool or
/// elsewhere: if `resource` is a `pool_resource`, its `allocate_at_least(min, preferred,
/// alignment)`; otherwise, if `preferred > min`, `resource.allocate(preferred, alignment)`, and if
/// that throws (anything), or `preferred <= min`, `resource.allocate(min, alignment)`.
/// Returns: the block and its size: over a pool as `pool_resource::allocate_at_least` says; over
/// another resource `preferred` or `min`, the size it was allocated with. Give it back with
/// `resource.deallocate(ptr, bytes, alignment)`.
/// Throws: what the pool's `allocate_at_least`, or the other resource's `allocate(min,
/// alignment)`, throws.
/// Thread safety: as `resource`'s `allocate` (a pool's is thread-safe).
[[nodiscard]] allocation_result allocate_at_least(
    std::pmr::memory_resource& resource, std::size_t min, std::size_t preferred,
    std::size_t alignment = alignof(std::max_align_t));

}  // namespace bpool
