// bpool::new_delete: linked into this test, it makes global_pool() the program's operator new and
// delete. Every operator form reaches the pool; new(0), delete of nullptr; the new_handler loop;
// nothrow forms; threads that exit; fork; a malloc'ed pointer given to delete.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <bpool/errors.hpp>
#include <bpool/global.hpp>

#include <gtest/gtest.h>

// The process-wide pool is never destroyed, by design, and LeakSanitizer does not scan the
// pool's own metadata mappings: every block it holds from upstream would be reported as a leak.
extern "C" const char* __asan_default_options() {
    return "detect_leaks=0";
}
#if defined(__SANITIZE_THREAD__)
// fork(): the prepare handler holds more locks than TSan's deadlock detector tracks
// (fork_test.cpp).
extern "C" const char* __tsan_default_options() {
    return "detect_deadlocks=0";
}
#endif

namespace {

bpool::pool_resource& pool() {
    return bpool::global_pool();
}

// A static initializer allocates before main: the pool is made then, and serves it.
struct made_before_main {
    int* p = new int(42);
};
made_before_main before_main;

TEST(NewDelete, AStaticInitializerAllocatedFromThePool) {
    EXPECT_TRUE(pool().owns(before_main.p));
    EXPECT_EQ(*before_main.p, 42);
}

TEST(NewDelete, EveryFormGoesThroughThePool) {
    const std::uint64_t before = pool().stats().allocations;
    // Through pointers, so that the compiler cannot pair and remove the calls.
    void* (*volatile new_plain)(std::size_t) = &::operator new;
    void* (*volatile new_array)(std::size_t) = &::operator new[];
    std::vector<void*> blocks = {
        new_plain(24),
        new_array(100),
        ::operator new(40, std::nothrow),
        ::operator new[](48, std::nothrow),
        ::operator new (64, std::align_val_t{256}),
        ::operator new[](64, std::align_val_t{4096}),
        ::operator new (32, std::align_val_t{64}, std::nothrow),
        ::operator new[](32, std::align_val_t{128}, std::nothrow),
    };
    for (void* p : blocks) {
        ASSERT_NE(p, nullptr);
        EXPECT_TRUE(pool().owns(p));
    }
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(blocks[4]) % 256, 0u);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(blocks[5]) % 4096, 0u);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(blocks[6]) % 64, 0u);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(blocks[7]) % 128, 0u);
    EXPECT_GE(pool().stats().allocations - before, blocks.size());
    const std::size_t live = pool().live_blocks();
    ::operator delete(blocks[0]);
    ::operator delete[](blocks[1], std::size_t{100});
    ::operator delete(blocks[2], std::nothrow);
    ::operator delete[](blocks[3], std::nothrow);
    ::operator delete (blocks[4], std::size_t{64}, std::align_val_t{256});
    ::operator delete[](blocks[5], std::align_val_t{4096});
    ::operator delete (blocks[6], std::align_val_t{64}, std::nothrow);
    ::operator delete[](blocks[7], std::size_t{32}, std::align_val_t{128});
    EXPECT_LE(pool().live_blocks() + blocks.size(), live + 2)
        << "the deletes gave the blocks back (other threads of gtest may allocate meanwhile)";
}

TEST(NewDelete, ExpressionsAndContainers) {
    auto s = std::make_unique<std::string>(1000, 'x');
    EXPECT_TRUE(pool().owns(s.get()));
    EXPECT_TRUE(pool().owns(s->data()));
    std::vector<std::unique_ptr<int[]>> arrays;
    for (int i = 1; i < 200; ++i)
        arrays.emplace_back(new int[static_cast<std::size_t>(i) * 37]);
    for (const auto& a : arrays)
        EXPECT_TRUE(pool().owns(a.get()));
    struct alignas(512) wide {
        char c[512];
    };
    auto w = std::make_unique<wide>();
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(w.get()) % 512, 0u);
    EXPECT_TRUE(pool().owns(w.get()));
}

TEST(NewDelete, ZeroBytesAndNull) {
    void* a = ::operator new(0);
    void* b = ::operator new(0);
    EXPECT_NE(a, nullptr);
    EXPECT_NE(a, b) << "each new(0) is a distinct block";
    ::operator delete (a, std::size_t{0});
    ::operator delete(b);
    ::operator delete(nullptr);
    ::operator delete[](nullptr);
    ::operator delete (nullptr, std::size_t{8});
    ::operator delete (nullptr, std::align_val_t{64});
    ::operator delete(nullptr, std::nothrow);
    int* none = nullptr;
    delete none;
    delete[] none;
}

// A handler that raises the capacity once it has been called `calls_before_room` times.
std::atomic<int> handler_calls{0};
int calls_before_room = 1;
void make_room() {
    if (++handler_calls >= calls_before_room) bpool::global_pool().set_capacity(0);
}

