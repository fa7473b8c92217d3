// Layer 6: the registry of a pool's thread caches, and quiescing (the protocol is in
// thread_cache.hpp). It owns the list of listed caches and the lock that guards it; what a cache
// holds (bins, credit, reservation) belongs to the cache and to the allowance.
//
// Thread safety: add(), enter(), count() and quiesces() are thread-safe; every other member needs
// the registry lock (mutex()), which owners never take inside an operation.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "base/intrusive_list.hpp"
#include "cache/barrier.hpp"
#include "cache/thread_cache.hpp"

namespace bpool::detail {

class cache_registry {
  public:
    /// A registry whose quiescers raise flag_quiesce in `flags` (the pool's flags word).
    explicit cache_registry(std::atomic<std::uint32_t>& flags) noexcept : flags_(flags) {}
    cache_registry(const cache_registry&) = delete;
    cache_registry& operator=(const cache_registry&) = delete;

    /// The registry lock.
    [[nodiscard]] std::mutex& mutex() const noexcept { return mutex_; }

    /// Lists `tc`, first calling `setup(*tc)` under the lock (settings that quiescers change).
    template <class F>
    void add(thread_cache* tc, F&& setup) {
        std::lock_guard lock(mutex_);
        setup(*tc);
        list_push_front<&thread_cache::prev_, &thread_cache::next_>(head_, tc);
        tc->listed_ = true;
        count_.fetch_add(1, std::memory_order_relaxed);
    }

    /// Unlists `tc` (lock held). Returns false if it was not listed.
    bool remove_locked(thread_cache* tc) noexcept;

    /// Whether `tc` is listed (lock held).
    [[nodiscard]] static bool listed(const thread_cache* tc) noexcept { return tc->listed_; }

    /// Unlists every cache without touching what they hold (pool destruction).
    void clear() noexcept;

    /// Calls `f(tc)` for every listed cache (lock held); `f` may unlist the cache it is given.
    template <class F>
    void each(F&& f) const {
        for (thread_cache* tc = head_; tc != nullptr;) {
            thread_cache* next = tc->next_;
            f(*tc);
            tc = next;
        }
    }

    /// The owner's slow path enters an operation, waiting on the lock while a quiescer works.
    void enter(thread_cache* tc) noexcept {
        while (!tc->enter_fast(flags_, flag_quiesce)) {
            std::lock_guard wait(mutex_);
        }
    }

    /// Quiesces (lock held): raises flag_quiesce, issues the heavy barrier, then for every listed
    /// cache with `select(tc)` waits until its owner is outside any operation and calls `f(tc)`.
    /// Caches not selected are not waited for. Does nothing (no barrier) if none is selected.
    template <class S, class F>
    void quiesce_locked(S&& select, F&& f) noexcept {
        bool any = false;
        each([&](thread_cache& tc) { any = any || select(tc); });
        if (!any) return;
        begin_quiesce_locked();
        each([&](thread_cache& tc) {
            if (!select(tc)) return;
            tc.wait_idle();
            f(tc);
        });
        end_quiesce();
    }

    /// Quiesces every listed cache (lock held) and calls `f(tc)` on each.
    template <class F>
    void quiesce_all_locked(F&& f) noexcept {
        quiesce_locked([](const thread_cache&) { return true; }, f);
    }

    /// fork(): takes the lock and quiesces every cache, keeping it so until unlock_after_fork.
    void lock_for_fork() noexcept;
    /// Ends what lock_for_fork began (in the parent and the child).
    void unlock_after_fork() noexcept;

    /// Listed caches (a snapshot).
    [[nodiscard]] std::uint32_t count() const noexcept {
        return count_.load(std::memory_order_relaxed);
    }
    /// Heavy barriers issued by this registry's quiescers since construction.
    [[nodiscard]] std::uint64_t quiesces() const noexcept {
        return quiesces_.load(std::memory_order_relaxed);
    }

  private:
    void begin_quiesce_locked() noexcept;
    void end_quiesce() noexcept;

    std::atomic<std::uint32_t>& flags_;
    mutable std::mutex mutex_;
    thread_cache* head_ = nullptr;
    std::atomic<std::uint32_t> count_{0};  // changed under the lock
    std::atomic<std::uint64_t> quiesces_{0};
};

}  // namespace bpool::detail
