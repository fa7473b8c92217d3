// The wait path of a capped pool: how long after a release a waiting request returns, with one
// waiter (wait_wake), an asynchronous request's completion (async_wake), and with 64 threads that
// keep the pool at its cap (cap_64_threads).
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include <bpool/errors.hpp>
#include <bpool/pool_resource.hpp>

#include "churn.hpp"
#include "registry.hpp"

namespace bench {
namespace {

using clock_type = std::chrono::steady_clock;

/// Returns the `q`-quantile (0..1) of `v`, which it sorts.
double quantile(std::vector<double>& v, double q) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

/// Sets the wake counters of wait_wake and async_wake from their latencies (µs), which it sorts.
void report_wakes(benchmark::State& state, std::vector<double>& latencies) {
    state.counters["wake_median_us"] = quantile(latencies, 0.5);
    state.counters["wake_p99_us"] = quantile(latencies, 0.99);
    state.counters["wake_max_us"] = latencies.empty() ? 0.0 : latencies.back();
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
    report_wakes(state, latencies);
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

/// The same round as wait_wake with an asynchronous request (pool_resource::async_allocate): no
/// thread sleeps in it; the release hands the block to the queued request and bpool's completion
/// thread runs its completion, which is timed from the release. Mean as the time, median and 99th
/// percentile as counters, so the two rows compare the blocking and the asynchronous wake.
class timed_request final : public bpool::memory_request {
  public:
    std::atomic<clock_type::rep>* released = nullptr;
    std::vector<double>* latencies = nullptr;
    std::atomic<void*> block{nullptr};

  private:
    void on_complete(void* p, bpool::async_status) noexcept override {
        const auto woke = clock_type::now().time_since_epoch().count();
        latencies->push_back(static_cast<double>(woke - released->load(std::memory_order_acquire)) /
                             1e3);
        block.store(p, std::memory_order_release);
    }
};

void async_wake(benchmark::State& state, const subject&) {
    constexpr std::size_t block = 4096;
    bpool::pool_resource pool({.capacity = block, .on_exhaustion = bpool::exhaustion::wait});
    std::atomic<clock_type::rep> released{0};
    std::vector<double> latencies;
    latencies.reserve(1024);
    timed_request r;
    r.released = &released;
    r.latencies = &latencies;
    for (auto _ : state) {
        void* held = pool.allocate(block);
        r.block.store(nullptr, std::memory_order_relaxed);
        if (pool.async_allocate(r, block)) {
            state.SkipWithError("the request did not wait");
            break;
        }
        // As wait_wake: the completion thread settles into its sleep before the release.
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        released.store(clock_type::now().time_since_epoch().count(), std::memory_order_release);
        pool.deallocate(held, block);
        void* got;
        while ((got = r.block.load(std::memory_order_acquire)) == nullptr || r.pending())
            std::this_thread::yield();
        state.SetIterationTime(latencies.back() / 1e6);
        pool.deallocate(got, block);
    }
    report_wakes(state, latencies);
}

const bool registered_async = add_workload({
    .name = "async_wake",
    .what = "an asynchronous request (async_allocate) queued at the cap of a pool holding one "
            "4 KiB block: time from the release of the block to its completion on bpool's "
            "completion thread (compare wait_wake)",
    .crosses_threads = true,
    .bpool_only = true,
    .run = async_wake,
    .configure = [](benchmark::internal::Benchmark* b) { b->UseManualTime()->Iterations(400); },
});

/// The threads of cap_64_threads, the most blocks of 4 KiB each holds at once, and the share of
/// its steps that allocate while it holds fewer.
constexpr int crowd_threads = 64;
constexpr std::size_t crowd_hold = 4;
constexpr std::uint32_t crowd_alloc_percent = 75;
constexpr std::size_t crowd_block = 4096;

/// The capacity of cap_64_threads: one block more than the threads hold when each holds one block
/// fewer than its most (772 KiB, three quarters of the 1 MiB they would hold at once). No lower:
/// a thread waits holding up to crowd_hold - 1 blocks, and with this capacity the first request in
/// the queue fits even when every thread waits, so the run cannot deadlock.
constexpr std::size_t crowd_capacity = (crowd_threads * (crowd_hold - 1) + 1) * crowd_block;

/// When the calling thread's current request reported a stall (0: it has not). The capped pool
/// of cap_64_threads calls on_stall after 1 ns of waiting, on the waiting thread: a report proves
/// that the request was queued at the cap.
thread_local clock_type::rep stalled_at = 0;

/// What the threads of one cap_64_threads run share. Thread 0 makes the pool before the timed loop
/// and reads the results once every thread has merged its own; Google Benchmark's barrier at the
/// start of the loop orders the other threads' first use of the pool after its making.
struct crowd_run {
    std::optional<bpool::pool_resource> pool;
    std::atomic<clock_type::rep> last_release{0};  ///< Written just before every deallocate.
    std::mutex mutex;                              ///< Guards what follows.
    std::vector<double> latencies;                 ///< Wake latencies, microseconds.
    std::uint64_t allocations = 0;
    std::uint64_t timeouts = 0;
    int merged = 0;  ///< Threads that merged their results.
};

/// Effects: makes `run`'s pool: capped at crowd_capacity (exhaustion::wait, giving up after 2 s,
/// which no request should need), reporting stalls after 1 ns, if `capped`; else uncapped.
void make_crowd_pool(crowd_run& run, bool capped) {
    run.pool.emplace(bpool::pool_options{
        .capacity = capped ? crowd_capacity : 0,
        .on_exhaustion = bpool::exhaustion::wait,
        .backoff = {.max_elapsed = std::chrono::seconds(2)},
        .stall_warning = std::chrono::nanoseconds(1),
        .on_stall =
            [](const bpool::stall_event& e) {
                if (e.what == bpool::stall_event::kind::stalled)
                    stalled_at = clock_type::now().time_since_epoch().count();
            },
    });
    run.latencies.clear();
    run.allocations = 0;
    run.timeouts = 0;
    run.merged = 0;
}

/// One op: an allocate or a deallocate of a 4 KiB block by one of 64 threads sharing a pool capped
/// at crowd_capacity (capped:1; capped:0: the same on an uncapped pool, for comparison). Each
/// thread holds 0 to crowd_hold blocks: holding none it allocates, holding crowd_hold it frees
/// one, otherwise it allocates with probability 3/4 and frees a random block of its own with 1/4
/// (the draws are made before timing). Every op ends with a yield, so that where there are fewer
/// cores than threads the threads take turns op by op, each holding its blocks meanwhile, as 64
/// threads on 64 cores would (without it each thread would run its ops within one time slice,
/// and the few running at a time would never reach the cap).
///
/// Wake latency: every thread writes a steady_clock timestamp into `last_release` just before each
/// deallocate; a request that waited reads it after its allocate returns, and the latency is the
/// time from that release to the return. Which requests waited: those for which the pool called
/// on_stall, which it does on the waiting thread, only for a request queued at the cap, once its
/// first step of the wait (taking back credit stranded in thread caches) is done. Timing the
/// allocate instead would count as waits the allocates that were merely preempted, frequent with
/// 64 threads on a few cores. Left out: waits served before their first step ended, and those with
/// no release after their report (served by credit taken back from caches, or by a release that
/// came while the report ran): neither slept until a release woke it. A release between the one
/// that served the waiter and its return overwrites the timestamp, so each figure is exact or a
/// lower bound. Counters: the median and 99th percentile of the latencies, how many there are, the
/// share of allocations that waited (stats().waits: every wait, measured or not) and the requests
/// that timed out (none expected).
void cap_64_threads(benchmark::State& state, const subject&) {
    static crowd_run run;
    if (state.thread_index() == 0) make_crowd_pool(run, state.range(0) != 0);
    // The draws: a percentile (the low byte) for the choice between allocate and free, and above
    // it which block to free.
    std::vector<std::uint32_t> draws(4096);
    std::mt19937 rng(static_cast<std::uint32_t>(state.thread_index()) + 1);
    for (auto& d : draws)
        d = static_cast<std::uint32_t>(rng());
    std::array<void*, crowd_hold> held{};
    std::size_t count = 0;
    std::vector<double> latencies;
    latencies.reserve(static_cast<std::size_t>(state.max_iterations));
    std::uint64_t allocations = 0;
    std::uint64_t timeouts = 0;
    auto remaining = static_cast<std::uint64_t>(state.max_iterations);
    std::size_t k = 0;
    for (auto _ : state) {
        bpool::pool_resource& pool = *run.pool;
        const std::uint32_t d = draws[k++ & (draws.size() - 1)];
        // Frees whenever it holds as many blocks as steps are left, so that it ends the loop
        // holding one block at most (and so never waits at the final barrier holding more than a
        // waiting request may).
        const bool frees = count == crowd_hold || (count > 0 && count >= remaining) ||
                           (count > 0 && (d & 0xff) % 100 >= crowd_alloc_percent);
        --remaining;
        if (frees) {
            const std::size_t i = (d >> 8) % count;
            run.last_release.store(clock_type::now().time_since_epoch().count(),
                                   std::memory_order_release);
            pool.deallocate(held[i], crowd_block);
            held[i] = held[--count];
        } else {
            ++allocations;
            stalled_at = 0;
            try {
                void* p = pool.allocate(crowd_block);
                const clock_type::rep returned = clock_type::now().time_since_epoch().count();
                touch(p, crowd_block);
                held[count++] = p;
                const clock_type::rep released = run.last_release.load(std::memory_order_acquire);
                if (stalled_at != 0 && released > stalled_at)
                    latencies.push_back(static_cast<double>(returned - released) / 1e3);
            } catch (const bpool::capacity_exceeded&) {
                ++timeouts;
            }
        }
        std::this_thread::yield();
    }
    for (std::size_t i = 0; i < count; ++i)
        run.pool->deallocate(held[i], crowd_block);
    {
        const std::lock_guard lock(run.mutex);
        run.latencies.insert(run.latencies.end(), latencies.begin(), latencies.end());
        run.allocations += allocations;
        run.timeouts += timeouts;
        ++run.merged;
    }
    if (state.thread_index() != 0) return;
    for (;;) {
        {
            const std::lock_guard lock(run.mutex);
            if (run.merged == state.threads()) break;
        }
        std::this_thread::yield();
    }
    const bpool::pool_stats st = run.pool->stats();
    // Google Benchmark sums counters over the threads: only thread 0 sets them.
    state.counters["wake_median_us"] = quantile(run.latencies, 0.5);
    state.counters["wake_p99_us"] = quantile(run.latencies, 0.99);
    state.counters["wake_samples"] = static_cast<double>(run.latencies.size());
    state.counters["waited_share"] =
        run.allocations == 0 ? 0.0
                             : static_cast<double>(st.waits) / static_cast<double>(run.allocations);
    state.counters["timeouts"] = static_cast<double>(run.timeouts);
    run.pool.reset();
}

const bool registered_crowd = add_workload({
    .name = "cap_64_threads",
    .what = "64 threads on one pool capped at 772 KiB (exhaustion::wait; capped:1) or uncapped "
            "(capped:0), each holding 0 to 4 blocks of 4 KiB at random, allocating and freeing, "
            "with a yield after every op so that the threads take turns; wall time per allocate "
            "or free of all threads together",
    .crosses_threads = true,
    .bpool_only = true,
    .run = cap_64_threads,
    // A fixed number of ops: 1000 per thread, 64,000 in all, give tens of thousands of latencies.
    .configure =
        [](benchmark::internal::Benchmark* b) {
            b->ArgName("capped")
                ->Arg(1)
                ->Arg(0)
                ->Threads(crowd_threads)
                ->UseRealTime()
                ->Iterations(1000);
        },
});

}  // namespace
}  // namespace bench
