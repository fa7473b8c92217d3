// A snapshot with something in every part: live blocks of several classes, a capacity and a wait
// at it that finished (so the wait histogram and the wait times are not all zero).
#pragma once

#include <chrono>
#include <cstddef>
#include <thread>
#include <utility>
#include <vector>

#include <bpool/pool_options.hpp>
#include <bpool/pool_resource.hpp>
#include <bpool/stats.hpp>

namespace bpool::test {

inline pool_stats stats_with_a_finished_wait() {
    constexpr std::size_t block = 32 << 10;
    pool_options o;
    o.capacity = 2 * block;
    o.on_exhaustion = exhaustion::wait;
    o.backoff.max_elapsed = std::chrono::minutes(5);  // never reached: the wait ends by a release
    pool_resource pool(o);
    void* first = pool.allocate(block);
    void* second = pool.allocate(block);
    std::thread waiter([&] { pool.deallocate(pool.allocate(block), block); });
    // The release comes once the waiter waits, however long the thread takes to get there.
    while (pool.stats().waiters == 0)
        std::this_thread::yield();
    pool.deallocate(second, block);
    waiter.join();
    std::vector<std::pair<void*, std::size_t>> small;
    for (std::size_t n : {std::size_t{24}, std::size_t{24}, std::size_t{200}, std::size_t{1000}})
        small.emplace_back(pool.allocate(n), n);
    pool_stats s = pool.stats();
    for (auto [p, n] : small)
        pool.deallocate(p, n);
    pool.deallocate(first, block);
    return s;
}

}  // namespace bpool::test
