// Layer 7 (under pool_resource): the pool's shared state and every slow path. pool_resource holds
// a pointer to its core and runs the fast paths itself (pool_resource.cpp); everything else is
// here.
//
// The core is reference-counted: the pool_resource holds one reference and every thread cache holds
// one, so a thread that exits after the pool died (or finds a stale cache) can still lock the
// registry and see that the pool is gone. The core owns no upstream memory after shutdown().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <mutex>
#include <optional>

#include <bpool/errors.hpp>
#include <bpool/pool_options.hpp>
#include <bpool/stats.hpp>

#include "budget.hpp"
#include "central.hpp"
#include "checked.hpp"
#include "direct.hpp"
#include "page_heap.hpp"
#include "pagemap.hpp"
#include "size_classes.hpp"
#include "thread_cache.hpp"
#include "upstream.hpp"

namespace bpool::detail {

/// A pool's index into the TLS slot tables (recycled) and its generation (never reused).
struct pool_ident {
    std::uint32_t id;
    std::uint64_t gen;
};

class pool_core;

/// Takes an id and a generation for a new pool; registers the fork handlers on first use.
/// Throws std::bad_alloc. (pools.cpp)
pool_ident acquire_pool_ident();
/// Gives a destroyed pool's id back.
void release_pool_ident(std::uint32_t id) noexcept;
/// Adds a pool to, or removes it from, the list of pools the fork handlers walk.
void list_pool(pool_core* p) noexcept;
void unlist_pool(pool_core* p) noexcept;

/// How one call wants exhaustion handled (beyond the pool's options and the thread's scope).
struct request_mode {
    enum kind : unsigned char { normal, no_wait, timed } what = normal;
    std::chrono::nanoseconds timeout{0};  // for `timed`
    /// The request's policy, fixed when it is first needed (pool_core::policy_for), so that its
    /// wait at the cap and its upstream calls share one deadline.
    std::optional<wait_policy> policy{};
};

class pool_core final : public reclaimer {
  public:
    // --- read by every fast path: keep together, first. ------------------------------------
    std::atomic<std::uint32_t> flags_{0};
    const std::uint32_t id_;
    const std::uint64_t gen_;
    const std::size_t largest_size_;  // requests up to this size may take the fast path
    pagemap map_;                     // every free starts here (find: lock-free)

    /// Creates a core with one reference for the pool_resource at `resource` (named in
    /// diagnostics). Throws std::bad_alloc.
    static pool_core* create(const pool_options& options, std::pmr::memory_resource* upstream,
                             const void* resource);

    pool_core(const pool_core&) = delete;
    pool_core& operator=(const pool_core&) = delete;

    /// The pool_resource is being destroyed: unlist every cache, give all memory back to upstream,
    /// drop the pool's reference. No other call on this pool may run concurrently.
    void shutdown() noexcept;

    // --- the general (slow) paths -----------------------------------------------------------
    void* allocate(std::size_t bytes, std::size_t alignment, request_mode mode);
    /// Gives back any block of this pool, found through the pagemap (nullptr: nothing). Anything
    /// else stops the program with a message naming the pointer and the pool.
    void deallocate(void* p) noexcept;

    // --- ownership (the pagemap) ---------------------------------------------------------------
    /// The block size of block `p` of this pool (live or idle), 0 if `p` is none.
    [[nodiscard]] std::size_t usable_size(const void* p) const noexcept;
    /// Whether `p` is a block of this pool (live, or idle in its caches).
    [[nodiscard]] bool owns(const void* p) const noexcept { return usable_size(p) != 0; }

    // --- checked build ---------------------------------------------------------------------
    void checked_allocated(void* p, std::size_t bytes, std::size_t alignment) noexcept;
    /// A sized free: the size and alignment must select the block's.
    void checked_deallocating(void* p, std::size_t bytes, std::size_t alignment) noexcept;
    /// An unsized free: any block matches.
    void checked_deallocating_unsized(void* p) noexcept;

