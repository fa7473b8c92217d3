// progress_reporter: one line per benchmark on the console while the suite runs.
#pragma once

#include <vector>

#include <benchmark/benchmark.h>

namespace bench {

/// Prints one line per benchmark: "[k/total] name  median ns/op  (min .. max)", plus the held /
/// peak-live ratio where the benchmark reports one. The full results go to the JSON file
/// (--benchmark_out); this is only for the person watching. `first` and `total` number the lines
/// across the several processes of one scripts/bench run.
class progress_reporter final : public benchmark::BenchmarkReporter {
  public:
    progress_reporter(int first, int total) : next_(first), total_(total) {}

    bool ReportContext(const Context& context) override;
    void ReportRuns(const std::vector<Run>& runs) override;

  private:
    int next_;
    int total_;
};

}  // namespace bench
