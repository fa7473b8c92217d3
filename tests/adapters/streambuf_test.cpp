// bpool/adapters/streambuf.hpp: bpool::basic_streambuf and the streams over it: output, growth
// through the size classes, input, seeking, moving, and what happens at a capped pool's limit.
#include <chrono>
#include <cstddef>
#include <ios>
#include <istream>
#include <limits>
#include <memory_resource>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <bpool/adapters/streambuf.hpp>
#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "adapter_support.hpp"

namespace bpool {
namespace {

using namespace std::string_view_literals;
using test::capped;
using test::checked_pool;
using test::counting_resource;

// Writes `n` characters one at a time: the path that stresses growth most.
void put_chars(std::streambuf& sb, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        ASSERT_EQ(sb.sputc(static_cast<char>('a' + i % 26)), 'a' + static_cast<int>(i % 26));
}

bool is_alphabet_run(std::string_view v) {
    for (std::size_t i = 0; i < v.size(); ++i)
        if (v[i] != static_cast<char>('a' + i % 26)) return false;
    return true;
}

TEST(Streambuf, AFreshStreamIsGoodAndOwnsItsBuffer) {
    checked_pool p;
    ostream os(p.pool);
    EXPECT_TRUE(os.good());
    EXPECT_EQ(os.std::ostream::rdbuf(), os.rdbuf()) << "the std stream writes to the pool buffer";
    EXPECT_EQ(os.flags(), std::ios_base::skipws | std::ios_base::dec);
    EXPECT_EQ(os.exceptions(), std::ios_base::goodbit);
    stringstream ss(static_cast<std::pmr::memory_resource*>(&p.pool));
    EXPECT_TRUE(ss.good());
    EXPECT_EQ(ss.std::iostream::rdbuf(), ss.rdbuf());
    istream is(p.pool, "7");
    int v = 0;
    EXPECT_TRUE(is >> v);
    EXPECT_EQ(v, 7);
}

TEST(Streambuf, FormatsIntoThePool) {
    checked_pool p;
    ostream os(p.pool);
    EXPECT_EQ(p.pool.live_bytes(), 0u) << "nothing allocated before the first write";
    os << "hello " << 42 << ' ' << 3.5 << std::endl;
    EXPECT_TRUE(os.good());
    EXPECT_EQ(os.view(), "hello 42 3.5\n");
    EXPECT_EQ(os.str(), "hello 42 3.5\n");
    EXPECT_EQ(os.rdbuf()->size(), 13u);
    EXPECT_FALSE(os.error());
    EXPECT_EQ(p.pool.live_bytes(), os.rdbuf()->capacity()) << "one block, counted whole";
    EXPECT_EQ(os.rdbuf()->resource(), &p.pool);
}

TEST(Streambuf, GrowsThroughWholeSizeClassesWithLogarithmicCopies) {
    checked_pool p;
    streambuf sb(p.pool);
    const std::uint64_t before = p.pool.stats().allocations;
    put_chars(sb, 1 << 20);
    EXPECT_EQ(sb.size(), 1u << 20);
    EXPECT_TRUE(is_alphabet_run(sb.view()));
    // 256 B doubling to 1 MiB is 13 blocks: each growth copies once, so O(n) copying in total.
    EXPECT_LE(p.pool.stats().allocations - before, 13u);
    EXPECT_EQ(p.pool.block_size(sb.capacity(), 1), sb.capacity()) << "a whole size class";
    EXPECT_EQ(p.pool.live_bytes(), sb.capacity()) << "old blocks given back";
}

TEST(Streambuf, ABulkWriteGrowsOnce) {
    checked_pool p;
    streambuf sb(p.pool);
    const std::string chunk(100000, 'q');
    const std::uint64_t before = p.pool.stats().allocations;
    EXPECT_EQ(sb.sputn(chunk.data(), static_cast<std::streamsize>(chunk.size())), 100000);
    EXPECT_EQ(p.pool.stats().allocations - before, 1u);
    EXPECT_EQ(sb.view(), chunk);
}

TEST(Streambuf, OverAnyResourceGrowsByDoubling) {
    counting_resource counting;
    {
        streambuf sb(&counting);
        put_chars(sb, 1000);
        EXPECT_EQ(sb.capacity(), 1024u) << "256, 512, 1024: no size classes to round to";
        EXPECT_EQ(counting.live_bytes(), 1024u);
        EXPECT_TRUE(is_alphabet_run(sb.view()));
    }
    EXPECT_EQ(counting.live_bytes(), 0u);
    EXPECT_EQ(counting.mismatches(), 0u);
    EXPECT_THROW(streambuf(static_cast<std::pmr::memory_resource*>(nullptr)),
                 std::invalid_argument);
}

TEST(Streambuf, OverAnyResourceFallsBackToWhatTheWriteNeedsWhenTheDoubledBlockFails) {
    counting_resource counting;
    {
        streambuf sb(&counting);
        sb.reserve(1000);
        ASSERT_EQ(sb.capacity(), 1000u);
        put_chars(sb, 1000);
        counting.fail_after(0);  // the doubled block fails, the block the write needs does not
        ASSERT_EQ(sb.sputc('a'), 'a');
        EXPECT_EQ(sb.capacity(), 1001u) << "just what the write needed";
        EXPECT_EQ(counting.failures(), 1u);
        EXPECT_FALSE(sb.error());
        EXPECT_EQ(sb.view().size(), 1001u);
        EXPECT_TRUE(is_alphabet_run(sb.view().substr(0, 1000)));
        counting.fail_all(true);  // and when that fails too, the growth reports it
        EXPECT_THROW(sb.reserve(4096), std::bad_alloc);
        EXPECT_EQ(sb.error(), errc::out_of_memory);
        EXPECT_EQ(sb.capacity(), 1001u);
        counting.fail_all(false);
    }
    EXPECT_EQ(counting.live_bytes(), 0u);
    EXPECT_EQ(counting.mismatches(), 0u);
}

TEST(Streambuf, AResourcePointerToAPoolUsesItsClasses) {
    checked_pool p;
    streambuf sb(static_cast<std::pmr::memory_resource*>(&p.pool));
    put_chars(sb, 300);
    EXPECT_EQ(sb.capacity(), p.pool.block_size(512, 1));
}

TEST(Streambuf, ReadsBackWhatWasWritten) {
    checked_pool p;
    stringstream ss(p.pool);
    ss << "12 34 word\n";
    int a = 0, b = 0;
    std::string w;
    ss >> a >> b >> w;
    EXPECT_EQ(a, 12);
    EXPECT_EQ(b, 34);
    EXPECT_EQ(w, "word");
    ss << std::string(5000, 'z') << " 56";  // written after the first reads, then read too
    std::string zs;
    int c = 0;
    ss >> zs >> c;
    EXPECT_EQ(zs.size(), 5000u);
    EXPECT_EQ(c, 56);
    ss >> c;
    EXPECT_TRUE(ss.eof());
}

TEST(Streambuf, ReadsomeSeesWhatWasWrittenSince) {
    checked_pool p;
    stringstream ss(p.pool);
    ss << "abc";
    char got[8] = {};
    EXPECT_EQ(ss.rdbuf()->in_avail(), 3);
    EXPECT_EQ(ss.readsome(got, 8), 3);
    EXPECT_EQ(std::string_view(got, 3), "abc");
    EXPECT_EQ(ss.readsome(got, 8), 0);
    EXPECT_TRUE(ss.good()) << "the end is not eof: more may be written";
    ss << "de";
    EXPECT_EQ(ss.readsome(got, 8), 2);
    EXPECT_EQ(std::string_view(got, 2), "de");
}

TEST(Streambuf, IstreamReadsItsInitialContents) {
    checked_pool p;
    istream is(p.pool, "1 2 3 4");
    int sum = 0;
    for (int x = 0; is >> x;)
        sum += x;
    EXPECT_EQ(sum, 10);
    EXPECT_TRUE(is.eof());
    ostream os(p.pool, "start");
    os << "+more";
    EXPECT_EQ(os.view(), "start+more") << "writes append to initial contents";
}

TEST(Streambuf, SeeksWithinTheWrittenRange) {
    checked_pool p;
    stringstream ss(p.pool);
    ss << "abcdef";
    ss.seekp(2);
    ss << "XY";
    EXPECT_EQ(ss.view(), "abXYef") << "overwrites; size unchanged";
    EXPECT_EQ(ss.tellp(), 4);
    ss.seekp(0, std::ios_base::end);
    EXPECT_EQ(ss.tellp(), 6);
    ss.seekg(3);
    EXPECT_EQ(ss.get(), 'Y');
    ss.seekg(-2, std::ios_base::end);
    EXPECT_EQ(ss.get(), 'e');
    ss.seekg(-1, std::ios_base::cur);
    EXPECT_EQ(ss.get(), 'e');
    EXPECT_TRUE(ss.good());
    ss.seekp(7);
    EXPECT_TRUE(ss.fail()) << "past the end of what was written";
    ss.clear();

    streambuf& sb = *ss.rdbuf();
    const auto bad = std::streampos(std::streamoff(-1));
    EXPECT_EQ(sb.pubseekoff(1, std::ios_base::cur), bad) << "cur needs one of in and out";
    EXPECT_EQ(sb.pubseekoff(-1, std::ios_base::beg, std::ios_base::in), bad);
    EXPECT_EQ(sb.pubseekoff(std::numeric_limits<std::streamoff>::min(), std::ios_base::end), bad);
    EXPECT_EQ(sb.pubseekoff(std::numeric_limits<std::streamoff>::max(), std::ios_base::cur,
                            std::ios_base::out),
              bad);
    EXPECT_EQ(sb.pubseekpos(6), std::streampos(6));
    EXPECT_EQ(sb.pubseekoff(0, std::ios_base::beg, std::ios_base::openmode{}), bad);
}

TEST(Streambuf, PutbackOnlyOfWhatWasRead) {
    checked_pool p;
    istream is(p.pool, "ab");
    EXPECT_EQ(is.get(), 'a');
    EXPECT_TRUE(is.unget());
    EXPECT_EQ(is.get(), 'a');
    EXPECT_TRUE(is.putback('a'));
    EXPECT_EQ(is.get(), 'a');
    is.putback('z');
    EXPECT_TRUE(is.bad()) << "a putback never changes the contents";
    EXPECT_EQ(is.view(), "ab");
}

TEST(Streambuf, ClearKeepsStorageAndShrinkGivesItBack) {
    checked_pool p;
    ostream os(p.pool);
    os << std::string(10000, 'x');
    const std::size_t cap = os.rdbuf()->capacity();
    os.reset();
    EXPECT_TRUE(os.view().empty());
    EXPECT_EQ(os.rdbuf()->capacity(), cap);
    os << "short";
    EXPECT_EQ(os.view(), "short");
    os.rdbuf()->shrink_to_fit();
    EXPECT_EQ(os.view(), "short");
    EXPECT_EQ(os.rdbuf()->capacity(), p.pool.block_size(5, 1));
    EXPECT_EQ(p.pool.live_bytes(), os.rdbuf()->capacity());
    os.reset();
    os.rdbuf()->shrink_to_fit();
    EXPECT_EQ(os.rdbuf()->capacity(), 0u);
    EXPECT_EQ(p.pool.live_bytes(), 0u);
    os << "again";
    EXPECT_EQ(os.view(), "again");
}

TEST(Streambuf, WritesMayComeFromTheBufferItself) {
    checked_pool p;
    streambuf sb(p.pool);
    sb.assign("0123456789");
    for (int i = 0; i < 8; ++i) {  // each doubling write reads from the storage it outgrows
        const std::string_view v = sb.view();
        ASSERT_EQ(sb.sputn(v.data(), static_cast<std::streamsize>(v.size())),
                  static_cast<std::streamsize>(v.size()));
    }
    EXPECT_EQ(sb.size(), 2560u);
    for (std::size_t i = 0; i < sb.size(); i += 10)
        ASSERT_EQ(sb.view().substr(i, 10), "0123456789");
    sb.assign(sb.view().substr(5, 7));
    EXPECT_EQ(sb.view(), "5678901");
}

TEST(Streambuf, WritesOfEveryShortLengthAreExact) {
    checked_pool p;
    streambuf sb(p.pool);
    std::string expected;
    const std::string source = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ";
    for (std::size_t len = 0; len <= 40; ++len) {
        ASSERT_EQ(sb.sputn(source.data(), static_cast<std::streamsize>(len)),
                  static_cast<std::streamsize>(len));
        expected.append(source, 0, len);
        ASSERT_EQ(sb.view(), expected) << len;
    }
}

TEST(Streambuf, OverlappingWriteAfterSeekingBack) {
    checked_pool p;
    stringstream ss(p.pool, "abcdefghij");
    ss.seekp(2);
    const std::string_view v = ss.view();
    ss.write(v.data(), 6);  // writes "abcdef" over "cdefgh": source and target overlap
    EXPECT_EQ(ss.view(), "ababcdefij");
    ss.seekp(0);
    ss.write(ss.view().data() + 3, 5);  // the other direction
    EXPECT_EQ(ss.view(), "bcdefdefij");
}

TEST(Streambuf, MovesAndSwaps) {
    checked_pool p;
    ostream a(p.pool);
    a << "first";
    ostream b(std::move(a));
    b << " second";
    EXPECT_EQ(b.view(), "first second");
    EXPECT_TRUE(a.view().empty());
    a << "reused";  // a moved-from stream is empty and usable
    EXPECT_EQ(a.view(), "reused");
    a.swap(b);
    EXPECT_EQ(a.view(), "first second");
    EXPECT_EQ(b.view(), "reused");
    b = std::move(a);
    EXPECT_EQ(b.view(), "first second");
    b << '!';
    EXPECT_EQ(b.view(), "first second!");

    static_assert(noexcept(a.swap(b)));
    static_assert(noexcept(std::declval<streambuf&>().swap(std::declval<streambuf&>())));

    streambuf s1(p.pool), s2(p.pool);
    s1.assign("one");
    s2 = std::move(s1);
    EXPECT_EQ(s2.view(), "one");
    EXPECT_TRUE(s1.view().empty());
    s1.swap(s2);
    EXPECT_EQ(s1.view(), "one");
}

TEST(Streambuf, AtTheCapAWriteSetsBadbitAndKeepsWhatWasWritten) {
    checked_pool p(capped(16 << 10, exhaustion::fail));
    ostream os(p.pool);
    const std::string chunk(1000, 'c');
    int written = 0;
    while (os << chunk)
        ++written;
    EXPECT_TRUE(os.bad());
    EXPECT_EQ(os.error(), errc::capacity_exceeded);
    EXPECT_EQ(os.view(), std::string(static_cast<std::size_t>(written) * 1000, 'c'));
    EXPECT_GE(written, 4) << "the stream used a real part of the cap";
    EXPECT_LE(p.pool.live_bytes(), p.pool.capacity());
    os.reset();
    EXPECT_TRUE(os.good());
    EXPECT_FALSE(os.error());
    os << "fits";
    EXPECT_EQ(os.view(), "fits");
}

TEST(Streambuf, WithExceptionsEnabledTheWriteThrowsThePoolsException) {
    checked_pool p(capped(8 << 10, exhaustion::fail));
    ostream os(p.pool);
    os.exceptions(std::ios_base::badbit);
    os << std::string(3000, 'a');
    try {
        os << std::string(6000, 'b');
        ADD_FAILURE() << "no exception";
    } catch (const capacity_exceeded& e) {
        EXPECT_EQ(e.code(), errc::capacity_exceeded);
    }
    EXPECT_TRUE(os.bad());
    EXPECT_EQ(os.view(), std::string(3000, 'a'));
}

TEST(Streambuf, WaitPolicyGivesUpWithTimedOut) {
    checked_pool p(capped(8 << 10, exhaustion::wait));
    void* const held = p.pool.allocate(5 << 10);  // leaves 3 KiB
    ostream os(p.pool);
    os << std::string(2000, 'a') << std::string(2000, 'b');  // the second needs 4 KiB: waits
    EXPECT_TRUE(os.bad());
    EXPECT_EQ(os.error(), errc::timed_out);
    EXPECT_EQ(os.view(), std::string(2000, 'a'));
    p.pool.deallocate(held, 5 << 10);
}

TEST(Streambuf, BypassLetsTheStreamGrowPastTheCap) {
    checked_pool p(capped(8 << 10, exhaustion::bypass));
    ostream os(p.pool);
    os << std::string(100000, 'a');
    EXPECT_TRUE(os.good());
    EXPECT_EQ(os.view().size(), 100000u);
    EXPECT_GE(p.pool.stats().bypasses, 1u);
}

TEST(Streambuf, NearTheCapGrowthFallsBackToWhatTheWriteNeeds) {
    // From 32 KiB, doubling needs 64 + 32 KiB live during the copy: over an 80 KiB cap; the block
    // that holds 33 KiB (the next class) fits beside the old one.
    checked_pool p(capped(80 << 10, exhaustion::fail));
    ostream os(p.pool);
    const std::string chunk(1024, 'k');
    for (int i = 0; i < 40; ++i)
        os << chunk;
    EXPECT_TRUE(os.good()) << os.error().message();
    const std::size_t next = p.pool.block_size(33 << 10, 1);
    ASSERT_LT(next, std::size_t{48} << 10) << "the test assumes a class between 32 and 48 KiB";
    EXPECT_EQ(os.rdbuf()->capacity(), next) << "just what was needed, not 1.5x or 2x";
    EXPECT_TRUE(os.view() == std::string(40 << 10, 'k'));  // not _EQ: 40 KiB of output
}

TEST(Streambuf, AGrowthThatFitsOnlyExactlySucceeds) {
    // 72 KiB: a 32 KiB block plus a 40 KiB one fit, and nothing larger does (1.5x, 48 KiB, would
    // need 80 KiB live during the copy).
    checked_pool p(capped(72 << 10, exhaustion::fail));
    ASSERT_EQ(p.pool.block_size(40 << 10, 1), std::size_t{40} << 10) << "40 KiB is a size class";
    ostream os(p.pool);
    os.rdbuf()->reserve(32 << 10);
    ASSERT_EQ(os.rdbuf()->capacity(), std::size_t{32} << 10);
    const std::string first(32 << 10, 'a'), more(8 << 10, 'b');
    os << first;
    ASSERT_TRUE(os.good());
    ASSERT_EQ(os.rdbuf()->capacity(), std::size_t{32} << 10) << "full, not grown yet";
    os << more;  // needs 40 KiB in total
    EXPECT_TRUE(os.good()) << os.error().message();
    EXPECT_FALSE(os.error());
    EXPECT_EQ(os.rdbuf()->capacity(), std::size_t{40} << 10);
    EXPECT_TRUE(os.view() == first + more);  // not _EQ: 40 KiB of output
    EXPECT_EQ(p.pool.live_bytes(), std::size_t{40} << 10) << "the old block went back";
}

TEST(Streambuf, TheDoubledBlockIsNeverWaitedFor) {
    // Under wait, neither the doubled block nor 1.5x fits beside the old 32 KiB one under 72 KiB:
    // the growth must not wait for either, but take the block it needs, which fits at once.
    pool_options o = capped(72 << 10, exhaustion::wait);
    o.backoff.max_elapsed = std::chrono::seconds(20);
    checked_pool p(o);
    ostream os(p.pool);
    os.rdbuf()->reserve(32 << 10);
    os << std::string(32 << 10, 'a');
    const auto start = std::chrono::steady_clock::now();
    os << 'b';
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10))
        << "the pool would have waited 20 s for the doubled block";
    EXPECT_TRUE(os.good()) << os.error().message();
    EXPECT_EQ(p.pool.stats().waits, 0u);
    EXPECT_EQ(os.view().size(), (32u << 10) + 1);
    EXPECT_EQ(os.view().back(), 'b');
}

