// bpool_burst (and bpool_burst_mimalloc): the memory story, one subject per process so that each
// one's peak RSS is its own.
//
// A burst of `connections` arrives at once. Handler threads admit them one by one: each takes a
// buffer (32 KiB), writes all of it (reading the request in) and hands it to the completion
// thread, which gives it back `hold` after it was admitted (the response went out). With an
// unbounded allocator all connections are admitted well within the hold (about 0.15 s on 2 busy
// cores; the hold is 0.5 s), so all of them hold a buffer at once: 10,000 x 32 KiB = 312.5 MiB
// live. The bpool subject is capped (64 MiB, exhaustion::wait): handlers wait at the cap and each
// release admits the next waiter, so the burst takes longer (about 5 holds) but live memory stays
// under the cap. A sampler records live bytes every millisecond for the plot.
//
//   bpool_burst --subject=NAME [--connections=10000] [--buffer-kib=32] [--hold-ms=500]
//               [--handlers=8] [--capacity-mib=64] [--trace=FILE] [--check]
//   bpool_burst --list     prints the subjects this binary offers
// Prints one JSON object. --check exits 1 if a buffer was corrupted or a cap was passed.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "malloc_identity.hpp"
#include "proc_status.hpp"
#include "subjects.hpp"
#include "support/counting_resource.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using bpool::test::counting_resource;

struct burst_options {
    std::string subject;
    std::size_t connections = 10000;
    std::size_t buffer_bytes = std::size_t{32} << 10;
    std::chrono::milliseconds hold{500};
    unsigned handlers = 8;
    std::size_t capacity = std::size_t{64} << 20;  ///< Of the bpool_capped subject only.
    std::string trace;
    bool check = false;
};

[[noreturn]] void usage(const char* bad) {
    std::fprintf(stderr,
                 "bad argument %s\nusage: bpool_burst --subject=NAME [--connections=N] "
                 "[--buffer-kib=N] [--hold-ms=N] [--handlers=N] [--capacity-mib=N] "
                 "[--trace=FILE] [--check]\nsubjects: bpool_capped",
                 bad);
    for (const bench::subject& s : bench::subjects())
        if (s.thread_safe) std::fprintf(stderr, " %s", s.name.c_str());
    std::fputc('\n', stderr);
    std::exit(2);
}

/// Effects: prints the subjects of this binary's burst, one a line, and exits.
[[noreturn]] void list_subjects() {
    if (bench::find_subject("bpool") != nullptr) std::puts("bpool_capped");
    for (const bench::subject& s : bench::subjects())
        if (s.thread_safe) std::puts(s.name.c_str());
    std::exit(0);
}

burst_options parse(int argc, char** argv) {
    burst_options o;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const std::size_t eq = arg.find('=');
        const std::string key = arg.substr(0, eq);
        const std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
        const auto number = [&] {
            char* end = nullptr;
            const unsigned long long n = std::strtoull(value.c_str(), &end, 10);
            if (value.empty() || *end != '\0' || n == 0) usage(argv[i]);
            return static_cast<std::size_t>(n);
        };
        if (key == "--subject")
            o.subject = value;
        else if (key == "--connections")
            o.connections = number();
        else if (key == "--buffer-kib")
            o.buffer_bytes = number() << 10;
        else if (key == "--hold-ms")
            o.hold = std::chrono::milliseconds(number());
        else if (key == "--handlers")
            o.handlers = static_cast<unsigned>(number());
        else if (key == "--capacity-mib")
            o.capacity = number() << 20;
        else if (key == "--trace")
            o.trace = value;
        else if (key == "--check")
            o.check = true;
        else if (key == "--list")
            list_subjects();
        else
            usage(argv[i]);
    }
    if (o.subject.empty()) usage("(none): --subject is required");
    return o;
}

/// Returns a fresh instance of the subject named in `o`: bpool_capped is capped at `o.capacity`
/// with exhaustion::wait; every other subject comes from the shared harness, unbounded.
bench::instance make_subject(const burst_options& o) {
    if (o.subject == "bpool_capped")
        return bench::make_bpool(
            {.capacity = o.capacity, .on_exhaustion = bpool::exhaustion::wait});
    const bench::subject* s = bench::find_subject(o.subject);
    if (s == nullptr || !s->thread_safe) usage(("--subject=" + o.subject).c_str());
    return s->make();
}

/// A connection's buffer on its way to the completion thread.
struct pending {
    unsigned char* buffer;
    std::size_t connection;
    clock_type::time_point release_at;
};

/// The byte connection `c` writes into its buffer, checked when the buffer comes back.
unsigned char tag(std::size_t c) {
    return static_cast<unsigned char>(c * 131 + 7);
}

/// One live-bytes sample: milliseconds since the burst began, bytes live.
struct sample {
    double ms;
    std::size_t live;
};

class burst {
  public:
    burst(const burst_options& o, std::pmr::memory_resource& resource)
        : o_(o), resource_(resource) {}

    /// Effects: runs the burst to its end (every buffer given back).
    void run(const counting_resource& counter) {
        start_ = clock_type::now();
        std::thread sampler([this, &counter] { sample_until_done(counter); });
        std::thread completion([this] { complete_all(); });
        std::vector<std::thread> handlers;
        for (unsigned h = 0; h < o_.handlers; ++h)
            handlers.emplace_back([this] { handle(); });
        for (std::thread& t : handlers)
            t.join();
        admitted_ = clock_type::now() - start_;
        completion.join();
        total_ = clock_type::now() - start_;
        sampler.join();
    }

