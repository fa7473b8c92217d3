// The core's deallocation paths, found by address (the pagemap), and the checked build's reports
// of frees that are not of a live block.
#include "pool/pool_core.hpp"

namespace bpool::detail {

pool_core::located pool_core::locate(const void* p) const noexcept {
    const page_entry e = map_.find(p);
    switch (e.kind()) {
        case page_kind::chunk:
        case page_kind::bypass_chunk:
            if (is_chunk_block_start(e, classes[e.cls()], p)) return {e.kind(), e.cls(), nullptr};
            break;
        case page_kind::direct:
            if (direct_block* b = direct_blocks::find(map_, p)) return {e.kind(), 0, b};
            break;
        case page_kind::none:
            break;
    }
    return {};
}

BPOOL_NOINLINE void pool_core::deallocate_normal(void* p) noexcept {
    if (id_ >= fixed_slots && push_cached<true>(p)) return;
    deallocate(p);
}

void pool_core::deallocate(void* p) noexcept {
    // The pagemap says what `p` is; anything it does not know is not this pool's.
    const located b = locate(p);
    switch (b.kind) {
        case page_kind::chunk:
            if (thread_cache* tc = cache_for_thread())
                deallocate_cached(tc, b.cls, p);
            else
                deallocate_uncached(b.cls, p);
            return;
        case page_kind::bypass_chunk:
            return deallocate_bypass(b.cls, p);
        case page_kind::direct:
            return deallocate_direct(b.direct);
        case page_kind::none:
            break;
    }
    if (p != nullptr) report_foreign(p);
}

void pool_core::deallocate_cached(thread_cache* tc, unsigned c, void* p) noexcept {
    const class_info& k = classes[c];
    registry_.enter(tc);
    track::block_idle(p, k.size);
    retired_chunks retired;
    // While requests wait (or usage is above the soft threshold) the block goes where any thread
    // finds it, and excess_credit below hands its bytes and all of this cache's credit over now.
    bool to_central = (flags_.load(std::memory_order_acquire) & (flag_pressure | flag_pacing)) != 0;
    if (!to_central && tc->count(c) >= tc->limit(c)) {
        allowance_.tune(*tc, c, *this, retired);
        const std::uint32_t count = tc->count(c);
        if (count != 0 && count >= tc->limit(c))
            put_blocks(c, tc->take_front(c, transfer_batch(tc->limit(c), k)), retired);
        to_central = tc->limit(c) == 0;  // no room reserved for this class
    }
    if (to_central) {
        block_list one;
        one.push(p);
        put_blocks(c, one, retired);
        tc->count_deallocation(c);
    } else {
        tc->push_freed(c, p);
    }
    tc->set_credit(tc->credit() + amount_of(k));
    give_after(tc, excess_credit(tc));
    finish(tc, retired);
}

void pool_core::deallocate_uncached(unsigned c, void* p) noexcept {
    const class_info& k = classes[c];
    track::block_idle(p, k.size);
    block_list one;
    one.push(p);
    retired_chunks retired;
    put_blocks(c, one, retired);
    retired_frees_[c].fetch_add(1, std::memory_order_relaxed);
    budget_.give(amount_of(k));
    release(retired);
}

void pool_core::deallocate_direct(direct_block* b) noexcept {
    const amount cost{static_cast<std::int64_t>(b->size), 1};
    const bool bypass = b->bypass;
    direct_.deallocate(b, upstream_, map_);
    if (!bypass) budget_.give(cost);
}

void pool_core::deallocate_bypass(unsigned c, void* p) noexcept {
    const class_info& k = classes[c];
    track::block_idle(p, k.size);
    retired_chunks retired;
    central_[c].put_bypass(p, k, map_, totals_, retired);
    direct_.count_bypass(k.size, -1);
    release(retired);
}

std::size_t pool_core::usable_size(const void* p) const noexcept {
    const located b = locate(p);
    switch (b.kind) {
        case page_kind::chunk:
        case page_kind::bypass_chunk:
            return classes[b.cls].size;
        case page_kind::direct:
            return b.direct->size;
        case page_kind::none:
            break;
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Checked build, and frees that are no block of this pool
// ---------------------------------------------------------------------------------------------

void pool_core::report_foreign(const void* p) const noexcept {
    const char* what =
        "another pool's or malloc's block, a stack or static address, or an "
        "interior pointer";
    switch (map_.find(p).kind()) {
        case page_kind::chunk:
        case page_kind::bypass_chunk:
            what = "an interior pointer of a pooled block";
            break;
        case page_kind::direct:
            what = "an interior pointer of a block served by upstream";
            break;
        case page_kind::none:
            break;
    }
    fatalf(__FILE__, __LINE__,
           "deallocate(%p): foreign pointer, not allocated by this pool (bpool::pool_resource "
           "%p): %s, or a block given back twice whose memory went back to upstream",
           p, resource_, what);
}

void pool_core::checked_allocated(void* p, std::size_t bytes, std::size_t alignment) noexcept {
    checked_.add(p, {bytes, alignment, block_size(bytes, alignment)});
}

void pool_core::checked_deallocating_unsized(void* p) noexcept {
    if (p == nullptr) return;
    live_record was;
    if (checked_.remove(p, 0, 0, &was) != free_verdict::ok) report_not_live(p);
}

void pool_core::report_not_live(const void* p) const noexcept {
    if (owns(p))
        fatalf(__FILE__, __LINE__, "deallocate(%p): double free (the block is not live)", p);
    report_foreign(p);
}

void pool_core::checked_deallocating(void* p, std::size_t bytes, std::size_t alignment) noexcept {
    if (p == nullptr) return;
    live_record was;
    const std::size_t block = block_size(bytes, alignment);
    if (block == 0) {
        fatalf(__FILE__, __LINE__,
               "deallocate(%p, %zu, %zu): that size and alignment select no block; wrong size or "
               "alignment",
               p, bytes, alignment);
    }
    switch (checked_.remove(p, block, alignment, &was)) {
        case free_verdict::ok:
            return;
        case free_verdict::wrong_size:
            fatalf(__FILE__, __LINE__,
                   "deallocate(%p, %zu, %zu): block was allocated as (%zu bytes, alignment %zu); "
                   "wrong size or alignment",
                   p, bytes, alignment, was.bytes, was.align);
        case free_verdict::not_live:
            break;
    }
    report_not_live(p);
}

}  // namespace bpool::detail
