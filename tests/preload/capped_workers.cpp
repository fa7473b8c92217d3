// A multithreaded program that knows nothing of bpool, for the preload tests: 8 threads each write
// a stream of 64 KiB buffers (std::vector<char>, so operator new), keeping the last 8 and freeing
// the oldest as each new one is made. All first take 7 buffers and meet at a latch; then each
// takes its 8th and keeps 8 until its stream ends. Under a pool capped at 57 buffers and 32 KiB
// (BPOOL_CAPACITY=3680K) the 56 held at the latch, the threads' small blocks and one 8th buffer
// fit, two 8th buffers do not: whichever thread gets one first, every other that asks for its 8th
// while it runs must wait for it to finish (no deadlock: the next always fits). Prints a checksum
// of all the bytes written, the same under any allocator.
#include <cstdint>
#include <cstdio>
#include <deque>
#include <latch>
#include <thread>
#include <vector>

int main() {
    constexpr int threads = 8;
    constexpr int buffers_each = 400;
    constexpr std::size_t buffer_bytes = 64 << 10;
    std::latch met(threads);
    std::vector<std::uint64_t> sums(threads);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            std::deque<std::vector<char>> window;
            std::uint64_t sum = 0;
            for (int i = 0; i < buffers_each; ++i) {
                if (i == 7) met.arrive_and_wait();
                if (window.size() == 8) {
                    for (char c : window.front())
                        sum += static_cast<unsigned char>(c);
                    window.pop_front();
                }
                window.emplace_back(buffer_bytes, static_cast<char>('a' + (t + i) % 26));
            }
            for (const auto& b : window)
                for (char c : b)
                    sum += static_cast<unsigned char>(c);
            sums[static_cast<std::size_t>(t)] = sum;
        });
    }
    for (auto& w : workers)
        w.join();
    std::uint64_t total = 0;
    for (std::uint64_t s : sums)
        total += s;
    std::printf("checksum %llu\n", static_cast<unsigned long long>(total));
    return 0;
}
