// Layer 4 (beside chunks): blocks served by upstream directly, one upstream allocation each:
// requests above the size classes or with an alignment no class honours ("large"), and requests
// the `bypass` policy serves past the cap at those sizes. Each has a record, entered in the
// pagemap on the page where the block starts, so that a free finds it by address without a lock
// and tells it from a pooled block exactly. Upstream is asked for at least a page, so no two
// direct blocks start in one page (and no chunk page is ever the first page of one: chunks are
// whole pages of other upstream allocations).
//
// Thread safety: lookups (find) are lock-free. allocate and deallocate link the record into a list
// (for destroy) under a mutex taken for that alone, never across upstream; the counters are atomic.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "base/track.hpp"
#include "pages/pagemap.hpp"
#include "pages/upstream.hpp"

namespace bpool::detail {

/// Size of a direct block: the request rounded up to 16 bytes, at least 16 (a request of 0 bytes
/// still gets a unique block); 0 if the rounding overflows.
constexpr std::size_t direct_size(std::size_t bytes) noexcept {
    if (bytes > SIZE_MAX - 15) return 0;
    return bytes == 0 ? 16 : (bytes + 15) & ~std::size_t{15};
}

struct alignas(16) direct_block {
    track::hidden_ptr<void> base = nullptr;
    std::size_t size = 0;      // what it costs (the request rounded up to 16)
    std::size_t upstream = 0;  // what upstream was asked for
    std::size_t align = 0;
    bool bypass = false;  // served by the bypass policy: not counted against the capacity
    direct_block* prev = nullptr;
    direct_block* next = nullptr;
};

/// Counters of direct and bypass blocks (a snapshot).
struct direct_counts {
    std::size_t large_bytes = 0, large_blocks = 0;
    std::size_t bypass_bytes = 0, bypass_blocks = 0;
    std::size_t bypass_peak_bytes = 0;  // the highest bypass_bytes
    std::size_t slack_bytes = 0;        // held from upstream past the blocks' sizes
    std::uint64_t allocations = 0, deallocations = 0;
};

class direct_blocks {
  public:
    direct_blocks() = default;
    direct_blocks(const direct_blocks&) = delete;
    direct_blocks& operator=(const direct_blocks&) = delete;

    /// Allocates a block of `size` bytes aligned to `align` from upstream and enters it. Returns
    /// the block. Throws what upstream throws, or std::bad_alloc; nothing is kept then.
    void* allocate(upstream_source& up, pagemap& map, std::size_t size, std::size_t align,
                   bool bypass);

    /// Returns the record of the direct block that starts at `p`, or nullptr.
    /// Reads the pagemap only (the entry holds where in its page the block starts), so any
    /// pointer may be asked about while blocks come and go.
    [[nodiscard]] static direct_block* find(const pagemap& map, const void* p) noexcept {
        const page_entry e = map.find(p);
        if (e.kind() != page_kind::direct || !e.starts_at(p)) return nullptr;
        return e.record<direct_block>();
    }

    /// Removes block `b` (from find) and gives its memory back to upstream.
    void deallocate(direct_block* b, upstream_source& up, pagemap& map) noexcept;

    /// Gives every block back to upstream (pool destruction).
    void destroy(upstream_source& up) noexcept;

    /// Counts a pooled block served by the bypass policy (+1) or given back (-1).
    void count_bypass(std::size_t size, int sign) noexcept;

    [[nodiscard]] direct_counts counts() const noexcept;

    /// fork(): the prepare handler takes the lock; the parent and child handlers release it.
    void lock_for_fork() noexcept { mutex_.lock(); }
    /// See lock_for_fork.
    void unlock_after_fork() noexcept { mutex_.unlock(); }

  private:
    std::mutex mutex_;  // guards the list only
    direct_block* all_ = nullptr;
    std::atomic<std::size_t> large_bytes_{0}, large_blocks_{0}, slack_bytes_{0};
    std::atomic<std::size_t> bypass_bytes_{0}, bypass_blocks_{0}, bypass_peak_{0};
    std::atomic<std::uint64_t> allocations_{0}, deallocations_{0};
};

}  // namespace bpool::detail
