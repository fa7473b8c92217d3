// Blocks served straight from upstream: requests above the size classes ("large") and requests
// served by the `bypass` policy. Each is registered by address, so a deallocation tells them apart
// exactly (the seed's bufferpool could not, and its counter drifted), the destructor can give them
// all back, and a deallocation of an address the pool never handed out is reported.
//
// Thread safety: every member takes the registry's mutex (lock order: after registry and budget
// locks).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "ptr_map.hpp"
#include "upstream.hpp"

namespace bpool::detail {

struct direct_block {
    std::size_t size = 0;
    std::size_t align = 0;
    bool bypass = false;  // served by the bypass policy: not counted against the capacity
};

/// Counters of direct blocks (a snapshot).
struct direct_counts {
    std::size_t large_bytes = 0, large_blocks = 0;
    std::size_t bypass_bytes = 0, bypass_blocks = 0;
    std::uint64_t allocations = 0, deallocations = 0;
};

class direct_registry {
  public:
    /// Allocates `size` bytes aligned to `align` from upstream and registers them. Returns the
    /// block; `*first_bypass` is set when this is the first live bypass block (the caller raises
    /// the pool's flag). Throws what upstream throws, or std::bad_alloc; nothing is kept then.
    void* allocate(upstream_source& up, std::size_t size, std::size_t align, bool bypass,
                   bool* first_bypass);

    /// Unregisters `p`; stores what it was in `*out`. Returns false if `p` is not registered.
    /// `*last_bypass` is set when no bypass block is live any more. Does not free the memory.
    bool remove(const void* p, direct_block* out, bool* last_bypass) noexcept;

    /// Returns whether `p` is a registered block (checked-build diagnostics).
    [[nodiscard]] bool contains(const void* p) const noexcept;

    /// Gives every registered block back to upstream (pool destruction).
    void destroy(upstream_source& up) noexcept;

    [[nodiscard]] direct_counts counts() const noexcept;

  private:
    mutable std::mutex mutex_;
    mutable ptr_map<direct_block> blocks_;
    direct_counts counts_;
};

}  // namespace bpool::detail
