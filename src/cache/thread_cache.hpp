// Layer 6: thread caches.
//
// ============================================================================================
// The thread-cache protocol
// ============================================================================================
// Ownership. Each (thread, pool) pair that has allocated or deallocated has one thread_cache,
// created by that thread on its first slow path and owned by it: it is reachable from the thread's
// TLS slot for the pool's id, and listed in the pool's cache registry. Its bins (per-class free
// lists) and its byte/block credit are touched only by the owner, except by a *quiescer* (below).
// Blocks in a bin are idle: not live, not in any central list. Credit is capacity the cache has
// leased from the pool's budget and not yet spent; live + all credit + granted-but-unspent is what
// the budget calls committed, and committed <= capacity is how the cap stays exact.
//
// Fast path (owner only; no lock, no atomic read-modify-write): announce `in_op = 1` (relaxed
// store), light barrier (compiler fence), read the pool's flags (acquire). If a flag that concerns
// this operation is up, or the bin/credit cannot serve it, leave (`in_op = 0`, release) and take
// the slow path. Otherwise pop/push one block, adjust credit and counters with plain loads and
// stores (never a locked instruction: see bump), and leave. A deallocation finds the block's
// class in the pool's pagemap (two dependent loads and a block-start test), not from its size: a
// pointer whose page holds no chunk of the pool, or that is not a block start, takes the slow
// path, which tells direct and bypass blocks from foreign pointers. Budget (as g++ 12 -O3
// compiles it for x86-64, counted with callgrind on an allocate/deallocate loop of 8 B-1 KiB
// blocks): 41 instructions from entry to return for do_allocate and 57 for do_deallocate, of
// which the pop or push itself is about 25 (the credit one word: "packed credit" below) and the
// rest the size and alignment checks (the size class: a byte table, size_classes.hpp) or the
// pagemap, and the TLS slot; four cache lines (pool header, TLS slot, cache header, bin), and for
// a free two more (the pagemap's root and leaf entries); no call, no atomic read-modify-write.
// The TLS slot is one load addressed from the thread pointer at a key the pool computed once
// (slot_key); a slot is never null (vacant_cache), and the cache's owner says whether it is this
// pool's. Keep it that way: anything else goes to the slow path.
//
// Quiescing. A thread that must touch other threads' caches (trim, a capacity change, credit
// stranded in idle caches that a request at the cap needs, room taken back from idle caches)
// holds the registry lock (cache_registry), raises `flag_quiesce`, and issues a heavy barrier
// (membarrier: a full fence on every running thread of the process). After it, any owner
// operation either began before the barrier, and the quiescer sees its `in_op == 1` and waits for
// it to end (acquire; the owner's release publishes its writes), or begins after it, and then sees
// the flag and goes to the slow path, where it waits on the registry lock until the quiescer is
// done. A quiescer waits only for the caches it touches: a preempted owner of another cache
// delays nobody but the threads that enter a slow path meanwhile. Owners never take the registry
// lock while `in_op == 1`, so the wait cannot deadlock. Because the barrier is process-wide, the
// pool quiesces only where it must: a look at the caches (credit and operation counts, read with
// relaxed loads, no barrier) decides whether a quiesce can help at all (stats().quiesces counts
// them). Where membarrier is unavailable the light barrier is a full fence (barrier.hpp).
//
// No blocking inside an operation. The slow path drops `in_op` before anything that may block or
// take long: capacity waits, pacing sleeps, and every call that may reach upstream or the OS. A
// refill whose central list is empty takes the block's credit out of the cache (the request owns
// it now, so a quiescer may take the cache's credit meanwhile, never the request's), leaves the
// operation, takes blocks from a new chunk (made with no pool lock held), and re-enters to fill
// the bin as far as its limit, which a quiescer may have lowered, allows. Chunks that a flush
// empties are retired (out of their set, their pagemap entries cleared) and given back to the
// page heap after the operation, with no lock held. So an upstream that blocks (another capped
// pool, say) delays only the request that called it, never frees, trim or fork of this pool.
//
// Caps are enforced where credit is granted (budget, slow path): the fast path only spends credit
// it already holds. While requests wait (`flag_pressure`) or usage is above the soft threshold
// (`flag_pacing`) every allocation and deallocation takes the slow path: frees return their bytes
// and the cache's whole credit to the budget at once, and their blocks to the central list, so a
// waiter on another thread can use them immediately, even if the freeing thread then idles
// forever. Credit stranded earlier in idle threads (or kept by a free that was already on its fast
// path when the flag went up) is reclaimed by quiescing the caches that hold credit, once a look
// shows that what they hold would let the queue up to a waiter fit; each step of a wait looks
// again. Credit is spent in the operation that leased it: a request paced above the soft
// threshold sleeps before it leases, so no credit granted to it can be reclaimed from under it
// while it sleeps (the cache's older credit may be: it is checked again).
//
// Bin sizes (cache_allowance). Each bin's limit (the blocks it may hold) adapts to how its thread
// uses the class, on the slow path only: at every refill or flush of the bin, the operations since
// its previous one, weighed by block size (at most 4 KiB each), are smoothed; while they stay
// under bin_grow_bytes the limit doubles (up to the class's cache_limit: max_bin_bytes of blocks,
// or one large block), past bin_shrink_bytes it halves. A batch is half the limit, at most the
// class's batch. So a thread that builds and tears down a 1000-node map soon keeps all its nodes
// (its refills come every batch), while a class whose use only drifts around a level keeps a few
// blocks (a bin walked at random empties or fills only about every (limit/2)^2 operations). Every
// block a bin may hold is reserved from the pool's cache allowance (half of max_cached_bytes,
// shared by all threads) before the limit grows, and given back when it shrinks, when the thread
// exits and on trim(). The allowance follows demand: a cache whose bin finds no room (at most once
// per 1024 of its operations) asks for a rebalance, which looks at every cache's operation count
// (no barrier): caches whose count moved since the last look are active, the others idle. Active
// caches share the allowance equally (a cache above its share halves each bin it refills or
// flushes until it is back within it); the rebalance then quiesces only the caches that must give
// room back: idle ones, which give all of it (their bins go to the central lists) without being
// woken, and active ones far above their share, which a busy thread that never leaves its fast
// path would otherwise keep. Registered threads that do nothing cost a busy one nothing. A bin
// whose growth finds no room keeps its limit; a bin at limit 0 passes every block to the central
// list. So the idle blocks of all thread caches together never exceed the allowance, and the fast
// path still checks only its bin's limit.
//
// Thread exit. A thread_local hook walks the thread's slots: for each cache still listed in its
// pool's registry (checked under the registry lock; the destructor unlists every cache of a pool
// before it frees the pool's memory) the bins go to the central lists, the credit back to the
// budget, the counters into the pool's retired totals, and the cache leaves the registry; chunks
// that emptied go back to the page heap once the lock is dropped, and until then the exit counts
// as detaching (the pool's destruction waits for it). Then the cache is freed and its reference
// to the pool's core dropped. Operations after the hook ran (from other thread_local destructors)
// use no cache: they go to the central lists directly.
//
// Fork. The prepare handler (pools.cpp) quiesces every cache of every pool as a quiescer does and
// keeps the registry lock (and every other lock of the pool: central lists, page heap, direct
// blocks, budget), so no cache is inside an operation at the fork; as no operation blocks inside
// itself, this waits only for running fast and slow paths, never for an upstream call. In the
// child, the caches of threads other than the forking one are unlisted and freed as at thread exit
// (their bins to the central lists, their credit to the budget), and the forking thread's stay.
//
// Pool destruction. The destructor (no operation on this pool may run concurrently; thread exits
// may) unlists every cache under the registry lock, waits for the exits still detaching, then
// returns all chunks to upstream. Caches of other threads keep only their reference to the core
// (which stays allocated, without memory from upstream, until the last reference goes); their
// bins now dangle and are never read. A stale cache is recognized by its owner: the destroyed
// pool's core, which that very reference keeps from being reused for a new pool, so it matches no
// live pool. It is freed when its thread exits, or earlier when a new pool with the same id needs
// the slot.
// ============================================================================================
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "base/amount.hpp"
#include "base/block_list.hpp"
#include "base/owner_add.hpp"
#include "base/pool_flags.hpp"
#include "base/track.hpp"
#include "cache/barrier.hpp"
#include "classes/size_classes.hpp"

