// pmr containers built on the subject: vector growth, strings, map nodes.
#include <cstddef>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "churn.hpp"
#include "registry.hpp"

namespace bench {
namespace {

void vector_build(benchmark::State& state, const subject& s) {
    const instance inst = s.make();
    for (auto _ : state) {
        std::pmr::vector<std::uint64_t> v(inst.resource);
        for (std::uint64_t i = 0; i < 1000; ++i)
            v.push_back(i);
        benchmark::DoNotOptimize(v.data());
    }
}

void string_build(benchmark::State& state, const subject& s) {
    static const std::vector<std::uint32_t> lengths = log_uniform_sizes(256, 16, 512, 4);
    static const std::string text(512, 'x');
    const instance inst = s.make();
    for (auto _ : state) {
        std::pmr::vector<std::pmr::string> v(inst.resource);
        v.reserve(lengths.size());
        for (const std::uint32_t n : lengths)
            v.emplace_back(std::string_view(text).substr(0, n));
        benchmark::DoNotOptimize(v.data());
    }
}

void map_build(benchmark::State& state, const subject& s) {
    static const std::vector<std::uint64_t> keys = [] {
        std::mt19937_64 rng(5);
        std::vector<std::uint64_t> k(1000);
        for (auto& key : k)
            key = rng();
        return k;
    }();
    const instance inst = s.make();
    for (auto _ : state) {
        std::pmr::map<std::uint64_t, std::uint64_t> m(inst.resource);
        for (const std::uint64_t key : keys)
            m.emplace(key, key);
        benchmark::DoNotOptimize(m.size());
    }
}

const bool registered_vector = add_workload({
    .name = "pmr_vector",
    .what = "build a pmr::vector<uint64_t> by 1000 push_backs (11 regrowths), destroy it",
    .run = vector_build,
});

const bool registered_string = add_workload({
    .name = "pmr_string",
    .what = "build a pmr::vector of 256 pmr::strings of 16-512 chars, destroy it",
    .run = string_build,
});

const bool registered_map = add_workload({
    .name = "pmr_map",
    .what = "build a pmr::map<uint64_t, uint64_t> of 1000 random keys, destroy it",
    .run = map_build,
});

}  // namespace
}  // namespace bench
