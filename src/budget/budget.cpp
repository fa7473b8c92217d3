#include "budget/budget.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cxxabi.h>
#include <thread>

namespace bpool::detail {

namespace {

constexpr std::int64_t max_lease_bytes = std::int64_t{1} << 20;
constexpr std::int64_t min_lease_bytes = std::int64_t{4} << 10;

std::int64_t to_limit(std::size_t v) noexcept {
    return v == 0 || v >= static_cast<std::size_t>(budget::unlimited)
               ? budget::unlimited
               : static_cast<std::int64_t>(v);
}

std::size_t from_limit(std::int64_t v) noexcept {
    return v >= budget::unlimited ? 0 : static_cast<std::size_t>(v);
}

// A per-thread xorshift generator for jitter: no shared state, no lock.
double unit_random() noexcept {
    thread_local std::uint64_t state =
        0x9E3779B97F4A7C15ull ^ reinterpret_cast<std::uintptr_t>(&state);
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return static_cast<double>(state >> 11) * 0x1.0p-53;
}

}  // namespace

budget::budget(std::atomic<std::uint32_t>& flags, const pool_options& options)
    : flags_(flags),
      backoff_(options.backoff),
      delay_threshold_(options.delay_threshold),
      stall_warning_(options.stall_warning),
      on_stall_(options.on_stall),
      interval_(options.backoff.initial_interval) {}

std::size_t budget::capacity() const noexcept {
    return from_limit(limit_bytes_.load(std::memory_order_relaxed));
}

std::size_t budget::max_live_blocks() const noexcept {
    return from_limit(limit_blocks_.load(std::memory_order_relaxed));
}

std::size_t budget::peak_committed() const noexcept {
    return static_cast<std::size_t>(peak_committed_bytes_.load(std::memory_order_relaxed));
}

void budget::set_limits(std::size_t bytes, std::size_t blocks) noexcept {
    std::lock_guard lock(mutex_);
    const std::int64_t lb = to_limit(bytes);
    limit_bytes_.store(lb, std::memory_order_relaxed);
    limit_blocks_.store(to_limit(blocks), std::memory_order_relaxed);
    // A lease is at most 1/32 of the capacity, so that credit parked in thread caches stays a
    // small part of it even before it is reclaimed.
    lease_bytes_.store(std::clamp(lb / 32, min_lease_bytes, max_lease_bytes),
                       std::memory_order_relaxed);
    refuse_unfit_waiters();
    grant_waiters();
    reset_backoff_if_under();
    update_flags();
}

void budget::refuse_unfit_waiters() noexcept {
    // A waiter that needs more than the new limits can never be served: refuse it now, as it
    // would have been on arrival, instead of letting it hold up everyone behind it until its
    // deadline.
    waiter* prev = nullptr;
    for (waiter* w = head_; w != nullptr;) {
        waiter* next = w->next;
        if (larger_than_limits(w->need)) {
            (prev != nullptr ? prev->next : head_) = next;
            if (tail_ == w) tail_ = prev;
            w->state = waiter::rejected;
            w->cv.notify_one();
        } else {
            prev = w;
        }
        w = next;
    }
}

bool budget::fits(amount need) const noexcept {
    return committed_bytes_.load(std::memory_order_relaxed) + need.bytes <=
               limit_bytes_.load(std::memory_order_relaxed) &&
           committed_blocks_.load(std::memory_order_relaxed) + need.blocks <=
               limit_blocks_.load(std::memory_order_relaxed);
}

void budget::commit(amount a) noexcept {
    const std::int64_t bytes = committed_bytes_.load(std::memory_order_relaxed) + a.bytes;
    committed_bytes_.store(bytes, std::memory_order_relaxed);
    if (bytes > peak_committed_bytes_.load(std::memory_order_relaxed))
        peak_committed_bytes_.store(bytes, std::memory_order_relaxed);
    committed_blocks_.store(committed_blocks_.load(std::memory_order_relaxed) + a.blocks,
                            std::memory_order_relaxed);
}

budget::lease_result budget::try_lease(amount need, bool extra, bool pace, amount* granted,
                                       std::chrono::nanoseconds* pause) noexcept {
    std::lock_guard lock(mutex_);
    if (head_ != nullptr || !fits(need)) return lease_result::refused;
    const amount after = committed() + need;
    if (pace) {
        *pause = pacing_pause(after.bytes);
        if (pause->count() > 0) {
            paced_.fetch_add(1, std::memory_order_relaxed);
            return lease_result::pace_first;
        }
    }
    // The extra shrinks with the headroom (a quarter of it at most), so that near the cap leases
    // are small and a waiter rarely has to reclaim anything. Above the soft threshold there is no
    // extra: every request comes back here to be paced.
    amount more{};
    if (extra) {
        const amount room{limit_bytes_.load(std::memory_order_relaxed) - after.bytes,
                          limit_blocks_.load(std::memory_order_relaxed) - after.blocks};
        more = {std::min(lease_bytes_.load(std::memory_order_relaxed), room.bytes / 4),
                std::min(max_lease_blocks, room.blocks / 4)};
        if (pacing_pause(after.bytes + more.bytes).count() > 0) more = {};
    }
    *granted = need + more;
    commit(*granted);
    update_flags();
    return lease_result::leased;
}

void budget::give(amount a) noexcept {
    std::lock_guard lock(mutex_);
    commit({-a.bytes, -a.blocks});
    grant_waiters();
    reset_backoff_if_under();
    update_flags();
}

void budget::reset_backoff_if_under() noexcept {
    // Usage is back under the cap with nobody waiting: the next exhaustion starts afresh (as the
    // seed's Put resets its backoff).
    if (head_ == nullptr &&
        committed_bytes_.load(std::memory_order_relaxed) <
            limit_bytes_.load(std::memory_order_relaxed) &&
        committed_blocks_.load(std::memory_order_relaxed) <
            limit_blocks_.load(std::memory_order_relaxed))
        interval_ = backoff_.initial_interval;
}

void budget::grant_waiters() noexcept {
    // Strict arrival order: a large request at the head is not overtaken by small ones behind it.
    while (head_ != nullptr && fits(head_->need)) {
        waiter* w = head_;
        commit(w->need);
        head_ = w->next;
        if (head_ == nullptr) tail_ = nullptr;
        w->state = waiter::granted;
        w->cv.notify_one();
    }
}

void budget::remove(waiter* w) noexcept {
    waiter** link = &head_;
    waiter* prev = nullptr;
    while (*link != w) {
        prev = *link;
        link = &(*link)->next;
    }
    *link = w->next;
    if (tail_ == w) tail_ = prev;
    grant_waiters();  // the ones behind may fit now
}

void budget::update_flags() noexcept {
    // Pressure: requests wait, or usage is at or past the limit (the capacity was lowered below
    // it, or a request overcommitted). Either way every free must hand its bytes back at once and
    // every allocation must come here, so that the cap holds and waiters are served.
    const bool at_limit = committed_bytes_.load(std::memory_order_relaxed) >=
                              limit_bytes_.load(std::memory_order_relaxed) ||
                          committed_blocks_.load(std::memory_order_relaxed) >=
                              limit_blocks_.load(std::memory_order_relaxed);
    const bool pacing = pacing_pause(committed_bytes_.load(std::memory_order_relaxed)).count() > 0;
    std::uint32_t set = 0, clear = 0;
    (head_ != nullptr || at_limit ? set : clear) |= flag_pressure;
    (pacing ? set : clear) |= flag_pacing;
    const std::uint32_t now = flags_.load(std::memory_order_relaxed);
    if ((now & set) != set) flags_.fetch_or(set, std::memory_order_seq_cst);
    if ((now & clear) != 0) flags_.fetch_and(~clear, std::memory_order_seq_cst);
}

std::chrono::nanoseconds budget::pacing_pause(std::int64_t committed_bytes) const noexcept {
    if (delay_threshold_ <= 0) return std::chrono::nanoseconds{0};
    const auto limit = static_cast<double>(limit_bytes_.load(std::memory_order_relaxed));
    if (limit >= static_cast<double>(unlimited)) return std::chrono::nanoseconds{0};
    const double threshold = delay_threshold_ * limit;
    const auto used = static_cast<double>(committed_bytes);
    if (used <= threshold) return std::chrono::nanoseconds{0};
    const double x = std::min((used - threshold) / (limit - threshold), 1.0);
    // Quadratic: barely noticeable just above the threshold, max_interval at the cap.
    return std::chrono::nanoseconds(
        static_cast<std::int64_t>(x * x * static_cast<double>(backoff_.max_interval.count())));
}

std::chrono::nanoseconds budget::next_step() noexcept {
    const double r = backoff_.randomization;
    const double jitter = 1.0 - r + 2.0 * r * unit_random();
    const auto step = std::chrono::nanoseconds(
        static_cast<std::int64_t>(static_cast<double>(interval_.count()) * jitter));
    const double grown = static_cast<double>(interval_.count()) * backoff_.multiplier;
    interval_ = std::chrono::nanoseconds(static_cast<std::int64_t>(
        std::min(grown, static_cast<double>(backoff_.max_interval.count()))));
    return std::max(step, std::chrono::nanoseconds{1000});
}

void budget::record_wait(std::chrono::nanoseconds waited) noexcept {
    const std::int64_t ns = waited.count();
    total_wait_ns_.fetch_add(ns, std::memory_order_relaxed);
    std::int64_t max = max_wait_ns_.load(std::memory_order_relaxed);
    while (ns > max && !max_wait_ns_.compare_exchange_weak(max, ns, std::memory_order_relaxed)) {
    }
    const auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(ns / 1000, 1));
    const auto bucket = std::min<std::size_t>(std::bit_width(us) - 1, pool_stats::wait_buckets - 1);
    histogram_[bucket].fetch_add(1, std::memory_order_relaxed);
}

