// Fault injection: an upstream that fails its Nth allocation, for every N in a sweep. At each N the
// caller sees std::bad_alloc, the pool stays consistent (its counters match what the caller holds),
// and once everything is freed and the pool destroyed, upstream has every byte back.
#include <map>
#include <memory_resource>
#include <string>
#include <vector>

#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "support/counting_resource.hpp"

namespace bpool {
namespace {

using test::check_pattern;
using test::counting_resource;
using test::fill_pattern;

struct held {
    void* p;
    std::size_t bytes;
    std::size_t align;
};

// A scripted workload: many sizes (small, multi-block, one-block, large), alignments, frees in
// between and pmr containers growing; returns how many bad_allocs it saw.
int run_workload(pool_resource& pool, std::vector<held>& blocks) {
    int failures = 0;
    auto attempt = [&](auto&& f) {
        try {
            f();
        } catch (const std::bad_alloc&) {
            ++failures;
        }
    };
    const std::size_t sizes[] = {8, 100, 1000, 5000, 30000, 200000, 1 << 20, 3 << 20};
    for (int round = 0; round < 6; ++round) {
        for (std::size_t n : sizes) {
            const std::size_t align = round % 2 ? 16 : 64;
            attempt([&] {
                void* p = pool.allocate(n, align);
                fill_pattern(p, n, n + align);
                blocks.push_back({p, n, align});
            });
        }
        if (blocks.size() > 4) {  // free every other block: chunks become partly free
            for (std::size_t i = 0; i < blocks.size(); i += 2) {
                pool.deallocate(blocks[i].p, blocks[i].bytes, blocks[i].align);
                blocks[i].p = nullptr;
            }
            std::erase_if(blocks, [](const held& h) { return h.p == nullptr; });
        }
        attempt([&] {
            std::pmr::vector<std::pmr::string> v(&pool);
            for (int i = 0; i < 200; ++i)
                v.emplace_back(std::string(40 + i, 'x'));
        });
        attempt([&] {
            std::pmr::map<int, std::pmr::vector<int>> m(&pool);
            for (int i = 0; i < 100; ++i)
                m[i].resize(static_cast<std::size_t>(i) * 10);
        });
    }
    return failures;
}

std::size_t expected_live(const pool_resource& pool, const std::vector<held>& blocks) {
    std::size_t live = 0;
    for (const held& h : blocks)
        live += pool.block_size(h.bytes, h.align);
    return live;
}

TEST(FaultInjection, EveryFailurePointLeavesThePoolConsistent) {
    // How many upstream allocations the workload makes when nothing fails.
    std::size_t total = 0;
    {
        counting_resource upstream;
        pool_resource pool({}, &upstream);
        std::vector<held> blocks;
        EXPECT_EQ(run_workload(pool, blocks), 0);
        total = upstream.allocations();
        for (const held& h : blocks)
            pool.deallocate(h.p, h.bytes, h.align);
    }
    ASSERT_GT(total, 10u);
    for (std::size_t n = 0; n <= total; ++n) {
        counting_resource upstream;
        {
            pool_resource pool({}, &upstream);
            std::vector<held> blocks;
            upstream.fail_after(n);
            const int failures = run_workload(pool, blocks);
            if (n < total) {
                EXPECT_GE(failures, 1) << "failure point " << n;
            }
            EXPECT_EQ(upstream.failures(), n < total ? 1u : 0u) << n;
            // Consistent: the pool counts exactly what the caller holds, contents intact.
            EXPECT_EQ(pool.live_bytes(), expected_live(pool, blocks)) << n;
            EXPECT_EQ(pool.stats().live_blocks, blocks.size()) << n;
            EXPECT_EQ(pool.stats().upstream_bytes, upstream.live_bytes()) << n;
            for (const held& h : blocks) {
                ASSERT_TRUE(check_pattern(h.p, h.bytes, h.bytes + h.align)) << n;
                pool.deallocate(h.p, h.bytes, h.align);
            }
            EXPECT_EQ(pool.live_bytes(), 0u) << n;
            // And it still works.
            void* p = pool.allocate(777);
            pool.deallocate(p, 777);
            pool.trim();
            EXPECT_EQ(upstream.live_bytes(), 0u) << "trim gave back every idle chunk, at " << n;
        }
        EXPECT_EQ(upstream.live_bytes(), 0u) << n;
        EXPECT_EQ(upstream.mismatches(), 0u) << n;
    }
}

TEST(FaultInjection, FailuresUnderACapLeaveTheCreditIntact) {
    counting_resource upstream;
    pool_resource pool({.capacity = 1 << 20, .on_exhaustion = exhaustion::fail}, &upstream);
    upstream.fail_all(true);
    for (int i = 0; i < 100; ++i)
        EXPECT_THROW((void)pool.allocate(4096), std::bad_alloc);
    upstream.fail_all(false);
    // No credit was lost to the failures: the whole capacity is still there.
    std::vector<void*> blocks;
    for (int i = 0; i < 256; ++i)
        blocks.push_back(pool.allocate(4096));
    EXPECT_EQ(pool.live_bytes(), 1u << 20);
    EXPECT_THROW((void)pool.allocate(16), capacity_exceeded);
    for (void* p : blocks)
        pool.deallocate(p, 4096);
}

}  // namespace
}  // namespace bpool
