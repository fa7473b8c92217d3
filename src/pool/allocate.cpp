// The core's allocation paths: the slow path of a cached class, the uncached one (no thread cache:
// an exiting thread, or metadata short), blocks above the classes, and the bypass policy.
#include <algorithm>
#include <new>
#include <stdexcept>
#include <thread>

#include "pool/options.hpp"
#include "pool/pool_core.hpp"

namespace bpool::detail {

template <class F>
decltype(auto) pool_core::bounded(request_mode& mode, std::size_t bytes, F&& f) {
    const wait_policy wp = policy_for(mode);
    std::chrono::nanoseconds step = options_.backoff.initial_interval;
    for (;;) {
        try {
            if (wp.policy == exhaustion::fail) {
                const exhaustion_scope scope(exhaustion::fail, wp.deadline);
                return f();
            }
            const exhaustion_scope scope(wp.deadline);
            return f();
        } catch (const upstream_full&) {
            // The capacity covers what the pool holds (capacity_scope::held) and upstream would
            // pass it: idle memory goes back first, every thread's cache included, then the
            // request tries again; it waits only when nothing came back.
            if (trim() > 0) continue;
            const auto now = steady::now();
            if (wp.policy == exhaustion::fail || now >= wp.deadline) {
                if (wp.policy == exhaustion::overcommit) {
                    const upstream_source::uncapped_scope past_the_cap;
                    return f();
                }
                const auto waited =
                    std::chrono::duration_cast<std::chrono::nanoseconds>(now - wp.start);
                throw capacity_exceeded(
                    bytes, wp.policy == exhaustion::fail ? std::chrono::nanoseconds{0} : waited,
                    budget_.capacity(), wp.policy != exhaustion::fail);
            }
            // Frees put blocks into caches, not upstream: the next step trims them back.
            std::this_thread::sleep_for(std::min(step, wp.deadline - now));
            step = std::min(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                step * options_.backoff.multiplier),
                            options_.backoff.max_interval);
        }
    }
}

void* pool_core::allocate(std::size_t bytes, std::size_t alignment, request_mode mode) {
    if (!is_power_of_two(alignment)) {
        if (mode.what == request_mode::no_wait) return nullptr;
        throw std::invalid_argument("bpool: alignment is not a power of two");
    }
    const unsigned c = class_of(bytes, alignment);
    if (c == no_class) return allocate_direct(bytes, alignment, mode);
    if (thread_cache* tc = cache_for_thread()) return allocate_cached(tc, c, bytes, mode);
    return allocate_uncached(c, bytes, mode);
}

BPOOL_NOINLINE void* pool_core::allocate_normal(std::size_t bytes, std::size_t alignment) {
    if (id_ >= fixed_slots)
        if (void* p = pop_cached<true>(bytes, alignment)) return p;
    return allocate(bytes, alignment, {});
}

void* pool_core::allocate_cached(thread_cache* tc, unsigned c, std::size_t bytes,
                                 request_mode& mode) {
    const class_info& k = classes[c];
    registry_.enter(tc);
    outcome result = outcome::granted;
    std::chrono::nanoseconds waited{0};
    if (!take_credit(tc, amount_of(k), bytes, mode, &result, &waited)) {
        tc->leave();
        if (result == outcome::bypass) return allocate_bypass(c, k.size, k.align, mode);
        return refused(mode, result, bytes, waited);
    }
    retired_chunks retired;
    if (tc->empty(c)) {
        allowance_.tune(*tc, c, *this, retired);
        const std::uint32_t n = transfer_batch(tc->limit(c), k);
        block_list got = central_[c].try_take(k, n, map_, totals_);
        if (got.empty()) return refill_from_pages(tc, c, n, mode, retired);
        tc->fill(c, got);
    }
    void* p = tc->pop(c);
    tc->set_credit(tc->credit() - amount_of(k));
    give_after(tc, excess_blocks(tc));
    finish(tc, retired);
    track::block_live(p, k.size);
    return p;
}