void budget::report(stall_event::kind what, std::size_t requested,
                    std::chrono::nanoseconds waited) {
    if (!on_stall_) return;
    const stall_event e{what, requested, waited,
                        live_reader_ != nullptr ? live_reader_(live_ctx_) : 0, capacity()};
    // A logging callback that throws loses its report, nothing else. Only a thread's cancellation
    // goes on (it must: glibc aborts a cancellation that is swallowed); the queue survives it, as
    // a queued waiter's guard unlinks it on the way out.
    try {
        on_stall_(e);
    } catch (const abi::__forced_unwind&) {
        throw;
    } catch (...) {
    }
}

bool budget::larger_than_limits(amount need) const noexcept {
    return need.bytes > limit_bytes_.load(std::memory_order_relaxed) ||
           need.blocks > limit_blocks_.load(std::memory_order_relaxed);
}

bool budget::take_now(amount need) noexcept {
    if (head_ != nullptr || !fits(need)) return false;
    commit(need);
    update_flags();
    return true;
}

bool budget::take_after_reclaim(std::unique_lock<std::mutex>& lock, amount need, reclaimer& r) {
    // The reclaimed credit is given back and `need` taken under one hold of the mutex, so that
    // threads that keep leasing cannot take the room in between. A request whose reclaim finds
    // nothing while another request's reclaim is in progress (it took the credit first) waits for
    // that one to give back what it does not need, then looks again.
    for (int rounds = 0; rounds < 8;) {
        // With others queued the pool is really at its cap (they reclaim for themselves), and a
        // request larger than the limits can never fit.
        if (head_ != nullptr || larger_than_limits(need)) return false;
        if (take_now(need)) return true;
        const amount missing = missing_for(need);
        ++reclaiming_;
        lock.unlock();
        const amount got = r.reclaim_for(missing);
        lock.lock();
        if (--reclaiming_ == 0) reclaimed_.notify_all();
        if (got.zero()) {
            if (reclaiming_ == 0) return take_now(need);
            reclaimed_.wait(lock, [&] { return reclaiming_ == 0; });
            continue;
        }
        ++rounds;
        commit({-got.bytes, -got.blocks});
        const bool taken = take_now(need);
        take_back({});  // what is left of the reclaimed credit may serve requests queued since
        if (taken) return true;
    }
    return false;
}

