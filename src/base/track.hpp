// The one place where bpool meets checking tools. Pool code calls these hooks; whether they fill
// patterns, poison memory for AddressSanitizer or do nothing is decided here alone, so no other
// file names a tool. With BPOOL_CHECKED off and no sanitizer, every hook is an empty inline.
//
// Under ASan (checked or not) idle (cached) blocks are poisoned, so a use after free of a pooled
// block is reported by ASan itself. Checked build (BPOOL_CHECKED): blocks handed out are filled
// with 0xCD, blocks given back with 0xDD; without ASan, a block's 0xDD fill is verified when it is
// handed out again, so a write after free is reported then. The first word of an idle block links
// it into a free list; read_link/write_link unpoison just that word for the duration of the access.
//
// Valgrind build (BPOOL_VALGRIND): memcheck is told about every pooled block through client
// requests: about 13 instructions each, that do nothing when the program is not under valgrind
// (docs/decisions.md, 2026-12-02: +79 instructions per allocate+deallocate pair, so off by
// default). A block handed out is MALLOCLIKE (its block size, what usable_size() reports), one
// given back is FREELIKE, so a use after free, a double free and a leak are reported with their
// stacks; idle and uncarved memory is NOACCESS, and the pool's own accesses to an idle block's link
// word make just that word accessible. Blocks served by upstream directly are left to upstream
// (malloc is tracked by memcheck already), so nothing is described twice. Pointers that the pool's
// bookkeeping keeps to the start of memory where a block may start are stored hidden (hidden_ptr),
// since memcheck's leak scan reads the bookkeeping and would otherwise count them as references to
// leaked blocks; an extent's upstream allocation is shrunk, in memcheck's view, to a few bytes in
// front of it (region_front), so that memcheck names the pool's blocks, not upstream's, in its
// reports.
#pragma once

#include <algorithm>
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

#ifndef BPOOL_VALGRIND
#define BPOOL_VALGRIND 0
#endif
#if BPOOL_VALGRIND
#include <valgrind/memcheck.h>
#endif

#if BPOOL_ASAN
extern "C" void __asan_poison_memory_region(void const volatile* addr, std::size_t size);
extern "C" void __asan_unpoison_memory_region(void const volatile* addr, std::size_t size);
#endif

namespace bpool::detail::track {

inline constexpr bool checked = BPOOL_CHECKED != 0;
inline constexpr bool asan = BPOOL_ASAN != 0;
inline constexpr bool tsan = BPOOL_TSAN != 0;
inline constexpr bool valgrind = BPOOL_VALGRIND != 0;
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

// memcheck's view of [p, p+n): inaccessible, accessible but undefined, accessible and defined
// (valgrind build only; otherwise nothing).
BPOOL_INLINE void mc_noaccess(const void* p, std::size_t n) noexcept {
#if BPOOL_VALGRIND
    (void)VALGRIND_MAKE_MEM_NOACCESS(p, n);
#else
    (void)p, (void)n;
#endif
}
BPOOL_INLINE void mc_undefined(const void* p, std::size_t n) noexcept {
#if BPOOL_VALGRIND
    (void)VALGRIND_MAKE_MEM_UNDEFINED(p, n);
#else
    (void)p, (void)n;
#endif
}
BPOOL_INLINE void mc_defined(const void* p, std::size_t n) noexcept {
#if BPOOL_VALGRIND
    (void)VALGRIND_MAKE_MEM_DEFINED(p, n);
#else
    (void)p, (void)n;
#endif
}

/// Returns the free-list link stored in the first word of idle block `p`.
BPOOL_INLINE void* read_link(void* p) noexcept {
    if constexpr (asan) unpoison(p, sizeof(void*));
    // The pool wrote the link itself; memcheck forgot that when the word became NOACCESS.
    mc_defined(p, sizeof(void*));
    void* next;
    std::memcpy(&next, p, sizeof next);
    mc_noaccess(p, sizeof(void*));
    if constexpr (asan) poison(p, sizeof(void*));
    return next;
}

/// Stores free-list link `next` in the first word of idle block `p`.
BPOOL_INLINE void write_link(void* p, void* next) noexcept {
    if constexpr (asan) unpoison(p, sizeof(void*));
    mc_undefined(p, sizeof(void*));
    std::memcpy(p, &next, sizeof next);
    mc_noaccess(p, sizeof(void*));
    if constexpr (asan) poison(p, sizeof(void*));
}

/// A block of `size` bytes that was handed out is given back. Checked: fill with 0xDD (the link
/// word is written afterwards). ASan: poison it. Valgrind: FREELIKE (memcheck reports a block
/// given back twice here, and makes it NOACCESS).
BPOOL_INLINE void block_idle(void* p, std::size_t size) noexcept {
    if constexpr (checked) {
        unpoison(p, size);
        std::memset(p, free_fill, size);
    }
    poison(p, size);
#if BPOOL_VALGRIND
    VALGRIND_FREELIKE_BLOCK(p, 0);
#endif
}

/// A block of `size` bytes is carved from its chunk: idle, and never handed out yet (so no
/// FREELIKE). Otherwise as block_idle.
BPOOL_INLINE void block_carved(void* p, std::size_t size) noexcept {
    if constexpr (checked) {
        unpoison(p, size);
        mc_undefined(p, size);
        std::memset(p, free_fill, size);
    }
    poison(p, size);
    mc_noaccess(p, size);
}

/// A block of `size` bytes is handed out. Checked: verify (without ASan) that nothing wrote to it
/// while it was idle, then fill with 0xCD. Under ASan just unpoison it.
void verify_idle_fill(const void* p, std::size_t size) noexcept;
BPOOL_INLINE void block_live(void* p, std::size_t size) noexcept {
    if constexpr (checked) {
        unpoison(p, size);
        mc_defined(p, size);  // the pool's own fill, read and rewritten here
        if constexpr (!asan) verify_idle_fill(p, size);
        std::memset(p, alloc_fill, size);
    } else if constexpr (asan) {
        unpoison(p, size);
    }
#if BPOOL_VALGRIND
    // The whole block: the caller may use it all (usable_size(), allocate_at_least()).
    VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, 0);
#endif
}

