// The cap at its edges, through pool_resource: a request is refused only when live memory plus the
// request really pass the limit, whatever other threads' caches hold (fail, try_allocate, bypass,
// the live-block cap, exhaustion_scope, buffer growth, each with 1, 8, 30 and 100 idle threads);
// lowering the capacity refuses queued waiters that can no longer fit; waits show while they
// last; the peak is monotone and within what upstream held; a cancelled waiter leaves the queue;
// a request's mode and deadline bound its upstream calls. No assertion depends on the machine's
// speed: time appears only as lower bounds, or as generous bounds against a hang.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <pthread.h>
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
using clock_type = std::chrono::steady_clock;

constexpr std::size_t kib = 1024;
constexpr std::size_t mib = 1024 * kib;

using test::capped;

// Threads that each run `work` once (leaving credit or blocks in their caches) and then idle,
// alive, until the object is destroyed.
class idle_threads {
  public:
    template <class F>
    idle_threads(unsigned n, F work) {
        for (unsigned i = 0; i < n; ++i) {
            threads_.emplace_back([this, work] {
                work();
                std::unique_lock lock(mutex_);
                ++ready_;
                cv_.notify_all();
                cv_.wait(lock, [&] { return done_; });
            });
        }
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return ready_ == threads_.size(); });
    }
    idle_threads(const idle_threads&) = delete;
    idle_threads& operator=(const idle_threads&) = delete;
    ~idle_threads() {
        {
            std::lock_guard lock(mutex_);
            done_ = true;
        }
        cv_.notify_all();
        for (auto& t : threads_)
            t.join();
    }

  private:
    std::mutex mutex_;
    std::condition_variable cv_;
    std::size_t ready_ = 0;
    bool done_ = false;
    std::vector<std::thread> threads_;
};

// Each idle thread allocated and freed one small block: its cache keeps the rest of its lease.
auto touch(pool_resource& pool) {
    return [&pool] { pool.deallocate(pool.allocate(64), 64); };
}

// Takes 64-byte blocks while `take` succeeds; returns them.
template <class Take>
std::vector<void*> take_all(Take take) {
    std::vector<void*> blocks;
    while (void* p = take())
        blocks.push_back(p);
    return blocks;
}

void give_all(pool_resource& pool, const std::vector<void*>& blocks) {
    for (void* p : blocks)
        pool.deallocate(p, 64);
}

class CapExact : public ::testing::TestWithParam<unsigned> {};

INSTANTIATE_TEST_SUITE_P(IdleThreads, CapExact, ::testing::Values(1u, 8u, 30u, 100u));

TEST_P(CapExact, FailTakesEveryBlockThatFits) {
    pool_resource pool(capped(mib, exhaustion::fail));
    const idle_threads others(GetParam(), touch(pool));
    const auto blocks = take_all([&]() -> void* {
        try {
            return pool.allocate(64);
        } catch (const capacity_exceeded&) {
            return nullptr;
        }
    });
    EXPECT_EQ(blocks.size(), mib / 64) << "refused while credit sat in idle caches";
    EXPECT_EQ(pool.live_bytes(), mib);
    give_all(pool, blocks);
}

TEST_P(CapExact, TryAllocateTakesEveryBlockThatFits) {
    pool_resource pool(capped(mib, exhaustion::wait));
    const idle_threads others(GetParam(), touch(pool));
    const auto blocks = take_all([&] { return pool.try_allocate(64); });
    EXPECT_EQ(blocks.size(), mib / 64);
    EXPECT_EQ(pool.try_allocate(64), nullptr) << "the cap holds the other way too";
    give_all(pool, blocks);
}

TEST_P(CapExact, TryAllocateOfTheWholeCapacityInAnEmptyPool) {
    pool_resource pool(capped(mib, exhaustion::wait));
    const idle_threads others(GetParam(), touch(pool));
    void* p = pool.try_allocate(mib);
    ASSERT_NE(p, nullptr) << "nothing is live: the whole capacity fits";
    pool.deallocate(p, mib);
}

TEST_P(CapExact, FailScopeInAnEmptyPool) {
    pool_resource pool(capped(mib, exhaustion::wait));
    const idle_threads others(GetParam(), touch(pool));
    const exhaustion_scope fail_fast(exhaustion::fail);
    void* p = pool.allocate(512 * kib);
    pool.deallocate(p, 512 * kib);
}

TEST_P(CapExact, BypassOnlyPastTheCap) {
    pool_resource pool(capped(mib, exhaustion::bypass));
    const idle_threads others(GetParam(), touch(pool));
    std::vector<void*> blocks(mib / 64);
    for (void*& p : blocks)
        p = pool.allocate(64);
    EXPECT_EQ(pool.stats().bypasses, 0u) << "served by upstream although it fit";
    give_all(pool, blocks);
}

