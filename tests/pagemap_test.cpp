// Layer 3: the pagemap, driven directly. Most addresses here are integers cast to pointers: the map
// indexes its tables by them and never dereferences them.
#include "pages/pagemap.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "meta/meta.hpp"

namespace bpool::detail {
namespace {

constexpr std::uintptr_t gib = std::uintptr_t{1} << 30;
constexpr std::uintptr_t region_a = 0x7f0000000000;  // in different GiB regions (leaves)
constexpr std::uintptr_t region_b = 0x100000000000;

const void* at(std::uintptr_t addr) {
    return reinterpret_cast<const void*>(addr);
}

TEST(Pagemap, LeafCoversOneGiBAndTablesAreTwoMiB) {
    EXPECT_EQ(pagemap::leaf_entries * page_size, gib);
    EXPECT_EQ(pagemap::table_bytes, std::size_t{2} << 20);
    EXPECT_EQ(pagemap::root_bits + pagemap::leaf_bits + page_shift, 48u);
}

TEST(Pagemap, EmptyMapFindsNothingAnywhere) {
    pagemap map;
    EXPECT_EQ(map.mapped_bytes(), 0u) << "nothing is mapped before init()";
    map.init();
    EXPECT_EQ(map.mapped_bytes(), pagemap::table_bytes) << "init() maps the root only";
    int local = 0;
    auto heap = std::make_unique<int>(0);
    const void* probes[] = {nullptr,
                            &local,
                            heap.get(),
                            at(region_a),
                            at(region_b),
                            at((std::uintptr_t{1} << 48) - 1),
                            at(std::uintptr_t{1} << 48),
                            at(std::uintptr_t{1} << 63),
                            at(~std::uintptr_t{0})};
    for (const void* p : probes) {
        const page_entry e = map.find(p);
        EXPECT_EQ(e.word, 0u) << p;
        EXPECT_EQ(e.kind(), page_kind::none) << p;
        EXPECT_EQ(e.record<void>(), nullptr) << p;
    }
}

// An address past 48 bits whose low 48 bits name a mapped page is no page of the map: the lookup
// tells it by its root index, never by aliasing it onto the page.
TEST(Pagemap, AnAddressPast48BitsNeverAliasesAMappedPage) {
    pagemap map;
    map.init();
    ASSERT_TRUE(map.reserve(at(region_a), page_size));
    map.set(at(region_a), page_entry::make(page_kind::chunk, at(0x1000), 7, 0));
    ASSERT_EQ(map.find(at(region_a)).cls(), 7u);
    for (const unsigned bit : {48u, 50u, 56u, 63u}) {
        const page_entry e = map.find(at(region_a | (std::uintptr_t{1} << bit)));
        EXPECT_EQ(e.word, 0u) << "bit " << bit;
    }
}

TEST(Pagemap, RoundTripsEveryFieldOfAnEntry) {
    pagemap map;
    map.init();
    // One page per (class, page index) pair: 60 * 256 pages, all in one leaf.
    const std::uintptr_t base = region_a;
    ASSERT_TRUE(map.reserve(at(base), std::size_t{class_count} * 256 * page_size));
    ASSERT_EQ(map.mapped_bytes(), 2 * pagemap::table_bytes) << "one leaf holds them all";
    const std::uintptr_t records[] = {0x10, 0x123456789ab0, 0xfffffffffff0, region_b + 0x40};
    const page_kind kinds[] = {page_kind::chunk, page_kind::bypass_chunk, page_kind::direct};
    auto page_of = [&](unsigned cls, unsigned page) {
        return base + (std::uintptr_t{cls} * 256 + page) * page_size;
    };
    auto record_of = [&](unsigned cls, unsigned page) { return records[(cls + page) % 4]; };
    auto kind_of = [&](unsigned cls, unsigned page) { return kinds[(cls * 7 + page) % 3]; };
    for (unsigned cls = 0; cls < class_count; ++cls)
        for (unsigned page = 0; page < 256; ++page)
            map.set(at(page_of(cls, page)),
                    page_entry::make(kind_of(cls, page), at(record_of(cls, page)), cls, page));
    for (unsigned cls = 0; cls < class_count; ++cls) {
        for (unsigned page = 0; page < 256; ++page) {
            const std::uintptr_t p = page_of(cls, page);
            // Any address of the page finds its entry: its first byte, one inside, its last.
            for (const std::uintptr_t addr : {p, p + 1000, p + page_size - 1}) {
                const page_entry e = map.find(at(addr));
                ASSERT_EQ(e.kind(), kind_of(cls, page)) << cls << "/" << page;
                ASSERT_EQ(e.cls(), cls);
                ASSERT_EQ(e.page(), page);
                ASSERT_EQ(e.record<void>(), at(record_of(cls, page)));
                ASSERT_EQ(e.chunk_offset(at(addr)), page * page_size + (addr - p));
            }
        }
    }
    // The pages around the range were never set.
    EXPECT_EQ(map.find(at(base - 1)).word, 0u);
    EXPECT_EQ(map.find(at(page_of(class_count - 1, 255) + page_size)).word, 0u);
}

TEST(Pagemap, ClearEmptiesOnlyThatPage) {
    pagemap map;
    map.init();
    const std::uintptr_t base = region_b;
    ASSERT_TRUE(map.reserve(at(base), 3 * page_size));
    for (unsigned i = 0; i < 3; ++i)
        map.set(at(base + i * page_size), page_entry::make(page_kind::chunk, at(0x1000), 5, i));
    map.clear(at(base + page_size + 123));  // any address of the page clears it
    EXPECT_EQ(map.find(at(base + page_size)).kind(), page_kind::none);
    EXPECT_EQ(map.find(at(base + page_size)).word, 0u);
    EXPECT_EQ(map.find(at(base)).kind(), page_kind::chunk);
    EXPECT_EQ(map.find(at(base)).page(), 0u);
    EXPECT_EQ(map.find(at(base + 2 * page_size)).kind(), page_kind::chunk);
    EXPECT_EQ(map.find(at(base + 2 * page_size)).page(), 2u);
    // A cleared page can be set again.
    map.set(at(base + page_size), page_entry::make(page_kind::direct, at(0x2000), 0, 0));
    EXPECT_EQ(map.find(at(base + page_size)).kind(), page_kind::direct);
    EXPECT_EQ(map.find(at(base + page_size)).record<void>(), at(0x2000));
}

TEST(Pagemap, ReserveMapsOneLeafPerGiBRegionOnce) {
    pagemap map;
    map.init();
    const std::size_t t = pagemap::table_bytes;
    ASSERT_EQ(map.mapped_bytes(), t);
    ASSERT_TRUE(map.reserve(at(region_a), page_size));
    EXPECT_EQ(map.mapped_bytes(), 2 * t) << "a leaf for region a";
    ASSERT_TRUE(map.reserve(at(region_a), page_size));
    ASSERT_TRUE(map.reserve(at(region_a + 100 * page_size), 50 * page_size));
    ASSERT_TRUE(map.reserve(at(region_a + gib - page_size), page_size));
    EXPECT_EQ(map.mapped_bytes(), 2 * t) << "the same GiB region: no new leaf";
    ASSERT_TRUE(map.reserve(at(region_b), page_size));
    EXPECT_EQ(map.mapped_bytes(), 3 * t) << "a leaf for region b";
    // A range across a GiB boundary needs the leaves on both sides.
    const std::uintptr_t boundary = region_b + 4 * gib;
    ASSERT_TRUE(map.reserve(at(boundary - page_size), 2 * page_size));
    EXPECT_EQ(map.mapped_bytes(), 5 * t);
    // Nothing to reserve, or nothing a 48-bit map can hold: no leaf.
    EXPECT_TRUE(map.reserve(at(region_b + 8 * gib), 0));
    EXPECT_FALSE(map.reserve(at(std::uintptr_t{1} << 48), page_size));
    EXPECT_FALSE(map.reserve(at((std::uintptr_t{1} << 48) - page_size), 2 * page_size));
    EXPECT_EQ(map.mapped_bytes(), 5 * t);

    // The regions are independent: an entry in one is not seen in the other.
    map.set(at(region_b), page_entry::make(page_kind::chunk, at(0x40), 3, 0));
    EXPECT_EQ(map.find(at(region_b)).kind(), page_kind::chunk);
    EXPECT_EQ(map.find(at(region_a)).kind(), page_kind::none);
    EXPECT_EQ(map.find(at(region_b + gib)).kind(), page_kind::none) << "same index, next leaf";
    // Reserving a leaf again keeps what it holds.
    ASSERT_TRUE(map.reserve(at(region_b), 16 * page_size));
    EXPECT_EQ(map.find(at(region_b)).cls(), 3u);
    // Both sides of the boundary are usable.
    map.set(at(boundary - 1), page_entry::make(page_kind::direct, at(0x80), 1, 0));
    map.set(at(boundary), page_entry::make(page_kind::chunk, at(0x80), 2, 1));
    EXPECT_EQ(map.find(at(boundary - page_size)).kind(), page_kind::direct);
    EXPECT_EQ(map.find(at(boundary)).cls(), 2u);
}

TEST(Pagemap, ConcurrentReserveOfOneRegionMapsOneLeaf) {
    constexpr unsigned threads = 8;
    constexpr unsigned rounds = 16;
    pagemap map;
    map.init();
    for (unsigned round = 0; round < rounds; ++round) {
        const std::uintptr_t region = region_a + round * gib;
        const std::size_t before = map.mapped_bytes();
        const std::size_t meta_before = meta::mapped_bytes();
        std::atomic<unsigned> ready{0};
        std::atomic<unsigned> failed{0};
        std::vector<std::thread> pool;
        for (unsigned t = 0; t < threads; ++t) {
            pool.emplace_back([&, t] {
                ready.fetch_add(1);
                while (ready.load() < threads)
                    std::this_thread::yield();
                if (!map.reserve(at(region + t * page_size), page_size)) failed.fetch_add(1);
            });
        }
        for (std::thread& th : pool)
            th.join();
        ASSERT_EQ(failed.load(), 0u);
        ASSERT_EQ(map.mapped_bytes(), before + pagemap::table_bytes) << "round " << round;
        // The threads that lost the race gave their leaves back (a small region for the leaves'
        // list nodes may have been mapped meanwhile, under one table's size).
        EXPECT_LT(meta::mapped_bytes() - meta_before, 2 * pagemap::table_bytes);
        // The leaf that won is the one every thread's page is entered in.
        for (unsigned t = 0; t < threads; ++t)
            map.set(at(region + t * page_size), page_entry::make(page_kind::chunk, at(0x40), t, 0));
        for (unsigned t = 0; t < threads; ++t)
            ASSERT_EQ(map.find(at(region + t * page_size)).cls(), t);
    }
}

TEST(Pagemap, DestroyGivesEveryTableBack) {
    const std::size_t t = pagemap::table_bytes;
    pagemap map;
    map.init();
    ASSERT_TRUE(map.reserve(at(region_a), page_size));
    ASSERT_TRUE(map.reserve(at(region_b), page_size));
    ASSERT_TRUE(map.reserve(at(region_b + gib), page_size));
    map.set(at(region_a), page_entry::make(page_kind::chunk, at(0x40), 1, 0));
    ASSERT_EQ(map.mapped_bytes(), 4 * t);
    const std::size_t meta_mapped = meta::mapped_bytes();
    map.destroy();
    EXPECT_EQ(map.mapped_bytes(), 0u);
    EXPECT_EQ(meta_mapped - meta::mapped_bytes(), 4 * t) << "the root and three leaves unmapped";
    map.destroy();  // a second destroy does nothing
    EXPECT_EQ(map.mapped_bytes(), 0u);
    EXPECT_EQ(meta_mapped - meta::mapped_bytes(), 4 * t);

    // The map can be used again, and starts empty.
    map.init();
    EXPECT_EQ(map.mapped_bytes(), t);
    EXPECT_EQ(map.find(at(region_a)).word, 0u);
    ASSERT_TRUE(map.reserve(at(region_a), page_size));
    EXPECT_EQ(map.mapped_bytes(), 2 * t) << "the old leaf is gone: region a needs a new one";
    EXPECT_EQ(map.find(at(region_a)).word, 0u);
}

TEST(Pagemap, DestructorGivesEveryTableBack) {
    const std::size_t meta_before = meta::mapped_bytes();
    {
        pagemap map;
        map.init();
        ASSERT_TRUE(map.reserve(at(region_a), page_size));
        ASSERT_TRUE(map.reserve(at(region_b), page_size));
        ASSERT_GE(meta::mapped_bytes() - meta_before, 3 * pagemap::table_bytes);
    }
    // Leaf list nodes come from a small region that stays mapped; the tables do not.
    EXPECT_LT(meta::mapped_bytes() - meta_before, pagemap::table_bytes);
}

}  // namespace
}  // namespace bpool::detail