namespace bpool::detail {

class thread_cache;

/// What a thread cache belongs to (the pool's core): the thread-exit hook hands each cache back
/// through it, so that this layer never names the pool.
class cache_owner {
  public:
    /// The owner's thread gives `tc` up (thread exit, or a stale slot): flushes and unlists it if
    /// it is still listed (the pool alive), frees it, and drops its reference to the owner.
    virtual void detach(thread_cache* tc) noexcept = 0;

  protected:
    ~cache_owner() = default;
};

/// The (weighed) bytes a bin's smoothed refill/flush interval moves, below which its limit doubles
/// and above which it halves (see "Bin sizes").
inline constexpr std::uint64_t bin_grow_bytes = 32 << 10;
inline constexpr std::uint64_t bin_shrink_bytes = 16 * bin_grow_bytes;
/// The most one operation weighs in that count, whatever its block size.
inline constexpr std::uint64_t bin_weight_cap = 4096;

/// The slow path's record of one bin (owner only): operations at its last refill or flush, and the
/// smoothed (weighed) bytes allocated and freed between two of them. It starts above
/// bin_grow_bytes, so that a bin grows (and reserves room) only once its thread has shown that it
/// reuses the class: a thread that allocates one 1 MiB block and keeps it reserves nothing.
struct bin_tuning {
    std::uint64_t mark = 0;
    std::uint64_t moved = 2 * bin_grow_bytes;
};

/// Blocks moved between a bin whose limit is `limit` and the central list at once: half the
/// limit, at most the class's batch, at least one.
[[nodiscard]] inline std::uint32_t transfer_batch(std::uint32_t limit,
                                                  const class_info& k) noexcept {
    return std::clamp<std::uint32_t>(limit / 2, 1, k.batch);
}

/// A bin's operation counters as a reader sees them (each only grows).
struct bin_counts {
    std::uint64_t allocs = 0;
    std::uint64_t frees = 0;
};

// --- packed credit ---------------------------------------------------------------------------
// A cache's credit is one word, so that a fast path spends (or gets back) a block's bytes and the
// block with one subtraction (addition) and one store: the bytes, signed, in bits 21-63, a guard
// bit 20, set in every stored credit, and the blocks in bits 0-19. Subtracting a class's cost
// (its size shifted up, plus one) leaves the word negative if the bytes ran short, and clears the
// guard if the blocks did (the borrow stops there). The blocks stay far below their 20 bits: a
// lease tops them up to budget::max_lease_blocks (plus the request's own block), a slow
// allocation or free that leaves more than two leases' worth hands back all but one lease's, and
// between slow paths the fast ones add at most what the bins can hold (credit.cpp checks the sum
// at compile time).
inline constexpr unsigned credit_bytes_shift = 21;
inline constexpr std::int64_t credit_guard = std::int64_t{1} << 20;
/// The most blocks and bytes of credit a cache may hold.
inline constexpr std::int64_t max_credit_blocks = credit_guard - 1;
inline constexpr std::int64_t max_credit_bytes = (std::int64_t{1} << 41) - 1;

[[nodiscard]] constexpr std::int64_t pack_credit(amount a) noexcept {
    return a.bytes * (std::int64_t{1} << credit_bytes_shift) + credit_guard + a.blocks;
}
[[nodiscard]] constexpr amount unpack_credit(std::int64_t w) noexcept {
    return {w >> credit_bytes_shift, w & (credit_guard - 1)};
}

/// What one block of each table entry costs a packed credit: its size and one block.
inline constexpr std::array<std::int64_t, table_size> class_cost = [] {
    std::array<std::int64_t, table_size> cost{};
    for (unsigned c = 0; c < table_size; ++c)
        cost[c] = pack_credit({classes[c].size, 1}) - pack_credit({});
    return cost;
}();
static_assert(unpack_credit(pack_credit({max_credit_bytes, max_credit_blocks})).bytes ==
              max_credit_bytes);
static_assert(unpack_credit(pack_credit({5, 0}) - class_cost[0]).bytes < 0);
static_assert(((pack_credit({4096, 0}) - class_cost[0]) & credit_guard) == 0);
static_assert(unpack_credit(pack_credit({4096, 3}) - class_cost[0]).blocks == 2);
/// The most blocks all the bins of one cache can hold at once.
inline constexpr std::int64_t max_bin_blocks = [] {
    std::int64_t n = 0;
    for (const class_info& k : classes)
        n += k.cache_limit;
    return n;
}();

class alignas(64) thread_cache {
  public:
    constexpr explicit thread_cache(cache_owner* owner) noexcept : owner_(owner) {}
    thread_cache(const thread_cache&) = delete;
    thread_cache& operator=(const thread_cache&) = delete;

