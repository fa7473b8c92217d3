// Capacity and backoff through pool_resource: the exact cap under many threads, each exhaustion
// policy, early wake, fairness, runtime capacity changes, backoff reset, bypass accounting,
// try_allocate / allocate_for, stall reports. Timing is asserted only with lower bounds ("waited at
// least what was asked") and upper bounds that catch hangs; "at once" is asserted with counts (no
// wait recorded), growth of the backoff in steps.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "support/capped.hpp"
#include "support/counting_resource.hpp"

namespace bpool {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using test::counting_resource;

// A request that must end early (woken by a release, or its own short deadline) runs in a pool that
// would wait `forever`, and must end within `promptly`: far more than a loaded machine needs, far
// less than the wait it rules out.
constexpr auto promptly = 60s;
constexpr auto forever = 120s;

using test::capped;

// Allocates blocks of `size` until the pool refuses (policy fail) and returns them.
std::vector<void*> fill(pool_resource& pool, std::size_t size) {
    std::vector<void*> blocks;
    exhaustion_scope fail_fast(exhaustion::fail);
    try {
        for (;;)
            blocks.push_back(pool.allocate(size));
    } catch (const capacity_exceeded&) {
    }
    return blocks;
}

void free_all(pool_resource& pool, std::vector<void*>& blocks, std::size_t size) {
    for (void* p : blocks)
        pool.deallocate(p, size);
    blocks.clear();
}

// Runs `request`, which waits at the cap, while another thread gives `block` (of `size` bytes)
// back as soon as a request waits; returns what `request` returns.
template <class F>
auto woken_by_release(pool_resource& pool, void* block, std::size_t size, F&& request) {
    std::atomic<bool> returned{false};
    std::thread releaser([&] {
        while (pool.stats().waiters == 0 && !returned.load())
            std::this_thread::yield();
        pool.deallocate(block, size);
    });
    struct joiner {  // also when `request` throws
        std::atomic<bool>& returned;
        std::thread& releaser;
        ~joiner() {
            returned = true;
            releaser.join();
        }
    } join{returned, releaser};
    return request();
}

TEST(Capacity, FailThrowsAtOnceAndTheCapIsExact) {
    pool_resource pool(capped(64 << 10, exhaustion::fail));
    std::vector<void*> blocks;
    for (int i = 0; i < 64; ++i)
        blocks.push_back(pool.allocate(1024));
    EXPECT_EQ(pool.live_bytes(), 64u << 10);
    try {
        (void)pool.allocate(16);
        FAIL() << "allocation past the cap succeeded";
    } catch (const capacity_exceeded& e) {
        EXPECT_EQ(e.requested(), 16u);
        EXPECT_EQ(e.waited(), 0ns);
        EXPECT_EQ(e.capacity(), 64u << 10);
        EXPECT_EQ(e.code(), errc::capacity_exceeded);
    }
    EXPECT_EQ(pool.stats().failures, 1u);
    EXPECT_EQ(pool.stats().waits, 0u) << "refused at once";
    free_all(pool, blocks, 1024);
    EXPECT_EQ(pool.live_bytes(), 0u);
}

// Eight threads fight over a small cap while a ninth reads stats() all along; returns the final
// stats. The cap must hold for what the workers see, for the pool's own peak, and for every
// snapshot taken while they run.
pool_stats hammer(const pool_options& o) {
    const std::size_t cap = o.capacity;
    pool_resource pool(o);
    // Ballast leaves 48 KiB to fight over: each worker's demand (up to 12 blocks of up to
    // 9 KiB) exceeds it even when the scheduler runs them one after another, so waits are certain.
    constexpr std::size_t ballast_block = 4096, headroom = 48 << 10;
    std::vector<void*> ballast;
    for (std::size_t held = 0; held + headroom < cap; held += ballast_block)
        ballast.push_back(pool.allocate(ballast_block));
    std::atomic<std::size_t> live{ballast.size() * ballast_block}, high{0}, snapshot_high{0};
    std::atomic<bool> done{false};
    std::latch start(9);
    std::thread monitor([&] {
        start.arrive_and_wait();
        while (!done.load()) {
            const pool_stats s = pool.stats();
            snapshot_high = std::max(
                {snapshot_high.load(), s.live_bytes, s.peak_live_bytes, pool.live_bytes()});
        }
    });
    std::vector<std::thread> workers;
    for (int t = 0; t < 8; ++t) {
        workers.emplace_back([&, t] {
            start.arrive_and_wait();
            std::mt19937 rng(static_cast<unsigned>(t));
            std::vector<std::pair<void*, std::size_t>> mine;
            for (int i = 0; i < 1500; ++i) {
                if (mine.size() < 12 && rng() % 3 != 0) {
                    const std::size_t n = 16 + rng() % 9000;
                    try {
                        void* p = pool.allocate(n);
                        // Counted after the pool hands it out: never more than what is live.
                        const std::size_t now = live += pool.block_size(n);
                        std::size_t h = high.load();
                        while (now > h && !high.compare_exchange_weak(h, now)) {
                        }
                        mine.emplace_back(p, n);
                    } catch (const capacity_exceeded&) {
                        // everyone holds and waits: let go of everything
                        for (auto [p, m] : mine) {
                            live -= pool.block_size(m);
                            pool.deallocate(p, m);
                        }
                        mine.clear();
                    }
                } else if (!mine.empty()) {
                    const std::size_t k = rng() % mine.size();
                    live -= pool.block_size(mine[k].second);
                    pool.deallocate(mine[k].first, mine[k].second);
                    mine[k] = mine.back();
                    mine.pop_back();
                }
            }
            for (auto [p, m] : mine) {
                live -= pool.block_size(m);
                pool.deallocate(p, m);
            }
        });
    }
    for (auto& w : workers)
        w.join();
    done = true;
    monitor.join();
    free_all(pool, ballast, ballast_block);
    const pool_stats s = pool.stats();
    EXPECT_LE(high.load(), cap);
    EXPECT_LE(s.peak_live_bytes, cap);
    EXPECT_LE(snapshot_high.load(), cap) << "a snapshot taken while threads ran passed the cap";
    EXPECT_GT(s.waits, 0u) << "the cap was really reached";
    EXPECT_EQ(s.live_bytes, 0u);
    EXPECT_EQ(pool.live_bytes(), 0u);
    EXPECT_EQ(s.overcommits, 0u);
    return s;
}

TEST(Capacity, ExactUnderManyThreadsHammeringASmallCap) {
    hammer(capped(256 << 10, exhaustion::wait, 1ms));
}

TEST(Capacity, ExactUnderManyThreadsWithPacingAboveASoftThreshold) {
    // Paced requests sleep between their turn and their allocation, while waiters reclaim credit
    // from every cache: the pause must never leave credit that can be taken from under it.
    pool_options o = capped(256 << 10, exhaustion::wait, 1ms);
    o.delay_threshold = 0.5;
    o.backoff.max_interval = 200us;
    const pool_stats s = hammer(o);
    EXPECT_GT(s.paced, 0u);
}

TEST(Capacity, WaitWakesEarlyWhenAnotherThreadFrees) {
    pool_resource pool(capped(64 << 10, exhaustion::wait, forever));
    std::vector<void*> blocks = fill(pool, 4096);
    ASSERT_EQ(blocks.size(), 16u);
    std::atomic<bool> returned{false};
    clock_type::time_point freed_at{};
    std::thread waiter([&] {
        void* p = pool.allocate(4096);  // waits: the pool is full
        returned = true;
        pool.deallocate(p, 4096);
    });
    while (pool.stats().waiters == 0)
        std::this_thread::yield();
    std::this_thread::sleep_for(20ms);
    EXPECT_FALSE(returned.load());
    freed_at = clock_type::now();
    pool.deallocate(blocks.back(), 4096);
    blocks.pop_back();
    waiter.join();
    EXPECT_LT(clock_type::now() - freed_at, promptly) << "woken by the release, not by its budget";
    EXPECT_EQ(pool.stats().timeouts, 0u);
    free_all(pool, blocks, 4096);
}

TEST(Capacity, MemoryFreedByAThreadThatThenIdlesIsUsableByAnother) {
    // The freeing thread keeps the credit of what it freed in its cache; it then parks forever
    // (until the end of the test). A waiter elsewhere must still get it promptly.
    constexpr std::size_t cap = 256 << 10;
    pool_resource pool(capped(cap, exhaustion::wait, forever));
    std::latch freed(1), done(1);
    std::thread idler([&] {
        std::vector<void*> blocks = fill(pool, 8192);
        free_all(pool, blocks, 8192);
        freed.count_down();
        done.wait();  // idle: never touches the pool again while the main thread waits
    });
    freed.wait();
    const auto start = clock_type::now();
    void* all = pool.allocate(cap);  // needs every byte, including the idle thread's credit
    EXPECT_LT(clock_type::now() - start, promptly);
    EXPECT_EQ(pool.live_bytes(), cap);
    pool.deallocate(all, cap);
    done.count_down();
    idler.join();
}

TEST(Capacity, TimeoutThrowsAfterMaxElapsedWithTheDetails) {
    pool_resource pool(capped(32 << 10, exhaustion::wait, 50ms));
    std::vector<void*> blocks = fill(pool, 1024);
    const auto start = clock_type::now();
    try {
        (void)pool.allocate(1024);
        FAIL() << "expected a timeout";
    } catch (const capacity_exceeded& e) {
        EXPECT_GE(clock_type::now() - start, 50ms);
        EXPECT_GE(e.waited(), 50ms);
        EXPECT_LT(e.waited(), 10s);
        EXPECT_EQ(e.code(), errc::timed_out);
        EXPECT_NE(std::string(e.what()).find("1024 bytes requested"), std::string::npos);
    }
    const pool_stats s = pool.stats();
    EXPECT_EQ(s.timeouts, 1u);
    EXPECT_EQ(s.waits, 1u);
    EXPECT_GE(s.max_wait, 50ms);
    EXPECT_EQ(s.waiters, 0u);
    free_all(pool, blocks, 1024);
}

TEST(Capacity, OvercommitWaitsThenProceedsPastTheCap) {
    pool_resource pool(capped(16 << 10, exhaustion::overcommit, 30ms));
    std::vector<void*> blocks = fill(pool, 1024);
    const auto start = clock_type::now();
    void* extra = pool.allocate(1024);
    EXPECT_GE(clock_type::now() - start, 30ms);
    EXPECT_EQ(pool.live_bytes(), (16u << 10) + 1024) << "past the cap";
    EXPECT_EQ(pool.stats().overcommits, 1u);
    pool.deallocate(extra, 1024);
    free_all(pool, blocks, 1024);
    EXPECT_EQ(pool.live_bytes(), 0u);
    // Back under the cap: no more overcommits.
    void* p = pool.allocate(1024);
    EXPECT_EQ(pool.stats().overcommits, 1u);
    pool.deallocate(p, 1024);
}

TEST(Capacity, BypassServesFromUpstreamAndCountsNeverDrift) {
    counting_resource upstream;
    pool_resource pool(capped(32 << 10, exhaustion::bypass), &upstream);
    for (int burst = 0; burst < 5; ++burst) {
        std::vector<void*> pooled = fill(pool, 2048);  // fills the cap (fail scope)
        ASSERT_EQ(pooled.size(), 16u);
        std::vector<void*> extra;
        for (int i = 0; i < 50; ++i)
            extra.push_back(pool.allocate(2048));  // at the cap: bypass
        pool_stats s = pool.stats();
        EXPECT_EQ(s.waits, 0u) << "no delay";
        EXPECT_EQ(s.bypass_live_blocks, 50u);
        EXPECT_EQ(s.bypass_live_bytes, 50u * 2048);
        EXPECT_EQ(s.live_bytes, (32u << 10) + 50 * 2048);
        EXPECT_EQ(s.bypasses, 50u * static_cast<unsigned>(burst + 1));
        // Free in an interleaved order: pooled and bypassed blocks are told apart exactly.
        for (std::size_t i = 0; i < extra.size(); ++i) {
            pool.deallocate(extra[i], 2048);
            if (i < pooled.size()) pool.deallocate(pooled[i], 2048);
        }
        s = pool.stats();
        EXPECT_EQ(s.bypass_live_blocks, 0u);
        EXPECT_EQ(s.live_bytes, 0u);
        EXPECT_EQ(pool.live_bytes(), 0u) << "burst " << burst;
    }
    // The cap did not creep: exactly 16 blocks fit again.
    std::vector<void*> again = fill(pool, 2048);
    EXPECT_EQ(again.size(), 16u);
    free_all(pool, again, 2048);
    pool.trim();
    EXPECT_EQ(upstream.live_bytes(), 0u);
    EXPECT_EQ(upstream.mismatches(), 0u);
}

TEST(Capacity, WaitersAreServedInArrivalOrder) {
    constexpr std::size_t cap = 2 << 20;
    pool_resource pool(capped(cap, exhaustion::wait, 30s));
    std::vector<void*> small = fill(pool, 1024);
    ASSERT_EQ(small.size(), 2048u);
    std::atomic<bool> big_done{false};
    std::thread big([&] {
        void* p = pool.allocate(1 << 20);
        big_done = true;
        pool.deallocate(p, 1 << 20);
    });
    while (pool.stats().waiters == 0)
        std::this_thread::yield();
    std::atomic<int> small_done{0};
    std::vector<std::thread> smalls;
    for (int t = 0; t < 3; ++t) {
        smalls.emplace_back([&] {
            void* p = pool.allocate(1024);
            ++small_done;
            pool.deallocate(p, 1024);
        });
    }
    while (pool.stats().waiters < 4)
        std::this_thread::yield();
    // Free 1023 KiB: every 1 KiB request would fit, the 1 MiB one at the head not yet.
    for (std::size_t i = 0; i < 1023; ++i)
        pool.deallocate(small[i], 1024);
    std::this_thread::sleep_for(30ms);
    EXPECT_EQ(small_done.load(), 0) << "nobody overtook the 1 MiB request";
    EXPECT_FALSE(big_done.load());
    EXPECT_EQ(pool.stats().waiters, 4u);
    pool.deallocate(small[1023], 1024);  // now the head fits, then the others
    big.join();
    for (auto& t : smalls)
        t.join();
    EXPECT_EQ(small_done.load(), 3);
    for (std::size_t i = 1024; i < small.size(); ++i)
        pool.deallocate(small[i], 1024);
    EXPECT_EQ(pool.live_bytes(), 0u);
}

TEST(Capacity, RaisingTheCapacityWakesWaiters) {
    pool_resource pool(capped(16 << 10, exhaustion::wait, forever));
    std::vector<void*> blocks = fill(pool, 1024);
    std::vector<std::thread> waiters;
    for (int i = 0; i < 3; ++i) {
        waiters.emplace_back([&] { pool.deallocate(pool.allocate(1024), 1024); });
    }
    while (pool.stats().waiters < 3)
        std::this_thread::yield();
    const auto start = clock_type::now();
    pool.set_capacity(64 << 10);
    for (auto& w : waiters)
        w.join();
    EXPECT_LT(clock_type::now() - start, promptly);
    EXPECT_EQ(pool.stats().timeouts, 0u);
    EXPECT_EQ(pool.capacity(), 64u << 10);
    EXPECT_EQ(pool.options().capacity, 64u << 10);
    free_all(pool, blocks, 1024);
}

TEST(Capacity, LoweringTheCapacityBelowLiveMakesNewRequestsWait) {
    pool_resource pool(capped(1 << 20, exhaustion::fail));
    std::vector<void*> blocks;
    for (int i = 0; i < 32; ++i)
        blocks.push_back(pool.allocate(1024));
    pool.set_capacity(16 << 10);  // below the 32 KiB live: nothing is taken back
    EXPECT_EQ(pool.live_bytes(), 32u << 10);
    EXPECT_THROW((void)pool.allocate(16), capacity_exceeded);
    for (int i = 0; i < 17; ++i)
        pool.deallocate(blocks[static_cast<std::size_t>(i)], 1024);
    void* p = pool.allocate(1024);  // 15 KiB live: one fits again
    EXPECT_THROW((void)pool.allocate(1024), capacity_exceeded);
    pool.deallocate(p, 1024);
    for (std::size_t i = 17; i < blocks.size(); ++i)
        pool.deallocate(blocks[i], 1024);
    pool.set_capacity(0);  // unlimited
    std::vector<void*> many;
    for (int i = 0; i < 2000; ++i)
        many.push_back(pool.allocate(1024));
    free_all(pool, many, 1024);
}

TEST(Capacity, MaxLiveBlocksIsACapToo) {
    pool_resource pool({.max_live_blocks = 10, .on_exhaustion = exhaustion::fail});
    std::vector<void*> blocks;
    for (int i = 0; i < 10; ++i)
        blocks.push_back(pool.allocate(i % 2 ? 16 : 50000));
    EXPECT_EQ(pool.live_blocks(), 10u);
    try {
        (void)pool.allocate(16);
        FAIL() << "an 11th block";
    } catch (const capacity_exceeded& e) {
        EXPECT_EQ(e.capacity(), 0u) << "no byte capacity: the block cap was hit";
        EXPECT_NE(std::string(e.what()).find("live-block cap"), std::string::npos);
    }
    for (int i = 0; i < 10; ++i)
        pool.deallocate(blocks[static_cast<std::size_t>(i)], i % 2 ? 16 : 50000);
    pool.set_max_live_blocks(0);
    EXPECT_EQ(pool.max_live_blocks(), 0u);
}

TEST(Capacity, LargeRequestsCountAgainstTheCap) {
    pool_resource pool(capped(4 << 20, exhaustion::fail));
    void* big = pool.allocate(3 << 20);  // above the size classes: straight from upstream
    EXPECT_EQ(pool.live_bytes(), 3u << 20);
    EXPECT_THROW((void)pool.allocate(2 << 20), capacity_exceeded);
    void* ok = pool.allocate(1 << 20);
    EXPECT_EQ(pool.live_bytes(), 4u << 20);
    pool.deallocate(big, 3 << 20);
    pool.deallocate(ok, 1 << 20);
    EXPECT_EQ(pool.live_bytes(), 0u);
}

TEST(Capacity, RequestLargerThanTheCapacity) {
    pool_resource waiting(capped(64 << 10, exhaustion::wait, 10s));
    try {
        (void)waiting.allocate(128 << 10);
        ADD_FAILURE() << "a request larger than the capacity succeeded";
    } catch (const capacity_exceeded& e) {
        EXPECT_EQ(e.code(), errc::capacity_exceeded) << "refused, not timed out";
        EXPECT_EQ(e.waited(), 0ns);
    }
    EXPECT_EQ(waiting.stats().waits, 0u) << "waiting could not help: refused at once";
    pool_resource overcommitting(capped(64 << 10, exhaustion::overcommit, 10s));
    void* p = overcommitting.allocate(128 << 10);
    EXPECT_EQ(overcommitting.stats().overcommits, 1u);
    overcommitting.deallocate(p, 128 << 10);
}

TEST(Capacity, TryAllocateNeverWaits) {
    pool_resource pool(capped(8 << 10, exhaustion::wait, 10s));
    std::vector<void*> blocks = fill(pool, 512);
    EXPECT_EQ(pool.try_allocate(512), nullptr);
    EXPECT_EQ(pool.try_allocate(1 << 20), nullptr);
    EXPECT_EQ(pool.stats().waits, 0u);
    pool.deallocate(blocks.back(), 512);
    blocks.pop_back();
    void* p = pool.try_allocate(512);
    EXPECT_NE(p, nullptr);
    pool.deallocate(p, 512);
    free_all(pool, blocks, 512);
}

// allocate_at_least's pools: blocks above 4 KiB come from upstream at their exact size (rounded to
// 16 bytes), so that the middle step can be any size.
pool_options growth_options(std::size_t cap, exhaustion policy,
                            std::chrono::nanoseconds max_elapsed = 10s) {
    pool_options o = capped(cap, policy, max_elapsed);
    o.largest_pooled_block = 4 << 10;
    return o;
}

TEST(Capacity, AllocateAtLeastTakesThePreferredSizeElseAStepAboveTheNeed) {
    pool_resource pool(growth_options(700 << 10, exhaustion::wait));
    allocation_result a = pool.allocate_at_least(1000, 3000);
    ASSERT_NE(a.ptr, nullptr) << "far from the cap: the preferred size";
    EXPECT_EQ(a.bytes, pool.block_size(3000));
    pool.deallocate(a.ptr, a.bytes);
    a = pool.allocate_at_least(3000, 3000);
    EXPECT_EQ(a.bytes, pool.block_size(3000)) << "nothing above the need: the need";
    pool.deallocate(a.ptr, a.bytes);

    // The block being replaced holds 256 KiB: doubling it would pass 700 KiB.
    void* old = pool.allocate(256 << 10);
    const std::size_t need = (256u << 10) + 64;
    const std::size_t headroom = (700u - 256) << 10;
    const auto start = clock_type::now();
    a = pool.allocate_at_least(need, 512 << 10);
    ASSERT_NE(a.ptr, nullptr);
    EXPECT_GT(a.bytes, need);
    EXPECT_LE(a.bytes, need + (headroom - need) / 2) << "half the headroom above the need";
    EXPECT_EQ(pool.block_size(a.bytes), a.bytes) << "a whole block";
    EXPECT_EQ(pool.live_bytes(), (256u << 10) + a.bytes);
    pool.deallocate(a.ptr, a.bytes);

    // 200 KiB more live: not even the need fits beside the old block, and nothing waits for the
    // larger sizes; the need itself meets the policy (here a scope's fail: refused at once).
    void* other = pool.allocate(200 << 10);
    {
        const exhaustion_scope fail_fast(exhaustion::fail);
        EXPECT_THROW((void)pool.allocate_at_least(need, 512 << 10), capacity_exceeded);
    }
    EXPECT_LT(clock_type::now() - start, 2s) << "never waits";
    EXPECT_EQ(pool.stats().waits, 0u);
    EXPECT_EQ(pool.live_bytes(), std::size_t{456} << 10);
    pool.deallocate(other, 200 << 10);
    pool.deallocate(old, 256 << 10);
}

TEST(Capacity, AllocateAtLeastTakesThePreferredSizeWhenItFits) {
    pool_resource pool(growth_options(64 << 10, exhaustion::fail));
    const allocation_result a = pool.allocate_at_least(100, 2000);
    ASSERT_NE(a.ptr, nullptr);
    EXPECT_EQ(a.bytes, pool.block_size(2000)) << "the preferred size's whole block";
    EXPECT_EQ(pool.usable_size(a.ptr), a.bytes);
    EXPECT_EQ(pool.live_bytes(), a.bytes);
    const allocation_result b = pool.allocate_at_least(3000, 100);
    EXPECT_EQ(b.bytes, pool.block_size(3000)) << "a preferred size below the need: the need";
    const allocation_result c = pool.allocate_at_least(0, 0);
    EXPECT_NE(c.ptr, nullptr);
    EXPECT_EQ(c.bytes, pool.block_size(0)) << "as allocate(0): a unique block";
    EXPECT_EQ(pool.stats().waits, 0u);
    EXPECT_EQ(pool.stats().failures, 0u);
    pool.deallocate(c.ptr, c.bytes);
    pool.deallocate(b.ptr, b.bytes);
    pool.deallocate(a.ptr, a.bytes);
    EXPECT_EQ(pool.live_bytes(), 0u);
}

TEST(Capacity, AllocateAtLeastTakesAMiddleStepWhenThePreferredSizeDoesNotFit) {
    // 64 KiB live and a 256 KiB cap: 192 KiB of headroom, so 128 KiB does not fit beside it, and
    // the step above a 40 KiB need takes at most half of the 152 KiB left above it.
    pool_resource pool(growth_options(256 << 10, exhaustion::wait, forever));
    void* old = pool.allocate(64 << 10);
    const std::size_t need = 40u << 10;
    const std::size_t headroom = (256u - 64) << 10;
    const allocation_result a = pool.allocate_at_least(need, 256 << 10);
    ASSERT_NE(a.ptr, nullptr);
    EXPECT_GT(a.bytes, need) << "more than the need";
    EXPECT_LT(a.bytes, pool.block_size(256 << 10)) << "less than the preferred size";
    EXPECT_LE(a.bytes, need + (headroom - need) / 2) << "half the headroom above the need";
    EXPECT_GE(a.bytes, need + (headroom - need) / 2 - 16) << "the largest such block";
    EXPECT_EQ(pool.live_bytes(), (64u << 10) + a.bytes);
    EXPECT_EQ(pool.stats().waits, 0u) << "the preferred size was not waited for";
    pool.deallocate(a.ptr, a.bytes);
    pool.deallocate(old, 64 << 10);
}

TEST(Capacity, AllocateAtLeastTakesJustTheNeedWhenOnlyItFits) {
    // Under wait with a long max_elapsed: neither the preferred size nor a step above the need is
    // waited for, and the need, which fills the capacity exactly, is granted at once.
    pool_resource pool(growth_options(256 << 10, exhaustion::wait, forever));
    const std::size_t need = (100u << 10) + 64;
    void* other = pool.allocate((256u << 10) - need);
    const allocation_result a = pool.allocate_at_least(need, 200 << 10);
    ASSERT_NE(a.ptr, nullptr);
    EXPECT_EQ(a.bytes, pool.block_size(need)) << "just the need";
    EXPECT_EQ(pool.usable_size(a.ptr), a.bytes);
    EXPECT_EQ(pool.live_bytes(), std::size_t{256} << 10) << "the capacity, exactly";
    EXPECT_EQ(pool.stats().waits, 0u);
    pool.deallocate(a.ptr, a.bytes);
    pool.deallocate(other, (256u << 10) - need);
}

// How allocate_at_least(min, preferred) failed: the code and wait of its capacity_exceeded.
struct refusal {
    std::error_code code;
    std::chrono::nanoseconds waited{0};
};
refusal refusal_of(pool_resource& pool, std::size_t min, std::size_t preferred) {
    try {
        const allocation_result a = pool.allocate_at_least(min, preferred);
        pool.deallocate(a.ptr, a.bytes);
        ADD_FAILURE() << "allocate_at_least succeeded past the cap";
    } catch (const capacity_exceeded& e) {
        return {e.code(), e.waited()};
    }
    return {};
}

TEST(Capacity, AllocateAtLeastRefusesAtOnceUnderFailWhenTheNeedDoesNotFit) {
    pool_resource pool(capped(8 << 10, exhaustion::fail, forever));
    std::vector<void*> blocks = fill(pool, 512);
    const std::size_t live = pool.live_bytes();
    const refusal r = refusal_of(pool, 512, 4096);
    EXPECT_EQ(r.code, errc::capacity_exceeded) << "refused, not timed out";
    EXPECT_EQ(r.waited, 0ns);
    EXPECT_EQ(pool.stats().waits, 0u);
    EXPECT_EQ(pool.live_bytes(), live) << "nothing was left allocated";
    // The same under wait, inside an exhaustion_scope that says fail.
    pool_resource waiting(capped(8 << 10, exhaustion::wait, forever));
    std::vector<void*> more = fill(waiting, 512);
    {
        const exhaustion_scope fail_fast(exhaustion::fail);
        EXPECT_THROW((void)waiting.allocate_at_least(512, 4096), capacity_exceeded);
    }
    EXPECT_EQ(waiting.stats().waits, 0u);
    free_all(waiting, more, 512);
    free_all(pool, blocks, 512);
}

TEST(Capacity, AllocateAtLeastWaitsUnderWaitWhenTheNeedDoesNotFit) {
    // Only the need is waited for: until a short deadline, then until a block is given back.
    pool_resource pool(capped(8 << 10, exhaustion::wait, forever));
    std::vector<void*> blocks = fill(pool, 512);
    {
        // The scope's deadline is an instant set before the request starts, so the request's own
        // wait (measured from its start) can be a little shorter than 40 ms; the call as a whole
        // cannot return before the deadline.
        const auto before = clock_type::now();
        const exhaustion_scope soon(before + 40ms);
        const refusal r = refusal_of(pool, 512, 4096);
        const auto after = clock_type::now();
        EXPECT_EQ(r.code, errc::timed_out) << "waited, then gave up";
        EXPECT_GE(after - before, 40ms);
        EXPECT_GT(r.waited.count(), 0);
        EXPECT_LE(r.waited, after - before);
    }
    EXPECT_EQ(pool.stats().waits, 1u);
    EXPECT_EQ(pool.stats().timeouts, 1u);

    const allocation_result a = woken_by_release(pool, blocks.back(), 512,
                                                 [&] { return pool.allocate_at_least(512, 4096); });
    blocks.pop_back();
    EXPECT_EQ(a.bytes, pool.block_size(512)) << "the need, as allocate(512) would give";
    EXPECT_EQ(pool.stats().waits, 2u);
    EXPECT_EQ(pool.stats().timeouts, 1u);
    pool.deallocate(a.ptr, a.bytes);
    free_all(pool, blocks, 512);
}

TEST(Capacity, AllocateAtLeastOverAnyResource) {
    // Over another resource: the preferred size, else the need; it reports the need's failure.
    counting_resource up;
    allocation_result a = allocate_at_least(up, 100, 300);
    EXPECT_EQ(a.bytes, 300u);
    up.deallocate(a.ptr, a.bytes);
    up.fail_after(0);  // the preferred size fails, the need succeeds
    a = allocate_at_least(up, 100, 300);
    EXPECT_EQ(a.bytes, 100u);
    EXPECT_EQ(up.failures(), 1u);
    up.deallocate(a.ptr, a.bytes);
    a = allocate_at_least(up, 100, 50);
    EXPECT_EQ(a.bytes, 100u) << "a preferred size below the need: the need alone";
    up.deallocate(a.ptr, a.bytes);
    up.fail_all(true);
    EXPECT_THROW((void)allocate_at_least(up, 100, 300), std::bad_alloc);
    up.fail_all(false);
    EXPECT_EQ(up.live_bytes(), 0u);
    EXPECT_EQ(up.mismatches(), 0u);

    // Over a pool, seen as any resource: the pool's own allocate_at_least, its classes included.
    pool_resource pool(growth_options(64 << 10, exhaustion::fail));
    std::pmr::memory_resource& any = pool;
    a = allocate_at_least(any, 100, 1000);
    EXPECT_EQ(a.bytes, pool.block_size(1000));
    EXPECT_EQ(pool.live_bytes(), a.bytes);
    any.deallocate(a.ptr, a.bytes);
}

TEST(Capacity, AllocateForWaitsAtMostItsTimeout) {
    // allocate_for waits whatever the policy, for its own timeout, not the pool's max_elapsed.
    pool_resource pool(capped(8 << 10, exhaustion::fail, forever));
    std::vector<void*> blocks = fill(pool, 512);
    const auto start = clock_type::now();
    EXPECT_THROW((void)pool.allocate_for(512, 16, 40ms), capacity_exceeded);
    EXPECT_GE(clock_type::now() - start, 40ms);
    EXPECT_LT(clock_type::now() - start, promptly);
    EXPECT_EQ(pool.stats().timeouts, 1u);
    void* p = woken_by_release(pool, blocks.back(), 512,
                               [&] { return pool.allocate_for(512, 16, forever); });
    EXPECT_EQ(pool.stats().waits, 2u);
    EXPECT_EQ(pool.stats().timeouts, 1u);
    blocks.pop_back();
    pool.deallocate(p, 512);
    free_all(pool, blocks, 512);
}

TEST(Capacity, StallWarningAndTimeoutAreReported) {
    std::mutex m;
    std::vector<stall_event> events;
    pool_options o = capped(8 << 10, exhaustion::wait, 150ms);
    o.stall_warning = 30ms;
    o.on_stall = [&](const stall_event& e) {
        std::lock_guard lock(m);
        events.push_back(e);
    };
    pool_resource pool(o);
    std::vector<void*> blocks = fill(pool, 512);
    EXPECT_THROW((void)pool.allocate(300), capacity_exceeded);
    std::lock_guard lock(m);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].what, stall_event::kind::stalled);
    EXPECT_GE(events[0].waited, 30ms);
    EXPECT_EQ(events[0].requested, 300u);
    EXPECT_EQ(events[0].capacity, 8u << 10);
    EXPECT_EQ(events[0].live_bytes, 8u << 10);
    EXPECT_EQ(events[1].what, stall_event::kind::timed_out);
    EXPECT_GE(events[1].waited, 150ms);
    free_all(pool, blocks, 512);
}

