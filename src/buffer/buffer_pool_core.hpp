// Layer 9: the state behind a bpool::buffer_pool, shared with the buffers it checks out.
//
// A buffer checked out of a pool points at this core ("home") so that its destruction can end the
// checkout. The live-buffer cap is a fifo_semaphore (budget/fifo_semaphore.hpp) whose only limit
// is on blocks, one block per buffer checked out, so that fairness (arrival order), deadlines,
// lowered caps and overcommit behave exactly as they do for memory; its waits are paced by the
// same backoff policy as a pool's (budget/backoff.hpp). Nothing parks slots anywhere but in
// buffers, so a waiter has nothing to reclaim, and no fast path reads the cap's state.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include <bpool/buffer_pool.hpp>
#include <bpool/pool_options.hpp>
#include <bpool/pool_resource.hpp>

#include "budget/backoff.hpp"
#include "budget/fifo_semaphore.hpp"
#include "pool/pools.hpp"

namespace bpool::detail {

class buffer_pool_core final : public fork_client {
  public:
    /// How a checkout got past the live-buffer cap.
    enum class checkout { slot, bypass };

    /// Effects: a core over `resource` with the cap `options.max_live`, listed for fork().
    /// `owned` is null for a borrowed resource; `resource` is the one in use either way.
    /// Throws std::invalid_argument if a borrowed resource pools blocks larger than
    /// `options.max_pooled_size`.
    buffer_pool_core(std::unique_ptr<pool_resource> owned, pool_resource& resource,
                     const buffer_pool_options& options);
    /// Effects: unlists the core; a checked build aborts if buffers are still checked out.
    ~buffer_pool_core();
    buffer_pool_core(const buffer_pool_core&) = delete;
    buffer_pool_core& operator=(const buffer_pool_core&) = delete;

    /// Effects: begins a checkout: takes a live slot under the cap's policy (the pool's, or an
    /// enclosing exhaustion_scope's): at once, after a wait, past the cap (overcommit), or none
    /// (bypass). Counts nothing yet: the caller reserves the buffer's storage, which may wait at
    /// the memory capacity, then calls `counted()` (or `abandon()` if that failed), so that
    /// live() never counts a get() still waiting. Returns how. Throws capacity_exceeded when
    /// refused or timed out (nothing is taken then). Thread-safe.
    checkout check_out();
    /// The live-slot terms of a checkout that starts now: the policy (the pool's, or an enclosing
    /// exhaustion_scope's) and the wait's start and deadline.
    struct slot_terms {
        exhaustion policy;
        wait_terms terms;
    };
    [[nodiscard]] slot_terms terms_now() const noexcept;
    /// Returns: the live-buffer cap, for an async checkout's wait.
    [[nodiscard]] fifo_semaphore& slots() noexcept { return slots_; }
    /// Returns: what paces the waits at the live-buffer cap.
    [[nodiscard]] wait_hooks& slot_hooks() noexcept { return backoff_; }

    /// An async checkout that may still wait (the pool cancels them when it is destroyed).
    class pending_checkout {
      public:
        /// Effects: cancels the checkout if it still waits. Returns whether it did.
        virtual bool cancel_checkout() noexcept = 0;

      protected:
        virtual ~pending_checkout() = default;

      private:
        friend class buffer_pool_core;
        pending_checkout* prev_ = nullptr;
        pending_checkout* next_ = nullptr;
    };
    /// Effects: lists `c` until `unlist(c)`, and counts a checkout in progress until `ended()`.
    /// Thread-safe.
    void list(pending_checkout* c) noexcept;
    /// Effects: unlists `c`, which no longer waits (its completion is about to run). Thread-safe.
    void unlist(pending_checkout* c) noexcept;
    /// Effects: runs `complete()`, the completion of a checkout unlisted before, then counts the
    /// checkout as ended, unless the completion destroyed this core (it may). Thread-safe.
    template <class F>
    void run_completion(F&& complete) noexcept {
        buffer_pool_core* const outer = completing_;
        completing_ = this;
        complete();
        const bool alive = completing_ == this;  // the destructor clears it
        completing_ = outer;
        if (alive) ended();
    }

    /// Effects: begins a checkout that never waits: takes a live slot if one is free and nobody
    /// waits for one. Returns whether it did (the caller then goes on as after check_out's
    /// `slot`). Thread-safe.
    [[nodiscard]] bool try_check_out() noexcept {
        return slots_.try_take({0, 1}) == fifo_semaphore::take_result::taken;
    }
    /// Effects: completes a checkout begun by check_out: live() counts the buffer from now on.
    /// Thread-safe.
    void counted() noexcept { live_.fetch_add(1, std::memory_order_relaxed); }
    /// Effects: abandons a checkout begun by check_out that was never counted (`slot`: it took a
    /// live slot, given back to the cap's waiters). Thread-safe.
    void abandon(bool slot) noexcept {
        if (slot) slots_.give({0, 1});
    }
    /// Effects: ends a counted checkout (`slot`: it took a live slot, given back to the cap's
    /// waiters). Thread-safe.
    void check_in(bool slot) noexcept;

    /// Returns: the resource buffers draw from. Thread-safe.
    [[nodiscard]] pool_resource& resource() const noexcept { return resource_; }
    /// Returns: the normalized options (`max_live` as constructed; see max_live). Thread-safe.
    [[nodiscard]] const buffer_pool_options& options() const noexcept { return options_; }
    /// Returns: the buffers checked out (counted), bypassing ones included. Lock-free.
    [[nodiscard]] std::size_t live() const noexcept {
        return live_.load(std::memory_order_relaxed);
    }
    /// Effects: sets the cap (0: none); waiters that now fit are granted. Thread-safe.
    void set_max_live(std::size_t n) noexcept { slots_.set_limits(0, n); }
    /// Returns: the cap in force (0: none). Lock-free.
    [[nodiscard]] std::size_t max_live() const noexcept { return slots_.block_limit(); }

    // fork(): the cap's lock is taken by the prepare handler; the child forgets the waiters (its
    // parent's threads), whose slots would otherwise never be handed on.
    /// The prepare handler: takes the cap's lock.
    void fork_prepare() noexcept override { slots_.lock_for_fork(); }
    /// The parent's handler: releases it.
    void fork_parent() noexcept override { slots_.unlock_after_fork(); }
    /// The child's handler: releases it and forgets the waiters.
    void fork_child() noexcept override { slots_.reset_after_fork(); }

  private:
    std::unique_ptr<pool_resource> owned_;
    pool_resource& resource_;
    buffer_pool_options options_;  // normalized
    jittered_backoff backoff_;     // paces the waits at the cap; reset by the cap's releases
    fifo_semaphore slots_;         // one block per buffer checked out (bypassing ones aside)
    std::atomic<std::size_t> live_{0};
    void ended() noexcept;

    std::mutex pending_mutex_;  // guards the list and count of async checkouts in progress
    std::condition_variable none_pending_;
    pending_checkout* pending_ = nullptr;
    std::size_t in_progress_ = 0;  // listed, or their completion still running
    // The core whose checkout's completion runs on this thread (a completion may destroy it).
    static thread_local buffer_pool_core* completing_;
};

}  // namespace bpool::detail
