// Layer 5: the central list of one size class, shared by all threads of a pool. Thread caches take
// blocks from it and give blocks to it in batches (O(1) to give, O(batch) to take). Beneath it sit
// the class's chunks: blocks beyond the list's limit (set by the pool: see put_central) go back to
// their chunks, and chunks whose blocks are all back go back to the page heap, but for one spare.
// Beside them, the class's bypass chunks: blocks the `bypass` policy serves past the cap, never
// cached, told apart from the others by their pages' entries.
//
// Nothing here calls upstream with the list's lock held: a new chunk is made with the lock
// released (take), and chunks that go are retired onto the caller's retired_chunks, which it
// releases once it holds no lock and is inside no thread-cache operation.
//
// Thread safety: every member takes the list's own mutex (lock order: after the pool's registry
// lock; no other lock is taken while it is held, but the pagemap's lock-free updates).
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>

#include "base/block_list.hpp"
#include "chunks/chunk.hpp"
#include "classes/size_classes.hpp"

namespace bpool::detail {

/// Counters shared by all central lists of a pool.
struct central_totals {
    std::atomic<std::size_t> idle_bytes{0};  ///< Idle bytes in central lists and chunks.
    /// Bytes of chunks' pages past their last block, and idle blocks of bypass chunks.
    std::atomic<std::size_t> unused_bytes{0};
};

/// Idle counts of one class (a snapshot, taken under the list's lock).
struct central_idle {
    std::size_t list_blocks = 0;   ///< In the central list.
    std::size_t chunk_blocks = 0;  ///< Free or uncarved in chunks.
};

class central_list {
  public:
    central_list() = default;
    central_list(const central_list&) = delete;
    central_list& operator=(const central_list&) = delete;

    /// Takes up to `n` (>= 1) blocks from the list or the class's chunks, never from a new chunk;
    /// empty if there is none. Never calls upstream: safe inside a thread-cache operation.
    block_list try_take(const class_info& k, std::uint32_t n, pagemap& map,
                        central_totals& totals) noexcept;

    /// Takes up to `n` (>= 1) blocks: the list first, then chunks, then a new chunk from the page
    /// heap (made with the lock released). Returns at least one block. Throws what upstream
    /// throws if no block could be found. Call with no pool lock held and outside any operation.
    block_list take(const class_info& k, std::uint32_t n, page_source src, central_totals& totals);

    /// Takes `blocks` from a thread cache. The list keeps at most `keep` blocks; the rest go back
    /// to their chunks, and chunks that go are retired onto `out`.
    void put(const class_info& k, block_list blocks, std::uint32_t keep, pagemap& map,
             central_totals& totals, retired_chunks& out) noexcept;

    /// Gives every idle block back to its chunk, and retires onto `out` every chunk without live
    /// blocks.
    void trim(const class_info& k, pagemap& map, central_totals& totals,
              retired_chunks& out) noexcept;

    /// Forgets every chunk, live blocks included (pool destruction: the page heap then gives all
    /// pages back).
    void destroy() noexcept;

    /// Returns the idle counts.
    [[nodiscard]] central_idle idle() const noexcept;

    /// Takes one block for the bypass policy (uncached, uncounted). Throws what the page heap
    /// throws.
    void* take_bypass(const class_info& k, page_source src, central_totals& totals);

    /// Gives back a block of take_bypass; a bypass chunk that goes is retired onto `out`.
    void put_bypass(void* p, const class_info& k, pagemap& map, central_totals& totals,
                    retired_chunks& out) noexcept;

    /// fork(): the prepare handler takes the lock (so that no thread holds it across the fork);
    /// the parent and child handlers release it (the child's copy is owned by its only thread).
    void lock_for_fork() noexcept { mutex_.lock(); }
    /// See lock_for_fork.
    void unlock_after_fork() noexcept { mutex_.unlock(); }

  private:
    void shrink_to(const class_info& k, std::uint32_t keep, pagemap& map,
                   retired_chunks& out) noexcept;
    /// Takes from `set`, adding a chunk made with the lock released if it has no block.
    block_list take_growing(chunk_set& set, const class_info& k, std::uint32_t n, page_source src,
                            central_totals& totals);
    // Idle blocks here and chunks (of both sets): taken before a change, so that account() can
    // add what changed to the pool's totals.
    struct tally {
        std::size_t idle, chunks, bypass_idle;
    };
    [[nodiscard]] tally now() const noexcept;
    void account(const class_info& k, tally before, central_totals& totals) const noexcept;

    mutable std::mutex mutex_;
    block_list list_;
    chunk_set chunks_;
    chunk_set bypass_{page_kind::bypass_chunk};
};

}  // namespace bpool::detail