TEST(Capacity, AThrowingStallCallbackLeavesThePoolConsistent) {
    pool_options o = capped(8 << 10, exhaustion::wait, 100ms);
    o.stall_warning = 1ms;
    std::atomic<int> calls{0};
    o.on_stall = [&](const stall_event&) {
        ++calls;
        throw std::runtime_error("logger failed");
    };
    pool_resource pool(o);
    std::vector<void*> blocks = fill(pool, 512);
    EXPECT_THROW((void)pool.allocate(512), capacity_exceeded) << "the request still times out";
    EXPECT_EQ(calls.load(), 2) << "stalled, then timed out";
    EXPECT_EQ(pool.stats().waiters, 0u);
    // The queue is intact: a new waiter is served by the next release.
    std::thread releaser([&] {
        while (pool.stats().waiters == 0)
            std::this_thread::yield();
        pool.deallocate(blocks.back(), 512);
    });
    void* p = pool.allocate_for(512, alignof(std::max_align_t), 20s);
    releaser.join();
    blocks.back() = p;
    free_all(pool, blocks, 512);
    EXPECT_EQ(pool.live_bytes(), 0u);
}

TEST(Capacity, NoPacingForRequestsThatPromiseNotToWait) {
    // Above the soft threshold a paced request would sleep for seconds here.
    pool_options o = capped(64 << 10, exhaustion::wait, 10s);
    o.delay_threshold = 0.25;
    o.backoff.max_interval = 10s;
    pool_resource pool(o);
    std::vector<void*> blocks;
    {
        exhaustion_scope fail_fast(exhaustion::fail);
        for (int i = 0; i < 48; ++i)
            blocks.push_back(pool.allocate(1024));  // up to 48 KiB: far above the threshold
        EXPECT_EQ(pool.stats().paced, 0u) << "a fail scope is not paced";
    }
    for (int i = 0; i < 8; ++i) {
        void* p = pool.try_allocate(1024);
        ASSERT_NE(p, nullptr);
        blocks.push_back(p);
    }
    EXPECT_EQ(pool.stats().paced, 0u) << "try_allocate is not paced";
    free_all(pool, blocks, 1024);
}

