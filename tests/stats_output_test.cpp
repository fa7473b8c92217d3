// The outputs of a snapshot (include/bpool/stats.hpp): operator<<, to_json and to_prometheus say
// what the snapshot says, each figure once and well formed. (stats_output_parse runs real parsers
// over them: Python's json and prometheus_client.)
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <bpool/pool_resource.hpp>
#include <bpool/stats.hpp>

#include <gtest/gtest.h>

#include "support/stats_activity.hpp"

namespace bpool {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}

std::size_t count_of(const std::string& text, const std::string& piece) {
    std::size_t n = 0;
    for (std::size_t at = text.find(piece); at != std::string::npos; at = text.find(piece, at + 1))
        ++n;
    return n;
}

TEST(StatsOutput, TableNamesTheFiguresAndTheClassesInUse) {
    pool_resource pool(pool_options{.capacity = 1 << 20});
    void* a = pool.allocate(100);
    void* b = pool.allocate(100);
    void* c = pool.allocate(3000);
    const pool_stats s = pool.stats();
    std::ostringstream os;
    os << s;
    const std::string text = os.str();
    EXPECT_NE(text.find("in 3 blocks"), std::string::npos) << text;
    EXPECT_NE(text.find("capacity 1.00 MiB"), std::string::npos) << text;
    EXPECT_NE(text.find("max live blocks none"), std::string::npos) << text;
    EXPECT_NE(text.find("3 allocations, 0 deallocations"), std::string::npos) << text;
    // The header and one line per class that served a block: two classes here.
    std::size_t class_lines = 0;
    bool in_classes = false;
    for (const std::string& line : lines_of(text)) {
        if (in_classes) ++class_lines;
        if (line.rfind("classes:", 0) == 0) in_classes = true;
    }
    EXPECT_EQ(class_lines, 2u) << text;
    pool.deallocate(a, 100);
    pool.deallocate(b, 100);
    pool.deallocate(c, 3000);
}

TEST(StatsOutput, JsonHasEveryFigureOnce) {
    const pool_stats s = test::stats_with_a_finished_wait();
    const std::string json = to_json(s);
    ASSERT_FALSE(json.empty());
    EXPECT_EQ(json.front(), '{');
    EXPECT_EQ(json.back(), '}');
    EXPECT_EQ(json.find(",}"), std::string::npos);
    EXPECT_EQ(json.find(",]"), std::string::npos);
    EXPECT_EQ(count_of(json, "\"live_bytes\":" + std::to_string(s.live_bytes) + ","), 1u);
    EXPECT_EQ(count_of(json, "\"waits\":" + std::to_string(s.waits) + ","), 1u);
    EXPECT_EQ(count_of(json, "\"max_wait_ns\":" + std::to_string(s.max_wait.count()) + ","), 1u);
    EXPECT_EQ(count_of(json, s.fenced_fast_path ? "\"fenced_fast_path\":true"
                                                : "\"fenced_fast_path\":false"),
              1u);
    EXPECT_EQ(count_of(json, "{\"block_size\":"), s.classes.size());
    const std::size_t h = json.find("\"wait_histogram\":[");
    ASSERT_NE(h, std::string::npos);
    const std::string histogram = json.substr(h, json.find(']', h) - h);
    EXPECT_EQ(count_of(histogram, ",") + 1, pool_stats::wait_buckets);
}

// What a Prometheus exposition holds: its families (name -> type) and samples (line -> value).
struct exposition {
    std::map<std::string, std::string> types;
    std::map<std::string, double> samples;
};

exposition parse_exposition(const std::string& text) {
    static const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*)");
    static const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (gauge|counter|histogram))");
    static const std::regex sample(
        R"(([a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-z_]+="[^"\\]*"\})?) ([0-9.e+-]+))");
    exposition e;
    std::set<std::string> helped;
    std::smatch m;
    for (const std::string& line : lines_of(text)) {
        if (std::regex_match(line, m, help)) {
            EXPECT_TRUE(helped.insert(m[1]).second) << "two HELP lines: " << line;
        } else if (std::regex_match(line, m, type)) {
            EXPECT_TRUE(e.types.emplace(m[1], m[2]).second) << "two TYPE lines: " << line;
        } else if (std::regex_match(line, m, sample)) {
            e.samples[m[1]] = std::stod(m[3]);
        } else {
            ADD_FAILURE() << "not an exposition line: '" << line << "'";
        }
    }
    EXPECT_EQ(helped.size(), e.types.size());
    return e;
}

