// Layer 6: thread caches. Thread exit, many pools per thread, pools destroyed while the threads
// that used them live on or are exiting, stale TLS slots, cross-thread frees, bins, trimming
// under load (the allowance: allowance_test.cpp).
#include "cache/thread_cache.hpp"

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "support/counting_resource.hpp"

namespace bpool {
namespace {

using test::check_pattern;
using test::counting_resource;
using test::fill_pattern;

TEST(ThreadCache, ThreadExitGivesItsCachedBlocksBack) {
    counting_resource upstream;
    pool_resource pool({}, &upstream);
    std::thread([&] {
        std::vector<void*> blocks;
        for (int i = 0; i < 200; ++i)
            blocks.push_back(pool.allocate(64));
        for (void* p : blocks)
            pool.deallocate(p, 64);
        EXPECT_GT(pool.stats().cached_bytes, 0u);
    }).join();
    const pool_stats s = pool.stats();
    EXPECT_EQ(s.live_bytes, 0u);
    EXPECT_EQ(s.allocations, 200u);
    EXPECT_EQ(s.deallocations, 200u) << "the exited thread's counters are kept";
    pool.trim();
    EXPECT_EQ(upstream.live_bytes(), 0u) << "nothing stayed behind in the dead thread's cache";
}

TEST(ThreadCache, ManyPoolsPerThread) {
    counting_resource upstream;
    std::vector<std::unique_ptr<pool_resource>> pools;
    for (int i = 0; i < 40; ++i)
        pools.push_back(std::make_unique<pool_resource>(pool_options{}, &upstream));
    std::vector<std::pair<void*, int>> blocks;
    for (int round = 0; round < 5; ++round) {
        for (int i = 0; i < 40; ++i) {
            void* p = pools[i]->allocate(100 + i);
            fill_pattern(p, 100 + i, static_cast<std::uint64_t>(i));
            blocks.emplace_back(p, i);
        }
    }
    for (auto [p, i] : blocks) {
        EXPECT_TRUE(check_pattern(p, 100 + i, static_cast<std::uint64_t>(i)));
        pools[i]->deallocate(p, 100 + i);
    }
    for (int i = 0; i < 40; ++i) {
        EXPECT_EQ(pools[i]->live_bytes(), 0u);
    }
    pools.clear();
    EXPECT_EQ(upstream.live_bytes(), 0u);
    EXPECT_EQ(upstream.mismatches(), 0u);
}

TEST(ThreadCache, PoolDestroyedWhileThreadsThatUsedItLive) {
    counting_resource upstream;
    auto pool = std::make_unique<pool_resource>(pool_options{}, &upstream);
    constexpr int threads = 4;
    std::latch used(threads);
    std::latch destroyed(1);
    std::latch reused(threads);
    auto replacement = std::make_unique<pool_resource>(pool_options{}, &upstream);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&] {
            std::vector<void*> blocks;
            for (int i = 0; i < 100; ++i)
                blocks.push_back(pool->allocate(32 + 16 * (i % 8)));
            for (int i = 0; i < 100; ++i)
                pool->deallocate(blocks[i], 32 + 16 * (i % 8));
            used.count_down();
            destroyed.wait();
            // The thread's cache for the dead pool is stale; a new pool works.
            void* p = replacement->allocate(48);
            replacement->deallocate(p, 48);
            reused.count_down();
        });
    }
    used.wait();
    pool.reset();  // while all four threads hold caches for it
    destroyed.count_down();
    reused.wait();
    for (auto& w : workers)
        w.join();
    EXPECT_EQ(replacement->live_bytes(), 0u);
    replacement.reset();
    EXPECT_EQ(upstream.live_bytes(), 0u);
    EXPECT_EQ(upstream.mismatches(), 0u);
}

TEST(ThreadCache, StaleSlotIsReplacedWhenAnIdIsReused) {
    counting_resource upstream;
    // Create and destroy pools on this thread repeatedly: ids are recycled, generations are not.
    for (int round = 0; round < 50; ++round) {
        pool_resource pool({}, &upstream);
        void* p = pool.allocate(80);
        fill_pattern(p, 80, static_cast<std::uint64_t>(round));
        void* q = pool.allocate(80);
        EXPECT_NE(p, q);
        EXPECT_TRUE(check_pattern(p, 80, static_cast<std::uint64_t>(round)));
        pool.deallocate(q, 80);
        if (round % 2 == 0) pool.deallocate(p, 80);  // odd rounds leave a live block behind
    }
    EXPECT_EQ(upstream.live_bytes(), 0u);
}

TEST(ThreadCache, ThreadExitAfterItsPoolDied) {
    counting_resource upstream;
    auto pool = std::make_unique<pool_resource>(pool_options{}, &upstream);
    std::latch used(1);
    std::latch destroyed(1);
    std::thread t([&] {
        pool->deallocate(pool->allocate(256), 256);
        used.count_down();
        destroyed.wait();
    });
    used.wait();
    pool.reset();
    EXPECT_EQ(upstream.live_bytes(), 0u);
    destroyed.count_down();
    t.join();  // its exit hook finds the pool dead and only frees the cache
}