TEST(Capacity, BypassBlocksAreToldApartUnderConcurrentFrees) {
    // Threads take bypass blocks at a full cap and hand them to a neighbour to free, while the
    // last bypass block of one burst and the first of the next race each other: every bypass
    // block must still reach upstream, never a cache.
    counting_resource upstream;
    {
        pool_resource pool(capped(32 << 10, exhaustion::bypass), &upstream);
        std::vector<void*> pooled = fill(pool, 2048);
        constexpr int threads = 4, rounds = 3000;
        std::vector<std::atomic<void*>> mailbox(threads);
        std::latch start(threads);
        std::vector<std::thread> workers;
        for (int t = 0; t < threads; ++t) {
            workers.emplace_back([&, t] {
                start.arrive_and_wait();
                for (int i = 0; i < rounds; ++i) {
                    void* mine = pool.allocate(2048);  // at the cap: bypass
                    if (void* theirs = mailbox[static_cast<std::size_t>(t)].exchange(nullptr))
                        pool.deallocate(theirs, 2048);
                    void* old = mailbox[static_cast<std::size_t>((t + 1) % threads)].exchange(mine);
                    if (old != nullptr) pool.deallocate(old, 2048);
                }
            });
        }
        for (auto& w : workers)
            w.join();
        for (auto& m : mailbox)
            if (void* p = m.exchange(nullptr)) pool.deallocate(p, 2048);
        const pool_stats s = pool.stats();
        EXPECT_EQ(s.bypass_live_blocks, 0u);
        EXPECT_EQ(s.live_bytes, 32u << 10) << "only the pooled blocks are live";
        free_all(pool, pooled, 2048);
        EXPECT_EQ(pool.live_bytes(), 0u);
        std::vector<void*> again = fill(pool, 2048);
        EXPECT_EQ(again.size(), 16u) << "the cap did not creep";
        free_all(pool, again, 2048);
    }
    EXPECT_EQ(upstream.live_bytes(), 0u);
    EXPECT_EQ(upstream.mismatches(), 0u);
}

