// Layer 1 (below everything): memory for the pool's own bookkeeping. Pool cores,
// thread caches, chunk records and the tables of address maps come from here, never from the
// global operator new or malloc: a pool may itself be what operator new returns, and a child of
// fork() must not depend on an allocator whose locks another thread of the parent held.
//
// Small requests (up to `small_limit`) are served from per-size free lists carved from regions the
// OS maps; larger ones are mapped and unmapped one by one. Memory is zero-filled when handed out.
// Thread safety: all functions are thread-safe; the lock is never held across a call to the OS.
#pragma once

#include <cstddef>
#include <new>
#include <utility>

namespace bpool::detail::meta {

/// Every block is aligned to this (a cache line: thread caches rely on it).
inline constexpr std::size_t granule = 64;
/// Requests above this are mapped on their own.
inline constexpr std::size_t small_limit = std::size_t{16} << 10;

/// Returns `bytes` of zero-filled memory aligned to `granule`, or nullptr if the OS refuses.
[[nodiscard]] void* allocate(std::size_t bytes) noexcept;
/// Gives back memory from allocate(bytes).
void deallocate(void* p, std::size_t bytes) noexcept;
/// Bytes mapped for metadata so far (a snapshot).
[[nodiscard]] std::size_t mapped_bytes() noexcept;

/// fork(): the prepare handler takes the metadata lock, parent and child release it.
void lock_for_fork() noexcept;
/// See lock_for_fork.
void unlock_after_fork() noexcept;

/// Constructs a T in metadata memory. Throws std::bad_alloc, or what T's constructor throws.
template <class T, class... Args>
T* create(Args&&... args) {
    static_assert(alignof(T) <= granule);
    void* p = allocate(sizeof(T));
    if (p == nullptr) throw std::bad_alloc();
    try {
        return ::new (p) T(std::forward<Args>(args)...);
    } catch (...) {
        deallocate(p, sizeof(T));
        throw;
    }
}

/// Destroys and frees a T made by create (nullptr: no-op).
template <class T>
void destroy(T* p) noexcept {
    if (p == nullptr) return;
    p->~T();
    deallocate(p, sizeof(T));
}

}  // namespace bpool::detail::meta
