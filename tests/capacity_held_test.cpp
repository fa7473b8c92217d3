// A capacity that covers everything the pool holds (pool_options::capacity_covers =
// capacity_scope::held): upstream_bytes never passes it; idle memory (every thread's cache
// included) goes back before a request waits or is refused.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <random>
#include <thread>
#include <vector>

#include <bpool/buffer_pool.hpp>
#include <bpool/errors.hpp>
#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "support/capped.hpp"

namespace bpool {
namespace {

using namespace std::chrono_literals;
constexpr std::size_t kib = 1024;

pool_options budget(std::size_t cap, exhaustion policy = exhaustion::wait,
                    std::chrono::nanoseconds patience = std::chrono::minutes(5)) {
    pool_options o = test::capped(cap, policy, patience);
    o.capacity_covers = capacity_scope::held;
    return o;
}

TEST(CapacityHeld, IsInForceAndReported) {
    pool_resource pool(budget(256 * kib));
    EXPECT_EQ(pool.options().capacity_covers, capacity_scope::held);
    pool_resource plain(test::capped(256 * kib));
    EXPECT_EQ(plain.options().capacity_covers, capacity_scope::live);
}

TEST(CapacityHeld, IdleMemoryOfOneClassGoesBackForAnother) {
    // 1 KiB blocks fill the budget, then all go idle (cached); a large request needs the room.
    pool_resource pool(budget(256 * kib, exhaustion::fail));
    std::vector<void*> small;
    for (int i = 0; i < 150; ++i)
        small.push_back(pool.allocate(kib));
    for (void* p : small)
        pool.deallocate(p, kib);
    EXPECT_GT(pool.stats().upstream_bytes, 128 * kib);  // kept for reuse
    void* big = pool.allocate(200 * kib);               // fits only once the idle blocks went back
    EXPECT_LE(pool.stats().upstream_bytes, 256 * kib);
    EXPECT_LE(pool.stats().peak_upstream_bytes, 256 * kib);
    pool.deallocate(big, 200 * kib);
}

TEST(CapacityHeld, AnotherThreadsCacheGivesItsIdleBlocksBack) {
    pool_resource pool(budget(256 * kib, exhaustion::fail));
    std::atomic<int> phase{0};
    std::thread other([&] {
        std::vector<void*> blocks;
        for (int i = 0; i < 60; ++i)
            blocks.push_back(pool.allocate(2 * kib));
        for (void* p : blocks)
            pool.deallocate(p, 2 * kib);  // into this thread's cache
        phase = 1;
        while (phase != 2)
            std::this_thread::sleep_for(1ms);
    });
    while (phase != 1)
        std::this_thread::sleep_for(1ms);
    void* big = pool.allocate(200 * kib);
    EXPECT_LE(pool.stats().peak_upstream_bytes, 256 * kib);
    pool.deallocate(big, 200 * kib);
    phase = 2;
    other.join();
}

TEST(CapacityHeld, FailRefusesWhatLiveMemoryLeavesNoRoomFor) {
    pool_resource pool(budget(256 * kib, exhaustion::fail));
    void* a = pool.allocate(100 * kib);
    void* b = pool.allocate(100 * kib);
    // Live 200 KiB: 56 KiB of room under the budget, less the chunks' slack.
    EXPECT_THROW((void)pool.allocate(100 * kib), capacity_exceeded);
    EXPECT_EQ(pool.try_allocate(100 * kib), nullptr);
    EXPECT_LE(pool.stats().peak_upstream_bytes, 256 * kib);
    pool.deallocate(a, 100 * kib);
    pool.deallocate(b, 100 * kib);
}

// Live blocks spread over chunks: every other 1 KiB block freed leaves half the bytes live and
// every chunk still in use, so what upstream holds cannot shrink to what is live.
std::vector<void*> fragment(pool_resource& pool, int blocks) {
    std::vector<void*> all, kept;
    for (int i = 0; i < blocks; ++i)
        all.push_back(pool.allocate(kib));
    for (int i = 0; i < blocks; ++i)
        (i % 2 == 0 ? kept.push_back(all[i]) : pool.deallocate(all[i], kib));
    return kept;
}

class refused_or_not : public memory_request {
  public:
    std::atomic<bool> done{false};
    async_status status = async_status::granted;
    void* block = nullptr;
    void on_complete(void* p, async_status s) noexcept override {
        block = p;
        status = s;
        done = true;
    }
};

TEST(CapacityHeld, WhatFitsUnderTheLiveCapButNotUpstreamIsRefused) {
    pool_resource pool(budget(256 * kib, exhaustion::fail));
    const std::vector<void*> kept = fragment(pool, 200);
    EXPECT_LE(pool.live_bytes(), 101 * kib);
    EXPECT_GT(pool.stats().upstream_bytes, 150 * kib);
    EXPECT_THROW((void)pool.allocate(140 * kib), capacity_exceeded);
    refused_or_not r;  // an async request: granted its credit, then refused at the door
    pool.async_allocate(r, 140 * kib);
    while (!r.done)
        std::this_thread::sleep_for(1ms);
    EXPECT_EQ(r.status, async_status::refused);
    EXPECT_EQ(r.block, nullptr);
    EXPECT_LE(pool.stats().peak_upstream_bytes, 256 * kib);
    for (void* p : kept)
        pool.deallocate(p, kib);
    EXPECT_EQ(pool.live_bytes(), 0u);
}

TEST(CapacityHeld, AWaitEndsWhenAnotherThreadFrees) {
    pool_resource pool(budget(256 * kib));
    void* a = pool.allocate(100 * kib);
    void* b = pool.allocate(100 * kib);
    // Taken before the freer starts its 20 ms: the wait cannot end sooner than that from here.
    const auto start = std::chrono::steady_clock::now();
    std::thread freer([&] {
        std::this_thread::sleep_for(20ms);
        pool.deallocate(a, 100 * kib);
    });
    void* c = pool.allocate(100 * kib);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
    freer.join();
    EXPECT_LE(pool.stats().peak_upstream_bytes, 256 * kib);
    pool.deallocate(b, 100 * kib);
    pool.deallocate(c, 100 * kib);
}

TEST(CapacityHeld, AWaitTimesOutNoSoonerThanItsDeadline) {
    pool_resource pool(budget(256 * kib, exhaustion::wait, 30ms));
    void* a = pool.allocate(100 * kib);
    void* b = pool.allocate(100 * kib);
    const auto start = std::chrono::steady_clock::now();
    try {
        (void)pool.allocate(100 * kib);
        ADD_FAILURE() << "no room, yet served";
    } catch (const capacity_exceeded& e) {
        EXPECT_EQ(e.code(), errc::timed_out);
        EXPECT_GE(e.waited(), 30ms);
    }
    EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
    pool.deallocate(a, 100 * kib);
    pool.deallocate(b, 100 * kib);
}

TEST(CapacityHeld, OvercommitProceedsPastTheBudgetAtItsDeadline) {
    pool_resource pool(budget(256 * kib, exhaustion::overcommit, 10ms));
    void* a = pool.allocate(100 * kib);
    void* b = pool.allocate(100 * kib);
    void* c = pool.allocate(100 * kib);
    EXPECT_GT(pool.stats().upstream_bytes, 256 * kib);
    for (void* p : {a, b, c})
        pool.deallocate(p, 100 * kib);
}

TEST(CapacityHeld, ThreadsChurningEveryClassNeverPassTheBudget) {
    constexpr std::size_t cap = 2 << 20;
    pool_resource pool(budget(cap));
    std::vector<std::thread> threads;
    std::atomic<int> errors{0};
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            std::mt19937 rng(static_cast<unsigned>(t));
            std::vector<std::pair<void*, std::size_t>> held;
            for (int i = 0; i < 20000; ++i) {
                if (held.size() < 24 && rng() % 3 != 0) {
                    const std::size_t n = std::size_t{16} << (rng() % 13);  // 16 B .. 64 KiB
                    try {
                        held.emplace_back(pool.allocate(n), n);
                    } catch (...) {
                        ++errors;
                    }
                } else if (!held.empty()) {
                    const std::size_t k = rng() % held.size();
                    pool.deallocate(held[k].first, held[k].second);
                    held[k] = held.back();
                    held.pop_back();
                }
            }
            for (auto& [p, n] : held)
                pool.deallocate(p, n);
        });
    }
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(errors, 0);
    EXPECT_LE(pool.stats().peak_upstream_bytes, cap);
}

TEST(CapacityHeld, ABufferPoolPassesItToItsResource) {
    buffer_pool pool(256 * kib, {.capacity_covers = capacity_scope::held});
    EXPECT_EQ(pool.resource().options().capacity_covers, capacity_scope::held);
    EXPECT_EQ(pool.options().capacity_covers, capacity_scope::held);
}

TEST(CapacityHeld, ALoweredCapacityLowersTheBudget) {
    pool_resource pool(budget(512 * kib, exhaustion::fail));
    void* a = pool.allocate(200 * kib);
    pool.set_capacity(256 * kib);
    EXPECT_THROW((void)pool.allocate(100 * kib), capacity_exceeded);
    pool.deallocate(a, 200 * kib);
    void* b = pool.allocate(200 * kib);
    EXPECT_LE(pool.stats().upstream_bytes, 256 * kib);
    pool.deallocate(b, 200 * kib);
}

}  // namespace
}  // namespace bpool
