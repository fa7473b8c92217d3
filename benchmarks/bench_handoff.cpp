// Producer -> consumer: one thread allocates, another frees (the buffer pattern of a pipeline).
// The hand-off is Boost.Lockfree's spsc_queue, so this file is built only where Boost is found.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include <boost/lockfree/spsc_queue.hpp>

#include "affinity.hpp"
#include "churn.hpp"
#include "registry.hpp"

namespace bench {
namespace {

/// A block in flight from the producer to the consumer; a null `p` ends the run.
struct parcel {
    void* p;
    std::size_t size;
};

/// Waits politely: a short spin, then yields. On a loaded 2-core machine a pure spin can keep the
/// other side of a hand-off from running at all.
class spin_wait {
  public:
    void operator()() noexcept {
        if (++spins_ < 64) return;
        spins_ = 0;
        std::this_thread::yield();
    }

  private:
    unsigned spins_ = 0;
};

// spsc_queue's push and pop fail rather than wait; these wait while the ring is full or empty.
using ring = boost::lockfree::spsc_queue<parcel, boost::lockfree::capacity<1024>>;

void push(ring& r, const parcel& b) noexcept {
    spin_wait wait;
    while (!r.push(b))
        wait();
}

/// Takes what the producer has published, up to `batch.size()`, waiting while there is nothing;
/// returns how many. One update of the consumer's index per batch: a push reads that index every
/// time, so updating it per block would move its cache line between the cores on every hand-off.
template <std::size_t N>
std::size_t pop_some(ring& r, std::array<parcel, N>& batch) noexcept {
    spin_wait wait;
    std::size_t n = 0;
    while ((n = r.pop(batch.data(), N)) == 0)
        wait();
    return n;
}

void handoff(benchmark::State& state, const subject& s) {
    static const std::vector<std::uint32_t> sizes =
        log_uniform_sizes(churn_plan::steps, 8, 1024, 3);
    const instance inst = s.make();
    std::pmr::memory_resource& resource = *inst.resource;
    auto queue = std::make_unique<ring>();
    const cpu_pin producer_cpu(0);
    std::thread consumer([&resource, &queue] {
        const cpu_pin consumer_cpu(1);
        std::array<parcel, 64> batch;
        for (;;) {
            const std::size_t n = pop_some(*queue, batch);
            for (std::size_t i = 0; i < n; ++i) {
                if (batch[i].p == nullptr) return;  // the last one: nothing follows it
                // Reads what the producer wrote, as a consumer would.
                benchmark::DoNotOptimize(*static_cast<unsigned char*>(batch[i].p));
                resource.deallocate(batch[i].p, batch[i].size);
            }
        }
    });
    std::uint64_t k = 0;
    for (auto _ : state) {
        const std::size_t size = sizes[k++ & (churn_plan::steps - 1)];
        void* p = resource.allocate(size);
        touch(p, size);
        push(*queue, {p, size});
    }
    push(*queue, {nullptr, 0});
    consumer.join();
}

const bool registered = add_workload({
    .name = "handoff",
    .what = "producer allocates (log-uniform 8 B-1 KiB) and passes the block through a bounded "
            "SPSC ring (Boost.Lockfree's spsc_queue, 1024 slots) to a consumer thread that frees "
            "it; the two threads pinned to two cores; wall time per block",
    .crosses_threads = true,
    .run = handoff,
    .configure = [](benchmark::internal::Benchmark* b) { b->UseRealTime(); },
});

}  // namespace
}  // namespace bench