TEST(Streambuf, GrowthPastAThirdOfTheCapStaysGeometric) {
    // Blocks above 4 KiB come from upstream at their exact size (as past the default 1 MiB). Under
    // 700 KiB, doubling 256 KiB needs 768 KiB live during the copy: from there on only a smaller
    // block fits. Growing to just what each 64-character write needs would reallocate (and copy
    // everything written) 1024 times on the way to 320 KiB.
    pool_options o = capped(700 << 10, exhaustion::fail);
    o.largest_pooled_block = 4 << 10;
    checked_pool p(o);
    ostream os(p.pool);
    const std::string piece(64, 'p');
    const std::uint64_t before = p.pool.stats().allocations;
    while (os.view().size() < (320u << 10) && os << piece) {
    }
    EXPECT_TRUE(os.good()) << os.error().message();
    const std::uint64_t growths = p.pool.stats().allocations - before;
    EXPECT_LE(growths, 14u) << "256 B doubling to 256 KiB is 11 blocks, then a bounded few";
    EXPECT_TRUE(os.view() == std::string(320 << 10, 'p'));  // not _EQ: 320 KiB of output
    EXPECT_EQ(p.pool.live_bytes(), os.rdbuf()->capacity()) << "the old blocks went back";
}

TEST(Streambuf, GrowthNearTheCapStillReachesHalfTheCap) {
    // The largest storage growth can reach: the new block and the old one fit together, so about
    // half the capacity. Taking more than the write needs must not make that any smaller.
    pool_options o = capped(700 << 10, exhaustion::fail);
    o.largest_pooled_block = 4 << 10;
    checked_pool p(o);
    ostream os(p.pool);
    const std::string piece(64, 'p');
    while (os << piece) {
    }
    EXPECT_EQ(os.error(), errc::capacity_exceeded);
    EXPECT_GE(os.view().size(), (350u << 10) - 64) << "half the capacity, to within one write";
}

