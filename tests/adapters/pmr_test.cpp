// bpool/adapters/pmr.hpp and std::pmr containers over a pool: scoped_default_resource,
// make_pmr_unique, nested allocator propagation, and exhaustion at a capped pool's limit.
#include <deque>
#include <list>
#include <map>
#include <memory_resource>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <bpool/adapters/pmr.hpp>
#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "adapter_support.hpp"

namespace bpool {
namespace {

using test::capped;
using test::checked_pool;
using test::long_string;

TEST(ScopedDefaultResource, SetsAndRestoresTheDefault) {
    checked_pool p;
    std::pmr::memory_resource* const before = std::pmr::get_default_resource();
    {
        scoped_default_resource scope(p.pool);
        EXPECT_EQ(std::pmr::get_default_resource(), &p.pool);
        EXPECT_EQ(scope.previous(), before);
        std::pmr::vector<int> v;  // default-constructed: takes the default resource
        v.assign(1000, 7);
        EXPECT_EQ(v.get_allocator().resource(), &p.pool);
        EXPECT_GE(p.pool.live_bytes(), 1000 * sizeof(int));
    }
    EXPECT_EQ(std::pmr::get_default_resource(), before);
}

TEST(ScopedDefaultResource, Nests) {
    checked_pool a, b;
    std::pmr::memory_resource* const before = std::pmr::get_default_resource();
    {
        scoped_default_resource outer(a.pool);
        {
            scoped_default_resource inner(&b.pool);
            EXPECT_EQ(std::pmr::get_default_resource(), &b.pool);
            EXPECT_EQ(inner.previous(), &a.pool);
        }
        EXPECT_EQ(std::pmr::get_default_resource(), &a.pool);
    }
    EXPECT_EQ(std::pmr::get_default_resource(), before);
}

TEST(ScopedDefaultResource, NullSelectsNewDelete) {
    std::pmr::memory_resource* const before = std::pmr::get_default_resource();
    {
        scoped_default_resource scope(nullptr);
        EXPECT_EQ(std::pmr::get_default_resource(), std::pmr::new_delete_resource());
    }
    EXPECT_EQ(std::pmr::get_default_resource(), before);
}

TEST(ScopedDefaultResource, ThreadsSeeTheDefaultWhileItLives) {
    checked_pool p;
    scoped_default_resource scope(p.pool);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([t] {
            std::pmr::vector<std::pmr::string> lines;
            for (int i = 0; i < 500; ++i)
                lines.emplace_back(long_string(t * 1000 + i));
            EXPECT_EQ(std::string_view(lines[499]), long_string(t * 1000 + 499));
        });
    }
    for (auto& t : threads)
        t.join();
}

// Legacy code that knows nothing of pools: default-constructed pmr containers.
std::size_t legacy_fill(std::pmr::vector<std::pmr::string>& lines, int n) {
    for (int i = 0; i < n; ++i)
        lines.emplace_back(long_string(i));
    return lines.size();
}

TEST(ScopedDefaultResource, UnderACappedPool) {
    checked_pool p(capped(64 << 10, exhaustion::fail));  // on exit: live_bytes() 0, cap held
    std::pmr::memory_resource* const before = std::pmr::get_default_resource();
    {
        const scoped_default_resource scope(p.pool);
        std::pmr::vector<std::pmr::string> lines;  // takes the default: the pool
        std::size_t filled = 0;
        try {
            filled = legacy_fill(lines, 1 << 20);
            ADD_FAILURE() << "a million long strings cannot fit 64 KiB";
        } catch (const capacity_exceeded& e) {
            EXPECT_EQ(e.code(), errc::capacity_exceeded) << "refused at once under fail";
        }
        EXPECT_EQ(filled, 0u);
        ASSERT_GT(lines.size(), 100u) << "a real part of the cap was used";
        for (std::size_t i = 0; i < lines.size(); ++i) {
            ASSERT_EQ(std::string_view(lines[i]), long_string(static_cast<int>(i)))
                << "contents intact after the failed emplace_back";
            ASSERT_EQ(lines[i].get_allocator().resource(), &p.pool);
        }
        EXPECT_LE(p.pool.live_bytes(), p.pool.capacity());
        EXPECT_EQ(p.pool.stats().peak_live_bytes <= p.pool.capacity(), true);
    }
    EXPECT_EQ(std::pmr::get_default_resource(), before) << "restored after the exception";
    EXPECT_EQ(p.pool.live_bytes(), 0u);
}

TEST(PmrContainers, VectorStringDequeList) {
    checked_pool p;
    std::pmr::vector<int> v(&p.pool);
    std::pmr::string s(&p.pool);
    std::pmr::deque<int> d(&p.pool);
    std::pmr::list<std::pmr::string> l(&p.pool);
    for (int i = 0; i < 2000; ++i) {
        v.push_back(i);
        s += static_cast<char>('a' + i % 26);
        d.push_front(i);
        l.emplace_back(long_string(i));
    }
    EXPECT_EQ(v[1999], 1999);
    EXPECT_EQ(s.size(), 2000u);
    EXPECT_EQ(s[27], 'b');
    EXPECT_EQ(d.front(), 1999);
    EXPECT_EQ(std::string_view(l.back()), long_string(1999));
    EXPECT_EQ(l.back().get_allocator().resource(), &p.pool) << "list elements use the pool too";
    EXPECT_GT(p.pool.live_bytes(), 2000 * (sizeof(int) * 2 + 60));
}

TEST(PmrContainers, NestedPropagationInUnorderedMap) {
    checked_pool p;
    std::pmr::unordered_map<std::pmr::string, std::pmr::vector<std::pmr::string>> index(&p.pool);
    for (int i = 0; i < 1000; ++i)
        index[std::pmr::string(long_string(i % 100), &p.pool)].emplace_back(long_string(i));
    ASSERT_EQ(index.size(), 100u);
    const auto& [key, values] = *index.find(std::pmr::string(long_string(42), &p.pool));
    EXPECT_EQ(key.get_allocator().resource(), &p.pool);
    EXPECT_EQ(values.get_allocator().resource(), &p.pool) << "mapped value gets the pool";
    EXPECT_EQ(values.front().get_allocator().resource(), &p.pool) << "and its elements too";
    EXPECT_EQ(values.size(), 10u);
    EXPECT_EQ(std::string_view(values[3]), long_string(342));
}

TEST(PmrContainers, VectorGrowthAtTheCapThrowsAndLeavesItUnchanged) {
    checked_pool p(capped(64 << 10, exhaustion::fail));
    std::pmr::vector<int> v(&p.pool);
    std::size_t pushed = 0;
    try {
        for (;; ++pushed)
            v.push_back(static_cast<int>(pushed));
    } catch (const capacity_exceeded& e) {
        EXPECT_EQ(e.code(), errc::capacity_exceeded);
    }
    ASSERT_EQ(v.size(), pushed) << "strong guarantee: the failed push_back changed nothing";
    for (std::size_t i = 0; i < v.size(); ++i)
        ASSERT_EQ(v[i], static_cast<int>(i));
    EXPECT_GT(pushed, 4000u) << "a real amount of the cap was used";
    EXPECT_LE(p.pool.live_bytes(), p.pool.capacity());
}

TEST(PmrContainers, MapInsertAtTheCapThrowsAndLeavesItUnchanged) {
    checked_pool p(capped(32 << 10, exhaustion::fail));
    std::pmr::unordered_map<int, std::pmr::string> m(&p.pool);
    int inserted = 0;
    EXPECT_THROW(
        {
            for (;; ++inserted)
                m.emplace(inserted, long_string(inserted));
        },
        capacity_exceeded);
    ASSERT_EQ(m.size(), static_cast<std::size_t>(inserted));
    for (int i = 0; i < inserted; ++i)
        ASSERT_EQ(std::string_view(m.at(i)), long_string(i));
}

TEST(PmrContainers, WaitPolicyGivesUpWithTimedOut) {
    checked_pool p(capped(16 << 10, exhaustion::wait));
    std::pmr::vector<char> v(&p.pool);
    v.assign(8 << 10, 'x');
    try {
        v.reserve(12 << 10);  // fits the cap alone, not beside the 8 KiB it replaces: waits
        ADD_FAILURE() << "grew past the cap";
    } catch (const capacity_exceeded& e) {
        EXPECT_EQ(e.code(), errc::timed_out);
    }
    EXPECT_EQ(v.size(), 8u << 10);
    EXPECT_EQ(v.back(), 'x');
    EXPECT_THROW(v.reserve(20 << 10), capacity_exceeded) << "larger than the cap: refused";
}

struct widget {
    using allocator_type = std::pmr::polymorphic_allocator<>;
    widget(std::string_view n, int v, const allocator_type& alloc) : name(n, alloc), value(v) {}
    std::pmr::string name;
    int value;
};

TEST(MakePmrUnique, AllocatesFromTheResourceAndGivesItBack) {
    checked_pool p;
    {
        pmr_unique_ptr<widget> w = make_pmr_unique<widget>(p.pool, long_string(1), 5);
        EXPECT_EQ(w->value, 5);
        EXPECT_EQ(std::string_view(w->name), long_string(1));
        EXPECT_EQ(w->name.get_allocator().resource(), &p.pool) << "uses-allocator construction";
        EXPECT_EQ(w.get_deleter().resource(), &p.pool);
        EXPECT_GE(p.pool.live_blocks(), 2u);
        pmr_unique_ptr<widget> moved = std::move(w);
        EXPECT_EQ(moved->value, 5);
    }
    EXPECT_EQ(p.pool.live_bytes(), 0u);
    pmr_unique_ptr<int> empty;
    EXPECT_EQ(empty, nullptr) << "default-constructible";
}

struct throws_on_construction {
    explicit throws_on_construction(int) { throw std::runtime_error("no"); }
};

TEST(MakePmrUnique, AConstructorThatThrowsLeaksNothing) {
    checked_pool p;
    EXPECT_THROW((void)make_pmr_unique<throws_on_construction>(p.pool, 1), std::runtime_error);
    EXPECT_EQ(p.pool.live_bytes(), 0u);
}

TEST(MakePmrUnique, AtTheCapThrowsCapacityExceeded) {
    checked_pool p(capped(4096, exhaustion::fail));
    struct big {
        char bytes[3000];
    };
    auto first = make_pmr_unique<big>(p.pool);
    EXPECT_THROW((void)make_pmr_unique<big>(p.pool), capacity_exceeded);
    first.reset();
    EXPECT_NO_THROW((void)make_pmr_unique<big>(p.pool)) << "room again once the first is gone";
}

}  // namespace
}  // namespace bpool
