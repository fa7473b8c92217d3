#include "pool/checked.hpp"

#if BPOOL_CHECKED

#include <algorithm>
#include <cstdio>
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
    // An unsized free (block 0) matches whatever the block was allocated as.
    if (block != 0 && (r->block != block || align > r->align)) return free_verdict::wrong_size;
    live_.erase(p);
    return free_verdict::ok;
}

void checked_registry::report_leaks() const noexcept {
    // Grouped by block size in a fixed table (no allocation while the pool is being destroyed);
    // sizes beyond the table's room are counted together.
    struct group {
        std::size_t block, count;
    };
    constexpr std::size_t room = 64;
    group groups[room];
    std::size_t used = 0, blocks = 0, bytes = 0, others = 0;
    std::lock_guard lock(mutex_);
    live_.for_each([&](void*, live_record& r) {
        ++blocks;
        bytes += r.block;
        std::size_t i = 0;
        while (i < used && groups[i].block != r.block)
            ++i;
        if (i == used) {
            if (used == room) {
                ++others;
                return;
            }
            groups[used++] = {r.block, 0};
        }
        ++groups[i].count;
    });
    if (blocks == 0) return;
    std::sort(groups, groups + used, [](const group& a, const group& b) {
        return a.count != b.count ? a.count > b.count : a.block < b.block;
    });
    std::fprintf(stderr, "bpool: pool destroyed with %zu live blocks (%zu bytes):", blocks, bytes);
    for (std::size_t i = 0; i < used; ++i)
        std::fprintf(stderr, "%s %zu x %zu B", i == 0 ? "" : ",", groups[i].count, groups[i].block);
    if (others != 0) std::fprintf(stderr, ", %zu of other sizes", others);
    std::fprintf(stderr, "\n");
}

}  // namespace bpool::detail

#endif
