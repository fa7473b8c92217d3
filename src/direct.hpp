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
    std::size_t bypass_peak_bytes = 0;  // the highest bypass_bytes
    std::uint64_t allocations = 0, deallocations = 0;
};

class direct_registry {
  public:
    /// A registry that keeps `bypass_bit` of `flags` raised exactly while a bypass block is live.
    /// The bit is changed under the registry's mutex, so that a free of the last bypass block and
    /// the allocation of a new one cannot leave it cleared while a bypass block is live.
    direct_registry(std::atomic<std::uint32_t>& flags, std::uint32_t bypass_bit) noexcept
        : flags_(flags), bypass_bit_(bypass_bit) {}
    direct_registry(const direct_registry&) = delete;
    direct_registry& operator=(const direct_registry&) = delete;

    /// Allocates `size` bytes aligned to `align` from upstream and registers them. Returns the
    /// block. Throws what upstream throws, or std::bad_alloc; nothing is kept then.
    void* allocate(upstream_source& up, std::size_t size, std::size_t align, bool bypass);

    /// Unregisters `p`; stores what it was in `*out`. Returns false if `p` is not registered.
    /// Does not free the memory.
    bool remove(const void* p, direct_block* out) noexcept;

    /// Returns whether `p` is a registered block (checked-build diagnostics).
    [[nodiscard]] bool contains(const void* p) const noexcept;

    /// Gives every registered block back to upstream (pool destruction).
    void destroy(upstream_source& up) noexcept;

    [[nodiscard]] direct_counts counts() const noexcept;
    /// fork(): the prepare handler takes the lock (so that no thread holds it across the fork);
    /// the parent and child handlers release it (the child's copy is owned by its only thread).
    void lock_for_fork() noexcept { mutex_.lock(); }
    /// See lock_for_fork.
    void unlock_after_fork() noexcept { mutex_.unlock(); }

  private:
    std::atomic<std::uint32_t>& flags_;
    const std::uint32_t bypass_bit_;
    mutable std::mutex mutex_;
    mutable ptr_map<direct_block> blocks_;
    direct_counts counts_;
};

}  // namespace bpool::detail