    // --- the public API's other members -----------------------------------------------------
    [[nodiscard]] pool_options options() const;
    [[nodiscard]] std::pmr::memory_resource* upstream() const noexcept {
        return upstream_.resource();
    }
    [[nodiscard]] pool_stats stats() const;
    [[nodiscard]] std::size_t live_bytes() const noexcept;
    [[nodiscard]] std::size_t live_blocks() const noexcept;
    std::size_t trim();
    void set_limits(std::size_t bytes, std::size_t blocks);
    [[nodiscard]] std::size_t capacity() const noexcept { return budget_.capacity(); }
    [[nodiscard]] std::size_t max_live_blocks() const noexcept { return budget_.max_live_blocks(); }
    [[nodiscard]] std::size_t block_size(std::size_t bytes, std::size_t alignment) const noexcept;
    /// The largest block size of at most `limit` bytes for `alignment`; 0 if there is none.
    [[nodiscard]] std::size_t block_size_at_most(std::size_t limit,
                                                 std::size_t alignment) const noexcept;
    /// The bytes the calling thread could be granted now without waiting: the capacity less what
    /// is committed, this thread's own unspent credit included (its requests spend it first);
    /// SIZE_MAX without a capacity. A moment's estimate while other threads run.
    [[nodiscard]] std::size_t headroom() const noexcept;

    // --- thread caches ------------------------------------------------------------------------
    /// Returns the calling thread's cache, creating it; nullptr if the thread is exiting or memory
    /// is short (the caller then uses the uncached paths).
    thread_cache* cache_for_thread() noexcept;
    /// The owner gives its cache up (thread exit, or a stale slot): flushes and unlists it if it
    /// is still listed (the pool alive), frees it, and drops its reference to this core.
    void detach(thread_cache* tc) noexcept;

    // --- fork (pools.cpp) ---------------------------------------------------------------------
    /// Takes every lock of the pool and quiesces its caches (pthread_atfork prepare).
    void fork_prepare() noexcept;
    /// Releases what fork_prepare took (in the parent).
    void fork_parent() noexcept;
    /// Releases what fork_prepare took and forgets the waiters (in the child).
    void fork_child() noexcept;
    /// In the child, once every pool ran fork_child: gives back and frees the caches of threads
    /// that do not exist in the child (their blocks may go on to an upstream that is a pool).
    void forget_other_threads() noexcept;
    /// The list of pools (guarded by the pools' mutex in pools.cpp).
    pool_core* older_ = nullptr;
    pool_core* newer_ = nullptr;

    void reclaim(bool force) noexcept override;
    amount reclaim_for(amount missing) noexcept override;

  private:
    pool_core(const pool_options& options, std::pmr::memory_resource* upstream, std::uint32_t id,
              std::uint64_t gen, const void* resource);
    ~pool_core();
    void release_ref() noexcept;
    /// Unlists a listed cache (registry lock held): its bins go to the central lists and its
    /// counters into the retired totals; returns its credit, for the caller to give back.
    amount unlist(thread_cache* tc) noexcept;
    void unlock_components_after_fork() noexcept;

    // Handshake (thread_cache.hpp): enter an operation on the owner's slow path.
    void enter(thread_cache* tc) noexcept;
    template <class F>
    void quiesce_locked(F&& f) noexcept;

    /// The request's policy and deadline (computed once per request, then kept in `mode`).
    [[nodiscard]] wait_policy policy_for(request_mode& mode) const noexcept;
    /// Runs `f`, which may call upstream, bounded by the request: under an exhaustion_scope with
    /// its deadline (and `fail`, if that is its policy), so that an upstream that is itself a
    /// capped pool waits no longer than this request may, and not at all for try_allocate.
    template <class F>
    decltype(auto) bounded(request_mode& mode, F&& f);
    /// Whether requests of `mode` are delayed above the soft threshold (wait, overcommit).
    [[nodiscard]] bool paces(const request_mode& mode) const noexcept;
    /// The class of a pooled request, or no_class if upstream serves it directly.
    [[nodiscard]] unsigned class_of(std::size_t bytes, std::size_t alignment) const noexcept {
        return bytes <= largest_size_ ? class_for(bytes, alignment, largest_class_) : no_class;
    }
    /// Live bytes and blocks: committed minus the caches' unspent credit, plus bypass blocks.
    [[nodiscard]] amount live() const noexcept;
    /// What is committed, plus bypass blocks: live() before the caches' credit is subtracted.
    [[nodiscard]] amount committed_live() const noexcept;
    [[noreturn]] void throw_refused(outcome o, std::size_t bytes,
                                    std::chrono::nanoseconds waited) const;

