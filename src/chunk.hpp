// Layer 3: chunks. A chunk is a run of whole pages from the page heap carved into equal blocks of
// one size class (for the classes above 16 KiB, one block). Blocks are carved lazily (a bump
// pointer), so a fresh chunk's memory is touched only as it is used, but always to the end of a
// page: a page's pagemap entry is set once every block that starts in it is carved, so an entry
// means "any block start here is a block of this chunk", and a pointer into a page not yet carved
// finds no entry. A chunk whose blocks are all back goes back to the page heap (one spare empty
// chunk per set is kept against thrashing).
//
// Thread safety: none; each chunk_set is guarded by the lock of its central list.
#pragma once

#include <cstddef>
#include <cstdint>

#include "block_list.hpp"
#include "page_heap.hpp"
#include "pagemap.hpp"
#include "size_classes.hpp"

namespace bpool::detail {

struct alignas(16) chunk {
    page_run run;
    void* free_list = nullptr;     // blocks given back to this chunk
    std::uint32_t free_count = 0;  // length of free_list
    std::uint32_t carved = 0;      // blocks carved so far (the bump pointer)
    std::uint32_t published = 0;   // pages from the start whose pagemap entries are set
    chunk* prev = nullptr;         // links in the set's list of chunks with blocks to give
    chunk* next = nullptr;
    chunk* all_prev = nullptr;  // links in the set's list of every chunk
    chunk* all_next = nullptr;
    bool listed = false;

    /// Blocks of this chunk that are out: live, or idle in a thread cache or central list.
    [[nodiscard]] std::uint32_t out() const noexcept { return carved - free_count; }
};

/// Returns whether `p`, whose page's entry `e` names a chunk of class `k`, is the start of one of
/// its blocks (never a block of the tail past the last one). Reads the pagemap entry only.
[[nodiscard]] inline bool is_chunk_block_start(page_entry e, const class_info& k,
                                               const void* p) noexcept {
    if (e.at_base()) return e.starts_at(p);
    return k.is_block_start(e.chunk_offset(p));
}

/// Where chunks come from and where their pages are recorded.
struct page_source {
    page_heap& heap;
    pagemap& map;
};

class chunk_set {
  public:
    /// A set whose chunks' pages are entered in the pagemap as `kind`.
    explicit chunk_set(page_kind kind = page_kind::chunk) noexcept : kind_(kind) {}
    chunk_set(const chunk_set&) = delete;
    chunk_set& operator=(const chunk_set&) = delete;

    /// Takes up to `n` blocks: first from chunks' free lists, then by carving, then from a new
    /// chunk. Returns what it got; throws (what the page heap throws) only if it got nothing.
    block_list take(const class_info& k, std::uint32_t n, page_source src);

    /// Gives block `p` (a block start of this set: see owner) back to its chunk. A chunk that
    /// becomes empty goes back to the page heap unless it is the set's spare. Returns the bytes
    /// the page heap gave back to upstream.
    std::size_t give_back(void* p, const class_info& k, page_source src) noexcept;

    /// Returns the chunk of which `p` is a carved block start, or nullptr. Reads the pagemap only.
    [[nodiscard]] chunk* owner(const void* p, const class_info& k,
                               const pagemap& map) const noexcept;

    /// Gives the spare empty chunk (if any) back to the page heap; returns the bytes the heap gave
    /// back to upstream.
    std::size_t release_spare(const class_info& k, page_source src) noexcept;

    /// Frees every chunk record, whatever is live in it; the caller gives the pages back
    /// (page_heap::destroy).
    void destroy() noexcept;

    /// Idle blocks inside chunks (free lists plus not yet carved).
    [[nodiscard]] std::size_t idle_blocks() const noexcept { return idle_blocks_; }
    [[nodiscard]] std::size_t chunk_count() const noexcept { return count_; }

  private:
    chunk* new_chunk(const class_info& k, page_source src);
    void carve(chunk* c, const class_info& k, std::uint32_t n, block_list& out,
               const page_source& src) noexcept;
    std::size_t release(chunk* c, const class_info& k, page_source src) noexcept;
    void link(chunk* c) noexcept;
    void unlink(chunk* c) noexcept;

    const page_kind kind_;
    chunk* avail_ = nullptr;       // chunks with free or uncarved blocks
    chunk* all_ = nullptr;         // every chunk
    chunk* spare_ = nullptr;       // one empty chunk kept for reuse (also in avail_)
    std::size_t idle_blocks_ = 0;  // free + uncarved blocks over all chunks
    std::size_t count_ = 0;
};

}  // namespace bpool::detail
