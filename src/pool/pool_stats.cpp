// The core's statistics, block sizes, trim and limits: the public API's members that read or
// reshape the whole pool.
#include "pool/pool_core.hpp"

namespace bpool::detail {

std::size_t pool_core::block_size(std::size_t bytes, std::size_t alignment) const noexcept {
    if (!is_power_of_two(alignment)) return 0;
    const unsigned c = class_of(bytes, alignment);
    return c == no_class ? direct_size(bytes) : classes[c].size;
}

std::size_t pool_core::block_size_at_most(std::size_t limit, std::size_t alignment) const noexcept {
    if (!is_power_of_two(alignment)) return 0;
    // Every block size is a multiple of 16; a direct block is exactly its rounded request.
    const std::size_t s = limit & ~std::size_t{15};
    if (s < min_block_size) return 0;
    unsigned c = class_of(s, alignment);
    if (c == no_class) return s;
    // s is pooled, in class c (whose size may exceed s): the largest class no larger than s
    // among those that honour the alignment (class_for skips the others upwards).
    for (;; --c) {
        if (classes[c].size <= s && classes[c].align >= alignment) return classes[c].size;
        if (c == 0) return 0;
    }
}

std::size_t pool_core::headroom() const noexcept {
    const std::size_t cap = budget_.capacity();
    if (cap == 0) return SIZE_MAX;
    std::int64_t used = budget_.committed().bytes;
    if (const thread_cache* tc = own_cache()) used -= tc->credit().bytes;
    const auto limit = static_cast<std::int64_t>(cap);
    return used >= limit ? 0 : static_cast<std::size_t>(limit - used);
}

pool_options pool_core::options() const {
    pool_options o = options_;
    o.capacity = budget_.capacity();
    o.max_live_blocks = budget_.max_live_blocks();
    return o;
}

amount pool_core::committed_live() const noexcept {
    // Read before the caches' credit is subtracted from it (registry lock held): credit leased in
    // between is subtracted without having been counted, so the result may be low for a moment,
    // never above what is committed (and so never above the capacity under `wait` and `fail`).
    const direct_counts d = direct_.counts();
    return budget_.committed() + amount{static_cast<std::int64_t>(d.bypass_bytes),
                                        static_cast<std::int64_t>(d.bypass_blocks)};
}

amount pool_core::live() const noexcept {
    amount live = committed_live();
    std::lock_guard lock(registry_.mutex());
    registry_.each([&](const thread_cache& tc) { live = live - tc.credit(); });
    return clamped(live);
}

std::size_t pool_core::live_bytes() const noexcept {
    return static_cast<std::size_t>(live().bytes);
}

std::size_t pool_core::live_blocks() const noexcept {
    return static_cast<std::size_t>(live().blocks);
}

amount pool_core::read_caches(pool_stats& s, std::size_t* thread_cached) const {
    // First, so that where this pool is the global operator new, the vector's own block counts
    // in the totals as it does in its class.
    s.classes.resize(largest_class_ + 1);
    // Read before the caches' credit is subtracted from it: see committed_live.
    amount live = committed_live();
    // A page-aligned twin counts with its size class (one entry per block size).
    auto entry = [&](unsigned c) -> size_class_stats* {
        const unsigned k = size_class_of(c);
        return k <= largest_class_ ? &s.classes[k] : nullptr;
    };
    std::lock_guard lock(registry_.mutex());
    for (unsigned c = 0; c < table_size; ++c) {
        if (size_class_stats* k = entry(c)) {
            k->allocations += retired_allocs_[c].load(std::memory_order_relaxed);
            k->deallocations += retired_frees_[c].load(std::memory_order_relaxed);
        }
    }
    registry_.each([&](const thread_cache& tc) {
        for (unsigned c = 0; c < table_size; ++c) {
            if (size_class_stats* k = entry(c)) {
                const bin_counts n = tc.counts(c);
                k->allocations += n.allocs;
                k->deallocations += n.frees;
            }
        }
        *thread_cached += tc.cached_bytes();
        live = live - tc.credit();
    });
    return live;
}

pool_stats pool_core::stats() const {
    pool_stats s;
    // The totals come from the budget (bounded by the capacity even while other threads run);
    // the per-class figures from the caches' counters, which are each a little stale.
    std::size_t thread_cached = 0;
    const amount live = clamped(read_caches(s, &thread_cached));
    s.live_bytes = static_cast<std::size_t>(live.bytes);
    s.live_blocks = static_cast<std::size_t>(live.blocks);
    for (unsigned c = 0; c <= largest_class_; ++c) {
        size_class_stats& k = s.classes[c];
        k.block_size = classes[c].size;
        // Counters of different threads are read at slightly different moments: a block freed on
        // one thread may be seen before its allocation on another. Clamp rather than wrap.
        k.live_blocks = k.allocations > k.deallocations
                            ? static_cast<std::size_t>(k.allocations - k.deallocations)
                            : 0;
        s.allocations += k.allocations;
        s.deallocations += k.deallocations;
    }
    const direct_counts d = direct_.counts();
    s.allocations += d.allocations;
    s.deallocations += d.deallocations;
    s.large_live_bytes = d.large_bytes;
    s.bypass_live_bytes = d.bypass_bytes;
    s.bypass_live_blocks = d.bypass_blocks;
    s.thread_cached_bytes = thread_cached;
    s.cached_bytes = thread_cached + totals_.idle_bytes.load(std::memory_order_relaxed);
    s.upstream_bytes = upstream_.held();
    s.unused_bytes =
        heap_.free_bytes() + totals_.unused_bytes.load(std::memory_order_relaxed) + d.slack_bytes;
    s.pagemap_bytes = map_.mapped_bytes();
    s.thread_caches = registry_.count();
    s.quiesces = registry_.quiesces();
    s.fenced_fast_path = (flags_.load(std::memory_order_relaxed) & flag_fenced) != 0;
    // Live bytes are always committed (or bypass blocks) and always inside memory held from
    // upstream: both peaks bound the peak of live bytes from above. The upstream peak is read
    // last, so that the bound holds against everything read before it.
    s.peak_upstream_bytes = upstream_.peak();
    s.peak_live_bytes =
        std::min(std::max(s.live_bytes, budget_.peak_committed() + d.bypass_peak_bytes),
                 s.peak_upstream_bytes);
    budget_.fill_stats(s);
    return s;
}

std::size_t pool_core::trim() {
    retired_chunks retired;
    {
        std::lock_guard lock(registry_.mutex());
        // Every bin starts afresh: limit 0, its allowance back in the pool's share.
        registry_.quiesce_all_locked(
            [&](thread_cache& tc) { allowance_.release_bins(tc, *this, retired); });
    }
    for (unsigned c = 0; c < table_size; ++c)
        central_[c].trim(classes[c], map_, totals_, retired);
    return release(retired) + heap_.release_spare();
}

void pool_core::set_limits(std::size_t bytes, std::size_t blocks) {
    amount reclaimed{};
    {
        std::lock_guard lock(registry_.mutex());
        budget_.set_limits(bytes, blocks);
        if (options_.capacity_covers == capacity_scope::held) upstream_.set_limit(bytes);
        // Credit leased under the old limits may be more than the new ones allow: take it all
        // back, and give every cache the new lease size.
        registry_.quiesce_all_locked([&](thread_cache& tc) {
            reclaimed = reclaimed + return_credit(&tc, {});
            refresh_limits(&tc);
        });
    }
    budget_.give(reclaimed);
}

}  // namespace bpool::detail
