#include "pages/upstream.hpp"

#include "base/track.hpp"

namespace bpool::detail {

thread_local bool upstream_source::uncapped_ = false;

bool upstream_source::reserve(std::size_t bytes) noexcept {
    const std::size_t limit = limit_.load(std::memory_order_relaxed);
    if (limit == 0 || uncapped_) {
        claimed_.fetch_add(bytes, std::memory_order_relaxed);
        return true;
    }
    // Claimed before upstream is asked, so that two callers cannot both pass the limit.
    std::size_t claimed = claimed_.load(std::memory_order_relaxed);
    do {
        if (bytes > limit || claimed > limit - bytes) return false;
    } while (!claimed_.compare_exchange_weak(claimed, claimed + bytes, std::memory_order_relaxed));
    return true;
}

void* upstream_source::allocate(std::size_t bytes, std::size_t alignment) {
    if (!reserve(bytes)) throw upstream_full();
    void* p;
    try {
        p = resource_->allocate(bytes, alignment);
    } catch (...) {
        claimed_.fetch_sub(bytes, std::memory_order_relaxed);
        throw;
    }
    // Held only once upstream has it: a fork() while this call waits in upstream leaves the
    // child with a claim nobody will settle, but never with held bytes that do not exist.
    const std::size_t now = held_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    std::size_t peak = peak_.load(std::memory_order_relaxed);
    while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
    return p;
}

void upstream_source::deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept {
    held_.fetch_sub(bytes, std::memory_order_relaxed);
    claimed_.fetch_sub(bytes, std::memory_order_relaxed);
    track::region_released(p, bytes);
    resource_->deallocate(p, bytes, alignment);
}

}  // namespace bpool::detail
