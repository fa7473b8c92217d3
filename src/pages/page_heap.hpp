// Layer 3: the page heap. Chunks are runs of whole pages, page-aligned, so that every page of the
// pool belongs to one chunk and its pagemap entry can name it. Runs of `dedicated_pages` or more
// (20 KiB and up) are upstream allocations of their own, aligned as their blocks need (a
// single-block chunk aligned to 16 B starts anywhere: it is entered on the page of its start,
// which no other chunk or direct block can start in). Shorter
// runs (the chunks of the classes up to 2 KiB, one to four pages) would cost as much again in an
// upstream's alignment padding (glibc's memalign of a page takes two), so they share *extents*:
// page-aligned upstream allocations of one page growing to 64 KiB with what the heap holds, from
// which runs are handed out first fit in the extent whose longest free run fits best. Extents stay
// small so that a chunk kept alive by one block holds little besides itself. An extent whose pages
// are all free goes back to upstream, but for one kept as a spare against thrashing
// (release_spare gives it back too).
//
// Thread safety: every member takes the heap's mutex, a leaf lock taken after the central lists'
// (lock order at fork_prepare in pools.cpp); upstream is called with it released.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>

#include "base/track.hpp"
#include "pages/pagemap.hpp"
#include "pages/upstream.hpp"

namespace bpool::detail {

struct extent;

/// A run of pages handed out by the heap, and the extent it belongs to (given back with it).
struct page_run {
    track::hidden_ptr<std::byte> base = nullptr;
    extent* owner = nullptr;
};

class page_heap {
  public:
    /// Runs at least this long are upstream allocations of their own.
    static constexpr std::size_t dedicated_pages = shared_chunk_pages + 1;
    static constexpr std::size_t max_extent_pages = 16;  // 64 KiB

    page_heap(upstream_source& up, pagemap& map) noexcept : up_(up), map_(map) {}
    page_heap(const page_heap&) = delete;
    page_heap& operator=(const page_heap&) = delete;

    /// Returns a run of `pages` (>= 1) pages aligned to `align` (a power of two; a page for runs
    /// that share extents; for dedicated runs what the caller needs: more than a page, or less
    /// for a single block that need not start on a page), whose pagemap leaves are reserved.
    /// Throws what upstream throws, or std::bad_alloc; nothing is kept then.
    page_run allocate(std::size_t pages, std::size_t align = page_size);

    /// Gives back a run from allocate(pages). Returns the bytes that went back to upstream.
    std::size_t deallocate(page_run run, std::size_t pages) noexcept;

    /// Gives the spare empty extent (if any) back to upstream; returns the bytes released.
    std::size_t release_spare() noexcept;

    /// Gives every extent back to upstream, whatever is in use (pool destruction).
    void destroy() noexcept;

    /// Bytes of free pages in the extents (a snapshot).
    [[nodiscard]] std::size_t free_bytes() const noexcept;

    /// fork(): the prepare handler takes the lock; the parent and child handlers release it.
    void lock_for_fork() noexcept { mutex_.lock(); }
    /// See lock_for_fork.
    void unlock_after_fork() noexcept { mutex_.unlock(); }

  private:
    static constexpr unsigned bucket_count = dedicated_pages + 1;

    extent* new_extent(std::size_t pages, std::size_t align);
    [[nodiscard]] page_run take_locked(std::size_t pages) noexcept;
    void file(extent* e) noexcept;    // into the bucket of its longest free run
    void unfile(extent* e) noexcept;  // out of it
    void link_all(extent* e) noexcept;
    void unlink_all(extent* e) noexcept;
    std::size_t release(extent* e) noexcept;  // lock not held; e unlinked from everything

    upstream_source& up_;
    pagemap& map_;
    mutable std::mutex mutex_;
    // Extents with a free run, by the length of their longest (the last bucket: that long or
    // longer); a bit per non-empty bucket.
    extent* buckets_[bucket_count] = {};
    std::uint64_t nonempty_[2] = {};
    extent* all_ = nullptr;    // every extent, dedicated ones included
    extent* spare_ = nullptr;  // an extent with every page free (also in its bucket)
    std::size_t free_pages_ = 0;
    std::size_t extent_bytes_ = 0;  // held in shared extents, for the growth rule
};

}  // namespace bpool::detail
