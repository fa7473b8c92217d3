// Churn workloads: one thread churning a live set of 1024 blocks (8 B-1 KiB and 8 B-64 KiB), and
// N threads each churning their own live set in one shared instance.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <bpool/pool_resource.hpp>

#include "churn.hpp"
#include "registry.hpp"
#include "shared_instance.hpp"

namespace bench {
namespace {

const churn_plan& plan_1k() {
    static const churn_plan plan = make_churn_plan(1024, 1);
    return plan;
}

const churn_plan& plan_64k() {
    static const churn_plan plan = make_churn_plan(64 * 1024, 2);
    return plan;
}

/// The plans of the threads of `threads_churn`: each thread its own, all alike.
const churn_plan& thread_plan(int thread) {
    static const std::vector<churn_plan> plans = [] {
        std::vector<churn_plan> list;
        for (int t = 0; t < thread_counts().back(); ++t)
            list.push_back(make_churn_plan(1024, 100 + static_cast<std::uint64_t>(t)));
        return list;
    }();
    return plans[static_cast<std::size_t>(thread)];
}

/// Effects: reports a bpool subject's memory after `steps` steps of `plan`, live set still held:
/// bytes held from upstream now and at their peak, idle bytes the pool keeps (caches, central
/// lists, free blocks in chunks), the pool's own (sampled) peak of live bytes, and the true peak
/// of class-rounded live bytes, recomputed from the plan.
void report_memory(benchmark::State& state, const bpool::pool_resource& pool,
                   const churn_plan& plan, std::uint64_t steps) {
    const bpool::pool_stats s = pool.stats();
    const auto rounded = [&pool](std::size_t n) { return pool.block_size(n); };
    const auto peak_live = static_cast<double>(peak_live_bytes(plan, steps, rounded));
    const auto floor = static_cast<double>(class_peaks_bytes(plan, steps, rounded));
    const auto held = static_cast<double>(s.upstream_bytes);
    const auto peak_held = static_cast<double>(s.peak_upstream_bytes);
    state.counters["peak_live"] = peak_live;
    state.counters["pool_peak_live"] = static_cast<double>(s.peak_live_bytes);
    state.counters["cached"] = static_cast<double>(s.cached_bytes);
    state.counters["held"] = held;
    state.counters["peak_held"] = peak_held;
    state.counters["held_ratio"] = held / peak_live;
    state.counters["peak_held_ratio"] = peak_held / peak_live;
    state.counters["class_floor_ratio"] = floor / peak_live;
}

void churn(benchmark::State& state, const subject& s, const churn_plan& plan) {
    const instance inst = s.make();
    std::uint64_t k = 0;
    live_set set(*inst.resource, plan);
    for (auto _ : state)
        set.step(k++);
    if (inst.pool != nullptr) report_memory(state, *inst.pool, plan, k);
}

void threads_churn(benchmark::State& state, const subject& s) {
    static shared_instance shared;
    std::pmr::memory_resource& resource = shared.acquire(s);
    {
        live_set set(resource, thread_plan(state.thread_index()));
        std::uint64_t k = 0;
        for (auto _ : state)
            set.step(k++);
    }
    shared.release();
}

const bool registered_1k = add_workload({
    .name = "churn_1k",
    .what = "one thread: free a random block of a live set of 1024, allocate a new one of "
            "log-uniform size in 8 B-1 KiB, touch it",
    .run = [](benchmark::State& state, const subject& s) { churn(state, s, plan_1k()); },
});

const bool registered_64k = add_workload({
    .name = "churn_64k",
    .what = "as churn_1k with sizes log-uniform in 8 B-64 KiB",
    .run = [](benchmark::State& state, const subject& s) { churn(state, s, plan_64k()); },
});

const bool registered_threads = add_workload({
    .name = "threads_churn",
    .what = "N threads, each churning its own live set of 1024 blocks (8 B-1 KiB) in one shared "
            "instance; wall time per op of all threads together",
    .crosses_threads = true,
    .run = threads_churn,
    .configure =
        [](benchmark::internal::Benchmark* b) {
            for (const int n : thread_counts())
                b->Threads(n);
            b->UseRealTime();
        },
});

}  // namespace
}  // namespace bench