    void* allocate_cached(thread_cache* tc, unsigned c, std::size_t bytes, request_mode& mode);
    void* allocate_uncached(unsigned c, std::size_t bytes, request_mode& mode);
    void* allocate_direct(std::size_t bytes, std::size_t alignment, request_mode& mode);
    /// A block for the bypass policy: from class `c`'s bypass chunks, or (no_class) straight from
    /// upstream.
    void* allocate_bypass(unsigned c, std::size_t size, std::size_t alignment, request_mode& mode);
    bool take_credit(thread_cache* tc, amount need, std::size_t bytes, request_mode& mode,
                     outcome* result, std::chrono::nanoseconds* waited);
    outcome acquire_exact(amount need, std::size_t bytes, request_mode& mode,
                          std::chrono::nanoseconds* waited);
    /// What the pagemap says starts at `p`: a block of table entry `cls` (pooled or bypass), a
    /// direct block, or nothing (kind none: no block of this pool starts at `p`).
    struct located {
        page_kind kind = page_kind::none;
        unsigned cls = 0;
        direct_block* direct = nullptr;
    };
    [[nodiscard]] located locate(const void* p) const noexcept;
    void deallocate_direct(direct_block* b) noexcept;
    void deallocate_bypass(unsigned c, void* p) noexcept;
    /// Stops the program: `p` is no block of this pool (the message says what the pagemap knows).
    [[noreturn]] void report_foreign(const void* p) const noexcept;
    /// Checked build: a free of `p`, which is not live: a double free, or not this pool's.
    [[noreturn]] void report_not_live(const void* p) const noexcept;
    void deallocate_cached(thread_cache* tc, unsigned c, void* p) noexcept;
    void deallocate_uncached(unsigned c, void* p) noexcept;

    /// Moves the first `n` blocks of bin `c` to the central list; returns the bytes that went on
    /// to upstream.
    std::size_t flush(thread_cache* tc, unsigned c, std::uint32_t n) noexcept;
    /// Adapts bin `c`'s limit to its use, at one of its refills or flushes (thread_cache.hpp).
    void tune(thread_cache* tc, unsigned c) noexcept;
    /// Raises bin `c`'s limit to `limit`, reserving the difference from the allowance. Returns
    /// false, changing nothing, if the allowance or the cache's share of it has no room.
    bool grow_bin(thread_cache* tc, unsigned c, std::uint32_t limit) noexcept;
    /// Lowers bin `c`'s limit to `limit`, giving the difference back and flushing the blocks
    /// beyond it; returns the bytes that went on to upstream.
    std::size_t shrink_bin(thread_cache* tc, unsigned c, std::uint32_t limit) noexcept;
    /// Empties every bin of the cache, gives its whole reservation back and forgets how its bins
    /// were used; returns the bytes that went on to upstream.
    std::size_t release_bins(thread_cache* tc) noexcept;
    /// A bin of `self` found no room in the allowance while caches have registered since the
    /// last rebalance: quiesces every cache and shrinks those above their share. Called outside
    /// any operation.
    void rebalance(thread_cache* self) noexcept;
    std::size_t put_central(unsigned c, block_list blocks) noexcept;
    amount return_credit(thread_cache* tc, amount keep) noexcept;
    /// Takes out the credit the cache must hand back after an operation (the caller gives it to
    /// the budget): all of it while requests wait or usage is above the soft threshold, else what
    /// exceeds its hold limit, keeping one lease.
    amount excess_credit(thread_cache* tc) noexcept;
    void refresh_limits(thread_cache* tc) const noexcept;

    std::atomic<int> refs_{1};
    pool_options options_;  // normalized; capacity fields live in budget_
    upstream_source upstream_;
    const unsigned largest_class_;
    budget budget_;
    central_totals totals_;
    // The thread caches' allowance: half of max_cached_bytes, and what of it no cache reserves.
    const std::int64_t cache_share_;
    std::atomic<std::int64_t> cache_room_;
    std::atomic<std::uint32_t> cache_count_{0};    // listed caches (changed under registry_mutex_)
    std::atomic<std::uint64_t> registrations_{0};  // caches ever listed (same)
    // registrations_ at the last rebalance: written under registry_mutex_, read by grow_bin.
    std::atomic<std::uint64_t> rebalanced_at_{0};
    /// The most one cache may reserve: an equal part of the allowance.
    [[nodiscard]] std::int64_t fair_share() const noexcept {
        return cache_share_ /
               std::max<std::uint32_t>(1, cache_count_.load(std::memory_order_relaxed));
    }
    const void* const resource_;  // the pool_resource, for diagnostics
    page_heap heap_{upstream_, map_};
    [[nodiscard]] page_source pages() noexcept { return {heap_, map_}; }
    central_list central_[table_size];
    direct_blocks direct_;
    checked_registry checked_;

    // Registry of thread caches.
    mutable std::mutex registry_mutex_;
    thread_cache* caches_ = nullptr;
    // Counters of caches that are gone and of uncached operations.
    std::atomic<std::uint64_t> retired_allocs_[table_size]{};
    std::atomic<std::uint64_t> retired_frees_[table_size]{};
};

}  // namespace bpool::detail