/// A region (a new extent) arrives from upstream at `start`, its pages `front` bytes further on
/// (region_front): nothing in it is a block yet (ASan: poison it; valgrind: NOACCESS).
void shrink_to_front(void* start, std::size_t front, std::size_t bytes) noexcept;
BPOOL_INLINE void region_reserved(void* start, std::size_t front, std::size_t bytes) noexcept {
    poison(static_cast<char*>(start) + front, bytes);
    if constexpr (valgrind) shrink_to_front(start, front, bytes);
}

/// The region reserved at `start` is about to go back to upstream (before region_released).
void grow_from_front(void* start, std::size_t front, std::size_t bytes) noexcept;
BPOOL_INLINE void region_returning(void* start, std::size_t front, std::size_t bytes) noexcept {
    if constexpr (valgrind) grow_from_front(start, front, bytes);
    (void)start, (void)front, (void)bytes;
}

/// A region goes back to upstream: it must be accessible to upstream again.
BPOOL_INLINE void region_released(void* p, std::size_t size) noexcept {
    unpoison(p, size);
    mc_undefined(p, size);
}

/// The pool is destroyed, and region [p, p+size) with it, blocks still live in it included
/// (valgrind: they are FREELIKE'd, so that memcheck keeps no block inside memory that upstream may
/// reuse, and reports a later access as a use after free).
void abandon_live_blocks(void* p, std::size_t size) noexcept;
BPOOL_INLINE void region_destroyed(void* p, std::size_t size) noexcept {
    if constexpr (valgrind) abandon_live_blocks(p, size);
    (void)p, (void)size;
}

/// Bytes to ask upstream for in front of a region of alignment `align` (0 but under valgrind).
/// memcheck then sees the upstream allocation as those bytes alone (shrink_to_front): an address
/// in the region is described by the pool's block there, not as inside upstream's big block; no
/// block of the pool sits inside one of upstream's (which memcheck cannot have when the upstream is
/// another pool); and the record's pointer to that start (region_anchor) keeps the allocation
/// reachable without pointing at a block the program may have leaked.
BPOOL_INLINE std::size_t region_front(std::size_t align) noexcept {
#if BPOOL_VALGRIND
    // At least a page: what memcheck keeps of the allocation (16 bytes, shrink_to_front) must be
    // far enough from the first block for its redzone not to cover that block.
    return RUNNING_ON_VALGRIND ? std::max<std::size_t>(align, 4096) : 0;
#else
    (void)align;
    return 0;
#endif
}

/// A pointer held by the pool's bookkeeping to where a block may start (a chunk's, an extent's,
/// a direct block's base). Valgrind build: stored complemented, so that memcheck's leak scan of
/// the bookkeeping (its own mappings, a root) does not count it as a reference to a leaked block.
#if BPOOL_VALGRIND
template <class T>
class hidden_ptr {
  public:
    hidden_ptr(T* p = nullptr) noexcept : bits_(~reinterpret_cast<std::uintptr_t>(p)) {}
    operator T*() const noexcept { return reinterpret_cast<T*>(~bits_); }

  private:
    std::uintptr_t bits_;
};
#else
template <class T>
using hidden_ptr = T*;
#endif

/// What a region's record keeps of the upstream allocation that holds it, when region_front()
/// put bytes in front of it (valgrind build only; empty otherwise).
struct region_anchor {
#if BPOOL_VALGRIND
    void* start = nullptr;  // plain: keeps what memcheck sees of the allocation reachable
    std::size_t front = 0;
#endif
    void set(void* upstream_start, std::size_t front_bytes) noexcept {
#if BPOOL_VALGRIND
        start = upstream_start, front = front_bytes;
#else
        (void)upstream_start, (void)front_bytes;
#endif
    }
    /// The bytes in front of the region.
    [[nodiscard]] std::size_t bytes() const noexcept {
#if BPOOL_VALGRIND
        return front;
#else
        return 0;
#endif
    }
};

}  // namespace bpool::detail::track
