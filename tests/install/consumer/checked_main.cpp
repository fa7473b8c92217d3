// Linked with bpool::checked (tests/install/run.cmake). With no argument it leaks a block from a
// named function and exits 0: the pool's leak report must name that function (the program is
// linked with -rdynamic). With "double-free" it gives a block back twice: the program must abort
// with the double-free message followed by the stack of the call.
#include <cstring>

#include <bpool/pool_resource.hpp>

#if !BPOOL_CHECKED
#error "bpool::checked must define BPOOL_CHECKED=1 for the code that links it"
#endif

#if defined(__clang__)
#define CONSUMER_FRAME __attribute__((noinline))
#else
#define CONSUMER_FRAME __attribute__((noipa))  // no clone either: a clone's symbol is local
#endif

void* volatile consumer_sink = nullptr;

CONSUMER_FRAME void consumer_leaks_a_block(bpool::pool_resource& pool) {
    consumer_sink = pool.allocate(48);
    consumer_sink = nullptr;  // after the call: the call stays one, with this frame
}

CONSUMER_FRAME void consumer_frees_twice(bpool::pool_resource& pool) {
    void* p = pool.allocate(100);
    pool.deallocate(p, 100);
    pool.deallocate(p, 100);
    consumer_sink = p;
}

int main(int argc, char** argv) {
    bpool::pool_resource pool;
    if (argc > 1 && std::strcmp(argv[1], "double-free") == 0) {
        consumer_frees_twice(pool);
        return 0;  // not reached: the checked build aborts
    }
    consumer_leaks_a_block(pool);
    return 0;
}
