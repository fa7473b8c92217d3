// bpool/adapters/mimalloc.hpp: mimalloc_resource on its own (sizes, alignments, equality) and as a
// pool's upstream; linking it makes mimalloc the program's malloc, as its header says.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <dlfcn.h>
#include <memory>
#include <memory_resource>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <bpool/adapters/mimalloc.hpp>
#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "adapter_support.hpp"

namespace bpool {
namespace {

using test::aligned;
using test::capped;
using test::check_pattern;
using test::counting_resource;
using test::fill_pattern;

TEST(MimallocResource, OneInstanceAndAVersion) {
    EXPECT_EQ(&mimalloc_resource::instance(), &mimalloc_resource::instance());
    EXPECT_GE(mimalloc_resource::version(), 200) << "mimalloc 2.x";
}

TEST(MimallocResource, SizesAndAlignments) {
    std::pmr::memory_resource& mi = mimalloc_resource::instance();
    for (std::size_t bytes : {0u, 1u, 16u, 100u, 4096u, 70000u, 1u << 20, 5u << 20}) {
        for (std::size_t align = 1; align <= (1u << 16); align *= 4) {
            void* p = mi.allocate(bytes, align);
            ASSERT_NE(p, nullptr);
            EXPECT_TRUE(aligned(p, align)) << bytes << " " << align;
            fill_pattern(p, bytes, bytes ^ align);
            EXPECT_TRUE(check_pattern(p, bytes, bytes ^ align));
            mi.deallocate(p, bytes, align);
        }
    }
    volatile std::size_t odd = 3;  // volatile: compilers reject a constant bad alignment
    EXPECT_THROW((void)mi.allocate(64, odd), std::invalid_argument);
}

TEST(MimallocResource, AllInstancesAreEqual) {
    mimalloc_resource other;
    pool_resource pool;
    EXPECT_TRUE(mimalloc_resource::instance() == other) << "they share mimalloc's heaps";
    EXPECT_FALSE(mimalloc_resource::instance() == *std::pmr::new_delete_resource());
    EXPECT_FALSE(mimalloc_resource::instance() == pool);
    void* p = mimalloc_resource::instance().allocate(256, 32);
    other.deallocate(p, 256, 32);  // equal: one may free what the other allocated
}

TEST(MimallocResource, AsAPoolsUpstream) {
    // mimalloc under a counting layer, so that every size and alignment the pool hands back to
    // upstream is checked against what it took.
    counting_resource counting(&mimalloc_resource::instance());
    {
        pool_resource pool({}, &counting);
        std::vector<std::pair<void*, std::size_t>> blocks;
        for (std::size_t bytes = 8; bytes <= (4u << 20); bytes = bytes * 3 / 2) {
            void* p = pool.allocate(bytes);
            fill_pattern(p, bytes, bytes);
            blocks.emplace_back(p, bytes);
        }
        for (auto [p, bytes] : blocks) {
            EXPECT_TRUE(check_pattern(p, bytes, bytes)) << bytes;
            pool.deallocate(p, bytes);
        }
        std::pmr::vector<std::pmr::string> lines(&pool);
        for (int i = 0; i < 1000; ++i)
            lines.emplace_back(test::long_string(i));
        EXPECT_GT(counting.live_bytes(), 0u);
        EXPECT_EQ(counting.misaligned(), 0u);
    }
    EXPECT_EQ(counting.live_bytes(), 0u) << "the pool gave everything back to mimalloc";
    EXPECT_EQ(counting.mismatches(), 0u);
}

TEST(MimallocResource, UnderACappedPoolManyThreads) {
    pool_resource pool(capped(256 << 10, exhaustion::fail), &mimalloc_resource::instance());
    std::atomic<int> corrupted{0}, allocated{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&pool, &corrupted, &allocated, t] {
            struct live_block {
                void* p;
                std::size_t bytes;
                std::uint64_t seed;
            };
            std::vector<live_block> mine;  // FIFO of live blocks
            auto give_back = [&](const live_block& b) {
                if (!check_pattern(b.p, b.bytes, b.seed)) corrupted.fetch_add(1);
                pool.deallocate(b.p, b.bytes);
            };
            for (std::size_t i = 0; i < 5000; ++i) {
                const std::size_t bytes = 64 + (i % 7) * 300;
                const std::uint64_t seed = i * 4 + static_cast<std::uint64_t>(t);  // unique
                if (void* p = pool.try_allocate(bytes)) {
                    fill_pattern(p, bytes, seed);
                    mine.push_back({p, bytes, seed});
                    allocated.fetch_add(1);
                }
                if (mine.size() > 50 || (i % 64 == 0 && !mine.empty())) {
                    give_back(mine.front());
                    mine.erase(mine.begin());
                }
            }
            for (const live_block& b : mine)
                give_back(b);
        });
    }
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(corrupted.load(), 0) << "no block was overwritten while live";
    EXPECT_GT(allocated.load(), 1000) << "the test really allocated";
    EXPECT_EQ(pool.live_bytes(), 0u);
    EXPECT_LE(pool.stats().peak_live_bytes, pool.capacity());
}

// What mimalloc.hpp warns about: bpool::mimalloc links Debian's shared libmimalloc.so, which
// defines malloc, free and operator new, and whose definitions then win for the whole program.
// Looked up at run time (dlsym), so that the test needs no mimalloc header. Under a sanitizer its
// runtime replaces malloc first, and the test has nothing to check.
TEST(MimallocResource, LinkingItMakesMimallocTheProgramsMalloc) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    GTEST_SKIP() << "the sanitizer's runtime replaces malloc before mimalloc can";
#endif
    Dl_info info{};
    ASSERT_NE(dladdr(dlsym(RTLD_DEFAULT, "malloc"), &info), 0);
    ASSERT_NE(info.dli_fname, nullptr);
    EXPECT_NE(std::string_view(info.dli_fname).find("mimalloc"), std::string_view::npos)
        << "malloc comes from " << info.dli_fname;
    // POSIX guarantees that dlsym's object pointer converts to a function pointer.
    auto* in_heap =
        reinterpret_cast<bool (*)(const void*)>(dlsym(RTLD_DEFAULT, "mi_is_in_heap_region"));
    ASSERT_NE(in_heap, nullptr);
    void* p = std::malloc(24);
    const auto q = std::make_unique<int>(5);
    EXPECT_TRUE(in_heap(p)) << "malloc is mimalloc's";
    EXPECT_TRUE(in_heap(q.get())) << "operator new is mimalloc's";
    std::free(p);
}

}  // namespace
}  // namespace bpool
