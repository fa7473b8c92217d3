#include "budget/budget.hpp"

#include <algorithm>
#include <new>
#include <optional>

namespace bpool::detail {

namespace {

constexpr std::int64_t max_lease_bytes = std::int64_t{1} << 20;
constexpr std::int64_t min_lease_bytes = std::int64_t{4} << 10;

}  // namespace

budget::budget(std::atomic<std::uint32_t>& flags, const pool_options& options)
    : flags_(flags),
      pacing_(options.delay_threshold, options.backoff.max_interval),
      backoff_(options.backoff),
      stall_(options),
      sem_(this) {}

// --- the policies kept in step with the count ---------------------------------------------------

void budget::changed(const semaphore_state& s, semaphore_change what) noexcept {
    if (what == semaphore_change::limits) {
        // A lease is at most 1/32 of the capacity, so that credit parked in thread caches stays a
        // small part of it even before it is reclaimed.
        lease_bytes_.store(std::clamp(s.limit.bytes / 32, min_lease_bytes, max_lease_bytes),
                           std::memory_order_relaxed);
    }
    backoff_.changed(s, what);
    update_flags(s);
}

void budget::update_flags(const semaphore_state& s) noexcept {
    // Pressure: requests wait, or usage is at or past the limit (the capacity was lowered below
    // it, or a request overcommitted). Either way every free must hand its bytes back at once and
    // every allocation must come here, so that the cap holds and waiters are served.
    const bool at_limit =
        s.committed.bytes >= s.limit.bytes || s.committed.blocks >= s.limit.blocks;
    const bool pacing = pacing_.pause(s.committed.bytes, s.limit.bytes).count() > 0;
    std::uint32_t set = 0, clear = 0;
    (s.queued || at_limit ? set : clear) |= flag_pressure;
    (pacing ? set : clear) |= flag_pacing;
    if (!pacing) soft_reported_.store(false, std::memory_order_relaxed);
    // Under the semaphore's lock, so that the bits follow the count in the order it changed;
    // read-modify-writes, as the word's other bit (flag_quiesce) changes under other locks.
    const std::uint32_t now = flags_.load(std::memory_order_relaxed);
    if ((now & set) != set) flags_.fetch_or(set, std::memory_order_seq_cst);
    if ((now & clear) != 0) flags_.fetch_and(~clear, std::memory_order_seq_cst);
}

// --- leases ------------------------------------------------------------------------------------

amount budget::extra_lease(amount after, amount limit, amount most) const noexcept {
    // The extra shrinks with the headroom (a quarter of it at most), so that near the cap leases
    // are small and a waiter rarely has to reclaim anything. Above the soft threshold there is no
    // extra: every request comes back here to be paced.
    const amount room = limit - after;
    const amount more{std::min({lease_bytes(), room.bytes / 4, most.bytes}),
                      std::min({max_lease_blocks, room.blocks / 4, most.blocks})};
    if (pacing_.pause(after.bytes + more.bytes, limit.bytes).count() > 0) return {};
    return more;
}

budget::lease_result budget::try_lease(amount need, amount most_extra, bool pace, amount* granted,
                                       std::chrono::nanoseconds* pause) noexcept {
    bool paced = false;
    const auto r = sem_.try_take_with(need, [&](amount after, amount limit) noexcept {
        std::optional<amount> more;
        if (pace) {
            *pause = pacing_.pause(after.bytes, limit.bytes);
            paced = pause->count() > 0;
            if (paced) return more;  // nothing committed while its owner sleeps
        }
        more = extra_lease(after, limit, most_extra);
        *granted = need + *more;
        return more;
    });
    if (paced) {
        stats_.count(wait_stats::paced);
        return lease_result::pace_first;
    }
    return r == fifo_semaphore::take_result::taken ? lease_result::leased : lease_result::refused;
}

void budget::paced(std::size_t requested) {
    if (stall_.reports_pressure() && !soft_reported_.exchange(true, std::memory_order_relaxed))
        stall_.pressure(pressure_event::level::soft, requested, capacity());
}

// --- requests at the cap -----------------------------------------------------------------------

outcome budget::acquire(amount need, std::size_t requested, const wait_policy& wp, reclaimer& r,
                        std::chrono::nanoseconds* waited) {
    *waited = std::chrono::nanoseconds{0};
    if (wp.policy == exhaustion::fail || wp.policy == exhaustion::bypass)
        return take_or_refuse(need, wp.policy, r);
    return wait_at_cap(need, requested, wp, r, waited);
}

outcome budget::take_or_refuse(amount need, exhaustion policy, reclaimer& r) {
    if (take_after_reclaim(need, r)) return outcome::granted;
    if (policy == exhaustion::bypass) {
        stats_.count(wait_stats::bypasses);
        return outcome::bypass;
    }
    stats_.count(wait_stats::failures);
    return outcome::refused;
}

bool budget::take_after_reclaim(amount need, reclaimer& r) {
    // The reclaimed credit is given back and `need` taken in one step (give_and_take), so that
    // threads that keep leasing cannot take the room in between. A request whose reclaim finds
    // nothing while another request's reclaim is in progress (it took the credit first) waits for
    // that one to give back what it does not need, then looks again. A reclaimer counts itself
    // out only after it gave its credit back, so the one that waited for it sees that credit.
    for (int rounds = 0; rounds < 8;) {
        amount missing{};
        const auto first = sem_.try_take(need, &missing);
        // With others queued the pool is really at its cap (they reclaim for themselves), and a
        // request larger than the limits can never fit.
        if (first != fifo_semaphore::take_result::no_room)
            return first == fifo_semaphore::take_result::taken;
        {
            const std::lock_guard lock(reclaim_mutex_);
            ++reclaiming_;
        }
        const amount got = r.reclaim_for(missing);
        bool taken = false;
        if (!got.zero()) {
            ++rounds;
            taken = sem_.give_and_take(got, need);
        }
        std::unique_lock lock(reclaim_mutex_);
        if (--reclaiming_ == 0) reclaimed_.notify_all();
        if (taken) return true;
        if (!got.zero()) continue;
        // Under the reclaim mutex: no other reclaim starts (and takes the credit) in between.
        if (reclaiming_ == 0) return sem_.try_take(need) == fifo_semaphore::take_result::taken;
        reclaimed_.wait(lock, [&] { return reclaiming_ == 0; });
    }
    return false;
}

// --- the hooks of a wait ----------------------------------------------------------------------

void budget::request_wait::queued() noexcept {
    queued_ = true;
    b_.stats_.count(wait_stats::waits);  // counted as it begins: a stall shows at once
}

amount budget::request_wait::reclaim(amount missing) noexcept {
    // Credit may sit in thread caches that went idle before we arrived (a free already on its
    // fast path when the pressure flag went up keeps its credit too): if what they hold would let
    // the queue up to this waiter fit, take it back. Looking costs no barrier; only a reclaim that
    // can help quiesces, and a waiter looks again at each step.
    return r_.reclaim_for(missing);
}

steady::time_point budget::request_wait::first_alarm(steady::time_point start) const noexcept {
    return b_.stall_.warn_at(start);
}

steady::time_point budget::request_wait::alarm(std::chrono::nanoseconds waited) {
    b_.report(stall_event::kind::stalled, requested_, waited);
    return steady::time_point::max();  // one stall report per wait
}

std::chrono::nanoseconds budget::request_wait::next_step() noexcept {
    return b_.backoff_.next_step();
}

void budget::request_wait::ended(std::chrono::nanoseconds waited) noexcept {
    b_.stats_.record_wait(waited);
}

bool budget::taken_before_pressure(amount need, std::size_t requested) {
    if (!stall_.reports_pressure()) return false;
    // The application may give memory back before anyone waits; the request then looks again
    // before it queues.
    const fifo_semaphore::take_result t = sem_.try_take(need);
    if (t == fifo_semaphore::take_result::taken) return true;
    if (t != fifo_semaphore::take_result::over_limits)  // that one is refused, never waits
        stall_.pressure(pressure_event::level::wait, requested, capacity());
    return false;
}

outcome budget::wait_at_cap(amount need, std::size_t requested, const wait_policy& wp, reclaimer& r,
                            std::chrono::nanoseconds* waited) {
    if (taken_before_pressure(need, requested)) return outcome::granted;
    request_wait hooks(*this, r, requested);
    const wait_terms terms{wp.start, wp.deadline, wp.policy == exhaustion::overcommit};
    const fifo_semaphore::wait_result result = sem_.wait(need, terms, hooks);
    if (hooks.was_queued())
        *waited = std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - wp.start);
    return settle(result, requested, *waited);
}

