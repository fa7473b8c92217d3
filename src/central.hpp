// Layer 4: the central list of one size class, shared by all threads of a pool. Thread caches take
// blocks from it and give blocks to it in batches (O(1) to give, O(batch) to take). Beneath it sit
// the class's chunks: blocks beyond the list's limit (set by the pool: see put_central) go back to
// their chunks, and chunks whose blocks are all back go back to the page heap, but for one spare.
// Beside them, the class's bypass chunks: blocks the `bypass` policy serves past the cap, never
// cached, told apart from the others by their pages' entries.
//
// Thread safety: every member takes the list's own mutex (lock order: after the pool's registry
// lock, before the page heap's; upstream calls aside, no other lock is taken while it is held;
// the budget's is never held while it is taken).
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>

#include "block_list.hpp"
#include "chunk.hpp"
#include "size_classes.hpp"

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

    /// Takes up to `n` (>= 1) blocks for a thread cache: the list first, then chunks or upstream.
    /// Returns at least one block. Throws what upstream throws if no block could be found.
    block_list take(const class_info& k, std::uint32_t n, page_source src, central_totals& totals);

    /// Takes `blocks` from a thread cache. The list keeps at most `keep` blocks; the rest go back
    /// to chunks (or the page heap). Returns the bytes given back to upstream.
    std::size_t put(const class_info& k, block_list blocks, std::uint32_t keep, page_source src,
                    central_totals& totals) noexcept;

    /// Gives every idle block back to its chunk, and every chunk without live blocks back to the
    /// page heap. Returns the bytes given back to upstream.
    std::size_t trim(const class_info& k, page_source src, central_totals& totals) noexcept;

    /// Forgets every chunk, live blocks included (pool destruction: the page heap then gives all
    /// pages back).
    void destroy() noexcept;

    /// Returns the idle counts.
    [[nodiscard]] central_idle idle() const noexcept;

    /// Takes one block for the bypass policy (uncached, uncounted). Throws what the page heap
    /// throws.
    void* take_bypass(const class_info& k, page_source src, central_totals& totals);

    /// Gives back a block of take_bypass. Returns the bytes given back to upstream.
    std::size_t put_bypass(void* p, const class_info& k, page_source src,
                           central_totals& totals) noexcept;

    /// fork(): the prepare handler takes the lock (so that no thread holds it across the fork);
    /// the parent and child handlers release it (the child's copy is owned by its only thread).
    void lock_for_fork() noexcept { mutex_.lock(); }
    /// See lock_for_fork.
    void unlock_after_fork() noexcept { mutex_.unlock(); }

  private:
    std::size_t shrink_to(const class_info& k, std::uint32_t keep, page_source src) noexcept;
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
