// Shared by the adapter tests: a capped pool over a counting upstream, and the end-of-test checks.
#pragma once

#include <cstddef>
#include <string>

#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "../support/counting_resource.hpp"

namespace bpool::test {

/// Options of a pool capped at `capacity` bytes with `policy` at the cap (waits give up quickly,
/// so that a test of `wait` never depends on timing beyond "it gives up eventually").
inline pool_options capped(std::size_t capacity, exhaustion policy = exhaustion::fail) {
    pool_options o;
    o.capacity = capacity;
    o.on_exhaustion = policy;
    o.backoff.max_elapsed = std::chrono::milliseconds(20);
    return o;
}

/// A pool and the counting upstream under it; on destruction, checks that every block went back
/// (live_bytes() is 0) and that upstream saw no mismatched deallocation.
struct checked_pool {
    explicit checked_pool(const pool_options& options = {}) : pool(options, &upstream) {}
    ~checked_pool() {
        EXPECT_EQ(pool.live_bytes(), 0u) << "every block given back";
        EXPECT_EQ(pool.live_blocks(), 0u);
        if (pool.capacity() != 0 && pool.options().on_exhaustion != exhaustion::overcommit &&
            pool.options().on_exhaustion != exhaustion::bypass) {
            EXPECT_LE(pool.stats().peak_live_bytes, pool.capacity()) << "the cap held";
        }
        EXPECT_EQ(upstream.mismatches(), 0u);
    }
    checked_pool(const checked_pool&) = delete;
    checked_pool& operator=(const checked_pool&) = delete;

    counting_resource upstream;
    pool_resource pool;
};

/// A string long enough never to fit a small-string buffer.
inline std::string long_string(int i) {
    return "a string long enough to live in the pool, number " + std::to_string(i);
}

}  // namespace bpool::test
