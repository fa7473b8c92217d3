// Layer 9: bpool::buffer_pool and its core. Memory is the resource's business (its capacity, its
// caches); the pool adds the count of buffers checked out and the cap on it, a fifo_semaphore.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <bpool/buffer_pool.hpp>
#include <bpool/pool_resource.hpp>

#include "base/check.hpp"
#include "base/track.hpp"
#include "buffer/buffer_pool_core.hpp"
#include "pool/options.hpp"

namespace bpool {

namespace detail {

namespace {

// The options with the backoff normalized as a pool's is: it paces the waits at the live cap.
buffer_pool_options with_normalized_backoff(const buffer_pool_options& o) {
    pool_options p;
    p.backoff = o.backoff;
    buffer_pool_options out = o;
    out.backoff = normalize(p).backoff;
    return out;
}

}  // namespace

buffer_pool_core::buffer_pool_core(std::unique_ptr<pool_resource> owned, pool_resource& resource,
                                   const buffer_pool_options& options)
    : owned_(std::move(owned)),
      resource_(resource),
      options_(with_normalized_backoff(options)),
      backoff_(options_.backoff),
      slots_(&backoff_) {
    const std::size_t largest = resource_.options().largest_pooled_block;
    if (owned_ == nullptr && options_.max_pooled_size < largest) {
        throw std::invalid_argument(
            "bpool::buffer_pool: max_pooled_size is below the borrowed resource's "
            "largest_pooled_block, so the resource would keep blocks the pool must drop; raise "
            "max_pooled_size or give the resource a smaller largest_pooled_block");
    }
    // A pool_resource keeps idle exactly the blocks up to largest_pooled_block and frees larger
    // ones to upstream at once: that is the size above which storage is not pooled.
    options_.max_pooled_size = largest;
    slots_.set_limits(0, options_.max_live);
    list_fork_client(this);
}

buffer_pool_core::~buffer_pool_core() {
    // Async checkouts first, while everything they touch is intact: those waiting for a slot
    // end in close(); those waiting for memory (maybe in a borrowed resource) are cancelled and
    // waited for, as their completions run on the async driver's thread.
    slots_.close();
    {
        // Destroyed by a completion of its own: that one is still in progress, on this thread.
        const std::size_t self = completing_ == this ? 1 : 0;
        if (self != 0) completing_ = nullptr;
        std::unique_lock lock(pending_mutex_);
        for (pending_checkout* c = pending_; c != nullptr; c = c->next_)
            c->cancel_checkout();
        none_pending_.wait(lock, [&] { return in_progress_ == self; });
    }
    unlist_fork_client(this);
    if constexpr (track::checked) {
        const std::size_t n = live();
        if (n != 0) {
            fatalf(__FILE__, __LINE__,
                   "buffer_pool destroyed while %zu buffer(s) are still checked out: a buffer "
                   "must not outlive its pool (destroy or put back every buffer first)",
                   n);
        }
    }
}

buffer_pool_core::slot_terms buffer_pool_core::terms_now() const noexcept {
    // The wait is bounded by a year so that a huge max_elapsed cannot overflow the deadline. The
    // deadline and the wait's start come from one instant, so that a get() that times out reports
    // at least the wait it was allowed.
    const std::chrono::nanoseconds patience = std::min(
        options_.backoff.max_elapsed, std::chrono::nanoseconds(std::chrono::hours(24 * 365)));
    const steady::time_point start = steady::now();
    exhaustion policy = options_.on_exhaustion;
    steady::time_point deadline = start + patience;
    scope_override(&policy, &deadline, false);
    return {policy, {start, deadline, policy == exhaustion::overcommit}};
}

thread_local buffer_pool_core* buffer_pool_core::completing_ = nullptr;

void buffer_pool_core::list(pending_checkout* c) noexcept {
    std::lock_guard lock(pending_mutex_);
    ++in_progress_;
    c->prev_ = nullptr;
    c->next_ = pending_;
    if (pending_ != nullptr) pending_->prev_ = c;
    pending_ = c;
}

void buffer_pool_core::unlist(pending_checkout* c) noexcept {
    std::lock_guard lock(pending_mutex_);
    (c->prev_ != nullptr ? c->prev_->next_ : pending_) = c->next_;
    if (c->next_ != nullptr) c->next_->prev_ = c->prev_;
}

void buffer_pool_core::ended() noexcept {
    std::lock_guard lock(pending_mutex_);
    if (--in_progress_ == 0) none_pending_.notify_all();
}

buffer_pool_core::checkout buffer_pool_core::check_out() {
    const slot_terms t = terms_now();
    const exhaustion policy = t.policy;
    const steady::time_point start = t.terms.start;
    constexpr amount one{0, 1};
    fifo_semaphore::wait_result r = fifo_semaphore::wait_result::refused;
    std::chrono::nanoseconds waited{0};
    if (policy == exhaustion::fail || policy == exhaustion::bypass) {
        // Never waits: a slot if one is free and nobody waits for it, else bypass or refusal.
        if (slots_.try_take(one) == fifo_semaphore::take_result::taken) {
            r = fifo_semaphore::wait_result::granted;
        } else if (policy == exhaustion::bypass) {
            return checkout::bypass;
        }
    } else {
        r = slots_.wait(one, t.terms, backoff_);
        waited = std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - start);
    }
    if (r == fifo_semaphore::wait_result::granted ||
        r == fifo_semaphore::wait_result::overcommitted) {
        return checkout::slot;
    }
    // Capacity 0 in the exception: it is the live cap (in buffers) that was reached, not a number
    // of bytes, and the message says so.
    const bool timed_out = r == fifo_semaphore::wait_result::timed_out;
    char message[176];
    std::snprintf(message, sizeof message,
                  "bpool: buffer_pool::get: no buffer could be checked out: the live-buffer cap "
                  "(%zu buffers) was reached%s (waited %.3f ms)",
                  max_live(), timed_out ? " and the wait timed out" : "",
                  static_cast<double>(waited.count()) / 1e6);
    throw capacity_exceeded(options_.default_capacity, waited, 0, timed_out, message);
}

void buffer_pool_core::check_in(bool slot) noexcept {
    // Uncount first: live() then never shows more buffers than the cap lets through.
    live_.fetch_sub(1, std::memory_order_relaxed);
    if (slot) slots_.give({0, 1});
}

}  // namespace detail

