// What an event loop needs of buffers (include/bpool/buffer_pool.hpp, buffer.hpp):
// buffer_pool::try_get never waits, never passes a cap and never bypasses; async_get waits at
// either cap without blocking its caller; buffer::prepare and
// commit read into a buffer without zero-filling it.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <stdexcept>
#include <string>
#include <thread>
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

// --- async_get ---------------------------------------------------------------------------------

// A buffer request that keeps the buffer it got and lets the test wait for it.
class kept : public buffer_request {
  public:
    void on_complete(buffer b, async_status s) noexcept override {
        char name[16] = {};
        pthread_getname_np(pthread_self(), name, sizeof name);
        std::lock_guard lock(m_);
        got = std::move(b);
        status = s;
        thread_name = name;
        ++completions;
        cv_.notify_all();
    }
    void wait_for() {
        std::unique_lock lock(m_);
        cv_.wait(lock, [&] { return completions > 0; });
    }
    buffer got;
    async_status status = async_status::failed;
    std::string thread_name;
    int completions = 0;

  private:
    std::mutex m_;
    std::condition_variable cv_;
};

TEST(BufferPoolAsyncGet, WhatFitsCompletesAtOnceLikeGet) {
    buffer_pool pool(1 << 20);
    kept r;
    EXPECT_TRUE(pool.async_get(r));
    EXPECT_EQ(r.status, async_status::granted);
    EXPECT_TRUE(r.got.empty());
    EXPECT_GE(r.got.capacity(), pool.options().default_capacity);
    EXPECT_EQ(pool.live(), 1u);
    r.got.append("request");
    pool.put(std::move(r.got));
    EXPECT_EQ(pool.live(), 0u);
    EXPECT_EQ(pool.resource().live_bytes(), 0u);
}

TEST(BufferPoolAsyncGet, AtTheLiveCapWaitsWithoutBlockingForABufferToComeBack) {
    buffer_pool_options o = patient(exhaustion::wait);
    o.max_live = 1;
    buffer_pool pool(0, o);
    buffer held = pool.get();
    kept r;
    EXPECT_FALSE(pool.async_get(r));
    EXPECT_EQ(pool.live(), 1u);  // a request that waits has checked nothing out
    pool.put(std::move(held));
    r.wait_for();
    EXPECT_EQ(r.status, async_status::granted);
    EXPECT_EQ(r.thread_name, "bpool-async");
    EXPECT_EQ(pool.live(), 1u);
    r.got = buffer();
    EXPECT_EQ(pool.live(), 0u);
}

TEST(BufferPoolAsyncGet, AtTheMemoryCapWaitsForStorage) {
    buffer_pool_options o = patient(exhaustion::wait);
    o.default_capacity = 32 * kib;
    buffer_pool pool(32 * kib, o);
    buffer held = pool.get();
    kept r;
    EXPECT_FALSE(pool.async_get(r));
    EXPECT_EQ(pool.resource().stats().waiters, 1u);
    held = buffer();
    r.wait_for();
    EXPECT_EQ(r.status, async_status::granted);
    EXPECT_GE(r.got.capacity(), 32 * kib);
    EXPECT_EQ(pool.live(), 1u);
    r.got = buffer();
    EXPECT_EQ(pool.resource().live_bytes(), 0u);
}

TEST(BufferPoolAsyncGet, FailRefusesAtOnceAndATimeoutEndsTheWait) {
    buffer_pool_options o = patient(exhaustion::fail);
    o.max_live = 1;
    buffer_pool failing(0, o);
    buffer held = failing.get();
    kept refused;
    EXPECT_TRUE(failing.async_get(refused));
    EXPECT_EQ(refused.status, async_status::refused);
    EXPECT_TRUE(refused.got.empty());
    EXPECT_EQ(failing.live(), 1u);

    buffer_pool_options w = patient(exhaustion::wait);
    w.max_live = 1;
    w.backoff.max_elapsed = 30ms;
    buffer_pool waiting(0, w);
    buffer other = waiting.get();
    kept late;
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(waiting.async_get(late));
    late.wait_for();
    EXPECT_EQ(late.status, async_status::timed_out);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
    EXPECT_EQ(waiting.live(), 1u);
}

