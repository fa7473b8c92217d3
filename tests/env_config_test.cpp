// Layer 10: the process-wide pool's configuration from BPOOL_* variables: every variable with good
// and bad values (a bad one is reported in one line naming it, and its default applies), and the
// cgroup v2 memory limit read from a fake tree.
#include "global/env_config.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace bpool::detail {
namespace {

using namespace std::chrono_literals;

// A fake environment: a table of variables, the complaints received, a memory limit.
struct fake_env {
    std::map<std::string, std::string> vars;
    std::vector<std::string> complaints;
    std::size_t limit = std::size_t{8} << 30;

    env_config read() {
        const env_source s{[](const char* name, void* self) -> const char* {
                               auto& table = static_cast<fake_env*>(self)->vars;
                               const auto it = table.find(name);
                               return it == table.end() ? nullptr : it->second.c_str();
                           },
                           [](const char* line, void* self) {
                               static_cast<fake_env*>(self)->complaints.emplace_back(line);
                           },
                           [](void* self) { return static_cast<fake_env*>(self)->limit; }, this};
        return read_env_config(s);
    }
};

// Expects every setting of `c` to be its default (uncapped, no reports).
void expect_defaults(const env_config& c) {
    const pool_options d{};
    EXPECT_EQ(c.options.capacity, 0u) << "uncapped";
    EXPECT_EQ(c.options.on_exhaustion, d.on_exhaustion);
    EXPECT_EQ(c.options.backoff.max_elapsed, d.backoff.max_elapsed);
    EXPECT_EQ(c.options.delay_threshold, 0.0);
    EXPECT_EQ(c.options.max_cached_bytes, d.max_cached_bytes);
    EXPECT_FALSE(c.print_stats);
    EXPECT_FALSE(c.verbose);
}

TEST(EnvConfig, UnsetMeansTheDefaults) {
    fake_env env;
    expect_defaults(env.read());
    EXPECT_TRUE(env.complaints.empty());
}

TEST(EnvConfig, EveryVariableTakesItsForms) {
    fake_env env;
    env.vars = {{"BPOOL_CAPACITY", "512M"},    {"BPOOL_ON_EXHAUSTION", "fail"},
                {"BPOOL_MAX_WAIT", "250ms"},   {"BPOOL_DELAY_THRESHOLD", "0.75"},
                {"BPOOL_MAX_CACHED", "16MiB"}, {"BPOOL_STATS", "1"},
                {"BPOOL_VERBOSE", "yes"}};
    const env_config c = env.read();
    EXPECT_EQ(c.options.capacity, std::size_t{512} << 20);
    EXPECT_EQ(c.options.on_exhaustion, exhaustion::fail);
    EXPECT_EQ(c.options.backoff.max_elapsed, 250ms);
    EXPECT_DOUBLE_EQ(c.options.delay_threshold, 0.75);
    EXPECT_EQ(c.options.max_cached_bytes, std::size_t{16} << 20);
    EXPECT_TRUE(c.print_stats);
    EXPECT_TRUE(c.verbose);
    EXPECT_TRUE(env.complaints.empty());
}

TEST(EnvConfig, ABadValueIsReportedOnceAndKeepsTheDefault) {
    const char* const bad[][2] = {
        {"BPOOL_CAPACITY", "lots"},        {"BPOOL_CAPACITY", "12Q"},
        {"BPOOL_CAPACITY", "-5M"},         {"BPOOL_CAPACITY", "0%"},
        {"BPOOL_CAPACITY", "101%"},        {"BPOOL_CAPACITY", "99999999999999999999"},
        {"BPOOL_ON_EXHAUSTION", "Wait"},   {"BPOOL_ON_EXHAUSTION", ""},
        {"BPOOL_MAX_WAIT", "3"},           {"BPOOL_MAX_WAIT", "2 s"},
        {"BPOOL_MAX_WAIT", "1h"},          {"BPOOL_DELAY_THRESHOLD", "1"},
        {"BPOOL_DELAY_THRESHOLD", "0.5x"}, {"BPOOL_DELAY_THRESHOLD", "."},
        {"BPOOL_MAX_CACHED", "10%"},       {"BPOOL_STATS", "2"},
        {"BPOOL_VERBOSE", "maybe"},
    };
    for (const auto& [name, value] : bad) {
        fake_env env;
        env.vars[name] = value;
        const env_config c = env.read();
        ASSERT_EQ(env.complaints.size(), 1u) << name << "=" << value;
        const std::string& line = env.complaints[0];
        EXPECT_NE(line.find(name), std::string::npos) << line;
        EXPECT_NE(line.find(std::string("\"") + value + "\""), std::string::npos) << line;
        EXPECT_NE(line.find("expected"), std::string::npos) << "names the accepted forms: " << line;
        expect_defaults(c);
    }
}

TEST(EnvConfig, Bytes) {
    std::size_t v = 0;
    EXPECT_TRUE(parse_bytes("1048576", 0, &v));
    EXPECT_EQ(v, 1048576u);
    EXPECT_TRUE(parse_bytes("64K", 0, &v));
    EXPECT_EQ(v, 64u << 10);
    EXPECT_TRUE(parse_bytes("64kib", 0, &v));
    EXPECT_EQ(v, 64u << 10);
    EXPECT_TRUE(parse_bytes("3G", 0, &v));
    EXPECT_EQ(v, std::size_t{3} << 30);
    EXPECT_TRUE(parse_bytes("2GiB", 0, &v));
    EXPECT_EQ(v, std::size_t{2} << 30);
    EXPECT_TRUE(parse_bytes("50%", 1000, &v));
    EXPECT_EQ(v, 500u);
    EXPECT_TRUE(parse_bytes("100%", 1000, &v));
    EXPECT_EQ(v, 1000u);
    v = 7;
    EXPECT_FALSE(parse_bytes("50%", 0, &v)) << "no known limit";
    EXPECT_FALSE(parse_bytes("", 0, &v));
    EXPECT_FALSE(parse_bytes("5MB", 0, &v));
    EXPECT_FALSE(parse_bytes("5 M", 0, &v));
    EXPECT_FALSE(parse_bytes("99999999999G", 0, &v)) << "overflow";
    EXPECT_EQ(v, 7u) << "a bad value leaves the result alone";
}

TEST(EnvConfig, PercentOfTheMemoryLimit) {
    fake_env env;
    env.limit = std::size_t{4} << 30;
    env.vars["BPOOL_CAPACITY"] = "25%";
    EXPECT_EQ(env.read().options.capacity, std::size_t{1} << 30);
}

TEST(EnvConfig, Durations) {
    std::chrono::nanoseconds d{};
    EXPECT_TRUE(parse_duration("2s", &d));
    EXPECT_EQ(d, 2s);
    EXPECT_TRUE(parse_duration("500ms", &d));
    EXPECT_EQ(d, 500ms);
    EXPECT_TRUE(parse_duration("100us", &d));
    EXPECT_EQ(d, 100us);
    EXPECT_TRUE(parse_duration("7ns", &d));
    EXPECT_EQ(d, 7ns);
    EXPECT_TRUE(parse_duration("2min", &d));
    EXPECT_EQ(d, 120s);
    EXPECT_FALSE(parse_duration("s", &d));
    EXPECT_FALSE(parse_duration("99999999999999999999min", &d));
}

TEST(EnvConfig, FractionsPoliciesAndSwitches) {
    double f = 0;
    EXPECT_TRUE(parse_fraction("0", &f));
    EXPECT_EQ(f, 0.0);
    EXPECT_TRUE(parse_fraction(".5", &f));
    EXPECT_DOUBLE_EQ(f, 0.5);
    EXPECT_TRUE(parse_fraction("0.125", &f));
    EXPECT_DOUBLE_EQ(f, 0.125);
    EXPECT_FALSE(parse_fraction("1.0", &f));
    EXPECT_FALSE(parse_fraction("-0.5", &f));
    exhaustion e{};
    for (const auto& [text, want] :
         {std::pair{"wait", exhaustion::wait}, std::pair{"fail", exhaustion::fail},
          std::pair{"overcommit", exhaustion::overcommit},
          std::pair{"bypass", exhaustion::bypass}}) {
        EXPECT_TRUE(parse_exhaustion(text, &e));
        EXPECT_EQ(e, want);
    }
    EXPECT_FALSE(parse_exhaustion("block", &e));
    bool b = false;
    for (const char* on : {"1", "true", "YES", "on"}) {
        EXPECT_TRUE(parse_switch(on, &b));
        EXPECT_TRUE(b) << on;
    }
    for (const char* off : {"0", "false", "No", "off"}) {
        EXPECT_TRUE(parse_switch(off, &b));
        EXPECT_FALSE(b) << off;
    }
    EXPECT_FALSE(parse_switch("2", &b));
}

// A fake root with /proc/self/cgroup naming `group` and memory.max files along its path.
class cgroup_tree {
  public:
    cgroup_tree(const std::string& group, const std::map<std::string, std::string>& limits)
        : root_(std::filesystem::temp_directory_path() /
                ("bpool_cgroup_" +
                 std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
        std::filesystem::remove_all(root_);
        std::filesystem::create_directories(root_ / "proc/self");
        std::ofstream(root_ / "proc/self/cgroup") << "0::" << group << "\n";
        for (const auto& [dir, value] : limits) {
            const auto d = root_ / ("sys/fs/cgroup" + dir);
            std::filesystem::create_directories(d);
            std::ofstream(d / "memory.max") << value << "\n";
        }
    }
    ~cgroup_tree() { std::filesystem::remove_all(root_); }
    cgroup_tree(const cgroup_tree&) = delete;
    cgroup_tree& operator=(const cgroup_tree&) = delete;
    [[nodiscard]] std::string root() const { return root_.string(); }

  private:
    std::filesystem::path root_;
};

TEST(EnvConfig, CgroupMemoryMaxIsTheSmallestAlongThePath) {
    const cgroup_tree t("/a/b", {{"/a", "1073741824"}, {"/a/b", "max"}});
    EXPECT_EQ(cgroup_memory_max(t.root().c_str()), std::size_t{1} << 30)
        << "the parent's limit applies to the child";
    const cgroup_tree u("/x/y", {{"/x", "max"}, {"/x/y", "268435456"}});
    EXPECT_EQ(cgroup_memory_max(u.root().c_str()), std::size_t{256} << 20);
}

TEST(EnvConfig, NoCgroupLimitIsZero) {
    const cgroup_tree t("/", {{"", "max"}});
    EXPECT_EQ(cgroup_memory_max(t.root().c_str()), 0u);
    EXPECT_EQ(cgroup_memory_max("/nonexistent/root"), 0u);
}

}  // namespace
}  // namespace bpool::detail
