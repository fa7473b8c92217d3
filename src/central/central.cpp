#include "central/central.hpp"

namespace bpool::detail {

central_list::tally central_list::now() const noexcept {
    return {list_.count + chunks_.idle_blocks(), chunks_.chunk_count() + bypass_.chunk_count(),
            bypass_.idle_blocks()};
}

void central_list::account(const class_info& k, tally before,
                           central_totals& totals) const noexcept {
    // Idle blocks are counted as blocks, whatever chunk or page traffic produced them: a new
    // chunk brings its blocks in, a released one takes them out. Unused: each chunk's tail, and
    // the idle blocks of bypass chunks (not kept for reuse by the pool's requests, so not
    // cached: they serve only bypass requests).
    const tally after = now();
    const std::size_t tail =
        std::size_t{k.chunk_pages} * page_size - std::size_t{k.chunk_blocks} * k.size;
    auto move = [](std::atomic<std::size_t>& total, std::size_t from, std::size_t to,
                   std::size_t unit) {
        if (to > from) total.fetch_add((to - from) * unit, std::memory_order_relaxed);
        if (to < from) total.fetch_sub((from - to) * unit, std::memory_order_relaxed);
    };
    move(totals.idle_bytes, before.idle, after.idle, k.size);
    move(totals.unused_bytes, before.chunks * tail + before.bypass_idle * k.size,
         after.chunks * tail + after.bypass_idle * k.size, 1);
}

block_list central_list::try_take(const class_info& k, std::uint32_t n, pagemap& map,
                                  central_totals& totals) noexcept {
    std::lock_guard lock(mutex_);
    const tally before = now();
    block_list out = !list_.empty() ? list_.take_front(n) : chunks_.take(k, n, map);
    account(k, before, totals);
    return out;
}

block_list central_list::take_growing(chunk_set& set, const class_info& k, std::uint32_t n,
                                      page_source src, central_totals& totals) {
    {
        std::lock_guard lock(mutex_);
        const tally before = now();
        block_list out =
            &set == &chunks_ && !list_.empty() ? list_.take_front(n) : set.take(k, n, src.map);
        account(k, before, totals);
        if (!out.empty()) return out;
    }
    // The page heap may call upstream, which may be slow or wait (another capped pool): make the
    // chunk with the lock released, so that other threads' frees and refills go on.
    chunk* c = chunk_set::make(k, src.heap);
    std::lock_guard lock(mutex_);
    const tally before = now();
    // Served from the new chunk (first in the set), even if blocks came back meanwhile: a chunk
    // never carved would never come back whole, and so never go back to the page heap.
    set.adopt(c, k);
    block_list out = set.take(k, n, src.map);
    account(k, before, totals);
    return out;
}

block_list central_list::take(const class_info& k, std::uint32_t n, page_source src,
                              central_totals& totals) {
    return take_growing(chunks_, k, n, src, totals);
}

void central_list::shrink_to(const class_info& k, std::uint32_t keep, pagemap& map,
                             retired_chunks& out) noexcept {
    while (list_.count > keep)
        chunks_.give_back(list_.pop(), k, map, out);
}

void central_list::put(const class_info& k, block_list blocks, std::uint32_t keep, pagemap& map,
                       central_totals& totals, retired_chunks& out) noexcept {
    std::lock_guard lock(mutex_);
    const tally before = now();
    list_.splice(blocks);
    shrink_to(k, keep, map, out);
    account(k, before, totals);
}

void central_list::trim(const class_info& k, pagemap& map, central_totals& totals,
                        retired_chunks& out) noexcept {
    std::lock_guard lock(mutex_);
    const tally before = now();
    shrink_to(k, 0, map, out);
    chunks_.release_spare(k, map, out);
    bypass_.release_spare(k, map, out);
    account(k, before, totals);
}

void central_list::destroy() noexcept {
    std::lock_guard lock(mutex_);
    list_ = {};  // its blocks live inside the chunks
    chunks_.destroy();
    bypass_.destroy();
}

central_idle central_list::idle() const noexcept {
    std::lock_guard lock(mutex_);
    return {list_.count, chunks_.idle_blocks()};
}

void* central_list::take_bypass(const class_info& k, page_source src, central_totals& totals) {
    return take_growing(bypass_, k, 1, src, totals).pop();
}

void central_list::put_bypass(void* p, const class_info& k, pagemap& map, central_totals& totals,
                              retired_chunks& out) noexcept {
    std::lock_guard lock(mutex_);
    const tally before = now();
    bypass_.give_back(p, k, map, out);
    account(k, before, totals);
}

}  // namespace bpool::detail
