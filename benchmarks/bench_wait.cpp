// The wait path of a capped pool (issue 4): how long after a release a waiting request returns.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <thread>
#include <vector>

#include <bpool/pool_resource.hpp>

#include "registry.hpp"

namespace bench {
namespace {

using clock_type = std::chrono::steady_clock;

/// Returns the `q`-quantile (0..1) of `v`, which it sorts.
double quantile(std::vector<double>& v, double q) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

/// One op: this thread holds the pool's only block while another thread's request for one waits
/// at the cap; this thread gives the block back and the waiter's return is timed from that
/// moment (the waiter has used the pool before, as in a server, so it has a thread cache). The pool
/// is made here (capacity: one 4 KiB block, exhaustion::wait, default backoff), not by the subject,
/// whose options it would not have. Reports the mean wake latency as the time (manual time) and the
/// median and 99th percentile as counters.
void wait_wake(benchmark::State& state, const subject&) {
    constexpr std::size_t block = 4096;
    bpool::pool_resource pool({.capacity = block, .on_exhaustion = bpool::exhaustion::wait});
    std::atomic<int> round{0};                 // the round the waiter is to run; -1: stop
    std::atomic<int> done{0};                  // the last round the waiter finished
    std::atomic<clock_type::rep> released{0};  // when this thread gave the block back
    std::vector<double> latencies;
    std::thread waiter([&] {
        for (int r = 1;; ++r) {
            int go;
            while ((go = round.load(std::memory_order_acquire)) != r && go != -1)
                std::this_thread::yield();
            if (go == -1) return;
            void* p = pool.allocate(block);  // waits: the block is held
            const auto woke = clock_type::now().time_since_epoch().count();
            latencies.push_back(
                static_cast<double>(woke - released.load(std::memory_order_acquire)) / 1e3);
            pool.deallocate(p, block);
            done.store(r, std::memory_order_release);
        }
    });
    int r = 0;
    for (auto _ : state) {
        void* held = pool.allocate(block);
        round.store(++r, std::memory_order_release);
        // Give the block back only once the waiter is queued at the cap and has settled into its
        // sleep: a release that lands while the waiter is still entering the wait (which
        // quiesces the other threads' caches, a membarrier) measures that entry, not the wake.
        while (pool.stats().waiters == 0)
            std::this_thread::sleep_for(std::chrono::microseconds(20));
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        released.store(clock_type::now().time_since_epoch().count(), std::memory_order_release);
        pool.deallocate(held, block);
        while (done.load(std::memory_order_acquire) != r)
            std::this_thread::yield();
        state.SetIterationTime(latencies.back() / 1e6);
    }
    round.store(-1, std::memory_order_release);
    waiter.join();
    state.counters["wake_median_us"] = quantile(latencies, 0.5);
    state.counters["wake_p99_us"] = quantile(latencies, 0.99);
    state.counters["wake_max_us"] = latencies.empty() ? 0.0 : latencies.back();
}

const bool registered = add_workload({
    .name = "wait_wake",
    .what = "a request waiting at the cap of a pool holding one 4 KiB block: time from the "
            "release of the block by another thread to the waiter's return",
    .crosses_threads = true,
    .bpool_only = true,
    .run = wait_wake,
    // A fixed number of rounds: each takes a few hundred microseconds of real time, of which
    // only the latency counts as (manual) time, so a minimum time would mean thousands of rounds.
    .configure = [](benchmark::internal::Benchmark* b) { b->UseManualTime()->Iterations(400); },
});

}  // namespace
}  // namespace bench
