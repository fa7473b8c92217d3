// Layers 2 and 3: chunks and central lists, driven directly with a counting upstream.
#include "chunk.hpp"

#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "central.hpp"
#include "support/counting_resource.hpp"

namespace bpool::detail {
namespace {

std::vector<void*> to_vector(block_list list) {
    std::vector<void*> out;
    while (!list.empty())
        out.push_back(list.pop());
    return out;
}

block_list to_list(const std::vector<void*>& blocks) {
    block_list list;
    for (void* p : blocks)
        list.push(p);
    return list;
}

TEST(ChunkSet, AsksUpstreamForNoMoreAlignmentThanItsBlocksNeed) {
    // A stricter alignment makes malloc pad every chunk (and glibc keeps the padding resident).
    for (unsigned c = 0; c < class_count; ++c) {
        const class_info& k = classes[c];
        test::counting_resource counting;
        upstream_source up(&counting);
        chunk_set set;
        std::vector<void*> blocks = to_vector(set.take(k, 1, up));
        ASSERT_EQ(blocks.size(), 1u);
        EXPECT_EQ(counting.max_alignment(), k.align) << "class of " << k.size << " B";
        EXPECT_NE(set.owner(blocks[0], k), nullptr);
        set.give_back(blocks[0], k, up);
        set.destroy(k, up);
    }
}

TEST(ChunkSet, FindsTheChunkOfEveryBlockAmongManyChunks) {
    test::counting_resource counting;
    upstream_source up(&counting);
    const class_info& k = classes[size_to_class(48)];
    chunk_set set;
    std::vector<void*> blocks;
    for (int i = 0; i < 50; ++i) {
        std::vector<void*> more = to_vector(set.take(k, k.chunk_blocks, up));
        blocks.insert(blocks.end(), more.begin(), more.end());
    }
    EXPECT_EQ(set.chunk_count(), 50u);
    for (void* p : blocks)
        ASSERT_NE(set.owner(p, k), nullptr);
    // Interior pointers and addresses outside every chunk are no block of the set.
    EXPECT_EQ(set.owner(static_cast<char*>(blocks[0]) + 8, k), nullptr);
    int outside = 0;
    EXPECT_EQ(set.owner(&outside, k), nullptr);
    for (void* p : blocks)
        set.give_back(p, k, up);
    set.destroy(k, up);
    EXPECT_EQ(up.held(), 0u);
}

TEST(ChunkSet, CarvesAlignedDistinctBlocksFromOneChunk) {
    test::counting_resource counting;
    upstream_source up(&counting);
    const class_info& k = classes[size_to_class(96)];
    chunk_set set;
    std::vector<void*> blocks = to_vector(set.take(k, k.chunk_blocks, up));
    ASSERT_EQ(blocks.size(), k.chunk_blocks);
    EXPECT_EQ(counting.allocations(), 1u) << "one chunk holds them all";
    EXPECT_EQ(counting.misaligned(), 0u);
    std::set<void*> distinct(blocks.begin(), blocks.end());
    EXPECT_EQ(distinct.size(), blocks.size());
    for (void* p : blocks) {
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % k.align, 0u);
        EXPECT_NE(set.owner(p, k), nullptr);
    }
    EXPECT_EQ(set.idle_blocks(), 0u);
    EXPECT_EQ(up.held(), std::size_t{k.chunk_blocks} * k.size);
    set.destroy(k, up);
    EXPECT_EQ(counting.live_bytes(), 0u);
    EXPECT_EQ(counting.mismatches(), 0u);
}

TEST(ChunkSet, OwnerRejectsInteriorAndForeignPointers) {
    test::counting_resource counting;
    upstream_source up(&counting);
    const class_info& k = classes[size_to_class(256)];
    chunk_set set;
    std::vector<void*> blocks = to_vector(set.take(k, 2, up));
    auto* first = static_cast<std::byte*>(blocks.back());
    EXPECT_EQ(set.owner(first + 16, k), nullptr) << "not a block start";
    int local = 0;
    EXPECT_EQ(set.owner(&local, k), nullptr) << "not in any chunk";
    EXPECT_EQ(set.owner(first + std::size_t{k.size} * (k.chunk_blocks - 1), k), nullptr)
        << "not carved yet";
    set.destroy(k, up);
}

TEST(ChunkSet, EmptyChunkIsKeptAsSpareThenReleased) {
    test::counting_resource counting;
    upstream_source up(&counting);
    const class_info& k = classes[size_to_class(1024)];
    chunk_set set;
    // Two full chunks.
    std::vector<void*> a = to_vector(set.take(k, k.chunk_blocks, up));
    std::vector<void*> b = to_vector(set.take(k, k.chunk_blocks, up));
    ASSERT_EQ(counting.allocations(), 2u);
    const std::size_t chunk = std::size_t{k.chunk_blocks} * k.size;
    std::size_t released = 0;
    for (void* p : a)
        released += set.give_back(p, k, up);
    EXPECT_EQ(released, 0u) << "the first empty chunk is kept as the spare";
    EXPECT_EQ(up.held(), 2 * chunk);
    for (void* p : b)
        released += set.give_back(p, k, up);
    EXPECT_EQ(released, chunk) << "a second empty chunk releases the older spare";
    EXPECT_EQ(up.held(), chunk);
    EXPECT_EQ(set.release_spare(k, up), chunk);
    EXPECT_EQ(up.held(), 0u);
    EXPECT_EQ(counting.live_bytes(), 0u);
    EXPECT_EQ(counting.mismatches(), 0u);
}

TEST(ChunkSet, ReusesReturnedBlocksBeforeNewChunks) {
    test::counting_resource counting;
    upstream_source up(&counting);
    const class_info& k = classes[size_to_class(48)];
    chunk_set set;
    std::vector<void*> blocks = to_vector(set.take(k, 10, up));
    for (void* p : blocks)
        set.give_back(p, k, up);
    std::vector<void*> again = to_vector(set.take(k, 10, up));
    EXPECT_EQ(std::set<void*>(again.begin(), again.end()),
              std::set<void*>(blocks.begin(), blocks.end()));
    EXPECT_EQ(counting.allocations(), 1u);
    set.destroy(k, up);
}

TEST(ChunkSet, UpstreamFailureWithNothingTakenPropagatesAndKeepsState) {
    test::counting_resource counting;
    upstream_source up(&counting);
    const class_info& k = classes[size_to_class(64)];
    chunk_set set;
    counting.fail_all(true);
    EXPECT_THROW((void)set.take(k, 4, up), std::bad_alloc);
    EXPECT_EQ(set.chunk_count(), 0u);
    EXPECT_EQ(up.held(), 0u);
    counting.fail_all(false);
    EXPECT_EQ(set.take(k, 4, up).count, 4u);
    set.destroy(k, up);
    EXPECT_EQ(counting.live_bytes(), 0u);
}

TEST(CentralList, ListFirstThenChunksAndKeepLimit) {
    test::counting_resource counting;
    upstream_source up(&counting);
    central_totals totals;
    const class_info& k = classes[size_to_class(128)];
    central_list central;
    std::vector<void*> blocks = to_vector(central.take(k, 8, up, totals));
    ASSERT_EQ(blocks.size(), 8u);
    EXPECT_EQ(totals.idle_bytes.load(), std::size_t{k.chunk_blocks - 8} * k.size)
        << "the rest of the new chunk is idle";
    central.put(k, to_list(blocks), 2, up, totals);
    const central_idle idle = central.idle();
    EXPECT_EQ(idle.list_blocks, 2u) << "the list keeps 2, the rest went back to the chunk";
    EXPECT_EQ(idle.chunk_blocks, std::size_t{k.chunk_blocks} - 2);
    EXPECT_EQ(totals.idle_bytes.load(), std::size_t{k.chunk_blocks} * k.size);
    EXPECT_EQ(central.take(k, 5, up, totals).count, 2u) << "the list is served first";
    central.destroy(k, up);
    EXPECT_EQ(counting.live_bytes(), 0u);
}

TEST(CentralList, OneBlockChunksGoBackToUpstreamButOneSpare) {
    test::counting_resource counting;
    upstream_source up(&counting);
    central_totals totals;
    const class_info& k = classes[size_to_class(200 * 1024)];
    ASSERT_EQ(k.chunk_blocks, 1u);
    central_list central;
    std::vector<void*> blocks;
    for (int i = 0; i < 3; ++i)
        blocks.push_back(central.take(k, 1, up, totals).head);
    EXPECT_EQ(counting.allocations(), 3u);
    EXPECT_EQ(counting.live_bytes(), 3u * k.size) << "one class-sized block each, no more";
    // Keep 1 in the list; of the two beyond it, one is kept as the class's spare chunk.
    EXPECT_EQ(central.put(k, to_list(blocks), 1, up, totals), std::size_t{k.size});
    EXPECT_EQ(counting.live_bytes(), 2u * k.size);
    EXPECT_EQ(central.trim(k, up, totals), 2u * k.size);
    EXPECT_EQ(counting.live_bytes(), 0u);
    EXPECT_EQ(totals.idle_bytes.load(), 0u);
    EXPECT_EQ(counting.mismatches(), 0u);
}

TEST(CentralList, TrimReturnsEveryEmptyChunk) {
    test::counting_resource counting;
    upstream_source up(&counting);
    central_totals totals;
    const class_info& k = classes[size_to_class(512)];
    central_list central;
    std::vector<void*> all;
    for (int i = 0; i < 5; ++i) {
        std::vector<void*> got = to_vector(central.take(k, k.chunk_blocks, up, totals));
        all.insert(all.end(), got.begin(), got.end());
    }
    central.put(k, to_list(all), 1000, up, totals);
    EXPECT_GT(counting.live_bytes(), 0u);
    central.trim(k, up, totals);
    EXPECT_EQ(counting.live_bytes(), 0u);
    EXPECT_EQ(totals.idle_bytes.load(), 0u);
}

}  // namespace
}  // namespace bpool::detail
