// Test support: the options of a capped pool, for the capacity tests.
#pragma once

#include <chrono>
#include <cstddef>

#include <bpool/pool_options.hpp>

namespace bpool::test {

/// A pool capped at `cap` bytes under `policy`, whose waits give up after `max_elapsed`.
inline pool_options capped(std::size_t cap, exhaustion policy = exhaustion::wait,
                           std::chrono::nanoseconds max_elapsed = std::chrono::seconds(10)) {
    pool_options o;
    o.capacity = cap;
    o.on_exhaustion = policy;
    o.backoff.max_elapsed = max_elapsed;
    return o;
}

}  // namespace bpool::test