amount budget::missing_for(amount need) const noexcept {
    return {committed_bytes_.load(std::memory_order_relaxed) + need.bytes -
                limit_bytes_.load(std::memory_order_relaxed),
            committed_blocks_.load(std::memory_order_relaxed) + need.blocks -
                limit_blocks_.load(std::memory_order_relaxed)};
}

amount budget::missing_through(const waiter* w) const noexcept {
    amount need{};
    for (const waiter* q = head_; q != nullptr; q = q->next) {
        need = need + q->need;
        if (q == w) break;
    }
    return missing_for(need);
}

void budget::take_back(amount got) noexcept {
    commit({-got.bytes, -got.blocks});
    grant_waiters();
    reset_backoff_if_under();
    update_flags();
}

// Unlinks a waiter that leaves without being granted or rejected: on a timeout, and when its
// thread unwinds out of the wait (pthread_cancel's forced unwind, which re-takes the mutex first,
// or an exception thrown while the mutex was released). Ends the wait's bookkeeping either way.
class budget::queue_guard {
  public:
    queue_guard(budget& b, std::unique_lock<std::mutex>& lock, waiter& w) noexcept
        : b_(b), lock_(lock), w_(w) {}
    queue_guard(const queue_guard&) = delete;
    queue_guard& operator=(const queue_guard&) = delete;
    ~queue_guard() {
        if (!lock_.owns_lock()) lock_.lock();
        if (w_.state == waiter::queued) b_.remove(&w_);
        b_.waiting_.fetch_sub(1, std::memory_order_relaxed);
        b_.record_wait(
            std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - w_.start));
        b_.update_flags();
    }

  private:
    budget& b_;
    std::unique_lock<std::mutex>& lock_;
    waiter& w_;
};

