#include "chunk.hpp"

#include <new>

#include "meta.hpp"

namespace bpool::detail {

namespace {
std::size_t chunk_bytes(const class_info& k) noexcept {
    return std::size_t{k.chunk_blocks} * k.size;
}
}  // namespace

void chunk_set::link(chunk* c) noexcept {
    c->prev = nullptr;
    c->next = avail_;
    if (avail_) avail_->prev = c;
    avail_ = c;
    c->listed = true;
}

void chunk_set::unlink(chunk* c) noexcept {
    if (c->prev)
        c->prev->next = c->next;
    else
        avail_ = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = nullptr;
    c->listed = false;
}

chunk* chunk_set::new_chunk(const class_info& k, upstream_source& up) {
    auto* c = meta::create<chunk>();
    try {
        // So that the insert below cannot fail after upstream gave memory.
        if (k.chunk_blocks > 1)
            ranges_.reserve_one();
        else
            singles_.reserve_one();
        c->base = static_cast<std::byte*>(up.allocate(chunk_bytes(k), k.align));
    } catch (...) {
        meta::destroy(c);
        throw;
    }
    track::region_reserved(c->base, chunk_bytes(k));
    if (k.chunk_blocks > 1)  // cannot throw: room was reserved above
        ranges_.insert(c->base, chunk_bytes(k), c);
    else
        singles_.insert(c->base, c);
    idle_blocks_ += k.chunk_blocks;
    link(c);
    return c;
}

block_list chunk_set::take(const class_info& k, std::uint32_t n, upstream_source& up) {
    block_list out;
    while (out.count < n) {
        chunk* c = avail_;
        if (c == nullptr) {
            if (out.count > 0) break;  // a partial refill beats a new chunk that may fail
            c = new_chunk(k, up);
        }
        if (c == spare_) spare_ = nullptr;
        while (out.count < n && c->free_count > 0) {
            void* p = c->free_list;
            c->free_list = track::read_link(p);
            --c->free_count;
            out.push(p);
        }
        while (out.count < n && c->carved < k.chunk_blocks) {
            void* p = c->base + std::size_t{c->carved++} * k.size;
            track::block_idle(p, k.size);
            out.push(p);
        }
        if (c->free_count == 0 && c->carved == k.chunk_blocks) unlink(c);
    }
    idle_blocks_ -= out.count;
    return out;
}

chunk* chunk_set::owner(const void* p, const class_info& k) noexcept {
    const auto addr = reinterpret_cast<std::uintptr_t>(p);
    chunk* c;
    if (k.chunk_blocks > 1) {
        c = ranges_.find(p, chunk_bytes(k));
    } else {
        chunk** found = singles_.find(p);
        c = found != nullptr ? *found : nullptr;
    }
    if (c == nullptr) return nullptr;
    const std::size_t offset = addr - reinterpret_cast<std::uintptr_t>(c->base);
    if (offset % k.size != 0 || offset / k.size >= c->carved) return nullptr;
    return c;
}

std::size_t chunk_set::give_back(void* p, const class_info& k, upstream_source& up) noexcept {
    chunk* c = owner(p, k);
    BPOOL_CHECK(c != nullptr, "block given back to a chunk set that does not own it");
    track::write_link(p, c->free_list);
    c->free_list = p;
    ++c->free_count;
    ++idle_blocks_;
    if (!c->listed) link(c);
    if (c->out() != 0) return 0;
    // The chunk is empty: keep it as the spare (releasing the previous spare), so that a class
    // oscillating around a chunk boundary does not call upstream on every swing.
    std::size_t released = 0;
    if (spare_ != nullptr && spare_ != c) {
        released = chunk_bytes(k);
        release(spare_, k, up);
    }
    spare_ = c;
    return released;
}

std::size_t chunk_set::release_spare(const class_info& k, upstream_source& up) noexcept {
    if (spare_ == nullptr) return 0;
    release(std::exchange(spare_, nullptr), k, up);
    return chunk_bytes(k);
}

void chunk_set::release(chunk* c, const class_info& k, upstream_source& up) noexcept {
    BPOOL_ASSERT(c->out() == 0);
    if (c->listed) unlink(c);
    if (k.chunk_blocks > 1)
        ranges_.erase(c->base, chunk_bytes(k));
    else
        singles_.erase(c->base);
    idle_blocks_ -= k.chunk_blocks;
    up.deallocate(c->base, chunk_bytes(k), k.align);
    meta::destroy(c);
}

void chunk_set::destroy(const class_info& k, upstream_source& up) noexcept {
    auto release_whole = [&](chunk* c) {
        up.deallocate(c->base, chunk_bytes(k), k.align);
        meta::destroy(c);
    };
    ranges_.for_each(chunk_bytes(k), release_whole);
    singles_.for_each([&](void*, chunk*& c) { release_whole(c); });
    ranges_.clear();
    singles_.clear();
    avail_ = spare_ = nullptr;
    idle_blocks_ = 0;
}

}  // namespace bpool::detail
