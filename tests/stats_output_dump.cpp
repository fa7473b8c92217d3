// Prints a snapshot with something in every part (tests/support/stats_activity.hpp) as JSON on
// the first line, then in Prometheus' text format: stats_output_parse.py parses both.
#include <iostream>

#include <bpool/stats.hpp>

#include "support/stats_activity.hpp"

int main() {
    const bpool::pool_stats s = bpool::test::stats_with_a_finished_wait();
    std::cout << bpool::to_json(s) << '\n' << bpool::to_prometheus(s, "bpool");
    return 0;
}
