// Streams: formatting 1 KiB to 1 MiB of text into a fresh bpool::ostream (storage from a pool)
// against a fresh std::ostringstream (storage from the global heap). Each iteration builds a
// stream, fills it and destroys it, as a log writer or a response builder does.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string_view>

#include <bpool/adapters/streambuf.hpp>
#include <bpool/pool_resource.hpp>

#include <benchmark/benchmark.h>

namespace {

// One log-like line with numbers to format: about 60 characters.
template <class Stream>
void format_line(Stream& os, std::size_t i) {
    os << "request " << i << " from 10.0.0." << (i % 256) << " took " << (i * 37 % 1000)
       << " us, status=" << (i % 7 == 0 ? "retry" : "ok") << '\n';
}

// Pieces of text with no formatting: what the buffer itself costs.
constexpr std::string_view piece = "a 32-byte piece of text to copy\n";

template <class Stream>
void fill_formatted(Stream& os, std::size_t bytes) {
    const std::size_t lines = bytes / 60 + 1;
    for (std::size_t i = 0; i < lines; ++i)
        format_line(os, i);
}

template <class Stream>
void fill_appended(Stream& os, std::size_t bytes) {
    for (std::size_t n = 0; n < bytes; n += piece.size())
        os << piece;
}

void report(benchmark::State& state, std::size_t produced) {
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(produced));
    state.counters["bytes"] = static_cast<double>(produced);
}

void BM_format_std_ostringstream(benchmark::State& state) {
    const auto bytes = static_cast<std::size_t>(state.range(0));
    std::size_t produced = 0;
    for (auto _ : state) {
        std::ostringstream os;
        fill_formatted(os, bytes);
        benchmark::DoNotOptimize(os.view().data());
        produced = os.view().size();
    }
    report(state, produced);
}

void BM_format_bpool_ostream(benchmark::State& state) {
    const auto bytes = static_cast<std::size_t>(state.range(0));
    bpool::pool_resource pool;
    std::size_t produced = 0;
    for (auto _ : state) {
        bpool::ostream os(pool);
        fill_formatted(os, bytes);
        benchmark::DoNotOptimize(os.view().data());
        produced = os.view().size();
    }
    report(state, produced);
}

void BM_append_std_ostringstream(benchmark::State& state) {
    const auto bytes = static_cast<std::size_t>(state.range(0));
    std::size_t produced = 0;
    for (auto _ : state) {
        std::ostringstream os;
        fill_appended(os, bytes);
        benchmark::DoNotOptimize(os.view().data());
        produced = os.view().size();
    }
    report(state, produced);
}

void BM_append_bpool_ostream(benchmark::State& state) {
    const auto bytes = static_cast<std::size_t>(state.range(0));
    bpool::pool_resource pool;
    std::size_t produced = 0;
    for (auto _ : state) {
        bpool::ostream os(pool);
        fill_appended(os, bytes);
        benchmark::DoNotOptimize(os.view().data());
        produced = os.view().size();
    }
    report(state, produced);
}

}  // namespace

BENCHMARK(BM_format_std_ostringstream)->RangeMultiplier(4)->Range(1 << 10, 1 << 20);
BENCHMARK(BM_format_bpool_ostream)->RangeMultiplier(4)->Range(1 << 10, 1 << 20);
BENCHMARK(BM_append_std_ostringstream)->RangeMultiplier(4)->Range(1 << 10, 1 << 20);
BENCHMARK(BM_append_bpool_ostream)->RangeMultiplier(4)->Range(1 << 10, 1 << 20);