TEST(Streambuf, AFailedReserveOrAssignKeepsTheContentsAndSetsError) {
    checked_pool p(capped(8 << 10, exhaustion::fail));
    streambuf sb(p.pool);
    sb.assign("abc");
    const std::size_t cap = sb.capacity();
    EXPECT_THROW(sb.reserve(16 << 10), capacity_exceeded);
    EXPECT_EQ(sb.view(), "abc");
    EXPECT_EQ(sb.capacity(), cap);
    EXPECT_EQ(sb.error(), errc::capacity_exceeded) << "error() is the one thing that changes";
    const std::string big(16 << 10, 'z');
    EXPECT_THROW(sb.assign(big), capacity_exceeded);
    EXPECT_EQ(sb.view(), "abc");
    EXPECT_EQ(sb.error(), errc::capacity_exceeded) << "not cleared by the failed assign";
    sb.assign("de");
    EXPECT_EQ(sb.view(), "de");
    EXPECT_FALSE(sb.error()) << "a successful assign clears it";
}

TEST(Streambuf, UpstreamFailureSetsBadbitWithOutOfMemory) {
    checked_pool p;
    p.upstream.fail_all(true);
    ostream os(p.pool);
    os << "x";
    EXPECT_TRUE(os.bad());
    EXPECT_EQ(os.error(), errc::out_of_memory);
    p.upstream.fail_all(false);
    os.reset();
    os << "x";
    EXPECT_EQ(os.view(), "x");
}

