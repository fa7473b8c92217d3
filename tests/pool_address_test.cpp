// pool_resource.hpp, "blocks by address": every block is known by its address (the pagemap), so
// it can be given back without its size, asked about (usable_size, owns), and page-aligned
// requests of every pooled size are pooled. Anything that is not a block of the pool stops the
// program in every build.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <latch>
#include <thread>
#include <utility>
#include <vector>

#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "support/capped.hpp"
#include "support/counting_resource.hpp"

namespace bpool {
namespace {

using test::aligned;
using test::counting_resource;

// Sizes around every class boundary up to 1 MiB, and past it (served by upstream directly).
std::vector<std::size_t> sizes_to_try() {
    std::vector<std::size_t> out{0, 1, 15, 16, 17};
    for (std::size_t s = 32; s <= (std::size_t{3} << 20); s = s * 5 / 4 + 16) {
        out.push_back(s - 1);
        out.push_back(s);
    }
    return out;
}

TEST(PoolAddress, EverySizeAndAlignmentIsKnownByItsAddress) {
    counting_resource upstream;
    pool_resource pool({}, &upstream);
    for (const std::size_t bytes : sizes_to_try()) {
        for (std::size_t align = 1; align <= 16384; align *= 2) {
            auto* p = static_cast<unsigned char*>(pool.allocate(bytes, align));
            ASSERT_TRUE(aligned(p, align)) << bytes << " @" << align;
            const std::size_t block = pool.block_size(bytes, align);
            ASSERT_EQ(pool.usable_size(p), block) << bytes << " @" << align;
            ASSERT_TRUE(pool.owns(p));
            ASSERT_FALSE(pool.owns(p + 1)) << "an interior pointer is not a block";
            ASSERT_EQ(pool.usable_size(p + 1), 0u);
            if (block > 16) {
                ASSERT_FALSE(pool.owns(p + 16)) << bytes << " @" << align;
                ASSERT_EQ(pool.usable_size(p + 16), 0u);
            }
            if (bytes > 0) p[bytes - 1] = 1;  // all of it is usable
            pool.deallocate_unsized(p);
            ASSERT_EQ(pool.live_bytes(), 0u) << bytes << " @" << align;
        }
    }
    EXPECT_EQ(pool.stats().allocations, pool.stats().deallocations);
    EXPECT_EQ(upstream.mismatches(), 0u);
}

TEST(PoolAddress, BlocksAbove16KiBAreKnownWhereverTheyStart) {
    // Their chunks are one upstream allocation aligned to 16 B, entered on the page where they
    // start: the start of that page, and the rest of it before the block, are not theirs.
    counting_resource upstream;
    pool_resource pool({}, &upstream);
    std::vector<char*> blocks;
    for (int i = 0; i < 16; ++i)
        blocks.push_back(static_cast<char*>(pool.allocate(20 << 10)));
    EXPECT_EQ(upstream.max_alignment(), 16u) << "no padding asked of upstream";
    for (char* p : blocks) {
        EXPECT_EQ(pool.usable_size(p), pool.block_size(20 << 10));
        auto* page =
            reinterpret_cast<char*>(reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{4095});
        if (page != p) {
            EXPECT_FALSE(pool.owns(page)) << "before the block, in its page";
            EXPECT_EQ(pool.usable_size(page), 0u);
        }
        EXPECT_FALSE(pool.owns(p + 16));
    }
    for (char* p : blocks)
        pool.deallocate_unsized(p);
    EXPECT_EQ(pool.live_bytes(), 0u);
}

TEST(PoolAddress, NullIsNothing) {
    pool_resource pool;
    pool.deallocate_unsized(nullptr);
    EXPECT_EQ(pool.usable_size(nullptr), 0u);
    EXPECT_FALSE(pool.owns(nullptr));
    EXPECT_EQ(pool.stats().deallocations, 0u);
}

TEST(PoolAddress, OwnsNothingElse) {
    pool_resource a, b;
    void* mine = a.allocate(48);
    int local = 0;
    static int global = 0;
    void* heap = std::malloc(48);
    EXPECT_TRUE(a.owns(mine));
    EXPECT_FALSE(b.owns(mine)) << "another pool's block";
    EXPECT_FALSE(a.owns(&local));
    EXPECT_FALSE(a.owns(&global));
    EXPECT_FALSE(a.owns(heap));
    EXPECT_FALSE(a.owns(reinterpret_cast<void*>(~std::uintptr_t{0} & ~std::uintptr_t{15})));
    EXPECT_EQ(b.usable_size(mine), 0u);
    std::free(heap);
    a.deallocate(mine, 48);
}

TEST(PoolAddress, IdleBlocksAreOwnedUntilTheirMemoryGoesBack) {
    counting_resource upstream;
    pool_resource pool({}, &upstream);
    void* small = pool.allocate(100);
    void* large = pool.allocate(3 << 20);
    pool.deallocate(small, 100);
    EXPECT_TRUE(pool.owns(small)) << "idle in this thread's cache";
    EXPECT_EQ(pool.usable_size(small), pool.block_size(100));
    pool.deallocate(large, 3 << 20);
    EXPECT_FALSE(pool.owns(large)) << "a direct block goes back to upstream at once";
    pool.trim();
    EXPECT_FALSE(pool.owns(small)) << "its chunk went back";
    EXPECT_EQ(upstream.live_bytes(), 0u);
}

TEST(PoolAddress, PageAlignedBuffersOfEveryPooledSizeArePooledAndCached) {
    // An O_DIRECT buffer: 4 KiB-aligned, 16 KiB to 1 MiB. Served from the classes (no large live
    // bytes) and cached: after the first round, taking and giving one back calls upstream no more.
    counting_resource upstream;
    pool_resource pool({}, &upstream);
    for (std::size_t bytes : {std::size_t{20} << 10, std::size_t{64} << 10, std::size_t{1} << 20}) {
        void* first = pool.allocate(bytes, 4096);
        EXPECT_EQ(pool.stats().large_live_bytes, 0u) << bytes;
        pool.deallocate(first, bytes, 4096);
        const std::size_t calls = upstream.allocations();
        for (int i = 0; i < 100; ++i) {
            void* p = pool.allocate(bytes, 4096);
            ASSERT_TRUE(aligned(p, 4096));
            ASSERT_EQ(pool.usable_size(p), pool.block_size(bytes, 4096));
            pool.deallocate_unsized(p);
        }
        EXPECT_EQ(upstream.allocations(), calls) << bytes << ": reused, not asked of upstream";
    }
}

TEST(PoolAddress, UnsizedFreesFromOtherThreadsAccountExactly) {
    counting_resource upstream;
    pool_resource pool({}, &upstream);
    constexpr int threads = 4, per_thread = 2000;
    std::vector<std::vector<void*>> made(threads);
    for (int t = 0; t < threads; ++t)
        for (int i = 0; i < per_thread; ++i)
            made[t].push_back(pool.allocate(static_cast<std::size_t>(1 + (i * 131 + t) % 70000)));
    std::vector<std::thread> freers;
    for (int t = 0; t < threads; ++t)  // each thread frees another's blocks
        freers.emplace_back([&, t] {
            for (void* p : made[(t + 1) % threads])
                pool.deallocate_unsized(p);
        });
    for (auto& f : freers)
        f.join();
    const pool_stats s = pool.stats();
    EXPECT_EQ(s.live_bytes, 0u);
    EXPECT_EQ(s.live_blocks, 0u);
    EXPECT_EQ(s.deallocations, std::uint64_t{threads} * per_thread);
    EXPECT_EQ(upstream.mismatches(), 0u);
}

TEST(PoolAddress, AnUnsizedFreeWakesAWaiter) {
    pool_resource pool(test::capped(64 << 10, exhaustion::wait, std::chrono::seconds(120)));
    void* held = pool.allocate(60 << 10);
    std::latch started(1);
    std::atomic<bool> got{false};
    std::thread waiter([&] {
        started.count_down();
        void* p = pool.allocate_for(32 << 10, 16, std::chrono::seconds(120));
        got = true;
        pool.deallocate_unsized(p);
    });
    started.wait();
    while (pool.stats().waiters == 0)
        std::this_thread::yield();
    pool.deallocate_unsized(held);
    waiter.join();
    EXPECT_TRUE(got);
    EXPECT_EQ(pool.stats().timeouts, 0u);
    EXPECT_EQ(pool.live_bytes(), 0u);
}

TEST(PoolAddress, BypassBlocksAreToldApartByAddress) {
    counting_resource upstream;
    pool_resource pool(test::capped(8 << 10, exhaustion::bypass), &upstream);
    std::vector<void*> pooled, bypassed;
    for (int i = 0; i < 4; ++i)
        pooled.push_back(pool.allocate(2048));
    for (int i = 0; i < 50; ++i)
        bypassed.push_back(pool.allocate(2048));  // past the cap
    const pool_stats during = pool.stats();
    EXPECT_EQ(during.bypass_live_blocks, 50u);
    EXPECT_EQ(during.upstream_bytes, during.live_bytes + during.cached_bytes + during.unused_bytes);
    for (void* p : bypassed) {
        EXPECT_TRUE(pool.owns(p));
        EXPECT_EQ(pool.usable_size(p), pool.block_size(2048));
    }
    for (std::size_t i = 0; i < bypassed.size(); ++i) {  // interleaved, unsized
        pool.deallocate_unsized(bypassed[i]);
        if (i < pooled.size()) pool.deallocate_unsized(pooled[i]);
    }
    const pool_stats s = pool.stats();
    EXPECT_EQ(s.bypass_live_blocks, 0u);
    EXPECT_EQ(s.live_bytes, 0u);
    EXPECT_EQ(s.upstream_bytes, s.cached_bytes + s.unused_bytes)
        << "the bypass chunks' idle blocks are unused bytes";
    EXPECT_EQ(upstream.mismatches(), 0u);
}

#if !BPOOL_CHECKED
TEST(PoolAddress, AWrongSizeIsHandledAsTheBlockItIs) {
    // The checked build reports it (checked_test.cpp); elsewhere the pagemap's class is used.
    pool_resource pool;
    void* p = pool.allocate(100);
    pool.deallocate(p, 1000);
    EXPECT_EQ(pool.live_bytes(), 0u);
    EXPECT_EQ(pool.live_blocks(), 0u);
    void* q = pool.allocate(100);
    EXPECT_EQ(q, p) << "the block went back to its own class";
    pool.deallocate(q, 100);
}
#endif

TEST(PoolAddress, PagemapMemoryIsBoundedAndReported) {
    pool_resource pool;
    EXPECT_GT(pool.stats().pagemap_bytes, 0u) << "the root";
    std::vector<void*> blocks;
    for (int i = 0; i < 1000; ++i)
        blocks.push_back(pool.allocate(4096));
    const std::size_t mapped = pool.stats().pagemap_bytes;
    // Each table (root or leaf) is 2 MiB of address space; a few GiB of address space at most.
    EXPECT_EQ(mapped % (std::size_t{2} << 20), 0u);
    EXPECT_LE(mapped, std::size_t{8} * (2 << 20));
    for (void* p : blocks)
        pool.deallocate_unsized(p);
}

TEST(PoolAddress, WhatUpstreamHoldsIsLiveCachedOrUnused) {
    // Direct blocks under a page (a pool that pools only up to 64 B) ask upstream for a page: the
    // rest of it is unused, and counted so.
    counting_resource upstream;
    pool_resource pool({.largest_pooled_block = 64}, &upstream);
    void* direct = pool.allocate(100);
    void* pooled = pool.allocate(48);
    void* idle = pool.allocate(48);
    pool.deallocate_unsized(idle);
    const pool_stats s = pool.stats();
    EXPECT_EQ(s.large_live_bytes, 112u);
    EXPECT_EQ(s.upstream_bytes, upstream.live_bytes());
    EXPECT_EQ(s.upstream_bytes, s.live_bytes + s.cached_bytes + s.unused_bytes);
    EXPECT_GE(s.unused_bytes, 4096u - 112) << "the rest of the direct block's page";
    pool.deallocate_unsized(direct);
    pool.deallocate_unsized(pooled);
    const pool_stats after = pool.stats();
    EXPECT_EQ(after.upstream_bytes, after.cached_bytes + after.unused_bytes);
}

class ForeignPointer : public ::testing::Test {
  protected:
    void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(ForeignPointer, AStackAddressStopsInEveryBuild) {
    EXPECT_DEATH(
        {
            pool_resource pool;
            alignas(64) char local[64];
            pool.deallocate(local, 64);
        },
        "foreign pointer");
}

TEST_F(ForeignPointer, AMallocBlockStopsInEveryBuild) {
    EXPECT_DEATH(
        {
            pool_resource pool;
            pool.deallocate_unsized(std::malloc(64));
        },
        "foreign pointer");
}

TEST_F(ForeignPointer, AnotherPoolsBlockStopsInEveryBuild) {
    EXPECT_DEATH(
        {
            pool_resource a;
            pool_resource b;
            b.deallocate(a.allocate(48), 48);
        },
        "foreign pointer");
}

TEST_F(ForeignPointer, AnInteriorPointerStopsInEveryBuild) {
    EXPECT_DEATH(
        {
            pool_resource pool;
            auto* p = static_cast<char*>(pool.allocate(256));
            pool.deallocate_unsized(p + 16);
        },
        "interior pointer");
    EXPECT_DEATH(
        {
            pool_resource pool;
            auto* p = static_cast<char*>(pool.allocate(std::size_t{3} << 20));
            pool.deallocate(p + 4096, 4096);
        },
        "foreign pointer");
}

TEST_F(ForeignPointer, TheMessageNamesThePointerAndThePool) {
    EXPECT_DEATH(
        {
            pool_resource pool;
            static char where[64];
            pool.deallocate(where, 64);
        },
        "deallocate\\(0x[0-9a-f]+\\): foreign pointer, not allocated by this pool "
        "\\(bpool::pool_resource 0x[0-9a-f]+\\)");
}

}  // namespace
}  // namespace bpool