// An upstream that stops, inside a deallocation, the thread named by gate(): it announces the
// stop and waits until open() is called. Everything else goes to a counting_resource.
class gated_resource final : public std::pmr::memory_resource {
  public:
    /// From now on, the next deallocation made by the calling thread stops.
    void gate() { gated_ = std::this_thread::get_id(); }
    /// Lets the stopped deallocation finish.
    void open() { opened_.count_down(); }
    /// Waits until a gated deallocation stopped (true) or `done` became true first (false).
    bool wait_stopped(const std::atomic<bool>& done) {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return stopped_ || done.load(); });
        return stopped_;
    }
    /// Wakes wait_stopped to look at its `done` flag again.
    void poke() {
        std::lock_guard lock(mutex_);
        cv_.notify_all();
    }
    [[nodiscard]] const counting_resource& counts() const { return counts_; }

  private:
    void* do_allocate(std::size_t n, std::size_t a) override { return counts_.allocate(n, a); }
    void do_deallocate(void* p, std::size_t n, std::size_t a) override {
        if (gated_.load() == std::this_thread::get_id()) {
            gated_ = std::thread::id{};
            {
                std::lock_guard lock(mutex_);
                stopped_ = true;
                cv_.notify_all();
            }
            opened_.wait();
        }
        counts_.deallocate(p, n, a);
    }
    [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override {
        return this == &o;
    }

    counting_resource counts_;
    std::atomic<std::thread::id> gated_{};
    std::latch opened_{1};
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stopped_ = false;
};

TEST(ThreadCache, PoolDestroyedWhileAThreadExitsWaitsForItsExit) {
    // A thread's exit gives its cache's blocks back outside every lock; when that empties a chunk,
    // its extent goes back to the page heap, and an empty extent to upstream. Here that upstream
    // call stops, and the pool is destroyed meanwhile on another thread. The destruction must wait
    // for the exit: if it does not, it frees the heap under the exiting thread (a double free of
    // an extent once it resumes, which crashed a 64-thread benchmark).
    gated_resource upstream;
    auto pool =
        std::make_unique<pool_resource>(pool_options{.max_cached_bytes = 64 << 10}, &upstream);
    std::atomic<bool> exited{false};
    std::thread t([&] {
        std::vector<void*> blocks;
        for (int i = 0; i < 64; ++i)
            blocks.push_back(pool->allocate(8192));
        for (void* p : blocks)
            pool->deallocate(p, 8192);
        upstream.gate();  // what this thread's exit gives to upstream stops there
    });
    std::thread watcher([&] {
        t.join();
        exited = true;
        upstream.poke();
    });
    if (!upstream.wait_stopped(exited)) {
        watcher.join();
        FAIL() << "the exit gave nothing back to upstream: the test's sizes no longer reach that "
                  "path";
    }
    std::atomic<bool> destroyed{false};
    std::thread destroyer([&] {
        pool.reset();
        destroyed = true;
    });
    // However long this sleeps, a correct pool is still waiting: the exit cannot go on until the
    // gate opens below. (The sleep only gives a wrong one the time to show it.)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_FALSE(destroyed.load()) << "the pool was destroyed under a thread still exiting";
    upstream.open();
    destroyer.join();
    watcher.join();
    EXPECT_EQ(upstream.counts().live_bytes(), 0u);
    EXPECT_EQ(upstream.counts().mismatches(), 0u) << "an extent was given back twice";
}

TEST(ThreadCache, ProducerConsumerFreesStayBounded) {
    counting_resource upstream;
    pool_resource pool({}, &upstream);
    constexpr int items = 200000;
    std::vector<std::atomic<void*>> ring(256);
    std::atomic<int> produced{0};
    std::thread producer([&] {
        for (int i = 0; i < items; ++i) {
            void* p = pool.allocate(512);
            fill_pattern(p, 512, static_cast<std::uint64_t>(i));
            std::atomic<void*>& slot = ring[static_cast<std::size_t>(i) % ring.size()];
            while (slot.load(std::memory_order_acquire) != nullptr)
                std::this_thread::yield();
            slot.store(p, std::memory_order_release);
            produced.fetch_add(1, std::memory_order_relaxed);
        }
    });
    std::thread consumer([&] {
        for (int i = 0; i < items; ++i) {
            std::atomic<void*>& slot = ring[static_cast<std::size_t>(i) % ring.size()];
            void* p;
            while ((p = slot.load(std::memory_order_acquire)) == nullptr)
                std::this_thread::yield();
            EXPECT_TRUE(check_pattern(p, 512, static_cast<std::uint64_t>(i)));
            slot.store(nullptr, std::memory_order_release);
            pool.deallocate(p, 512);
        }
    });
    producer.join();
    consumer.join();
    EXPECT_EQ(pool.live_bytes(), 0u);
    // At most the ring's worth live at once, plus bounded caches: no growth with the item count.
    EXPECT_LT(pool.stats().peak_upstream_bytes, 2u << 20);
}