TEST_P(CapExact, LiveBlockCapUnderFail) {
    pool_options o = capped(0, exhaustion::fail);
    o.max_live_blocks = 1000;
    pool_resource pool(o);
    const idle_threads others(GetParam(), touch(pool));
    const auto blocks = take_all([&] { return pool.try_allocate(64); });
    EXPECT_EQ(blocks.size(), 1000u);
    give_all(pool, blocks);
}

TEST_P(CapExact, EveryThreadTakesOneBlock) {
    // Each thread keeps its block and the rest of its lease: the later ones must still get theirs.
    pool_resource pool(capped(mib, exhaustion::fail));
    std::atomic<unsigned> refused{0};
    std::vector<void*> held(GetParam());
    {
        std::atomic<unsigned> next{0};
        const idle_threads others(GetParam(), [&] {
            void* p = pool.try_allocate(64);
            if (p == nullptr) refused.fetch_add(1);
            held[next.fetch_add(1)] = p;
        });
        EXPECT_EQ(refused.load(), 0u);
        EXPECT_EQ(pool.live_bytes(), 64 * GetParam() - 64 * refused.load());
    }
    for (void* p : held)
        if (p != nullptr) pool.deallocate(p, 64);
}

TEST_P(CapExact, BufferGrowthWithoutBackoff) {
    buffer_pool_options o;
    o.default_capacity = 0;
    o.write_backoff = false;
    buffer_pool buffers(mib, o);
    const idle_threads others(GetParam(), [&] {
        buffer b = buffers.get();
        b.append("some bytes");
        buffers.put(std::move(b));
    });
    buffer big = buffers.get();
    EXPECT_NO_THROW(big.reserve(512 * kib)) << "an almost empty 1 MiB pool holds 512 KiB";
    EXPECT_GE(big.capacity(), 512 * kib);
    buffers.put(std::move(big));
}

TEST(CapQueue, LoweredCapacityRefusesWaitersThatCanNoLongerFit) {
    // A 512 KiB waiter at the head, seven 4 KiB ones behind it. The capacity drops to 64 KiB:
    // the head can never be served, so it is refused at once (not at its deadline), and the
    // small ones are served as soon as memory comes back.
    pool_resource pool(capped(mib, exhaustion::wait, 60s));
    std::vector<void*> all(16);
    for (void*& p : all)
        p = pool.allocate(64 * kib);
    std::atomic<bool> head_timed_out{false}, head_refused{false};
    std::thread head([&] {
        try {
            pool.deallocate(pool.allocate(512 * kib), 512 * kib);
        } catch (const capacity_exceeded& e) {
            head_refused = true;
            head_timed_out = e.code() == errc::timed_out;
        }
    });
    while (pool.stats().waiters < 1)
        std::this_thread::sleep_for(1ms);
    std::atomic<int> served{0};
    std::vector<std::thread> small;
    for (int i = 0; i < 7; ++i) {
        small.emplace_back([&] {
            pool.deallocate(pool.allocate(4 * kib), 4 * kib);
            served.fetch_add(1);
        });
    }
    while (pool.stats().waiters < 8)
        std::this_thread::sleep_for(1ms);
    pool.set_capacity(64 * kib);
    head.join();  // returns at once: a 60 s timeout is not what ends it
    EXPECT_TRUE(head_refused.load());
    EXPECT_FALSE(head_timed_out.load()) << "refused for its size, not after waiting it out";
    for (void* p : all)
        pool.deallocate(p, 64 * kib);
    for (auto& t : small)
        t.join();
    EXPECT_EQ(served.load(), 7);
    EXPECT_EQ(pool.stats().timeouts, 0u);
}

TEST(CapQueue, WaitsInProgressShow) {
    pool_resource pool(capped(64 * kib, exhaustion::wait, 60s));
    void* all = pool.allocate(64 * kib);
    const auto before = clock_type::now();
    std::thread waiter([&] { pool.deallocate(pool.allocate(64 * kib), 64 * kib); });
    while (pool.stats().waiters < 1)
        std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(2ms);
    const pool_stats s = pool.stats();
    const auto bound = clock_type::now() - before;
    EXPECT_EQ(s.waits, 1u) << "a wait counts as it begins";
    EXPECT_GT(s.oldest_wait, 0ns);
    EXPECT_LE(s.oldest_wait, bound);
    pool.deallocate(all, 64 * kib);
    waiter.join();
    EXPECT_EQ(pool.stats().oldest_wait, 0ns);
    EXPECT_EQ(pool.stats().waits, 1u);
}

