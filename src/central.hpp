// Layer 3: the central list of one size class, shared by all threads of a pool. Thread caches take
// blocks from it and give blocks to it in batches (O(1) to give, O(batch) to take). Beneath it sit
// the class's chunks: blocks beyond the list's limit (set by the pool: see put_central) go back to
// their chunks, and chunks whose blocks are all back go back to upstream, but for one spare.
//
// Thread safety: every member takes the list's own mutex (lock order: after the pool's registry
// and budget locks; no other lock is taken while it is held, upstream calls aside).
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>

#include "block_list.hpp"
#include "chunk.hpp"
#include "size_classes.hpp"
#include "upstream.hpp"

namespace bpool::detail {

/// Counters shared by all central lists of a pool.
struct central_totals {
    std::atomic<std::size_t> idle_bytes{0};  ///< Idle bytes in central lists and chunks.
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
    block_list take(const class_info& k, std::uint32_t n, upstream_source& up,
                    central_totals& totals);

    /// Takes `blocks` from a thread cache. The list keeps at most `keep` blocks; the rest go back
    /// to chunks (or upstream). Returns the bytes given back to upstream.
    std::size_t put(const class_info& k, block_list blocks, std::uint32_t keep, upstream_source& up,
                    central_totals& totals) noexcept;

    /// Gives every idle block back to its chunk, and every chunk without live blocks back to
    /// upstream. Returns the bytes given back to upstream.
    std::size_t trim(const class_info& k, upstream_source& up, central_totals& totals) noexcept;

    /// Gives everything back to upstream, live blocks included (pool destruction).
    void destroy(const class_info& k, upstream_source& up) noexcept;

    /// Returns the idle counts.
    [[nodiscard]] central_idle idle() const noexcept;

    /// Returns true if `p` is the start of a block carved from one of this class's chunks. For
    /// checked-build diagnostics.
    [[nodiscard]] bool owns(const void* p, const class_info& k) noexcept;

    /// fork(): the prepare handler takes the lock (so that no thread holds it across the fork);
    /// the parent and child handlers release it (the child's copy is owned by its only thread).
    void lock_for_fork() noexcept { mutex_.lock(); }
    /// See lock_for_fork.
    void unlock_after_fork() noexcept { mutex_.unlock(); }

  private:
    std::size_t shrink_to(const class_info& k, std::uint32_t keep, upstream_source& up) noexcept;

    mutable std::mutex mutex_;
    block_list list_;
    chunk_set chunks_;
};

}  // namespace bpool::detail
