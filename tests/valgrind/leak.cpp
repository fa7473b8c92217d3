// Under memcheck: blocks the program loses while their pool lives on (a pool destroyed with live
// blocks frees them with it): a small one (the first of its chunk), a large pooled one (a chunk of
// its own) and one above largest_pooled_block (served by upstream directly). Each must be
// "definitely lost", allocated in lose_blocks, and nothing else lost.
#include <cstring>

#include <bpool/bpool.hpp>

namespace {

bpool::pool_resource* pool;  // lives until the end (still reachable from here)

__attribute__((noinline)) void lose_blocks() {
    for (std::size_t bytes : {std::size_t{80}, std::size_t{96} << 10, std::size_t{3} << 20}) {
        void* p = pool->allocate(bytes);
        std::memset(p, 0, bytes);
    }
}

__attribute__((noinline)) void keep_pool_busy() {
    // Idle memory the pool keeps (cached blocks, a spare chunk): reachable, not lost.
    for (int i = 0; i < 100; ++i) {
        void* p = pool->allocate(80);
        void* q = pool->allocate(200 << 10);
        pool->deallocate(q, 200 << 10);
        pool->deallocate(p, 80);
    }
}

}  // namespace

int main() {
    pool = new bpool::pool_resource;
    keep_pool_busy();
    lose_blocks();
    return 0;
}
