// bpool/adapters/boost.hpp: Boost.Container's pmr containers over a pool through boost_resource,
// equality, nested propagation, and exhaustion at a capped pool's limit.
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <bpool/adapters/boost.hpp>
#include <bpool/pool_resource.hpp>

#include <boost/container/pmr/flat_map.hpp>
#include <boost/container/pmr/global_resource.hpp>
#include <boost/container/pmr/small_vector.hpp>
#include <boost/container/pmr/stable_vector.hpp>
#include <boost/container/pmr/string.hpp>
#include <boost/container/pmr/vector.hpp>
#include <boost/version.hpp>
#include <gtest/gtest.h>

// devector arrived in Boost 1.75, and has no boost::container::pmr alias: it takes the allocator.
#if __has_include(<boost/container/devector.hpp>)
#include <boost/container/devector.hpp>
#define BPOOL_TEST_DEVECTOR 1
#else
#define BPOOL_TEST_DEVECTOR 0
#endif

#include "adapter_support.hpp"

namespace bpool {
namespace {

namespace bpmr = boost::container::pmr;
using test::capped;
using test::checked_pool;
using test::long_string;

TEST(BoostResource, ForwardsToThePool) {
    checked_pool p;
    boost_resource r(p.pool);
    EXPECT_EQ(r.resource(), &p.pool);
    void* block = r.allocate(1000, 64);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(block) % 64, 0u);
    EXPECT_EQ(p.pool.live_bytes(), p.pool.block_size(1000, 64));
    r.deallocate(block, 1000, 64);
    EXPECT_THROW((void)r.allocate(64, 3), std::invalid_argument) << "the pool's own checks apply";
}

TEST(BoostResource, EqualWhenTheyShareAResource) {
    checked_pool a, b;
    boost_resource a1(a.pool), a2(&a.pool), b1(b.pool);
    boost_resource heap1(std::pmr::new_delete_resource()), heap2(std::pmr::new_delete_resource());
    EXPECT_TRUE(a1 == a2);
    EXPECT_TRUE(a1 != b1);
    EXPECT_TRUE(heap1 == heap2);
    EXPECT_TRUE(a1 != heap1);
    EXPECT_TRUE(a1 != *bpmr::new_delete_resource()) << "never equal to Boost's own resources";
    EXPECT_THROW(boost_resource(static_cast<std::pmr::memory_resource*>(nullptr)),
                 std::invalid_argument);
}

TEST(BoostResource, Containers) {
    checked_pool p;
    boost_resource r(p.pool);
    {
        bpmr::vector<int> v(&r);
        bpmr::string s(&r);
        bpmr::flat_map<int, bpmr::string> fm(&r);
        bpmr::stable_vector<int> sv(&r);
        for (int i = 0; i < 2000; ++i) {
            v.push_back(i);
            s += static_cast<char>('a' + i % 26);
            fm.emplace(i, long_string(i).c_str());
            sv.push_back(i);
        }
        EXPECT_EQ(v[1999], 1999);
        EXPECT_EQ(s.size(), 2000u);
        EXPECT_EQ(fm.at(777), long_string(777).c_str());
        EXPECT_EQ(fm.at(777).get_allocator().resource(), &r) << "propagates to mapped strings";
        EXPECT_EQ(sv[1234], 1234);
        EXPECT_GT(p.pool.live_blocks(), 2000u) << "stable_vector nodes and strings";
    }
    EXPECT_EQ(p.pool.live_bytes(), 0u);
}

TEST(BoostResource, SmallVectorTouchesThePoolOnlyPastItsInlineCapacity) {
    checked_pool p;
    boost_resource r(p.pool);
    using small = bpmr::small_vector<int, 8>;
    // Boost 1.74's small_vector takes its own allocator type, made from a polymorphic_allocator.
    const small::allocator_type alloc{bpmr::polymorphic_allocator<int>(&r)};
    small v(alloc);
    for (int i = 0; i < 8; ++i)
        v.push_back(i);
    EXPECT_EQ(p.pool.live_bytes(), 0u);
    v.push_back(8);
    EXPECT_GT(p.pool.live_bytes(), 0u);
    EXPECT_EQ(v[8], 8);
}

#if BPOOL_TEST_DEVECTOR
TEST(BoostResource, Devector) {
    checked_pool p;
    boost_resource r(p.pool);
    boost::container::devector<int, bpmr::polymorphic_allocator<int>> d(&r);
    for (int i = 0; i < 1000; ++i) {
        d.push_back(i);
        d.push_front(-i);
    }
    EXPECT_EQ(d.front(), -999);
    EXPECT_EQ(d.back(), 999);
    EXPECT_GT(p.pool.live_bytes(), 0u);
}
#endif

TEST(BoostResource, GrowthAtTheCapThrowsAndLeavesTheContainerUnchanged) {
    checked_pool p(capped(32 << 10, exhaustion::fail));
    boost_resource r(p.pool);
    bpmr::vector<std::uint64_t> v(&r);
    std::size_t pushed = 0;
    try {
        for (;; ++pushed)
            v.push_back(pushed);
    } catch (const capacity_exceeded& e) {
        EXPECT_EQ(e.code(), errc::capacity_exceeded);
    }
    ASSERT_EQ(v.size(), pushed);
    for (std::size_t i = 0; i < pushed; ++i)
        ASSERT_EQ(v[i], i);
    EXPECT_GT(pushed, 1000u);
    v.clear();
    v.shrink_to_fit();
    EXPECT_EQ(p.pool.live_bytes(), 0u);

    bpmr::flat_map<int, int> fm(&r);
    EXPECT_THROW(
        {
            for (int i = 0;; ++i)
                fm.emplace(i, i);
        },
        std::bad_alloc)
        << "capacity_exceeded is a std::bad_alloc";
    EXPECT_GT(fm.size(), 1000u);
    for (int i = 0; i < static_cast<int>(fm.size()); ++i)
        ASSERT_EQ(fm.at(i), i);
}

// A Boost resource that fails every request: where it is the default, a container that falls
// back on the default instead of its pool's resource throws.
class refusing_resource final : public bpmr::memory_resource {
    void* do_allocate(std::size_t, std::size_t) override { throw std::bad_alloc(); }
    void do_deallocate(void*, std::size_t, std::size_t) override {}
    bool do_is_equal(const bpmr::memory_resource& o) const noexcept override { return this == &o; }
};

TEST(BoostDefaultResource, ScopeMakesThePoolBoostsDefaultAndRestoresIt) {
    checked_pool p;
    bpmr::memory_resource* const before = bpmr::get_default_resource();
    {
        scoped_boost_default_resource scope(p.pool);
        EXPECT_EQ(bpmr::get_default_resource(), &scope.resource());
        EXPECT_EQ(scope.previous(), before);
        EXPECT_EQ(scope.resource().resource(), &p.pool);
        bpmr::vector<int> v;  // default-constructed: Boost's default resource
        v.assign(1000, 7);
        EXPECT_GE(p.pool.live_bytes(), 1000 * sizeof(int));
        {
            scoped_boost_default_resource inner(std::pmr::new_delete_resource());
            bpmr::string s(200, 'x');
            EXPECT_LT(p.pool.live_bytes(), 1000 * sizeof(int) + 200) << "nested: the inner one";
        }
        EXPECT_EQ(bpmr::get_default_resource(), &scope.resource());
    }
    EXPECT_EQ(bpmr::get_default_resource(), before);
    EXPECT_THROW(scoped_boost_default_resource(static_cast<std::pmr::memory_resource*>(nullptr)),
                 std::invalid_argument);
}

// Boost 1.74's small_vector has an allocator type of its own, which polymorphic_allocator does
// not convert to implicitly, so uses-allocator construction passes it by: a small_vector mapped
// in a flat_map on the pool is default-constructed, on Boost's default resource. Constructing
// it with the map's allocator (what the README says to do) keeps it on the pool; so does making
// the pool Boost's default.
TEST(BoostDefaultResource, SmallVectorsInAFlatMapStayOnThePool) {
    using small = bpmr::small_vector<int, 2>;
    checked_pool p;
    boost_resource r(p.pool);
    refusing_resource refuse;
    bpmr::memory_resource* const before = bpmr::set_default_resource(&refuse);
    {
        bpmr::flat_map<int, small> m(&r);
        const small::allocator_type on_pool{m.get_allocator()};
        for (int k = 0; k < 50; ++k) {
            small& v = m.try_emplace(k, on_pool).first->second;
            for (int i = 0; i < 20; ++i)
                v.push_back(i);  // past the inline capacity: from the pool, never the default
        }
        EXPECT_EQ(m.at(49)[19], 19);
        EXPECT_THROW(m[100].assign(20, 1), std::bad_alloc) << "Boost's limitation, as documented";
    }
    {
        // The scope outlives the map: its elements took the scope's resource as their default.
        scoped_boost_default_resource scope(p.pool);
        bpmr::flat_map<int, small> m(&r);
        m[101].assign(20, 1);  // default-constructed, and Boost's default is the pool now
        EXPECT_EQ(m.at(101).size(), 20u);
        EXPECT_GE(p.pool.live_bytes(), 20 * sizeof(int));
    }
    bpmr::set_default_resource(before);
}

TEST(BoostResource, ThreadsShareOneResource) {
    checked_pool p;
    boost_resource r(p.pool);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&r, t] {
            bpmr::vector<bpmr::string> lines(&r);
            for (int i = 0; i < 1000; ++i)
                lines.emplace_back(long_string(t * 1000 + i).c_str());
            EXPECT_EQ(lines[999], long_string(t * 1000 + 999).c_str());
        });
    }
    for (auto& t : threads)
        t.join();
}

}  // namespace
}  // namespace bpool
