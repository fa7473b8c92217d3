// fork() while other threads use the pool: every child can allocate, free (its own blocks, blocks
// the parent handed it, and blocks the parent's other threads had cached), trim, read stats,
// change the capacity and destroy a pool, and exits within a bound. Each child arms an alarm
// against a hang (a lock or an announced operation inherited from a thread that does not exist in
// the child); the parent checks that every child exited with 0. Forks also land while a refill of
// a pool waits in its capped upstream pool (fork() must not wait for it), and while a
// buffer_pool's get() waits at its live-buffer cap; a watchdog turns a fork() that
// hangs in the parent into a failure.
//
// The pool's upstream maps memory itself, and the churning threads allocate nothing but from the
// pool: so that no thread of the parent is inside malloc when it forks. (Sanitizer runtimes of
// this toolchain do not make their own allocator fork-safe; glibc's is.)
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <memory_resource>
#include <mutex>
#include <optional>
#include <random>
#include <sys/mman.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <bpool/buffer_pool.hpp>
#include <bpool/errors.hpp>
#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "support/async_record.hpp"
#include "support/stacked.hpp"
#include "support/watchdog.hpp"

namespace bpool {
namespace {

using namespace std::chrono_literals;

}  // namespace
}  // namespace bpool

#if defined(__SANITIZE_THREAD__)
// The prepare handler holds one lock per size class of every pool across fork(), more than TSan's
// deadlock detector can track (64 per thread): it is off in this binary (README, "fork()"). A
// child may start the async completion thread, which TSan allows only with die_after_fork=0.
extern "C" const char* __tsan_default_options() {
    return "detect_deadlocks=0:die_after_fork=0";
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

// A thread that runs `work`, then stays alive and idle (its caches as `work` left them) until the
// object is destroyed. The constructor returns once `work` is done.
class parked_thread {
  public:
    template <class F>
    explicit parked_thread(F work)
        : thread_([this, work] {
              work();
              std::unique_lock lock(mutex_);
              worked_ = true;
              cv_.notify_all();
              cv_.wait(lock, [&] { return released_; });
          }) {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return worked_; });
    }
    ~parked_thread() {
        {
            std::lock_guard lock(mutex_);
            released_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    parked_thread(const parked_thread&) = delete;
    parked_thread& operator=(const parked_thread&) = delete;

  private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool worked_ = false, released_ = false;
    std::thread thread_;  // last: it starts once the members it uses exist
};

TEST(Fork, ChildGivesTheOtherThreadsBlocksBackThroughAnUpstreamPool) {
    // Another thread's bin holds blocks at the fork; in the child they go back to their chunk,
    // which empties, and the class's spare chunk goes back to the upstream: a pool that the
    // child's handlers are handling too.
    mmap_resource mapped;
    pool_resource below(pool_options{}, &mapped);
    pool_options o;
    o.max_cached_bytes = 16 << 10;  // bins of two 4 KiB blocks; freed blocks go back to chunks
    pool_resource above(o, &below);
    const parked_thread owner([&] {
        void* blocks[16];  // two chunks of the 4 KiB class
        for (int round = 0; round < 50; ++round) {
            for (void*& p : blocks)
                p = above.allocate(4096);
            for (void* p : blocks)
                above.deallocate(p, 4096);
        }
    });
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

// --- forks while a thread waits in a capped upstream, or at a buffer_pool's cap ------

using test::background_allocation;
using test::big_block;
using test::describe;
using state = background_allocation::state;

// Ends the child with `code` after writing `message` to stderr, without stdio (whose lock the
// child may have inherited held).
[[noreturn]] void child_exit(int code, const char* message) {
    if (message != nullptr) (void)!write(STDERR_FILENO, message, std::strlen(message));
    std::_Exit(code);
}

// The child of ChildOfStackedPoolsWhileARefillWaitsInTheCappedUpstream: A (over B) and B full of
// the parent's blocks, a refill of A and a request of B waiting in B at the fork, another thread's
// bins holding blocks of A. Everything must be served at once (a `fail` scope: any wait is a bug),
// and both pools must be destroyable.
[[noreturn]] void child_of_waiting_stack(std::optional<pool_resource>& above,
                                         std::optional<pool_resource>& below,
                                         pool_resource& churned, const std::vector<void*>& held,
                                         const std::vector<void*>& others_live) {
    alarm(test::child_alarm_seconds());
    if (below->stats().waiters != 0) child_exit(10, "child: B still counts the parent's waiters\n");
    {
        // A and B are full: small requests may be refused (A's chunks come from B), never wait.
        const exhaustion_scope fail_fast(exhaustion::fail);
        for (std::size_t n : {64, 1024, 5000}) {
            try {
                above->deallocate(above->allocate(n), n);
            } catch (const capacity_exceeded&) {
            }
        }
    }
    // Blocks live in the parent's other threads, then the ones that filled B: freed here.
    for (void* p : others_live)
        above->deallocate(p, 1024);
    for (void* p : held)
        above->deallocate(p, big_block);
    (void)above->trim();
    if (above->stats().thread_cached_bytes != 0)
        child_exit(12, "child: A's thread caches still hold blocks after trim\n");
    if (above->live_bytes() != 0)
        child_exit(13, "child: A counts blocks live after every block was freed\n");
    {
        const exhaustion_scope fail_fast(exhaustion::fail);
        try {
            // The class the waiting refill was filling, and the others the parent's threads used.
            void* big = above->allocate(big_block);
            for (std::size_t n : {16, 64, 200, 1024, 4096, 20000, 300000})
                above->deallocate(above->allocate(n), n);
            void* direct = below->allocate(big_block);  // what the parent's B waiter asked for
            below->deallocate(direct, big_block);
            above->deallocate(big, big_block);
            below->set_capacity(below->capacity() / 2);
            above->deallocate(above->allocate(64), 64);
            below->set_capacity(0);
            churned.deallocate(churned.allocate(300000), 300000);
        } catch (const capacity_exceeded&) {
            child_exit(11,
                       "child: a request was refused although B had room: the parent's waiting "
                       "refill or request still holds it\n");
        }
    }
    above.reset();
    if (below->live_bytes() != 0)
        child_exit(14, "child: B counts blocks live once A, its only user, is destroyed\n");
    below.reset();
    std::_Exit(0);
}

// Reports how a child ended, with what its exit code means.
void expect_child_ok(int status) {
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "child " << (WIFSIGNALED(status) ? "killed by signal " : "exited with ")
        << (WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status))
        << (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? " (its alarm: a hang)" : "")
        << " (its message, if any, is on stderr)";
}

TEST(Fork, ChildOfStackedPoolsWhileARefillWaitsInTheCappedUpstream) {
    test::watchdog dog("fork() while a refill of pool A waits in A's capped upstream B");
    mmap_resource mapped;
    std::optional<pool_resource> below(std::in_place, test::capped_below(), &mapped);
    std::optional<pool_resource> above(std::in_place, test::patient_above(), &*below);
    pool_resource churned(pool_options{}, &mapped);

    // A thread of the parent whose bins hold blocks of A, and which holds some live.
    std::vector<void*> others_live;
    others_live.reserve(16);
    const parked_thread cacher([&] {
        void* nodes[100];
        for (int round = 0; round < 10; ++round) {
            for (void*& p : nodes)
                p = above->allocate(64);
            for (void* p : nodes)
                above->deallocate(p, 64);
        }
        for (int i = 0; i < 16; ++i)
            others_live.push_back(above->allocate(1024));
    });
    ASSERT_GT(above->stats().thread_cached_bytes, 0u) << "the other thread's bins hold blocks";

    // This thread fills B through A; then A's refill, and a request of B itself, wait in B.
    std::vector<void*> held = test::fill_until_refused(*above, big_block);
    ASSERT_GE(held.size(), 1u);
    background_allocation refill(*above, big_block);
    ASSERT_TRUE(test::wait_for_waiter(*below, refill)) << refill.error();
    background_allocation direct(*below, big_block);
    ASSERT_TRUE(test::wait_for_waiter(*below, direct, 2)) << direct.error();

    // Fast and slow paths of another pool at the fork.
    std::atomic<bool> stop{false};
    std::latch warm(2);
    std::vector<std::thread> churners;
    for (unsigned t = 0; t < 2; ++t)
        churners.emplace_back([&, t] { churn(churned, stop, 21 + t, warm); });
    warm.wait();

    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) child_of_waiting_stack(above, below, churned, held, others_live);
    // B counts a timeout before the waiter leaves: a fork() that waited for the refill to give
    // up sees it.
    EXPECT_EQ(below->stats().timeouts, 0u)
        << "fork() returned only after the refill of A waiting in B gave up: the prepare handler "
           "waited for the refill's operation of A to end";
    expect_child_ok(wait_child(pid));

    stop = true;
    for (auto& t : churners)
        t.join();
    // The parent goes on: the frees make room in B for both waiters.
    for (void* p : held)
        above->deallocate(p, big_block);
    (void)above->trim();
    refill.join();
    direct.join();
    EXPECT_EQ(refill.now(), state::granted) << describe(refill.now()) << " " << refill.error();
    EXPECT_EQ(direct.now(), state::granted) << describe(direct.now()) << " " << direct.error();
    for (void* p : others_live)
        above->deallocate(p, 1024);
}

