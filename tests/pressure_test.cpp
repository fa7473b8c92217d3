// pool_options::on_pressure (include/bpool/pool_options.hpp): called before a request waits, so
// that memory the application gives back lets it through without waiting; once per crossing of the
// soft threshold; with no lock held (the callback frees to the pool and reads its stats); and an
// exception it throws changes nothing.
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <thread>
#include <vector>

#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "support/capped.hpp"

namespace bpool {
namespace {

using namespace std::chrono_literals;
using test::capped;

constexpr std::size_t kib = 1024;

TEST(Pressure, BeforeAWaitTheApplicationCanGiveMemoryBack) {
    // The application's own cache: blocks it keeps and can drop.
    std::vector<void*> cache;
    std::vector<pressure_event> events;
    pool_resource* self = nullptr;
    pool_options o = capped(64 * kib, exhaustion::wait, 5min);  // a real wait would time out
    o.on_pressure = [&](const pressure_event& e) {
        events.push_back(e);
        EXPECT_EQ(self->stats().waiters, 0u) << "called before the request queues";
        for (void* p : cache)
            self->deallocate(p, 16 * kib);  // no pool lock is held: this must not deadlock
        cache.clear();
    };
    pool_resource pool(o);
    self = &pool;
    for (int i = 0; i < 4; ++i)
        cache.push_back(pool.allocate(16 * kib));
    void* p = pool.allocate(32 * kib);  // does not fit until the cache is dropped
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].what, pressure_event::level::wait);
    EXPECT_EQ(events[0].requested, 32 * kib);
    EXPECT_EQ(events[0].capacity, 64 * kib);
    EXPECT_EQ(events[0].live_bytes, 64 * kib);
    EXPECT_EQ(pool.stats().waits, 0u) << "the request looked again and fitted: no wait";
    pool.deallocate(p, 32 * kib);
}

TEST(Pressure, NotCalledWhereNothingWaits) {
    int calls = 0;
    pool_options o = capped(64 * kib, exhaustion::fail);
    o.on_pressure = [&](const pressure_event&) { ++calls; };
    pool_resource pool(o);
    void* a = pool.allocate(48 * kib);
    EXPECT_THROW((void)pool.allocate(32 * kib), capacity_exceeded) << "fail never waits";
    EXPECT_EQ(pool.try_allocate(32 * kib), nullptr);
    pool_options wait = capped(64 * kib, exhaustion::wait, 5min);
    wait.on_pressure = [&](const pressure_event&) { ++calls; };
    pool_resource other(wait);
    EXPECT_THROW((void)other.allocate(128 * kib), capacity_exceeded) << "can never fit: refused";
    EXPECT_EQ(calls, 0);
    pool.deallocate(a, 48 * kib);
}

TEST(Pressure, OncePerCrossingOfTheSoftThreshold) {
    std::vector<pressure_event> events;
    pool_options o = capped(1024 * kib, exhaustion::wait, 5min);
    o.delay_threshold = 0.5;
    o.backoff.max_interval = 1ms;  // keeps the pacing pauses short
    o.on_pressure = [&](const pressure_event& e) { events.push_back(e); };
    pool_resource pool(o);
    std::vector<void*> held;
    const auto fill_to = [&](std::size_t bytes) {
        while (pool.live_bytes() < bytes)
            held.push_back(pool.allocate(32 * kib));
    };
    fill_to(256 * kib);
    EXPECT_TRUE(events.empty()) << "below the threshold";
    fill_to(800 * kib);
    ASSERT_EQ(events.size(), 1u) << "one report for the whole climb above it";
    EXPECT_EQ(events[0].what, pressure_event::level::soft);
    EXPECT_EQ(events[0].requested, 32 * kib);
    EXPECT_GE(events[0].live_bytes, 256 * kib);
    while (pool.live_bytes() > 128 * kib) {
        pool.deallocate(held.back(), 32 * kib);
        held.pop_back();
    }
    fill_to(800 * kib);
    ASSERT_EQ(events.size(), 2u) << "crossing again reports again";
    EXPECT_EQ(events[1].what, pressure_event::level::soft);
    for (void* p : held)
        pool.deallocate(p, 32 * kib);
}

TEST(Pressure, ACallbackThatThrowsChangesNothing) {
    int calls = 0;
    pool_options o = capped(64 * kib, exhaustion::wait, 5min);
    o.on_pressure = [&](const pressure_event&) {
        ++calls;
        throw std::runtime_error("ignored");
    };
    pool_resource pool(o);
    void* a = pool.allocate(64 * kib);
    EXPECT_THROW((void)pool.allocate_for(16 * kib, alignof(std::max_align_t), 1ms),
                 capacity_exceeded)
        << "the request still waited, and timed out";
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(pool.stats().timeouts, 1u);
    // And a waiter that another thread's free lets through, after the callback ran.
    std::thread releaser([&] {
        while (pool.stats().waiters == 0)
            std::this_thread::yield();
        pool.deallocate(a, 64 * kib);
    });
    void* b = pool.allocate(16 * kib);
    releaser.join();
    EXPECT_EQ(calls, 2);
    pool.deallocate(b, 16 * kib);
}

}  // namespace
}  // namespace bpool
