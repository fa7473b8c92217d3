// Layer 6: bin sizes and the thread caches' allowance ("Bin sizes" in thread_cache.hpp). Each
// bin's limit adapts to how its thread uses the class; every block a bin may hold is reserved
// from the pool's allowance first. A cache's share of the allowance follows demand, not the
// number of caches: caches that have been used since the last rebalance share it equally, and
// caches that have not give their room back at a rebalance, without running.
//
// Thread safety: tune, shrink_bin and release_bins run on the owner's slow path inside an
// operation, or under a quiescer; rebalance takes the registry lock (the owner outside any
// operation); reserved() is a lock-free snapshot.
#pragma once

#include <atomic>
#include <cstdint>

#include "base/block_list.hpp"
#include "cache/registry.hpp"
#include "cache/thread_cache.hpp"
#include "chunks/chunk.hpp"

namespace bpool::detail {

/// Where blocks that bins give up go (the pool's central lists); chunks that empty on the way
/// are retired onto `out`, for the caller to release outside any operation and lock.
class bin_sink {
  public:
    virtual void put_blocks(unsigned c, block_list blocks, retired_chunks& out) noexcept = 0;

  protected:
    ~bin_sink() = default;
};

class cache_allowance {
  public:
    /// An allowance of `share` bytes for all caches together.
    explicit cache_allowance(std::int64_t share) noexcept : share_(share), room_(share) {}
    cache_allowance(const cache_allowance&) = delete;
    cache_allowance& operator=(const cache_allowance&) = delete;

    /// Adapts bin `c`'s limit to its use, at one of its refills or flushes: grows it while its
    /// refills come often, shrinks it when they are rare or the cache is above its share.
    void tune(thread_cache& tc, unsigned c, bin_sink& sink, retired_chunks& out) noexcept;

    /// Lowers bin `c`'s limit to `limit`, giving the difference back and the blocks beyond it to
    /// `sink`.
    void shrink_bin(thread_cache& tc, unsigned c, std::uint32_t limit, bin_sink& sink,
                    retired_chunks& out) noexcept;

    /// Empties every bin of the cache, gives its whole reservation back and forgets how its bins
    /// were used.
    void release_bins(thread_cache& tc, bin_sink& sink, retired_chunks& out) noexcept;

    /// A bin of `self` found no room. Under the registry lock, looks at every cache: those used
    /// since the last rebalance are active and share the allowance equally; the others are idle.
    /// If an idle cache holds room, or an active one more than its share, quiesces those caches
    /// only (one heavy barrier) and shrinks them: idle ones to nothing, the others to their share.
    /// Called by the owner of `self`, outside any operation, holding no lock.
    BPOOL_COLD void rebalance(thread_cache& self, cache_registry& registry, bin_sink& sink,
                              retired_chunks& out) noexcept;

    /// Bytes reserved by all caches (a snapshot).
    [[nodiscard]] std::int64_t reserved() const noexcept {
        return share_ - room_.load(std::memory_order_relaxed);
    }

  private:
    /// The most one cache may reserve: an equal part among the caches found active.
    [[nodiscard]] std::int64_t fair_share() const noexcept {
        return share_ / std::max<std::uint32_t>(1, active_.load(std::memory_order_relaxed));
    }
    bool grow_bin(thread_cache& tc, unsigned c, std::uint32_t limit) noexcept;
    void ask_for_room(thread_cache& tc) noexcept;

    const std::int64_t share_;
    std::atomic<std::int64_t> room_;  // what no cache reserves
    // Caches found active at the last rebalance (written under the registry lock).
    std::atomic<std::uint32_t> active_{1};
};

}  // namespace bpool::detail
