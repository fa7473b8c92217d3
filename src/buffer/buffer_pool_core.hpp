// Layer 8: the state behind a bpool::buffer_pool, shared with the buffers it checks out.
//
// A buffer checked out of a pool points at this core ("home") so that its destruction can end the
// checkout. The live-buffer cap reuses the capacity layer: a budget whose only limit is on blocks,
// one block per buffer checked out, so waiting, backoff, fairness, overcommit and statistics behave
// exactly as they do for memory. The budget's flags word is private to the core (nothing reads its
// pressure bits: there is no fast path to divert), and there is nothing to reclaim.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include <bpool/buffer_pool.hpp>
#include <bpool/pool_options.hpp>
#include <bpool/pool_resource.hpp>

#include "budget/budget.hpp"
#include "pool/pools.hpp"

namespace bpool::detail {

class buffer_pool_core final : public fork_client {
  public:
    /// How a checkout got past the live-buffer cap.
    enum class checkout { slot, bypass };

    /// `owned` is null for a borrowed resource; `resource` is the one in use either way.
    buffer_pool_core(std::unique_ptr<pool_resource> owned, pool_resource& resource,
                     const buffer_pool_options& options);
    ~buffer_pool_core();
    buffer_pool_core(const buffer_pool_core&) = delete;
    buffer_pool_core& operator=(const buffer_pool_core&) = delete;

    /// Counts a buffer as checked out, taking a live slot under the cap's policy.
    /// Throws capacity_exceeded when refused or timed out.
    checkout check_out();
    /// Ends a checkout made by check_out (`slot`: it took a live slot).
    void check_in(bool slot) noexcept;

    [[nodiscard]] pool_resource& resource() const noexcept { return resource_; }
    [[nodiscard]] const buffer_pool_options& options() const noexcept { return options_; }
    [[nodiscard]] std::size_t live() const noexcept {
        return live_.load(std::memory_order_relaxed);
    }
    void set_max_live(std::size_t n) noexcept { slots_.set_limits(0, n); }
    [[nodiscard]] std::size_t max_live() const noexcept { return slots_.max_live_blocks(); }

    // fork(): the cap's lock is taken by the prepare handler; the child forgets the waiters (its
    // parent's threads), whose slots would otherwise never be handed on.
    void fork_prepare() noexcept override { slots_.lock_for_fork(); }
    void fork_parent() noexcept override { slots_.unlock_after_fork(); }
    void fork_child() noexcept override { slots_.reset_after_fork(); }

  private:
    // Nothing parks slots anywhere but in buffers: a waiter has nothing to take back.
    struct no_reclaim final : reclaimer {
        amount reclaim_for(amount /*missing*/) noexcept override { return {}; }
    };

    std::unique_ptr<pool_resource> owned_;
    pool_resource& resource_;
    buffer_pool_options options_;  // normalized
    pool_options slot_options_;    // what the budget is built from (it may keep references)
    std::atomic<std::uint32_t> flags_{0};
    budget slots_;
    no_reclaim no_reclaim_;
    std::atomic<std::size_t> live_{0};
};

}  // namespace bpool::detail
