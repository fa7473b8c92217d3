// The one place where bpool meets checking tools. Pool code calls these hooks; whether they fill
// patterns, poison memory for AddressSanitizer or do nothing is decided here alone, so no other
// file names a tool. With BPOOL_CHECKED off and no sanitizer, every hook is an empty inline.
//
// Under ASan (checked or not) idle (cached) blocks are poisoned, so a use after free of a pooled
// block is reported by ASan itself. Checked build (BPOOL_CHECKED): blocks handed out are filled
// with 0xCD, blocks given back with 0xDD; without ASan, a block's 0xDD fill is verified when it is
// handed out again, so a write after free is reported then. The first word of an idle block links
// it into a free list; read_link/write_link unpoison just that word for the duration of the access.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "base/check.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define BPOOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BPOOL_ASAN 1
#endif
#endif
#ifndef BPOOL_ASAN
#define BPOOL_ASAN 0
#endif

#if defined(__SANITIZE_THREAD__)
#define BPOOL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BPOOL_TSAN 1
#endif
#endif
#ifndef BPOOL_TSAN
#define BPOOL_TSAN 0
#endif

#ifndef BPOOL_CHECKED
#define BPOOL_CHECKED 0
#endif

#if BPOOL_ASAN
extern "C" void __asan_poison_memory_region(void const volatile* addr, std::size_t size);
extern "C" void __asan_unpoison_memory_region(void const volatile* addr, std::size_t size);
#endif

namespace bpool::detail::track {

inline constexpr bool checked = BPOOL_CHECKED != 0;
inline constexpr bool asan = BPOOL_ASAN != 0;
inline constexpr bool tsan = BPOOL_TSAN != 0;
inline constexpr unsigned char alloc_fill = 0xCD;
inline constexpr unsigned char free_fill = 0xDD;

/// Makes [p, p+n) inaccessible to the program (ASan only; otherwise nothing).
BPOOL_INLINE void poison(const void* p, std::size_t n) noexcept {
#if BPOOL_ASAN
    __asan_poison_memory_region(p, n);
#else
    (void)p, (void)n;
#endif
}

/// Makes [p, p+n) accessible again (ASan only; otherwise nothing).
BPOOL_INLINE void unpoison(const void* p, std::size_t n) noexcept {
#if BPOOL_ASAN
    __asan_unpoison_memory_region(p, n);
#else
    (void)p, (void)n;
#endif
}

/// Returns the free-list link stored in the first word of idle block `p`.
BPOOL_INLINE void* read_link(void* p) noexcept {
    if constexpr (asan) unpoison(p, sizeof(void*));
    void* next;
    std::memcpy(&next, p, sizeof next);
    if constexpr (asan) poison(p, sizeof(void*));
    return next;
}

/// Stores free-list link `next` in the first word of idle block `p`.
BPOOL_INLINE void write_link(void* p, void* next) noexcept {
    if constexpr (asan) unpoison(p, sizeof(void*));
    std::memcpy(p, &next, sizeof next);
    if constexpr (asan) poison(p, sizeof(void*));
}

/// A block of `size` bytes becomes idle (given back to the pool, or freshly carved and not yet
/// handed out). Checked: fill with 0xDD (the link word is written afterwards). ASan: poison it.
BPOOL_INLINE void block_idle(void* p, std::size_t size) noexcept {
    if constexpr (checked) {
        unpoison(p, size);
        std::memset(p, free_fill, size);
    }
    poison(p, size);
}

/// A block of `size` bytes is handed out. Checked: verify (without ASan) that nothing wrote to it
/// while it was idle, then fill with 0xCD. Under ASan just unpoison it.
void verify_idle_fill(const void* p, std::size_t size) noexcept;
BPOOL_INLINE void block_live(void* p, std::size_t size) noexcept {
    if constexpr (checked) {
        unpoison(p, size);
        if constexpr (!asan) verify_idle_fill(p, size);
        std::memset(p, alloc_fill, size);
    } else if constexpr (asan) {
        unpoison(p, size);
    }
}

/// A region (a new chunk) arrives from upstream: nothing in it is a block yet (ASan: poison it).
BPOOL_INLINE void region_reserved(void* p, std::size_t size) noexcept {
    poison(p, size);
}

/// A region goes back to upstream: it must be accessible to upstream again.
BPOOL_INLINE void region_released(void* p, std::size_t size) noexcept {
    unpoison(p, size);
}

}  // namespace bpool::detail::track
