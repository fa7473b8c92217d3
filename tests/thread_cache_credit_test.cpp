// Layer 6: a thread cache's credit, packed in one word (thread_cache.hpp, "packed credit"): what
// the fast paths spend and give back, against a cache driven directly; and, through a pool, that
// the blocks of credit stay within the word however the cache uses them.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "cache/thread_cache.hpp"
#include "support/counting_resource.hpp"

namespace bpool {
namespace {

using detail::amount;
using detail::thread_cache;

struct fake_owner final : detail::cache_owner {
    void detach(thread_cache*) noexcept override {}
};

// Blocks of the smallest class (16 B), for a cache driven by hand.
struct alignas(16) block {
    unsigned char bytes[16];
};

class PackedCredit : public ::testing::Test {
  protected:
    fake_owner owner_;
    thread_cache tc_{&owner_};
    std::atomic<std::uint32_t> flags_{0};  // nothing raised, the heavy barrier available
    block blocks_[4]{};

    void SetUp() override {
        tc_.set_limit(0, 4);
        tc_.set_hold_limit(1 << 20);
    }
    void TearDown() override {
        // Back out of the bin, so that no test leaves a sanitizer's marks on the blocks.
        while (!tc_.empty(0))
            (void)tc_.pop(0);
    }
};

TEST_F(PackedCredit, EveryFieldRoundTrips) {
    for (const amount a : {amount{0, 0}, amount{1, 0}, amount{0, 1}, amount{12345, 77},
                           amount{detail::max_credit_bytes, detail::max_credit_blocks}}) {
        tc_.set_credit(a);
        EXPECT_EQ(tc_.credit().bytes, a.bytes);
        EXPECT_EQ(tc_.credit().blocks, a.blocks);
    }
    tc_.set_hold_limit(3 << 20);
    EXPECT_EQ(tc_.hold_limit(), 3 << 20);
}

TEST_F(PackedCredit, APopNeedsTheBytesAndABlock) {
    tc_.push_freed(0, &blocks_[0]);
    tc_.push_freed(0, &blocks_[1]);

    tc_.set_credit({64, 0});  // bytes enough, no block
    EXPECT_EQ(tc_.try_pop(flags_, 0), nullptr);
    EXPECT_EQ(tc_.credit().bytes, 64) << "a refused pop spends nothing";
    EXPECT_EQ(tc_.credit().blocks, 0);

    tc_.set_credit({15, 9});  // a byte short
    EXPECT_EQ(tc_.try_pop(flags_, 0), nullptr);
    EXPECT_EQ(tc_.credit().bytes, 15);
    EXPECT_EQ(tc_.credit().blocks, 9);

    tc_.set_credit({16, 1});  // exactly one block
    EXPECT_NE(tc_.try_pop(flags_, 0), nullptr);
    EXPECT_EQ(tc_.credit().bytes, 0);
    EXPECT_EQ(tc_.credit().blocks, 0);
    EXPECT_EQ(tc_.try_pop(flags_, 0), nullptr) << "nothing left to spend";
    EXPECT_EQ(tc_.count(0), 1u);
}

TEST_F(PackedCredit, APushGivesBothBackUpToTheHoldLimit) {
    tc_.set_hold_limit(40);
    tc_.set_credit({8, 0});
    EXPECT_TRUE(tc_.try_push(flags_, 0, &blocks_[0]));
    EXPECT_EQ(tc_.credit().bytes, 24);
    EXPECT_EQ(tc_.credit().blocks, 1);
    EXPECT_TRUE(tc_.try_push(flags_, 0, &blocks_[1]));  // 40: at the limit, not above it
    EXPECT_EQ(tc_.credit().bytes, 40);
    EXPECT_EQ(tc_.credit().blocks, 2);
    EXPECT_FALSE(tc_.try_push(flags_, 0, &blocks_[2])) << "56 bytes would pass the hold limit";
    EXPECT_EQ(tc_.credit().bytes, 40);
    EXPECT_EQ(tc_.count(0), 2u);
}

TEST_F(PackedCredit, ARaisedFlagSendsBothToTheSlowPath) {
    tc_.push_freed(0, &blocks_[0]);
    tc_.set_credit({64, 4});
    flags_.store(detail::flag_pressure);
    EXPECT_EQ(tc_.try_pop(flags_, 0), nullptr);
    EXPECT_FALSE(tc_.try_push(flags_, 0, &blocks_[1]));
    EXPECT_EQ(tc_.credit().bytes, 64);
    EXPECT_EQ(tc_.credit().blocks, 4);
}

// A thread that allocates many small blocks and keeps them leases bytes again and again while
// each lease brings extra blocks too: those must not pile up past the word's 20 bits (before the
// leases were bounded by what the cache held, 17 leases of 1 MiB stopped the program here).
TEST(PackedCreditInAPool, ManyLeasesOfBytesKeepTheBlocksInRange) {
    test::counting_resource upstream;
    pool_resource pool({}, &upstream);
    std::vector<void*> kept;
    constexpr std::size_t count = 40 * 1024;  // 40 MiB of 1 KiB blocks: 40 leases
    kept.reserve(count);
    for (std::size_t i = 0; i < count; ++i)
        kept.push_back(pool.allocate(1024));
    EXPECT_EQ(pool.live_blocks(), count);
    EXPECT_EQ(pool.live_bytes(), count * 1024);
    for (void* p : kept)
        pool.deallocate(p, 1024);
    EXPECT_EQ(pool.live_blocks(), 0u);
    EXPECT_EQ(pool.live_bytes(), 0u);
}

// The same under a block limit: the cap counts blocks exactly, whatever the word packs.
TEST(PackedCreditInAPool, ABlockLimitStaysExact) {
    test::counting_resource upstream;
    pool_resource pool({.max_live_blocks = 1000, .on_exhaustion = exhaustion::fail}, &upstream);
    std::vector<void*> kept;
    for (int i = 0; i < 1000; ++i)
        kept.push_back(pool.allocate(16));
    EXPECT_THROW((void)pool.allocate(16), capacity_exceeded);
    pool.deallocate(kept.back(), 16);
    kept.pop_back();
    kept.push_back(pool.allocate(16));
    EXPECT_THROW((void)pool.allocate(16), capacity_exceeded);
    for (void* p : kept)
        pool.deallocate(p, 16);
    EXPECT_EQ(pool.live_blocks(), 0u);
}

}  // namespace
}  // namespace bpool