    [[nodiscard]] double total_s() const { return std::chrono::duration<double>(total_).count(); }
    [[nodiscard]] double admitted_s() const {
        return std::chrono::duration<double>(admitted_).count();
    }
    [[nodiscard]] std::size_t corrupted() const { return corrupted_; }
    [[nodiscard]] const std::vector<sample>& samples() const { return samples_; }

  private:
    void handle() {
        for (;;) {
            const std::size_t c = next_.fetch_add(1, std::memory_order_relaxed);
            if (c >= o_.connections) return;
            auto* buffer = static_cast<unsigned char*>(resource_.allocate(o_.buffer_bytes));
            std::memset(buffer, tag(c), o_.buffer_bytes);
            const std::lock_guard lock(mutex_);
            queue_.push_back({buffer, c, clock_type::now() + o_.hold});
            ready_.notify_one();
        }
    }

    void complete_all() {
        for (std::size_t done = 0; done < o_.connections; ++done) {
            pending p;
            {
                std::unique_lock lock(mutex_);
                ready_.wait(lock, [this] { return !queue_.empty(); });
                p = queue_.front();
                queue_.pop_front();
            }
            std::this_thread::sleep_until(p.release_at);
            if (p.buffer[0] != tag(p.connection) ||
                p.buffer[o_.buffer_bytes - 1] != tag(p.connection))
                ++corrupted_;
            resource_.deallocate(p.buffer, o_.buffer_bytes);
        }
        finished_.store(true, std::memory_order_release);
    }

    void sample_until_done(const counting_resource& counter) {
        samples_.reserve(1 << 16);
        const auto record = [&] {
            const std::chrono::duration<double, std::milli> t = clock_type::now() - start_;
            samples_.push_back({t.count(), counter.live_bytes()});
        };
        while (!finished_.load(std::memory_order_acquire)) {
            record();
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        record();
    }

    const burst_options& o_;
    std::pmr::memory_resource& resource_;
    clock_type::time_point start_;
    clock_type::duration admitted_{};
    clock_type::duration total_{};
    std::atomic<std::size_t> next_{0};
    std::atomic<bool> finished_{false};
    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<pending> queue_;
    std::size_t corrupted_ = 0;    // completion thread only
    std::vector<sample> samples_;  // sampler thread only
};

void write_trace(const std::string& path, const std::vector<sample>& samples) {
    std::ofstream out(path);
    out << "# ms live_MiB\n";
    for (const sample& s : samples)
        out << s.ms << ' ' << static_cast<double>(s.live) / (1 << 20) << '\n';
}

}  // namespace

int main(int argc, char** argv) {
    bench::check_expected_malloc();
    const burst_options o = parse(argc, argv);
    const bench::instance inst = make_subject(o);
    // Every subject goes through the same counter, so that all are measured the same way.
    counting_resource counter(inst.resource);
    const std::size_t baseline_rss = bench::current_rss_bytes();
    burst b(o, counter);
    b.run(counter);
    const std::size_t peak_rss = bench::peak_rss_bytes();
    if (!o.trace.empty()) write_trace(o.trace, b.samples());

    const bench::malloc_identity id = bench::identify_malloc();
    std::printf(
        "{\"subject\": \"%s\", \"malloc\": \"%s\", \"connections\": %zu, \"buffer_bytes\": %zu, "
        "\"hold_ms\": %lld, \"handlers\": %u, \"capacity\": %zu, \"peak_live_bytes\": %zu, "
        "\"peak_live_blocks\": %zu, \"baseline_rss_bytes\": %zu, \"peak_rss_bytes\": %zu, "
        "\"total_s\": %.4f, \"admitted_s\": %.4f, \"corrupted\": %zu",
        o.subject.c_str(), id.name.c_str(), o.connections, o.buffer_bytes,
        static_cast<long long>(o.hold.count()), o.handlers,
        o.subject == "bpool_capped" ? o.capacity : 0, counter.peak_bytes(),
        counter.peak_allocations(), baseline_rss, peak_rss, b.total_s(), b.admitted_s(),
        b.corrupted());
    bool over_cap = false;
    if (inst.pool != nullptr) {
        const bpool::pool_stats s = inst.pool->stats();
        std::printf(
            ", \"pool_peak_live_bytes\": %zu, \"pool_peak_upstream_bytes\": %zu, \"waits\": %llu, "
            "\"max_wait_ms\": %.3f",
            s.peak_live_bytes, s.peak_upstream_bytes, static_cast<unsigned long long>(s.waits),
            std::chrono::duration<double, std::milli>(s.max_wait).count());
        over_cap =
            s.capacity != 0 && std::max(s.peak_live_bytes, counter.peak_bytes()) > s.capacity;
    }
    std::printf("}\n");
    // The progress line, for the person watching scripts/bench.
    std::fprintf(stderr, "burst %-13s peak live %7.1f MiB  peak RSS %7.1f MiB  total %.2f s\n",
                 o.subject.c_str(), static_cast<double>(counter.peak_bytes()) / (1 << 20),
                 static_cast<double>(peak_rss) / (1 << 20), b.total_s());
    if (o.check && (b.corrupted() != 0 || over_cap)) {
        std::fprintf(stderr, "bpool_burst: %zu corrupted buffers, cap %s\n", b.corrupted(),
                     over_cap ? "passed" : "kept");
        return 1;
    }
    return 0;
}
