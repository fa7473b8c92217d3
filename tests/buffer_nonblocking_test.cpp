// What an event loop needs of buffers (include/bpool/buffer_pool.hpp, buffer.hpp):
// buffer_pool::try_get never waits, never passes a cap and never bypasses; buffer::prepare and
// commit read into a buffer without zero-filling it.
#include <chrono>
#include <cstddef>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

#include <bpool/buffer_pool.hpp>
#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "support/buffer_snapshot.hpp"
#include "support/counting_resource.hpp"

namespace bpool {
namespace {

using namespace std::chrono_literals;
using test::counting_resource;
using test::snapshot;

constexpr std::size_t kib = 1024;

buffer_pool_options patient(exhaustion policy) {
    buffer_pool_options o;
    o.on_exhaustion = policy;
    o.backoff.max_elapsed = 5min;  // a try_get that waited would time the test out
    return o;
}

TEST(BufferPoolTryGet, ChecksOutLikeGet) {
    buffer_pool pool(1 << 20);
    std::optional<buffer> b = pool.try_get();
    ASSERT_TRUE(b.has_value());
    EXPECT_TRUE(b->empty());
    EXPECT_GE(b->capacity(), pool.options().default_capacity);
    EXPECT_EQ(pool.live(), 1u);
    b->append("request");
    pool.put(std::move(*b));
    EXPECT_EQ(pool.live(), 0u);
    EXPECT_EQ(pool.resource().live_bytes(), 0u);
}

TEST(BufferPoolTryGet, AtTheLiveCapReturnsNothingAtOnce) {
    buffer_pool_options o = patient(exhaustion::wait);
    o.max_live = 1;
    buffer_pool pool(0, o);
    std::optional<buffer> held = pool.try_get();
    ASSERT_TRUE(held.has_value());
    EXPECT_FALSE(pool.try_get().has_value());
    EXPECT_EQ(pool.live(), 1u);
    held.reset();
    EXPECT_TRUE(pool.try_get().has_value()) << "the slot came back";
    EXPECT_EQ(pool.live(), 0u);
}

TEST(BufferPoolTryGet, AtTheMemoryCapReturnsNothingWhateverThePolicy) {
    for (exhaustion policy :
         {exhaustion::wait, exhaustion::overcommit, exhaustion::bypass, exhaustion::fail}) {
        buffer_pool_options o = patient(policy);
        o.default_capacity = 32 * kib;
        buffer_pool pool(64 * kib, o);
        std::vector<buffer> held;
        while (std::optional<buffer> b = pool.try_get())
            held.push_back(std::move(*b));
        EXPECT_EQ(held.size(), 2u) << "exactly what the capacity holds";
        EXPECT_EQ(pool.live(), held.size());
        const pool_stats s = pool.resource().stats();
        EXPECT_EQ(s.waits + s.overcommits + s.bypasses, 0u) << "no policy applied";
        EXPECT_LE(s.live_bytes, 64 * kib);
        held.pop_back();
        EXPECT_TRUE(pool.try_get().has_value()) << "room came back";
    }
}

TEST(BufferPoolTryGet, AnExhaustionScopeChangesNothing) {
    buffer_pool_options o = patient(exhaustion::wait);
    o.default_capacity = 64 * kib;
    buffer_pool pool(64 * kib, o);
    std::optional<buffer> held = pool.try_get();
    ASSERT_TRUE(held.has_value());
    for (exhaustion policy : {exhaustion::overcommit, exhaustion::bypass, exhaustion::wait}) {
        const exhaustion_scope scope(policy);
        EXPECT_FALSE(pool.try_get().has_value());
    }
    EXPECT_EQ(pool.live(), 1u);
}

TEST(BufferPoolTryGet, WhatCannotBeReservedChecksNothingOut) {
    counting_resource upstream;
    buffer_pool_options o;
    o.max_live = 1;
    buffer_pool pool(0, o, &upstream);
    upstream.fail_all(true);
    EXPECT_FALSE(pool.try_get().has_value());
    EXPECT_EQ(pool.live(), 0u);
    upstream.fail_all(false);
    EXPECT_TRUE(pool.try_get().has_value()) << "the live slot was given back";

    buffer_pool_options huge;
    huge.default_capacity = buffer::max_size() + std::size_t{1};
    buffer_pool too_large(0, huge);
    EXPECT_FALSE(too_large.try_get().has_value());
    EXPECT_EQ(too_large.live(), 0u);
}

TEST(BufferPoolTryGet, ZeroDefaultCapacityReservesNothing) {
    buffer_pool_options o;
    o.default_capacity = 0;
    buffer_pool pool(0, o);
    std::optional<buffer> b = pool.try_get();
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->capacity(), 0u);
    EXPECT_EQ(pool.live(), 1u);
}

TEST(BufferPrepare, GivesTheRoomPastSizeAndCommitAppendsIt) {
    pool_resource pool;
    buffer b(&pool);
    b.append("abc");
    const std::span<std::byte> room = b.prepare(10);
    EXPECT_EQ(b.size(), 3u) << "prepare writes nothing";
    EXPECT_GE(room.size(), 10u);
    EXPECT_EQ(room.size(), b.capacity() - b.size());
    EXPECT_EQ(room.data(), b.data() + 3);
    std::memcpy(room.data(), "hello", 5);
    b.commit(5);
    EXPECT_EQ(b.view(), "abchello");
    EXPECT_TRUE(b.prepare(0).size() == b.capacity() - b.size());
}

TEST(BufferPrepare, DoesNotZeroFill) {
    pool_resource pool;
    buffer b(&pool, 4 * kib);
    b.append(std::string(4 * kib, 'x'));
    b.reset();  // size 0, the storage (full of 'x') kept
    const std::span<std::byte> room = b.prepare(4 * kib);
    ASSERT_GE(room.size(), 4 * kib);
    for (std::size_t i = 0; i < 4 * kib; ++i)
        ASSERT_EQ(room[i], std::byte{'x'}) << "byte " << i << " was overwritten";
}

TEST(BufferPrepare, GrowsLikeAWriteAndKeepsTheContents) {
    pool_resource pool;
    buffer b(&pool);
    b.append(std::string(100, 'a'));
    const std::size_t before = b.capacity();
    const std::span<std::byte> room = b.prepare(before);
    EXPECT_GE(room.size(), before);
    EXPECT_GE(b.capacity(), 2 * before) << "geometric";
    EXPECT_EQ(b.view(), std::string(100, 'a'));
    EXPECT_EQ(pool.block_size(b.capacity()), b.capacity()) << "a whole block";
}

TEST(BufferPrepare, AtTheCapThrowsAndChangesNothing) {
    buffer_pool pool(64 * kib, patient(exhaustion::wait));  // write_backoff off: refused at once
    buffer b = pool.get();
    b.append("kept");
    const snapshot before(b);
    EXPECT_THROW((void)b.prepare(128 * kib), capacity_exceeded);
    EXPECT_TRUE(snapshot(b) == before);
    EXPECT_THROW((void)b.prepare(buffer::max_size()), std::length_error);
    EXPECT_TRUE(snapshot(b) == before);
}

TEST(BufferPrepare, ReadsFromAFileDescriptor) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const std::string message(3000, 'm');
    ASSERT_EQ(::write(fds[1], message.data(), message.size()),
              static_cast<ssize_t>(message.size()));
    ::close(fds[1]);
    buffer_pool pool(1 << 20);
    buffer b = pool.get();
    for (;;) {
        const std::span<std::byte> room = b.prepare(1024);
        const ssize_t n = ::read(fds[0], room.data(), room.size());
        ASSERT_GE(n, 0);
        if (n == 0) break;
        b.commit(static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    EXPECT_EQ(b.view(), message);
}

#if !BPOOL_CHECKED
TEST(BufferPrepare, CommitIsCutToTheRoom) {
    pool_resource pool;
    buffer b(&pool, 64);
    b.append("ab");
    b.commit(1 << 20);
    EXPECT_EQ(b.size(), b.capacity());
}

TEST(BufferPrepare, AnEmptyBufferCannotGrow) {
    buffer b;
    EXPECT_EQ(b.prepare(0).size(), 0u);
    EXPECT_THROW((void)b.prepare(1), std::logic_error);
}
#else
TEST(BufferPrepareDeathTest, CommittingMoreThanTheRoomAborts) {
    pool_resource pool;
    buffer b(&pool, 64);
    EXPECT_DEATH(b.commit(1 << 20), "more was committed than prepare");
}
#endif

}  // namespace
}  // namespace bpool
