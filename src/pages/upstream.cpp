#include "pages/upstream.hpp"

#include "base/track.hpp"

namespace bpool::detail {

void* upstream_source::allocate(std::size_t bytes, std::size_t alignment) {
    void* p = resource_->allocate(bytes, alignment);
    const std::size_t now = held_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    std::size_t peak = peak_.load(std::memory_order_relaxed);
    while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
    return p;
}

void upstream_source::deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept {
    held_.fetch_sub(bytes, std::memory_order_relaxed);
    track::region_released(p, bytes);
    resource_->deallocate(p, bytes, alignment);
}

}  // namespace bpool::detail
