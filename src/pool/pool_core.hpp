// Layer 8 (under pool_resource): the pool's shared state and every slow path. pool_resource holds
// a pointer to its core and runs the fast paths itself (pool_resource.cpp). The core's members
// are defined by concern: pool_core.cpp (life, thread caches, the central lists), credit.cpp
// (credit and the request's policy), allocate.cpp, deallocate.cpp (with the checked build's
// reports), pool_stats.cpp (statistics, sizes, trim, limits), pools.cpp (ids, fork).
//
// No upstream call, and no call that may reach the OS, happens with a pool lock held or inside
// an announced thread-cache operation: refills that need a new chunk leave the operation first
// (the request keeps its credit outside the cache), and chunks that empty are retired and
// released once the operation is over and every lock dropped.
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
#include <bpool/pool_resource.hpp>
#include <bpool/stats.hpp>

#include "budget/budget.hpp"
#include "cache/allowance.hpp"
#include "cache/registry.hpp"
#include "cache/thread_cache.hpp"
#include "central/central.hpp"
#include "chunks/direct.hpp"
#include "classes/size_classes.hpp"
#include "pages/page_heap.hpp"
#include "pages/pagemap.hpp"
#include "pages/upstream.hpp"
#include "pool/checked.hpp"
#include "pool/pools.hpp"

namespace bpool::detail {

/// How one call wants exhaustion handled (beyond the pool's options and the thread's scope).
struct request_mode {
    enum kind : unsigned char { normal, no_wait, timed } what = normal;
    std::chrono::nanoseconds timeout{0};  // for `timed`
    /// The request's policy, fixed when it is first needed (pool_core::policy_for), so that its
    /// wait at the cap and its upstream calls share one deadline.
    std::optional<wait_policy> policy{};
};

/// What one block of class `k` costs against the cap.
constexpr amount amount_of(const class_info& k) noexcept {
    return {k.size, 1};
}

// cache_owner first: a thread cache's owner is then the core's own address (find_cache's test
// needs no adjustment).
class pool_core final : public cache_owner, public reclaimer, public bin_sink {
  public:
    // --- read by every fast path: keep together, first. ------------------------------------
    std::atomic<std::uint32_t> flags_{0};
    const std::uint32_t id_;
    const std::intptr_t slot_key_;    // slot_key(id_): where fixed_cache looks
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
    /// allocate() in the normal mode: what a fast path that missed calls, as a tail call (it
    /// builds no request_mode of its own, so the fast path needs no stack frame). A pool whose id
    /// is beyond the fixed TLS slots takes its cache's fast path here.
    void* allocate_normal(std::size_t bytes, std::size_t alignment);
    /// deallocate(), after the same second look as allocate_normal's.
    void deallocate_normal(void* p) noexcept;
    /// Gives back any block of this pool, found through the pagemap (nullptr: nothing). Anything
    /// else stops the program with a message naming the pointer and the pool.
    void deallocate(void* p) noexcept;

    /// pool_resource::async_allocate (async_allocate.cpp). Returns whether `r` completed at once.
    bool async_allocate(memory_request& r, std::size_t bytes, std::size_t alignment) noexcept;

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
    /// This thread's cache for this pool, if it has one.
    [[nodiscard]] thread_cache* own_cache() const noexcept { return find_cache(this, id_); }

    // --- the fast paths (pool_resource.cpp; their budget is in thread_cache.hpp) --------------
    // `Any`: the cache wherever this thread keeps it, for the slow entries below; otherwise only
    // in the pool's fixed TLS slot (one load), and a pool whose id is beyond the fixed slots
    // always misses there.

    /// A block from this thread's cache, or nullptr: the caller takes the slow path. It only
    /// spends credit the cache already holds, so it suits every request mode.
    template <bool Any = false>
    BPOOL_INLINE void* pop_cached(std::size_t bytes, std::size_t alignment) noexcept {
        if (BPOOL_LIKELY(bytes <= largest_size_ && is_fast_alignment(alignment)))
            if (thread_cache* tc = Any ? own_cache() : fixed_cache(this, slot_key_))
                return tc->try_pop(flags_, size_to_class(bytes));
        return nullptr;
    }

