// Layer 10: the operators' way to the process-wide pool. Once global_pool() has made it, the
// pointer below is set, and an operator reads it with one load instead of calling global_pool()
// (whose function-local static costs a call and a guard test).
#pragma once

#include <atomic>

#include <bpool/global.hpp>

namespace bpool::detail {

/// The process-wide pool once made (release store by global_pool()); nullptr before.
extern constinit std::atomic<pool_resource*> made_global_pool __attribute__((visibility("hidden")));

/// Returns global_pool(), without a call once it exists. Thread-safe.
inline pool_resource& global_pool_fast() {
    // acquire: pairs with the store after the pool's construction (a plain load on x86).
    if (pool_resource* p = made_global_pool.load(std::memory_order_acquire)) return *p;
    return global_pool();
}

}  // namespace bpool::detail