    /// Fast allocation of a block of class `c`; nullptr when the slow path must run.
    BPOOL_INLINE void* try_pop(const std::atomic<std::uint32_t>& flags, unsigned c) noexcept {
        if (!enter_fast(flags, slow_alloc_flags)) return nullptr;
        bin& b = bins_[c];
        void* p = b.head;
        // One subtraction spends the block's bytes and the block: the bytes ran short if the
        // word went negative, the blocks if the guard bit was borrowed (see "packed credit").
        const std::int64_t credit = credit_.load(std::memory_order_relaxed) - class_cost[c];
        // The sign first: the subtraction's own flags test it.
        if (BPOOL_UNLIKELY(credit < 0) || BPOOL_UNLIKELY((credit & credit_guard) == 0) ||
            BPOOL_UNLIKELY(p == nullptr)) {
            leave();
            return nullptr;
        }
        b.head = track::read_link(p);
        credit_.store(credit, std::memory_order_relaxed);
        bump(b.allocs, std::uint64_t{1});
        bump(b.count, std::uint32_t(-1), std::memory_order_release);
        leave();
        track::block_live(p, classes[c].size);
        return p;
    }

    /// Fast deallocation of block `p` of class `c`; false when the slow path must run.
    BPOOL_INLINE bool try_push(const std::atomic<std::uint32_t>& flags, unsigned c,
                               void* p) noexcept {
        if (!enter_fast(flags, slow_free_flags)) return false;
        bin& b = bins_[c];
        const std::uint32_t count = b.count.load(std::memory_order_relaxed);
        // The held bytes decide the word's order (hold_limit_ is packed with every low bit set).
        const std::int64_t credit = credit_.load(std::memory_order_relaxed) + class_cost[c];
        if (BPOOL_UNLIKELY(count >= b.limit) || BPOOL_UNLIKELY(credit > hold_limit_)) {
            leave();
            return false;
        }
        track::block_idle(p, classes[c].size);
        track::write_link(p, b.head);
        b.head = p;
        credit_.store(credit, std::memory_order_relaxed);
        bump(b.frees, std::uint64_t{1});
        bump(b.count, std::uint32_t{1}, std::memory_order_release);
        leave();
        return true;
    }