TEST(Capacity, BackoffResetsOnceUsageIsBackUnderTheCap) {
    pool_options o = capped(8 << 10, exhaustion::wait, forever);
    o.backoff.randomization = 0;
    pool_resource pool(o);
    EXPECT_EQ(pool.stats().backoff_interval, o.backoff.initial_interval);
    std::vector<void*> blocks = fill(pool, 512);
    // The release comes once the wait has taken a step (the interval grew), however long the
    // machine takes to get there; the waiter then takes the freed block, so usage is at the cap.
    std::atomic<bool> returned{false};
    std::thread releaser([&] {
        while (pool.stats().backoff_interval == o.backoff.initial_interval && !returned.load())
            std::this_thread::yield();
        pool.deallocate(blocks.back(), 512);
    });
    void* p = pool.allocate(512);
    returned = true;
    releaser.join();
    blocks.back() = p;
    const pool_stats s = pool.stats();
    EXPECT_EQ(s.waits, 1u);
    EXPECT_EQ(s.timeouts, 0u);
    EXPECT_GT(s.backoff_interval, o.backoff.initial_interval)
        << "grew while waiting, and is not reset while usage is at the cap";
    pool.deallocate(blocks.back(), 512);  // usage under the cap, nobody waiting
    blocks.pop_back();
    EXPECT_EQ(pool.stats().backoff_interval, o.backoff.initial_interval);
    free_all(pool, blocks, 512);
}

