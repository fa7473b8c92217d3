// Buffer workloads: get a 32 KiB or 1 MiB buffer, write 1 KiB into it, put it back.
#include <array>
#include <cstddef>
#include <cstring>

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

}  // namespace
}  // namespace bench
