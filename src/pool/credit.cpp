// The core's credit: what a request may spend, and how it is bounded (see "Caps" in
// thread_cache.hpp and the budget in budget.hpp).
#include <algorithm>
#include <thread>

#include "pool/options.hpp"
#include "pool/pool_core.hpp"

namespace bpool::detail {

wait_policy pool_core::policy_for(request_mode& mode) const noexcept {
    if (mode.policy) return *mode.policy;
    // The deadline and the wait's start come from one instant, so that a request that times out
    // reports at least the wait it was allowed.
    const auto now = steady::now();
    wait_policy wp{options_.on_exhaustion, steady::time_point::max(), now};
    std::chrono::nanoseconds budget_time = options_.backoff.max_elapsed;
    if (mode.what == request_mode::timed) {
        wp.policy = exhaustion::wait;
        budget_time = mode.timeout;
    }
    wp.deadline =
        now + std::min(budget_time, std::chrono::nanoseconds(std::chrono::hours(24 * 365)));
    scope_override(&wp.policy, &wp.deadline, mode.what == request_mode::timed);
    if (mode.what == request_mode::no_wait) wp.policy = exhaustion::fail;
    mode.policy = wp;
    return wp;
}

bool pool_core::paces(const request_mode& mode) const noexcept {
    // The soft threshold slows every request down, except those that promise not to be slowed:
    // try_allocate, and requests in an exhaustion_scope that asks to fail or bypass.
    if (mode.what == request_mode::no_wait) return false;
    if (mode.what == request_mode::timed) return true;
    exhaustion policy = exhaustion::wait;  // kept unless a scope sets one
    auto unused_deadline = steady::time_point::max();
    scope_override(&policy, &unused_deadline, false);
    return policy == exhaustion::wait || policy == exhaustion::overcommit;
}

void* pool_core::refused(const request_mode& mode, outcome o, std::size_t bytes,
                         std::chrono::nanoseconds waited) const {
    if (mode.what == request_mode::no_wait) return nullptr;
    throw capacity_exceeded(bytes, waited, budget_.capacity(), o == outcome::timed_out);
}

void* pool_core::failed(const request_mode& mode) {
    if (mode.what == request_mode::no_wait) return nullptr;
    throw;
}

void pool_core::refresh_limits(thread_cache* tc) const noexcept {
    // A lease leaves a cache with up to its request plus one lease of credit; frees may add as
    // much again before the surplus goes back, leaving one lease. So in a balanced alloc/free
    // churn of blocks smaller than a lease the fast path meets neither limit, and in a one-way
    // flow it returns credit once per lease. (Under a small capacity the lease is small too, 4 KiB
    // at least: frees of blocks above two leases then always take the slow path.)
    tc->set_hold_limit(3 * budget_.lease_bytes());
}

amount pool_core::return_credit(thread_cache* tc, amount keep) noexcept {
    const amount have = tc->credit();
    const amount back = clamped(have - keep);
    tc->set_credit(have - back);
    return back;
}

// The blocks a cache's credit may reach in a slow path (two leases' worth, and what a lease adds
// to at most one), plus what the fast paths may add before the next (every bin filling up): the
// packed credit must hold them (thread_cache.hpp).
constexpr std::int64_t held_blocks_limit = 2 * budget::max_lease_blocks;
static_assert(held_blocks_limit + budget::max_lease_blocks + 2 + max_bin_blocks <=
              max_credit_blocks);

amount pool_core::excess_credit(thread_cache* tc) noexcept {
    if ((flags_.load(std::memory_order_acquire) & (flag_pressure | flag_pacing)) != 0)
        return return_credit(tc, {});
    if (tc->credit().bytes > tc->hold_limit()) return return_credit(tc, budget_.lease());
    return excess_blocks(tc);
}

amount pool_core::excess_blocks(thread_cache* tc) noexcept {
    if (BPOOL_UNLIKELY(tc->credit().blocks > held_blocks_limit))
        return return_credit(tc, budget_.lease());
    return {};
}

void pool_core::give_after(thread_cache* tc, amount a) noexcept {
    tc->leave();
    if (!a.zero()) budget_.give(a);
}

// Makes sure the cache holds credit for `need`. Returns true if it does (possibly after a pause or
// a wait), inside the operation, so that the caller spends it before a quiescer could take it
// back; false with the outcome otherwise. Called inside an operation; may leave and re-enter it,
// but never while holding credit it has just been granted.
bool pool_core::take_credit(thread_cache* tc, amount need, std::size_t bytes, request_mode& mode,
                            outcome* result, std::chrono::nanoseconds* waited) {
    bool pace = paces(mode);
    for (;;) {
        const std::uint32_t f = flags_.load(std::memory_order_acquire);
        if ((f & flag_pressure) != 0) break;
        const amount have = tc->credit();
        if ((!pace || (f & flag_pacing) == 0) && have.bytes >= need.bytes &&
            have.blocks >= need.blocks)
            return true;
        amount granted{};
        std::chrono::nanoseconds pause{0};
        // The extra blocks top the cache up to one lease's worth, never beyond: a cache that
        // runs short of bytes only must not pile up blocks (thread_cache.hpp, packed credit).
        const amount most_extra{budget::full_extra.bytes,
                                std::max<std::int64_t>(0, budget::max_lease_blocks - have.blocks)};
        const budget::lease_result r = budget_.try_lease(need, most_extra, pace, &granted, &pause);
        if (r == budget::lease_result::refused) break;
        if (r == budget::lease_result::leased) {
            tc->set_credit(have + granted);
            refresh_limits(tc);
            return true;
        }
        // Above the soft threshold: pause once, holding no new credit, then lease for real.
        tc->leave();
        budget_.paced(bytes);
        std::this_thread::sleep_for(pause);
        registry_.enter(tc);
        pace = false;
    }
    // At the cap, or others wait: hand our own credit to the queue first (the oldest waiter may
    // need it), then wait our turn for exactly what this request needs.
    give_after(tc, return_credit(tc, {}));
    *result = budget_.acquire(need, bytes, policy_for(mode), *this, waited);
    registry_.enter(tc);
    if (*result != outcome::granted && *result != outcome::overcommitted) return false;
    tc->set_credit(tc->credit() + need);
    return true;
}

outcome pool_core::acquire_exact(amount need, std::size_t bytes, request_mode& mode,
                                 std::chrono::nanoseconds* waited) {
    // No cache to keep an extra lease in: exactly `need`, paced first above the soft threshold.
    for (bool pace = paces(mode);; pace = false) {
        amount granted{};
        std::chrono::nanoseconds pause{0};
        const budget::lease_result r =
            budget_.try_lease(need, budget::no_extra, pace, &granted, &pause);
        if (r == budget::lease_result::leased) return outcome::granted;
        if (r == budget::lease_result::refused) break;
        budget_.paced(bytes);
        std::this_thread::sleep_for(pause);
    }
    return budget_.acquire(need, bytes, policy_for(mode), *this, waited);
}

}  // namespace bpool::detail
