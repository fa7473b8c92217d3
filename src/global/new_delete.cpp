// Layer 10: the replaceable global operator new and delete, every form, on the process-wide pool
// (global_pool()). Linked into a program as bpool::new_delete, or loaded into an unmodified one
// as libbpool_preload.so. A failed allocation calls the installed new_handler and retries, as the
// standard requires; with none it throws what the pool threw (std::bad_alloc, or
// bpool::capacity_exceeded at the cap); the nothrow forms return nullptr instead.
#include <cstddef>
#include <new>

#include "global/global_pool.hpp"

namespace {

constexpr std::size_t default_alignment = __STDCPP_DEFAULT_NEW_ALIGNMENT__;

// The failure path: the new_handler loop. Out of line, so that the operators stay small.
[[gnu::noinline, gnu::cold]] void* retry_with_handler(std::size_t bytes, std::size_t alignment) {
    for (;;) {
        try {
            return bpool::detail::global_pool_fast().allocate(bytes, alignment);
        } catch (const std::bad_alloc&) {
            const std::new_handler handler = std::get_new_handler();
            if (handler == nullptr) throw;
            handler();  // frees memory, installs another handler, or throws
        }
    }
}

void* allocate(std::size_t bytes, std::size_t alignment) {
    // operator new(0) returns a distinct block: the pool's smallest.
    if (bytes == 0) bytes = 1;
    try {
        return bpool::detail::global_pool_fast().allocate(bytes, alignment);
    } catch (const std::bad_alloc&) {
        if (std::get_new_handler() == nullptr) throw;
    }
    return retry_with_handler(bytes, alignment);
}

void* allocate_nothrow(std::size_t bytes, std::size_t alignment) noexcept {
    try {
        return allocate(bytes, alignment);
    } catch (...) {
        return nullptr;
    }
}

void deallocate(void* p) noexcept {
    if (p != nullptr) bpool::detail::global_pool_fast().deallocate_unsized(p);
}

void deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept {
    if (p != nullptr)
        bpool::detail::global_pool_fast().deallocate(p, bytes == 0 ? 1 : bytes, alignment);
}

}  // namespace

// clang-format off
void* operator new(std::size_t n) { return allocate(n, default_alignment); }
void* operator new[](std::size_t n) { return allocate(n, default_alignment); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return allocate_nothrow(n, default_alignment); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return allocate_nothrow(n, default_alignment); }
void* operator new(std::size_t n, std::align_val_t a) { return allocate(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return allocate(n, static_cast<std::size_t>(a)); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept { return allocate_nothrow(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept { return allocate_nothrow(n, static_cast<std::size_t>(a)); }

void operator delete(void* p) noexcept { deallocate(p); }
void operator delete[](void* p) noexcept { deallocate(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { deallocate(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { deallocate(p); }
void operator delete(void* p, std::size_t n) noexcept { deallocate(p, n, default_alignment); }
void operator delete[](void* p, std::size_t n) noexcept { deallocate(p, n, default_alignment); }
void operator delete(void* p, std::align_val_t) noexcept { deallocate(p); }
void operator delete[](void* p, std::align_val_t) noexcept { deallocate(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { deallocate(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { deallocate(p); }
void operator delete(void* p, std::size_t n, std::align_val_t a) noexcept { deallocate(p, n, static_cast<std::size_t>(a)); }
void operator delete[](void* p, std::size_t n, std::align_val_t a) noexcept { deallocate(p, n, static_cast<std::size_t>(a)); }
// clang-format on
