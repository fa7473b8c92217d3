// Layer 2: chunks. A chunk is one upstream allocation carved into equal blocks of one size class,
// aligned only as its blocks must be. The chunk of a block is found by address: by range in an
// index of address buckets (chunk_index.hpp) for multi-block chunks, by exact address in a hash
// map for single-block ones (there the block is the chunk). Blocks are carved lazily (a
// bump pointer), so a fresh chunk's memory is touched only as it is used. A chunk whose blocks are
// all back is returned to upstream (one spare empty chunk per class is kept against thrashing).
//
// Classes whose chunk is a single block (blocks above 16 KiB) use the same machinery with one block
// per chunk: the block is the whole upstream allocation, and the chunk object records it so that
// the class's blocks are indexed (and checked) like any other.
//
// Thread safety: none; each chunk_set is guarded by the lock of its central list.
#pragma once

#include <cstddef>
#include <cstdint>

#include "block_list.hpp"
#include "chunk_index.hpp"
#include "ptr_map.hpp"
#include "size_classes.hpp"
#include "upstream.hpp"

namespace bpool::detail {

struct chunk {
    std::byte* base = nullptr;
    void* free_list = nullptr;     // blocks given back to this chunk
    std::uint32_t free_count = 0;  // length of free_list
    std::uint32_t carved = 0;      // blocks carved so far (the bump pointer)
    chunk* prev = nullptr;         // links in the set's list of chunks with blocks to give
    chunk* next = nullptr;
    bool listed = false;

    /// Blocks of this chunk that are out: live, or idle in a thread cache or central list.
    [[nodiscard]] std::uint32_t out() const noexcept { return carved - free_count; }
};

class chunk_set {
  public:
    chunk_set() = default;
    chunk_set(const chunk_set&) = delete;
    chunk_set& operator=(const chunk_set&) = delete;

    /// Takes up to `n` blocks: first from chunks' free lists, then by carving, then from a new
    /// chunk. Returns what it got; throws (what upstream throws) only if it got nothing.
    block_list take(const class_info& k, std::uint32_t n, upstream_source& up);

    /// Gives block `p` back to its chunk. A chunk that becomes empty goes back to upstream unless
    /// it is the class's spare. Returns the bytes given back to upstream.
    std::size_t give_back(void* p, const class_info& k, upstream_source& up) noexcept;

    /// Returns the chunk holding `p`, or nullptr if `p` is not a block start of this set.
    [[nodiscard]] chunk* owner(const void* p, const class_info& k) noexcept;

    /// Gives the spare empty chunk (if any) back to upstream; returns the bytes released.
    std::size_t release_spare(const class_info& k, upstream_source& up) noexcept;

    /// Gives every chunk back to upstream, whatever is live in it.
    void destroy(const class_info& k, upstream_source& up) noexcept;

    /// Idle blocks inside chunks (free lists plus not yet carved).
    [[nodiscard]] std::size_t idle_blocks() const noexcept { return idle_blocks_; }
    [[nodiscard]] std::size_t chunk_count() const noexcept {
        return ranges_.size() + singles_.size();
    }

  private:
    chunk* new_chunk(const class_info& k, upstream_source& up);
    void release(chunk* c, const class_info& k, upstream_source& up) noexcept;
    void link(chunk* c) noexcept;
    void unlink(chunk* c) noexcept;

    chunk_index<chunk> ranges_;    // multi-block chunks by address range
    ptr_map<chunk*> singles_;      // single-block chunks by base address
    chunk* avail_ = nullptr;       // chunks with free or uncarved blocks
    chunk* spare_ = nullptr;       // one empty chunk kept for reuse (also in avail_)
    std::size_t idle_blocks_ = 0;  // free + uncarved blocks over all chunks
};

}  // namespace bpool::detail