    /// Pushes block `p` into this thread's cache; false if the slow path must take it. The
    /// pagemap gives the block's class, whatever size the caller passed (so a sized free with a
    /// wrong size that the checked build would report is still handled as the block it is). A
    /// block start of a chunk of this pool is pushed: found by its offset in a page-aligned
    /// chunk, or (off the common path) as the start, recorded in the entry, of a single-block
    /// chunk aligned to 16 B. Anything else (a direct or bypass block, a foreign or interior
    /// pointer, nullptr) takes the slow path, which tells them apart.
    template <bool Any = false>
    BPOOL_INLINE bool push_cached(void* p) noexcept {
        const page_entry e = map_.find(p);
        const unsigned c = e.cls();
        bool start;
        if (BPOOL_LIKELY(e.aligned_chunk()))
            start = classes[c].is_block_start(e.chunk_offset(p));
        else
            start = e.base_chunk() && e.starts_at(p);
        if (BPOOL_LIKELY(start))
            if (thread_cache* tc = Any ? own_cache() : fixed_cache(this, slot_key_))
                return tc->try_push(flags_, c, p);
        return false;
    }
    void detach(thread_cache* tc) noexcept override;

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

    amount reclaim_for(amount missing) noexcept override;
    void put_blocks(unsigned c, block_list blocks, retired_chunks& out) noexcept override;

  private:
    class async_block;
    /// A queued or at-once asynchronous request ended with `o`: serves it (granted: from the
    /// credit it holds; bypass: from upstream), retires its record and runs its completion.
    void deliver(async_block& b, outcome o) noexcept;
    /// A block of class `c` (no_class: a direct block of `bytes`, `alignment`) for a request that
    /// holds its credit, without a thread cache; upstream is asked as `mode` bounds it. Throws
    /// what upstream throws (the caller gives the credit back).
    void* serve_granted(unsigned c, std::size_t bytes, std::size_t alignment, request_mode& mode);

    pool_core(const pool_options& options, std::pmr::memory_resource* upstream, std::uint32_t id,
              const void* resource);
    ~pool_core();
    void release_ref() noexcept;
    /// Unlists a listed cache (registry lock held): its bins go to the central lists (chunks
    /// that empty onto `out`) and its counters into the retired totals; returns its credit, for
    /// the caller to give back.
    amount unlist(thread_cache* tc, retired_chunks& out) noexcept;
    void unlock_components_after_fork() noexcept;
    /// After an owner's operation (no lock held, outside it): releases the chunks it retired and
    /// rebalances the allowance if one of its bins asked for room.
    void finish(thread_cache* tc, retired_chunks& retired) noexcept;
    /// Gives chunks retired by an operation back to the page heap (no lock held, outside any
    /// operation); returns the bytes that went on to upstream.
    std::size_t release(retired_chunks& retired) noexcept { return retired.release(heap_); }

    // --- credit (credit.cpp) --------------------------------------------------------------------
    /// The request's policy and deadline (computed once per request, then kept in `mode`).
    [[nodiscard]] wait_policy policy_for(request_mode& mode) const noexcept;
    /// Runs `f`, which may call upstream, bounded by the request: under an exhaustion_scope with
    /// its deadline (and `fail`, if that is its policy), so that an upstream that is itself a
    /// capped pool waits no longer than this request may, and not at all for try_allocate.
    /// In a pool whose capacity covers what it holds, an upstream that would pass it makes the
    /// pool trim and try again, then wait (trimming at each step) or refuse per the policy.
    /// `bytes` is the request's size, for the capacity_exceeded it may throw.
    template <class F>
    decltype(auto) bounded(request_mode& mode, std::size_t bytes, F&& f);
    /// Whether requests of `mode` are delayed above the soft threshold (wait, overcommit).
    [[nodiscard]] bool paces(const request_mode& mode) const noexcept;
    /// Makes sure the cache holds credit for `need` (inside an operation; may leave and re-enter
    /// it, never holding credit it was just granted). False with the outcome if it cannot.
    bool take_credit(thread_cache* tc, amount need, std::size_t bytes, request_mode& mode,
                     outcome* result, std::chrono::nanoseconds* waited);
    /// Exactly `need` from the budget for a request with no cache (paced first).
    outcome acquire_exact(amount need, std::size_t bytes, request_mode& mode,
                          std::chrono::nanoseconds* waited);
    /// Takes the cache's credit above `keep` out of it (the caller gives it to the budget).
    static amount return_credit(thread_cache* tc, amount keep) noexcept;
    /// Takes out the credit the cache must hand back after an operation (the caller gives it to
    /// the budget): all of it while requests wait or usage is above the soft threshold, else,
    /// past its hold limit or past the blocks a packed credit may keep (credit.cpp), all but one
    /// lease.
    amount excess_credit(thread_cache* tc) noexcept;
    /// After an allocation: the credit to hand back if the cache's blocks passed what its packed
    /// credit may hold after a slow path (credit.cpp), else nothing.
    amount excess_blocks(thread_cache* tc) noexcept;
    /// Gives `a`, taken out of a cache inside an operation, back to the budget after it.
    void give_after(thread_cache* tc, amount a) noexcept;
    void refresh_limits(thread_cache* tc) const noexcept;
    /// A refused request: nullptr for try_allocate, else throws capacity_exceeded.
    BPOOL_COLD void* refused(const request_mode& mode, outcome o, std::size_t bytes,
                             std::chrono::nanoseconds waited) const;
    /// An exception from upstream in flight: nullptr for try_allocate, else rethrows it.
    BPOOL_COLD static void* failed(const request_mode& mode);

