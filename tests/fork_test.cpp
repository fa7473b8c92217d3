// fork() while other threads use the pool: every child can allocate, free (its own blocks, blocks
// the parent handed it, and blocks the parent's other threads had cached), trim, read stats,
// change the capacity and destroy a pool, and exits within a bound. Each child arms an alarm
// against a hang (a lock or an announced operation inherited from a thread that does not exist in
// the child); the parent checks that every child exited with 0.
//
// The pool's upstream maps memory itself, and the churning threads allocate nothing but from the
// pool: so that no thread of the parent is inside malloc when it forks. (Sanitizer runtimes of
// this toolchain do not make their own allocator fork-safe; glibc's is.)
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <latch>
#include <memory_resource>
#include <mutex>
#include <random>
#include <sys/mman.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <bpool/errors.hpp>
#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

namespace bpool {
namespace {

using namespace std::chrono_literals;

}  // namespace
}  // namespace bpool

#if defined(__SANITIZE_THREAD__)
// The prepare handler holds one lock per size class of every pool across fork(), more than TSan's
// deadlock detector can track (64 per thread): it is off in this binary (README, "fork()").
extern "C" const char* __tsan_default_options() {
    return "detect_deadlocks=0";
}
#endif

namespace bpool {
namespace {

constexpr std::size_t sizes[] = {16, 64, 200, 1024, 4096, 20000, 300000, 2 << 20};

// Upstream straight from mmap: fork-safe whatever allocator the process runs on.
class mmap_resource final : public std::pmr::memory_resource {
    static std::size_t pages(std::size_t n) { return (n + 4095) & ~std::size_t{4095}; }