outcome budget::acquire(amount need, std::size_t requested, const wait_policy& wp, reclaimer& r,
                        std::chrono::nanoseconds* waited) {
    *waited = std::chrono::nanoseconds{0};
    std::unique_lock lock(mutex_);
    if (take_now(need)) return outcome::granted;
    if (wp.policy == exhaustion::fail || wp.policy == exhaustion::bypass) {
        if (take_after_reclaim(lock, need, r)) return outcome::granted;
        if (wp.policy == exhaustion::bypass) {
            bypasses_.fetch_add(1, std::memory_order_relaxed);
            return outcome::bypass;
        }
        failures_.fetch_add(1, std::memory_order_relaxed);
        return outcome::refused;
    }
    if (larger_than_limits(need)) {
        // Larger than the whole capacity: waiting cannot help (unless the capacity is raised,
        // which nobody should wait 15 s for).
        if (wp.policy == exhaustion::overcommit) {
            commit(need);
            overcommits_.fetch_add(1, std::memory_order_relaxed);
            update_flags();
            return outcome::overcommitted;
        }
        failures_.fetch_add(1, std::memory_order_relaxed);
        return outcome::refused;
    }
    const outcome result = wait(lock, need, requested, wp, r);
    *waited = std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - wp.start);
    lock.unlock();
    if (result == outcome::timed_out) report(stall_event::kind::timed_out, requested, *waited);
    return result;
}