    // --- allocation (allocate.cpp) ---------------------------------------------------------
    /// The class of a pooled request, or no_class if upstream serves it directly.
    [[nodiscard]] unsigned class_of(std::size_t bytes, std::size_t alignment) const noexcept {
        return bytes <= largest_size_ ? class_for(bytes, alignment, largest_class_) : no_class;
    }
    void* allocate_cached(thread_cache* tc, unsigned c, std::size_t bytes, request_mode& mode);
    /// The bin and the central list are empty: leaves the operation (the block's credit going
    /// with the request) and takes blocks from a new chunk.
    BPOOL_NOINLINE void* refill_from_pages(thread_cache* tc, unsigned c, std::uint32_t n,
                                           request_mode& mode, retired_chunks& retired);
    void* allocate_uncached(unsigned c, std::size_t bytes, request_mode& mode);
    void* allocate_direct(std::size_t bytes, std::size_t alignment, request_mode& mode);
    /// A block for the bypass policy: from class `c`'s bypass chunks, or (no_class) straight from
    /// upstream.
    void* allocate_bypass(unsigned c, std::size_t size, std::size_t alignment, request_mode& mode);

    // --- deallocation (deallocate.cpp) ------------------------------------------------------
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
    void deallocate_cached(thread_cache* tc, unsigned c, void* p) noexcept;
    void deallocate_uncached(unsigned c, void* p) noexcept;
    /// Stops the program: `p` is no block of this pool (the message says what the pagemap knows).
    [[noreturn]] BPOOL_COLD void report_foreign(const void* p) const noexcept;
    /// Checked build: a free of `p`, which is not live: a double free, or not this pool's.
    [[noreturn]] BPOOL_COLD void report_not_live(const void* p) const noexcept;

    // --- statistics (pool_stats.cpp) ----------------------------------------------------------
    /// Live bytes and blocks: committed minus the caches' unspent credit, plus bypass blocks.
    [[nodiscard]] amount live() const noexcept;
    /// What is committed, plus bypass blocks: live() before the caches' credit is subtracted.
    [[nodiscard]] amount committed_live() const noexcept;
    /// Fills `s.classes` with the per-class counters of every cache (and of the caches gone),
    /// adds the caches' idle bytes to `*thread_cached`, and returns live(), read at the same time.
    [[nodiscard]] amount read_caches(pool_stats& s, std::size_t* thread_cached) const;

    std::atomic<int> refs_{1};
    // Exiting threads between unlisting their cache and the end of giving its memory back
    // (detach): shutdown waits for none, since that memory goes to the heap and chunks it frees.
    std::atomic<std::uint32_t> detaching_{0};
    pool_options options_;  // normalized; capacity fields live in budget_
    upstream_source upstream_;
    const unsigned largest_class_;
    budget budget_;
    central_totals totals_;
    const void* const resource_;  // the pool_resource, for diagnostics
    page_heap heap_{upstream_, map_};
    [[nodiscard]] page_source pages() noexcept { return {heap_, map_}; }
    central_list central_[table_size];
    direct_blocks direct_;
    checked_registry checked_;
    cache_registry registry_{flags_};
    cache_allowance allowance_;
    // Counters of caches that are gone and of uncached operations.
    std::atomic<std::uint64_t> retired_allocs_[table_size]{};
    std::atomic<std::uint64_t> retired_frees_[table_size]{};
};

}  // namespace bpool::detail