// Whether thread `tid` of this process is asleep (state S in /proc/self/task/TID/stat).
bool asleep(pid_t tid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(tid));
    std::FILE* f = std::fopen(path, "r");
    if (f == nullptr) return false;
    char line[512] = {};
    const std::size_t n = std::fread(line, 1, sizeof line - 1, f);
    std::fclose(f);
    line[n] = '\0';
    const char* end = std::strrchr(line, ')');  // the name, in parentheses, may hold anything
    return end != nullptr && end[1] == ' ' && end[2] == 'S';
}

// Forks while a get() waits at a buffer_pool's live-buffer cap of one (this thread has the
// buffer); the child gives the buffer back and must then get buffers at once, and destroy the
// pool. `backoff` paces the waiting get(): with long steps it sleeps through the fork; with the
// default ones it wakes every few microseconds to milliseconds to look again (under the cap's
// lock), so the fork may land while it looks.
void fork_while_get_waits(const backoff_options& backoff) {
    test::watchdog dog("fork() while a buffer_pool's get() waits at its live-buffer cap");
    mmap_resource mapped;
    buffer_pool_options o;
    o.backoff = backoff;
    o.backoff.max_elapsed = test::patience;
    o.max_live = 1;
    std::optional<buffer_pool> pool(std::in_place, 0, o, &mapped);
    buffer held = pool->get();  // the only buffer the cap lets out
    std::atomic<pid_t> waiter_tid{0};
    std::atomic<int> outcome{0};  // 0: waiting, 1: got a buffer, 2: refused
    std::thread waiter([&] {
        waiter_tid = gettid();
        try {
            const buffer b = pool->get();
            outcome = 1;
        } catch (const capacity_exceeded&) {
            outcome = 2;
        }
    });
    // A thread that announced its get() and sleeps waits in it: get() blocks nowhere else while
    // nobody else uses the pool (which shows no count of the cap's waiters).
    while (waiter_tid == 0 || !asleep(waiter_tid)) {
        ASSERT_EQ(outcome, 0) << "the get() did not wait";
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }

    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        alarm(test::child_alarm_seconds());
        // Once the parent's buffer is back, the cap has room: a get() that does not get it at
        // once (a `fail` scope) lost it to the parent's waiter, which does not exist here.
        const exhaustion_scope fail_fast(exhaustion::fail);
        pool->put(std::move(held));
        try {
            buffer a = pool->get();
            a.append("the child's buffer");
            pool->put(std::move(a));
            const buffer b = pool->get();
            if (pool->live() != 1) child_exit(21, "child: live() is not 1 with one buffer out\n");
        } catch (const capacity_exceeded&) {
            child_exit(20,
                       "child: get() refused at the live-buffer cap with no buffer checked out: "
                       "the parent's waiting get() kept its place (the cap's waiters are not "
                       "forgotten in the child)\n");
        }
        if (pool->live() != 0) child_exit(22, "child: buffers counted live after all were put\n");
        pool.reset();  // a checked build aborts if it thinks buffers are still out
        std::_Exit(0);
    }
    EXPECT_EQ(outcome, 0) << "fork() returned only after the waiting get() ended";
    expect_child_ok(wait_child(pid));

    pool->put(std::move(held));  // the parent's waiter gets it
    waiter.join();
    EXPECT_EQ(outcome, 1);
    EXPECT_EQ(pool->live(), 0u);
}

