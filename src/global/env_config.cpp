#include "global/env_config.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <strings.h>
#include <unistd.h>

namespace bpool::detail {

namespace {

// Reads digits at *p into *out (no sign, no overflow); false if there are none.
bool take_digits(const char*& p, std::uint64_t* out) noexcept {
    if (*p < '0' || *p > '9') return false;
    std::uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; ++p) {
        const auto d = static_cast<std::uint64_t>(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

// Multiplies without overflow into a size_t; false if it would overflow.
bool scale(std::uint64_t v, std::uint64_t by, std::size_t* out) noexcept {
    if (by != 0 && v > SIZE_MAX / by) return false;
    *out = static_cast<std::size_t>(v * by);
    return true;
}

// Reads at most `size - 1` bytes of file `path` into `buf`, terminated; false if it cannot.
bool read_file(const char* path, char* buf, std::size_t size) noexcept {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    std::size_t got = 0;
    while (got + 1 < size) {
        const ssize_t n = ::read(fd, buf + got, size - 1 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    buf[got] = '\0';
    return got > 0;
}

const char* plain_getenv(const char* name, void*) {
    return std::getenv(name);
}

void to_stderr(const char* line, void*) {
    report_line(line);
}

std::size_t process_memory_limit(void*) {
    if (const std::size_t cg = cgroup_memory_max("/"); cg != 0) return cg;
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    const long page = ::sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page)
                                 : 0;
}

// Reads variable `name` with `parse`; a bad value is reported with `forms` and changes nothing.
template <class T, class Parse>
void read_one(const env_source& s, const char* name, const char* forms, T* out, Parse parse) {
    const char* text = s.lookup(name, s.context);
    if (text == nullptr) return;
    T value{};
    if (parse(text, &value)) {
        *out = value;
        return;
    }
    char line[400];
    std::snprintf(line, sizeof line,
                  "%s=\"%.100s\" is not valid (expected %s); the default applies", name, text,
                  forms);
    s.complain(line, s.context);
}

}  // namespace

void report_line(const char* line) noexcept {
    char buf[768];
    const int n = std::snprintf(buf, sizeof buf, "bpool: %s\n", line);
    if (n > 0) {
        const auto len = std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 1);
        [[maybe_unused]] const ssize_t w = ::write(2, buf, len);
    }
}

bool parse_bytes(const char* text, std::size_t limit, std::size_t* out) noexcept {
    const char* p = text;
    std::uint64_t v = 0;
    if (!take_digits(p, &v)) return false;
    if (std::strcmp(p, "%") == 0) {
        if (v == 0 || v > 100 || limit == 0) return false;
        *out = static_cast<std::size_t>(static_cast<long double>(limit) * v / 100);
        return true;
    }
    std::uint64_t unit = 1;
    if (*p != '\0') {
        switch (*p) {
            case 'K':
            case 'k':
                unit = std::uint64_t{1} << 10;
                break;
            case 'M':
            case 'm':
                unit = std::uint64_t{1} << 20;
                break;
            case 'G':
            case 'g':
                unit = std::uint64_t{1} << 30;
                break;
            default:
                return false;
        }
        ++p;
        if (*p != '\0' && strcasecmp(p, "iB") != 0) return false;
    }
    return scale(v, unit, out);
}

bool parse_duration(const char* text, std::chrono::nanoseconds* out) noexcept {
    const char* p = text;
    std::uint64_t v = 0;
    if (!take_digits(p, &v)) return false;
    struct unit {
        const char* name;
        std::uint64_t ns;
    };
    static constexpr unit units[] = {
        {"ns", 1}, {"us", 1000}, {"ms", 1000000}, {"s", 1000000000}, {"min", 60000000000}};
    for (const unit& u : units) {
        if (std::strcmp(p, u.name) != 0) continue;
        if (v > static_cast<std::uint64_t>(INT64_MAX) / u.ns) return false;
        *out = std::chrono::nanoseconds(static_cast<std::int64_t>(v * u.ns));
        return true;
    }
    return false;
}

bool parse_fraction(const char* text, double* out) noexcept {
    const char* p = text;
    std::uint64_t whole = 0;
    const bool has_whole = take_digits(p, &whole);
    double v = static_cast<double>(whole);
    if (*p == '.') {
        ++p;
        double place = 0.1;
        if ((*p < '0' || *p > '9') && !has_whole) return false;
        for (; *p >= '0' && *p <= '9'; ++p, place /= 10)
            v += (*p - '0') * place;
    } else if (!has_whole) {
        return false;
    }
    if (*p != '\0' || v >= 1.0) return false;
    *out = v;
    return true;
}

bool parse_exhaustion(const char* text, exhaustion* out) noexcept {
    static constexpr struct {
        const char* name;
        exhaustion value;
    } names[] = {{"wait", exhaustion::wait},
                 {"fail", exhaustion::fail},
                 {"overcommit", exhaustion::overcommit},
                 {"bypass", exhaustion::bypass}};
    for (const auto& n : names) {
        if (std::strcmp(text, n.name) == 0) {
            *out = n.value;
            return true;
        }
    }
    return false;
}

bool parse_switch(const char* text, bool* out) noexcept {
    for (const char* on : {"1", "true", "yes", "on"}) {
        if (strcasecmp(text, on) == 0) {
            *out = true;
            return true;
        }
    }
    for (const char* off : {"0", "false", "no", "off"}) {
        if (strcasecmp(text, off) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

std::size_t cgroup_memory_max(const char* root) noexcept {
    // cgroup v2: the line "0::/path" of /proc/self/cgroup names the process's group. Every
    // ancestor's limit applies too: the smallest one along the path is the process's.
    char path[512];
    char buf[512];
    std::snprintf(path, sizeof path, "%s/proc/self/cgroup", root);
    if (!read_file(path, buf, sizeof buf)) return 0;
    const char* line = std::strstr(buf, "0::/");
    if (line == nullptr || (line != buf && line[-1] != '\n')) return 0;
    char group[256];
    const char* start = line + 3;
    const std::size_t len = std::min(std::strcspn(start, "\n"), sizeof group - 1);
    std::memcpy(group, start, len);
    group[len] = '\0';
    std::size_t smallest = 0;
    for (;;) {
        std::snprintf(path, sizeof path, "%s/sys/fs/cgroup%s/memory.max", root,
                      std::strcmp(group, "/") == 0 ? "" : group);
        if (read_file(path, buf, sizeof buf)) {
            const char* p = buf;
            std::uint64_t v = 0;
            if (take_digits(p, &v) && (*p == '\n' || *p == '\0') && v <= SIZE_MAX &&
                (smallest == 0 || v < smallest))
                smallest = static_cast<std::size_t>(v);
        }
        char* slash = std::strrchr(group, '/');
        if (slash == nullptr || std::strcmp(group, "/") == 0) break;
        if (slash == group)
            group[1] = '\0';
        else
            *slash = '\0';
    }
    return smallest;
}

env_config read_env_config(const env_source& s) noexcept {
    env_config c;
    pool_options& o = c.options;
    const std::size_t limit = s.memory_limit(s.context);
    read_one(s, "BPOOL_CAPACITY",
             "bytes such as 512M, 2G, 64MiB, 1048576, or N% of the memory limit", &o.capacity,
             [&](const char* t, std::size_t* v) { return parse_bytes(t, limit, v); });
    read_one(s, "BPOOL_ON_EXHAUSTION", "wait, fail, overcommit or bypass", &o.on_exhaustion,
             parse_exhaustion);
    read_one(s, "BPOOL_MAX_WAIT", "a duration such as 2s, 500ms, 100us or 1min",
             &o.backoff.max_elapsed, parse_duration);
    read_one(s, "BPOOL_DELAY_THRESHOLD", "a fraction of the capacity in [0, 1), such as 0.8",
             &o.delay_threshold, parse_fraction);
    read_one(s, "BPOOL_MAX_CACHED", "bytes such as 8M or 64MiB", &o.max_cached_bytes,
             [](const char* t, std::size_t* v) { return parse_bytes(t, 0, v); });
    read_one(s, "BPOOL_STATS", "1 or 0", &c.print_stats, parse_switch);
    read_one(s, "BPOOL_VERBOSE", "1 or 0", &c.verbose, parse_switch);
    return c;
}

env_source process_env() noexcept {
    return {plain_getenv, to_stderr, process_memory_limit, nullptr};
}

}  // namespace bpool::detail