TEST(Capacity, SoftThresholdPacesRequestsAboveIt) {
    pool_options o = capped(64 << 10, exhaustion::fail);
    o.delay_threshold = 0.5;
    o.backoff.max_interval = 2ms;
    pool_resource pool(o);
    std::vector<void*> blocks;
    for (int i = 0; i < 24; ++i)
        blocks.push_back(pool.allocate(1024));  // 24 KiB: below
    EXPECT_EQ(pool.stats().paced, 0u);
    const auto start = clock_type::now();
    for (int i = 0; i < 32; ++i)
        blocks.push_back(pool.allocate(1024));  // up to 56 KiB
    EXPECT_GT(pool.stats().paced, 20u);
    EXPECT_GE(clock_type::now() - start, 5ms) << "the pauses add up";
    free_all(pool, blocks, 1024);
}

TEST(ExhaustionScope, OverridesPolicyAndDeadlineAndNests) {
    pool_resource pool(capped(8 << 10, exhaustion::wait, forever));
    std::vector<void*> blocks = fill(pool, 512);
    {
        // The deadline is measured from before the scope: it cannot pass before it is set.
        auto start = clock_type::now();
        exhaustion_scope outer(start + 50ms);
        EXPECT_THROW((void)pool.allocate(512), capacity_exceeded);  // waits until the deadline
        EXPECT_GE(clock_type::now() - start, 50ms);
        EXPECT_LT(clock_type::now() - start, promptly);
        {
            exhaustion_scope inner(exhaustion::fail);
            const std::uint64_t waits = pool.stats().waits;
            EXPECT_THROW((void)pool.allocate(512), capacity_exceeded);
            EXPECT_EQ(pool.stats().waits, waits) << "fails fast";
            {
                exhaustion_scope innermost(exhaustion::bypass, clock_type::now() + 1h);
                void* p = pool.allocate(512);  // innermost policy wins
                pool.deallocate(p, 512);
            }
            EXPECT_THROW((void)pool.allocate(512), capacity_exceeded);
        }
        {
            // Cannot extend the outer one, which has passed.
            exhaustion_scope later_deadline(clock_type::now() + forever);
            start = clock_type::now();
            EXPECT_THROW((void)pool.allocate(512), capacity_exceeded);
            EXPECT_LT(clock_type::now() - start, promptly);
        }
    }
    // Scopes are per thread: another thread still follows the pool's policy.
    std::thread other([&] {
        exhaustion_scope overcommit_here(exhaustion::overcommit, clock_type::now() + 10ms);
        void* p = pool.allocate(512);
        pool.deallocate(p, 512);
    });
    {
        exhaustion_scope fail_here(exhaustion::fail);
        EXPECT_THROW((void)pool.allocate(512), capacity_exceeded);
    }
    other.join();
    free_all(pool, blocks, 512);
}

}  // namespace
}  // namespace bpool