TEST(Fork, ChildOfABufferPoolWhoseGetSleepsAtTheLiveBufferCap) {
    backoff_options slow;
    slow.initial_interval = slow.max_interval = test::patience;  // one long sleep
    fork_while_get_waits(slow);
}

TEST(Fork, ChildOfABufferPoolWhoseGetLooksAgainAtTheLiveBufferCap) {
    fork_while_get_waits(backoff_options{});
}

TEST(Fork, AsyncRequestsOfTheParentNeitherCompleteNorWaitInTheChild) {
    pool_options o;
    o.capacity = 8192;
    pool_resource pool(o);
    void* full = pool.allocate(8192);
    test::recorded r;
    EXPECT_FALSE(pool.async_allocate(r, 100));
    const pid_t pid = fork();
    ASSERT_NE(pid, -1);
    if (pid == 0) {
        // The child: nobody waits, the pool serves, and a new async request completes.
        int code = pool.stats().waiters == 0 ? 0 : 1;
        pool.deallocate(full, 8192);
        test::recorded c;
        void* p = pool.allocate(8192);
        if (pool.async_allocate(c, 100)) code |= 2;
        pool.deallocate(p, 8192);
        c.wait_for();
        if (c.status != async_status::granted) code |= 4;
        if (r.count() != 0) code |= 8;
        _exit(code);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_TRUE(r.pending());  // the parent's request still waits
    pool.deallocate(full, 8192);
    r.wait_for();
    EXPECT_EQ(r.status, async_status::granted);
    pool.deallocate(r.block, 100);
}

}  // namespace
}  // namespace bpool