    // --- owner side of the handshake --------------------------------------------------------

    /// Announces an operation; false (and not in an operation) if any of `mask` is raised.
    BPOOL_INLINE bool enter_fast(const std::atomic<std::uint32_t>& flags,
                                 std::uint32_t mask) noexcept {
        in_op_.store(1, announce_order);
        light_barrier();
        const std::uint32_t f = flags.load(flags_order);
        // One test for both: nothing raised, and the heavy barrier available (flag_fenced is
        // never up then), so the light barrier sufficed.
        if (BPOOL_LIKELY((f & (mask | flag_fenced)) == 0)) return true;
        // Without the heavy barrier: a full fence between the announcement and a second read of
        // the flags, which decides (the first may have been read too early). Inline: a call here
        // would cost every fast path its registers.
        if ((f & flag_fenced) != 0) {
            fallback_fence();
            if ((flags.load(flags_order) & mask) == 0) return true;
        }
        leave();
        return false;
    }

    /// Ends an operation: publishes the owner's writes to a quiescer that waits for it.
    BPOOL_INLINE void leave() noexcept { in_op_.store(0, std::memory_order_release); }

    /// Quiescer side: waits until the owner is outside any operation.
    void wait_idle() const noexcept;

    // --- slow-path helpers (owner inside an operation, or a quiescer) -----------------------

