#include "central.hpp"

namespace bpool::detail {

block_list central_list::take(const class_info& k, std::uint32_t n, upstream_source& up,
                              central_totals& totals) {
    std::lock_guard lock(mutex_);
    block_list out;
    if (!list_.empty()) {
        out = list_.take_front(n);
    } else {
        const std::size_t before = chunks_.idle_blocks();
        out = chunks_.take(k, n, up);
        // A new chunk adds its blocks to the idle count before they leave; count the net.
        const std::size_t added = chunks_.idle_blocks() + out.count - before;
        totals.idle_bytes.fetch_add(added * k.size, std::memory_order_relaxed);
    }
    totals.idle_bytes.fetch_sub(out.count * std::size_t{k.size}, std::memory_order_relaxed);
    return out;
}

std::size_t central_list::shrink_to(const class_info& k, std::uint32_t keep,
                                    upstream_source& up) noexcept {
    std::size_t released = 0;
    while (list_.count > keep)
        released += chunks_.give_back(list_.pop(), k, up);
    return released;
}

std::size_t central_list::put(const class_info& k, block_list blocks, std::uint32_t keep,
                              upstream_source& up, central_totals& totals) noexcept {
    std::lock_guard lock(mutex_);
    totals.idle_bytes.fetch_add(blocks.count * std::size_t{k.size}, std::memory_order_relaxed);
    list_.splice(blocks);
    const std::size_t released = shrink_to(k, keep, up);
    totals.idle_bytes.fetch_sub(released, std::memory_order_relaxed);
    return released;
}

std::size_t central_list::trim(const class_info& k, upstream_source& up,
                               central_totals& totals) noexcept {
    std::lock_guard lock(mutex_);
    const std::size_t released = shrink_to(k, 0, up) + chunks_.release_spare(k, up);
    totals.idle_bytes.fetch_sub(released, std::memory_order_relaxed);
    return released;
}

void central_list::destroy(const class_info& k, upstream_source& up) noexcept {
    std::lock_guard lock(mutex_);
    list_ = {};  // its blocks live inside the chunks
    chunks_.destroy(k, up);
}

central_idle central_list::idle() const noexcept {
    std::lock_guard lock(mutex_);
    return {list_.count, chunks_.idle_blocks()};
}

bool central_list::owns(const void* p, const class_info& k) noexcept {
    std::lock_guard lock(mutex_);
    return chunks_.owner(p, k) != nullptr;
}

}  // namespace bpool::detail
