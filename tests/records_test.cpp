// All-or-nothing records (include/bpool/buffer.hpp, bpool/adapters/streambuf.hpp): mark() and
// rollback() on buffers and pool streams, at a capped pool's limit and off it, and the pattern the
// README gives against hold-and-wait (a record that fails is undone, the complete ones handed on,
// nobody waits holding memory).
#include <atomic>
#include <cstddef>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <bpool/adapters/streambuf.hpp>
#include <bpool/buffer.hpp>
#include <bpool/buffer_pool.hpp>
#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "support/capped.hpp"

namespace bpool {
namespace {

using test::capped;

TEST(BufferRecords, RollbackForgetsWhatWasWrittenSinceTheMark) {
    pool_resource pool;
    buffer b(&pool);
    b.append("head;");
    const buffer::mark_type m = b.mark();
    b.append("half a rec");
    const std::size_t capacity = b.capacity();
    b.rollback(m);
    EXPECT_EQ(b.view(), "head;");
    EXPECT_EQ(b.capacity(), capacity) << "the storage stays";
    b.append("next;");
    EXPECT_EQ(b.view(), "head;next;");
    b.reset();
    b.rollback(m);  // a mark past the end moves nothing
    EXPECT_TRUE(b.empty());
}

TEST(BufferRecords, ARecordThatFailsAtTheCapIsUndone) {
    buffer_pool pool(64 << 10, {.default_capacity = 4 << 10});
    buffer b = pool.get();
    b.append("complete record\n");
    const buffer::mark_type m = b.mark();
    ASSERT_FALSE(b.write(std::string(1000, 'a')));
    EXPECT_EQ(b.write(std::string(128 << 10, 'b')), errc::capacity_exceeded);
    b.rollback(m);
    EXPECT_EQ(b.view(), "complete record\n");
}

TEST(StreamRecords, RollbackUndoesAHalfWrittenRecordAndClearsTheState) {
    pool_resource pool(capped(8 << 10, exhaustion::fail));
    ostream out(pool);
    out << "ok " << 1 << '\n';
    const ostream::mark_type m = out.mark();
    out << "record " << 2 << ": " << std::string(16 << 10, 'x') << '\n';
    EXPECT_TRUE(out.bad()) << "the cap refused the growth";
    EXPECT_EQ(out.error(), errc::capacity_exceeded);
    out.rollback(m);
    EXPECT_TRUE(out.good());
    EXPECT_EQ(out.view(), "ok 1\n");
    out << "record " << 3 << '\n';
    EXPECT_EQ(out.view(), "ok 1\nrecord 3\n");
}

TEST(StreamRecords, RollbackUndoesAppendsNotOverwrites) {
    pool_resource pool;
    stringstream s(pool);
    s << "hello world";
    const stringstream::mark_type m = s.mark();
    s.seekp(0);
    s << 'J';
    s.seekp(0, std::ios_base::end);
    s << ", again";
    s.rollback(m);
    EXPECT_EQ(s.view(), "Jello world");
    s << '!';
    EXPECT_EQ(s.view(), "Jello world!") << "writes go on at the mark's write position";
}

TEST(StreamRecords, TheReadPositionStaysWithinTheContents) {
    pool_resource pool;
    stringstream s(pool);
    s << "ab";
    const stringstream::mark_type m = s.mark();
    s << "cdef";
    char four[4];
    ASSERT_TRUE(s.read(four, 4));
    s.rollback(m);
    EXPECT_EQ(s.view(), "ab");
    EXPECT_EQ(s.rdbuf()->in_avail(), 0) << "the read position went back to the end";
    s << "Z";
    EXPECT_EQ(s.get(), 'Z');
}

// The README's pattern against hold-and-wait: eight writers under one small cap, each with a
// stream of records. A record that does not fit is undone and the complete ones are handed on
// (the stream emptied), then it is written again: nobody waits while holding memory, so every
// record gets through whatever the interleaving.
TEST(StreamRecords, WritersUnderOneCapNeverWaitHoldingMemory) {
    pool_resource pool(capped(64 << 10, exhaustion::fail));
    std::atomic<std::size_t> handed_on{0};
    std::vector<std::thread> writers;
    for (int w = 0; w < 8; ++w) {
        writers.emplace_back([&, w] {
            ostream out(pool);
            std::size_t records = 0;
            for (int i = 0; i < 500;) {
                const ostream::mark_type m = out.mark();
                out << "writer " << w << " record " << i << ' ' << std::string(300, 'r') << '\n';
                if (out) {
                    ++i;
                    ++records;
                    continue;
                }
                out.rollback(m);
                handed_on += records;  // hand the complete records on, and free their memory
                records = 0;
                out.reset();
                std::this_thread::yield();
            }
            handed_on += records;
        });
    }
    for (std::thread& t : writers)
        t.join();
    EXPECT_EQ(handed_on.load(), 8u * 500u);
    EXPECT_LE(pool.stats().peak_live_bytes, std::size_t{64} << 10);
}

}  // namespace
}  // namespace bpool