    /// True if bin `c` holds no block (owner, or a quiescer).
    [[nodiscard]] bool empty(unsigned c) const noexcept { return bins_[c].head == nullptr; }
    /// The blocks bin `c` holds (owner, or a quiescer; a reader's snapshot otherwise).
    [[nodiscard]] std::uint32_t count(unsigned c) const noexcept {
        return bins_[c].count.load(std::memory_order_relaxed);
    }
    /// The most blocks bin `c` may hold (owner, or a quiescer).
    [[nodiscard]] std::uint32_t limit(unsigned c) const noexcept { return bins_[c].limit; }
    /// Sets it; the allowance reserves or returns the room first (owner, or a quiescer).
    void set_limit(unsigned c, std::uint32_t limit) noexcept { bins_[c].limit = limit; }
    /// The operation counters of bin `c` (any thread: relaxed snapshots).
    [[nodiscard]] bin_counts counts(unsigned c) const noexcept {
        return {bins_[c].allocs.load(std::memory_order_relaxed),
                bins_[c].frees.load(std::memory_order_relaxed)};
    }
    /// Counts an allocation of class `c` served around the bin (a refill's first block).
    void count_allocation(unsigned c) noexcept { bump(bins_[c].allocs, std::uint64_t{1}); }
    /// Counts a deallocation of class `c` that went around the bin (to the central list).
    void count_deallocation(unsigned c) noexcept { bump(bins_[c].frees, std::uint64_t{1}); }
    /// The cache's unspent credit (owner, or a quiescer; a reader's snapshot otherwise: one
    /// word, so bytes and blocks are read together).
    [[nodiscard]] amount credit() const noexcept {
        return unpack_credit(credit_.load(std::memory_order_relaxed));
    }
    /// Sets it (owner inside an operation, or a quiescer). Stops the program if `a` does not fit
    /// the packed word: a credit accounting error, which would break the cap.
    void set_credit(amount a) noexcept {
        BPOOL_CHECK(a.bytes >= 0 && a.bytes <= max_credit_bytes && a.blocks >= 0 &&
                        a.blocks <= max_credit_blocks,
                    "thread cache credit out of range");
        credit_.store(pack_credit(a), std::memory_order_relaxed);
    }
    /// Pops the front block of bin `c` (not empty).
    void* pop(unsigned c) noexcept;
    /// Takes the first `n` blocks of bin `c` out of the cache (to the central list).
    block_list take_front(unsigned c, std::uint32_t n) noexcept;
    /// Puts `blocks` from the central list into bin `c`.
    void fill(unsigned c, block_list blocks) noexcept;
    /// Puts idle block `p` of class `c`, given back by a deallocation, into bin `c`.
    void push_freed(unsigned c, void* p) noexcept;
    /// Idle bytes in the bins (a reader's snapshot).
    [[nodiscard]] std::size_t cached_bytes() const noexcept;
    /// The slow path's record of bin `c` (owner, or a quiescer that resets it).
    bin_tuning& tuning_of(unsigned c) noexcept { return tuning_[c]; }

    /// Allocations plus deallocations over all bins (a reader's snapshot: only grows).
    [[nodiscard]] std::uint64_t operations() const noexcept;

