// Layer 0 (base): bump, the one way a counter that a single thread writes is changed.
#pragma once

#include <atomic>

#include "base/check.hpp"
#include "base/track.hpp"

namespace bpool::detail {

// Adds `delta` to a counter or credit that only its owner thread writes (others only read it):
// a load and a store, never a read-modify-write, since no other thread can write in between.
// Compilers never fuse atomic accesses, so on x86-64 without a sanitizer the pair is written as one
// add-to-memory instruction: not a locked one, and a reader still sees the old value or the new
// (an aligned store is single-copy atomic; x86 orders every store as a release). Sanitizers (which
// must see the accesses) and other targets take the atomic load and store.
template <class T>
BPOOL_INLINE void bump(std::atomic<T>& a, T delta,
                       std::memory_order order = std::memory_order_relaxed) noexcept {
#if defined(__x86_64__) && !BPOOL_ASAN && !BPOOL_TSAN
    static_assert(sizeof(std::atomic<T>) == sizeof(T) && (sizeof(T) == 4 || sizeof(T) == 8));
    T& raw = *reinterpret_cast<T*>(&a);
    if (order == std::memory_order_relaxed) {
        if constexpr (sizeof(T) == 8)
            asm volatile("addq %1, %0" : "+m"(raw) : "er"(delta));
        else
            asm volatile("addl %1, %0" : "+m"(raw) : "er"(delta));
    } else {
        // A release: the compiler must not move earlier accesses past it ("memory").
        if constexpr (sizeof(T) == 8)
            asm volatile("addq %1, %0" : "+m"(raw) : "er"(delta) : "memory");
        else
            asm volatile("addl %1, %0" : "+m"(raw) : "er"(delta) : "memory");
    }
#else
    a.store(a.load(std::memory_order_relaxed) + delta, order);
#endif
}

}  // namespace bpool::detail
