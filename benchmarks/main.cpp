// bpool_bench (and bpool_bench_mimalloc): every workload x every subject of this binary.
//   --progress=FIRST/TOTAL  numbers the progress lines (scripts/bench runs several processes)
// and Google Benchmark's own flags (--benchmark_filter, --benchmark_repetitions,
// --benchmark_out...).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#if __has_include(<boost/version.hpp>)
#include <boost/version.hpp>
#else
#define BOOST_LIB_VERSION "none"
#endif

#include "malloc_identity.hpp"
#include "progress_reporter.hpp"
#include "registry.hpp"

namespace {

/// Effects: removes "--progress=FIRST/TOTAL" from argv, storing its numbers.
void take_progress_flag(int* argc, char** argv, int* first, int* total) {
    int out = 1;
    for (int i = 1; i < *argc; ++i) {
        if (std::strncmp(argv[i], "--progress=", 11) == 0) {
            if (std::sscanf(argv[i] + 11, "%d/%d", first, total) != 2) {
                std::fprintf(stderr, "bad flag %s: expected --progress=FIRST/TOTAL\n", argv[i]);
                std::exit(2);
            }
        } else {
            argv[out++] = argv[i];
        }
    }
    *argc = out;
}

/// Effects: records what the report's header needs in the run's context (the JSON output).
void add_context() {
    const bench::malloc_identity id = bench::identify_malloc();
    benchmark::AddCustomContext("malloc", id.name);
    benchmark::AddCustomContext("malloc_version", id.version);
    benchmark::AddCustomContext("malloc_library", id.library);
    benchmark::AddCustomContext("compiler", "g++ " __VERSION__);
    benchmark::AddCustomContext("libstdcxx", std::to_string(__GLIBCXX__));
    benchmark::AddCustomContext("boost", BOOST_LIB_VERSION);
    std::string names;
    for (const bench::subject& s : bench::subjects())
        names += (names.empty() ? "" : " ") + s.name;
    benchmark::AddCustomContext("subjects", names);
}

}  // namespace

int main(int argc, char** argv) {
    bench::check_expected_malloc();
    int first = 1;
    int total = 0;
    take_progress_flag(&argc, argv, &first, &total);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    add_context();
    bench::register_benchmarks();
    bench::progress_reporter reporter(first, total);
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