    /// Credit above which a free takes the slow path to return the surplus.
    [[nodiscard]] std::int64_t hold_limit() const noexcept {
        return hold_limit_ >> credit_bytes_shift;
    }
    /// Sets it (owner inside an operation, or a quiescer, or before the cache is listed).
    void set_hold_limit(std::int64_t limit) noexcept {
        BPOOL_ASSERT(limit >= 0 && limit <= max_credit_bytes);
        // Every low bit set: a packed credit is above it exactly when its bytes are.
        hold_limit_ = pack_credit({limit, max_credit_blocks});
    }

    /// Credit a request of the owner took out of the cache to spend outside an operation (a
    /// refill from a new chunk, a block from upstream): the owner's own, never a quiescer's, but
    /// given back by a child of fork() for the threads it does not have.
    [[nodiscard]] amount in_flight() const noexcept { return in_flight_; }
    /// Sets it (owner only).
    void set_in_flight(amount a) noexcept { in_flight_ = a; }

    /// Bytes of the pool's cache allowance this cache reserves (a snapshot).
    [[nodiscard]] std::int64_t reserved() const noexcept {
        return reserved_.load(std::memory_order_relaxed);
    }
    /// Whether a bin found no room: the owner rebalances once its operation is over.
    [[nodiscard]] bool wants_room() const noexcept { return wants_room_; }

    /// The pool this cache belongs to.
    [[nodiscard]] cache_owner* owner() const noexcept { return owner_; }

  private:
    /// One size class in a thread cache. The free list is owner-only; the counters are atomics only
    /// so that stats() may read them from another thread (the owner uses plain load + store). Both
    /// operation counters only grow (counting allocations on the pop costs the fast path one add,
    /// and buys per-class figures that a reader can never see wrap, and the bin tuning its op
    /// count); a reader adds them up per class over all caches (a block freed here may have been
    /// allocated by another thread) and clamps the difference at zero, as counters read at slightly
    /// different moments may briefly show more frees than allocations.
    struct bin {
        void* head = nullptr;
        std::atomic<std::uint32_t> count{0};
        std::uint32_t limit = 0;
        std::atomic<std::uint64_t> allocs{0};
        std::atomic<std::uint64_t> frees{0};
    };
    static_assert(sizeof(bin) == 32);

    friend class cache_registry;   // the registry's links
    friend class cache_allowance;  // the reservation and the demand bookkeeping

    // Hot: the first cache line holds everything the fast paths touch besides the bin (the
    // owner: fixed_cache's and find_cache's test).
    std::atomic<std::uint32_t> in_op_{0};
    std::atomic<std::int64_t> credit_{pack_credit({})};  // see "packed credit"
    std::int64_t hold_limit_ = pack_credit({0, max_credit_blocks});
    cache_owner* const owner_;

    bin bins_[table_size];
    bin_tuning tuning_[table_size];
    amount in_flight_{};

    // --- the allowance (cache_allowance) ----------------------------------------------------
    // Bytes of the pool's cache allowance reserved by this cache: the sum over its bins of
    // limit x block size. Written by the owner (or a quiescer), read by a rebalance.
    std::atomic<std::int64_t> reserved_{0};
    // A bin found no room: the owner asks for a rebalance once its operation is over.
    bool wants_room_ = false;
    // operations() when the owner last asked for a rebalance (owner only).
    std::uint64_t asked_at_ = 0;
    // operations() at the last rebalance that looked at this cache, and whether it had not moved
    // since the look before (registry lock).
    std::uint64_t seen_ops_ = 0;
    bool idle_ = false;

