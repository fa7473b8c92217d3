// Stress: many threads (8 to 64), mixed sizes, cross-thread frees, capacity changes, threads
// exiting with cached blocks, pools created and destroyed while others are in use. Bounded by a
// number of operations, not by time: a slow or busy machine runs the same test, only longer. At
// the end every operation ran, every pool has no live bytes and upstream got every byte back.
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "support/counting_resource.hpp"

namespace bpool {
namespace {

using namespace std::chrono_literals;
using test::check_pattern;
using test::counting_resource;
using test::fill_pattern;

struct block {
    void* p = nullptr;
    std::size_t n = 0;
    std::uint64_t seed = 0;
};

// A mailbox through which threads hand blocks to each other (cross-thread frees).
class mailbox {
  public:
    void post(block b) {
        std::lock_guard lock(mutex_);
        blocks_.push_back(b);
    }
    bool take(block* out) {
        std::lock_guard lock(mutex_);
        if (blocks_.empty()) return false;
        *out = blocks_.back();
        blocks_.pop_back();
        return true;
    }
    std::vector<block> drain() {
        std::lock_guard lock(mutex_);
        return std::move(blocks_);
    }

  private:
    std::mutex mutex_;
    std::vector<block> blocks_;
};

std::size_t random_size(std::mt19937_64& rng) {
    // Log-uniform 1 B .. 2 MiB: every class, and some large requests.
    return static_cast<std::size_t>(
        std::exp(std::uniform_real_distribution<>(0, std::log(2.0 * (1 << 20)))(rng)));
}

// One worker's life: `operations` steps of churn, handing some blocks to others and freeing what
// others handed over, then exit (with whatever its cache holds). Adds its steps to `ops` unless a
// check stopped it early.
void worker(pool_resource& pool, mailbox& box, unsigned seed, std::uint64_t operations,
            std::atomic<std::uint64_t>& ops) {
    std::mt19937_64 rng(seed);
    std::vector<block> mine;
    std::uint64_t count = 0;
    while (count < operations) {
        ++count;
        const unsigned action = static_cast<unsigned>(rng() % 10);
        if (action < 5 && mine.size() < 64) {
            block b{nullptr, random_size(rng), rng()};
            try {
                b.p = pool.allocate(b.n);
            } catch (const capacity_exceeded&) {
                continue;  // the cap moved under us: fine
            }
            fill_pattern(b.p, b.n, b.seed);
            mine.push_back(b);
        } else if (action < 8 && !mine.empty()) {
            const std::size_t k = rng() % mine.size();
            ASSERT_TRUE(check_pattern(mine[k].p, mine[k].n, mine[k].seed));
            pool.deallocate(mine[k].p, mine[k].n);
            mine[k] = mine.back();
            mine.pop_back();
        } else if (action == 8 && !mine.empty()) {
            box.post(mine.back());
            mine.pop_back();
        } else {
            block b;
            if (box.take(&b)) {
                ASSERT_TRUE(check_pattern(b.p, b.n, b.seed));
                pool.deallocate(b.p, b.n);
            }
        }
    }
    ops += count;
    for (const block& b : mine)
        box.post(b);  // leave some for others: cross-thread frees
}

void free_all(pool_resource& pool, mailbox& box) {
    for (const block& b : box.drain()) {
        ASSERT_TRUE(check_pattern(b.p, b.n, b.seed));
        pool.deallocate(b.p, b.n);
    }
}

// `threads` slots each run `generations` workers one after another, `operations` steps each.
void stress(unsigned threads, unsigned generations, std::uint64_t operations) {
    counting_resource upstream;
    {
        pool_resource pool(
            {.capacity = 0, .on_exhaustion = exhaustion::wait, .backoff = {.max_elapsed = 5ms}},
            &upstream);
        mailbox box;
        std::atomic<bool> stop{false};
        std::atomic<unsigned> chaos_rounds{0};
        std::atomic<std::uint64_t> ops{0};
        std::vector<std::thread> pool_threads;
        // Workers come and go: each slot starts a fresh thread when the previous one exits. A
        // generation starts once the chaos thread has done as many rounds, so that the capacity
        // changes and the other pools' lives interleave with the workers however they are
        // scheduled.
        for (unsigned t = 0; t < threads; ++t) {
            pool_threads.emplace_back([&, t] {
                for (unsigned generation = 0; generation < generations; ++generation) {
                    while (chaos_rounds.load() < generation)
                        std::this_thread::sleep_for(1ms);
                    std::thread(worker, std::ref(pool), std::ref(box), t * 1000 + generation,
                                operations, std::ref(ops))
                        .join();
                }
            });
        }
        // Meanwhile: change the capacity, trim, and create and destroy other pools in use.
        std::thread chaos([&] {
            std::mt19937 rng(99);
            while (!stop.load()) {
                pool.set_capacity(rng() % 3 == 0 ? 0 : (std::size_t{8} << 20) + rng() % (32 << 20));
                if (rng() % 4 == 0) pool.trim();
                counting_resource other_upstream;
                {
                    pool_resource other({}, &other_upstream);
                    std::vector<std::thread> users;
                    for (int u = 0; u < 2; ++u) {
                        users.emplace_back([&] {
                            for (int i = 0; i < 200; ++i)
                                other.deallocate(other.allocate(64 + i), 64 + i);
                        });
                    }
                    for (auto& u : users)
                        u.join();
                }
                EXPECT_EQ(other_upstream.live_bytes(), 0u);
                ++chaos_rounds;
                std::this_thread::sleep_for(2ms);
            }
        });
        for (auto& t : pool_threads)
            t.join();
        stop = true;
        chaos.join();
        free_all(pool, box);
        const pool_stats s = pool.stats();
        EXPECT_EQ(s.live_bytes, 0u);
        EXPECT_EQ(s.live_blocks, 0u);
        EXPECT_EQ(pool.live_bytes(), 0u);
        EXPECT_EQ(s.allocations, s.deallocations);
        EXPECT_EQ(ops.load(), std::uint64_t{threads} * generations * operations)
            << "every worker ran all its operations";
    }
    EXPECT_EQ(upstream.live_bytes(), 0u) << "upstream got every byte back";
    EXPECT_EQ(upstream.mismatches(), 0u);
}

TEST(Stress, EightThreads) {
    stress(8, 4, 150);
}
TEST(Stress, SixtyFourThreads) {
    stress(64, 2, 40);
}

}  // namespace
}  // namespace bpool
