// Asynchronous acquisition (include/bpool/async.hpp, pool_resource::async_allocate): requests that
// never block their caller, queued at the cap with the blocking ones, completed on bpool's
// completion thread with the same policies, deadlines, cancellation and destruction rules.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "support/async_record.hpp"
#include "support/capped.hpp"

namespace bpool {
namespace {

using namespace std::chrono_literals;
using test::capped;
using steady = std::chrono::steady_clock;

constexpr std::size_t kib = 1024;

using test::recorded;

TEST(AsyncAllocate, WhatFitsCompletesAtOnceOnTheCallingThread) {
    pool_resource pool(capped(64 * kib));
    recorded r;
    EXPECT_TRUE(pool.async_allocate(r, 100));
    EXPECT_EQ(r.count(), 1);
    EXPECT_EQ(r.status, async_status::granted);
    ASSERT_NE(r.block, nullptr);
    EXPECT_FALSE(r.pending());
    std::memset(r.block, 1, 100);
    EXPECT_EQ(pool.live_bytes(), pool.block_size(100));
    pool.deallocate(r.block, 100);
}

TEST(AsyncAllocate, AtTheCapWaitsWithoutBlockingAndCompletesWhenABlockComesBack) {
    pool_resource pool(capped(64 * kib));
    void* big = pool.allocate(64 * kib);
    recorded r;
    EXPECT_FALSE(pool.async_allocate(r, 1000));
    EXPECT_TRUE(r.pending());
    EXPECT_EQ(pool.stats().waiters, 1u);
    EXPECT_EQ(pool.stats().waits, 1u);
    pool.deallocate(big, 64 * kib);
    r.wait_for();
    EXPECT_EQ(r.status, async_status::granted);
    ASSERT_NE(r.block, nullptr);
    EXPECT_EQ(r.thread_name, "bpool-async");  // never on the thread that freed
    EXPECT_FALSE(r.pending());
    EXPECT_EQ(pool.stats().waiters, 0u);
    EXPECT_EQ(pool.live_bytes(), pool.block_size(1000));
    pool.deallocate(r.block, 1000);
}

TEST(AsyncAllocate, QueuesInArrivalOrderWithBlockingRequests) {
    pool_resource pool(capped(16 * kib));
    void* full = pool.allocate(16 * kib);
    std::atomic<bool> blocking_done{false};
    void* blocking_block = nullptr;
    std::thread blocker([&] {
        blocking_block = pool.allocate(16 * kib);
        blocking_done = true;
    });
    while (pool.stats().waiters < 1)
        std::this_thread::sleep_for(1ms);
    recorded r;
    EXPECT_FALSE(pool.async_allocate(r, 16 * kib));  // behind the blocking one
    pool.deallocate(full, 16 * kib);
    blocker.join();  // the first in line got the room
    EXPECT_TRUE(blocking_done);
    EXPECT_TRUE(r.pending());
    pool.deallocate(blocking_block, 16 * kib);
    r.wait_for();
    EXPECT_EQ(r.status, async_status::granted);
    pool.deallocate(r.block, 16 * kib);
}

TEST(AsyncAllocate, ManyRequestsCompleteInArrivalOrder) {
    pool_resource pool(capped(4 * kib));
    void* full = pool.allocate(4 * kib);
    constexpr int n = 200;
    std::vector<std::unique_ptr<recorded>> rs;
    for (int i = 0; i < n; ++i) {
        rs.push_back(std::make_unique<recorded>());
        EXPECT_FALSE(pool.async_allocate(*rs.back(), 4 * kib));
    }
    EXPECT_EQ(pool.stats().waiters, static_cast<std::size_t>(n));
    pool.deallocate(full, 4 * kib);
    for (int i = 0; i < n; ++i) {
        rs[i]->wait_for();
        ASSERT_EQ(rs[i]->status, async_status::granted);
        if (i > 0) {
            EXPECT_GE(rs[i]->when, rs[i - 1]->when);
        }
        if (i + 1 < n) {
            EXPECT_EQ(rs[i + 1]->count(), 0);  // one at a time: the next waits for this block
        }
        pool.deallocate(rs[i]->block, 4 * kib);
    }
}

TEST(AsyncAllocate, TimesOutNoSoonerThanTheDeadline) {
    pool_resource pool(capped(8 * kib, exhaustion::wait, 50ms));
    void* full = pool.allocate(8 * kib);
    recorded r;
    const auto start = steady::now();
    EXPECT_FALSE(pool.async_allocate(r, 100));
    r.wait_for();
    EXPECT_EQ(r.status, async_status::timed_out);
    EXPECT_EQ(r.block, nullptr);
    EXPECT_GE(r.when - start, 50ms);
    const pool_stats s = pool.stats();
    EXPECT_EQ(s.timeouts, 1u);
    EXPECT_EQ(s.waiters, 0u);
    EXPECT_GE(s.max_wait, 50ms);
    pool.deallocate(full, 8 * kib);
    EXPECT_EQ(pool.live_bytes(), 0u);
}

TEST(AsyncAllocate, AScopeDecidesThePolicyAndDeadline) {
    pool_resource pool(capped(8 * kib));
    void* full = pool.allocate(8 * kib);
    recorded r;
    {
        const exhaustion_scope scope(exhaustion::fail);
        EXPECT_TRUE(pool.async_allocate(r, 100));
    }
    EXPECT_EQ(r.status, async_status::refused);
    recorded t;
    const auto start = steady::now();
    {
        const exhaustion_scope scope(start + 20ms);
        EXPECT_FALSE(pool.async_allocate(t, 100));
    }
    t.wait_for();
    EXPECT_EQ(t.status, async_status::timed_out);
    EXPECT_GE(t.when - start, 20ms);
    pool.deallocate(full, 8 * kib);
}

TEST(AsyncAllocate, OvercommitProceedsPastTheCapAtTheDeadline) {
    pool_resource pool(capped(8 * kib, exhaustion::overcommit, 20ms));
    void* full = pool.allocate(8 * kib);
    recorded r;
    EXPECT_FALSE(pool.async_allocate(r, 4 * kib));
    r.wait_for();
    EXPECT_EQ(r.status, async_status::granted);
    ASSERT_NE(r.block, nullptr);
    EXPECT_EQ(pool.stats().overcommits, 1u);
    EXPECT_GT(pool.live_bytes(), pool.capacity());
    pool.deallocate(r.block, 4 * kib);
    pool.deallocate(full, 8 * kib);
}

TEST(AsyncAllocate, LargerThanTheCapOrBadAlignmentEndsAtOnce) {
    pool_resource pool(capped(8 * kib));
    recorded big, odd;
    EXPECT_TRUE(pool.async_allocate(big, 64 * kib));
    EXPECT_EQ(big.status, async_status::refused);
    EXPECT_TRUE(pool.async_allocate(odd, 64, 3));
    EXPECT_EQ(odd.status, async_status::failed);
    EXPECT_EQ(pool.live_bytes(), 0u);
}

TEST(AsyncAllocate, ALoweredCapRefusesARequestThatCanNoLongerFit) {
    pool_resource pool(capped(32 * kib));
    void* full = pool.allocate(32 * kib);
    recorded r;
    EXPECT_FALSE(pool.async_allocate(r, 20 * kib));
    pool.set_capacity(16 * kib);
    r.wait_for();
    EXPECT_EQ(r.status, async_status::refused);
    pool.deallocate(full, 32 * kib);
}

TEST(AsyncAllocate, CancelEndsAWaitingRequestOnceAndHandsItsTurnOn) {
    pool_resource pool(capped(8 * kib));
    void* full = pool.allocate(8 * kib);
    recorded first, second;
    EXPECT_FALSE(pool.async_allocate(first, 8 * kib));
    EXPECT_FALSE(pool.async_allocate(second, 4 * kib));
    EXPECT_TRUE(first.cancel());
    first.wait_for();
    EXPECT_EQ(first.status, async_status::cancelled);
    EXPECT_FALSE(first.cancel());  // not pending any more
    pool.deallocate(full, 8 * kib);
    second.wait_for();
    EXPECT_EQ(second.status, async_status::granted);
    EXPECT_FALSE(second.cancel());
    pool.deallocate(second.block, 4 * kib);
    EXPECT_EQ(pool.live_bytes(), 0u);
}

TEST(AsyncAllocate, CancelRacingTheGrantEndsItExactlyOnce) {
    pool_resource pool(capped(8 * kib));
    for (int round = 0; round < 200; ++round) {
        void* full = pool.allocate(8 * kib);
        recorded r;
        ASSERT_FALSE(pool.async_allocate(r, 8 * kib));
        std::thread freer([&] { pool.deallocate(full, 8 * kib); });
        const bool cancelled = r.cancel();
        freer.join();
        r.wait_for();
        EXPECT_EQ(r.count(), 1);
        if (cancelled) {
            EXPECT_EQ(r.status, async_status::cancelled);
        } else {
            ASSERT_EQ(r.status, async_status::granted);
            pool.deallocate(r.block, 8 * kib);
        }
        ASSERT_EQ(pool.live_bytes(), 0u);
    }
}

TEST(AsyncAllocate, DestroyingThePoolCancelsWhatWaits) {
    auto pool = std::make_unique<pool_resource>(capped(8 * kib));
    void* full = pool->allocate(8 * kib);
    // Given back with the pool (a checked build reports it live then, as it does any such block).
    static_cast<void>(full);
    recorded a, b;
    EXPECT_FALSE(pool->async_allocate(a, 1000));
    EXPECT_FALSE(pool->async_allocate(b, 2000));
    pool.reset();
    // Completed in the destructor, before it returned.
    EXPECT_EQ(a.count(), 1);
    EXPECT_EQ(a.status, async_status::cancelled);
    EXPECT_EQ(b.status, async_status::cancelled);
    EXPECT_FALSE(a.pending());
}

// A completion that destroys the pool it came from (the last request of a server).
class destroying : public memory_request {
  public:
    std::unique_ptr<pool_resource> pool;
    std::atomic<bool> done{false};
    void on_complete(void* p, async_status s) noexcept override {
        if (s == async_status::granted) pool->deallocate(p, 100);
        pool.reset();
        done = true;
    }
};

TEST(AsyncAllocate, ACompletionMayDestroyThePool) {
    destroying r;
    r.pool = std::make_unique<pool_resource>(capped(8 * kib));
    void* full = r.pool->allocate(8 * kib);
    EXPECT_FALSE(r.pool->async_allocate(r, 100));
    r.pool->deallocate(full, 8 * kib);
    while (!r.done)
        std::this_thread::sleep_for(1ms);
    // The completion thread goes on serving other pools.
    pool_resource other(capped(8 * kib));
    void* f = other.allocate(8 * kib);
    recorded next;
    EXPECT_FALSE(other.async_allocate(next, 100));
    other.deallocate(f, 8 * kib);
    next.wait_for();
    EXPECT_EQ(next.status, async_status::granted);
    other.deallocate(next.block, 100);
}

// A completion that starts its request again: a loop of acquisitions with no thread of its own.
class chaining : public memory_request {
  public:
    pool_resource* pool = nullptr;
    std::vector<void*> got;
    std::atomic<int> left{0};
    void on_complete(void* p, async_status s) noexcept override {
        if (s != async_status::granted) {
            left = -1;
            return;
        }
        got.push_back(p);
        if (--left > 0) pool->async_allocate(*this, 512);
    }
};

TEST(AsyncAllocate, ACompletionMayStartTheRequestAgain) {
    pool_resource pool(capped(4 * kib));
    void* full = pool.allocate(4 * kib);
    chaining r;
    r.pool = &pool;
    r.got.reserve(8);
    r.left = 4;
    EXPECT_FALSE(pool.async_allocate(r, 512));
    pool.deallocate(full, 4 * kib);
    while (r.left > 0)
        std::this_thread::sleep_for(1ms);
    ASSERT_EQ(r.left, 0);
    EXPECT_EQ(r.got.size(), 4u);
    for (void* p : r.got)
        pool.deallocate(p, 512);
}

TEST(AsyncAllocate, ReclaimsCreditIdleThreadCachesHold) {
    // Another thread leaves credit in its cache and goes idle: an async request that needs it
    // is served (at once, or by the completion thread's reclaim steps), never kept waiting.
    pool_resource pool(capped(64 * kib));
    std::atomic<int> phase{0};
    std::thread idle([&] {
        void* p = pool.allocate(100);
        pool.deallocate(p, 100);
        phase = 1;
        while (phase != 2)
            std::this_thread::sleep_for(1ms);
    });
    while (phase != 1)
        std::this_thread::sleep_for(1ms);
    recorded r;
    pool.async_allocate(r, 60 * kib);
    r.wait_for();
    EXPECT_EQ(r.status, async_status::granted);
    pool.deallocate(r.block, 60 * kib);
    phase = 2;
    idle.join();
}

TEST(AsyncAllocate, OnPressureRunsBeforeARequestQueues) {
    pool_options o = capped(8 * kib);
    std::atomic<int> calls{0};
    o.on_pressure = [&](const pressure_event& e) {
        if (e.what == pressure_event::level::wait) ++calls;
    };
    pool_resource pool(o);
    void* full = pool.allocate(8 * kib);
    recorded r;
    EXPECT_FALSE(pool.async_allocate(r, 100));
    EXPECT_EQ(calls, 1);
    pool.deallocate(full, 8 * kib);
    r.wait_for();
    pool.deallocate(r.block, 100);
}

TEST(AsyncStatus, NamesEveryEnding) {
    EXPECT_STREQ(to_string(async_status::granted), "granted");
    EXPECT_STREQ(to_string(async_status::refused), "refused");
    EXPECT_STREQ(to_string(async_status::timed_out), "timed_out");
    EXPECT_STREQ(to_string(async_status::cancelled), "cancelled");
    EXPECT_STREQ(to_string(async_status::failed), "failed");
}

}  // namespace
}  // namespace bpool
