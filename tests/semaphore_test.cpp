// Layer 7: the FIFO counting semaphore alone (no pool, no policy but the test's hooks): takes,
// FIFO grants, deadlines, lowered limits, gives that grant several heads, reclaim and alarm hooks,
// the observer's view, cancellation.
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "budget/fifo_semaphore.hpp"

namespace bpool::detail {
namespace {

using namespace std::chrono_literals;
using take_result = fifo_semaphore::take_result;
using wait_result = fifo_semaphore::wait_result;

// Fixed steps; remembers what the semaphore told it. Each waiting thread has its own.
struct steps : wait_hooks {
    virtual ~steps() = default;
    void queued() noexcept override { was_queued = true; }
    std::chrono::nanoseconds next_step() noexcept override { return step; }
    void ended(std::chrono::nanoseconds w) noexcept override { waited = w; }

    std::chrono::nanoseconds step = 1ms;
    bool was_queued = false;
    std::chrono::nanoseconds waited{-1};
};

wait_terms for_at_most(std::chrono::nanoseconds d, bool overcommit = false) {
    const steady::time_point now = steady::now();
    return {now, now + d, overcommit};
}

// Returns once `n` threads wait in the semaphore.
void wait_for_waiters(const fifo_semaphore& s, std::size_t n) {
    while (s.waiting() != n)
        std::this_thread::yield();
}

// A semaphore with a byte limit of `limit`, all of it taken.
void take_everything(fifo_semaphore& s, std::int64_t limit) {
    s.set_limits(static_cast<std::size_t>(limit), 0);
    ASSERT_EQ(s.try_take({limit, 0}), take_result::taken);
}

TEST(FifoSemaphore, TryTakeNeverPassesTheLimits) {
    fifo_semaphore s;
    EXPECT_EQ(s.byte_limit(), 0u) << "unlimited until limits are set";
    s.set_limits(100, 3);
    EXPECT_EQ(s.byte_limit(), 100u);
    EXPECT_EQ(s.block_limit(), 3u);
    EXPECT_EQ(s.try_take({60, 1}), take_result::taken);
    amount missing{};
    EXPECT_EQ(s.try_take({50, 1}, &missing), take_result::no_room);
    EXPECT_EQ(missing.bytes, 10);
    EXPECT_EQ(missing.blocks, -1) << "negative: room left";
    EXPECT_EQ(s.try_take({101, 0}), take_result::over_limits);
    EXPECT_EQ(s.try_take({40, 2}), take_result::taken);
    EXPECT_EQ(s.try_take({0, 1}), take_result::no_room) << "the block limit counts too";
    EXPECT_EQ(s.committed().bytes, 100);
    EXPECT_EQ(s.committed().blocks, 3);
    s.give({100, 3});
    EXPECT_EQ(s.committed().bytes, 0);
    EXPECT_EQ(s.peak().bytes, 100);
    EXPECT_EQ(s.peak().blocks, 3);
}

TEST(FifoSemaphore, WaitersAreGrantedInArrivalOrder) {
    fifo_semaphore s;
    ASSERT_NO_FATAL_FAILURE(take_everything(s, 10));
    constexpr int n = 4;
    std::mutex m;
    std::vector<int> order;
    std::atomic<int> done{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
            steps h;
            EXPECT_EQ(s.wait({10, 0}, for_at_most(60s), h), wait_result::granted);
            {
                const std::lock_guard lock(m);
                order.push_back(i);
            }
            ++done;
        });
        wait_for_waiters(s, static_cast<std::size_t>(i) + 1);  // i queues before i + 1 comes
    }
    EXPECT_EQ(s.try_take({0, 0}), take_result::behind_waiters) << "nobody overtakes the queue";
    for (int i = 0; i < n; ++i) {
        s.give({10, 0});  // room for one: the head's
        EXPECT_EQ(s.committed().bytes, 10) << "granted at once, by the give";
        while (done.load() != i + 1)
            std::this_thread::yield();
        const std::lock_guard lock(m);
        EXPECT_EQ(order.back(), i) << "the oldest waiter is served first";
    }
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(s.waiting(), 0u);
}

