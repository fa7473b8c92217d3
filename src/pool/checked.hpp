// The checked build's registry of live blocks: every block handed out is recorded with the size
// and alignment it was requested with, so that a deallocation can be told apart as correct, a
// double free, a wrong size or alignment, or a pointer the pool never handed out, and reported
// with a clear message before anything is corrupted. Each record also keeps the return addresses
// of the stack that allocated the block (glibc's backtrace), which the leak report at the pool's
// destruction prints. Compiled to nothing without BPOOL_CHECKED.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>

#include "base/track.hpp"
#include "meta/ptr_map.hpp"

namespace bpool::detail {

/// How many return addresses of its allocating stack a live block's record keeps (checked build).
inline constexpr std::size_t alloc_frames = 12;

/// What the registry knows of a live block.
struct live_record {
    std::size_t bytes = 0;
    std::size_t align = 0;
    std::size_t block = 0;  // the block size it costs (class size, or direct size)
#if BPOOL_CHECKED
    std::size_t frames = 0;          // how many of `stack` are set
    void* stack[alloc_frames] = {};  // the allocating stack, innermost first, from the caller
#endif
};

/// The diagnosis of a deallocation.
enum class free_verdict { ok, not_live, wrong_size };

#if BPOOL_CHECKED
/// The public entry points that hand a block out (pool_resource.cpp) note their own return
/// address before the block is registered: the stack recorded for it then starts at their caller,
/// whatever bpool's frames in between were inlined or tail-called into.
void note_allocation_caller(void* return_address) noexcept;

class checked_registry {
  public:
    /// Makes sure that backtrace() is usable in the pool's paths (see checked.cpp), and reads
    /// BPOOL_CHECKED_STACKS: 0 records only each block's allocating call site, without unwinding
    /// (about 5 us an allocation with 12 frames; docs/decisions.md).
    checked_registry() noexcept;
    /// Records block `p` with the stack that allocated it (captured here, before the lock); a
    /// block already live is an internal error (reported, aborts).
    void add(void* p, const live_record& r) noexcept;
    /// Removes `p` if it is live and was requested with a size and alignment that cost the same
    /// block (any, if `block` is 0: an unsized free); else leaves everything as it is and says
    /// why (`*was` gets the record, if any).
    free_verdict remove(void* p, std::size_t block, std::size_t align, live_record* was) noexcept;
    /// Writes to stderr, if blocks are live, one line: their count and bytes, and how many of
    /// each block size (largest counts first), so that a leak can be traced to its size; then the
    /// allocating stacks of the leaked blocks, identical stacks together, the first few only.
    void report_leaks() const noexcept;
    /// fork(): the prepare handler takes the lock (so that no thread holds it across the fork);
    /// the parent and child handlers release it (the child's copy is owned by its only thread).
    void lock_for_fork() noexcept { mutex_.lock(); }
    /// See lock_for_fork.
    void unlock_after_fork() noexcept { mutex_.unlock(); }

  private:
    /// report_leaks' second part (lock held): the stacks.
    void report_leak_stacks() const noexcept;

    mutable std::mutex mutex_;
    mutable ptr_map<live_record> live_;
    bool unwind_ = true;  // record whole stacks (else the call site alone)
};
#else
inline void note_allocation_caller(void*) noexcept {}

class checked_registry {
  public:
    void add(void*, const live_record&) noexcept {}
    free_verdict remove(void*, std::size_t, std::size_t, live_record*) noexcept {
        return free_verdict::ok;
    }
    void report_leaks() const noexcept {}
    void lock_for_fork() noexcept {}
    void unlock_after_fork() noexcept {}
};
#endif

}  // namespace bpool::detail
