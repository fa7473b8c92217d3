// Layer 3: the pagemap. For each page (4 KiB) of the address space, what a pool knows of it: one
// 64-bit word naming the kind of record that starts a block in that page (a chunk of a size class,
// a chunk of bypass blocks, or a block served by upstream directly), the record, and for chunks
// the class and the page's index in the chunk. So any address leads to its metadata in two
// dependent loads, without a lock and without its size: the free paths read the class from here,
// and a pointer the pool never handed out finds the empty entry.
//
// Shape: a two-level radix tree over 48-bit addresses (root and leaves of 2^18 entries each, a
// leaf covering 1 GiB). Leaves are mapped lazily (reserve); a root entry holds its leaf's address
// XORed with a shared, always-empty default leaf, so an unmapped part of the tree reads as empty
// with no "is it there?" test. Every table comes from metadata memory (meta.hpp). Mappings are
// virtual: a pool pays 8 bytes per page its chunks touch, plus the root, in resident memory.
//
// Thread safety: find() is lock-free and may run concurrently with everything. set() and clear()
// of one page are serialized by the owner of the page's record (its central list's lock, or the
// direct block's single owner); reserve() is lock-free (a CAS on the root entry).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/check.hpp"
#include "classes/size_classes.hpp"

namespace bpool::detail {

/// What starts blocks in a page.
enum class page_kind : std::uint8_t {
    none = 0,          ///< Nothing of this pool.
    chunk = 1,         ///< A chunk of a size class (blocks cached and counted).
    bypass_chunk = 2,  ///< A chunk of blocks served by the bypass policy (never cached or counted).
    direct = 3,        ///< A block served by upstream directly; the entry is on its first page.
};

/// One page's entry: the table entry (class) in bits 0-7, the kind in bits 8-10, `at_base` in bit
/// 11, the page's index in its chunk in bits 12-19, and the record's address (records are
/// 16-aligned, below 2^48) shifted right by 4 in bits 20-63. The free fast path's fields come
/// first: the class is the low byte, and the index sits where a page's number does in an address,
/// so a chunk offset is two masks and an or. A chunk that does not start on a page boundary (a
/// single-block chunk aligned to 16 B) is entered `at_base`: its one block starts at the chunk's
/// base, which the record says.
struct page_entry {
    std::uint64_t word = 0;

    static constexpr unsigned kind_shift = 8;
    static constexpr std::uint64_t at_base_bit = std::uint64_t{8} << kind_shift;
    static constexpr unsigned record_shift = 20;

    [[nodiscard]] static page_entry make(page_kind kind, const void* record, unsigned cls,
                                         unsigned page, bool at_base = false) noexcept {
        const auto addr = reinterpret_cast<std::uintptr_t>(record);
        BPOOL_ASSERT((addr & 15) == 0 && (addr >> 48) == 0 && page < 256 && cls < 256);
        return {std::uint64_t{cls} | (static_cast<std::uint64_t>(kind) << kind_shift) |
                (at_base ? at_base_bit : 0) | (std::uint64_t{page} << page_shift) |
                (static_cast<std::uint64_t>(addr >> 4) << record_shift)};
    }
    [[nodiscard]] page_kind kind() const noexcept {
        return static_cast<page_kind>((word >> kind_shift) & 7);
    }
    /// An entry for a record whose one block starts at `base` (not on a page boundary, for a
    /// chunk; anywhere, for a direct block): the page field holds where in the page it starts.
    [[nodiscard]] static page_entry make_at_base(page_kind kind, const void* record, unsigned cls,
                                                 const void* base) noexcept {
        const auto offset = reinterpret_cast<std::uintptr_t>(base) & (page_size - 1);
        BPOOL_ASSERT(offset % 16 == 0);
        return make(kind, record, cls, static_cast<unsigned>(offset >> 4),
                    kind != page_kind::direct);
    }
    /// Whether the block start is where the page field says rather than found by offset.
    [[nodiscard]] bool at_base() const noexcept { return (word & at_base_bit) != 0; }
    /// For an entry made by make_at_base: whether `p` is the start it records.
    [[nodiscard]] bool starts_at(const void* p) const noexcept {
        return (reinterpret_cast<std::uintptr_t>(p) & (page_size - 1)) == std::uintptr_t{page()}
                                                                              << 4;
    }
    /// A page-aligned chunk of a size class: what the deallocation fast path serves.
    [[nodiscard]] bool aligned_chunk() const noexcept {
        return (word & (std::uint64_t{15} << kind_shift)) ==
               static_cast<std::uint64_t>(page_kind::chunk) << kind_shift;
    }
    /// A chunk of a size class entered at_base (a single block aligned to 16 B).
    [[nodiscard]] bool base_chunk() const noexcept {
        return (word & (std::uint64_t{15} << kind_shift)) ==
               ((static_cast<std::uint64_t>(page_kind::chunk) << kind_shift) | at_base_bit);
    }
    [[nodiscard]] unsigned cls() const noexcept { return static_cast<unsigned>(word & 0xff); }
    [[nodiscard]] unsigned page() const noexcept {
        return static_cast<unsigned>(word >> page_shift) & 0xff;
    }
    template <class T>
    [[nodiscard]] T* record() const noexcept {
        return reinterpret_cast<T*>(static_cast<std::uintptr_t>((word >> record_shift) << 4));
    }
    /// For a chunk entry: the byte offset of `p` (in this entry's page) from its chunk's start.
    [[nodiscard]] std::uint32_t chunk_offset(const void* p) const noexcept {
        const auto addr = reinterpret_cast<std::uintptr_t>(p);
        return static_cast<std::uint32_t>((word & (std::uint64_t{0xff} << page_shift)) |
                                          (addr & (page_size - 1)));
    }
};
static_assert(page_shift == 12, "the page index field is where a page's number is");

class pagemap;

namespace pagemap_detail {
inline constexpr std::size_t leaf_entries = std::size_t{1} << 18;
/// Read by every lookup of an unmapped part of any pool's tree, never written: zero-initialized
/// storage, whose pages stay the kernel's shared zero page. Inline so that a lookup takes its
/// address with no call.
alignas(page_size) inline constinit std::atomic<std::uint64_t> empty_leaf[leaf_entries]{};
}  // namespace pagemap_detail

class pagemap {
  public:
    static constexpr unsigned address_bits = 48;
    static constexpr unsigned leaf_bits = 18;
    static constexpr unsigned root_bits = address_bits - page_shift - leaf_bits;
    static constexpr std::size_t leaf_entries = pagemap_detail::leaf_entries;
    static constexpr std::size_t root_entries = std::size_t{1} << root_bits;
    static constexpr std::size_t table_bytes = leaf_entries * sizeof(std::uint64_t);
    static_assert(leaf_entries == root_entries, "table_bytes sizes both levels");

