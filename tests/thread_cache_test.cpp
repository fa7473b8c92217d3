// Layer 6: thread caches. Thread exit, many pools per thread, pools destroyed while the threads
// that used them live on, stale TLS slots, cross-thread frees, quiescing under load, and the
// allowance among busy and idle threads.
#include "cache/thread_cache.hpp"

#include <algorithm>
#include <atomic>
#include <barrier>
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

// The calling thread's reservation in the one pool it uses (white box: thread_cache.hpp).
std::int64_t own_reservation() {
    const detail::thread_slots& t = detail::tls_slots;
    for (const detail::tls_slot& s : t.fixed)
        if (s.cache != nullptr) return s.cache->reserved();
    for (std::uint32_t i = 0; i < t.extra_size; ++i)
        if (t.extra[i].cache != nullptr) return t.extra[i].cache->reserved();
    return -1;
}

// Builds and tears down `n` blocks of 48 and of 64 bytes, `rounds` times.
void bulk_rounds(pool_resource& pool, int rounds, std::size_t n) {
    std::vector<void*> a(n), b(n);
    for (int r = 0; r < rounds; ++r) {
        for (std::size_t i = 0; i < n; ++i) {
            a[i] = pool.allocate(48);
            b[i] = pool.allocate(64);
        }
        for (std::size_t i = 0; i < n; ++i) {
            pool.deallocate(a[i], 48);
            pool.deallocate(b[i], 64);
        }
    }
}

TEST(ThreadCache, ThreadsShareTheAllowance) {
    // The allowance follows demand: a thread alone may take most of it; once a second thread
    // wants room, a rebalance holds the first to an equal share at most (or takes all its room
    // back, if it went idle), so the newcomer gets a real share although the first may never
    // leave its fast path.
    constexpr std::int64_t allowance = 512 << 10;
    pool_resource pool({.max_cached_bytes = 2 * allowance});
    std::latch first_alone(1);
    std::int64_t alone = 0, most = 0;
    std::thread a([&] {
        bulk_rounds(pool, 10, 4000);
        alone = own_reservation();
        first_alone.count_down();
        bulk_rounds(pool, 10, 4000);
    });
    std::thread b([&] {
        first_alone.wait();
        for (int round = 0; round < 20; ++round) {
            bulk_rounds(pool, 1, 4000);
            most = std::max(most, own_reservation());
        }
    });
    a.join();
    b.join();
    EXPECT_GT(alone, allowance / 2) << "alone, a thread may take more than half";
    EXPECT_LE(alone, allowance);
    EXPECT_GE(most, allowance / 4) << "the newcomer got a real share";
    EXPECT_LE(most, allowance);
}

TEST(ThreadCache, IdleThreadsGiveTheirRoomBackWithoutRunning) {
    // A thread fills its cache, then blocks: a busy thread that finds no room takes the idle
    // one's back (its bins emptied into the central lists) without the idle thread running.
    constexpr std::int64_t allowance = 512 << 10;
    pool_resource pool({.max_cached_bytes = 2 * allowance});
    std::latch filled(1), busy_done(1);
    std::int64_t idle_before = 0, idle_after = 0, busy = 0;
    std::thread idle([&] {
        bulk_rounds(pool, 10, 4000);
        idle_before = own_reservation();
        filled.count_down();
        busy_done.wait();  // blocked: no operation on the pool meanwhile
        idle_after = own_reservation();
    });
    std::thread worker([&] {
        filled.wait();
        bulk_rounds(pool, 20, 4000);
        busy = own_reservation();
        busy_done.count_down();
    });
    idle.join();
    worker.join();
    EXPECT_GT(idle_before, allowance / 2);
    EXPECT_EQ(idle_after, 0) << "the idle thread's room went back while it slept";
    EXPECT_GT(busy, allowance / 2) << "the busy thread got it";
    const pool_stats s = pool.stats();
    EXPECT_GE(s.quiesces, 1u) << "taking an idle cache's room back quiesces it";
    EXPECT_LE(s.quiesces, 4u) << "a few rebalances, not one per operation";
}

TEST(ThreadCache, IdleMemoryOfAllThreadsStaysUnderMaxCachedBytes) {
    // Sixteen threads each build up and tear down a working set of small and large blocks, then
    // stay alive holding their caches: idle memory, theirs and the central lists' together, stays
    // under the pool's bound (but for the uncarved tails of chunks, at most one chunk per class).
    constexpr std::size_t bound = 1 << 20;
    counting_resource upstream;
    pool_resource pool({.max_cached_bytes = bound}, &upstream);
    constexpr int threads = 16;
    const std::size_t sizes[] = {48, 640, 4096, 40000};
    std::latch built(threads + 1), checked(1);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&] {
            std::vector<std::pair<void*, std::size_t>> mine;
            for (int round = 0; round < 10; ++round) {
                for (const std::size_t n : sizes)
                    for (int i = 0; i < 100; ++i)
                        mine.emplace_back(pool.allocate(n), n);
                for (auto [p, n] : mine)
                    pool.deallocate(p, n);
                mine.clear();
            }
            built.arrive_and_wait();
            checked.wait();
        });
    }
    built.arrive_and_wait();
    const pool_stats s = pool.stats();
    EXPECT_EQ(s.live_bytes, 0u);
    EXPECT_LE(s.thread_cached_bytes, bound / 2) << "the thread caches' share";
    // The slack: a partly carved chunk per class, and a batch (at most 8 KiB) per thread whose
    // flush raced another's past the bound (each decides on the idle bytes it read).
    const std::size_t slack = 3 * (64u << 10) + threads * (8u << 10);
    EXPECT_LE(s.cached_bytes, bound + slack) << "caches and central lists together";
    EXPECT_LE(upstream.live_bytes(), bound + slack + s.unused_bytes);
    // Chunk tails, and the free pages of upstream allocations that small chunks share and that
    // the idle blocks keep (none of those holds more than 64 KiB).
    EXPECT_LE(s.unused_bytes, 16 * (64u << 10));
    checked.count_down();
    for (auto& w : workers)
        w.join();
    pool.trim();
    EXPECT_EQ(upstream.live_bytes(), 0u);
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

