// bpool/adapters/allocator.hpp: bpool::allocator<T> meets the allocator requirements, works with
// the std containers, std::allocate_shared and over-aligned types, propagates as documented, and
// surfaces a capped pool's exhaustion; allocate_unique, and the pool strings as unordered keys.
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <memory_resource>
#include <new>
#include <scoped_allocator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <bpool/adapters/allocator.hpp>
#include <bpool/adapters/pmr.hpp>
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

// --- allocate_unique ----------------------------------------------------------------------------

static_assert(sizeof(allocator_unique_ptr<int>) == 2 * sizeof(void*), "the deleter is one pointer");
static_assert(std::is_nothrow_default_constructible_v<allocator_unique_ptr<int>>);
struct base {
    virtual ~base() = default;
};
struct derived : base {
    long more = 0;
};
static_assert(!std::is_convertible_v<allocator_unique_ptr<derived>, allocator_unique_ptr<base>>,
              "a derived object must be given back with its own size");

TEST(AllocateUnique, FromAPoolAnAllocatorOrAnyResource) {
    checked_pool p;
    {
        allocator_unique_ptr<std::string> a = allocate_unique<std::string>(p.pool, long_string(1));
        const allocator<double> doubles(p.pool);
        auto b = allocate_unique<std::pair<int, long>>(doubles, 3, 4L);  // rebound to the pair
        EXPECT_EQ(*a, long_string(1));
        EXPECT_EQ(b->first + b->second, 7);
        EXPECT_TRUE(p.pool.owns(a.get()));
        EXPECT_TRUE(p.pool.owns(b.get()));
        EXPECT_EQ(a.get_deleter().get_allocator().resource(), &p.pool);
        EXPECT_EQ(b.get_deleter().get_allocator(), doubles);
        a.reset();
        EXPECT_TRUE(p.pool.owns(b.get()));
        allocator_unique_ptr<std::pair<int, long>> moved = std::move(b);
        EXPECT_EQ(moved->first, 3);
    }
    counting_resource counting;
    {
        auto c = allocate_unique<std::uint64_t>(counting, 42u);
        EXPECT_EQ(*c, 42u);
        EXPECT_EQ(counting.live_bytes(), sizeof(std::uint64_t));
    }
    EXPECT_EQ(counting.live_bytes(), 0u) << "deleted through the same resource";
    EXPECT_EQ(counting.mismatches(), 0u);
}

TEST(AllocateUnique, OverAlignedTypes) {
    checked_pool p;
    auto line = allocate_unique<cache_line>(p.pool);
    auto big = allocate_unique<page>(allocator<int>(p.pool));
    EXPECT_TRUE(aligned(line.get(), 64));
    EXPECT_TRUE(aligned(big.get(), 4096));
}

TEST(AllocateUnique, AThrowingConstructorGivesTheMemoryBack) {
    struct throws_on_build {
        explicit throws_on_build(int) { throw std::runtime_error("no"); }
    };
    checked_pool p;
    EXPECT_THROW((void)allocate_unique<throws_on_build>(p.pool, 1), std::runtime_error);
    EXPECT_EQ(p.pool.live_bytes(), 0u) << "the storage went back before the exception left";
    counting_resource counting;
    EXPECT_THROW((void)allocate_unique<throws_on_build>(counting, 1), std::runtime_error);
    EXPECT_EQ(counting.live_bytes(), 0u);
}

TEST(AllocateUnique, AtTheCapThrowsAndAllocatesNothing) {
    checked_pool p(capped(16 << 10, exhaustion::fail));
    struct big {
        unsigned char bytes[20000];
    };
    EXPECT_THROW((void)allocate_unique<big>(p.pool), capacity_exceeded);
    EXPECT_EQ(p.pool.live_bytes(), 0u);
}

// As a container of bpool::allocator constructs its elements: a pmr-aware object is not given the
// pool (make_pmr_unique is the one that does).
TEST(AllocateUnique, DoesNotPassThePoolToTheObject) {
    checked_pool p;
    counting_resource fallback;
    const scoped_default_resource defaulted(fallback);
    auto s = allocate_unique<std::pmr::string>(p.pool, long_string(2));
    EXPECT_EQ(s->get_allocator().resource(), &fallback);
    EXPECT_TRUE(p.pool.owns(s.get()));
    s.reset();
    EXPECT_EQ(fallback.live_bytes(), 0u);
}

// --- the pool's strings as keys ---------------------------------------------------------------

static_assert(std::is_same_v<string, bstring>);
static_assert(std::is_same_v<
              wstring, std::basic_string<wchar_t, std::char_traits<wchar_t>, allocator<wchar_t>>>);
static_assert(std::is_nothrow_invocable_v<std::hash<string>, const string&>);

// Each hashes as std::hash of its string view, as std's strings do (with any resource).
template <class CharT>
void expect_hashes_like_a_view(std::pmr::memory_resource& pool, const CharT* text) {
    using pool_string = basic_string<CharT>;
    const pool_string s(text, allocator<CharT>(&pool));
    const std::basic_string_view<CharT> view(text);
    EXPECT_EQ(std::hash<pool_string>{}(s), std::hash<std::basic_string_view<CharT>>{}(view));
    EXPECT_EQ(std::hash<pool_string>{}(s), std::hash<std::basic_string<CharT>>{}(view.data()));
}

TEST(PoolStrings, HashLikeTheirViews) {
    checked_pool p;
    expect_hashes_like_a_view<char>(p.pool,
                                    "a key long enough to live in the pool, not in the string");
    expect_hashes_like_a_view<wchar_t>(p.pool, L"a wide key");
    expect_hashes_like_a_view<char8_t>(p.pool, u8"a UTF-8 key");
    expect_hashes_like_a_view<char16_t>(p.pool, u"a UTF-16 key");
    expect_hashes_like_a_view<char32_t>(p.pool, U"a UTF-32 key");
    EXPECT_NE(std::hash<string>{}(string("a", p.pool)), std::hash<string>{}(string("b", p.pool)));
}

TEST(PoolStrings, KeyUnorderedContainers) {
    checked_pool p;
    {
        // Keys and nodes both in the pool.
        std::unordered_map<string, int, std::hash<string>, std::equal_to<>,
                           allocator<std::pair<const string, int>>>
            counts(p.pool);
        for (int i = 0; i < 500; ++i)
            counts[string(long_string(i % 100).c_str(), p.pool)] += 1;
        EXPECT_EQ(counts.size(), 100u);
        EXPECT_EQ(counts.at(string(long_string(7).c_str(), p.pool)), 5);
        std::unordered_set<wstring> wide;  // the default node allocator, keys in the pool
        wide.emplace(L"first", p.pool);
        wide.emplace(L"second", p.pool);
        wide.emplace(L"first", p.pool);
        EXPECT_EQ(wide.size(), 2u);
        EXPECT_EQ(wide.count(wstring(L"second", p.pool)), 1u);
        EXPECT_GT(p.pool.live_blocks(), 100u);
    }
    EXPECT_EQ(p.pool.live_bytes(), 0u);
}

}  // namespace
}  // namespace bpool
