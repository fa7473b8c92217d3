#include "direct.hpp"

#include <algorithm>

#include "track.hpp"

namespace bpool::detail {

void* direct_registry::allocate(upstream_source& up, std::size_t size, std::size_t align,
                                bool bypass) {
    std::unique_lock lock(mutex_);
    blocks_.reserve_one();  // so that registering cannot fail once upstream gave memory
    lock.unlock();
    void* p = up.allocate(size, align);  // outside the lock: upstream may be slow
    lock.lock();
    try {
        blocks_.insert(p, {size, align, bypass});
    } catch (...) {  // another thread's insert took the reserved room and growing failed
        lock.unlock();
        up.deallocate(p, size, align);
        throw;
    }
    ++counts_.allocations;
    if (bypass) {
        // Raised before the block is handed out: a thread it is passed to sees the bit (acquire)
        // and takes the slow path that tells it apart.
        if (counts_.bypass_blocks++ == 0) flags_.fetch_or(bypass_bit_, std::memory_order_seq_cst);
        counts_.bypass_bytes += size;
        counts_.bypass_peak_bytes = std::max(counts_.bypass_peak_bytes, counts_.bypass_bytes);
    } else {
        ++counts_.large_blocks;
        counts_.large_bytes += size;
    }
    return p;
}

bool direct_registry::remove(const void* p, direct_block* out) noexcept {
    std::lock_guard lock(mutex_);
    if (!blocks_.erase(p, out)) return false;
    ++counts_.deallocations;
    if (out->bypass) {
        counts_.bypass_bytes -= out->size;
        if (--counts_.bypass_blocks == 0) flags_.fetch_and(~bypass_bit_, std::memory_order_release);
    } else {
        counts_.large_bytes -= out->size;
        --counts_.large_blocks;
    }
    return true;
}

bool direct_registry::contains(const void* p) const noexcept {
    std::lock_guard lock(mutex_);
    return blocks_.find(p) != nullptr;
}

void direct_registry::destroy(upstream_source& up) noexcept {
    std::lock_guard lock(mutex_);
    blocks_.for_each([&](void* p, direct_block& b) { up.deallocate(p, b.size, b.align); });
    blocks_.clear();
}

direct_counts direct_registry::counts() const noexcept {
    std::lock_guard lock(mutex_);
    return counts_;
}

}  // namespace bpool::detail