    pagemap() = default;
    pagemap(const pagemap&) = delete;
    pagemap& operator=(const pagemap&) = delete;
    ~pagemap() { destroy(); }

    /// Maps the root. Throws std::bad_alloc.
    void init();

    /// Frees every table (no find() may run concurrently, nor after it).
    void destroy() noexcept;

    /// Returns the entry of the page holding `p` (empty for any address the pool never mapped,
    /// including addresses beyond 48 bits). Two dependent loads.
    [[nodiscard]] BPOOL_INLINE page_entry find(const void* p) const noexcept {
        const auto addr = reinterpret_cast<std::uintptr_t>(p);
        // A root index past the root is an address beyond 48 bits: one compare on the index the
        // lookup needs anyway.
        const std::uintptr_t root_index = addr >> (page_shift + leaf_bits);
        if (BPOOL_UNLIKELY(root_index >= root_entries)) return {};
        const std::uintptr_t page = addr >> page_shift;
        const auto* leaf = reinterpret_cast<const std::atomic<std::uint64_t>*>(
            root_[root_index].load(std::memory_order_relaxed) ^ default_leaf_address());
        return {leaf[page & (leaf_entries - 1)].load(std::memory_order_relaxed)};
    }

    /// Makes sure the leaves covering [p, p + bytes) exist, so that set() there cannot fail.
    /// Returns false if memory for a leaf could not be mapped (the map is still usable).
    [[nodiscard]] bool reserve(const void* p, std::size_t bytes) noexcept;

    /// Sets the entry of the page holding `p` (its leaf reserved).
    void set(const void* p, page_entry e) noexcept {
        slot(p).store(e.word, std::memory_order_relaxed);
    }

    /// Empties the entry of the page holding `p` (its leaf reserved).
    void clear(const void* p) noexcept { slot(p).store(0, std::memory_order_relaxed); }

    /// Bytes mapped for this map's tables (root and leaves; virtual, touched as pages are used).
    [[nodiscard]] std::size_t mapped_bytes() const noexcept {
        return root_ == nullptr ? 0 : table_bytes * (1 + leaves_.load(std::memory_order_relaxed));
    }

  private:
    // The leaves a map reserved, so that destroy() need not scan the root.
    struct leaf_node {
        void* leaf;
        leaf_node* next;
    };

    static std::uintptr_t default_leaf_address() noexcept {
        return reinterpret_cast<std::uintptr_t>(&pagemap_detail::empty_leaf[0]);
    }
    std::atomic<std::uint64_t>& slot(const void* p) const noexcept;

    std::atomic<std::uintptr_t>* root_ = nullptr;
    std::atomic<leaf_node*> reserved_{nullptr};
    std::atomic<std::size_t> leaves_{0};
};

}  // namespace bpool::detail
