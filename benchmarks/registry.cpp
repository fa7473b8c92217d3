#include "registry.hpp"

#include <algorithm>
#include <sched.h>
#include <thread>
#include <utility>

namespace bench {
namespace {

std::vector<workload>& registry() {
    static std::vector<workload> list;  // function-local: filled during static initialization
    return list;
}

double min_of(const std::vector<double>& v) {
    return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end());
}
double max_of(const std::vector<double>& v) {
    return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end());
}

/// Returns the number of CPUs this process may run on (its affinity mask, as nproc counts them),
/// or hardware_concurrency() if the mask cannot be read.
int usable_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    return static_cast<int>(std::thread::hardware_concurrency());
}

}  // namespace

bool add_workload(workload w) {
    registry().push_back(std::move(w));
    return true;
}

const std::vector<workload>& workloads() {
    return registry();
}

void register_benchmarks() {
    for (const workload& w : workloads()) {
        benchmark::AddCustomContext("workload:" + w.name, w.what);
        for (const subject& s : subjects()) {
            if (w.crosses_threads && !s.thread_safe) continue;
            if (w.bpool_only && s.name != "bpool") continue;
            auto* b = benchmark::RegisterBenchmark(
                (w.name + "/" + s.name).c_str(),
                [&w, &s](benchmark::State& state) { w.run(state, s); });
            b->ComputeStatistics("min", min_of)->ComputeStatistics("max", max_of);
            if (w.configure) w.configure(b);
        }
    }
}

std::vector<int> thread_counts() {
    const int cores = std::clamp(usable_cpus(), 1, 16);
    std::vector<int> counts;
    for (int n = 1; n < cores; n *= 2)
        counts.push_back(n);
    counts.push_back(cores);
    return counts;
}

}  // namespace bench
