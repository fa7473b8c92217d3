// Under memcheck: ordinary use must report nothing. Blocks of many classes are handed out, written,
// read and given back (the pool reads and writes the links of idle blocks, moves them between
// thread caches and central lists, carves chunks and gives them back to upstream), from two
// threads; a pool is stacked on another; one is destroyed with a block still live, and malloc then
// reuses the memory it gave back.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory_resource>
#include <thread>
#include <vector>

#include <bpool/bpool.hpp>

namespace {

unsigned churn(std::pmr::memory_resource* r, unsigned seed) {
    std::vector<std::pair<unsigned char*, std::size_t>> live;
    unsigned sum = 0;
    for (int i = 0; i < 3000; ++i) {
        seed = seed * 1103515245u + 12345u;
        const std::size_t bytes = (seed >> 8) % 5 == 0 ? (seed >> 12) % 300000 : (seed >> 12) % 900;
        if (live.size() < 64 && (seed & 1) == 0) {
            auto* p = static_cast<unsigned char*>(r->allocate(bytes, 16));
            std::memset(p, static_cast<int>(i), bytes);
            live.emplace_back(p, bytes);
        } else if (!live.empty()) {
            auto [p, n] = live[seed % live.size()];
            for (std::size_t j = 0; j < n; j += 61)
                sum += p[j];
            r->deallocate(p, n, 16);
            live[seed % live.size()] = live.back();
            live.pop_back();
        }
    }
    for (auto [p, n] : live)
        r->deallocate(p, n, 16);
    return sum;
}

}  // namespace

int main() {
    unsigned sum = 0;
    {
        bpool::pool_resource pool;
        std::thread t([&] { sum += churn(&pool, 7); });
        sum += churn(&pool, 1);
        t.join();
        bpool::pool_resource stacked(bpool::pool_options{}, &pool);
        sum += churn(&stacked, 3);
        std::pmr::vector<std::pmr::string> lines(&stacked);
        for (int i = 0; i < 200; ++i)
            lines.emplace_back(std::string(i, 'x'));
    }
    {
        bpool::pool_resource pool;
        // Live when the pool goes: freed with it.
        static void* kept[2];
        kept[0] = pool.allocate(64);
        kept[1] = pool.allocate(40 << 10);
    }
    std::vector<void*> reuse;
    for (int i = 0; i < 200; ++i)
        reuse.push_back(std::malloc(static_cast<std::size_t>(i) * 40));
    for (void* p : reuse)
        std::free(p);
    std::printf("%u\n", sum);
    return 0;
}
