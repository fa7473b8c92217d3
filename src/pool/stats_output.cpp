// The outputs of a pool_stats snapshot (include/bpool/stats.hpp): a table for people, JSON for
// programs, Prometheus' text format for a scraper. They read the public struct only; every figure
// is written from one field, so the three never disagree.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <iterator>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <bpool/stats.hpp>

namespace bpool {

namespace {

using std::chrono::nanoseconds;

// Appends printf-style text to `out` (every piece written here is short).
template <class... Args>
void append(std::string& out, const char* format, Args... args) {
    char piece[160];
    const int n = std::snprintf(piece, sizeof piece, format, args...);
    if (n > 0) out.append(piece, std::min(static_cast<std::size_t>(n), sizeof piece - 1));
}

std::string bytes_text(std::size_t n) {
    static constexpr const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
    std::string out;
    if (n < 1024) {
        append(out, "%zu B", n);
        return out;
    }
    double v = static_cast<double>(n) / 1024;
    unsigned u = 0;
    for (; v >= 1024 && u + 1 < std::size(units); ++u)
        v /= 1024;
    append(out, "%.2f %s", v, units[u]);
    return out;
}

std::string duration_text(nanoseconds d) {
    const auto ns = static_cast<double>(d.count());
    std::string out;
    if (d.count() < 1000)
        append(out, "%" PRId64 " ns", static_cast<std::int64_t>(d.count()));
    else if (ns < 1e6)
        append(out, "%.1f us", ns / 1e3);
    else if (ns < 1e9)
        append(out, "%.1f ms", ns / 1e6);
    else
        append(out, "%.2f s", ns / 1e9);
    return out;
}

std::string limit_text(std::size_t n, bool in_bytes) {
    if (n == 0) return "none";
    if (in_bytes) return bytes_text(n);
    return std::to_string(n) + " blocks";
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const pool_stats& s) {
    os << "memory:   live " << bytes_text(s.live_bytes) << " in " << s.live_blocks
       << " blocks (peak at most " << bytes_text(s.peak_live_bytes) << "), cached "
       << bytes_text(s.cached_bytes) << " (" << bytes_text(s.thread_cached_bytes)
       << " in thread caches), unused " << bytes_text(s.unused_bytes) << '\n'
       << "upstream: " << bytes_text(s.upstream_bytes) << " (peak "
       << bytes_text(s.peak_upstream_bytes) << "), pagemap " << bytes_text(s.pagemap_bytes)
       << ", large live " << bytes_text(s.large_live_bytes) << ", bypass live "
       << bytes_text(s.bypass_live_bytes) << " in " << s.bypass_live_blocks << " blocks\n"
       << "ops:      " << s.allocations << " allocations, " << s.deallocations << " deallocations\n"
       << "threads:  " << s.thread_caches << " caches, " << s.quiesces << " quiesces, fast path "
       << (s.fenced_fast_path ? "fenced" : "unfenced") << '\n'
       << "cap:      capacity " << limit_text(s.capacity, true) << ", max live blocks "
       << limit_text(s.max_live_blocks, false) << '\n'
       << "waits:    " << s.waits << " (" << s.timeouts << " timed out), " << s.failures
       << " refused, " << s.overcommits << " overcommitted, " << s.bypasses << " bypassed, "
       << s.paced << " paced; waited " << duration_text(s.total_wait) << " in all, longest "
       << duration_text(s.max_wait) << "; waiting now " << s.waiters << " (oldest "
       << duration_text(s.oldest_wait) << "), next backoff " << duration_text(s.backoff_interval)
       << '\n';
    os << "classes:  block size, allocations, deallocations, live blocks\n";
    for (const size_class_stats& c : s.classes) {
        if (c.allocations == 0) continue;
        std::string line;
        append(line, "%12s %14" PRIu64 " %14" PRIu64 " %12zu\n", bytes_text(c.block_size).c_str(),
               c.allocations, c.deallocations, c.live_blocks);
        os << line;
    }
    return os;
}

namespace {

// One scalar figure of a snapshot, as JSON and Prometheus name it. `time`: a duration, in JSON
// as integer nanoseconds (the name ends in `_ns`), in Prometheus as seconds; `flag`: a boolean,
// in JSON as true/false, in Prometheus as 0/1.
struct figure {
    enum kind { count, flag, time };
    const char* json;
    const char* metric;  // null: not exported to Prometheus (written there some other way)
    const char* type;    // Prometheus' type: "gauge" or "counter"
    const char* help;
    kind as;
    std::uint64_t (*get)(const pool_stats&);
};

// A figure as a number: counts as they are, flags as 0 or 1, durations in nanoseconds (never
// negative).
constexpr std::uint64_t number(std::uint64_t v) noexcept {
    return v;
}
constexpr std::uint64_t number(bool v) noexcept {
    return v ? 1 : 0;
}
constexpr std::uint64_t number(nanoseconds d) noexcept {
    return d.count() < 0 ? 0 : static_cast<std::uint64_t>(d.count());
}

#define BPOOL_FIGURE(member, json, metric, type, help, as)                        \
    figure {                                                                      \
        json, metric, type, help, figure::as,                                     \
            [](const pool_stats& s) -> std::uint64_t { return number(s.member); } \
    }
#define BPOOL_GAUGE(member, help) BPOOL_FIGURE(member, #member, #member, "gauge", help, count)
#define BPOOL_COUNTER(member, help) \
    BPOOL_FIGURE(member, #member, #member "_total", "counter", help, count)

// In the order of pool_stats' members.
constexpr figure figures[] = {
    BPOOL_GAUGE(live_bytes, "Bytes handed out and not given back."),
    BPOOL_GAUGE(live_blocks, "Blocks handed out and not given back."),
    BPOOL_GAUGE(peak_live_bytes, "Upper bound of the highest live bytes."),
    BPOOL_GAUGE(cached_bytes, "Idle bytes kept for reuse."),
    BPOOL_GAUGE(thread_cached_bytes, "Idle bytes in thread caches."),
    BPOOL_GAUGE(upstream_bytes, "Bytes held from upstream."),
    BPOOL_GAUGE(peak_upstream_bytes, "Highest bytes held from upstream."),
    BPOOL_GAUGE(unused_bytes, "Bytes held from upstream in no block."),
    BPOOL_GAUGE(pagemap_bytes, "Address space mapped for the pagemap."),
    BPOOL_GAUGE(large_live_bytes, "Live bytes above the size classes."),
    BPOOL_GAUGE(bypass_live_bytes, "Live bytes served by bypass."),
    BPOOL_GAUGE(bypass_live_blocks, "Live blocks served by bypass."),
    BPOOL_COUNTER(allocations, "Successful allocations."),
    BPOOL_COUNTER(deallocations, "Deallocations."),
    BPOOL_GAUGE(thread_caches, "Threads with a cache for the pool."),
    BPOOL_COUNTER(quiesces, "Times the pool stopped its fast paths."),
    BPOOL_FIGURE(fenced_fast_path, "fenced_fast_path", "fenced_fast_path", "gauge",
                 "1 if the fast path pays a full fence.", flag),
    BPOOL_FIGURE(capacity, "capacity", "capacity_bytes", "gauge",
                 "The cap on live bytes (0: none).", count),
    BPOOL_GAUGE(max_live_blocks, "The cap on live blocks (0: none)."),
    BPOOL_COUNTER(waits, "Requests that waited at the cap."),
    BPOOL_FIGURE(total_wait, "total_wait_ns", nullptr, "", "", time),  // the histogram's _sum
    BPOOL_FIGURE(max_wait, "max_wait_ns", "max_wait_seconds", "gauge", "Longest finished wait.",
                 time),
    BPOOL_COUNTER(timeouts, "Requests that gave up waiting."),
    BPOOL_COUNTER(failures, "Requests refused at once."),
    BPOOL_COUNTER(overcommits, "Requests past the cap."),
    BPOOL_COUNTER(bypasses, "Requests served outside the pool."),
    BPOOL_COUNTER(paced, "Requests delayed by the soft threshold."),
    BPOOL_GAUGE(waiters, "Requests waiting now."),
    BPOOL_FIGURE(oldest_wait, "oldest_wait_ns", "oldest_wait_seconds", "gauge",
                 "Age of the oldest wait in progress.", time),
    BPOOL_FIGURE(backoff_interval, "backoff_interval_ns", "backoff_interval_seconds", "gauge",
                 "The step the next wait starts with.", time),
};

#undef BPOOL_COUNTER
#undef BPOOL_GAUGE
#undef BPOOL_FIGURE

}  // namespace

std::string to_json(const pool_stats& s) {
    std::string out = "{";
    for (const figure& f : figures) {
        const std::uint64_t v = f.get(s);
        if (f.as == figure::flag)
            append(out, "\"%s\":%s,", f.json, v != 0 ? "true" : "false");
        else
            append(out, "\"%s\":%" PRIu64 ",", f.json, v);
    }
    out += "\"wait_histogram\":[";
    for (std::size_t i = 0; i < s.wait_histogram.size(); ++i)
        append(out, i == 0 ? "%" PRIu64 : ",%" PRIu64, s.wait_histogram[i]);
    out += "],\"classes\":[";
    for (std::size_t i = 0; i < s.classes.size(); ++i) {
        const size_class_stats& c = s.classes[i];
        append(out,
               "%s{\"block_size\":%zu,\"allocations\":%" PRIu64 ",\"deallocations\":%" PRIu64
               ",\"live_blocks\":%zu}",
               i == 0 ? "" : ",", c.block_size, c.allocations, c.deallocations, c.live_blocks);
    }
    out += "]}";
    return out;
}

namespace {

bool is_metric_name(std::string_view name) {
    const auto letter = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    };
    if (name.empty() || !letter(name[0])) return false;
    for (const char c : name)
        if (!letter(c) && !(c >= '0' && c <= '9')) return false;
    return true;
}

// Writes the exposition one metric family at a time: its HELP and TYPE lines, then its samples.
class exposition {
  public:
    explicit exposition(std::string_view prefix) : prefix_(prefix) {}