outcome budget::wait(std::unique_lock<std::mutex>& lock, amount need, std::size_t requested,
                     const wait_policy& wp, reclaimer& r) {
    waiter w;
    w.need = need;
    w.start = wp.start;
    (tail_ != nullptr ? tail_->next : head_) = &w;
    tail_ = &w;
    waits_.fetch_add(1, std::memory_order_relaxed);  // counted as it begins: a stall shows at once
    waiting_.fetch_add(1, std::memory_order_relaxed);
    update_flags();  // raises flag_pressure: from now on frees hand their bytes over at once
    const queue_guard guard(*this, lock, w);

    const steady::time_point warn_at =
        stall_warning_.count() > 0 ? wp.start + stall_warning_ : steady::time_point::max();
    bool warned = false;
    while (w.state == waiter::queued) {
        // Credit may sit in thread caches that went idle before we arrived (a free already on its
        // fast path when the pressure flag went up keeps its credit too): if what they hold would
        // let the queue up to this waiter fit, take it back. Looking costs no barrier; only a
        // reclaim that can help quiesces, and a waiter looks again at each step.
        const amount missing = missing_through(&w);
        if (missing.bytes > 0 || missing.blocks > 0) {  // else it fits: being granted
            lock.unlock();
            const amount got = r.reclaim_for(missing);
            lock.lock();
            if (!got.zero()) take_back(got);
        }
        if (w.state != waiter::queued) break;
        steady::time_point now = steady::now();
        if (!warned && now >= warn_at) {
            // Before the deadline check: a request that waited past stall_warning is reported as
            // stalled even if it is about to time out.
            warned = true;
            lock.unlock();
            report(stall_event::kind::stalled, requested,
                   std::chrono::duration_cast<std::chrono::nanoseconds>(now - wp.start));
            lock.lock();
            if (w.state != waiter::queued) break;
            now = steady::now();
        }
        if (now >= wp.deadline) break;
        const steady::time_point until = std::min(
            {now + next_step(), wp.deadline, warned ? steady::time_point::max() : warn_at});
        w.cv.wait_until(lock, until, [&] { return w.state != waiter::queued; });
    }
    if (w.state == waiter::granted) return outcome::granted;
    if (wp.policy == exhaustion::overcommit) {
        commit(need);
        overcommits_.fetch_add(1, std::memory_order_relaxed);
        return outcome::overcommitted;
    }
    if (w.state == waiter::rejected) {
        failures_.fetch_add(1, std::memory_order_relaxed);
        return outcome::refused;
    }
    timeouts_.fetch_add(1, std::memory_order_relaxed);
    return outcome::timed_out;
}

void budget::reset_after_fork() noexcept {
    mutex_.unlock();
    std::lock_guard lock(mutex_);
    head_ = tail_ = nullptr;
    waiting_.store(0, std::memory_order_relaxed);
    reset_backoff_if_under();
    update_flags();
}

void budget::fill_stats(pool_stats& s) const {
    s.capacity = capacity();
    s.max_live_blocks = max_live_blocks();
    s.waits = waits_.load(std::memory_order_relaxed);
    s.total_wait = std::chrono::nanoseconds(total_wait_ns_.load(std::memory_order_relaxed));
    s.max_wait = std::chrono::nanoseconds(max_wait_ns_.load(std::memory_order_relaxed));
    for (std::size_t i = 0; i < pool_stats::wait_buckets; ++i)
        s.wait_histogram[i] = histogram_[i].load(std::memory_order_relaxed);
    s.timeouts = timeouts_.load(std::memory_order_relaxed);
    s.failures = failures_.load(std::memory_order_relaxed);
    s.overcommits = overcommits_.load(std::memory_order_relaxed);
    s.bypasses = bypasses_.load(std::memory_order_relaxed);
    s.paced = paced_.load(std::memory_order_relaxed);
    s.waiters = waiting_.load(std::memory_order_relaxed);
    std::lock_guard lock(mutex_);
    s.backoff_interval = interval_;
    // The head arrived first of those still queued.
    if (head_ != nullptr)
        s.oldest_wait =
            std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - head_->start);
}

}  // namespace bpool::detail
