// Layer 2: the size classes. A compile-time table: 16 B steps up to 128 B, then four classes per
// doubling up to 1 MiB (internal waste under 25 %, and under 16 B below 128 B). Each class carries
// its geometry: block alignment, how many pages a chunk spans and how many blocks it holds, how
// many blocks move between a thread cache and the central list at once, the most a thread cache
// may keep, and the constants that tell a block start from an interior pointer without a division.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "base/check.hpp"

namespace bpool::detail {

inline constexpr std::size_t min_block_size = 16;
inline constexpr std::size_t max_block_size = std::size_t{1} << 20;
inline constexpr unsigned linear_classes = 8;  // 16, 32, ..., 128
inline constexpr unsigned class_count = 60;    // the size classes: what size_to_class returns
inline constexpr unsigned no_class = 0xff;

/// Chunks of a class hold many blocks up to this block size; above it a chunk is one block, so a
/// single large request never pulls more from upstream than its own class size.
inline constexpr std::size_t max_multi_block_size = 16 * 1024;

/// The most a thread cache's bin may hold of one class (or one block of the classes above it).
inline constexpr std::size_t max_bin_bytes = 256 * 1024;

/// The unit of the pool's memory: chunks are runs of whole pages, page-aligned (page_heap.hpp),
/// and the pagemap (pagemap.hpp) has one entry per page.
inline constexpr unsigned page_shift = 12;
inline constexpr std::size_t page_size = std::size_t{1} << page_shift;

/// The most a chunk of a multi-block class spans.
inline constexpr std::size_t max_chunk_pages = 16;
/// Chunks of at most this many pages share upstream allocations (page_heap.hpp); longer ones are
/// upstream allocations of their own.
inline constexpr std::size_t shared_chunk_pages = 4;

/// Alignment of the blocks of single-block classes (whole pages, 20 KiB to 1 MiB): what every
/// upstream gives without padding. A stricter one makes malloc pad every block, and the padding
/// ends up resident (docs/decisions.md). Requests that need up to a page's alignment at those
/// sizes are served by the classes' page-aligned twins (below).
inline constexpr std::size_t single_block_align = 16;

/// Returns whether `v` is a power of two. Unlike std::has_single_bit, never a libgcc popcount
/// call on targets without the popcnt instruction.
constexpr bool is_power_of_two(std::size_t v) noexcept {
    return v != 0 && (v & (v - 1)) == 0;
}

/// Returns whether the fast paths may serve `alignment`: a power of two no larger than
/// `alignof(std::max_align_t)`, which every block honours. (0 and other values that are not
/// powers of two fail here and reach the slow path, which rejects them.)
constexpr bool is_fast_alignment(std::size_t alignment) noexcept {
    return alignment - 1 < alignof(std::max_align_t) && (alignment & (alignment - 1)) == 0;
}

/// Returns the class of a request of `bytes` (0 counts as 1) by arithmetic. Precondition: bytes
/// <= 1 MiB. What the lookup table below is built from and tested against; the fast paths use
/// size_to_class.
constexpr unsigned compute_size_class(std::size_t bytes) noexcept {
    const std::size_t s = bytes - (bytes != 0);  // s = bytes - 1, and 0 for bytes == 0
    const auto e = static_cast<unsigned>(std::bit_width(s | 128));  // floor(log2(s)) + 1, >= 8
    const auto log_class = linear_classes + (e - 8) * 4 + static_cast<unsigned>((s >> (e - 3)) & 3);
    const auto linear_class = static_cast<unsigned>(s >> 4);
    return s < 128 ? linear_class : log_class;
}

// The class of every request size, a byte each (tcmalloc's "class array" idea): sizes up to 1 KiB
// in 16 B steps at (n + 15) / 16, larger ones in 128 B steps at (n - 1) / 128 + 57. Every class
// boundary is a multiple of 16 below 1 KiB and of 128 above, so the steps lose nothing. One load
// instead of a dozen dependent ALU operations on the fast path (docs/decisions.md).
inline constexpr std::size_t small_lookup_limit = 1024;

/// Returns the lookup table's index for a request of `bytes` (<= 1 MiB). A branch: the common
/// small sizes then cost a shift and an add (GCC 12 compiled the branch-free min/max form to a
/// branch as well, with two instructions more on the small side: docs/decisions.md).
constexpr std::size_t size_lookup_index(std::size_t bytes) noexcept {
    constexpr std::size_t large_base = small_lookup_limit / 16 - (small_lookup_limit - 1) / 128;
    return BPOOL_LIKELY(bytes <= small_lookup_limit) ? (bytes + 15) >> 4
                                                     : ((bytes - 1) >> 7) + large_base;
}

inline constexpr std::size_t size_lookup_entries = size_lookup_index(max_block_size) + 1;

constexpr std::array<std::uint8_t, size_lookup_entries> make_size_lookup() noexcept {
    std::array<std::uint8_t, size_lookup_entries> table{};
    // Each entry covers a run of sizes of one class; its largest size names the class.
    for (std::size_t bytes = 0; bytes <= max_block_size;
         bytes += bytes < small_lookup_limit ? 16 : 128)
        table[size_lookup_index(bytes)] = static_cast<std::uint8_t>(compute_size_class(bytes));
    return table;
}

inline constexpr std::array<std::uint8_t, size_lookup_entries> size_lookup = make_size_lookup();

/// Returns the class of a request of `bytes` (0 counts as 1). Precondition: bytes <= 1 MiB.
constexpr unsigned size_to_class(std::size_t bytes) noexcept {
    return size_lookup[size_lookup_index(bytes)];
}

/// Returns the block size of class `c`.
constexpr std::size_t class_to_size(unsigned c) noexcept {
    if (c < linear_classes) return (std::size_t{c} + 1) * 16;
    const unsigned group = (c - linear_classes) / 4;
    const unsigned step = (c - linear_classes) % 4;
    const std::size_t base = std::size_t{128} << group;
    return base + (step + 1) * (base / 4);
}

/// The geometry of one class.
struct alignas(32) class_info {   // 32 bytes: the fast paths index the table with a shift
    std::uint32_t size;           ///< Block size.
    std::uint32_t align;          ///< Block alignment: natural (the largest power of two dividing
                                  ///< `size`) in multi-block classes, else single_block_align.
    std::uint32_t chunk_blocks;   ///< Blocks per chunk (1: each block is its own chunk).
    std::uint16_t chunk_pages;    ///< Pages per chunk.
    std::uint16_t batch;          ///< Most blocks moved between a thread cache and central at once.
    std::uint16_t cache_limit;    ///< Most blocks a thread cache may keep of this class (its bin
                                  ///< limit adapts below this: thread_cache.hpp, "Bin sizes").
    std::uint8_t index;           ///< The class's own number.
    std::uint8_t start_shift;     ///< See is_block_start.
    std::uint32_t start_inverse;  ///< See is_block_start.
    std::uint32_t start_limit;    ///< See is_block_start.