TEST(ThreadCache, ABinGrowsToHoldWhatItsThreadBuildsAndTearsDown) {
    pool_resource pool;
    std::vector<void*> nodes(1000);
    for (int round = 0; round < 20; ++round) {
        for (void*& p : nodes)
            p = pool.allocate(48);
        for (void* p : nodes)
            pool.deallocate(p, 48);
    }
    const pool_stats s = pool.stats();
    EXPECT_GE(s.thread_cached_bytes, 1000u * 48) << "the next round is served from the bin alone";
    EXPECT_LE(s.thread_cached_bytes, 256u << 10) << "a bin holds at most 256 KiB";
    pool.trim();
    EXPECT_EQ(pool.stats().thread_cached_bytes, 0u);
}

TEST(ThreadCache, ABinWalkedAtRandomStaysSmall) {
    // Blocks of 1 KiB whose count drifts at random around 40: the bin keeps a few of them, not the
    // 256 KiB it may grow to when a thread needs them in bulk.
    pool_resource pool;
    std::vector<void*> live;
    std::mt19937 rng(3);
    for (int i = 0; i < 40; ++i)
        live.push_back(pool.allocate(1024));
    for (int i = 0; i < 200000; ++i) {
        if (rng() % 2 == 0 || live.empty()) {
            live.push_back(pool.allocate(1024));
        } else {
            pool.deallocate(live.back(), 1024);
            live.pop_back();
        }
        if (live.size() > 60) {  // keep the walk around 40 +- 20
            pool.deallocate(live.back(), 1024);
            live.pop_back();
        }
    }
    EXPECT_LE(pool.stats().thread_cached_bytes, 32u << 10);
    for (void* p : live)
        pool.deallocate(p, 1024);
}

TEST(ThreadCache, TrimWhileOtherThreadsChurn) {
    counting_resource upstream;
    pool_resource pool({}, &upstream);
    std::atomic<bool> stop{false};
    std::vector<std::thread> workers;
    for (int t = 0; t < 3; ++t) {
        workers.emplace_back([&, t] {
            std::mt19937 rng(static_cast<unsigned>(t));
            std::vector<std::pair<void*, std::size_t>> live;
            std::uint64_t seed = 0;
            while (!stop.load(std::memory_order_relaxed) || !live.empty()) {
                if (!stop.load(std::memory_order_relaxed) && (live.size() < 64 || rng() % 2)) {
                    const std::size_t n = 16 + rng() % 3000;
                    void* p = pool.allocate(n);
                    fill_pattern(p, n, seed + n);
                    live.emplace_back(p, n);
                } else {
                    auto [p, n] = live.back();
                    live.pop_back();
                    EXPECT_TRUE(check_pattern(p, n, seed + n));
                    pool.deallocate(p, n);
                }
            }
        });
    }
    for (int i = 0; i < 200; ++i) {
        pool.trim();
        std::this_thread::yield();
    }
    stop = true;
    for (auto& w : workers)
        w.join();
    pool.trim();
    EXPECT_EQ(pool.live_bytes(), 0u);
    EXPECT_EQ(pool.stats().cached_bytes, 0u) << "trim drained every cache, including idle ones";
}

TEST(ThreadCache, AFencedFastPathIsReported) {
    // BPOOL_MEMBARRIER=0 (the fenced_thread_cache_test run) stands for a process without
    // membarrier: the pool says its fast paths fence for themselves.
    pool_resource pool;
    pool.deallocate(pool.allocate(64), 64);
    const char* env = std::getenv("BPOOL_MEMBARRIER");
    if (env == nullptr || std::string(env) != "0")
        GTEST_SKIP() << "runs as fenced_thread_cache_test";
    EXPECT_TRUE(pool.stats().fenced_fast_path);
}

TEST(ThreadCache, FixedAndOverflowSlotsAreDistinct) {
    // Internal: pools past the fixed TLS slots still get their own caches.
    std::vector<std::unique_ptr<pool_resource>> pools;
    for (std::uint32_t i = 0; i < detail::fixed_slots + 8; ++i)
        pools.push_back(std::make_unique<pool_resource>());
    std::vector<void*> blocks;
    for (auto& p : pools)
        blocks.push_back(p->allocate(24));
    for (std::size_t i = 0; i < pools.size(); ++i) {
        EXPECT_EQ(pools[i]->live_blocks(), 1u);
        pools[i]->deallocate(blocks[i], 24);
    }
}

}  // namespace
}  // namespace bpool