TEST(FifoSemaphore, AGiveGrantsEveryHeadThatFitsAndNoneBehindOneThatDoesNot) {
    fifo_semaphore s;
    ASSERT_NO_FATAL_FAILURE(take_everything(s, 100));
    const std::int64_t needs[] = {30, 10, 20};
    std::atomic<int> granted{0};
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < 3; ++i) {
        threads.emplace_back([&, i] {
            steps h;
            EXPECT_EQ(s.wait({needs[i], 0}, for_at_most(60s), h), wait_result::granted);
            ++granted;
        });
        wait_for_waiters(s, i + 1);
    }
    s.give({10, 0});
    EXPECT_EQ(s.committed().bytes, 90) << "the 10 behind the 30 at the head is not granted";
    s.give({20, 0});
    EXPECT_EQ(s.committed().bytes, 100) << "the head (30) is granted";
    s.give({30, 0});
    EXPECT_EQ(s.committed().bytes, 100) << "one give grants both heads that now fit (10 and 20)";
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(granted.load(), 3);
}

TEST(FifoSemaphore, AWaitPastItsDeadlineTimesOutHavingWaitedAtLeastTheDeadline) {
    fifo_semaphore s;
    ASSERT_NO_FATAL_FAILURE(take_everything(s, 10));
    // The deadline is computed from `start`; time passes before the wait begins. The wait is
    // measured from that same instant, so it reports at least what it was given.
    const steady::time_point start = steady::now();
    const wait_terms terms{start, start + 20ms};
    std::this_thread::sleep_for(5ms);
    steps h;
    EXPECT_EQ(s.wait({5, 0}, terms, h), wait_result::timed_out);
    EXPECT_GE(steady::now() - start, 20ms);
    EXPECT_TRUE(h.was_queued);
    EXPECT_GE(h.waited, 20ms) << "ended() is told the wait measured from start";
    EXPECT_EQ(s.committed().bytes, 10) << "nothing taken";
    EXPECT_EQ(s.waiting(), 0u);
    EXPECT_EQ(s.oldest_start(), steady::time_point::max()) << "it left the queue";
    // Under overcommit the same wait takes its amount past the limit instead.
    steps over;
    EXPECT_EQ(s.wait({5, 0}, for_at_most(5ms, true), over), wait_result::overcommitted);
    EXPECT_EQ(s.committed().bytes, 15);
}

TEST(FifoSemaphore, LoweredLimitsRefuseAQueuedWaiterThatCanNoLongerFit) {
    fifo_semaphore s;
    ASSERT_NO_FATAL_FAILURE(take_everything(s, 100));
    wait_result big = wait_result::granted, small = wait_result::timed_out;
    std::thread t1([&] {
        steps h;
        big = s.wait({80, 0}, for_at_most(60s), h);
    });
    wait_for_waiters(s, 1);
    std::thread t2([&] {
        steps h;
        small = s.wait({30, 0}, for_at_most(60s), h);
    });
    wait_for_waiters(s, 2);
    s.set_limits(50, 0);  // the 80 can never fit now; the 30 fits once 100 come back
    t1.join();
    EXPECT_EQ(big, wait_result::refused);
    EXPECT_EQ(s.waiting(), 1u);
    s.give({100, 0});
    t2.join();
    EXPECT_EQ(small, wait_result::granted);
    EXPECT_EQ(s.committed().bytes, 30);
    // One larger than the limits on arrival is refused without queueing.
    steps h;
    EXPECT_EQ(s.wait({51, 0}, for_at_most(60s), h), wait_result::refused);
    EXPECT_FALSE(h.was_queued);
}

// Reclaims 10 bytes at the third step of its wait (nothing before): the wait is granted with them.
struct reclaiming_steps final : steps {
    amount reclaim(amount missing) noexcept override {
        asked.push_back(missing);
        return asked.size() == 3 ? amount{10, 0} : amount{};
    }
    std::vector<amount> asked;
};

TEST(FifoSemaphore, WhatAStepReclaimsServesTheQueue) {
    fifo_semaphore s;
    ASSERT_NO_FATAL_FAILURE(take_everything(s, 10));
    reclaiming_steps h;
    EXPECT_EQ(s.wait({4, 0}, for_at_most(60s), h), wait_result::granted);
    ASSERT_EQ(h.asked.size(), 3u) << "one look per step until something was reclaimed";
    for (const amount& a : h.asked)
        EXPECT_EQ(a.bytes, 4) << "asked for exactly what the wait lacks";
    EXPECT_EQ(s.committed().bytes, 4) << "the 10 reclaimed were released, then 4 granted";
}

// Throws from its alarm once a second waiter queued behind this one.
struct throwing_alarm final : steps {
    explicit throwing_alarm(const fifo_semaphore& sem) : s(sem) {}
    [[nodiscard]] steady::time_point first_alarm(steady::time_point start) const noexcept override {
        return start;
    }
    steady::time_point alarm(std::chrono::nanoseconds /*waited*/) override {
        wait_for_waiters(s, 2);
        throw std::runtime_error("alarm");
    }
    const fifo_semaphore& s;
};