outcome budget::settle(fifo_semaphore::wait_result result, std::size_t requested,
                       std::chrono::nanoseconds waited) {
    switch (result) {
        case fifo_semaphore::wait_result::granted:
            return outcome::granted;
        case fifo_semaphore::wait_result::overcommitted:
            stats_.count(wait_stats::overcommits);
            return outcome::overcommitted;
        case fifo_semaphore::wait_result::refused:
            stats_.count(wait_stats::failures);
            return outcome::refused;
        case fifo_semaphore::wait_result::cancelled:
            return outcome::cancelled;
        case fifo_semaphore::wait_result::timed_out:
            break;
    }
    stats_.count(wait_stats::timeouts);
    report(stall_event::kind::timed_out, requested, waited);
    return outcome::timed_out;
}

// --- asynchronous requests ----------------------------------------------------------------------

budget::async_request::async_request(budget& b, reclaimer& r, amount n, std::size_t requested,
                                     const wait_policy& wp) noexcept
    : async_waiter(n, {wp.start, wp.deadline, wp.policy == exhaustion::overcommit}, hooks_),
      b_(b),
      hooks_(b, r, requested),
      requested_(requested),
      overcommit_(wp.policy == exhaustion::overcommit) {}

bool budget::async_request::cancel() noexcept {
    return b_.sem_.cancel(*this);
}

