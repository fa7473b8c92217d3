#include <bit>
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

void* mimalloc_resource::do_allocate(std::size_t bytes, std::size_t alignment) {
    if (!std::has_single_bit(alignment))
        throw std::invalid_argument("bpool::mimalloc_resource: alignment is not a power of two");
    void* p = mi_malloc_aligned(bytes, alignment);
    if (p == nullptr) throw std::bad_alloc();
    return p;
}

void mimalloc_resource::do_deallocate(void* p, std::size_t bytes, std::size_t alignment) {
    mi_free_size_aligned(p, bytes, alignment);
}

bool mimalloc_resource::do_is_equal(const std::pmr::memory_resource& other) const noexcept {
    return dynamic_cast<const mimalloc_resource*>(&other) != nullptr;
}

}  // namespace bpool
