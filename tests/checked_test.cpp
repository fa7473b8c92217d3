// The checked build and misuse: what each bad input does in a normal build and in a checked build
// (README, "Bad input"). Death tests run where the behaviour is an abort; the checked-only ones are
// compiled only with BPOOL_CHECKED.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory_resource>
#include <stdexcept>
#include <string>

#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#if BPOOL_CHECKED
// Callers that the stacks of the checked build's reports must name: external linkage (the test
// executables export their symbols, -rdynamic), never inlined, and never a tail call (the store
// after the call keeps each frame on the stack).
#if defined(__clang__)
#define BPOOL_TEST_FRAME __attribute__((noinline))
#else
#define BPOOL_TEST_FRAME __attribute__((noipa))  // nor cloned (a clone is a local symbol)
#endif
namespace bpool_checked_frames {

void* volatile sink = nullptr;

BPOOL_TEST_FRAME void* leak_from_here(bpool::pool_resource& pool) {
    void* p = pool.allocate(64);
    sink = p;
    return p;
}

// A block leaked `depth` calls deep: each depth is a stack of its own.
BPOOL_TEST_FRAME void leak_at_depth(bpool::pool_resource& pool, int depth) {
    if (depth == 0)
        sink = pool.allocate(32);
    else
        leak_at_depth(pool, depth - 1);
    sink = nullptr;
}

BPOOL_TEST_FRAME void free_twice_from_here(bpool::pool_resource& pool, void* p) {
    pool.deallocate(p, 100);
    pool.deallocate(p, 100);
    sink = p;
}

}  // namespace bpool_checked_frames
#endif