namespace {

std::unique_ptr<pool_resource> make_resource(std::size_t target_size, const buffer_pool_options& o,
                                             std::pmr::memory_resource* upstream) {
    if (upstream == nullptr) throw std::invalid_argument("bpool::buffer_pool: upstream is null");
    pool_options p;
    p.largest_pooled_block = o.max_pooled_size;
    p.capacity = target_size;
    p.capacity_covers = o.capacity_covers;
    p.on_exhaustion = o.on_exhaustion;
    p.backoff = o.backoff;
    return std::make_unique<pool_resource>(p, upstream);
}

}  // namespace

buffer_pool::buffer_pool(std::size_t target_size, const buffer_pool_options& options,
                         std::pmr::memory_resource* upstream) {
    auto owned = make_resource(target_size, options, upstream);
    pool_resource& r = *owned;
    core_ = std::make_unique<detail::buffer_pool_core>(std::move(owned), r, options);
}

buffer_pool::buffer_pool(pool_resource& resource, const buffer_pool_options& options)
    : core_(std::make_unique<detail::buffer_pool_core>(nullptr, resource, options)) {}

buffer_pool::~buffer_pool() = default;

pool_resource& buffer_pool::resource() const noexcept {
    return core_->resource();
}

// options() is noexcept: it copies the options.
static_assert(std::is_nothrow_copy_constructible_v<buffer_pool_options>);

buffer_pool_options buffer_pool::options() const noexcept {
    buffer_pool_options o = core_->options();
    o.max_live = core_->max_live();
    return o;
}

// The buffer is homed (counted in live(), checked in by its destruction) only once its storage is
// reserved: the reservation may wait at the memory capacity, and a get() still waiting has checked
// nothing out. It holds its live slot meanwhile, so that it keeps its turn at the live cap.
buffer buffer_pool::get() {
    detail::buffer_pool_core& core = *core_;
    const bool slot = core.check_out() == detail::buffer_pool_core::checkout::slot;
    // Bypass: outside the resource (and its capacity) altogether, so never cached either.
    buffer out = slot
                     ? slotted(core)
                     : buffer({core.resource().upstream_resource(), nullptr, nullptr, true, false});
    const std::size_t reserve = core.options().default_capacity;
    try {
        if (reserve > 0) out.grow(reserve, false, {}, true);  // get() follows the pool's policy
    } catch (...) {
        core.abandon(slot);  // out holds no storage: grow changes nothing when it throws
        throw;
    }
    out.bind_.home = &core;
    core.counted();
    return out;
}

std::optional<buffer> buffer_pool::try_get() noexcept {
    detail::buffer_pool_core& core = *core_;
    if (!core.try_check_out()) return std::nullopt;
    buffer out = slotted(core);
    const std::size_t reserve = core.options().default_capacity;
    if (reserve > 0 && !out.try_take_storage(reserve)) {
        core.abandon(true);
        return std::nullopt;
    }
    out.bind_.home = &core;
    core.counted();
    return out;
}

buffer buffer_pool::slotted(detail::buffer_pool_core& core) noexcept {
    return buffer(
        {&core.resource(), &core.resource(), nullptr, core.options().write_backoff, true});
}

void buffer_pool::put(buffer&& b) noexcept {
    if (b.bind_.resource == nullptr) return;  // empty: nothing to give back
    if constexpr (detail::track::checked) {
        if (b.bind_.home != core_.get()) {
            detail::fatal(__FILE__, __LINE__,
                          "buffer_pool::put: the buffer does not come from this pool (it is "
                          "standalone or from another pool)");
        }
    }
    const buffer gone(std::move(b));  // gives it back where it came from
}

std::size_t buffer_pool::live() const noexcept {
    return core_->live();
}

void buffer_pool::set_max_live(std::size_t n) noexcept {
    core_->set_max_live(n);
}

std::size_t buffer_pool::max_live() const noexcept {
    return core_->max_live();
}

}  // namespace bpool
