// bpool/adapters/allocator.hpp: bpool::allocator<T> meets the allocator requirements, works with
// the std containers, std::allocate_shared and over-aligned types, propagates as documented, and
// surfaces a capped pool's exhaustion.
#include <cstdint>
#include <list>
#include <memory>
#include <new>
#include <scoped_allocator>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <bpool/adapters/allocator.hpp>
#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "adapter_support.hpp"

namespace bpool {
namespace {

using test::aligned;
using test::capped;
using test::checked_pool;
using test::counting_resource;
using test::long_string;

template <class T>
using vec = std::vector<T, allocator<T>>;
using bstring = std::basic_string<char, std::char_traits<char>, allocator<char>>;

// The allocator requirements and the documented choices, checked at compile time.
using traits = std::allocator_traits<allocator<int>>;
static_assert(std::is_same_v<traits::value_type, int>);
static_assert(std::is_same_v<traits::pointer, int*>);
static_assert(std::is_same_v<traits::size_type, std::size_t>);
static_assert(std::is_same_v<traits::rebind_alloc<double>, allocator<double>>);
static_assert(traits::propagate_on_container_copy_assignment::value);
static_assert(traits::propagate_on_container_move_assignment::value);
static_assert(traits::propagate_on_container_swap::value);
static_assert(!traits::is_always_equal::value);
static_assert(std::is_nothrow_copy_constructible_v<allocator<int>>);
static_assert(std::is_nothrow_move_constructible_v<allocator<int>>);
static_assert(std::is_nothrow_constructible_v<allocator<int>, const allocator<double>&>);
static_assert(std::is_nothrow_default_constructible_v<allocator<int>>, "substr needs it");
static_assert(std::is_convertible_v<pool_resource&, allocator<int>>);
static_assert(std::is_constructible_v<allocator<int>, std::pmr::memory_resource*>);
static_assert(!std::is_convertible_v<std::pmr::memory_resource*, allocator<int>>, "explicit");
static_assert(std::is_same_v<decltype(traits::select_on_container_copy_construction(
                                 std::declval<const allocator<int>&>())),
                             allocator<int>>);

struct alignas(64) cache_line {
    std::uint64_t words[8];
};
struct alignas(4096) page {
    unsigned char bytes[4096];
};

TEST(Allocator, EqualityIsTheSameResourceAcrossRebinds) {
    checked_pool a, b;
    const allocator<int> ai(a.pool);
    const allocator<double> ad(ai);
    EXPECT_EQ(ad.resource(), &a.pool);
    EXPECT_TRUE(ai == ad);
    EXPECT_TRUE(ad == ai);
    EXPECT_FALSE(ai != ad);
    EXPECT_TRUE(ai != allocator<int>(b.pool));
    EXPECT_TRUE(allocator<int>(std::pmr::new_delete_resource()) ==
                allocator<long>(std::pmr::new_delete_resource()));
}

TEST(Allocator, DefaultConstructedUsesTheDefaultResource) {
    EXPECT_EQ(allocator<int>().resource(), std::pmr::get_default_resource());
    checked_pool p;
    const bstring s(long_string(5).c_str(), p.pool);
    const bstring sub = s.substr(2, 30);  // allocated with a default-constructed allocator
    EXPECT_EQ(sub, long_string(5).substr(2, 30).c_str());
}

TEST(Allocator, NullResourceIsRejected) {
    EXPECT_THROW((void)allocator<int>(static_cast<std::pmr::memory_resource*>(nullptr)),
                 std::invalid_argument);
}

TEST(Allocator, AllocatesFromAnyResource) {
    counting_resource counting;
    {
        const allocator<int> alloc(&counting);
        vec<int> v(alloc);
        v.assign(100, 3);
        EXPECT_GE(counting.live_bytes(), 100 * sizeof(int));
    }
    EXPECT_EQ(counting.live_bytes(), 0u);
    EXPECT_EQ(counting.mismatches(), 0u);
}

TEST(Allocator, StdContainers) {
    checked_pool p;
    {
        vec<int> v(p.pool);
        bstring s(p.pool);
        std::list<int, allocator<int>> l(p.pool);
        std::unordered_map<int, int, std::hash<int>, std::equal_to<>,
                           allocator<std::pair<const int, int>>>
            m(p.pool);
        for (int i = 0; i < 3000; ++i) {
            v.push_back(i);
            s += static_cast<char>('a' + i % 26);
            l.push_front(i);
            m.emplace(i, -i);
        }
        EXPECT_EQ(v[2999], 2999);
        EXPECT_EQ(s.substr(0, 3), "abc");
        EXPECT_EQ(l.front(), 2999);
        EXPECT_EQ(m.at(1234), -1234);
        EXPECT_EQ(m.get_allocator().resource(), &p.pool);
        EXPECT_GT(p.pool.live_blocks(), 3000u * 2) << "list and map nodes are pool blocks";
    }
    EXPECT_EQ(p.pool.live_bytes(), 0u);
}

TEST(Allocator, AllocateShared) {
    checked_pool p;
    {
        auto sp = std::allocate_shared<std::string>(allocator<std::string>(p.pool), long_string(3));
        EXPECT_EQ(*sp, long_string(3));
        EXPECT_EQ(p.pool.live_blocks(), 1u) << "one block: control block and object together";
        std::shared_ptr<std::string> copy = sp;
        sp.reset();
        EXPECT_EQ(p.pool.live_blocks(), 1u);
    }
    EXPECT_EQ(p.pool.live_bytes(), 0u);
}

TEST(Allocator, OverAlignedTypes) {
    checked_pool p;
    {
        vec<cache_line> lines(p.pool);
        std::list<page, allocator<page>> pages(p.pool);
        for (int i = 0; i < 100; ++i) {
            lines.push_back({{static_cast<std::uint64_t>(i)}});
            ASSERT_TRUE(aligned(lines.data(), 64));
            pages.emplace_back();
            ASSERT_TRUE(aligned(&pages.back(), 4096));
        }
        EXPECT_EQ(lines[77].words[0], 77u);
        allocator<page> a(p.pool);
        page* one = a.allocate(3);
        EXPECT_TRUE(aligned(one, 4096));
        a.deallocate(one, 3);
    }
    EXPECT_EQ(p.upstream.misaligned(), 0u);
}

TEST(Allocator, SizeOverflowThrowsInsteadOfWrapping) {
    checked_pool p;
    allocator<cache_line> a(p.pool);
    // volatile: the compiler would otherwise refuse to compile an allocation it knows is absurd.
    volatile std::size_t too_many = allocator<cache_line>::max_size() + 1;
    EXPECT_THROW((void)a.allocate(too_many), std::bad_array_new_length);
    volatile std::size_t absurd = allocator<cache_line>::max_size();
    EXPECT_THROW((void)a.allocate(absurd), std::bad_alloc);
    EXPECT_EQ(p.pool.live_bytes(), 0u);
}

TEST(Allocator, CopyConstructionKeepsThePool) {
    checked_pool p;
    vec<int> a(p.pool);
    a.assign(10, 1);
    vec<int> b(a);
    EXPECT_TRUE(b.get_allocator() == a.get_allocator());
    EXPECT_EQ(b.get_allocator().resource(), &p.pool);
}

TEST(Allocator, CopyAssignmentTakesTheSourcesPool) {
    checked_pool pa, pb;
    vec<int> a(pa.pool), b(pb.pool);
    a.assign(1000, 1);
    b.assign(10, 2);
    a = b;
    EXPECT_EQ(a.get_allocator().resource(), &pb.pool);
    EXPECT_EQ(a.size(), 10u);
    EXPECT_EQ(pa.pool.live_bytes(), 0u) << "a's old storage went back to its pool";
}

TEST(Allocator, MoveAssignmentAndSwapAreO1AcrossPools) {
    checked_pool pa, pb;
    vec<int> a(pa.pool), b(pb.pool);
    a.assign(1000, 1);
    b.assign(10, 2);
    const int* const a_data = a.data();
    const std::size_t allocations = pa.pool.stats().allocations + pb.pool.stats().allocations;
    std::swap(a, b);  // defined: the allocators are swapped with the contents
    EXPECT_EQ(b.data(), a_data);
    EXPECT_EQ(b.get_allocator().resource(), &pa.pool);
    EXPECT_EQ(a.get_allocator().resource(), &pb.pool);
    a = std::move(b);  // steals the storage with its allocator
    EXPECT_EQ(a.data(), a_data);
    EXPECT_EQ(a.get_allocator().resource(), &pa.pool);
    EXPECT_EQ(pa.pool.stats().allocations + pb.pool.stats().allocations, allocations)
        << "nothing allocated";
    EXPECT_EQ(pb.pool.live_bytes(), 0u);
    EXPECT_EQ(a.size(), 1000u);
}

TEST(Allocator, ScopedAllocatorAdaptorPassesThePoolInward) {
    checked_pool p;
    using outer = std::scoped_allocator_adaptor<allocator<bstring>>;
    const outer alloc(p.pool);
    std::vector<bstring, outer> names(alloc);
    for (int i = 0; i < 100; ++i)
        names.emplace_back(long_string(i));
    EXPECT_EQ(names[42].get_allocator().resource(), &p.pool);
    EXPECT_EQ(names[42], long_string(42).c_str());
}

TEST(Allocator, GrowthAtTheCapThrowsAndLeavesTheContainerUnchanged) {
    checked_pool p(capped(32 << 10, exhaustion::fail));
    vec<std::uint64_t> v(p.pool);
    std::size_t pushed = 0;
    EXPECT_THROW(
        {
            for (;; ++pushed)
                v.push_back(pushed);
        },
        capacity_exceeded);
    ASSERT_EQ(v.size(), pushed);
    for (std::size_t i = 0; i < pushed; ++i)
        ASSERT_EQ(v[i], i);
    EXPECT_LE(p.pool.live_bytes(), p.pool.capacity());
    struct big {
        unsigned char bytes[20000];
    };
    EXPECT_THROW((void)std::allocate_shared<big>(allocator<big>(p.pool)), capacity_exceeded);
}

TEST(Allocator, BypassServesPastTheCapAndAccountsExactly) {
    checked_pool p(capped(8 << 10, exhaustion::bypass));
    {
        vec<int> v(p.pool);
        v.assign(10000, 5);  // 40 KB: past the cap, served from upstream
        EXPECT_EQ(v[9999], 5);
        EXPECT_GE(p.pool.stats().bypasses, 1u);
    }
    EXPECT_EQ(p.pool.stats().bypass_live_bytes, 0u);
}

TEST(Allocator, ThreadsShareAPoolAndFreeEachOthersBlocks) {
    checked_pool p;
    std::vector<std::shared_ptr<std::string>> made(8);
    {
        std::vector<std::thread> threads;
        for (std::size_t t = 0; t < made.size(); ++t) {
            threads.emplace_back([&, t] {
                vec<int> v(p.pool);
                for (int i = 0; i < 2000; ++i)
                    v.push_back(i);
                EXPECT_EQ(v[1999], 1999);
                made[t] = std::allocate_shared<std::string>(allocator<std::string>(p.pool),
                                                            long_string(static_cast<int>(t)));
            });
        }
        for (auto& t : threads)
            t.join();
    }
    std::thread freer([&] { made.clear(); });  // freed by another thread than the allocating one
    freer.join();
}

}  // namespace
}  // namespace bpool
