// The checked build and misuse: what each bad input does in a normal build and in a checked build
// (README, "Bad input"). Death tests run where the behaviour is an abort; the checked-only ones are
// compiled only with BPOOL_CHECKED.
#include <cstring>
#include <memory_resource>
#include <stdexcept>
#include <string>

#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

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
    EXPECT_DEATH(
        {
            pool_resource pool;
            alignas(64) static char foreign[64];
            pool.deallocate(foreign, 64);
        },
        "foreign pointer");
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

#endif  // BPOOL_CHECKED

}  // namespace
}  // namespace bpool
