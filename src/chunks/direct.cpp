#include "chunks/direct.hpp"

#include <algorithm>
#include <new>

#include "base/intrusive_list.hpp"
#include "classes/size_classes.hpp"
#include "meta/meta.hpp"

namespace bpool::detail {

void* direct_blocks::allocate(upstream_source& up, pagemap& map, std::size_t size,
                              std::size_t align, bool bypass) {
    auto* b = meta::create<direct_block>();
    b->size = size;
    b->upstream = std::max(size, page_size);
    b->align = align;
    b->bypass = bypass;
    try {
        b->base = up.allocate(b->upstream, align);  // no lock held: upstream may be slow
    } catch (...) {
        meta::destroy(b);
        throw;
    }
    if (!map.reserve(b->base, 1)) {
        up.deallocate(b->base, b->upstream, align);
        meta::destroy(b);
        throw std::bad_alloc();
    }
    {
        std::lock_guard lock(mutex_);
        list_push_front<&direct_block::prev, &direct_block::next>(all_, b);
    }
    allocations_.fetch_add(1, std::memory_order_relaxed);
    slack_bytes_.fetch_add(b->upstream - size, std::memory_order_relaxed);
    if (bypass) {
        count_bypass(size, +1);
    } else {
        large_bytes_.fetch_add(size, std::memory_order_relaxed);
        large_blocks_.fetch_add(1, std::memory_order_relaxed);
    }
    // Entered last: the block is handed out after this, so every free of it finds the entry.
    map.set(b->base, page_entry::make_at_base(page_kind::direct, b, 0, b->base));
    return b->base;
}

void direct_blocks::count_bypass(std::size_t size, int sign) noexcept {
    if (sign > 0) {
        const std::size_t now = bypass_bytes_.fetch_add(size, std::memory_order_relaxed) + size;
        bypass_blocks_.fetch_add(1, std::memory_order_relaxed);
        std::size_t peak = bypass_peak_.load(std::memory_order_relaxed);
        while (peak < now &&
               !bypass_peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
        }
        return;
    }
    bypass_bytes_.fetch_sub(size, std::memory_order_relaxed);
    bypass_blocks_.fetch_sub(1, std::memory_order_relaxed);
}

void direct_blocks::deallocate(direct_block* b, upstream_source& up, pagemap& map) noexcept {
    map.clear(b->base);
    {
        std::lock_guard lock(mutex_);
        list_unlink<&direct_block::prev, &direct_block::next>(all_, b);
    }
    deallocations_.fetch_add(1, std::memory_order_relaxed);
    slack_bytes_.fetch_sub(b->upstream - b->size, std::memory_order_relaxed);
    if (b->bypass) {
        count_bypass(b->size, -1);
    } else {
        large_bytes_.fetch_sub(b->size, std::memory_order_relaxed);
        large_blocks_.fetch_sub(1, std::memory_order_relaxed);
    }
    up.deallocate(b->base, b->upstream, b->align);
    meta::destroy(b);
}

void direct_blocks::destroy(upstream_source& up) noexcept {
    std::lock_guard lock(mutex_);
    for (direct_block* b = std::exchange(all_, nullptr); b != nullptr;) {
        direct_block* next = b->next;
        up.deallocate(b->base, b->upstream, b->align);
        meta::destroy(b);
        b = next;
    }
}

direct_counts direct_blocks::counts() const noexcept {
    direct_counts d;
    d.large_bytes = large_bytes_.load(std::memory_order_relaxed);
    d.large_blocks = large_blocks_.load(std::memory_order_relaxed);
    d.bypass_bytes = bypass_bytes_.load(std::memory_order_relaxed);
    d.bypass_blocks = bypass_blocks_.load(std::memory_order_relaxed);
    d.bypass_peak_bytes = bypass_peak_.load(std::memory_order_relaxed);
    d.slack_bytes = slack_bytes_.load(std::memory_order_relaxed);
    d.allocations = allocations_.load(std::memory_order_relaxed);
    d.deallocations = deallocations_.load(std::memory_order_relaxed);
    return d;
}

}  // namespace bpool::detail