void* pool_core::refill_from_pages(thread_cache* tc, unsigned c, std::uint32_t n,
                                   request_mode& mode, retired_chunks& retired) {
    // A new chunk means the page heap, and maybe upstream, which may be slow or wait (another
    // capped pool): not inside the operation, where a quiescer (trim, a reclaim, fork) would wait
    // for it. The block's credit leaves the cache with the request, so that a quiescer can take
    // the cache's credit meanwhile, but not this request's.
    const class_info& k = classes[c];
    tc->set_credit(tc->credit() - amount_of(k));
    tc->set_in_flight(amount_of(k));
    tc->leave();
    release(retired);
    block_list got;
    try {
        got = bounded(mode, k.size, [&] { return central_[c].take(k, n, pages(), totals_); });
    } catch (...) {
        tc->set_in_flight({});
        budget_.give(amount_of(k));
        return failed(mode);
    }
    void* p = got.pop();
    registry_.enter(tc);
    tc->set_in_flight({});
    // The rest fills the bin, as far as its limit allows: a quiescer may have lowered it.
    const std::uint32_t count = tc->count(c);
    const std::uint32_t limit = tc->limit(c);
    const std::uint32_t room = limit > count ? limit - count : 0;
    if (got.count > room) put_blocks(c, got.take_front(got.count - room), retired);
    tc->fill(c, got);
    tc->count_allocation(c);
    give_after(tc, excess_blocks(tc));
    finish(tc, retired);
    track::block_live(p, k.size);
    return p;
}

void* pool_core::allocate_uncached(unsigned c, std::size_t bytes, request_mode& mode) {
    const class_info& k = classes[c];
    std::chrono::nanoseconds waited{0};
    const outcome o = acquire_exact(amount_of(k), bytes, mode, &waited);
    if (o == outcome::bypass) return allocate_bypass(c, k.size, k.align, mode);
    if (o != outcome::granted && o != outcome::overcommitted)
        return refused(mode, o, bytes, waited);
    try {
        return serve_granted(c, bytes, k.align, mode);
    } catch (...) {
        budget_.give(amount_of(k));
        return failed(mode);
    }
}

void* pool_core::serve_granted(unsigned c, std::size_t bytes, std::size_t alignment,
                               request_mode& mode) {
    if (c == no_class) {
        // Every block is aligned to at least max_align_t, whatever upstream gives for less.
        alignment = std::max(alignment, alignof(std::max_align_t));
        return bounded(mode, bytes, [&] {
            return direct_.allocate(upstream_, map_, direct_size(bytes), alignment, false);
        });
    }
    const class_info& k = classes[c];
    block_list got = bounded(mode, bytes, [&] { return central_[c].take(k, 1, pages(), totals_); });
    void* p = got.pop();
    retired_allocs_[c].fetch_add(1, std::memory_order_relaxed);
    track::block_live(p, k.size);
    return p;
}

void* pool_core::allocate_direct(std::size_t bytes, std::size_t alignment, request_mode& mode) {
    const std::size_t size = direct_size(bytes);
    if (size == 0 || size > static_cast<std::size_t>(budget::unlimited)) {
        if (mode.what == request_mode::no_wait) return nullptr;
        throw std::bad_alloc();
    }
    const amount need{static_cast<std::int64_t>(size), 1};
    // Credit as for a pooled block: from this thread's cache when it has one (which hands its own
    // unspent credit back before queueing at the cap), else straight from the budget, as for a
    // block too large for a cache's packed credit (max_credit_bytes). Either way the request
    // holds it outside any operation while upstream serves the block.
    std::chrono::nanoseconds waited{0};
    outcome o = outcome::granted;
    thread_cache* tc = size <= max_credit_bytes / 2 ? cache_for_thread() : nullptr;
    if (tc != nullptr) {
        registry_.enter(tc);
        if (take_credit(tc, need, bytes, mode, &o, &waited)) {
            tc->set_credit(tc->credit() - need);
            tc->set_in_flight(need);
        }
        tc->leave();
    } else {
        o = acquire_exact(need, bytes, mode, &waited);
    }
    // Every block is aligned to at least max_align_t, whatever upstream gives for less.
    alignment = std::max(alignment, alignof(std::max_align_t));
    if (o == outcome::bypass) return allocate_bypass(no_class, size, alignment, mode);
    if (o != outcome::granted && o != outcome::overcommitted)
        return refused(mode, o, bytes, waited);
    try {
        void* p = bounded(
            mode, bytes, [&] { return direct_.allocate(upstream_, map_, size, alignment, false); });
        if (tc != nullptr) tc->set_in_flight({});
        return p;
    } catch (...) {
        if (tc != nullptr) tc->set_in_flight({});
        budget_.give(need);
        return failed(mode);
    }
}

void* pool_core::allocate_bypass(unsigned c, std::size_t size, std::size_t alignment,
                                 request_mode& mode) {
    // Outside the pool's capacity by definition, whatever it covers.
    const upstream_source::uncapped_scope outside;
    if (c == no_class)
        return bounded(mode, size,
                       [&] { return direct_.allocate(upstream_, map_, size, alignment, true); });
    const class_info& k = classes[c];
    void* p = bounded(mode, size, [&] { return central_[c].take_bypass(k, pages(), totals_); });
    direct_.count_bypass(k.size, +1);
    track::block_live(p, k.size);
    return p;
}

}  // namespace bpool::detail
