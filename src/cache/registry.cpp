#include "cache/registry.hpp"

namespace bpool::detail {

bool cache_registry::remove_locked(thread_cache* tc) noexcept {
    if (!tc->listed_) return false;
    list_unlink<&thread_cache::prev_, &thread_cache::next_>(head_, tc);
    tc->listed_ = false;
    count_.fetch_sub(1, std::memory_order_relaxed);
    return true;
}

void cache_registry::clear() noexcept {
    std::lock_guard lock(mutex_);
    // The caches' owners still hold them and free them later (thread exit, or a stale slot).
    each([](thread_cache& tc) { tc.listed_ = false; });
    head_ = nullptr;
    count_.store(0, std::memory_order_relaxed);
}

void cache_registry::begin_quiesce_locked() noexcept {
    // seq_cst: the raise is ordered before the barrier, and the barrier before the reads of
    // in_op (see "Quiescing" in thread_cache.hpp).
    flags_.fetch_or(flag_quiesce, std::memory_order_seq_cst);
    heavy_barrier();
    quiesces_.fetch_add(1, std::memory_order_relaxed);
}

void cache_registry::end_quiesce() noexcept {
    // Release: the quiescer's writes to the caches happen before an owner's next operation.
    flags_.fetch_and(~std::uint32_t{flag_quiesce}, std::memory_order_release);
}

void cache_registry::lock_for_fork() noexcept {
    mutex_.lock();
    if (head_ == nullptr) return;
    begin_quiesce_locked();
    each([](thread_cache& tc) { tc.wait_idle(); });
}

void cache_registry::unlock_after_fork() noexcept {
    end_quiesce();
    mutex_.unlock();
}

}  // namespace bpool::detail