void budget::async_request::completed(fifo_semaphore::wait_result r) noexcept {
    // On the driver's thread: the statistics and the timeout's report (on_stall, a user callback:
    // no lock is held here), then the pool's part.
    outcome o = outcome::cancelled;
    try {
        o = b_.settle(
            r, requested_,
            std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - started_at()));
    } catch (...) {
        o = r == fifo_semaphore::wait_result::timed_out ? outcome::timed_out : outcome::refused;
    }
    finished(o);
}

std::optional<outcome> budget::acquire_async(async_request& r, const wait_policy& wp) {
    const amount need = r.need_amount();
    if (wp.policy == exhaustion::fail || wp.policy == exhaustion::bypass)
        return take_or_refuse(need, wp.policy, r.hooks_.reclaimer_of());
    if (taken_before_pressure(need, r.requested_)) return outcome::granted;
    // Stranded credit first, as a blocking wait's first step would: a request that fits once the
    // idle caches give back does not queue.
    if (take_after_reclaim(need, r.hooks_.reclaimer_of())) return outcome::granted;
    const std::optional<fifo_semaphore::wait_result> at_once = sem_.wait_async(r);
    if (!at_once) return std::nullopt;
    return settle(*at_once, r.requested_, std::chrono::nanoseconds{0});
}

void budget::report(stall_event::kind what, std::size_t requested,
                    std::chrono::nanoseconds waited) {
    stall_.report(what, requested, waited, capacity());
}

// --- fork() and statistics ---------------------------------------------------------------------

void budget::lock_for_fork() noexcept {
    reclaim_mutex_.lock();
    sem_.lock_for_fork();
}

void budget::unlock_after_fork() noexcept {
    sem_.unlock_after_fork();
    reclaim_mutex_.unlock();
}

void budget::reset_after_fork() noexcept {
    sem_.reset_after_fork();
    // Refusals of other threads that were reclaiming will never count themselves out, and the
    // condition variable may list their waits: start both afresh (nobody uses them in the child
    // yet; destroying the old one could wait for those waiters).
    reclaiming_ = 0;
    new (&reclaimed_) std::condition_variable;
    reclaim_mutex_.unlock();
}

void budget::fill_stats(pool_stats& s) const {
    s.capacity = capacity();
    s.max_live_blocks = max_live_blocks();
    stats_.fill(s);
    s.waiters = sem_.waiting();
    s.backoff_interval = backoff_.interval();
    const steady::time_point oldest = sem_.oldest_start();
    if (oldest != steady::time_point::max())
        s.oldest_wait =
            std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - oldest);
}

}  // namespace bpool::detail
