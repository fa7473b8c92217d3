// Test support: a pool stacked over a capped pool whose refills wait in it, and an allocation on a
// thread of its own whose outcome a test reads while it waits.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <memory_resource>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include <bpool/errors.hpp>
#include <bpool/pool_options.hpp>
#include <bpool/pool_resource.hpp>

#include "support/capped.hpp"

namespace bpool::test {

/// Blocks of a class above 16 KiB: each is a chunk of its own, one allocation from the pool below,
/// so that freeing one (and trimming) gives the pool below its whole size back.
inline constexpr std::size_t big_block = std::size_t{256} << 10;

/// Waits that no slow machine ends by timing out: a refill that waits must be served, or the test
/// fails by its watchdog (support/watchdog.hpp), long before this.
inline constexpr std::chrono::seconds patience{60};

/// The pool below: capped at `blocks` big blocks (as the pool above asks for them: page-aligned
/// chunks), waiting at the cap.
inline pool_options capped_below(std::size_t blocks = 4) {
    return capped(blocks * big_block, exhaustion::wait, patience);
}

/// The pool above: uncapped; it keeps less than one big block idle, so a freed one goes back to
/// the pool below; its requests pass their deadline down, and it is as patient as the pool below.
inline pool_options patient_above() {
    pool_options o;
    o.max_cached_bytes = std::size_t{64} << 10;
    o.backoff.max_elapsed = patience;
    return o;
}

/// Allocates blocks of `size` from `pool` until it (or, through it, its upstream) refuses under a
/// `fail` scope; returns them.
inline std::vector<void*> fill_until_refused(std::pmr::memory_resource& pool, std::size_t size) {
    std::vector<void*> blocks;
    const exhaustion_scope fail_fast(exhaustion::fail);
    try {
        for (;;)
            blocks.push_back(pool.allocate(size));
    } catch (const capacity_exceeded&) {
    }
    return blocks;
}

/// One allocation on a thread of its own. The thread allocates nothing else (an outcome is a word;
/// only a failure, which allocates its exception anyway, copies its message), so a test may fork
/// while it waits.
class background_allocation {
  public:
    enum class state { pending, granted, failed };

    background_allocation(std::pmr::memory_resource& from, std::size_t bytes)
        : from_(from), bytes_(bytes) {
        thread_ = std::thread([this] { run(); });
    }
    ~background_allocation() {
        join();
        if (block_ != nullptr) from_.deallocate(block_, bytes_);
    }
    background_allocation(const background_allocation&) = delete;
    background_allocation& operator=(const background_allocation&) = delete;

    [[nodiscard]] state now() const { return state_.load(std::memory_order_acquire); }
    void join() {
        if (thread_.joinable()) thread_.join();
    }
    /// Why it failed (after `join()`).
    [[nodiscard]] const std::string& error() const { return error_; }

  private:
    void run() {
        try {
            block_ = from_.allocate(bytes_);
            state_.store(state::granted, std::memory_order_release);
        } catch (const std::exception& e) {
            error_ = e.what();
            state_.store(state::failed, std::memory_order_release);
        }
    }

    std::pmr::memory_resource& from_;
    const std::size_t bytes_;
    void* block_ = nullptr;
    std::string error_;
    std::atomic<state> state_{state::pending};
    std::thread thread_;
};

/// What a state says, for failure messages.
inline const char* describe(background_allocation::state s) {
    switch (s) {
        case background_allocation::state::pending:
            return "still waiting";
        case background_allocation::state::granted:
            return "granted";
        case background_allocation::state::failed:
            return "failed";
    }
    return "?";
}

/// How GoogleTest prints a state.
inline void PrintTo(background_allocation::state s, std::ostream* os) {
    *os << describe(s);
}

/// Waits until `pool` shows a waiter (`stats().waiters`), or `request` ended without waiting
/// (then returns false: the scenario did not set up).
inline bool wait_for_waiter(const pool_resource& pool, const background_allocation& request,
                            std::size_t waiters = 1) {
    while (pool.stats().waiters < waiters) {
        if (request.now() != background_allocation::state::pending) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

}  // namespace bpool::test
