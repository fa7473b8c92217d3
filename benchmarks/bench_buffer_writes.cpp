// Building a message by small writes: bpool::buffer writes vs std::pmr::string appends, each over
// every subject (a std::pmr::string over glibc is std::string: operator new is malloc).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "churn.hpp"
#include "registry.hpp"

#if __has_include(<bpool/buffer.hpp>)
#include <bpool/buffer.hpp>
#define BPOOL_BENCH_HAVE_BUFFER 1
#endif

namespace bench {
namespace {

/// The fragments of one message: 64 log-uniform lengths in 8 B-256 B (about 4.5 KiB in all).
const std::vector<std::uint32_t>& fragments() {
    static const std::vector<std::uint32_t> lengths = log_uniform_sizes(64, 8, 256, 6);
    return lengths;
}

const std::string_view text() {
    static const std::string chars(256, 'y');
    return chars;
}

void string_appends(benchmark::State& state, const subject& s) {
    const instance inst = s.make();
    for (auto _ : state) {
        std::pmr::string message(inst.resource);
        for (const std::uint32_t n : fragments())
            message.append(text().substr(0, n));
        benchmark::DoNotOptimize(message.data());
    }
}

const bool registered_string = add_workload({
    .name = "string_appends",
    .what = "build a message of 64 appends of 8-256 B (~4.5 KiB) into a std::pmr::string, "
            "destroy it",
    .run = string_appends,
});

#if BPOOL_BENCH_HAVE_BUFFER
void buffer_writes(benchmark::State& state, const subject& s) {
    const instance inst = s.make();
    for (auto _ : state) {
        bpool::buffer message(inst.resource);
        for (const std::uint32_t n : fragments())
            message.append(text().substr(0, n));
        benchmark::DoNotOptimize(message.data());
    }
}

const bool registered_buffer = add_workload({
    .name = "buffer_writes",
    .what = "as string_appends, into a bpool::buffer (write) over the subject",
    .run = buffer_writes,
});
#endif

}  // namespace
}  // namespace bench