TEST(Streambuf, ImpossibleSizesFailCleanly) {
    // Through reserve: a write of that many characters would need a source array larger than
    // memory (passing a shorter one to write() is undefined behaviour).
    checked_pool p;
    basic_ostream<wchar_t> w(p.pool);
    w << L"ok";
    const std::size_t wide_cap = w.rdbuf()->capacity();
    // More characters than a pointer difference can count.
    constexpr std::size_t too_many =
        static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max()) / sizeof(wchar_t) + 1;
    EXPECT_THROW(w.rdbuf()->reserve(too_many), std::length_error);
    EXPECT_EQ(w.error(), errc::too_large);
    EXPECT_EQ(w.view(), L"ok");
    EXPECT_EQ(w.rdbuf()->capacity(), wide_cap);

    ostream n(p.pool);
    // Representable, but no pool can give it.
    const auto huge = static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max());
    EXPECT_THROW(n.rdbuf()->reserve(huge), std::bad_alloc);
    EXPECT_EQ(n.error(), errc::out_of_memory);
    EXPECT_TRUE(n.view().empty());
    EXPECT_EQ(n.rdbuf()->capacity(), 0u);
    n << "still usable";
    EXPECT_TRUE(n.good());
    EXPECT_EQ(n.view(), "still usable");
}

