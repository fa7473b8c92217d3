// Threads as a server has them: one busy thread beside many idle threads that once used the same
// instance (idle_threads), and short-lived threads, one after the other, each using the instance a
// little and exiting (short_threads).
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <memory_resource>
#include <pthread.h>
#include <string>
#include <vector>

#include "churn.hpp"
#include "registry.hpp"

namespace bench {
namespace {

using clock_type = std::chrono::steady_clock;

/// The stack of the threads started here: small, so that 2048 idle ones cost little (128 MiB of
/// address space, of which each thread touches a few pages).
constexpr std::size_t stack_bytes = std::size_t{64} << 10;

/// Effects: starts a thread running `fn(arg)` with a stack of `stack_bytes` (std::thread cannot
/// set one) and stores its handle in `*thread`.
/// Returns: pthread_create's status (0: started).
int start_thread(pthread_t* thread, void* (*fn)(void*), void* arg) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, stack_bytes);
    const int rc = pthread_create(thread, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    return rc;
}

/// The blocks of idle_threads: the busy thread builds `busy_blocks` of `busy_bytes` and tears them
/// down again, round after round; each idle thread allocates and frees one such block.
constexpr std::size_t busy_blocks = 2000;
constexpr std::size_t busy_bytes = 64;

/// Untimed rounds before the timed ones: a thread cache adapts to its thread's use over the first
/// rounds, and a long-running server's busy thread is past them.
constexpr int warmup_rounds = 20;

/// What the idle threads share: the instance they use once, and the two moments they wait for.
struct idle_crowd {
    std::pmr::memory_resource* resource;
    std::latch registered;  ///< Counted down by each idle thread once it has used the instance.
    std::latch go_home;     ///< Counted down once the busy thread is done.
};

/// An idle thread: allocates and frees one block (so that the instance knows the thread: a bpool
/// thread cache, a mimalloc heap, a glibc tcache and arena), then sleeps until the end.
void* idle_thread(void* arg) {
    idle_crowd& crowd = *static_cast<idle_crowd*>(arg);
    void* p = crowd.resource->allocate(busy_bytes);
    touch(p, busy_bytes);
    crowd.resource->deallocate(p, busy_bytes);
    crowd.registered.count_down();
    crowd.go_home.wait();
    return nullptr;
}

/// One op: one allocate + deallocate pair of the busy thread, which builds 2000 blocks of 64 B
/// and frees them all, round after round, while state.range(0) idle threads that used the
/// instance once sleep. One iteration is one round; its time divided by 2000 is the manual time.
void idle_threads(benchmark::State& state, const subject& s) {
    const instance inst = s.make();
    std::pmr::memory_resource& resource = *inst.resource;
    const auto idle = static_cast<std::ptrdiff_t>(state.range(0));
    idle_crowd crowd{&resource, std::latch(idle), std::latch(1)};
    std::vector<pthread_t> threads(static_cast<std::size_t>(idle));
    std::ptrdiff_t started = 0;
    int rc = 0;
    while (started < idle && (rc = start_thread(&threads[static_cast<std::size_t>(started)],
                                                idle_thread, &crowd)) == 0)
        ++started;
    crowd.registered.count_down(idle - started);  // for the threads that could not start
    crowd.registered.wait();
    if (started < idle)
        state.SkipWithError(("started " + std::to_string(started) + " of " + std::to_string(idle) +
                             " idle threads (pthread_create: error " + std::to_string(rc) + ")")
                                .c_str());

    std::vector<void*> blocks(busy_blocks);
    const auto round = [&] {
        for (void*& p : blocks) {
            p = resource.allocate(busy_bytes);
            touch(p, busy_bytes);
        }
        for (void* p : blocks)
            resource.deallocate(p, busy_bytes);
    };
    if (started == idle)
        for (int r = 0; r < warmup_rounds; ++r)
            round();
    for (auto _ : state) {
        const clock_type::time_point start = clock_type::now();
        round();
        const std::chrono::duration<double> took = clock_type::now() - start;
        state.SetIterationTime(took.count() / busy_blocks);
    }
    crowd.go_home.count_down();
    for (std::ptrdiff_t t = 0; t < started; ++t)
        pthread_join(threads[static_cast<std::size_t>(t)], nullptr);
}

/// What each short-lived thread allocates: 100 blocks, log-uniform in 16 B-1 KiB.
constexpr std::size_t task_blocks = 100;

const std::vector<std::uint32_t>& task_sizes() {
    static const std::vector<std::uint32_t> sizes = log_uniform_sizes(task_blocks, 16, 1024, 7);
    return sizes;
}

/// A short-lived thread: allocates (and touches) its 100 blocks, frees them all, exits.
void* short_thread(void* arg) {
    std::pmr::memory_resource& resource = *static_cast<std::pmr::memory_resource*>(arg);
    const std::vector<std::uint32_t>& sizes = task_sizes();
    std::array<void*, task_blocks> blocks;
    for (std::size_t i = 0; i < task_blocks; ++i) {
        blocks[i] = resource.allocate(sizes[i]);
        touch(blocks[i], sizes[i]);
    }
    for (std::size_t i = 0; i < task_blocks; ++i)
        resource.deallocate(blocks[i], sizes[i]);
    return nullptr;
}

/// One op: one thread's life: started, it allocates 100 blocks and frees them, then exits and
/// is joined, before the next one starts.
void short_threads(benchmark::State& state, const subject& s) {
    const instance inst = s.make();
    (void)task_sizes();  // drawn before timing
    for (auto _ : state) {
        pthread_t thread;
        if (const int rc = start_thread(&thread, short_thread, inst.resource); rc != 0) {
            state.SkipWithError(("pthread_create: error " + std::to_string(rc)).c_str());
            break;
        }
        pthread_join(thread, nullptr);
    }
}

const bool registered_idle = add_workload({
    .name = "idle_threads",
    .what = "one busy thread allocates 2000 blocks of 64 B and frees them all, round after round, "
            "while 0, 128 or 2048 other threads (idle:N) that each allocated and freed one block "
            "of the same instance sleep until the end; time per allocate + free pair of the busy "
            "thread, after 20 untimed rounds",
    .crosses_threads = true,
    .run = idle_threads,
    // A fixed number of rounds: each repetition starts its own idle threads (a fresh instance
    // each time), which a minimum time would make gbench redo for every trial run.
    .configure =
        [](benchmark::internal::Benchmark* b) {
            b->ArgName("idle")->Arg(0)->Arg(128)->Arg(2048)->UseManualTime()->Iterations(500);
        },
});

const bool registered_short = add_workload({
    .name = "short_threads",
    .what = "10,000 threads, one after the other: each allocates 100 blocks (log-uniform "
            "16 B-1 KiB), frees them and exits; wall time per thread, its start and join included",
    .crosses_threads = true,
    .run = short_threads,
    .configure = [](benchmark::internal::Benchmark* b) { b->UseRealTime()->Iterations(10000); },
});

}  // namespace
}  // namespace bench
