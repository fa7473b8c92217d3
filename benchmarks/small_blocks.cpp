// bpool_small_blocks (and bpool_small_blocks_mimalloc): resident memory of many small live blocks,
// one subject per process so that each one's RSS is its own.
//
// Allocates `blocks` blocks of sizes drawn uniformly from 16..1024 B (a fixed seed: every subject
// gets the same sizes), writes every byte of each, then reads VmRSS: what an allocator holds counts
// only where it is resident, so padding that is never touched costs nothing and metadata or
// touched padding does. The sizes and the pointer array are made before the baseline is read.
//
//   bpool_small_blocks --subject=NAME [--blocks=500000]
//   bpool_small_blocks --list     prints the subjects this binary offers
// Prints one JSON object; live and upstream bytes are null where the subject does not count them.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "malloc_identity.hpp"
#include "proc_status.hpp"
#include "subjects.hpp"

namespace {

constexpr std::size_t min_size = 16;
constexpr std::size_t max_size = 1024;
constexpr std::uint64_t seed = 20261201;

[[noreturn]] void usage(const char* bad) {
    std::fprintf(stderr,
                 "bad argument %s\nusage: bpool_small_blocks --subject=NAME [--blocks=N]\n"
                 "subjects:",
                 bad);
    for (const bench::subject& s : bench::subjects())
        std::fprintf(stderr, " %s", s.name.c_str());
    std::fputc('\n', stderr);
    std::exit(2);
}

/// Prints `name` and `value` as a JSON member, or null where `known` is false.
void member(const char* name, bool known, std::size_t value) {
    if (known)
        std::printf(", \"%s\": %zu", name, value);
    else
        std::printf(", \"%s\": null", name);
}

}  // namespace

int main(int argc, char** argv) {
    bench::check_expected_malloc();
    std::string name;
    std::size_t blocks = 500000;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--list") {
            for (const bench::subject& s : bench::subjects())
                std::puts(s.name.c_str());
            return 0;
        }
        if (arg.starts_with("--subject=")) {
            name = arg.substr(10);
        } else if (arg.starts_with("--blocks=")) {
            char* end = nullptr;
            blocks = std::strtoull(arg.c_str() + 9, &end, 10);
            if (*end != '\0' || blocks == 0) usage(argv[i]);
        } else {
            usage(argv[i]);
        }
    }
    const bench::subject* subject = bench::find_subject(name);
    if (subject == nullptr) usage(("--subject=" + name).c_str());

    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<std::size_t> draw(min_size, max_size);
    std::vector<std::size_t> sizes(blocks);
    std::size_t requested = 0;
    for (std::size_t& s : sizes)
        requested += s = draw(rng);
    std::vector<unsigned char*> pointers(blocks, nullptr);  // touched: resident before the baseline

    const std::size_t baseline_rss = bench::current_rss_bytes();
    std::size_t rss = 0;
    std::size_t peak_rss = 0;
    bpool::pool_stats stats;
    bool pool = false;
    double seconds = 0;
    {
        const bench::instance inst = subject->make();
        const auto start = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < blocks; ++i) {
            pointers[i] = static_cast<unsigned char*>(inst.resource->allocate(sizes[i]));
            std::memset(pointers[i], static_cast<int>(i & 0xff), sizes[i]);
        }
        seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        rss = bench::current_rss_bytes();
        peak_rss = bench::peak_rss_bytes();
        pool = inst.pool != nullptr;
        if (pool) stats = inst.pool->stats();
        for (std::size_t i = 0; i < blocks; ++i)
            inst.resource->deallocate(pointers[i], sizes[i]);
    }

    const std::size_t resident = rss > baseline_rss ? rss - baseline_rss : 0;
    const bench::malloc_identity id = bench::identify_malloc();
    std::printf(
        "{\"subject\": \"%s\", \"malloc\": \"%s\", \"blocks\": %zu, \"min_size\": %zu, "
        "\"max_size\": %zu, \"seed\": %llu, \"requested_bytes\": %zu",
        subject->name.c_str(), id.name.c_str(), blocks, min_size, max_size,
        static_cast<unsigned long long>(seed), requested);
    member("live_bytes", pool, stats.live_bytes);
    member("upstream_bytes", pool, stats.upstream_bytes);
    std::printf(
        ", \"baseline_rss_bytes\": %zu, \"resident_bytes\": %zu, \"peak_rss_bytes\": %zu, "
        "\"allocate_s\": %.4f}\n",
        baseline_rss, resident, peak_rss, seconds);
    // The progress line, for the person watching scripts/bench.
    std::fprintf(stderr, "small %-13s requested %7.1f MiB  resident %7.1f MiB  (x%.2f)\n",
                 subject->name.c_str(), static_cast<double>(requested) / (1 << 20),
                 static_cast<double>(resident) / (1 << 20),
                 static_cast<double>(resident) / static_cast<double>(requested));
    return 0;
}
