// Layer 2: the size-class table. Every request size up to 1 MiB maps to a class that holds it,
// wastes little, and is aligned as promised.
#include "classes/size_classes.hpp"

#include <bit>
#include <cstddef>

#include <gtest/gtest.h>

namespace bpool::detail {
namespace {

TEST(SizeClasses, EverySizeUpTo1MiBRoundsUpWithBoundedWaste) {
    unsigned previous = 0;
    for (std::size_t bytes = 0; bytes <= max_block_size; ++bytes) {
        const unsigned c = size_to_class(bytes);
        ASSERT_EQ(c, compute_size_class(bytes)) << "the lookup table agrees with the arithmetic";
        ASSERT_LT(c, class_count) << bytes;
        const std::size_t size = classes[c].size;
        ASSERT_GE(size, bytes == 0 ? 1 : bytes) << bytes;
        // The class below is too small: this is the smallest class that fits.
        if (c > 0) {
            ASSERT_LT(classes[c - 1].size, bytes) << bytes;
        }
        // Waste under 25 % of the block, or under 16 bytes for the small classes.
        if (bytes > 0) {
            ASSERT_TRUE((size - bytes) * 4 < size || size - bytes < 16) << bytes;
        }
        ASSERT_GE(c, previous) << "classes are monotonic in the size";
        previous = c;
    }
    EXPECT_EQ(size_to_class(max_block_size), class_count - 1);
}

TEST(SizeClasses, AboutFourClassesPerDoubling) {
    for (unsigned c = linear_classes; c < class_count; ++c) {
        const std::size_t size = classes[c].size;
        const auto doubling = std::bit_floor(size - 1);
        unsigned in_doubling = 0;
        for (unsigned d = 0; d < class_count; ++d)
            if (classes[d].size > doubling && classes[d].size <= 2 * doubling) ++in_doubling;
        EXPECT_EQ(in_doubling, 4u) << size;
    }
}

TEST(SizeClasses, Alignment) {
    for (unsigned c = 0; c < class_count; ++c) {
        const class_info& k = classes[c];
        EXPECT_TRUE(std::has_single_bit(k.align));
        EXPECT_GE(k.align, alignof(std::max_align_t));
        EXPECT_EQ(k.size % k.align, 0u);
        if (k.size > max_multi_block_size) {
            EXPECT_EQ(k.align, 16u) << "no padding asked of upstream";
            const class_info& twin = classes[twin_of(c)];
            EXPECT_EQ(twin.size, k.size);
            EXPECT_EQ(twin.align, page_size) << "page-aligned I/O of every pooled size";
            EXPECT_EQ(size_class_of(twin_of(c)), c);
            continue;
        }
        EXPECT_NE((k.size / k.align) % 2, 0u) << "largest power of two dividing the size";
        if (std::has_single_bit(std::size_t{k.size})) {
            EXPECT_EQ(k.align, k.size);
        }
    }
}

TEST(SizeClasses, ChunkGeometry) {
    for (unsigned c = 0; c < class_count; ++c) {
        const class_info& k = classes[c];
        const std::size_t chunk = std::size_t{k.chunk_blocks} * k.size;
        const std::size_t span = std::size_t{k.chunk_pages} * page_size;
        EXPECT_LE(chunk, span);
        EXPECT_LT(span - chunk, k.size) << "a chunk's tail is less than a block";
        if (k.size <= max_multi_block_size) {
            EXPECT_GE(k.chunk_blocks, 4u);
            EXPECT_LE(span, 65536u);
        } else {
            EXPECT_EQ(k.chunk_blocks, 1u) << "a large request pulls only its own block";
            EXPECT_EQ(span, std::size_t{k.size}) << "whole pages, no tail";
        }
        EXPECT_GE(k.cache_limit, 1u);
        EXPECT_LE(std::size_t{k.cache_limit} * k.size, std::max<std::size_t>(256 << 10, k.size))
            << "a bin holds at most 256 KiB, or one block";
        EXPECT_GE(k.batch, 1u);
    }
}

TEST(SizeClasses, BlockStartsAreToldFromEveryOtherOffset) {
    // Every byte offset of a chunk, and of two pages of a single-block one: the multiply-and-
    // rotate test agrees with a division.
    for (unsigned c = 0; c < class_count; ++c) {
        const class_info& k = classes[c];
        const std::uint32_t end =
            k.chunk_blocks > 1 ? std::uint32_t{k.chunk_pages} * page_size : 2 * page_size;
        for (std::uint32_t off = 0; off < end; ++off)
            ASSERT_EQ(k.is_block_start(off), off % k.size == 0 && off / k.size < k.chunk_blocks)
                << k.size << " @" << off << ": a block start, not in the tail";
    }
}

TEST(SizeClasses, ClassForHonoursEveryAlignmentUpToTheNaturalOne) {
    const unsigned largest = class_count - 1;
    for (std::size_t bytes = 1; bytes <= max_block_size; bytes = bytes * 5 / 4 + 1) {
        for (std::size_t align = 1; align <= max_block_size; align *= 2) {
            const unsigned c = class_for(bytes, align, largest);
            // The size classes from the request's own up to the one chosen (or its twin's) are
            // not aligned enough: the smallest suitable entry.
            const unsigned up_to = c == no_class ? largest + 1 : size_class_of(c);
            for (unsigned d = size_to_class(bytes); d < up_to; ++d)
                EXPECT_LT(classes[d].align, align) << bytes << " " << align;
            if (c == no_class) {
                EXPECT_GT(align, page_size) << "a page's alignment is served at every size";
                continue;
            }
            EXPECT_GE(classes[c].size, bytes);
            EXPECT_GE(classes[c].align, align);
            if (c >= class_count) {
                EXPECT_EQ(c, twin_of(size_class_of(c)));
                EXPECT_GT(align, classes[size_class_of(c)].align) << "only when the class is not";
            }
        }
    }
    EXPECT_EQ(class_for(max_block_size + 1, 16, largest), no_class);
    EXPECT_EQ(class_for(1000, 16, size_to_class(512)), no_class) << "above the largest class";
    EXPECT_EQ(class_for(64 << 10, 4096, largest), twin_of(size_to_class(64 << 10)));
    EXPECT_EQ(class_for(64 << 10, 16, largest), size_to_class(64 << 10));
}

}  // namespace
}  // namespace bpool::detail