// Caps the pool just above what is live now; `fail` at the cap for this thread only.
struct capped_now {
    capped_now() { pool().set_capacity(pool().live_bytes() + (64 << 10)); }
    ~capped_now() { pool().set_capacity(0); }
    capped_now(const capped_now&) = delete;
    capped_now& operator=(const capped_now&) = delete;
    bpool::exhaustion_scope fail{bpool::exhaustion::fail};
};

TEST(NewDelete, TheNewHandlerIsCalledUntilItMakesRoom) {
    handler_calls = 0;
    calls_before_room = 3;
    const std::new_handler old = std::set_new_handler(make_room);
    void* p = nullptr;
    {
        const capped_now cap;
        p = ::operator new(1 << 20);
    }
    std::set_new_handler(old);
    EXPECT_EQ(handler_calls.load(), 3) << "called, the request retried, until the third made room";
    EXPECT_TRUE(pool().owns(p));
    ::operator delete(p);
}

TEST(NewDelete, WithoutAHandlerTheCapThrowsAndNothrowReturnsNull) {
    const std::new_handler old = std::set_new_handler(nullptr);
    {
        const capped_now cap;
        EXPECT_THROW(static_cast<void>(::operator new(1 << 20)), bpool::capacity_exceeded);
        // Kept in a volatile: an unused new-expression may be elided.
        char* volatile array = nullptr;
        EXPECT_THROW(array = new char[1 << 20], std::bad_alloc);
        EXPECT_EQ(array, nullptr);
        EXPECT_EQ(::operator new(1 << 20, std::nothrow), nullptr);
        EXPECT_EQ(::operator new[](1 << 20, std::align_val_t{4096}, std::nothrow), nullptr);
    }
    std::set_new_handler(old);
}

void give_up() {
    throw std::bad_alloc();
}

TEST(NewDelete, AHandlerThatThrowsEndsTheLoop) {
    const std::new_handler old = std::set_new_handler(give_up);
    {
        const capped_now cap;
        EXPECT_THROW(static_cast<void>(::operator new(1 << 20)), std::bad_alloc);
        EXPECT_EQ(::operator new(1 << 20, std::nothrow), nullptr) << "nothrow: the throw is caught";
    }
    std::set_new_handler(old);
}

TEST(NewDelete, ThreadsThatAllocateHandOverAndExit) {
    const std::size_t live_before = pool().live_blocks();
    for (int round = 0; round < 5; ++round) {
        std::vector<std::unique_ptr<std::string>> handed(8);
        std::vector<std::thread> makers;
        for (std::size_t t = 0; t < handed.size(); ++t)
            makers.emplace_back([&, t] {
                std::vector<std::string> scratch(100, std::string(200, 'a'));
                handed[t] = std::make_unique<std::string>(scratch[t].substr(0, 150));
            });
        for (auto& m : makers)
            m.join();
        // Freed on this thread, after the threads that made them are gone.
        for (auto& h : handed) {
            EXPECT_EQ(h->size(), 150u);
            h.reset();
        }
    }
    EXPECT_LE(pool().live_blocks(), live_before + 4) << "the exited threads left nothing live";
}

TEST(NewDelete, AForkedChildAllocatesWhileParentThreadsDid) {
#if defined(__SANITIZE_ADDRESS__)
    // The global pool's upstream is malloc, which glibc makes fork-safe but this toolchain's ASan
    // does not (its allocator's lock may be held by a parent thread at the fork): the tsan and
    // release builds run it.
    GTEST_SKIP() << "ASan's allocator is not fork-safe in this toolchain";
#endif
    std::atomic<bool> stop{false};
    std::vector<std::thread> churn;
    for (int t = 0; t < 3; ++t)
        churn.emplace_back([&] {
            while (!stop.load(std::memory_order_relaxed)) {
                std::vector<std::string> v(50, std::string(300, 'c'));
                v.clear();
            }
        });
    int failures = 0;
    for (int i = 0; i < 30; ++i) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::alarm(60);  // a hang (a lock inherited from a parent thread) fails, killed by SIGALRM
            std::vector<std::unique_ptr<int[]>> blocks;
            for (int k = 0; k < 500; ++k)
                blocks.emplace_back(new int[static_cast<std::size_t>(k % 97) + 1]);
            blocks.clear();
            ::_exit(bpool::global_pool().owns(new int(1)) ? 0 : 1);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        failures += WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
    }
    stop = true;
    for (auto& t : churn)
        t.join();
    EXPECT_EQ(failures, 0);
}

TEST(NewDeleteDeathTest, AMallocedPointerGivenToDeleteIsCaught) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(
        {
            // Through a volatile pointer: the compiler would rightly reject the pair if it saw it.
            void* volatile p = std::malloc(64);
            ::operator delete(p);
        },
        "foreign pointer");
}

}  // namespace
