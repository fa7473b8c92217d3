#include <bit>
#include <cstddef>
#include <new>
#include <stdexcept>

#include <bpool/adapters/mimalloc.hpp>

#include <mimalloc.h>

namespace bpool {

mimalloc_resource& mimalloc_resource::instance() noexcept {
    static mimalloc_resource* const r = new mimalloc_resource;  // never destroyed: usable at exit
    return *r;
}

int mimalloc_resource::version() noexcept {
    return mi_version();
}

// mimalloc's plain calls are its fastest (the aligned ones test and round the alignment first).
// mi_malloc aligns a block to a word, and one of 16 bytes or more to 16 (its blocks above a word
// are whole double words): the aligned calls are taken only for what that does not cover.
[[nodiscard]] static bool plain_call_aligns(std::size_t bytes, std::size_t alignment) noexcept {
    return alignment <= alignof(void*) ||
           (alignment <= alignof(std::max_align_t) && bytes >= alignment);
}

void* mimalloc_resource::do_allocate(std::size_t bytes, std::size_t alignment) {
    void* p;
    if (plain_call_aligns(bytes, alignment) && std::has_single_bit(alignment)) {
        p = mi_malloc(bytes);
    } else {
        if (!std::has_single_bit(alignment))
            throw std::invalid_argument(
                "bpool::mimalloc_resource: alignment is not a power of two");
        p = mi_malloc_aligned(bytes, alignment);
    }
    if (p == nullptr) throw std::bad_alloc();
    return p;
}

void mimalloc_resource::do_deallocate(void* p, std::size_t bytes, std::size_t alignment) {
    if (plain_call_aligns(bytes, alignment))
        mi_free_size(p, bytes);
    else
        mi_free_size_aligned(p, bytes, alignment);
}

bool mimalloc_resource::do_is_equal(const std::pmr::memory_resource& other) const noexcept {
    return dynamic_cast<const mimalloc_resource*>(&other) != nullptr;
}

}  // namespace bpool
