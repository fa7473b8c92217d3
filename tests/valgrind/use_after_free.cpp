// Under memcheck: a read and a write of a pooled block after it was given back. Both touch bytes
// past the first word, which holds the free-list link of an idle block (see README, valgrind).
#include <cstdio>

#include <bpool/bpool.hpp>

namespace {

__attribute__((noinline)) int read_after_free(bpool::pool_resource& pool) {
    auto* p = static_cast<volatile unsigned char*>(pool.allocate(64));
    p[40] = 7;
    pool.deallocate(const_cast<unsigned char*>(p), 64);
    return p[40];  // invalid read: the block is idle
}

__attribute__((noinline)) void write_after_free(bpool::pool_resource& pool) {
    auto* p = static_cast<volatile unsigned char*>(pool.allocate(256));
    pool.deallocate(const_cast<unsigned char*>(p), 256);
    p[100] = 1;  // invalid write
}

}  // namespace

int main() {
    bpool::pool_resource pool;
    const int v = read_after_free(pool);
    write_after_free(pool);
    std::printf("read %d\n", v);
    return 0;
}
