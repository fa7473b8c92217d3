// Under memcheck: a pooled block given back twice (a build without BPOOL_CHECKED, which would
// stop at it itself).
#include <cstdlib>

#include <bpool/bpool.hpp>

namespace {

__attribute__((noinline)) void free_twice(bpool::pool_resource& pool) {
    void* p = pool.allocate(48);
    pool.deallocate(p, 48);
    pool.deallocate(p, 48);  // invalid free
}

}  // namespace

int main() {
    // Not destroyed: its free list now holds the block twice, so leave before using it again.
    auto* pool = new bpool::pool_resource;
    free_twice(*pool);
    std::_Exit(0);
}
