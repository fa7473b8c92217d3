#include "chunks/chunk.hpp"

#include <algorithm>
#include <new>
#include <utility>

#include "base/intrusive_list.hpp"
#include "base/track.hpp"
#include "meta/meta.hpp"

namespace bpool::detail {

void chunk_set::link(chunk* c) noexcept {
    list_push_front<&chunk::prev, &chunk::next>(avail_, c);
    c->listed = true;
}

void chunk_set::unlink(chunk* c) noexcept {
    list_unlink<&chunk::prev, &chunk::next>(avail_, c);
    c->listed = false;
}

void retired_chunks::add(chunk* c) noexcept {
    c->next = head_;
    head_ = c;
}

std::size_t retired_chunks::release(page_heap& heap) noexcept {
    std::size_t released = 0;
    for (chunk* c = std::exchange(head_, nullptr); c != nullptr;) {
        chunk* next = c->next;
        released += heap.deallocate(c->run, c->pages);
        meta::destroy(c);
        c = next;
    }
    return released;
}

chunk* chunk_set::make(const class_info& k, page_heap& heap) {
    auto* c = meta::create<chunk>();
    try {
        // A multi-block chunk must start on a page (an entry per page names it); a single-block
        // one only needs its block's alignment.
        const std::size_t align =
            k.chunk_blocks > 1 ? std::max<std::size_t>(k.align, page_size) : k.align;
        c->run = heap.allocate(k.chunk_pages, align);
    } catch (...) {
        meta::destroy(c);
        throw;
    }
    c->pages = k.chunk_pages;
    return c;
}

void chunk_set::adopt(chunk* c, const class_info& k) noexcept {
    list_push_front<&chunk::all_prev, &chunk::all_next>(all_, c);
    ++count_;
    idle_blocks_ += k.chunk_blocks;
    link(c);
}

void chunk_set::carve(chunk* c, const class_info& k, std::uint32_t n, block_list& out,
                      pagemap& map) noexcept {
    auto block = [&](std::uint32_t i) { return c->run.base + std::size_t{i} * k.size; };
    const std::uint32_t first = c->carved;
    while (out.count < n && c->carved < k.chunk_blocks) {
        void* p = block(c->carved++);
        track::block_carved(p, k.size);
        out.push(p);
    }
    if (c->carved == first) return;
    // Carve on to the end of the last block's page (onto the chunk's free list), so that its page
    // can be entered: every block start in an entered page is a block.
    const std::size_t last_page = std::size_t{c->carved - 1} * k.size >> page_shift;
    while (c->carved < k.chunk_blocks &&
           (std::size_t{c->carved} * k.size >> page_shift) == last_page) {
        void* p = block(c->carved++);
        track::block_carved(p, k.size);
        track::write_link(p, c->free_list);
        c->free_list = p;
        ++c->free_count;
    }
    // Pages below the next uncarved block's are complete; a single-block chunk has its entry on
    // its first page only (no other page holds a block start).
    const std::uint32_t complete =
        k.chunk_blocks == 1 ? 1
        : c->carved == k.chunk_blocks
            ? k.chunk_pages
            : static_cast<std::uint32_t>(std::size_t{c->carved} * k.size >> page_shift);
    if ((reinterpret_cast<std::uintptr_t>(static_cast<std::byte*>(c->run.base)) &
         (page_size - 1)) != 0) {
        // A single block aligned to 16 B: entered on its first page, with where it starts.
        if (c->published == 0)
            map.set(c->run.base, page_entry::make_at_base(kind_, c, k.index, c->run.base));
        c->published = 1;
        return;
    }
    for (; c->published < complete; ++c->published)
        map.set(c->run.base + std::size_t{c->published} * page_size,
                page_entry::make(kind_, c, k.index, c->published));
}

block_list chunk_set::take(const class_info& k, std::uint32_t n, pagemap& map) noexcept {
    block_list out;
    while (out.count < n && avail_ != nullptr) {
        chunk* c = avail_;
        if (c == spare_) spare_ = nullptr;
        while (out.count < n && c->free_count > 0) {
            void* p = c->free_list;
            c->free_list = track::read_link(p);
            --c->free_count;
            out.push(p);
        }
        carve(c, k, n, out, map);
        if (c->free_count == 0 && c->carved == k.chunk_blocks) unlink(c);
    }
    idle_blocks_ -= out.count;
    return out;
}

chunk* chunk_set::owner(const void* p, const class_info& k, const pagemap& map) const noexcept {
    const page_entry e = map.find(p);
    if (e.kind() != kind_ || e.cls() != k.index) return nullptr;
    if (!is_chunk_block_start(e, k, p)) return nullptr;
    return e.record<chunk>();
}

void chunk_set::give_back(void* p, const class_info& k, pagemap& map,
                          retired_chunks& out) noexcept {
    chunk* c = owner(p, k, map);
    BPOOL_CHECK(c != nullptr, "block given back to a chunk set that does not own it");
    track::write_link(p, c->free_list);
    c->free_list = p;
    ++c->free_count;
    ++idle_blocks_;
    if (!c->listed) link(c);
    if (c->out() != 0) return;
    // The chunk is empty: keep it as the spare (retiring the previous spare), so that a class
    // oscillating around a chunk boundary does not carve and enter its pages on every swing.
    if (spare_ != nullptr && spare_ != c) retire(spare_, k, map, out);
    spare_ = c;
}

void chunk_set::release_spare(const class_info& k, pagemap& map, retired_chunks& out) noexcept {
    if (spare_ != nullptr) retire(std::exchange(spare_, nullptr), k, map, out);
}

void chunk_set::retire(chunk* c, const class_info& k, pagemap& map, retired_chunks& out) noexcept {
    BPOOL_ASSERT(c->out() == 0);
    if (c->listed) unlink(c);
    list_unlink<&chunk::all_prev, &chunk::all_next>(all_, c);
    --count_;
    // Entries go before the pages: a lookup that still finds one names a chunk that is going,
    // which only a pointer the caller no longer owns can do.
    for (std::uint32_t i = 0; i < c->published; ++i)
        map.clear(c->run.base + std::size_t{i} * page_size);
    idle_blocks_ -= k.chunk_blocks;
    out.add(c);
}

void chunk_set::destroy() noexcept {
    for (chunk* c = std::exchange(all_, nullptr); c != nullptr;)
        meta::destroy(std::exchange(c, c->all_next));
    avail_ = spare_ = nullptr;
    idle_blocks_ = count_ = 0;
}

}  // namespace bpool::detail
