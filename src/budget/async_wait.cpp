// Layer 7: fifo_semaphore's asynchronous waits (see "Asynchronous waits" in fifo_semaphore.hpp).
// An async waiter shares the queue, and its order, with the blocking ones; what a blocking waiter
// does on its own thread between its sleeps (its deadline, its reclaim steps, its alarm) the async
// driver's thread does for it in drive_async, and the completion runs there too, with no lock held.
//
// Lifetime: an async record is only destroyed after its completion has run, and completions run
// only on the driver's thread (one per drive_async, after which the semaphore is not touched) or
// in close(), which first waits for the driver to let go of the semaphore. So while drive_async
// runs, every record it finds in the queue or the done list is alive, even across the unlocked
// calls to the hooks.
#include <algorithm>

#include "budget/async_driver.hpp"
#include "budget/fifo_semaphore.hpp"

namespace bpool::detail {

std::optional<fifo_semaphore::wait_result> fifo_semaphore::wait_async(async_waiter& w) noexcept {
    // Started outside the lock: creating a thread is a call to the OS (and maybe to malloc).
    const bool driver = async_driver::start();
    std::lock_guard lock(mutex_);
    if (closed_) return wait_result::cancelled;
    if (admits(w.need) == take_result::taken) {
        commit(w.need);
        notify(semaphore_change::taken);
        return wait_result::granted;
    }
    if (larger_than_limits(w.need)) {
        if (!w.overcommit_) return wait_result::refused;
        commit(w.need);
        notify(semaphore_change::taken);
        return wait_result::overcommitted;
    }
    if (!driver) return wait_result::refused;  // nobody could ever run its steps or completion
    w.sem_ = this;
    w.state = waiter::queued;
    w.alarm_ = w.hooks_.first_alarm(w.start);
    w.step_ = steady::time_point::min();  // the first reclaim step is due at once
    ++async_queued_;
    enqueue(&w, w.hooks_);
    async_driver::poke(this);
    return std::nullopt;
}

void fifo_semaphore::end_async(async_waiter& w, unsigned char state) noexcept {
    // Called with w unlinked and the mutex held, by whoever ended it: a grant, a refusal, the
    // driver's deadline check, cancel() or close().
    w.state = static_cast<waiter::state_kind>(state);
    switch (w.state) {
        case waiter::granted:
            w.result_ = wait_result::granted;
            break;
        case waiter::rejected:
        case waiter::expired:
            if (w.overcommit_) {
                commit(w.need);
                w.result_ = wait_result::overcommitted;
            } else {
                w.result_ =
                    w.state == waiter::rejected ? wait_result::refused : wait_result::timed_out;
            }
            break;
        default:
            w.result_ = wait_result::cancelled;
            break;
    }
    --async_queued_;
    waiting_.fetch_sub(1, std::memory_order_relaxed);
    w.hooks_.ended(std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - w.start));
    w.done_next_ = nullptr;
    (done_tail_ != nullptr ? done_tail_->done_next_ : done_head_) = &w;
    done_tail_ = &w;
    if (!closed_) async_driver::poke(this);
}

bool fifo_semaphore::cancel(async_waiter& w) noexcept {
    std::lock_guard lock(mutex_);
    if (w.sem_ != this || w.state != waiter::queued) return false;
    remove(&w);  // grants those behind that now fit
    end_async(w, waiter::cancelled);
    notify(semaphore_change::queue);
    return true;
}

void fifo_semaphore::close() noexcept {
    async_waiter* done = nullptr;
    {
        std::lock_guard lock(mutex_);
        if (closed_) return;
        closed_ = true;
        // Each removal may grant those behind it (and so unlink them): look again from the head.
        for (waiter* q = head_; q != nullptr;) {
            if (!q->is_async) {
                q = q->next;
                continue;
            }
            remove(q);
            end_async(*static_cast<async_waiter*>(q), waiter::cancelled);
            q = head_;
        }
        // Granted but not yet completed: the grant is given back, nobody will use it.
        for (async_waiter* a = done_head_; a != nullptr; a = a->done_next_) {
            if (a->result_ == wait_result::granted || a->result_ == wait_result::overcommitted)
                commit({-a->need.bytes, -a->need.blocks});
            a->result_ = wait_result::cancelled;
        }
        done = done_head_;
        done_head_ = done_tail_ = nullptr;
        grant_waiters();
        notify(semaphore_change::released);
    }
    async_driver::forget(this);  // waits for a completion the driver is running
    while (done != nullptr) {
        async_waiter* next = done->done_next_;  // read first: the completion may free the record
        done->completed(wait_result::cancelled);
        done = next;
    }
}

