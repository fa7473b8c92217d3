// Asymmetric memory barriers for the thread-cache handshake (see thread_cache.hpp).
//
// The owner of a thread cache runs its fast path with a *light* barrier, a compiler-only fence,
// between announcing that it is inside an operation and reading the pool's flags. A thread that
// needs to touch another thread's cache raises a flag and then issues a *heavy* barrier, which
// forces a full memory barrier on every running thread of the process (Linux membarrier
// PRIVATE_EXPEDITED). Together they order "owner announces / quiescer reads" against "quiescer
// raises / owner reads", as a full fence on both sides would, while the fast path pays nothing.
//
// Where the heavy barrier is unavailable (old kernel, seccomp filter, gVisor, valgrind, another
// OS, or BPOOL_MEMBARRIER=0 in the environment) the light barrier falls back to a real
// sequentially consistent fence, decided once at startup (pool_stats::fenced_fast_path).
//
// ThreadSanitizer models neither fences nor membarrier. Under it, the owner announces with a
// seq_cst store and reads the flags with a seq_cst load, the quiescer raises with a seq_cst RMW and
// reads with a seq_cst load: Dekker's pattern in plain C++ atomics, which TSan understands.
#pragma once

#include <atomic>

#include "base/check.hpp"
#include "base/track.hpp"

namespace bpool::detail {

/// Memory orders of the owner's announcement and flag read (see above).
inline constexpr std::memory_order announce_order =
    track::tsan ? std::memory_order_seq_cst : std::memory_order_relaxed;
inline constexpr std::memory_order flags_order =
    track::tsan ? std::memory_order_seq_cst : std::memory_order_acquire;

/// True when heavy_barrier() is a real process-wide barrier (membarrier registered). Read by slow
/// paths only: a pool copies it into its flags word (flag_fenced) when it is created and after a
/// fork.
extern bool heavy_barrier_available;

/// Registers for expedited membarrier once per process; sets heavy_barrier_available. Thread-safe.
void init_heavy_barrier() noexcept;

/// In a child of fork(): registers the child (a new process) again, or falls back to fences if
/// that fails. Safe there because the child has one thread.
void reinit_heavy_barrier_after_fork() noexcept;

/// The fast path's side of the handshake: a compiler-only fence. Where the heavy barrier is
/// unavailable, the pool's flags word carries flag_fenced and the owner adds a full fence itself
/// (thread_cache::enter_fast), so that the fast path reads no global to decide.
BPOOL_INLINE void light_barrier() noexcept {
#if !BPOOL_TSAN
    std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
}

/// The owner's full fence where the heavy barrier is unavailable (flag_fenced). Under TSan none:
/// the announcement and the flag read are seq_cst already, and TSan rejects fences.
BPOOL_INLINE void fallback_fence() noexcept {
#if !BPOOL_TSAN
    std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

/// The quiescer's side: a full barrier on every thread of the process (or, in the fallback, on the
/// calling thread, the other side then fencing for itself).
void heavy_barrier() noexcept;

}  // namespace bpool::detail
