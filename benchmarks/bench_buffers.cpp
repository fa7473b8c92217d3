// Buffer workloads: get a 32 KiB or 1 MiB buffer, write 1 KiB into it, put it back; get a 64 KiB
// buffer aligned to 4 KiB (an O_DIRECT-style I/O buffer), write all of it, put it back.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <bpool/pool_resource.hpp>

#include "registry.hpp"

namespace bench {
namespace {

void buffer_cycle(benchmark::State& state, const subject& s, std::size_t size) {
    const instance inst = s.make();
    std::array<unsigned char, 1024> payload{};
    payload.fill(0x42);
    for (auto _ : state) {
        void* p = inst.resource->allocate(size);
        std::memcpy(p, payload.data(), payload.size());
        benchmark::DoNotOptimize(p);
        benchmark::ClobberMemory();
        inst.resource->deallocate(p, size);
    }
}

/// One op: allocates `size` bytes aligned to `alignment`, fills them all, deallocates. Every
/// subject gets the request through its memory_resource: bpool's pool_resource,
/// bpool::mimalloc_resource's `mi_malloc_aligned` / `mi_free_size_aligned`, the malloc subject's
/// `aligned_alloc` / `free` (glibc's, or a preloaded allocator's). For a bpool subject, reports as
/// `pooled` the share of its allocations served by a size class (1: every buffer pooled; 0: every
/// one from upstream).
void aligned_buffer_cycle(benchmark::State& state, const subject& s, std::size_t size,
                          std::size_t alignment) {
    const instance inst = s.make();
    for (auto _ : state) {
        void* p = inst.resource->allocate(size, alignment);
        if ((reinterpret_cast<std::uintptr_t>(p) & (alignment - 1)) != 0) {
            state.SkipWithError("a buffer was not aligned as requested");
            inst.resource->deallocate(p, size, alignment);
            break;
        }
        std::memset(p, 0x42, size);
        benchmark::DoNotOptimize(p);
        benchmark::ClobberMemory();
        inst.resource->deallocate(p, size, alignment);
    }
    if (inst.pool != nullptr) {
        const bpool::pool_stats st = inst.pool->stats();
        std::uint64_t pooled = 0;
        for (const bpool::size_class_stats& c : st.classes)
            pooled += c.allocations;
        state.counters["pooled"] =
            st.allocations == 0 ? 0.0
                                : static_cast<double>(pooled) / static_cast<double>(st.allocations);
    }
}

const bool registered_32k = add_workload({
    .name = "buffer_32k",
    .what = "allocate a 32 KiB buffer, write 1 KiB, deallocate",
    .run = [](benchmark::State& state,
              const subject& s) { buffer_cycle(state, s, std::size_t{32} << 10); },
});

const bool registered_1m = add_workload({
    .name = "buffer_1m",
    .what = "allocate a 1 MiB buffer, write 1 KiB, deallocate",
    .run = [](benchmark::State& state,
              const subject& s) { buffer_cycle(state, s, std::size_t{1} << 20); },
});

const bool registered_64k_aligned = add_workload({
    .name = "buffer_64k_a4k",
    .what = "allocate a 64 KiB buffer aligned to 4 KiB, write all of it (memset), deallocate",
    .run = [](benchmark::State& state,
              const subject& s) { aligned_buffer_cycle(state, s, std::size_t{64} << 10, 4096); },
});

}  // namespace
}  // namespace bench