namespace bpool {
namespace {

class Misuse : public ::testing::Test {
  protected:
    void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(Misuse, AlignmentAboveThePooledClassesGoesToUpstream) {
    pool_resource pool;
    void* p = pool.allocate(64, 2 << 20);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % (2 << 20), 0u);
    EXPECT_EQ(pool.stats().large_live_bytes, 64u);
    pool.deallocate(p, 64, 2 << 20);
    EXPECT_EQ(pool.live_bytes(), 0u);
}

// Blocks served by upstream directly are registered in every build: a double free, a wrong size or
// a foreign pointer of that size range is reported and aborts, never passed on to upstream.
TEST_F(Misuse, DirectBlockDoubleFreeAbortsInEveryBuild) {
    EXPECT_DEATH(
        {
            pool_resource pool;
            void* p = pool.allocate(2 << 20);
            pool.deallocate(p, 2 << 20);
            pool.deallocate(p, 2 << 20);
        },
        "double free|not allocated by this pool");
}

TEST_F(Misuse, DirectForeignPointerAbortsInEveryBuild) {
    EXPECT_DEATH(
        {
            pool_resource pool;
            static char foreign[64];
            pool.deallocate(foreign, 3 << 20);
        },
        "foreign pointer|not allocated by this pool");
}

#if BPOOL_CHECKED

TEST_F(Misuse, CheckedDoubleFreeOfAPooledBlockAborts) {
    EXPECT_DEATH(
        {
            pool_resource pool;
            void* p = pool.allocate(100);
            pool.deallocate(p, 100);
            pool.deallocate(p, 100);
        },
        "double free");
}

TEST_F(Misuse, CheckedWrongSizeAborts) {
    EXPECT_DEATH(
        {
            pool_resource pool;
            void* p = pool.allocate(100);
            pool.deallocate(p, 1000);
        },
        "wrong size or alignment");
}

TEST_F(Misuse, CheckedWrongAlignmentAborts) {
    EXPECT_DEATH(
        {
            pool_resource pool;
            void* p = pool.allocate(64, 16);
            pool.deallocate(p, 64, 64);
        },
        "wrong size or alignment");
}

TEST_F(Misuse, CheckedSameBlockSizeIsAccepted) {
    // A size that selects the same block (100 and 112 are both the 112-byte class) is harmless.
    pool_resource pool;
    void* p = pool.allocate(100);
    pool.deallocate(p, 112);
    EXPECT_EQ(pool.live_bytes(), 0u);
}

TEST_F(Misuse, CheckedForeignPointerAborts) {
    // The message, then the stack of the bad call (a frame line at least).
    EXPECT_DEATH(
        {
            pool_resource pool;
            alignas(64) static char foreign[64];
            pool.deallocate(foreign, 64);
        },
        "foreign pointer.*stack of the failing call.*\n    [^\n]*\\[0x[0-9a-f]+\\]");
}

TEST_F(Misuse, CheckedBlockFromAnotherPoolAborts) {
    EXPECT_DEATH(
        {
            pool_resource a;
            pool_resource b;
            void* p = a.allocate(48);
            b.deallocate(p, 48);
        },
        "foreign pointer");
}

TEST_F(Misuse, CheckedFillPatterns) {
    pool_resource pool;
    auto* p = static_cast<unsigned char*>(pool.allocate(256));
    for (int i = 0; i < 256; ++i)
        ASSERT_EQ(p[i], 0xCD) << "fresh blocks are filled with 0xCD";
    std::memset(p, 0x11, 256);
    pool.deallocate(p, 256);
    auto* q = static_cast<unsigned char*>(pool.allocate(256));
    EXPECT_EQ(q, p) << "the cache hands the same block back";
    for (int i = 0; i < 256; ++i)
        ASSERT_EQ(q[i], 0xCD);
    pool.deallocate(q, 256);
}

TEST_F(Misuse, CheckedUseAfterFreeOfACachedBlockIsReported) {
    // Under ASan the idle block is poisoned and ASan reports the write itself; without ASan the
    // 0xDD fill is verified when the block is handed out again.
    EXPECT_DEATH(
        {
            pool_resource pool;
            auto* p = static_cast<unsigned char*>(pool.allocate(128));
            pool.deallocate(p, 128);
            volatile unsigned char* dangling = p;
            dangling[40] = 1;
            (void)pool.allocate(128);
        },
        "use-after-poison|use after free");
}

TEST_F(Misuse, CheckedLeakReportCountsEachBlockSize) {
    ::testing::internal::CaptureStderr();
    {
        pool_resource pool;
        for (int i = 0; i < 3; ++i)
            (void)pool.allocate(64);  // leaked on purpose: the pool gives it all back anyway
        (void)pool.allocate(4000);
        pool.deallocate(pool.allocate(200), 200);  // not a leak
    }
    const std::string report = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(report.find("pool destroyed with 4 live blocks (4288 bytes): 3 x 64 B, 1 x 4096 B"),
              std::string::npos)
        << report;
}

// Double free and foreign pointer: the message, then the stack of the bad call, frames named.
TEST_F(Misuse, CheckedDoubleFreePrintsTheStackOfTheCall) {
    EXPECT_DEATH(
        {
            pool_resource pool;
            bpool_checked_frames::free_twice_from_here(pool, pool.allocate(100));
        },
        "double free.*stack of the failing call.*free_twice_from_here.*\\[0x[0-9a-f]+\\]");
}

// The frame lines (indented) after `header` in `report`, or "" if there is none.
std::string stack_after(const std::string& report, const std::string& header) {
    std::size_t at = report.find(header);
    if (at == std::string::npos) return "";
    std::string stack;
    for (at = report.find('\n', at);
         at != std::string::npos && report.compare(at + 1, 4, "    ") == 0;
         at = report.find('\n', at + 1))
        stack += report.substr(at + 1, report.find('\n', at + 1) - at);
    return stack;
}

TEST_F(Misuse, CheckedLeakReportPrintsWhereTheBlocksWereAllocated) {
    ::testing::internal::CaptureStderr();
    {
        pool_resource pool;
        volatile int blocks = 3;  // a loop that stays a loop: one call site, so one stack
        for (int i = 0; i < blocks; ++i)
            (void)bpool_checked_frames::leak_from_here(pool);
        (void)pool.allocate(4000);
    }
    const std::string report = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(report.find("pool destroyed with 4 live blocks (4288 bytes): 3 x 64 B, 1 x 4096 B"),
              std::string::npos)
        << report;
    // The stack starts at the allocating function (below std::pmr's allocate, where that is not
    // inlined, as at -O0): bpool's own frames are left out.
    const std::string stack = stack_after(report, "3 leaked block(s) (192 bytes) allocated at:");
    const std::size_t second_line = stack.find('\n', stack.find('\n') + 1);
    EXPECT_LT(stack.find("leak_from_here"), second_line) << report;
    for (const char* own : {"do_allocate", "checked_allocated", "checked_registry"})
        EXPECT_EQ(stack.find(own), std::string::npos) << own << " in\n" << report;
    EXPECT_NE(report.find("1 leaked block(s) (4096 bytes) allocated at:\n    "), std::string::npos)
        << report;
}

TEST_F(Misuse, CheckedLeakReportShowsTheFirstEightStacks) {
    ::testing::internal::CaptureStderr();
    {
        pool_resource pool;
        for (int depth = 0; depth < 10; ++depth)
            bpool_checked_frames::leak_at_depth(pool, depth);
    }
    const std::string report = ::testing::internal::GetCapturedStderr();
    std::size_t stacks = 0;
    for (std::size_t at = 0; (at = report.find("allocated at:", at)) != std::string::npos; ++at)
        ++stacks;
    EXPECT_EQ(stacks, 8u) << report;
    EXPECT_NE(report.find("2 more leaked block(s) allocated elsewhere"), std::string::npos)
        << report;
}

TEST_F(Misuse, CheckedStacksOffRecordsTheCallSiteAlone) {
    ::setenv("BPOOL_CHECKED_STACKS", "0", 1);  // read when a pool is made
    ::testing::internal::CaptureStderr();
    {
        pool_resource pool;
        (void)bpool_checked_frames::leak_from_here(pool);
    }
    const std::string report = ::testing::internal::GetCapturedStderr();
    ::unsetenv("BPOOL_CHECKED_STACKS");
    const std::string stack = stack_after(report, "1 leaked block(s) (64 bytes) allocated at:");
    // The call site: the allocating function, or std::pmr's allocate where not inlined (-O0).
    EXPECT_TRUE(stack.find("leak_from_here") != std::string::npos ||
                stack.find("memory_resource8allocate") != std::string::npos)
        << report;
    EXPECT_EQ(std::count(stack.begin(), stack.end(), '\n'), 1) << report;
}

#endif  // BPOOL_CHECKED

}  // namespace
}  // namespace bpool