void fifo_semaphore::step_async(std::unique_lock<std::mutex>& lock,
                                steady::time_point now) noexcept {
    // Deadlines first, as a blocking waiter checks its own after each step. Each removal may
    // grant others and changes the list: look again from the head.
    for (bool again = true; again;) {
        again = false;
        for (waiter* q = head_; q != nullptr; q = q->next) {
            auto* a = q->is_async ? static_cast<async_waiter*>(q) : nullptr;
            if (a != nullptr && a->deadline_ <= now) {
                remove(q);
                end_async(*a, waiter::expired);
                notify(semaphore_change::queue);
                again = true;
                break;
            }
        }
    }
    // Alarms (stall reports), each due one called once with the lock released.
    for (bool again = true; again;) {
        again = false;
        for (waiter* q = head_; q != nullptr; q = q->next) {
            auto* a = q->is_async ? static_cast<async_waiter*>(q) : nullptr;
            if (a == nullptr || a->alarm_ > now) continue;
            a->alarm_ = steady::time_point::max();
            lock.unlock();
            steady::time_point next = steady::time_point::max();
            try {
                next = a->hooks_.alarm(
                    std::chrono::duration_cast<std::chrono::nanoseconds>(now - a->start));
            } catch (...) {
                // A blocking wait would unwind; an async one has no caller to throw to.
            }
            lock.lock();
            // Never due again at once, so that this loop ends.
            if (a->state == waiter::queued)
                a->alarm_ = std::max(next, now + std::chrono::milliseconds(1));
            again = true;
            break;
        }
    }
    // The reclaim step of the first async waiter: what the queue lacks up to it, asked of what
    // holds credit outside the count, as a blocking waiter asks at each of its steps.
    waiter* q = head_;
    while (q != nullptr && !q->is_async)
        q = q->next;
    auto* a = static_cast<async_waiter*>(q);
    if (a == nullptr || a->step_ > now) return;
    const amount missing = missing_through(a);
    if (missing.bytes > 0 || missing.blocks > 0) {
        a->step_ = steady::time_point::max();
        lock.unlock();
        const amount got = a->hooks_.reclaim(missing);
        lock.lock();
        if (!got.zero()) release(got);
    }
    if (a->state == waiter::queued) a->step_ = steady::now() + a->hooks_.next_step();
}

steady::time_point fifo_semaphore::next_async_due() const noexcept {
    if (done_head_ != nullptr) return steady::time_point::min();
    steady::time_point due = steady::time_point::max();
    bool first = true;
    for (const waiter* q = head_; q != nullptr; q = q->next) {
        if (!q->is_async) continue;
        const auto* a = static_cast<const async_waiter*>(q);
        due = std::min({due, a->deadline_, a->alarm_});
        if (first) due = std::min(due, a->step_);
        first = false;
    }
    return due;
}

steady::time_point fifo_semaphore::drive_async(steady::time_point now) noexcept {
    std::unique_lock lock(mutex_);
    if (closed_) return steady::time_point::max();
    step_async(lock, now);
    async_waiter* w = done_head_;
    if (w != nullptr) {
        done_head_ = w->done_next_;
        if (done_head_ == nullptr) done_tail_ = nullptr;
    }
    const steady::time_point due = next_async_due();
    const wait_result r = w != nullptr ? w->result_ : wait_result::cancelled;
    lock.unlock();
    // Last: the completion may destroy the record, and the owner of the semaphore (its close()
    // waits for this call to return, unless the completion is the one closing it).
    if (w != nullptr) w->completed(r);
    return due;
}

}  // namespace bpool::detail
