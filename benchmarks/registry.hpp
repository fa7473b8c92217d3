// registry: workloads register themselves here; main() crosses them with the subjects.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "subjects.hpp"

namespace bench {

/// A workload: one benchmark per subject, named "<name>/<subject>".
struct workload {
    /// The family name, first component of the benchmark names.
    std::string name;
    /// What one op is, for the report (one line).
    std::string what;
    /// Shares an instance between threads: runs with the thread-safe subjects only.
    bool crosses_threads = false;
    /// Measures a feature of bpool alone: runs once, as subject "bpool".
    bool bpool_only = false;
    /// The benchmark body.
    std::function<void(benchmark::State&, const subject&)> run;
    /// Extra settings: threads, real or manual time...
    std::function<void(benchmark::internal::Benchmark*)> configure{};
};

/// Effects: adds `w` to the registry. Returns true, so that a workload registers itself with
/// `const bool registered = add_workload({...});` at namespace scope in its bench_*.cpp.
bool add_workload(workload w);

/// Returns every registered workload, in registration order.
[[nodiscard]] const std::vector<workload>& workloads();

/// Effects: registers with Google Benchmark one benchmark per (workload, eligible subject), each
/// also reporting the min and max of its repetitions, and adds each workload's description to
/// the run's context as "workload:<name>".
void register_benchmarks();

/// Returns the thread counts of the scaling workloads: 1, 2, 4, 8, 16 up to the number of cores
/// this process may use (its affinity mask, as `nproc` counts them; at most 16), and that number.
[[nodiscard]] std::vector<int> thread_counts();

}  // namespace bench