TEST(BufferPoolAsyncGet, CancelInEitherWaitChecksNothingOut) {
    buffer_pool_options o = patient(exhaustion::wait);
    o.max_live = 2;
    o.default_capacity = 32 * kib;
    buffer_pool pool(32 * kib, o);
    buffer held = pool.get();
    kept for_memory;  // a slot is free: it waits for storage
    EXPECT_FALSE(pool.async_get(for_memory));
    kept for_slot;  // no slot left while the first holds one
    EXPECT_FALSE(pool.async_get(for_slot));
    EXPECT_TRUE(for_slot.cancel());
    EXPECT_TRUE(for_memory.cancel());
    for_slot.wait_for();
    for_memory.wait_for();
    EXPECT_EQ(for_slot.status, async_status::cancelled);
    EXPECT_EQ(for_memory.status, async_status::cancelled);
    EXPECT_FALSE(for_slot.cancel());
    EXPECT_EQ(pool.live(), 1u);
    held = buffer();
    EXPECT_EQ(pool.resource().live_bytes(), 0u);
    buffer again = pool.get();  // both slots and the memory came back
    buffer another = pool.try_get().value_or(buffer());
    EXPECT_TRUE(another.empty());  // memory cap: one 32 KiB buffer at a time
}

TEST(BufferPoolAsyncGet, DestroyingThePoolCancelsBothWaits) {
    pool_options ro;
    ro.capacity = 32 * kib;
    pool_resource resource(ro);  // borrowed: its waits outlive the buffer pool's
    buffer_pool_options o = patient(exhaustion::wait);
    o.max_live = 2;
    o.default_capacity = 32 * kib;
    void* full = resource.allocate(32 * kib);
    kept first, second, third;
    {
        buffer_pool pool(resource, o);
        EXPECT_FALSE(pool.async_get(first));   // a slot, then waits for memory
        EXPECT_FALSE(pool.async_get(second));  // the other slot, then waits for memory
        EXPECT_FALSE(pool.async_get(third));   // waits for a slot
        EXPECT_EQ(resource.stats().waiters, 2u);
    }
    // Completed before the destructor returned.
    EXPECT_EQ(first.status, async_status::cancelled);
    EXPECT_EQ(second.status, async_status::cancelled);
    EXPECT_EQ(third.status, async_status::cancelled);
    EXPECT_EQ(resource.stats().waiters, 0u);
    resource.deallocate(full, 32 * kib);
    EXPECT_EQ(resource.live_bytes(), 0u);
}

// A completion that drops its buffer and destroys the pool (the last request of a server).
class closing : public buffer_request {
  public:
    std::unique_ptr<buffer_pool> pool;
    std::atomic<bool> done{false};
    void on_complete(buffer b, async_status) noexcept override {
        b = buffer();
        pool.reset();
        done = true;
    }
};

TEST(BufferPoolAsyncGet, ACompletionMayDestroyThePool) {
    buffer_pool_options o = patient(exhaustion::wait);
    o.max_live = 1;
    closing r;
    r.pool = std::make_unique<buffer_pool>(0, o);
    std::optional<buffer> held(r.pool->get());
    EXPECT_FALSE(r.pool->async_get(r));
    held.reset();
    while (!r.done)
        std::this_thread::sleep_for(1ms);
    EXPECT_EQ(r.pool, nullptr);
}

// A completion that puts its buffer back and asks again: a loop with no thread of its own.
class cycling : public buffer_request {
  public:
    buffer_pool* pool = nullptr;
    std::atomic<int> left{0};
    std::atomic<int> failures{0};
    void on_complete(buffer b, async_status s) noexcept override {
        if (s != async_status::granted) ++failures;
        b = buffer();  // back to the pool before the next request
        if (left.fetch_sub(1) > 1) pool->async_get(*this);
    }
};

TEST(BufferPoolAsyncGet, ManyRequestsAtTheCapAreAllServed) {
    buffer_pool_options o = patient(exhaustion::wait);
    o.max_live = 3;
    o.default_capacity = 4 * kib;
    buffer_pool pool(12 * kib, o);
    std::vector<std::unique_ptr<cycling>> rs;
    for (int i = 0; i < 16; ++i) {
        rs.push_back(std::make_unique<cycling>());
        rs.back()->pool = &pool;
        rs.back()->left = 50;
    }
    for (auto& r : rs)
        pool.async_get(*r);
    for (auto& r : rs) {
        while (r->left > 0 || r->pending())
            std::this_thread::sleep_for(1ms);
        EXPECT_EQ(r->failures, 0);
    }
    EXPECT_EQ(pool.live(), 0u);
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