    void family(const char* name, const char* type, const char* help) {
        name_ = prefix_ + '_' + name;
        out_ += "# HELP " + name_ + ' ' + help + "\n# TYPE " + name_ + ' ' + type + '\n';
    }
    // A sample of the current family: `suffix` after its name (e.g. "_bucket"), then `labels`.
    void sample(std::uint64_t v, const char* suffix = "", const std::string& labels = {}) {
        out_ += name_ + suffix + labels;
        append(out_, " %" PRIu64 "\n", v);
    }
    void sample_seconds(nanoseconds d, const char* suffix = "") {
        out_ += name_ + suffix;
        append(out_, " %.9f\n", static_cast<double>(d.count()) / 1e9);
    }
    std::string take() { return std::move(out_); }

  private:
    std::string prefix_;
    std::string name_;
    std::string out_;
};

void write_wait_histogram(exposition& e, const pool_stats& s) {
    e.family("wait_seconds", "histogram", "Finished waits at the cap by duration.");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i + 1 < s.wait_histogram.size(); ++i) {
        cumulative += s.wait_histogram[i];
        // Bucket i holds waits below 2^(i+1) us.
        std::string le;
        append(le, "{le=\"%.6g\"}", static_cast<double>(std::uint64_t{2} << i) * 1e-6);
        e.sample(cumulative, "_bucket", le);
    }
    cumulative += s.wait_histogram.back();
    e.sample(cumulative, "_bucket", "{le=\"+Inf\"}");
    e.sample_seconds(s.total_wait, "_sum");
    e.sample(cumulative, "_count");
}

void write_classes(exposition& e, const pool_stats& s) {
    const auto each = [&](const char* name, const char* type, const char* help, auto value) {
        e.family(name, type, help);
        for (const size_class_stats& c : s.classes)
            if (c.allocations != 0)
                e.sample(value(c), "", "{block_size=\"" + std::to_string(c.block_size) + "\"}");
    };
    each("class_allocations_total", "counter", "Blocks of the size class handed out.",
         [](const size_class_stats& c) { return c.allocations; });
    each("class_deallocations_total", "counter", "Blocks of the size class given back.",
         [](const size_class_stats& c) { return c.deallocations; });
    each("class_live_blocks", "gauge", "Live blocks of the size class.",
         [](const size_class_stats& c) { return std::uint64_t{c.live_blocks}; });
}

}  // namespace

std::string to_prometheus(const pool_stats& s, std::string_view prefix) {
    if (!is_metric_name(prefix))
        throw std::invalid_argument("bpool::to_prometheus: the prefix is not a metric name");
    exposition e(prefix);
    for (const figure& f : figures) {
        if (f.metric == nullptr) continue;
        e.family(f.metric, f.type, f.help);
        if (f.as == figure::time)
            e.sample_seconds(nanoseconds(static_cast<std::int64_t>(f.get(s))));
        else
            e.sample(f.get(s));
    }
    write_wait_histogram(e, s);
    write_classes(e, s);
    return e.take();
}

}  // namespace bpool
