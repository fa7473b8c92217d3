// bpool::pool_resource: the public API, bad input, statistics, retention, upstream failures, many
// threads, and pmr containers on top.
#include <barrier>
#include <climits>
#include <cmath>
#include <map>
#include <memory_resource>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "support/counting_resource.hpp"

namespace bpool {
namespace {

using test::aligned;
using test::check_pattern;
using test::counting_resource;
using test::fill_pattern;

TEST(PoolResource, DefaultConstructedUsesTheDefaultResource) {
    pool_resource pool;
    EXPECT_EQ(pool.upstream_resource(), std::pmr::get_default_resource());
    const pool_options o = pool.options();
    EXPECT_EQ(o.largest_pooled_block, std::size_t{1} << 20);
    EXPECT_GT(o.max_cached_bytes, 0u) << "a default is filled in";
    EXPECT_EQ(o.capacity, 0u);
    EXPECT_EQ(o.on_exhaustion, exhaustion::wait);
    void* p = pool.allocate(100);
    pool.deallocate(p, 100);
}

TEST(PoolResource, OptionsAreNormalized) {
    pool_resource pool({.largest_pooled_block = 3000,
                        .capacity = 12345,
                        .backoff = {.initial_interval = std::chrono::nanoseconds(1),
                                    .multiplier = 0.5,
                                    .randomization = 7.0,
                                    .max_interval = std::chrono::nanoseconds(0)},
                        .delay_threshold = 1.5});
    const pool_options o = pool.options();
    EXPECT_EQ(o.largest_pooled_block, 2560u) << "rounded down to a class size";
    EXPECT_EQ(o.capacity, 12345u);
    EXPECT_GE(o.backoff.multiplier, 1.0);
    EXPECT_LE(o.backoff.randomization, 1.0);
    EXPECT_GE(o.backoff.max_interval, o.backoff.initial_interval);
    EXPECT_EQ(o.delay_threshold, 0.0) << "out of (0, 1): off";
    EXPECT_EQ(pool_resource({.largest_pooled_block = 1}).options().largest_pooled_block, 16u);
    EXPECT_EQ(pool_resource({.largest_pooled_block = SIZE_MAX}).options().largest_pooled_block,
              std::size_t{1} << 20);
}

TEST(PoolResource, NullUpstreamIsRejected) {
    EXPECT_THROW(pool_resource({}, nullptr), std::invalid_argument);
}

TEST(PoolResource, ZeroBytesGivesUniquePointers) {
    pool_resource pool;
    std::set<void*> seen;
    std::vector<void*> blocks;
    for (int i = 0; i < 100; ++i) {
        void* p = pool.allocate(0);
        ASSERT_NE(p, nullptr);
        EXPECT_TRUE(seen.insert(p).second);
        blocks.push_back(p);
    }
    EXPECT_EQ(pool.live_bytes(), 100u * 16) << "counted as the smallest block";
    for (void* p : blocks)
        pool.deallocate(p, 0);
    EXPECT_EQ(pool.live_bytes(), 0u);
}

TEST(PoolResource, BadAlignmentThrowsInvalidArgument) {
    pool_resource pool;
    for (int warm = 0; warm < 2; ++warm) {
        // The second round runs with this thread's cache full of 64-byte blocks: the fast path
        // must reject the same alignments as the slow path.
        for (std::size_t a : {0u, 3u, 5u, 12u, 48u, 100u}) {
            EXPECT_THROW((void)pool.allocate(64, a), std::invalid_argument) << a;
            EXPECT_EQ(pool.try_allocate(64, a), nullptr) << a;
        }
        EXPECT_EQ(pool.live_bytes(), 0u);
        pool.deallocate(pool.allocate(64, 8), 64, 8);
    }
}

TEST(PoolResource, OverflowingSizesThrowBadAlloc) {
    pool_resource pool;
    // volatile: the compiler knows these sizes are absurd and would refuse to compile the calls.
    volatile std::size_t huge = SIZE_MAX;
    EXPECT_THROW((void)pool.allocate(huge), std::bad_alloc);
    EXPECT_THROW((void)pool.allocate(huge - 7, 16), std::bad_alloc);
    EXPECT_THROW((void)pool.allocate(huge / 2, 4096), std::bad_alloc);
    EXPECT_EQ(pool.try_allocate(huge), nullptr);
    EXPECT_EQ(pool.block_size(huge), 0u);
    EXPECT_EQ(pool.live_bytes(), 0u);
    EXPECT_EQ(pool.stats().upstream_bytes, 0u);
}

// libstdc++ marks memory_resource::deallocate's pointer nonnull, so UBSan reports the call itself
// (the caller's side); the pool's side, tested here, treats nullptr as a no-op.
__attribute__((no_sanitize("nonnull-attribute"))) void deallocate_null(std::pmr::memory_resource& r,
                                                                       std::size_t bytes,
                                                                       std::size_t align) {
    void* volatile null = nullptr;
    r.deallocate(null, bytes, align);
}

TEST(PoolResource, DeallocateNullIsANoOp) {
    pool_resource pool;
    deallocate_null(pool, 64, 16);
    deallocate_null(pool, 0, 4096);
    deallocate_null(pool, 5 << 20, 16);
    EXPECT_EQ(pool.stats().deallocations, 0u);
}

TEST(PoolResource, EveryAlignmentUpToTheClassesNaturalOneIsHonoured) {
    counting_resource upstream;
    pool_resource pool({}, &upstream);
    for (std::size_t bytes :
         {1u, 8u, 16u, 24u, 100u, 129u, 1000u, 4096u, 5000u, 70000u, 1u << 20}) {
        for (std::size_t align = 1; align <= (1u << 20); align *= 2) {
            void* p = pool.allocate(bytes, align);
            ASSERT_TRUE(aligned(p, align)) << bytes << " " << align;
            ASSERT_TRUE(aligned(p, alignof(std::max_align_t)));
            fill_pattern(p, bytes, bytes + align);
            EXPECT_TRUE(check_pattern(p, bytes, bytes + align));
            pool.deallocate(p, bytes, align);
        }
    }
    EXPECT_EQ(pool.live_bytes(), 0u);
    EXPECT_EQ(upstream.misaligned(), 0u);
}

TEST(PoolResource, PowerOfTwoClassesUpTo16KiBAreAlignedToTheirSize) {
    pool_resource pool;
    for (std::size_t size = 16; size <= (16u << 10); size *= 2) {
        void* p = pool.allocate(size);
        EXPECT_TRUE(aligned(p, size)) << size;
        pool.deallocate(p, size);
    }
}

TEST(PoolResource, LargeRequestsGoStraightToUpstreamAndAreNeverCached) {
    counting_resource upstream;
    pool_resource pool({.largest_pooled_block = 4096}, &upstream);
    const std::size_t before = upstream.allocations();
    void* p = pool.allocate(10000, 64);
    EXPECT_EQ(upstream.allocations(), before + 1);
    EXPECT_EQ(upstream.live_bytes(), pool.block_size(10000, 64));
    EXPECT_EQ(pool.block_size(10000, 64), 10000u);
    EXPECT_EQ(pool.stats().large_live_bytes, 10000u);
    pool.deallocate(p, 10000, 64);
    EXPECT_EQ(upstream.live_bytes(), 0u) << "given back at once";
    EXPECT_EQ(upstream.mismatches(), 0u);
}

TEST(PoolResource, OneLargishRequestPullsOnlyItsClass) {
    // libstdc++'s pools take megabytes for one 200 KiB request; a class-sized chunk is enough.
    counting_resource upstream;
    pool_resource pool({}, &upstream);
    void* p = pool.allocate(200 * 1024);
    EXPECT_LE(upstream.peak_bytes(), pool.block_size(200 * 1024));
    EXPECT_LE(pool.block_size(200 * 1024), 256u * 1024);
    pool.deallocate(p, 200 * 1024);
}

TEST(PoolResource, SmallRequestsPullSmallChunks) {
    counting_resource upstream;
    pool_resource pool({}, &upstream);
    void* p = pool.allocate(24);
    EXPECT_LE(upstream.peak_bytes(), 4096u);
    pool.deallocate(p, 24);
}

TEST(PoolResource, BlockSizeReportsTheClass) {
    pool_resource pool;
    EXPECT_EQ(pool.block_size(0), 16u);
    EXPECT_EQ(pool.block_size(1), 16u);
    EXPECT_EQ(pool.block_size(17), 32u);
    EXPECT_EQ(pool.block_size(129), 160u);
    EXPECT_EQ(pool.block_size(1000), 1024u);
    EXPECT_EQ(pool.block_size(100, 256), 256u) << "the smallest class aligned enough";
    EXPECT_EQ(pool.block_size(3 << 20), 3u << 20) << "large: rounded to 16";
    EXPECT_EQ(pool.block_size(64, 3), 0u);
}

TEST(PoolResource, IsEqualOnlyToItself) {
    pool_resource a, b;
    EXPECT_TRUE(a.is_equal(a));
    EXPECT_FALSE(a.is_equal(b));
    EXPECT_FALSE(a.is_equal(*std::pmr::new_delete_resource()));
}

TEST(PoolResource, NoBlockIsHandedOutTwice) {
    pool_resource pool;
    std::mt19937_64 rng(7);
    struct live {
        void* p;
        std::size_t n;
        std::uint64_t seed;
    };
    std::vector<live> blocks;
    for (int i = 0; i < 20000; ++i) {
        if (blocks.size() < 2000 && (blocks.empty() || rng() % 3 != 0)) {
            const std::size_t n = static_cast<std::size_t>(
                std::exp(std::uniform_real_distribution<>(0, std::log(70000.0))(rng)));
            void* p = pool.allocate(n);
            fill_pattern(p, n, static_cast<std::uint64_t>(i));
            blocks.push_back({p, n, static_cast<std::uint64_t>(i)});
        } else {
            const std::size_t k = rng() % blocks.size();
            ASSERT_TRUE(check_pattern(blocks[k].p, blocks[k].n, blocks[k].seed));
            pool.deallocate(blocks[k].p, blocks[k].n);
            blocks[k] = blocks.back();
            blocks.pop_back();
        }
    }
    for (const live& b : blocks) {
        ASSERT_TRUE(check_pattern(b.p, b.n, b.seed));
        pool.deallocate(b.p, b.n);
    }
    EXPECT_EQ(pool.live_bytes(), 0u);
    EXPECT_EQ(pool.live_blocks(), 0u);
}

TEST(PoolResource, StatsCountEverything) {
    counting_resource upstream;
    pool_resource pool({}, &upstream);
    void* a = pool.allocate(100);  // class 112
    void* b = pool.allocate(100);
    void* c = pool.allocate(3000);     // class 3072
    void* d = pool.allocate(2 << 20);  // large
    pool_stats s = pool.stats();
    EXPECT_EQ(s.allocations, 4u);
    EXPECT_EQ(s.deallocations, 0u);
    EXPECT_EQ(s.live_blocks, 4u);
    EXPECT_EQ(s.live_bytes, 2 * 112u + 3072u + (2u << 20));
    EXPECT_EQ(pool.live_bytes(), s.live_bytes);
    EXPECT_EQ(pool.live_blocks(), 4u);
    EXPECT_EQ(s.large_live_bytes, 2u << 20);
    EXPECT_EQ(s.upstream_bytes, upstream.live_bytes());
    EXPECT_EQ(s.peak_upstream_bytes, upstream.peak_bytes());
    EXPECT_GE(s.upstream_bytes, s.live_bytes + s.cached_bytes - s.cached_bytes);
    ASSERT_EQ(s.classes.size(), 60u);
    std::uint64_t per_class_allocs = 0;
    for (const size_class_stats& k : s.classes) {
        per_class_allocs += k.allocations;
        if (k.block_size == 112) {
            EXPECT_EQ(k.allocations, 2u);
            EXPECT_EQ(k.live_blocks, 2u);
        }
    }
    EXPECT_EQ(per_class_allocs, 3u) << "the large block is not in a class";
    pool.deallocate(a, 100);
    pool.deallocate(b, 100);
    pool.deallocate(c, 3000);
    pool.deallocate(d, 2 << 20);
    s = pool.stats();
    EXPECT_EQ(s.deallocations, 4u);
    EXPECT_EQ(s.live_bytes, 0u);
    EXPECT_EQ(s.live_blocks, 0u);
    EXPECT_GE(s.peak_live_bytes, 2u << 20) << "large allocations are sampled at once";
    EXPECT_EQ(s.upstream_bytes, s.cached_bytes + s.unused_bytes) << "all that is held is idle";
    EXPECT_LT(s.unused_bytes, s.upstream_bytes / 8) << "chunk tails and free pages are few";
}

TEST(PoolResource, TrimReturnsIdleMemory) {
    counting_resource upstream;
    pool_resource pool({}, &upstream);
    std::vector<std::pair<void*, std::size_t>> blocks;
    for (std::size_t i = 0; i < 3000; ++i) {
        const std::size_t n = 16 + (i * 97) % 20000;
        blocks.emplace_back(pool.allocate(n), n);
    }
    void* keep = pool.allocate(64);
    for (auto [p, n] : blocks)
        pool.deallocate(p, n);
    const std::size_t held = upstream.live_bytes();
    const std::size_t released = pool.trim();
    EXPECT_GT(released, 0u);
    EXPECT_EQ(upstream.live_bytes(), held - released);
    // The 64-byte block's chunk is one page; it shares an upstream allocation (at most 64 KiB)
    // with other small chunks, which goes back only once all of it is free.
    EXPECT_LE(upstream.live_bytes(), 64u << 10) << "only what holds the live block";
    const pool_stats s = pool.stats();
    EXPECT_EQ(s.cached_bytes + 64 + s.unused_bytes, upstream.live_bytes());
    EXPECT_LE(s.cached_bytes, 4096u) << "the rest of the live block's chunk";
    pool.deallocate(keep, 64);
}

TEST(PoolResource, RetentionIsBoundedByMaxCachedBytes) {
    counting_resource upstream;
    pool_resource pool({.max_cached_bytes = 256 << 10}, &upstream);
    std::vector<void*> blocks;
    for (int i = 0; i < 400; ++i)
        blocks.push_back(pool.allocate(30000));  // 12 MB of one class
    for (void* p : blocks)
        pool.deallocate(p, 30000);
    // Idle memory beyond the bound went back to upstream, apart from per-thread cache slack.
    EXPECT_LE(upstream.live_bytes(), (256u << 10) + 4 * 32768u);
}

TEST(PoolResource, DestructorReturnsEverythingEvenLiveBlocks) {
    counting_resource upstream;
    {
        pool_resource pool({}, &upstream);
        for (int i = 0; i < 1000; ++i)
            (void)pool.allocate(static_cast<std::size_t>(i * 37 % 70000));
        (void)pool.allocate(3 << 20);
        EXPECT_GT(upstream.live_bytes(), 0u);
    }
    EXPECT_EQ(upstream.live_bytes(), 0u);
    EXPECT_EQ(upstream.mismatches(), 0u);
}

TEST(PoolResource, UpstreamFailureLeavesThePoolConsistent) {
    counting_resource upstream;
    pool_resource pool({}, &upstream);
    upstream.fail_all(true);
    EXPECT_THROW((void)pool.allocate(64), std::bad_alloc);
    EXPECT_THROW((void)pool.allocate(5 << 20), std::bad_alloc);
    EXPECT_EQ(pool.try_allocate(64), nullptr);
    EXPECT_EQ(pool.live_bytes(), 0u);
    EXPECT_EQ(pool.stats().upstream_bytes, 0u);
    upstream.fail_all(false);
    void* p = pool.allocate(64);
    EXPECT_EQ(pool.live_bytes(), 64u);
    pool.deallocate(p, 64);
    EXPECT_EQ(pool.live_bytes(), 0u);
}

TEST(PoolResource, ManyThreadsWithCrossThreadFrees) {
    pool_resource pool;
    constexpr int threads = 8;  // more than the cores of the CI machine
    constexpr int per_thread = 20000;
    struct block {
        void* p;
        std::size_t n;
        std::uint64_t seed;
    };
    std::vector<std::vector<block>> handoff(threads);
    std::vector<std::thread> workers;
    std::barrier sync(threads);
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            std::mt19937 rng(static_cast<unsigned>(t));
            std::vector<block> mine;
            for (int i = 0; i < per_thread; ++i) {
                const std::size_t n = 1 + rng() % 2048;
                const std::uint64_t seed =
                    static_cast<std::uint64_t>(t) << 32 | static_cast<unsigned>(i);
                void* p = pool.allocate(n);
                fill_pattern(p, n, seed);
                mine.push_back({p, n, seed});
                if (mine.size() > 64) {
                    const block b = mine[rng() % mine.size()];
                    std::erase_if(mine, [&](const block& x) { return x.p == b.p; });
                    ASSERT_TRUE(check_pattern(b.p, b.n, b.seed));
                    pool.deallocate(b.p, b.n);
                }
            }
            handoff[static_cast<std::size_t>((t + 1) % threads)] = std::move(mine);
            sync.arrive_and_wait();
            // Free what the neighbour allocated.
            for (const block& b : handoff[static_cast<std::size_t>(t)]) {
                ASSERT_TRUE(check_pattern(b.p, b.n, b.seed));
                pool.deallocate(b.p, b.n);
            }
        });
    }
    for (auto& w : workers)
        w.join();
    const pool_stats s = pool.stats();
    EXPECT_EQ(s.live_bytes, 0u);
    EXPECT_EQ(s.allocations, std::uint64_t{threads} * per_thread);
    EXPECT_EQ(s.deallocations, s.allocations);
    EXPECT_EQ(pool.live_bytes(), 0u);
}

TEST(PoolResource, PmrContainersOnTop) {
    counting_resource upstream;
    pool_resource pool({}, &upstream);
    {
        std::pmr::vector<std::pmr::string> names(&pool);
        std::pmr::map<int, std::pmr::string> by_id(&pool);
        std::pmr::unordered_map<std::pmr::string, std::pmr::vector<int>> index(&pool);
        for (int i = 0; i < 5000; ++i) {
            names.emplace_back("a string long enough to need the pool #" + std::to_string(i));
            by_id.emplace(i, names.back());
            index[names.back()].push_back(i);
        }
        EXPECT_EQ(index.get_allocator().resource(), &pool);
        EXPECT_EQ(index.begin()->first.get_allocator().resource(), &pool) << "propagates inward";
        EXPECT_EQ(by_id.at(4321), names[4321]);
        EXPECT_EQ(index.at(names[17]).front(), 17);
        EXPECT_GT(pool.live_bytes(), 5000u * 40);
    }
    EXPECT_EQ(pool.live_bytes(), 0u);
    EXPECT_EQ(upstream.mismatches(), 0u);
}

}  // namespace
}  // namespace bpool
