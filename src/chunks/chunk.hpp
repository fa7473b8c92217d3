// Layer 4: chunks. A chunk is a run of whole pages from the page heap carved into equal blocks of
// one size class (for the classes above 16 KiB, one block). Blocks are carved lazily (a bump
// pointer), so a fresh chunk's memory is touched only as it is used, but always to the end of a
// page: a page's pagemap entry is set once every block that starts in it is carved, so an entry
// means "any block start here is a block of this chunk", and a pointer into a page not yet carved
// finds no entry. A chunk whose blocks are all back goes back to the page heap (one spare empty
// chunk per set is kept against thrashing).
//
// The page heap may call upstream (another pool that waits at its cap, an allocator that takes a
// lock or maps memory), so a set never calls it: a new chunk is made (chunk_set::make) with no
// lock held and then adopted, and a chunk that goes is retired (its entries cleared, out of its
// set) onto a retired_chunks list that the caller releases once it holds no lock and is inside
// no thread-cache operation.
//
// Thread safety: none; each chunk_set is guarded by the lock of its central list. make() and
// retired_chunks::release() touch no set and take only the page heap's and the metadata's locks.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/block_list.hpp"
#include "classes/size_classes.hpp"
#include "pages/page_heap.hpp"
#include "pages/pagemap.hpp"

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
    std::uint32_t pages = 0;  // the run's length, for the page heap
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

/// Chunks taken out of their sets, whose runs go back to the page heap later (see above). Moving
/// one is O(1); the list owns its chunks until release().
class retired_chunks {
  public:
    retired_chunks() = default;
    retired_chunks(const retired_chunks&) = delete;
    retired_chunks& operator=(const retired_chunks&) = delete;
    ~retired_chunks() { BPOOL_ASSERT(head_ == nullptr); }

    /// Adds `c` (out of every set, its pagemap entries cleared).
    void add(chunk* c) noexcept;
    /// Gives every chunk's run back to `heap` and frees the records. Call with no pool lock held
    /// and outside any thread-cache operation. Returns the bytes that went on to upstream.
    std::size_t release(page_heap& heap) noexcept;
    [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }

  private:
    chunk* head_ = nullptr;
};

class chunk_set {
  public:
    /// A set whose chunks' pages are entered in the pagemap as `kind`.
    explicit chunk_set(page_kind kind = page_kind::chunk) noexcept : kind_(kind) {}
    chunk_set(const chunk_set&) = delete;
    chunk_set& operator=(const chunk_set&) = delete;

    /// Makes a chunk of class `k` for adopt(): a record and a run of pages from `heap`, which may
    /// call upstream (so: no lock held). Throws what the page heap throws, or std::bad_alloc.
    [[nodiscard]] static chunk* make(const class_info& k, page_heap& heap);

    /// Adds chunk `c` of class `k` from make() to the set.
    void adopt(chunk* c, const class_info& k) noexcept;

    /// Takes up to `n` blocks from the set's chunks: first from their free lists, then by carving
    /// (entering carved pages in `map`). Returns what it got, empty if no chunk has a block.
    block_list take(const class_info& k, std::uint32_t n, pagemap& map) noexcept;

    /// Gives block `p` (a block start of this set: see owner) back to its chunk. A chunk that
    /// becomes empty becomes the set's spare, and the previous spare is retired onto `out`.
    void give_back(void* p, const class_info& k, pagemap& map, retired_chunks& out) noexcept;

    /// Returns the chunk of which `p` is a carved block start, or nullptr. Reads the pagemap only.
    [[nodiscard]] chunk* owner(const void* p, const class_info& k,
                               const pagemap& map) const noexcept;

    /// Retires the spare empty chunk (if any) onto `out`.
    void release_spare(const class_info& k, pagemap& map, retired_chunks& out) noexcept;

    /// Frees every chunk record, whatever is live in it; the caller gives the pages back
    /// (page_heap::destroy).
    void destroy() noexcept;

    /// Idle blocks inside chunks (free lists plus not yet carved).
    [[nodiscard]] std::size_t idle_blocks() const noexcept { return idle_blocks_; }
    [[nodiscard]] std::size_t chunk_count() const noexcept { return count_; }

  private:
    void carve(chunk* c, const class_info& k, std::uint32_t n, block_list& out,
               pagemap& map) noexcept;
    void retire(chunk* c, const class_info& k, pagemap& map, retired_chunks& out) noexcept;
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
