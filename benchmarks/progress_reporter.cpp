#include "progress_reporter.hpp"

#include <cstdio>

namespace bench {
namespace {

double ns_per_op(const benchmark::BenchmarkReporter::Run& run) {
    return run.GetAdjustedRealTime() * 1e9 / benchmark::GetTimeUnitMultiplier(run.time_unit);
}

}  // namespace

bool progress_reporter::ReportContext(const Context&) {
    return true;
}

void progress_reporter::ReportRuns(const std::vector<Run>& runs) {
    const Run* median = nullptr;
    const Run* min = nullptr;
    const Run* max = nullptr;
    for (const Run& run : runs) {
        if (run.error_occurred) {
            std::fprintf(stdout, "[%7d] %-44s ERROR: %s\n", next_++, run.benchmark_name().c_str(),
                         run.error_message.c_str());
            std::fflush(stdout);
            return;
        }
        if (run.run_type == Run::RT_Aggregate) {
            if (run.aggregate_name == "median") median = &run;
            if (run.aggregate_name == "min") min = &run;
            if (run.aggregate_name == "max") max = &run;
        }
    }
    // Without repetitions there are no aggregates: the single run is the figure.
    if (median == nullptr && !runs.empty() && runs.front().run_type == Run::RT_Iteration &&
        runs.front().repetitions <= 1)
        median = &runs.front();
    if (median == nullptr) return;  // the per-repetition runs; the aggregates follow
    char number[32];
    if (total_ > 0)
        std::snprintf(number, sizeof(number), "%d/%d", next_++, total_);
    else
        std::snprintf(number, sizeof(number), "%d", next_++);
    std::fprintf(stdout, "[%7s] %-44s %10.1f ns/op", number, median->run_name.str().c_str(),
                 ns_per_op(*median));
    if (min != nullptr && max != nullptr)
        std::fprintf(stdout, "  (%.1f .. %.1f)", ns_per_op(*min), ns_per_op(*max));
    if (const auto it = median->counters.find("peak_held_ratio"); it != median->counters.end())
        std::fprintf(stdout, "  peak held / peak live %.2f", it->second.value);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

}  // namespace bench
