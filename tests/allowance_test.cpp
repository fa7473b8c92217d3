// Layer 6: the allowance of the thread caches. It follows demand: a thread alone may take most of
// it, a newcomer that wants room gets a share, idle caches give their room back without running,
// idle memory stays under max_cached_bytes, and idle threads do not shrink a busy one's cache.
#include "cache/allowance.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <latch>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "cache/thread_cache.hpp"
#include "support/counting_resource.hpp"

namespace bpool {
namespace {

using test::counting_resource;

// The calling thread's reservation in the one pool it uses (white box: thread_cache.hpp).
std::int64_t own_reservation() {
    const detail::thread_slots& t = detail::tls_slots;
    for (const detail::thread_cache* s : t.fixed)
        if (s != &detail::vacant_cache) return s->reserved();
    for (std::uint32_t i = 0; i < t.extra_size; ++i)
        if (t.extra[i] != nullptr) return t.extra[i]->reserved();
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

TEST(Allowance, ThreadsShareTheAllowance) {
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

TEST(Allowance, IdleThreadsGiveTheirRoomBackWithoutRunning) {
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

TEST(Allowance, IdleMemoryOfAllThreadsStaysUnderMaxCachedBytes) {
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

TEST(Allowance, IdleThreadsDoNotShrinkTheCacheOfABusyOne) {
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