TEST(Streambuf, WideCharacters) {
    checked_pool p;
    basic_stringstream<wchar_t> ws(p.pool);
    ws << L"value " << 7;
    EXPECT_EQ(ws.view(), L"value 7");
    std::wstring word;
    int v = 0;
    ws >> word >> v;
    EXPECT_EQ(v, 7);
    EXPECT_EQ(p.pool.live_bytes(), ws.rdbuf()->capacity() * sizeof(wchar_t));
}

// The wide aliases are the wchar_t forms of the narrow ones, and behave as std's wide string
// streams: formatting, reading back, growth through the pool, contents and positions.
static_assert(std::is_same_v<wstreambuf, basic_streambuf<wchar_t>>);
static_assert(std::is_same_v<wostream, pool_stream<std::wostream>>);
static_assert(std::is_same_v<wistream, pool_stream<std::wistream>>);
static_assert(std::is_same_v<wstringstream, pool_stream<std::wiostream>>);
static_assert(std::is_base_of_v<std::wstreambuf, wstreambuf>);

TEST(Streambuf, WideAliases) {
    checked_pool p;
    wostream os(p.pool);
    for (int i = 0; i < 1000; ++i)
        os << L"line " << i << L'\n';
    ASSERT_TRUE(os.good());
    EXPECT_TRUE(os.view().starts_with(L"line 0\nline 1\n"));
    EXPECT_TRUE(os.view().ends_with(L"line 999\n"));
    EXPECT_EQ(p.pool.live_bytes(), os.rdbuf()->capacity() * sizeof(wchar_t)) << "one block";
    const std::wstring copy = os.str();
    EXPECT_EQ(copy, os.view());

    wistream is(p.pool, L"12 wide words");
    int n = 0;
    std::wstring first, second;
    EXPECT_TRUE(is >> n >> first >> second);
    EXPECT_EQ(n, 12);
    EXPECT_EQ(second, L"words");

    wstringstream ss(static_cast<std::pmr::memory_resource*>(&p.pool), L"x=");
    ss.seekp(0, std::ios_base::end);
    ss << 3.5;
    EXPECT_EQ(ss.view(), L"x=3.5");
    wchar_t c = 0;
    EXPECT_TRUE(ss >> c);
    EXPECT_EQ(c, L'x');

    wstreambuf sb(p.pool);
    EXPECT_EQ(sb.sputn(L"abc", 3), 3);
    EXPECT_EQ(sb.view(), L"abc");
    ss.reset();
    EXPECT_TRUE(ss.view().empty());
}

TEST(Streambuf, ThreadsEachWithAStreamOnOnePool) {
    checked_pool p;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&p, t] {
            ostream os(p.pool);
            for (int i = 0; i < 5000; ++i)
                os << t << ':' << i << '\n';
            istream is(p.pool, os.view());
            int tt = 0, i = 0;
            char colon = 0;
            int lines = 0;
            while (is >> tt >> colon >> i) {
                EXPECT_EQ(tt, t);
                EXPECT_EQ(i, lines++);
            }
            EXPECT_EQ(lines, 5000);
        });
    }
    for (auto& t : threads)
        t.join();
}

}  // namespace
}  // namespace bpool
