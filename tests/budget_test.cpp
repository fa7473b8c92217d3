// Layer 7: the budget, driven directly: exact limits, leases that shrink near the cap, FIFO
// grants, backoff steps, pacing, wait statistics.
#include "budget/budget.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace bpool::detail {
namespace {

using namespace std::chrono_literals;

struct no_reclaim final : reclaimer {
    amount reclaim_for(amount /*missing*/) noexcept override {
        ++calls;
        return {};
    }
    std::atomic<int> calls{0};
};

// A lease with its extra and no pacing, as a thread cache below the soft threshold takes it.
bool lease(budget& b, amount need, amount* granted) {
    std::chrono::nanoseconds pause{};
    return b.try_lease(need, budget::full_extra, false, granted, &pause) ==
           budget::lease_result::leased;
}

wait_policy waiting_for(std::chrono::nanoseconds d, exhaustion p = exhaustion::wait) {
    const steady::time_point now = steady::now();
    return {p, now + d, now};
}

// Sets a byte limit and leases all of it at once: from then on every request must wait.
void lease_everything(budget& b, std::int64_t bytes) {
    b.set_limits(static_cast<std::size_t>(bytes), 0);
    amount all{};
    ASSERT_TRUE(lease(b, {bytes, 0}, &all));
}

// Returns once `n` requests wait in the budget's queue.
void wait_for_queue(const budget& b, std::size_t n) {
    for (;;) {
        pool_stats s;
        b.fill_stats(s);
        if (s.waiters == n) return;
        std::this_thread::yield();
    }
}

TEST(Budget, LeasesNeverPassTheLimit) {
    std::atomic<std::uint32_t> flags{0};
    budget b(flags, pool_options{});
    b.set_limits(1 << 20, 0);
    amount granted{};
    std::int64_t total = 0;
    while (lease(b, {4096, 1}, &granted)) {
        EXPECT_GE(granted.bytes, 4096);
        total += granted.bytes;
        ASSERT_LE(b.committed().bytes, 1 << 20);
    }
    EXPECT_EQ(total, b.committed().bytes);
    EXPECT_GT(total, (1 << 20) - 4096) << "leases shrink so the last bytes can still be taken";
}

TEST(Budget, LeaseExtraShrinksWithTheHeadroom) {
    std::atomic<std::uint32_t> flags{0};
    budget b(flags, pool_options{});
    b.set_limits(1 << 20, 0);
    amount first{}, later{};
    ASSERT_TRUE(lease(b, {16, 1}, &first));
    EXPECT_EQ(first.bytes - 16, b.lease_bytes()) << "far from the cap: a full lease";
    amount big{};
    ASSERT_TRUE(lease(b, {(1 << 20) - first.bytes - 40000, 1}, &big));
    ASSERT_TRUE(lease(b, {16, 1}, &later));
    EXPECT_LT(later.bytes - 16, first.bytes - 16) << "near the cap: a quarter of what is left";
}

TEST(Budget, UnlimitedWhenZero) {
    std::atomic<std::uint32_t> flags{0};
    budget b(flags, pool_options{});
    EXPECT_EQ(b.capacity(), 0u);
    EXPECT_EQ(b.max_live_blocks(), 0u);
    amount granted{};
    for (int i = 0; i < 1000; ++i)
        ASSERT_TRUE(lease(b, {1 << 30, 1}, &granted));
}

TEST(Budget, BlockLimitIsExactToo) {
    std::atomic<std::uint32_t> flags{0};
    budget b(flags, pool_options{});
    b.set_limits(0, 10);
    amount granted{};
    std::int64_t blocks = 0;
    while (lease(b, {16, 1}, &granted))
        blocks += granted.blocks;
    EXPECT_EQ(blocks, 10);
    no_reclaim r;
    std::chrono::nanoseconds waited{};
    EXPECT_EQ(b.acquire({16, 1}, 16, waiting_for(0ns, exhaustion::fail), r, &waited),
              outcome::refused);
}

TEST(Budget, WaitersAreGrantedInArrivalOrder) {
    std::atomic<std::uint32_t> flags{0};
    budget b(flags, pool_options{});
    ASSERT_NO_FATAL_FAILURE(lease_everything(b, 1000));
    no_reclaim r;
    std::atomic<int> granted_count{0};
    std::atomic<bool> big_granted{false};
    auto waiter = [&](std::int64_t need, std::atomic<bool>* done) {
        std::chrono::nanoseconds waited{};
        EXPECT_EQ(
            b.acquire({need, 0}, static_cast<std::size_t>(need), waiting_for(30s), r, &waited),
            outcome::granted);
        if (done) *done = true;
        ++granted_count;
    };
    // (Pressure is up from the start, the budget being at its limit: count the queue instead.)
    auto wait_for_waiters = [&](std::size_t n) { wait_for_queue(b, n); };
    std::thread big(waiter, 800, &big_granted);  // first in line, large
    wait_for_waiters(1);
    std::vector<std::thread> small;
    for (int i = 0; i < 3; ++i)
        small.emplace_back(waiter, 10, nullptr);
    wait_for_waiters(4);  // the small ones queue up behind the big one
    // Give back 790 bytes in small steps: each small request would have fitted long ago.
    for (int i = 0; i < 79; ++i)
        b.give({10, 0});
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(granted_count.load(), 0) << "nobody overtook the large request at the head";
    b.give({10, 0});  // 800 free: the head fits
    big.join();
    EXPECT_TRUE(big_granted.load());
    for (int i = 0; i < 3; ++i)
        b.give({10, 0});
    for (auto& t : small)
        t.join();
    EXPECT_EQ(granted_count.load(), 4);
    EXPECT_NE(flags.load() & flag_pressure, 0u) << "nobody waits, but usage is at the limit";
    b.give({10, 0});
    EXPECT_EQ(flags.load() & flag_pressure, 0u) << "under the limit and nobody waits";
    EXPECT_GE(r.calls.load(), 1) << "waiters try to reclaim stranded credit";
}

// Follows a wait step by step: every step of a wait begins with a reclaim, which records the
// pool-wide backoff interval in force (in microseconds) and what the waiter lacks; at step
// `release_at` it gives one byte back, which grants the wait. Counted in steps, not in time, so the
// wait takes exactly that many steps however slow the machine is.
struct stepping_reclaimer final : reclaimer {
    stepping_reclaimer(budget& watched, std::size_t step) : b(watched), release_at(step) {}
    amount reclaim_for(amount missing) noexcept override {
        pool_stats s;
        b.fill_stats(s);  // the reclaimer is called without budget locks
        intervals_us.push_back(s.backoff_interval / 1us);
        missing_bytes.push_back(missing.bytes);
        if (intervals_us.size() == release_at) b.give({1, 0});
        return {};
    }
    budget& b;
    const std::size_t release_at;
    std::vector<std::int64_t> intervals_us;
    std::vector<std::int64_t> missing_bytes;
};

TEST(Budget, BackoffGrowsAndResetsWhenUnderTheCap) {
    std::atomic<std::uint32_t> flags{0};
    pool_options o;
    o.backoff = {.initial_interval = 100us,
                 .multiplier = 2.0,
                 .randomization = 0.0,
                 .max_interval = 1600us,
                 .max_elapsed = 20ms};
    budget b(flags, o);
    ASSERT_NO_FATAL_FAILURE(lease_everything(b, 100));
    // Six steps: the interval doubles from 100 us to the maximum after four, then stays there.
    stepping_reclaimer r(b, 6);
    std::chrono::nanoseconds waited{};
    EXPECT_EQ(b.acquire({1, 0}, 1, waiting_for(60s), r, &waited), outcome::granted)
        << "the byte given back at the sixth step";
    EXPECT_EQ(r.intervals_us, (std::vector<std::int64_t>{100, 200, 400, 800, 1600, 1600}));
    EXPECT_EQ(r.missing_bytes, (std::vector<std::int64_t>(6, 1)))
        << "each step asks the caches for exactly what the waiter lacks: no forced quiesce";
    EXPECT_GE(waited, 100us + 200us + 400us + 800us + 1600us) << "each step slept its interval";
    pool_stats s;
    b.fill_stats(s);
    EXPECT_EQ(s.backoff_interval, 1600us) << "usage is at the cap again: not reset";
    EXPECT_EQ(s.waits, 1u);
    EXPECT_EQ(s.timeouts, 0u);
    // A wait that times out goes on from the maximum, and leaves it there.
    no_reclaim idle;
    EXPECT_EQ(b.acquire({1, 0}, 1, waiting_for(20ms), idle, &waited), outcome::timed_out);
    EXPECT_GE(waited, 20ms);
    b.fill_stats(s);
    EXPECT_EQ(s.backoff_interval, 1600us) << "still at the cap after the timeout";
    EXPECT_EQ(s.timeouts, 1u);
    EXPECT_EQ(s.waits, 2u);
    b.give({1, 0});  // usage back under the cap, nobody waiting
    b.fill_stats(s);
    EXPECT_EQ(s.backoff_interval, 100us) << "the next exhaustion starts from the beginning";
}

TEST(Budget, PacingGrowsSmoothlyAboveTheThreshold) {
    std::atomic<std::uint32_t> flags{0};
    pool_options o;
    o.delay_threshold = 0.5;
    o.backoff.max_interval = 10ms;
    budget b(flags, o);
    b.set_limits(1000, 0);
    amount granted{};
    std::chrono::nanoseconds pause{}, previous{0};
    int paced = 0;
    for (;;) {
        const std::int64_t before = b.committed().bytes;
        budget::lease_result r = b.try_lease({50, 0}, budget::full_extra, true, &granted, &pause);
        if (r == budget::lease_result::refused) break;
        if (r == budget::lease_result::leased) {
            EXPECT_LE(b.committed().bytes, 500) << "no pause up to the threshold";
            continue;
        }
        // Told to pause first: nothing was committed; after the pause the lease goes through.
        EXPECT_EQ(b.committed().bytes, before);
        ++paced;
        EXPECT_GT(pause, previous) << before;
        EXPECT_LE(pause, 10ms);
        previous = pause;
        r = b.try_lease({50, 0}, budget::full_extra, false, &granted, &pause);
        ASSERT_EQ(r, budget::lease_result::leased);
        EXPECT_EQ(granted.bytes, 50) << "no extra lease above the threshold";
    }
    EXPECT_GE(paced, 5);
    EXPECT_GT(b.committed().bytes, 950);
    EXPECT_GE(previous, 8ms) << "close to the full pause near the cap";
    pool_stats s;
    b.fill_stats(s);
    EXPECT_EQ(s.paced, static_cast<std::uint64_t>(paced));
    EXPECT_NE(flags.load() & flag_pacing, 0u);
    b.give({600, 0});
    EXPECT_EQ(flags.load() & flag_pacing, 0u) << "back under the threshold";
}

TEST(Budget, WaitHistogramCountsEveryWait) {
    std::atomic<std::uint32_t> flags{0};
    budget b(flags, pool_options{});
    ASSERT_NO_FATAL_FAILURE(lease_everything(b, 10));
    no_reclaim r;
    for (int i = 0; i < 3; ++i) {
        std::chrono::nanoseconds waited{};
        EXPECT_EQ(b.acquire({5, 0}, 5, waiting_for(2ms), r, &waited), outcome::timed_out);
    }
    pool_stats s;
    b.fill_stats(s);
    std::uint64_t sum = 0;
    for (std::uint64_t n : s.wait_histogram)
        sum += n;
    EXPECT_EQ(sum, 3u);
    std::uint64_t at_least_1ms = 0;
    for (std::size_t i = 10; i < pool_stats::wait_buckets; ++i)
        at_least_1ms += s.wait_histogram[i];
    EXPECT_EQ(at_least_1ms, 3u) << "a wait of 2 ms or more lands in bucket 10 (1024 us) or above";
    EXPECT_GE(s.total_wait, 6ms);
    EXPECT_GE(s.max_wait, 2ms);
    EXPECT_EQ(s.waiters, 0u);
}

TEST(Budget, AWaitIsMeasuredFromThePolicysStart) {
    // The deadline was computed from `start`; time passes before the request reaches the budget
    // (a lock, a pause, a preemption). The reported wait counts from the same instant, so a
    // request that times out reports at least what it was allowed to wait.
    std::atomic<std::uint32_t> flags{0};
    budget b(flags, pool_options{});
    ASSERT_NO_FATAL_FAILURE(lease_everything(b, 10));
    no_reclaim r;
    const steady::time_point start = steady::now();
    const wait_policy wp{exhaustion::wait, start + 20ms, start};
    std::this_thread::sleep_for(15ms);
    std::chrono::nanoseconds waited{};
    EXPECT_EQ(b.acquire({5, 0}, 5, wp, r, &waited), outcome::timed_out);
    EXPECT_GE(waited, 20ms);
    pool_stats s;
    b.fill_stats(s);
    EXPECT_GE(s.max_wait, 20ms);
}

TEST(Budget, LoweredLimitsRefuseQueuedWaitersThatCanNoLongerFit) {
    std::atomic<std::uint32_t> flags{0};
    budget b(flags, pool_options{});
    ASSERT_NO_FATAL_FAILURE(lease_everything(b, 1000));
    no_reclaim r;
    outcome big = outcome::granted, small = outcome::timed_out;
    std::thread t1([&] {
        std::chrono::nanoseconds waited{};
        big = b.acquire({800, 0}, 800, waiting_for(60s), r, &waited);
    });
    wait_for_queue(b, 1);
    std::thread t2([&] {
        std::chrono::nanoseconds waited{};
        small = b.acquire({100, 0}, 100, waiting_for(60s), r, &waited);
    });
    wait_for_queue(b, 2);
    b.set_limits(500, 0);  // the 800 can never fit now; the 100 fits once 1000 come back
    t1.join();
    EXPECT_EQ(big, outcome::refused);
    b.give({1000, 0});
    t2.join();
    EXPECT_EQ(small, outcome::granted);
    pool_stats s;
    b.fill_stats(s);
    EXPECT_EQ(s.timeouts, 0u);
    EXPECT_EQ(s.waiters, 0u);
}

}  // namespace
}  // namespace bpool::detail
