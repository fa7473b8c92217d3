// Boost.Asio adapter (adapters/include/bpool/adapters/asio.hpp): async_get and async_allocate with
// a handler, use_future and use_awaitable; handlers on their executor, per-operation
// cancellation, an io_context destroyed under a waiting request, and the DynamicBuffer adapter.
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <bpool/adapters/asio.hpp>
#include <bpool/buffer_pool.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

namespace bpool {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using boost::system::error_code;

constexpr std::size_t kib = 1024;

buffer_pool_options one_at_a_time() {
    buffer_pool_options o;
    o.max_live = 1;
    o.default_capacity = 4 * kib;
    o.backoff.max_elapsed = std::chrono::minutes(5);  // only the test's own timeout ends a wait
    return o;
}

TEST(AsioAsyncGet, AHandlerRunsOnItsExecutorOnceABufferComesBack) {
    buffer_pool pool(0, one_at_a_time());
    net::io_context io;
    std::optional<buffer> held(pool.get());
    bool called = false;
    bpool::asio::async_get(pool, io.get_executor(), [&](error_code ec, buffer b) {
        EXPECT_FALSE(ec);
        EXPECT_TRUE(io.get_executor().running_in_this_thread());
        EXPECT_GE(b.capacity(), 4 * kib);
        EXPECT_EQ(pool.live(), 1u);
        called = true;
    });
    // The waiting request is outstanding work: run() serves the timer, then waits for it.
    net::steady_timer t(io, 10ms);
    t.async_wait([&](error_code) { held.reset(); });
    io.run();
    EXPECT_TRUE(called);
    EXPECT_EQ(pool.live(), 0u);
}

TEST(AsioAsyncGet, WhatFitsAtOnceIsStillNotCompletedInsideTheCall) {
    buffer_pool pool(0, one_at_a_time());
    net::io_context io;
    bool called = false;
    bpool::asio::async_get(pool, io.get_executor(), [&](error_code ec, buffer) {
        EXPECT_FALSE(ec);
        called = true;
    });
    EXPECT_FALSE(called);
    io.run();
    EXPECT_TRUE(called);
}

TEST(AsioAsyncGet, UseFutureDeliversTheBufferOrTheError) {
    buffer_pool pool(0, one_at_a_time());
    std::future<buffer> f = bpool::asio::async_get(pool, net::use_future);
    buffer b = f.get();
    EXPECT_EQ(pool.live(), 1u);
    buffer_pool_options o = one_at_a_time();
    o.on_exhaustion = exhaustion::fail;
    buffer_pool failing(0, o);
    buffer held = failing.get();
    std::future<buffer> refused = bpool::asio::async_get(failing, net::use_future);
    try {
        static_cast<void>(refused.get());
        ADD_FAILURE() << "a refused request delivered a buffer";
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), net::error::no_buffer_space);
    }
}

TEST(AsioAsyncGet, UseAwaitableInACoroutine) {
    buffer_pool pool(0, one_at_a_time());
    net::io_context io;
    std::optional<buffer> held(pool.get());
    std::string got;
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
            buffer b = co_await bpool::asio::async_get(pool, net::use_awaitable);
            b.append("served");
            got = std::string(b.view());
        },
        net::detached);
    net::steady_timer t(io, 10ms);
    t.async_wait([&](error_code) { held.reset(); });
    io.run();
    EXPECT_EQ(got, "served");
    EXPECT_EQ(pool.live(), 0u);
}

TEST(AsioAsyncGet, ACancellerAbortsItsWaitingRequests) {
    buffer_pool pool(0, one_at_a_time());
    net::io_context io;
    buffer held = pool.get();
    bpool::asio::canceller cancel;
    error_code first, second;
    bpool::asio::async_get(
        pool, io.get_executor(),
        [&](error_code ec, buffer b) {
            first = ec;
            EXPECT_TRUE(b.empty());
        },
        &cancel);
    bpool::asio::async_get(
        pool, io.get_executor(), [&](error_code ec, buffer) { second = ec; }, &cancel);
    std::size_t cancelled = 0;
    net::post(io, [&] { cancelled = cancel.cancel(); });
    io.run();
    EXPECT_EQ(cancelled, 2u);
    EXPECT_EQ(first, net::error::operation_aborted);
    EXPECT_EQ(second, net::error::operation_aborted);
    EXPECT_EQ(cancel.cancel(), 0u);
    EXPECT_EQ(pool.live(), 1u);
}

