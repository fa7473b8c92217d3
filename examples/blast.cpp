// The Go seed's "blast": a writer that never stops writing.
//
// Uncapped, its buffer grows until the process runs out of memory (this demo stops it at 64 MiB so
// that it cannot hurt the machine). Capped with buffer_pool(1 << 20, ...), the writer is throttled:
// a write that needs memory while the pool is at its capacity waits until memory comes back. Here
// the writer fills 60 KiB log segments that a flusher drains slowly and then not at all (a stuck
// disk): the writer keeps pace with the flusher, live memory stays at the 1 MiB cap, and once
// nothing has come back for a second the write returns an error and the writer stops by itself.
#include <chrono>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string_view>
#include <system_error>
#include <thread>

#include <bpool/bpool.hpp>

namespace {

constexpr std::string_view chunk = "create blast";
constexpr std::size_t cap = std::size_t{1} << 20;
constexpr std::size_t uncapped_limit = std::size_t{64} << 20;
constexpr std::size_t segment_size = std::size_t{60} << 10;

void print_live(const char* phase, const bpool::buffer_pool& pool) {
    std::printf("%-8s live %9zu bytes in %2zu buffer(s)\n", phase, pool.resource().live_bytes(),
                pool.live());
}

// The seed without a cap: nothing but the machine's memory stops this loop.
bool uncapped() {
    bpool::buffer_pool pool(0);  // target size 0: no cap
    bpool::buffer buf = pool.get();
    std::size_t next_report = std::size_t{1} << 20;
    while (buf.size() + chunk.size() <= uncapped_limit) {  // capacity stays at most 64 MiB
        if (const std::error_code ec = buf.write(chunk)) {
            std::printf("uncapped: write failed: %s\n", ec.message().c_str());
            return false;
        }
        if (buf.capacity() >= next_report) {
            print_live("uncapped", pool);
            next_report *= 2;
        }
    }
    std::printf("uncapped: %zu bytes and still growing; the demo stops it here\n\n", buf.size());
    return true;
}

// The seed with a cap: the writer waits whenever the pool is full, and gives up when nothing has
// been given back for max_elapsed.
bool capped() {
    bpool::buffer_pool pool(
        cap, {.backoff = {.max_elapsed = std::chrono::seconds(1)}, .write_backoff = true});
    std::mutex mutex;
    std::deque<bpool::buffer> backlog;  // segments written, waiting for the flusher

    // Drains ten segments, one every 100 ms, then stalls for good.
    std::thread flusher([&] {
        for (int i = 0; i < 10; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            const std::lock_guard lock(mutex);
            if (!backlog.empty()) backlog.pop_front();  // the segment goes back to the pool
        }
    });

    bpool::buffer segment = pool.get();
    std::size_t written = 0;
    for (;;) {
        if (const std::error_code ec = segment.write(chunk)) {
            std::printf("capped:  write gave up: %s\n", ec.message().c_str());
            break;
        }
        written += chunk.size();
        if (segment.size() < segment_size) continue;
        {
            const std::lock_guard lock(mutex);
            backlog.push_back(std::move(segment));
        }
        print_live("capped:", pool);
        try {
            segment = pool.get();  // at the cap this waits too
        } catch (const bpool::capacity_exceeded& e) {
            std::printf("capped:  get gave up: %s\n", e.what());
            break;
        }
    }
    flusher.join();

    const bpool::pool_stats s = pool.resource().stats();
    std::printf("capped:  wrote %zu bytes; peak live %zu bytes (cap %zu); %llu waits\n", written,
                s.peak_live_bytes, cap, static_cast<unsigned long long>(s.waits));
    return s.peak_live_bytes <= cap && s.waits > 0;
}

}  // namespace

int main() {
    const bool ok = uncapped() && capped();
    return ok ? 0 : 1;
}