TEST(FifoSemaphore, AWaiterThatUnwindsLeavesTheQueueAndTheOnesBehindAreServed) {
    fifo_semaphore s;
    ASSERT_NO_FATAL_FAILURE(take_everything(s, 10));
    std::atomic<bool> threw{false};
    std::thread first([&] {
        throwing_alarm h(s);
        try {
            (void)s.wait({10, 0}, for_at_most(60s), h);
        } catch (const std::runtime_error&) {
            threw = true;
            EXPECT_GE(h.waited, 0ns) << "ended() ran as it unwound";
        }
    });
    wait_for_waiters(s, 1);
    wait_result second = wait_result::timed_out;
    std::thread t2([&] {
        steps h;
        second = s.wait({10, 0}, for_at_most(60s), h);
    });
    first.join();
    EXPECT_TRUE(threw.load());
    wait_for_waiters(s, 1);
    s.give({10, 0});
    t2.join();
    EXPECT_EQ(second, wait_result::granted) << "the second is the head now";
    EXPECT_EQ(s.committed().bytes, 10);
}

// A waiter cancelled with pthread_cancel while it sleeps in the queue unwinds out of it.
void* wait_to_be_cancelled(void* arg) {
    auto* s = static_cast<fifo_semaphore*>(arg);
    steps h;
    (void)s->wait({10, 0}, for_at_most(60s), h);  // cancelled here
    return nullptr;
}

TEST(FifoSemaphore, ACancelledWaiterLeavesTheQueue) {
    fifo_semaphore s;
    ASSERT_NO_FATAL_FAILURE(take_everything(s, 10));
    pthread_t thread;
    ASSERT_EQ(pthread_create(&thread, nullptr, wait_to_be_cancelled, &s), 0);
    wait_for_waiters(s, 1);
    ASSERT_EQ(pthread_cancel(thread), 0);
    void* result = nullptr;
    ASSERT_EQ(pthread_join(thread, &result), 0);
    EXPECT_EQ(result, PTHREAD_CANCELED);
    EXPECT_EQ(s.waiting(), 0u);
    EXPECT_EQ(s.oldest_start(), steady::time_point::max());
    // The queue is intact: the next waiter is served by the next give.
    wait_result next = wait_result::timed_out;
    std::thread t([&] {
        steps h;
        next = s.wait({10, 0}, for_at_most(60s), h);
    });
    wait_for_waiters(s, 1);
    s.give({10, 0});
    t.join();
    EXPECT_EQ(next, wait_result::granted);
}

// Records what the semaphore tells its observer.
struct recorder final : semaphore_observer {
    void changed(const semaphore_state& st, semaphore_change what) noexcept override {
        last = st;
        changes.push_back(what);
    }
    semaphore_state last{};
    std::vector<semaphore_change> changes;
};

TEST(FifoSemaphore, TheObserverSeesEveryChange) {
    recorder r;
    fifo_semaphore s(&r);
    s.set_limits(100, 0);
    EXPECT_EQ(r.changes.back(), semaphore_change::limits);
    EXPECT_EQ(r.last.limit.bytes, 100);
    EXPECT_EQ(r.last.limit.blocks, fifo_semaphore::unlimited);
    const auto declined = s.try_take_with({40, 0}, [](amount after, amount limit) noexcept {
        EXPECT_EQ(after.bytes, 40);
        EXPECT_EQ(limit.bytes, 100);
        return std::optional<amount>{};
    });
    EXPECT_EQ(declined, take_result::declined);
    EXPECT_EQ(s.committed().bytes, 0);
    const auto taken = s.try_take_with({40, 0}, [](amount /*after*/, amount /*limit*/) noexcept {
        return std::optional{amount{20, 0}};
    });
    EXPECT_EQ(taken, take_result::taken);
    EXPECT_EQ(r.changes.back(), semaphore_change::taken);
    EXPECT_EQ(r.last.committed.bytes, 60) << "the extra is taken with the need";
    EXPECT_FALSE(s.give_and_take({0, 0}, {50, 0})) << "50 does not fit in the 40 left";
    EXPECT_TRUE(s.give_and_take({10, 0}, {50, 0})) << "it does with the 10 given back";
    EXPECT_EQ(r.changes.back(), semaphore_change::released);
    EXPECT_EQ(r.last.committed.bytes, 100);
    EXPECT_FALSE(r.last.queued);
}

}  // namespace
}  // namespace bpool::detail
