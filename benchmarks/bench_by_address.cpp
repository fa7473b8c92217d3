// Blocks found by address (the pagemap), on bpool alone, each as a pair of runs of one workload:
//   churn_1k_direct   the churn_1k churn with a block served directly by upstream (2 MiB, above
//                     largest_pooled_block) live for the whole run (direct_live:1), against the
//                     same churn with none live (direct_live:0): a live direct block must not slow
//                     the other frees down (goal: at most x1.05)
//   churn_1k_bypass   the same on a pool capped at 8 MiB with exhaustion::bypass, with a 64 KiB
//                     block served by the bypass policy live (bypass_live:1) or not
//                     (bypass_live:0): before the pagemap, such a block sent every free of the pool
//                     down a locked slow path (goal: at most x1.05)
//   churn_1k_unsized  the same churn giving every block back with deallocate_unsized(p)
//                     (unsized:1) against deallocate(p, n) (unsized:0) (goal: at most x1.15)
// The two runs of a pair come from one process, one after the other, so that their ratio compares
// figures taken seconds apart; the report sets them side by side (report.py, "Blocks by address").
#include <cstddef>
#include <cstdint>
#include <vector>

#include <bpool/pool_resource.hpp>

#include "churn.hpp"
#include "registry.hpp"

namespace bench {
namespace {

/// The plan of churn_1k (same bound, same seed): these pairs churn exactly what it churns.
const churn_plan& plan_1k() {
    static const churn_plan plan = make_churn_plan(1024, 1);
    return plan;
}

/// The size of the direct block: twice the default largest_pooled_block (1 MiB).
constexpr std::size_t direct_bytes = std::size_t{2} << 20;

/// The capacity of the churn_1k_bypass pool, far above what the churn holds, and the size of the
/// block the bypass policy serves there.
constexpr std::size_t bypass_capacity = std::size_t{8} << 20;
constexpr std::size_t bypass_bytes = std::size_t{64} << 10;

/// Effects: allocates blocks of `bypass_bytes` from `pool` (capped, exhaustion::bypass) until the
/// cap makes the pool serve one by the bypass policy, then frees all the others.
/// Returns: that block, or null if none was served so within twice the capacity.
void* take_bypass_block(bpool::pool_resource& pool) {
    const std::uint64_t before = pool.stats().bypasses;
    std::vector<void*> filled;
    void* bypassed = nullptr;
    while (bypassed == nullptr && filled.size() < 2 * bypass_capacity / bypass_bytes) {
        void* p = pool.allocate(bypass_bytes);
        if (pool.stats().bypasses != before) {
            bypassed = p;
        } else {
            filled.push_back(p);
        }
    }
    for (void* p : filled)
        pool.deallocate(p, bypass_bytes);
    return bypassed;
}

/// The churn_1k churn (the same live_set code as churn_1k) on `pool`; reports as
/// `outside_live_bytes` the bytes live outside the size classes at the end of the run: the pool's
/// `large_live_bytes` plus its `bypass_live_bytes`.
void run_churn(benchmark::State& state, bpool::pool_resource& pool) {
    {
        live_set set(pool, plan_1k());
        std::uint64_t k = 0;
        for (auto _ : state)
            set.step(k++);
    }
    const bpool::pool_stats st = pool.stats();
    state.counters["outside_live_bytes"] =
        static_cast<double>(st.large_live_bytes + st.bypass_live_bytes);
}

/// One op: a step of the churn_1k churn on the subject's pool, with a direct block live for the
/// whole run if state.range(0) is 1.
void churn_direct(benchmark::State& state, const subject& s) {
    const instance inst = s.make();
    bpool::pool_resource& pool = *inst.pool;
    void* direct = nullptr;
    if (state.range(0) != 0) {
        direct = pool.allocate(direct_bytes);
        touch(direct, direct_bytes);
    }
    run_churn(state, pool);
    if (direct != nullptr) pool.deallocate(direct, direct_bytes);
}

/// One op: a step of the churn_1k churn on a pool capped at `bypass_capacity` with
/// exhaustion::bypass, with a block served by the bypass policy live for the whole run if
/// state.range(0) is 1. Both runs fill the pool to its cap and free it first, the baseline freeing
/// its bypass block too, so that they start from the same pool.
void churn_bypass(benchmark::State& state, const subject&) {
    bpool::pool_resource pool(
        {.capacity = bypass_capacity, .on_exhaustion = bpool::exhaustion::bypass});
    void* bypassed = take_bypass_block(pool);
    if (bypassed == nullptr) {
        state.SkipWithError("the capped pool served no block by the bypass policy");
        return;
    }
    if (state.range(0) == 0) {
        pool.deallocate(bypassed, bypass_bytes);
        bypassed = nullptr;
    }
    run_churn(state, pool);
    if (bypassed != nullptr) pool.deallocate(bypassed, bypass_bytes);
}

/// One op: a step of the churn_1k churn on `pool`'s own type, freeing with
/// `deallocate_unsized(p)` if `unsized`, else `deallocate(p, n)`; everything else is the same code
/// for both (live_set frees through a memory_resource&, which deallocate_unsized is not part of).
template <bool unsized>
void churn_freeing(benchmark::State& state, bpool::pool_resource& pool, const churn_plan& plan) {
    struct block {
        void* p;
        std::size_t size;
    };
    std::vector<block> blocks;
    blocks.reserve(plan.initial.size());
    for (const std::uint32_t n : plan.initial) {
        void* p = pool.allocate(n);
        touch(p, n);
        blocks.push_back({p, n});
    }
    std::uint64_t k = 0;
    for (auto _ : state) {
        const std::size_t i = k++ & (churn_plan::steps - 1);
        block& b = blocks[plan.slots[i]];
        if constexpr (unsized) {
            pool.deallocate_unsized(b.p);
        } else {
            pool.deallocate(b.p, b.size);
        }
        b.size = plan.sizes[i];
        b.p = pool.allocate(b.size);
        touch(b.p, b.size);
    }
    for (const block& b : blocks)
        pool.deallocate(b.p, b.size);
}

void churn_unsized(benchmark::State& state, const subject& s) {
    const instance inst = s.make();
    if (state.range(0) != 0) {
        churn_freeing<true>(state, *inst.pool, plan_1k());
    } else {
        churn_freeing<false>(state, *inst.pool, plan_1k());
    }
}

const bool registered_direct = add_workload({
    .name = "churn_1k_direct",
    .what = "churn_1k on bpool with one 2 MiB block served directly by upstream live for the "
            "whole run (direct_live:1) or none (direct_live:0)",
    .bpool_only = true,
    .run = churn_direct,
    .configure =
        [](benchmark::internal::Benchmark* b) { b->ArgName("direct_live")->Arg(0)->Arg(1); },
});

const bool registered_bypass = add_workload({
    .name = "churn_1k_bypass",
    .what = "churn_1k on bpool capped at 8 MiB with exhaustion::bypass, with one 64 KiB block "
            "served by the bypass policy live for the whole run (bypass_live:1) or none "
            "(bypass_live:0)",
    .bpool_only = true,
    .run = churn_bypass,
    .configure =
        [](benchmark::internal::Benchmark* b) { b->ArgName("bypass_live")->Arg(0)->Arg(1); },
});

const bool registered_unsized = add_workload({
    .name = "churn_1k_unsized",
    .what = "churn_1k on bpool, each block given back with deallocate_unsized(p) (unsized:1) or "
            "deallocate(p, n) (unsized:0)",
    .bpool_only = true,
    .run = churn_unsized,
    .configure = [](benchmark::internal::Benchmark* b) { b->ArgName("unsized")->Arg(0)->Arg(1); },
});

}  // namespace
}  // namespace bench
