// The statistics (include/bpool/stats.hpp): the live figures derive from one tally, so the
// per-class figures and the totals agree whenever no operation runs, whichever threads made or
// freed the blocks, and whether those threads still live.
#include <cstddef>
#include <latch>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include <bpool/pool_resource.hpp>
#include <bpool/stats.hpp>

#include <gtest/gtest.h>

namespace bpool {
namespace {

using held_blocks = std::vector<std::pair<void*, std::size_t>>;

// Sums what the per-class figures say is live.
struct class_sums {
    std::size_t bytes = 0;
    std::size_t blocks = 0;
};
class_sums sum_classes(const pool_stats& s) {
    class_sums sum;
    for (const size_class_stats& c : s.classes) {
        sum.bytes += c.live_blocks * c.block_size;
        sum.blocks += c.live_blocks;
    }
    return sum;
}

// Allocates `n` blocks of random sizes up to 64 KiB (and one of 2 MiB, above the classes) into
// `out`, and frees half of them again at random.
void churn_into(pool_resource& pool, unsigned seed, int n, held_blocks& out) {
    std::mt19937 rng(seed);
    out.emplace_back(pool.allocate(2u << 20), 2u << 20);
    for (int i = 0; i < n; ++i) {
        const std::size_t bytes = 1 + rng() % (64u << 10);
        out.emplace_back(pool.allocate(bytes), bytes);
        if (rng() % 2 == 0) {
            const std::size_t at = rng() % out.size();
            pool.deallocate(out[at].first, out[at].second);
            out[at] = out.back();
            out.pop_back();
        }
    }
}

std::size_t large_count(const held_blocks& blocks) {
    std::size_t n = 0;
    for (const auto& b : blocks)
        n += b.second > (1u << 20) ? 1 : 0;
    return n;
}

TEST(Stats, PerClassFiguresAddUpToTheLiveTotals) {
    pool_resource pool;
    constexpr int threads = 4;
    std::vector<held_blocks> held(threads);
    std::latch built(threads + 1), checked(1);
    std::vector<std::thread> workers;
    // Half the threads exit before the figures are read, half stay alive with their caches.
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            churn_into(pool, static_cast<unsigned>(t) + 1, 3000, held[static_cast<std::size_t>(t)]);
            built.count_down();
            if (t % 2 == 0) checked.wait();
        });
    }
    held_blocks mine;
    churn_into(pool, 99, 3000, mine);
    built.arrive_and_wait();
    for (int t = 1; t < threads; t += 2)
        workers[static_cast<std::size_t>(t)].join();
    // Blocks made by one thread and freed by another.
    for (std::size_t i = 0; i < held[1].size(); i += 2) {
        pool.deallocate(held[1][i].first, held[1][i].second);
        held[1][i] = {nullptr, 0};
    }
    std::size_t large = large_count(mine);
    for (const held_blocks& h : held)
        large += large_count(h);

    const pool_stats s = pool.stats();
    const class_sums sum = sum_classes(s);
    EXPECT_EQ(sum.bytes + s.large_live_bytes, s.live_bytes);
    EXPECT_EQ(sum.blocks + large, s.live_blocks);
    EXPECT_EQ(s.live_bytes, pool.live_bytes());
    EXPECT_EQ(s.live_blocks, pool.live_blocks());
    EXPECT_GE(s.peak_live_bytes, s.live_bytes);
    EXPECT_EQ(s.allocations - s.deallocations, s.live_blocks);

    checked.count_down();
    for (int t = 0; t < threads; t += 2)
        workers[static_cast<std::size_t>(t)].join();
    for (held_blocks* h : {&mine, &held[0], &held[1], &held[2], &held[3]})
        for (auto [p, n] : *h)
            if (p != nullptr) pool.deallocate(p, n);
    const pool_stats after = pool.stats();
    EXPECT_EQ(after.live_bytes, 0u);
    EXPECT_EQ(after.live_blocks, 0u);
    EXPECT_EQ(sum_classes(after).blocks, 0u);
    EXPECT_EQ(after.large_live_bytes, 0u);
    EXPECT_GE(after.peak_live_bytes, s.live_bytes) << "the peak stays";
}

}  // namespace
}  // namespace bpool
