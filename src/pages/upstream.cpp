#include "pages/upstream.hpp"

#include "base/track.hpp"

namespace bpool::detail {

thread_local bool upstream_source::uncapped_ = false;

bool upstream_source::reserve(std::size_t bytes, std::size_t* now) noexcept {
    const std::size_t limit = limit_.load(std::memory_order_relaxed);
    if (limit == 0 || uncapped_) {
        *now = held_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
        return true;
    }
    // Counted before upstream is asked, so that two callers cannot both pass the limit.
    std::size_t held = held_.load(std::memory_order_relaxed);
    do {
        if (bytes > limit || held > limit - bytes) return false;
    } while (!held_.compare_exchange_weak(held, held + bytes, std::memory_order_relaxed));
    *now = held + bytes;
    return true;
}

void* upstream_source::allocate(std::size_t bytes, std::size_t alignment) {
    std::size_t now = 0;
    if (!reserve(bytes, &now)) throw upstream_full();
    void* p;
    try {
        p = resource_->allocate(bytes, alignment);
    } catch (...) {
        held_.fetch_sub(bytes, std::memory_order_relaxed);
        throw;
    }
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