    // --- registry (guarded by the pool's registry lock) --------------------------------------
    thread_cache* prev_ = nullptr;
    thread_cache* next_ = nullptr;
    bool listed_ = false;
};

// --- TLS slots -----------------------------------------------------------------------------

inline constexpr std::uint32_t fixed_slots = 16;

/// What a fixed TLS slot without a cache points to: a cache of no pool (its owner is null, so the
/// fast path's owner test fails and no separate null test is needed). Never used as a cache.
inline constinit thread_cache vacant_cache{nullptr};

/// Takes the cache out of `slot` (a fixed slot, or an extra one, which may be null), leaving the
/// slot vacant; nullptr if it held none.
[[nodiscard]] inline thread_cache* take_slot(thread_cache*& slot) noexcept {
    thread_cache* tc = std::exchange(slot, &vacant_cache);
    return tc == &vacant_cache ? nullptr : tc;
}

consteval std::array<thread_cache*, fixed_slots> vacant_slots() {
    std::array<thread_cache*, fixed_slots> slots{};
    slots.fill(&vacant_cache);
    return slots;
}

/// Per-thread state, constant-initialized so that the fast path reads it with no TLS guard. A
/// slot holds the thread's cache for the pools with that id, or the vacant cache (an extra slot:
/// or nullptr). A cache there may be a stale one, left by a destroyed pool that had the same id:
/// its owner is then that pool's core, which the cache's reference keeps allocated, so no live
/// pool's core can have its address (the owner test below).
struct thread_slots {
    std::array<thread_cache*, fixed_slots> fixed = vacant_slots();
    thread_cache* none = &vacant_cache;  // always vacant: where pools with ids >= fixed_slots look
    thread_cache** extra = nullptr;      // slots for ids >= fixed_slots
    std::uint32_t extra_size = 0;
    bool hooked = false;   // the exit hook is installed
    bool exiting = false;  // the exit hook ran: no more caches for this thread
};

extern constinit thread_local thread_slots tls_slots __attribute__((tls_model("initial-exec")));

/// The byte offset in thread_slots of the slot that the fast path reads first for pool id `id`:
/// its fixed slot, or `none` for ids beyond them.
[[nodiscard]] constexpr std::uint32_t slot_offset(std::uint32_t id) noexcept {
    return id < fixed_slots ? static_cast<std::uint32_t>(offsetof(thread_slots, fixed) +
                                                         id * sizeof(thread_cache*))
                            : static_cast<std::uint32_t>(offsetof(thread_slots, none));
}

/// Where that slot is, from the thread pointer: the same in every thread, as tls_slots is in the
/// static TLS block (initial-exec). Computed once per pool, so that the fast path reads the slot
/// with one load addressed from the thread pointer (no load of the TLS offset first).
[[nodiscard]] inline std::intptr_t slot_key(std::uint32_t id) noexcept {
    const auto* slot = reinterpret_cast<const unsigned char*>(&tls_slots) + slot_offset(id);
    return slot - static_cast<const unsigned char*>(__builtin_thread_pointer());
}

/// The fast paths' lookup: this thread's cache for the pool whose core is `owner`, found in the
/// slot at `key` (slot_key of its id); nullptr if there is none there (the slot is vacant, or
/// stale), or if the id is beyond the fixed slots (`none`): the slow path looks further
/// (find_cache).
BPOOL_INLINE thread_cache* fixed_cache(const cache_owner* owner, std::intptr_t key) noexcept {
    thread_cache* tc = *reinterpret_cast<thread_cache* const*>(
        static_cast<const unsigned char*>(__builtin_thread_pointer()) + key);
    return tc->owner() == owner ? tc : nullptr;  // never null: vacant_cache
}

/// Returns this thread's cache for the pool whose core is `owner` and whose id is `id`, or
/// nullptr: any id.
inline thread_cache* find_cache(const cache_owner* owner, std::uint32_t id) noexcept {
    const thread_slots& t = tls_slots;
    thread_cache* tc = nullptr;
    if (id < fixed_slots)
        tc = t.fixed[id];
    else if (id - fixed_slots < t.extra_size)
        tc = t.extra[id - fixed_slots];
    return tc != nullptr && tc->owner() == owner ? tc : nullptr;
}

/// Returns this thread's slot for `id`, growing the table if needed; nullptr if the thread is
/// exiting or memory is short. Installs the thread-exit hook on first use.
thread_cache** slot_for(std::uint32_t id) noexcept;

}  // namespace bpool::detail