// --- idle threads do not shrink a busy thread's cache ---------------------------------

// Threads that each run `work` once (so that the pool registers a cache for them) and then idle,
// alive, until the object is destroyed. They are made with small stacks (64 KiB: std::thread cannot
// set them) so that thousands are cheap; if the system refuses one (EAGAIN on a machine with a low
// thread limit), the others still start and `error()` says why.
class idle_crowd {
  public:
    idle_crowd(unsigned n, std::function<void()> work) : work_(std::move(work)) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, std::max<std::size_t>(64 << 10, PTHREAD_STACK_MIN));
        threads_.reserve(n);
        for (unsigned i = 0; i < n && error_ == 0; ++i) {
            pthread_t t;
            error_ = pthread_create(&t, &attr, &idle_crowd::run, this);
            if (error_ == 0) threads_.push_back(t);
        }
        pthread_attr_destroy(&attr);
        std::unique_lock lock(mutex_);
        all_ready_.wait(lock, [&] { return ready_ == threads_.size(); });
    }
    ~idle_crowd() {
        {
            std::lock_guard lock(mutex_);
            released_ = true;
        }
        release_.notify_all();
        for (pthread_t t : threads_)
            pthread_join(t, nullptr);
    }
    idle_crowd(const idle_crowd&) = delete;
    idle_crowd& operator=(const idle_crowd&) = delete;

    /// pthread_create's error for the thread it refused (0: all started).
    [[nodiscard]] int error() const { return error_; }
    [[nodiscard]] std::size_t started() const { return threads_.size(); }

  private:
    static void* run(void* self) {
        auto& crowd = *static_cast<idle_crowd*>(self);
        crowd.work_();
        std::unique_lock lock(crowd.mutex_);
        ++crowd.ready_;
        crowd.all_ready_.notify_one();  // only the constructor waits on it
        crowd.release_.wait(lock, [&] { return crowd.released_; });
        return nullptr;
    }

    std::function<void()> work_;
    std::vector<pthread_t> threads_;
    int error_ = 0;
    std::mutex mutex_;
    std::condition_variable all_ready_;  // the constructor waits for every thread here
    std::condition_variable release_;    // the threads wait for the destructor here
    std::size_t ready_ = 0;
    bool released_ = false;
};

constexpr std::size_t busy_blocks = 2000;
constexpr std::size_t busy_block_size = 64;

// What a busy thread's cache keeps of its working set (busy_blocks blocks, built and torn down 20
// times) in a default pool that `idle` other threads have used once each and idle beside it: the
// pool's thread_cached_bytes, read by the busy thread after its last teardown (the idle threads'
// caches hold nothing: their one block went back to the central list). Nullopt if the idle
// threads could not all be started (`*why` says how many were).
std::optional<std::size_t> busy_cache_beside(unsigned idle, std::string* why) {
    pool_resource pool;
    const idle_crowd crowd(
        idle, [&] { pool.deallocate(pool.allocate(busy_block_size), busy_block_size); });
    if (crowd.error() != 0) {
        *why = "only " + std::to_string(crowd.started()) + " of " + std::to_string(idle) +
               " threads could be started: " + std::strerror(crowd.error());
        return std::nullopt;
    }
    std::size_t cached = 0;
    std::thread busy([&] {
        std::vector<void*> nodes(busy_blocks);
        for (int round = 0; round < 20; ++round) {
            for (void*& p : nodes)
                p = pool.allocate(busy_block_size);
            for (void* p : nodes)
                pool.deallocate(p, busy_block_size);
        }
        cached = pool.stats().thread_cached_bytes;
    });
    busy.join();
    return cached;
}

TEST(ThreadCache, IdleThreadsDoNotShrinkTheCacheOfABusyOne) {
    // A server's thread pool: 2047 threads that used the pool once and now sleep, one that builds
    // and tears down 2000 nodes over and over. The idle ones need no room in the allowance; the
    // busy one should keep its working set in its bin as it does alone (4 MiB of allowance is
    // plenty), not an equal 2048th of the allowance (2 KiB, 32 blocks: it would refill from and
    // flush to the central list over a hundred times a round).
    constexpr std::size_t working_set = busy_blocks * busy_block_size;
    std::string why;
    const std::optional<std::size_t> alone = busy_cache_beside(0, &why);
    ASSERT_TRUE(alone.has_value());
    EXPECT_GE(*alone, working_set * 9 / 10) << "alone, the bin keeps the working set";
    const std::optional<std::size_t> crowded = busy_cache_beside(2047, &why);
    if (!crowded) GTEST_SKIP() << why;
    EXPECT_GE(*crowded, working_set * 9 / 10)
        << "beside 2047 idle threads the busy thread's bin keeps " << *crowded << " bytes of its "
        << working_set << "-byte working set (alone: " << *alone
        << "): the allowance is split by the number of caches, idle ones included";
    EXPECT_GE(*crowded, *alone * 9 / 10) << "the idle threads cost the busy one its cache";
}

}  // namespace
}  // namespace bpool