TEST(AsioAsyncGet, ATimeoutCompletesWithTimedOut) {
    buffer_pool_options o = one_at_a_time();
    o.backoff.max_elapsed = 20ms;
    buffer_pool pool(0, o);
    net::io_context io;
    buffer held = pool.get();
    error_code result;
    const auto start = std::chrono::steady_clock::now();
    bpool::asio::async_get(pool, io.get_executor(), [&](error_code ec, buffer) { result = ec; });
    io.run();
    EXPECT_EQ(result, net::error::timed_out);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
}

TEST(AsioAsyncGet, DestroyingTheIoContextDestroysTheHandlerUninvoked) {
    buffer_pool pool(0, one_at_a_time());
    buffer held = pool.get();
    auto alive = std::make_shared<int>(0);
    std::weak_ptr<int> watch = alive;
    bool called = false;
    {
        net::io_context io;
        bpool::asio::async_get(pool, io.get_executor(),
                               [&called, alive](error_code, buffer) { called = true; });
        alive.reset();
        io.run_for(5ms);  // returns at its deadline: the request still waits
        EXPECT_FALSE(watch.expired());
    }
    EXPECT_TRUE(watch.expired()) << "the handler was destroyed with its context";
    EXPECT_FALSE(called);
    EXPECT_EQ(pool.resource().stats().waiters, 0u);
    EXPECT_EQ(pool.live(), 1u);
}

TEST(AsioAsyncGet, AGrantedButUndeliveredBufferGoesBackWithItsContext) {
    buffer_pool pool(0, one_at_a_time());
    std::optional<buffer> held(pool.get());
    {
        net::io_context io;
        bool called = false;
        bpool::asio::async_get(pool, io.get_executor(),
                               [&called](error_code, buffer) { called = true; });
        held.reset();  // granted now; the handler is posted but io never runs again
        while (pool.live() == 0)
            std::this_thread::sleep_for(1ms);
        std::this_thread::sleep_for(5ms);
        EXPECT_FALSE(called);
    }
    EXPECT_EQ(pool.live(), 0u);
}

TEST(AsioAsyncAllocate, ABlockWithAHandler) {
    pool_options o;
    o.capacity = 8 * kib;
    pool_resource pool(o);
    net::io_context io;
    void* full = pool.allocate(8 * kib);
    void* got = nullptr;
    bpool::asio::async_allocate(pool, 100, alignof(std::max_align_t), io.get_executor(),
                                [&](error_code ec, void* p) {
                                    EXPECT_FALSE(ec);
                                    got = p;
                                });
    net::post(io, [&] { pool.deallocate(full, 8 * kib); });
    io.run();
    ASSERT_NE(got, nullptr);
    pool.deallocate(got, 100);
}

TEST(AsioDynamicBuffer, ReadsLinesIntoABufferAndWritesThemBack) {
    buffer_pool pool(0, one_at_a_time());
    net::io_context io;
    net::local::stream_protocol::socket a(io), b(io);
    net::local::connect_pair(a, b);
    buffer in = pool.get();
    std::string echoed;
    net::async_write(a, net::buffer(std::string_view("first\nsecond\n")),
                     [](error_code ec, std::size_t) { EXPECT_FALSE(ec); });
    net::async_read_until(b, bpool::asio::dynamic_buffer(in), '\n',
                          [&](error_code ec, std::size_t n) {
                              ASSERT_FALSE(ec);
                              echoed.assign(in.view().substr(0, n));
                              bpool::asio::dynamic_buffer(in).consume(n);
                              EXPECT_EQ(in.view().substr(0, 7), "second\n");
                          });
    io.run();
    EXPECT_EQ(echoed, "first\n");
}

TEST(AsioDynamicBuffer, PrepareCommitConsumeAndMaxSize) {
    buffer_pool pool(0, one_at_a_time());
    buffer b = pool.get();
    auto d = bpool::asio::dynamic_buffer(b, 64);
    EXPECT_EQ(d.max_size(), 64u);
    auto room = d.prepare(10);
    EXPECT_EQ(room.size(), 10u);
    std::memcpy(room.data(), "0123456789", 10);
    d.commit(10);
    EXPECT_EQ(d.size(), 10u);
    d.consume(4);
    EXPECT_EQ(b.view(), "456789");
    EXPECT_THROW(d.prepare(59), std::length_error);
    d.consume(100);
    EXPECT_EQ(d.size(), 0u);
    EXPECT_EQ(bpool::asio::const_buffer(b).size(), 0u);
}

}  // namespace
}  // namespace bpool

#if defined(__SANITIZE_THREAD__)
// libstdc++ is not built with TSan: the reference count of the exception_ptr that use_future's
// refused request carries is invisible to it, and freeing it reads as a race. Ignore what
// libstdc++ itself calls (its frees), nothing of ours.
extern "C" const char* __tsan_default_suppressions() {
    return "called_from_lib:libstdc++.so\n";
}
#endif
