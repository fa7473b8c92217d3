// Producer -> consumer: one thread allocates, another frees (the buffer pattern of a pipeline).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "affinity.hpp"
#include "churn.hpp"
#include "registry.hpp"
#include "spsc_ring.hpp"

namespace bench {
namespace {

/// A block in flight from the producer to the consumer; a null `p` ends the run.
struct parcel {
    void* p;
    std::size_t size;
};

void handoff(benchmark::State& state, const subject& s) {
    static const std::vector<std::uint32_t> sizes =
        log_uniform_sizes(churn_plan::steps, 8, 1024, 3);
    const instance inst = s.make();
    std::pmr::memory_resource& resource = *inst.resource;
    auto ring = std::make_unique<spsc_ring<parcel, 1024>>();
    const cpu_pin producer_cpu(0);
    std::thread consumer([&resource, &ring] {
        const cpu_pin consumer_cpu(1);
        for (parcel b = ring->pop(); b.p != nullptr; b = ring->pop()) {
            // Reads what the producer wrote, as a consumer would.
            benchmark::DoNotOptimize(*static_cast<unsigned char*>(b.p));
            resource.deallocate(b.p, b.size);
        }
    });
    std::uint64_t k = 0;
    for (auto _ : state) {
        const std::size_t size = sizes[k++ & (churn_plan::steps - 1)];
        void* p = resource.allocate(size);
        touch(p, size);
        ring->push({p, size});
    }
    ring->push({nullptr, 0});
    consumer.join();
}

const bool registered = add_workload({
    .name = "handoff",
    .what = "producer allocates (log-uniform 8 B-1 KiB) and passes the block through a bounded "
            "SPSC ring to a consumer thread that frees it; the two threads pinned to two cores; "
            "wall time per block",
    .crosses_threads = true,
    .run = handoff,
    .configure = [](benchmark::internal::Benchmark* b) { b->UseRealTime(); },
});

}  // namespace
}  // namespace bench
