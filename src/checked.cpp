#include "checked.hpp"

#if BPOOL_CHECKED

#include <new>

namespace bpool::detail {

void checked_registry::add(void* p, const live_record& r) noexcept {
    std::lock_guard lock(mutex_);
    BPOOL_CHECK(live_.find(p) == nullptr, "internal error: a live block was handed out again");
    try {
        live_.insert(p, r);
    } catch (const std::bad_alloc&) {
        fatal(__FILE__, __LINE__, "checked build: out of memory for the live-block registry");
    }
}

free_verdict checked_registry::remove(void* p, std::size_t block, std::size_t align,
                                      live_record* was) noexcept {
    std::lock_guard lock(mutex_);
    live_record* r = live_.find(p);
    if (r == nullptr) return free_verdict::not_live;
    *was = *r;
    // The size may differ from the request as long as it selects the same block (pmr requires the
    // same size; allowing the same block keeps std::allocator-style rounding working). The
    // alignment must not exceed what the block was allocated with.
    if (r->block != block || align > r->align) return free_verdict::wrong_size;
    live_.erase(p);
    return free_verdict::ok;
}

void checked_registry::totals(std::size_t* blocks, std::size_t* bytes) const noexcept {
    std::lock_guard lock(mutex_);
    *blocks = live_.size();
    *bytes = 0;
    live_.for_each([&](void*, live_record& r) { *bytes += r.block; });
}

}  // namespace bpool::detail

#endif