    /// Returns whether byte `offset` of a chunk (below 2^32) is where one of its blocks starts
    /// (not in the chunk's tail past its last block). A divisibility test without a division:
    /// with size = odd * 2^shift, offset * odd^-1 (mod 2^32) rotated right by shift is offset /
    /// size when size divides offset, and above (2^32 - 1) / size otherwise; one compare with
    /// the block count tests both.
    [[nodiscard]] constexpr bool is_block_start(std::uint32_t offset) const noexcept {
        const std::uint32_t x = offset * start_inverse;
        const std::uint32_t rotated = (x >> start_shift) | (x << ((32 - start_shift) & 31));
        return rotated <= start_limit;
    }
};

constexpr std::size_t clamp_size(std::size_t v, std::size_t lo, std::size_t hi) noexcept {
    return v < lo ? lo : (v > hi ? hi : v);
}

/// The inverse of odd `v` modulo 2^32 (Newton's iteration: each step doubles the correct bits).
constexpr std::uint32_t inverse_mod_2_32(std::uint32_t v) noexcept {
    std::uint32_t x = v;  // correct to 3 bits for any odd v
    for (int i = 0; i < 4; ++i)
        x *= 2 - v * x;
    return x;
}

constexpr class_info make_class_info(unsigned c) noexcept {
    const std::size_t size = class_to_size(c);
    class_info info{};
    info.size = static_cast<std::uint32_t>(size);
    info.index = static_cast<std::uint8_t>(c);
    if (size <= max_multi_block_size) {
        info.align = static_cast<std::uint32_t>(size & (~size + 1));
        // Small chunks keep the memory held per class close to what the class uses: from one
        // page for blocks up to 512 B, else about 8 blocks, at most 16 pages (then at least 4
        // blocks). From there up to the next limit (shared_chunk_pages, where chunks stop sharing
        // upstream allocations, or 16), the fewest pages whose tail past the last block is at most
        // 1/32 of the chunk, else the smallest tail (docs/decisions.md).
        const std::size_t target = clamp_size(size * 8, page_size, max_chunk_pages * page_size);
        const std::size_t first = (target + page_size - 1) / page_size;
        const std::size_t last = first <= shared_chunk_pages ? shared_chunk_pages : max_chunk_pages;
        // The tail, in 1/1024ths of the chunk.
        const auto waste = [size](std::size_t n) {
            return n * page_size % size * 1024 / (n * page_size);
        };
        std::size_t best = first;
        for (std::size_t pages = first; pages <= last; ++pages) {
            if (waste(pages) < waste(best)) best = pages;
            if (waste(best) <= 1024 / 32) break;
        }
        // Then as few pages as still hold those blocks (a chunk never ends in a page of tail).
        const std::size_t blocks = best * page_size / size;
        info.chunk_blocks = static_cast<std::uint32_t>(blocks);
        info.chunk_pages = static_cast<std::uint16_t>((blocks * size + page_size - 1) / page_size);
    } else {
        info.align = static_cast<std::uint32_t>(single_block_align);
        info.chunk_pages = static_cast<std::uint16_t>(size / page_size);
        info.chunk_blocks = 1;
    }
    const auto shift = static_cast<unsigned>(std::countr_zero(size));
    info.start_shift = static_cast<std::uint8_t>(shift);
    info.start_inverse = inverse_mod_2_32(static_cast<std::uint32_t>(size >> shift));
    info.start_limit = info.chunk_blocks - 1;
    // Batches of at most about 8 KiB (2..32 blocks), one block from 64 KiB up. A bin may grow to
    // max_bin_bytes of blocks when its thread needs that many, or to one block of the classes
    // above it.
    info.batch = static_cast<std::uint16_t>(size >= 65536 ? 1 : clamp_size(8192 / size, 2, 32));
    info.cache_limit = static_cast<std::uint16_t>(std::max<std::size_t>(1, max_bin_bytes / size));
    return info;
}

/// The first single-block class.
inline constexpr unsigned first_single_class = size_to_class(max_multi_block_size) + 1;
/// Each single-block class has a twin of the same size whose blocks are page-aligned, so that a
/// page-aligned request of any pooled size is pooled without every block of the class paying for
/// it. Twins follow the size classes in the table: twin_of(c) = class_count + c - first_single.
inline constexpr unsigned twin_count = class_count - first_single_class;
/// Every entry of the table: the size classes and their twins.
inline constexpr unsigned table_size = class_count + twin_count;

/// Returns the page-aligned twin of single-block class `c`.
constexpr unsigned twin_of(unsigned c) noexcept {
    return class_count + c - first_single_class;
}
/// Returns the size class of table entry `c` (itself, or the class a twin mirrors).
constexpr unsigned size_class_of(unsigned c) noexcept {
    return c < class_count ? c : c - class_count + first_single_class;
}

constexpr std::array<class_info, table_size> make_class_table() noexcept {
    std::array<class_info, table_size> table{};
    for (unsigned c = 0; c < class_count; ++c)
        table[c] = make_class_info(c);
    for (unsigned c = first_single_class; c < class_count; ++c) {
        class_info twin = table[c];
        twin.index = static_cast<std::uint8_t>(twin_of(c));
        twin.align = static_cast<std::uint32_t>(page_size);
        table[twin_of(c)] = twin;
    }
    return table;
}

inline constexpr std::array<class_info, table_size> classes = make_class_table();

// The table's promises, checked by the compiler.
static_assert(class_to_size(0) == min_block_size);
static_assert(class_to_size(class_count - 1) == max_block_size);
static_assert(size_to_class(max_block_size) == class_count - 1);
static_assert(size_to_class(0) == 0 && size_to_class(1) == 0 && size_to_class(16) == 0);
static_assert(size_to_class(17) == 1 && size_to_class(128) == 7 && size_to_class(129) == 8);
consteval bool table_is_sound() {
    for (unsigned c = 0; c < class_count; ++c) {
        const class_info& k = classes[c];
        if (k.size % 16 != 0 || k.align < 16 || k.size % k.align != 0) return false;
        if (!std::has_single_bit(k.align)) return false;
        const std::size_t prev = c ? classes[c - 1].size : 0;
        if (size_to_class(k.size) != c || size_to_class(prev + 1) != c || prev >= k.size)
            return false;
        // Waste: a request one byte above the previous class loses under 25 % (or under 16 B).
        if ((k.size - prev - 1) * 4 >= k.size && k.size - prev > 16) return false;
        if (k.chunk_blocks == 0 || k.index != c) return false;
        // A chunk is whole pages, and its blocks fit in it; a multi-block chunk's tail is under
        // one block.
        if (k.chunk_pages == 0 || std::size_t{k.chunk_blocks} * k.size > k.chunk_pages * page_size)
            return false;
        if (k.chunk_pages * page_size - std::size_t{k.chunk_blocks} * k.size >= k.size)
            return false;
        if (k.chunk_blocks == 1 && k.size % page_size != 0) return false;
        if (k.chunk_blocks == 1 && k.align != single_block_align) return false;
        if (k.chunk_blocks == 1) {  // its twin: the same but page-aligned
            const class_info& t = classes[twin_of(c)];
            if (t.size != k.size || t.align != page_size || t.chunk_pages != k.chunk_pages ||
                t.index != twin_of(c) || size_class_of(twin_of(c)) != c)
                return false;
        }
        if (k.batch == 0 || k.cache_limit == 0) return false;
        // A bin holds at most max_bin_bytes, or one block; a full bin of a chunked class can give
        // a whole batch back.
        if (std::size_t{k.cache_limit} * k.size > std::max<std::size_t>(max_bin_bytes, k.size))
            return false;
        if (k.chunk_blocks > 1 && k.cache_limit < 2 * k.batch) return false;
    }
    return true;
}
static_assert(table_is_sound(), "size class table violates its invariants");
consteval bool lookup_steps_are_exact() {
    // The lookup table's steps never straddle a class boundary.
    for (unsigned c = 0; c < class_count; ++c)
        if (classes[c].size % (classes[c].size <= small_lookup_limit ? 16 : 128) != 0) return false;
    return size_to_class(small_lookup_limit + 1) == compute_size_class(small_lookup_limit + 1);
}
static_assert(lookup_steps_are_exact(), "a size-class boundary falls inside a lookup step");
consteval bool block_starts_are_exact() {
    // Every offset of every multi-block chunk (its tail included), and two pages of every
    // single-block one.
    for (unsigned c = 0; c < table_size; ++c) {
        const class_info& k = classes[c];
        const std::uint32_t end = k.chunk_blocks > 1 ? k.chunk_pages * page_size : 2 * page_size;
        for (std::uint32_t off = 0; off < end; off += 16)
            if (k.is_block_start(off) != (off % k.size == 0 && off / k.size < k.chunk_blocks))
                return false;
    }
    return true;
}
static_assert(block_starts_are_exact(), "a block-start test of the class table is wrong");

/// Returns the table entry that serves `bytes` aligned to `alignment` (a power of two): the
/// smallest class that holds `bytes` and is aligned enough, or the page-aligned twin of the first
/// single-block class that holds them when the alignment is at most a page; `no_class` if none is
/// at most `largest` (a size class).
constexpr unsigned class_for(std::size_t bytes, std::size_t alignment, unsigned largest) noexcept {
    if (bytes > classes[largest].size) return no_class;
    unsigned c = size_to_class(bytes);
    while (c <= largest && classes[c].align < alignment) {
        if (classes[c].chunk_blocks == 1) return alignment <= page_size ? twin_of(c) : no_class;
        ++c;
    }
    return c <= largest ? c : no_class;
}

}  // namespace bpool::detail