namespace bpool {
namespace {

TEST(CapQueue, WaitersArrivingAtAFullPoolQuiesceNoCache) {
    // At the cap with no credit stranded anywhere, requests queue without reaching into other
    // threads' caches: each step of a wait looks (no barrier) and finds nothing that could help.
    pool_resource pool({.capacity = 64 << 10,
                        .on_exhaustion = exhaustion::wait,
                        .backoff = {.max_elapsed = std::chrono::seconds(60)}});
    std::vector<void*> held;
    {
        const exhaustion_scope fail(exhaustion::fail);
        try {
            for (;;)
                held.push_back(pool.allocate(4096));
        } catch (const capacity_exceeded&) {
        }
    }
    ASSERT_FALSE(held.empty());
    const std::uint64_t before = pool.stats().quiesces;
    constexpr int waiters = 4;
    std::vector<std::thread> threads;
    for (int i = 0; i < waiters; ++i)
        threads.emplace_back([&] { pool.deallocate(pool.allocate(4096), 4096); });
    while (pool.stats().waiters < waiters)
        std::this_thread::yield();
    EXPECT_EQ(pool.stats().quiesces, before) << "queueing needed no quiesce";
    for (void* p : held)  // each free hands its block on to the head of the queue
        pool.deallocate(p, 4096);
    for (std::thread& t : threads)
        t.join();
    EXPECT_EQ(pool.stats().timeouts, 0u);
}

}  // namespace
}  // namespace bpool
