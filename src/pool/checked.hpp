// The checked build's registry of live blocks: every block handed out is recorded with the size
// and alignment it was requested with, so that a deallocation can be told apart as correct, a
// double free, a wrong size or alignment, or a pointer the pool never handed out, and reported
// with a clear message before anything is corrupted. Compiled to nothing without BPOOL_CHECKED.
#pragma once

#include <cstddef>
#include <mutex>

#include "base/track.hpp"
#include "meta/ptr_map.hpp"

namespace bpool::detail {

/// What the registry knows of a live block.
struct live_record {
    std::size_t bytes = 0;
    std::size_t align = 0;
    std::size_t block = 0;  // the block size it costs (class size, or direct size)
};

/// The diagnosis of a deallocation.
enum class free_verdict { ok, not_live, wrong_size };

#if BPOOL_CHECKED
class checked_registry {
  public:
    /// Records block `p`; a block already live is an internal error (reported, aborts).
    void add(void* p, const live_record& r) noexcept;
    /// Removes `p` if it is live and was requested with a size and alignment that cost the same
    /// block (any, if `block` is 0: an unsized free); else leaves everything as it is and says
    /// why (`*was` gets the record, if any).
    free_verdict remove(void* p, std::size_t block, std::size_t align, live_record* was) noexcept;
    /// Writes to stderr, if blocks are live, one line: their count and bytes, and how many of
    /// each block size (largest counts first), so that a leak can be traced to its size.
    void report_leaks() const noexcept;
    /// fork(): the prepare handler takes the lock (so that no thread holds it across the fork);
    /// the parent and child handlers release it (the child's copy is owned by its only thread).
    void lock_for_fork() noexcept { mutex_.lock(); }
    /// See lock_for_fork.
    void unlock_after_fork() noexcept { mutex_.unlock(); }

  private:
    mutable std::mutex mutex_;
    mutable ptr_map<live_record> live_;
};
#else
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