TEST(CapStats, PeakIsMonotoneAndWithinWhatUpstreamHeld) {
    pool_resource pool;
    std::vector<void*> blocks(1000);
    for (void*& p : blocks)
        p = pool.allocate(64);
    const std::size_t held = pool.stats().peak_live_bytes;
    EXPECT_GE(held, 64'000u);
    give_all(pool, blocks);
    const pool_stats s = pool.stats();
    EXPECT_EQ(s.live_bytes, 0u);
    EXPECT_GE(s.peak_live_bytes, 64'000u) << "a peak never falls back";
    EXPECT_LE(s.peak_live_bytes, s.peak_upstream_bytes);
}

TEST(CapStats, PeakWithinWhatUpstreamHeldAcrossThreads) {
    // Blocks allocated on one thread and freed on another: a peak summed from per-thread figures
    // published at different moments could overshoot; an upper bound must stay within upstream.
    pool_resource pool;
    constexpr int rounds = 200;
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::vector<void*>> handed;
    bool finished = false;
    std::thread consumer([&] {
        for (;;) {
            std::vector<void*> batch;
            {
                std::unique_lock lock(m);
                cv.wait(lock, [&] { return finished || !handed.empty(); });
                if (handed.empty()) return;
                batch = std::move(handed.back());
                handed.pop_back();
            }
            for (void* p : batch)
                pool.deallocate(p, 256);
        }
    });
    for (int r = 0; r < rounds; ++r) {
        std::vector<void*> batch(100);
        for (void*& p : batch)
            p = pool.allocate(256);
        std::lock_guard lock(m);
        handed.push_back(std::move(batch));
        cv.notify_one();
    }
    {
        std::lock_guard lock(m);
        finished = true;
    }
    cv.notify_one();
    consumer.join();
    const pool_stats s = pool.stats();
    EXPECT_GE(s.peak_live_bytes, 100u * 256);
    EXPECT_LE(s.peak_live_bytes, s.peak_upstream_bytes);
}

// A waiter cancelled with pthread_cancel while it waits at the cap unwinds out of the queue.
struct cancel_target {
    pool_resource* pool;
    std::atomic<bool> started{false};
};

void* wait_at_cap(void* arg) {
    auto* t = static_cast<cancel_target*>(arg);
    t->started = true;
    void* p = t->pool->allocate(64 * kib);  // waits: cancelled here
    t->pool->deallocate(p, 64 * kib);
    return nullptr;
}

TEST(CapQueue, CancelledWaiterLeavesTheQueue) {
    pool_resource pool(capped(64 * kib, exhaustion::wait, 60s));
    void* all = pool.allocate(64 * kib);
    cancel_target target{&pool};
    pthread_t thread;
    ASSERT_EQ(pthread_create(&thread, nullptr, wait_at_cap, &target), 0);
    while (pool.stats().waiters < 1)
        std::this_thread::sleep_for(1ms);
    ASSERT_EQ(pthread_cancel(thread), 0);
    void* result = nullptr;
    ASSERT_EQ(pthread_join(thread, &result), 0);
    EXPECT_EQ(result, PTHREAD_CANCELED);
    EXPECT_EQ(pool.stats().waiters, 0u);
    // The queue is intact: another waiter is served by the next release.
    std::thread next([&] { pool.deallocate(pool.allocate(32 * kib), 32 * kib); });
    while (pool.stats().waiters < 1)
        std::this_thread::sleep_for(1ms);
    pool.deallocate(all, 64 * kib);
    next.join();
    EXPECT_EQ(pool.live_bytes(), 0u);
}

// A pool over a full capped pool: the request's own mode and deadline bound the upstream call.
struct stacked {
    pool_resource below;
    pool_resource above{pool_options{}, &below};
    void* filler;
    explicit stacked(std::chrono::nanoseconds below_max_elapsed)
        : below(capped(256 * kib, exhaustion::wait, below_max_elapsed)),
          filler(below.allocate(256 * kib)) {}
    ~stacked() { below.deallocate(filler, 256 * kib); }
};

TEST(CapUpstream, TryAllocateDoesNotWaitInUpstream) {
    stacked s(500ms);
    EXPECT_EQ(s.above.try_allocate(64), nullptr);
    EXPECT_EQ(s.below.stats().waits, 0u) << "try_allocate waited in its upstream";
    EXPECT_GE(s.below.stats().failures, 1u);
}

TEST(CapUpstream, AllocateForBoundsTheUpstreamWait) {
    stacked s(60s);
    const auto start = clock_type::now();
    EXPECT_THROW((void)s.above.allocate_for(64, alignof(std::max_align_t), 10ms),
                 capacity_exceeded);
    EXPECT_LT(clock_type::now() - start, 30s) << "waited for the upstream's own deadline";
    EXPECT_EQ(s.below.stats().timeouts, 1u);
}

TEST(CapUpstream, FailScopeReachesUpstream) {
    stacked s(500ms);
    const exhaustion_scope fail_fast(exhaustion::fail);
    EXPECT_THROW(s.above.deallocate(s.above.allocate(64), 64), capacity_exceeded);
    EXPECT_EQ(s.below.stats().waits, 0u);
}

}  // namespace
}  // namespace bpool
