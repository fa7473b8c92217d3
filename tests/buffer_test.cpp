// bpool::buffer: every member, growth through the size classes, error paths (upstream failure, the
// cap, overflow) with the buffer unchanged, move semantics, empty buffers, and the checked build's
// misuse reports.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory_resource>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <bpool/buffer.hpp>
#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "support/buffer_snapshot.hpp"
#include "support/counting_resource.hpp"

namespace bpool {
namespace {

using namespace std::chrono_literals;
using test::counting_resource;
using test::snapshot;

std::span<const std::byte> as_span(const std::string& s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}

TEST(Buffer, DefaultConstructedIsEmptyAndBelongsToNothing) {
    buffer b;
    EXPECT_EQ(b.size(), 0u);
    EXPECT_EQ(b.capacity(), 0u);
    EXPECT_TRUE(b.empty());
    EXPECT_EQ(b.data(), nullptr);
    EXPECT_EQ(b.resource(), nullptr);
    EXPECT_TRUE(b.view().empty());
    EXPECT_TRUE(b.bytes().empty());
    EXPECT_FALSE(b.write(std::string_view{})) << "a zero-length write is a no-op, even here";
    b.append(std::string_view{});
    b.reserve(0);
    b.resize(0);
    b.reset();
    b.release();
    EXPECT_EQ(b.capacity(), 0u);
}

TEST(Buffer, NullResourceIsRejected) {
    EXPECT_THROW(buffer(nullptr), std::invalid_argument);
    EXPECT_THROW(buffer(nullptr, 10), std::invalid_argument);
}

TEST(Buffer, WritesAppendAndReadBack) {
    counting_resource up;
    {
        buffer b(&up);
        EXPECT_EQ(b.resource(), &up);
        EXPECT_EQ(b.capacity(), 0u) << "no storage until the first write";
        EXPECT_FALSE(b.write("hello"));
        EXPECT_FALSE(b.write(std::string_view(", ")));
        const std::string w = "world";
        EXPECT_FALSE(b.write(as_span(w)));
        EXPECT_EQ(b.view(), "hello, world");
        EXPECT_EQ(b.size(), 12u);
        EXPECT_FALSE(b.empty());
        EXPECT_GE(b.capacity(), b.size());
        EXPECT_EQ(b.bytes().data(), b.data());
        EXPECT_EQ(b.bytes().size(), b.size());
        EXPECT_EQ(std::memcmp(b.data(), "hello, world", 12), 0);
        b.append("!").append(as_span(std::string("?")));
        EXPECT_EQ(b.view(), "hello, world!?");
        EXPECT_EQ(up.live_allocations(), 1u);
    }
    EXPECT_EQ(up.live_bytes(), 0u) << "the destructor gave the storage back";
    EXPECT_EQ(up.mismatches(), 0u) << "with the size and alignment it was allocated with";
}

TEST(Buffer, ZeroLengthWritesAllocateNothing) {
    counting_resource up;
    buffer b(&up);
    EXPECT_FALSE(b.write(std::span<const std::byte>{}));
    EXPECT_FALSE(b.write(""));
    b.append(std::string_view{});
    EXPECT_EQ(up.allocations(), 0u);
    EXPECT_EQ(b.capacity(), 0u);
}

TEST(Buffer, ConstructorReserves) {
    counting_resource up;
    buffer b(&up, 1000);
    EXPECT_GE(b.capacity(), 1000u);
    EXPECT_EQ(b.size(), 0u);
    EXPECT_NE(b.data(), nullptr);
    EXPECT_EQ(up.allocations(), 1u);
}

TEST(Buffer, GrowsGeometrically) {
    counting_resource up;
    buffer b(&up);
    const std::string chunk(100, 'x');
    std::size_t last = 0;
    std::size_t growths = 0;
    for (int i = 0; i < 10000; ++i) {
        ASSERT_FALSE(b.write(chunk));
        if (b.capacity() != last) {
            ++growths;
            if (last != 0) {
                EXPECT_GE(b.capacity(), 2 * last) << "at least doubling";
            }
            last = b.capacity();
        }
    }
    EXPECT_EQ(b.size(), 1'000'000u);
    EXPECT_LE(growths, 16u) << "a million bytes in logarithmically many steps";
    EXPECT_EQ(up.live_allocations(), 1u) << "each old block was freed";
}

TEST(Buffer, WriteMayAliasItsOwnContents) {
    counting_resource up;
    buffer b(&up);
    ASSERT_FALSE(b.write("abc"));
    std::string expect = "abc";
    for (int i = 0; i < 12; ++i) {  // doubles each time: most of these writes grow the buffer
        ASSERT_FALSE(b.write(b.bytes()));
        expect += expect;
    }
    EXPECT_EQ(b.view(), expect);
}

TEST(Buffer, ReserveIsExactAndKeepsContents) {
    counting_resource up;
    buffer b(&up);
    ASSERT_FALSE(b.write("keep"));
    b.reserve(5000);
    EXPECT_EQ(b.capacity(), 5000u) << "over a plain resource: exactly what was asked";
    EXPECT_EQ(b.view(), "keep");
    const std::byte* p = b.data();
    b.reserve(10);
    b.reserve(5000);
    EXPECT_EQ(b.data(), p) << "reserving less than the capacity does nothing";
    EXPECT_EQ(up.live_allocations(), 1u);
}

TEST(Buffer, ResizeZeroFillsAndShrinksInPlace) {
    counting_resource up;
    buffer b(&up);
    ASSERT_FALSE(b.write("ab"));
    b.resize(10);
    ASSERT_EQ(b.size(), 10u);
    EXPECT_EQ(b.view().substr(0, 2), "ab");
    for (std::size_t i = 2; i < 10; ++i)
        EXPECT_EQ(b.data()[i], std::byte{0});
    const std::size_t cap = b.capacity();
    b.resize(1);
    EXPECT_EQ(b.view(), "a");
    EXPECT_EQ(b.capacity(), cap) << "shrinking keeps the storage";
    ASSERT_FALSE(b.write("z"));
    EXPECT_EQ(b.view(), "az");
    b.resize(cap);  // within the capacity: no growth
    EXPECT_EQ(b.capacity(), cap);
}

TEST(Buffer, ResetKeepsStorage) {
    counting_resource up;
    buffer b(&up);
    ASSERT_FALSE(b.write("some bytes"));
    const std::byte* p = b.data();
    const std::size_t cap = b.capacity();
    b.reset();
    EXPECT_EQ(b.size(), 0u);
    EXPECT_EQ(b.capacity(), cap);
    EXPECT_EQ(b.data(), p);
    ASSERT_FALSE(b.write("again"));
    EXPECT_EQ(b.view(), "again");
    EXPECT_EQ(b.data(), p);
    EXPECT_EQ(up.allocations(), 1u);
}

TEST(Buffer, ReleaseGivesStorageBackAndTheBufferStaysUsable) {
    counting_resource up;
    buffer b(&up);
    ASSERT_FALSE(b.write("some bytes"));
    b.release();
    EXPECT_EQ(up.live_bytes(), 0u) << "given back now, not at destruction";
    EXPECT_EQ(b.size(), 0u);
    EXPECT_EQ(b.capacity(), 0u);
    EXPECT_EQ(b.data(), nullptr) << "no dangling pointer";
    EXPECT_TRUE(b.view().empty());
    EXPECT_EQ(b.resource(), &up);
    ASSERT_FALSE(b.write("more"));
    EXPECT_EQ(b.view(), "more");
    b.release();
    b.release();
    EXPECT_EQ(up.live_bytes(), 0u);
    EXPECT_EQ(up.mismatches(), 0u);
}

TEST(Buffer, MoveTransfersEverything) {
    counting_resource up;
    buffer a(&up);
    ASSERT_FALSE(a.write("payload"));
    const std::byte* p = a.data();
    buffer b(std::move(a));
    EXPECT_EQ(b.view(), "payload");
    EXPECT_EQ(b.data(), p);
    EXPECT_EQ(b.resource(), &up);
    EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is specified
    EXPECT_EQ(a.size(), 0u);
    EXPECT_EQ(a.capacity(), 0u);
    EXPECT_EQ(a.resource(), nullptr);

    buffer c(&up);
    ASSERT_FALSE(c.write("old contents"));
    c = std::move(b);
    EXPECT_EQ(c.view(), "payload");
    EXPECT_EQ(up.live_allocations(), 1u) << "the assignment freed c's old storage";
    buffer& alias = c;
    c = std::move(alias);
    EXPECT_EQ(c.view(), "payload") << "self-move-assignment changes nothing";
    static_assert(!std::is_copy_constructible_v<buffer>);
    static_assert(!std::is_copy_assignable_v<buffer>);
    static_assert(std::is_nothrow_move_constructible_v<buffer>);
    static_assert(std::is_nothrow_move_assignable_v<buffer>);
}

TEST(Buffer, MovedFromCanBeReassignedAndReused) {
    counting_resource up;
    buffer a(&up);
    ASSERT_FALSE(a.write("x"));
    buffer b(std::move(a));
    a = buffer(&up);  // NOLINT(bugprone-use-after-move)
    ASSERT_FALSE(a.write("y"));
    EXPECT_EQ(a.view(), "y");
}

#if !BPOOL_CHECKED
TEST(Buffer, GrowingAnEmptyBufferIsRefused) {
    buffer b;
    EXPECT_EQ(b.write("x"), std::make_error_code(std::errc::operation_not_permitted));
    EXPECT_THROW(b.append("x"), std::logic_error);
    EXPECT_THROW(b.reserve(1), std::logic_error);
    EXPECT_THROW(b.resize(1), std::logic_error);
    EXPECT_EQ(b.size(), 0u);
}
#endif

TEST(Buffer, UpstreamFailureLeavesTheBufferUnchanged) {
    counting_resource up;
    buffer b(&up, 8);
    ASSERT_FALSE(b.write("precious"));
    ASSERT_EQ(b.capacity(), b.size()) << "exactly full: the next write must grow";
    const snapshot before(b);
    up.fail_all(true);
    EXPECT_EQ(b.write("more"), errc::out_of_memory);
    EXPECT_EQ(snapshot(b), before);
    EXPECT_THROW(b.append("more"), std::bad_alloc);
    EXPECT_THROW(b.reserve(1 << 20), std::bad_alloc);
    EXPECT_THROW(b.resize(1 << 20), std::bad_alloc);
    EXPECT_EQ(snapshot(b), before);
    up.fail_all(false);
    ASSERT_FALSE(b.write("more"));
    EXPECT_EQ(b.view(), "preciousmore");
    EXPECT_EQ(up.mismatches(), 0u);
}

TEST(Buffer, FallsBackToTheNeededSizeWhenTheDoubledOneFails) {
    counting_resource up;
    buffer b(&up, 1000);
    ASSERT_FALSE(b.write(std::string(1000, 'a')));
    up.fail_after(0);  // the first attempt (the doubled size) fails, the next succeeds
    ASSERT_FALSE(b.write("b"));
    EXPECT_EQ(b.capacity(), 1001u) << "just what the write needed";
    EXPECT_EQ(b.view(), std::string(1000, 'a') + "b");
    EXPECT_EQ(up.failures(), 1u);
}

TEST(Buffer, SizesPastMaxSizeAreTooLarge) {
    // Sizes a buffer cannot represent, reached through reserve and resize: a write of that many
    // bytes would need a span over more memory than exists (and building such a span is undefined
    // behaviour), so write's own check of size() + n cannot be reached by a valid call.
    counting_resource up;
    buffer b(&up);
    ASSERT_FALSE(b.write("abc"));
    const snapshot before(b);
    EXPECT_THROW(b.reserve(buffer::max_size() + 1), std::length_error);
    EXPECT_THROW(b.reserve(SIZE_MAX), std::length_error);
    EXPECT_THROW(b.resize(buffer::max_size() + 1), std::length_error);
    EXPECT_THROW(b.resize(SIZE_MAX), std::length_error);
    EXPECT_EQ(snapshot(b), before);
    EXPECT_EQ(up.allocations(), 1u) << "nothing was even attempted";
    EXPECT_THROW(buffer(&up, SIZE_MAX), std::length_error) << "the constructor's reserve too";
    EXPECT_EQ(up.allocations(), 1u);
}

TEST(Buffer, SizesPastMaxSizeOverAPoolAreTooLarge) {
    counting_resource up;
    pool_resource pool({}, &up);
    buffer b(&pool);
    ASSERT_FALSE(b.write("abc"));
    const snapshot before(b);
    const std::size_t upstream_before = up.allocations();
    EXPECT_THROW(b.reserve(buffer::max_size() + 1), std::length_error);
    EXPECT_THROW(b.resize(SIZE_MAX), std::length_error);
    EXPECT_EQ(snapshot(b), before);
    EXPECT_EQ(up.allocations(), upstream_before) << "nothing was even attempted";
    EXPECT_EQ(pool.live_bytes(), b.capacity());
}

TEST(Buffer, ConstructorThatCannotReserveThrowsAndHoldsNothing) {
    counting_resource up;
    up.fail_all(true);
    EXPECT_THROW(buffer(&up, 1000), std::bad_alloc);
    up.fail_all(false);
    EXPECT_EQ(up.live_bytes(), 0u);
    EXPECT_EQ(up.mismatches(), 0u);

    // Over a pool at its capacity: the pool's exception, and nothing left live in the pool.
    pool_resource pool({.capacity = 16 << 10, .on_exhaustion = exhaustion::fail}, &up);
    try {
        const buffer b(&pool, 32 << 10);
        ADD_FAILURE() << "a reservation larger than the capacity must throw";
    } catch (const capacity_exceeded& e) {
        EXPECT_EQ(e.code(), errc::capacity_exceeded);
    }
    EXPECT_EQ(pool.live_bytes(), 0u);
    EXPECT_EQ(pool.live_blocks(), 0u);
    const buffer fits(&pool, 8 << 10);  // the failed one took none of the capacity
    EXPECT_GE(fits.capacity(), std::size_t{8} << 10);
}

TEST(Buffer, ErrorCodesAreBpoolCodes) {
    const std::error_code ec = errc::capacity_exceeded;
    EXPECT_EQ(&ec.category(), &error_category());
    EXPECT_FALSE(ec.message().empty());
    EXPECT_EQ(std::error_code(errc::timed_out), std::errc::timed_out);
}

// --- over a pool_resource ---------------------------------------------------------------------

TEST(BufferOverPool, CapacityIsTheBlockSizeAndGrowthStepsThroughClasses) {
    counting_resource up;
    pool_resource pool({.largest_pooled_block = 64 << 10}, &up);
    buffer b(&pool);
    const std::string chunk(333, 'q');
    std::size_t last = 0;
    std::vector<std::size_t> steps;
    while (b.size() < (300u << 10)) {
        ASSERT_FALSE(b.write(chunk));
        if (b.capacity() != last) {
            last = b.capacity();
            steps.push_back(last);
            EXPECT_EQ(pool.block_size(last), last) << "capacity is all usable: a whole block";
        }
    }
    ASSERT_GE(steps.size(), 4u);
    EXPECT_GT(steps.back(), std::size_t{64} << 10) << "past largest_pooled_block: from upstream";
    EXPECT_GT(pool.stats().large_live_bytes, 0u);
    EXPECT_EQ(pool.live_bytes(), b.capacity()) << "the old blocks went back";
    b.release();
    EXPECT_EQ(pool.live_bytes(), 0u);
}

TEST(BufferOverPool, ReserveTakesTheWholeClass) {
    pool_resource pool;
    buffer b(&pool, 1000);
    EXPECT_EQ(b.capacity(), pool.block_size(1000));
    EXPECT_GE(b.capacity(), 1000u);
}

// A pool capped at 64 KiB and a buffer over it holding 32 KiB: any growth of the buffer needs a
// block that no longer fits next to the one it replaces.
struct half_full_pool {
    explicit half_full_pool(exhaustion policy, std::chrono::nanoseconds max_elapsed = 20s)
        : pool({.capacity = 64 << 10,
                .on_exhaustion = policy,
                .backoff = {.max_elapsed = max_elapsed}}),
          b(&pool, 32 << 10) {}
    /// Fills the buffer's 32 KiB (call under ASSERT_NO_FATAL_FAILURE).
    void fill() { ASSERT_FALSE(b.write(std::string(32 << 10, 'a'))); }
    pool_resource pool;
    buffer b;
};

TEST(BufferOverPool, AtTheCapUnderFailTheWriteIsRefusedAndNothingChanges) {
    half_full_pool f(exhaustion::fail);
    ASSERT_NO_FATAL_FAILURE(f.fill());
    auto& [pool, b] = f;
    const snapshot before(b);
    EXPECT_EQ(b.write("x"), errc::capacity_exceeded) << "32 KiB live + any larger block > 64 KiB";
    EXPECT_EQ(snapshot(b), before) << "no partial write";
    try {
        b.append("x");
        ADD_FAILURE() << "append must throw at the cap";
    } catch (const capacity_exceeded& e) {
        EXPECT_EQ(e.code(), errc::capacity_exceeded);
    }
    EXPECT_EQ(snapshot(b), before);
    EXPECT_LE(pool.stats().peak_live_bytes, std::size_t{64} << 10);
}

TEST(BufferOverPool, AtTheCapUnderWaitTheWriteTimesOut) {
    half_full_pool f(exhaustion::wait, 100ms);
    ASSERT_NO_FATAL_FAILURE(f.fill());
    auto& [pool, b] = f;
    const snapshot before(b);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(b.write("x"), errc::capacity_exceeded) << "it waited, then gave up";
    const auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_GE(waited, 100ms);
    EXPECT_LT(waited, 30s);
    EXPECT_EQ(snapshot(b), before);
}

TEST(BufferOverPool, AWaitingWriteProceedsWhenMemoryIsGivenBack) {
    // 80 KiB: growing from 32 KiB to the next class (40 KiB) needs 72 KiB while both are live.
    pool_resource pool(
        {.capacity = 80 << 10, .on_exhaustion = exhaustion::wait, .backoff = {.max_elapsed = 20s}});
    buffer b(&pool, 32 << 10);
    ASSERT_FALSE(b.write(std::string(32 << 10, 'a')));
    void* hog = pool.allocate(16 << 10);  // 48 KiB live: 48 + 40 > 80, the write must wait
    std::atomic<bool> written{false};
    std::thread freer([&] {
        // Once the write waits (not after a guess of how long it takes to get there): give back.
        while (pool.stats().waiters == 0 && !written.load())
            std::this_thread::yield();
        pool.deallocate(hog, 16 << 10);
    });
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(b.write("x"));
    EXPECT_LT(std::chrono::steady_clock::now() - start, 10s) << "woken by the release";
    written = true;
    freer.join();
    EXPECT_EQ(pool.stats().waits, 1u) << "the write waited";
    EXPECT_EQ(pool.stats().timeouts, 0u);
    EXPECT_EQ(b.size(), (32u << 10) + 1);
    EXPECT_EQ(b.view().back(), 'x');
}

TEST(BufferOverPool, ExhaustionScopeMakesAWaitingPoolFailFast) {
    half_full_pool f(exhaustion::wait);
    ASSERT_NO_FATAL_FAILURE(f.fill());
    auto& [pool, b] = f;
    const snapshot before(b);
    const exhaustion_scope scope(exhaustion::fail);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(b.write("x"), errc::capacity_exceeded);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 10s)
        << "refused at once: the pool alone would have waited 20 s";
    EXPECT_EQ(pool.stats().waits, 0u);
    EXPECT_EQ(snapshot(b), before);
}

TEST(BufferOverPool, ExhaustionScopeDeadlineCutsAWaitShort) {
    half_full_pool f(exhaustion::wait);
    ASSERT_NO_FATAL_FAILURE(f.fill());
    auto& [pool, b] = f;
    const auto start = std::chrono::steady_clock::now();
    const exhaustion_scope soon(start + 50ms);
    try {
        b.append("x");
        ADD_FAILURE() << "append must throw at the cap";
    } catch (const capacity_exceeded& e) {
        EXPECT_EQ(e.code(), errc::timed_out) << "it waited, until the scope's deadline";
    }
    const auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_GE(waited, 50ms);
    EXPECT_LT(waited, 10s) << "the pool alone would have waited 20 s";
    EXPECT_EQ(b.size(), 32u << 10);
}

TEST(BufferOverPool, AppendAtTheCapUnderWaitThrowsTimedOut) {
    half_full_pool f(exhaustion::wait, 50ms);
    ASSERT_NO_FATAL_FAILURE(f.fill());
    auto& [pool, b] = f;
    const snapshot before(b);
    try {
        b.append("x");
        ADD_FAILURE() << "append must throw once the wait times out";
    } catch (const capacity_exceeded& e) {
        EXPECT_EQ(e.code(), errc::timed_out);
        EXPECT_GE(e.waited(), 50ms);
    }
    EXPECT_EQ(snapshot(b), before);
}

// Blocks above 4 KiB come from upstream at their exact size (as past the default 1 MiB), so that
// growing to exactly what each write needs gains nothing from the size classes.
pool_options near_cap_options(std::size_t capacity) {
    return {
        .largest_pooled_block = 4 << 10, .capacity = capacity, .on_exhaustion = exhaustion::fail};
}

TEST(BufferOverPool, GrowthPastAThirdOfTheCapStaysGeometric) {
    // Under 700 KiB, doubling 256 KiB needs 768 KiB live during the copy: from there on only a
    // smaller block fits. Growing to just what each 64-byte write needs would reallocate (and copy
    // the whole buffer) 1024 times on the way to 320 KiB.
    pool_resource pool(near_cap_options(700 << 10));
    buffer b(&pool);
    const std::string piece(64, 'p');
    const std::uint64_t before = pool.stats().allocations;
    while (b.size() < (320u << 10))
        ASSERT_FALSE(b.write(piece)) << "at " << b.size();
    const std::uint64_t growths = pool.stats().allocations - before;
    EXPECT_LE(growths, 16u) << "64 B doubling to 256 KiB is 13 blocks, then a bounded few";
    EXPECT_TRUE(b.view() == std::string(320 << 10, 'p'));  // not _EQ: 320 KiB of output
    EXPECT_EQ(pool.live_bytes(), b.capacity()) << "the old blocks went back";
    EXPECT_LE(pool.stats().peak_live_bytes, pool.capacity());
}

TEST(BufferOverPool, GrowthNearTheCapLeavesHalfTheHeadroomToOthers) {
    // 100 KiB held elsewhere, 256 KiB in the buffer: 344 KiB of headroom under 700 KiB, of which
    // the growth takes at most half above what the write needs.
    pool_resource pool(near_cap_options(700 << 10));
    void* other = pool.allocate(100 << 10);
    buffer b(&pool, 256 << 10);
    ASSERT_FALSE(b.write(std::string(256 << 10, 'a')));
    ASSERT_EQ(b.capacity(), std::size_t{256} << 10);
    ASSERT_FALSE(b.write("b"));
    const std::size_t need = (256u << 10) + 1;
    const std::size_t headroom = (700u - 100 - 256) << 10;
    EXPECT_GT(b.capacity(), need + (32u << 10)) << "more than the write needs";
    EXPECT_LE(b.capacity(), need + (headroom - need) / 2 + 16) << "half the headroom at most";
    EXPECT_EQ(b.size(), need);
    EXPECT_EQ(b.view().back(), 'b');
    b.release();
    pool.deallocate(other, 100 << 10);
}

TEST(BufferOverPool, GrowthNearTheCapStillReachesHalfTheCap) {
    // The largest buffer growth can reach: its new block and the old one fit together, so about
    // half the capacity. Taking more than the write needs must not make that any smaller.
    pool_resource pool(near_cap_options(700 << 10));
    buffer b(&pool);
    const std::string piece(64, 'p');
    while (!b.write(piece)) {
    }
    EXPECT_GE(b.size(), (350u << 10) - 64) << "half the capacity, to within one write";
    EXPECT_LE(pool.stats().peak_live_bytes, pool.capacity());
}

// --- checked build: misuse stops the program with a message -----------------------------------

#if BPOOL_CHECKED
TEST(BufferDeathTest, GrowingAMovedFromBufferAborts) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(
        {
            buffer a(std::pmr::new_delete_resource());
            buffer b(std::move(a));
            (void)a.write("x");  // NOLINT(bugprone-use-after-move)
        },
        "buffer::write on an empty buffer");
    EXPECT_DEATH(
        {
            buffer a;
            a.reserve(10);
        },
        "buffer::grow on an empty buffer");
}
#endif

}  // namespace
}  // namespace bpool