    void* do_allocate(std::size_t bytes, std::size_t alignment) override {
        const std::size_t size = pages(bytes);
        const std::size_t slack = alignment > 4096 ? alignment : 0;
        void* p =
            mmap(nullptr, size + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        auto* base = static_cast<std::byte*>(p);
        if (slack == 0) return base;
        // Trim the mapping to an aligned run of `size` bytes.
        const auto addr = reinterpret_cast<std::uintptr_t>(base);
        auto* aligned = base + ((alignment - addr % alignment) % alignment);
        if (aligned > base) munmap(base, static_cast<std::size_t>(aligned - base));
        const std::size_t tail = static_cast<std::size_t>(base + size + slack - (aligned + size));
        if (tail > 0) munmap(aligned + size, tail);
        return aligned;
    }
    void do_deallocate(void* p, std::size_t bytes, std::size_t) override {
        munmap(p, pages(bytes));
    }
    bool do_is_equal(const memory_resource& other) const noexcept override {
        return this == &other;
    }
};

// Allocates and frees random sizes until told to stop; keeps up to 64 blocks live at a time, so
// that forks land in fast paths, refills, flushes, direct blocks and (capped) waits.
void churn(pool_resource& pool, const std::atomic<bool>& stop, unsigned seed, std::latch& warm) {
    std::mt19937 rng(seed);
    std::vector<std::pair<void*, std::size_t>> live;
    live.reserve(64);                        // no allocation from the global heap from here on
    pool.deallocate(pool.allocate(64), 64);  // this thread's cache and exit hook exist now
    warm.count_down();
    while (!stop.load(std::memory_order_relaxed)) {
        if (live.size() < 64 && (live.empty() || rng() % 2 == 0)) {
            const std::size_t n = sizes[rng() % std::size(sizes)];
            live.emplace_back(pool.allocate(n), n);
        } else {
            const std::size_t i = rng() % live.size();
            pool.deallocate(live[i].first, live[i].second);
            live[i] = live.back();
            live.pop_back();
        }
    }
    for (auto [p, n] : live)
        pool.deallocate(p, n);
}

// Waits for a child; one that has not exited after `limit` (a hang, even inside the fork handlers,
// before any alarm of its own) is killed. Returns its status.
int wait_child(pid_t pid, std::chrono::seconds limit = std::chrono::seconds(120)) {
    const auto give_up = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > give_up) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return status;
}

// The child's work: everything must complete; a hang ends in SIGALRM.
[[noreturn]] void child_work(pool_resource& pool, void* inherited, std::size_t inherited_size) {
    alarm(60);
    int status = 0;
    {
        const exhaustion_scope fail_fast(exhaustion::fail);
        std::vector<std::pair<void*, std::size_t>> mine;
        for (int round = 0; round < 3; ++round) {
            for (std::size_t n : sizes) {
                try {
                    mine.emplace_back(pool.allocate(n), n);
                } catch (const capacity_exceeded&) {
                    // A capped pool may be full of blocks live in the parent's threads.
                }
            }
        }
        for (auto [p, n] : mine)
            pool.deallocate(p, n);
    }
    pool.deallocate(inherited, inherited_size);
    (void)pool.trim();
    const pool_stats s = pool.stats();
    if (s.waiters != 0) status = 2;
    // Lifting the cap makes room whatever the parent's threads held.
    pool.set_capacity(0);
    for (std::size_t n : sizes)
        pool.deallocate(pool.allocate(n), n);
    {
        pool_resource fresh;  // pools can be created and destroyed in the child
        fresh.deallocate(fresh.allocate(100), 100);
    }
    std::_Exit(status);
}

// `stacked`: the pool's upstream is another pool (over the mapping resource), so that the child's
// handlers give blocks back through a pool that is itself being handled.
void fork_while_churning(const pool_options& options, int forks, bool stacked = false) {
    mmap_resource mapped;
    pool_resource below(pool_options{}, &mapped);
    pool_resource pool(options,
                       stacked ? static_cast<std::pmr::memory_resource*>(&below) : &mapped);
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    std::latch warm(3);
    for (unsigned t = 0; t < 3; ++t)
        threads.emplace_back([&, t] { churn(pool, stop, 7 + t, warm); });
    warm.wait();
    int failed = 0;
    for (int i = 0; i < forks && failed == 0; ++i) {
        const std::size_t n = sizes[static_cast<std::size_t>(i) % std::size(sizes)];
        void* inherited = pool.allocate(n);
        const pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) child_work(pool, inherited, n);
        pool.deallocate(inherited, n);
        const int status = wait_child(pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            ++failed;
            ADD_FAILURE() << "fork " << i << ": child "
                          << (WIFSIGNALED(status) ? "killed by signal " : "exited with ")
                          << (WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        }
    }
    stop = true;
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(pool.live_bytes(), 0u) << "the parent's accounting is intact";
}

TEST(Fork, ChildrenOfAnUncappedPoolWhileThreadsChurn) {
    fork_while_churning(pool_options{}, 300);
}

TEST(Fork, ChildrenOfACappedPoolWhileThreadsWait) {
    pool_options o;
    o.capacity = 4 << 20;  // the churners meet it: forks land in waits and hand-overs too
    // Overcommit after a short wait: the churners never throw (so never allocate an exception)
    // and cannot all hold and wait for good.
    o.on_exhaustion = exhaustion::overcommit;
    o.backoff.max_elapsed = 2ms;
    fork_while_churning(o, 200);
}

TEST(Fork, ChildrenOfStackedPoolsWhileThreadsChurn) {
    pool_options o;
    o.max_cached_bytes = 64 << 10;  // small bins: the caches flush, and chunks go back, often
    fork_while_churning(o, 200, true);
}

TEST(Fork, ChildGivesTheOtherThreadsBlocksBackThroughAnUpstreamPool) {
    // Another thread's bin holds blocks at the fork; in the child they go back to their chunk,
    // which empties, and the class's spare chunk goes back to the upstream: a pool that the
    // child's handlers are handling too.
    mmap_resource mapped;
    pool_resource below(pool_options{}, &mapped);
    pool_options o;
    o.max_cached_bytes = 16 << 10;  // bins of two 4 KiB blocks; freed blocks go back to chunks
    pool_resource above(o, &below);
    std::mutex m;
    std::condition_variable cv;
    bool ready = false, done = false;
    std::thread owner([&] {
        void* blocks[16];  // two chunks of the 4 KiB class
        for (int round = 0; round < 50; ++round) {
            for (void*& p : blocks)
                p = above.allocate(4096);
            for (void* p : blocks)
                above.deallocate(p, 4096);
        }
        std::unique_lock lock(m);
        ready = true;
        cv.notify_all();
        cv.wait(lock, [&] { return done; });
    });
    {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return ready; });
    }
    ASSERT_GE(above.stats().thread_cached_bytes, 4096u) << "the other thread's bin holds blocks";
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        alarm(60);
        above.deallocate(above.allocate(64), 64);
        (void)above.trim();
        std::_Exit(above.stats().thread_cached_bytes == 0 ? 0 : 4);
    }
    const int status = wait_child(pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    {
        std::lock_guard lock(m);
        done = true;
    }
    cv.notify_all();
    owner.join();
}

TEST(Fork, ChildCanUseEveryOperationOfAnIdlePool) {
    pool_options o;
    o.capacity = 1 << 20;
    pool_resource pool(o);
    void* kept = pool.allocate(64);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        alarm(60);
        pool.deallocate(kept, 64);
        (void)pool.trim();
        std::_Exit(pool.live_bytes() == 0 ? 0 : 3);
    }
    const int status = wait_child(pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    pool.deallocate(kept, 64);
}

}  // namespace
}  // namespace bpool
