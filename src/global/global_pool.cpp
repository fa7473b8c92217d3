// Layer 10: the process-wide pool. Made inside the first operator new of the process (maybe before
// main, from a static initializer) in static storage, never destroyed; nothing on the way calls
// operator new (its metadata comes from the pool's own mappings, its configuration is read
// without allocating, its upstream is malloc).
#include "global/global_pool.hpp"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <memory_resource>
#include <new>
#include <unistd.h>

#include <bpool/global.hpp>

#include "global/env_config.hpp"

namespace bpool {

constinit std::atomic<pool_resource*> detail::made_global_pool{nullptr};

namespace {

// glibc's malloc as an upstream: what a program's C code uses, and it never calls operator new.
class malloc_upstream final : public std::pmr::memory_resource {
    void* do_allocate(std::size_t bytes, std::size_t alignment) override {
        void* p = nullptr;
        if (alignment <= alignof(std::max_align_t)) {
            p = std::malloc(bytes);
        } else if (::posix_memalign(&p, alignment, bytes) != 0) {
            p = nullptr;
        }
        if (p == nullptr) throw std::bad_alloc();
        return p;
    }
    void do_deallocate(void* p, std::size_t, std::size_t) override { std::free(p); }
    [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
        return this == &other;
    }
};

void report_stall(const stall_event& e) {
    char line[256];
    const long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(e.waited).count();
    std::snprintf(line, sizeof line,
                  "a request of %zu bytes %s after %lld ms at the cap (live %zu of %zu bytes)",
                  e.requested, e.what == stall_event::kind::stalled ? "still waits" : "gave up", ms,
                  e.live_bytes, e.capacity);
    detail::report_line(line);
}

void print_stats_at_exit() {
    const pool_stats s = detail::made_global_pool.load(std::memory_order_acquire)->stats();
    char line[640];
    std::snprintf(line, sizeof line,
                  "stats pid=%ld allocations=%" PRIu64 " deallocations=%" PRIu64
                  " live_bytes=%zu live_blocks=%zu peak_live_bytes=%zu upstream_bytes=%zu "
                  "peak_upstream_bytes=%zu capacity=%zu waits=%" PRIu64 " timeouts=%" PRIu64,
                  static_cast<long>(::getpid()), s.allocations, s.deallocations, s.live_bytes,
                  s.live_blocks, s.peak_live_bytes, s.upstream_bytes, s.peak_upstream_bytes,
                  s.capacity, s.waits, s.timeouts);
    detail::report_line(line);
}

pool_resource* make_global_pool() {
    detail::env_config config = detail::read_env_config(detail::process_env());
    if (config.verbose) config.options.on_stall = report_stall;
    alignas(malloc_upstream) static unsigned char upstream_storage[sizeof(malloc_upstream)];
    alignas(pool_resource) static unsigned char pool_storage[sizeof(pool_resource)];
    auto* upstream = ::new (upstream_storage) malloc_upstream;
    auto* pool = ::new (pool_storage) pool_resource(config.options, upstream);
    detail::made_global_pool.store(pool, std::memory_order_release);
    if (config.print_stats) std::atexit(print_stats_at_exit);
    return pool;
}

}  // namespace

pool_resource& global_pool() {
    // A function-local static: made on the first call from any thread, whenever that is; the
    // guard costs one load afterwards.
    static pool_resource* const pool = make_global_pool();
    return *pool;
}

}  // namespace bpool