TEST(StatsOutput, PrometheusSamplesAreTheSnapshotsFigures) {
    const pool_stats s = test::stats_with_a_finished_wait();
    const std::string text = to_prometheus(s, "wal_pool");
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
    const exposition e = parse_exposition(text);
    EXPECT_EQ(e.types.at("wal_pool_live_bytes"), "gauge");
    EXPECT_EQ(e.types.at("wal_pool_allocations_total"), "counter");
    EXPECT_EQ(e.types.at("wal_pool_wait_seconds"), "histogram");
    EXPECT_EQ(e.samples.at("wal_pool_live_bytes"), static_cast<double>(s.live_bytes));
    EXPECT_EQ(e.samples.at("wal_pool_capacity_bytes"), static_cast<double>(s.capacity));
    EXPECT_EQ(e.samples.at("wal_pool_waits_total"), static_cast<double>(s.waits));
    // Every sample belongs to a declared family; a histogram's buckets only grow, and the last
    // one (+Inf) is its count: every finished wait.
    std::uint64_t finished = 0;
    for (const std::uint64_t n : s.wait_histogram)
        finished += n;
    EXPECT_GE(finished, 1u);
    double previous = 0;
    for (const auto& [name, value] : e.samples) {
        std::string family = name.substr(0, name.find('{'));
        for (const char* suffix : {"_bucket", "_count", "_sum"})
            if (!e.types.contains(family) && family.ends_with(suffix))
                family.resize(family.size() - std::string(suffix).size());
        EXPECT_TRUE(e.types.contains(family)) << name;
    }
    for (std::size_t i = 0; i + 1 < pool_stats::wait_buckets; ++i) {
        std::ostringstream le;
        le << "wal_pool_wait_seconds_bucket{le=\""
           << static_cast<double>(std::uint64_t{2} << i) * 1e-6 << "\"}";
        const auto it = e.samples.find(le.str());
        ASSERT_NE(it, e.samples.end()) << le.str();
        EXPECT_GE(it->second, previous);
        previous = it->second;
    }
    EXPECT_EQ(e.samples.at("wal_pool_wait_seconds_bucket{le=\"+Inf\"}"),
              static_cast<double>(finished));
    EXPECT_EQ(e.samples.at("wal_pool_wait_seconds_count"), static_cast<double>(finished));
    EXPECT_GE(e.samples.at("wal_pool_wait_seconds_sum"),
              std::chrono::duration<double>(s.max_wait).count());
    // One series per class that served a block.
    std::size_t used = 0;
    for (const size_class_stats& c : s.classes) {
        if (c.allocations == 0) continue;
        ++used;
        const std::string label = "{block_size=\"" + std::to_string(c.block_size) + "\"}";
        EXPECT_EQ(e.samples.at("wal_pool_class_allocations_total" + label),
                  static_cast<double>(c.allocations));
        EXPECT_EQ(e.samples.at("wal_pool_class_live_blocks" + label),
                  static_cast<double>(c.live_blocks));
    }
    EXPECT_GE(used, 1u);
}

TEST(StatsOutput, PrometheusRejectsAPrefixThatIsNoMetricName) {
    const pool_stats s;
    for (const char* bad : {"", "9pool", "my-pool", "pool name", "pool{x}"})
        EXPECT_THROW((void)to_prometheus(s, bad), std::invalid_argument) << bad;
    for (const char* good : {"bpool", "_x", "app:pool_1"})
        EXPECT_NO_THROW((void)to_prometheus(s, good)) << good;
}

}  // namespace
}  // namespace bpool
