#include "budget/fifo_semaphore.hpp"

#include <algorithm>
#include <condition_variable>

#include "budget/async_driver.hpp"

namespace bpool::detail {

namespace {

std::int64_t to_limit(std::size_t v) noexcept {
    return v == 0 || v >= static_cast<std::size_t>(fifo_semaphore::unlimited)
               ? fifo_semaphore::unlimited
               : static_cast<std::int64_t>(v);
}

std::size_t from_limit(std::int64_t v) noexcept {
    return v >= fifo_semaphore::unlimited ? 0 : static_cast<std::size_t>(v);
}

}  // namespace

// A blocking wait: a thread sleeps on the condition variable.
struct fifo_semaphore::thread_waiter : waiter {
    thread_waiter(amount n, steady::time_point s) noexcept : waiter(n, s, false) {}
    std::condition_variable cv;  // its wake-ups are guarded by the semaphore's mutex
};

fifo_semaphore::~fifo_semaphore() {
    close();
}

std::size_t fifo_semaphore::byte_limit() const noexcept {
    return from_limit(limit_bytes_.load(std::memory_order_relaxed));
}

std::size_t fifo_semaphore::block_limit() const noexcept {
    return from_limit(limit_blocks_.load(std::memory_order_relaxed));
}

bool fifo_semaphore::larger_than_limits(amount need) const noexcept {
    return need.bytes > limit_bytes_.load(std::memory_order_relaxed) ||
           need.blocks > limit_blocks_.load(std::memory_order_relaxed);
}

bool fifo_semaphore::fits(amount need) const noexcept {
    const amount after = committed() + need;
    const amount limit = limits();
    return after.bytes <= limit.bytes && after.blocks <= limit.blocks;
}

amount fifo_semaphore::missing_for(amount need) const noexcept {
    return committed() + need - limits();
}

amount fifo_semaphore::missing_through(const waiter* w) const noexcept {
    amount need{};
    for (const waiter* q = head_; q != nullptr; q = q->next) {
        need = need + q->need;
        if (q == w) break;
    }
    return missing_for(need);
}

fifo_semaphore::take_result fifo_semaphore::admits(amount need) const noexcept {
    if (head_ != nullptr) return take_result::behind_waiters;
    if (larger_than_limits(need)) return take_result::over_limits;
    return fits(need) ? take_result::taken : take_result::no_room;
}

void fifo_semaphore::commit(amount a) noexcept {
    // Relaxed: every write is made under the mutex; lock-free readers want a recent value, not
    // an order with anything else.
    const amount now = committed() + a;
    committed_bytes_.store(now.bytes, std::memory_order_relaxed);
    committed_blocks_.store(now.blocks, std::memory_order_relaxed);
    if (now.bytes > peak_bytes_.load(std::memory_order_relaxed))
        peak_bytes_.store(now.bytes, std::memory_order_relaxed);
    if (now.blocks > peak_blocks_.load(std::memory_order_relaxed))
        peak_blocks_.store(now.blocks, std::memory_order_relaxed);
}

void fifo_semaphore::notify(semaphore_change what) noexcept {
    if (observer_ != nullptr) observer_->changed({committed(), limits(), head_ != nullptr}, what);
}

void fifo_semaphore::set_limits(std::size_t bytes, std::size_t blocks) noexcept {
    std::lock_guard lock(mutex_);
    limit_bytes_.store(to_limit(bytes), std::memory_order_relaxed);
    limit_blocks_.store(to_limit(blocks), std::memory_order_relaxed);
    refuse_unfit_waiters();
    grant_waiters();
    notify(semaphore_change::limits);
}

void fifo_semaphore::refuse_unfit_waiters() noexcept {
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
            wake(w);
        } else {
            prev = w;
        }
        w = next;
    }
}

void fifo_semaphore::grant_waiters() noexcept {
    // Strict arrival order: a large request at the head is not overtaken by small ones behind it.
    while (head_ != nullptr && fits(head_->need)) {
        waiter* w = head_;
        commit(w->need);
        head_ = w->next;
        if (head_ == nullptr) tail_ = nullptr;
        w->state = waiter::granted;
        wake(w);
    }
}

void fifo_semaphore::wake(waiter* w) noexcept {
    if (w->is_async)
        end_async(*static_cast<async_waiter*>(w), w->state);
    else
        static_cast<thread_waiter*>(w)->cv.notify_one();
}

void fifo_semaphore::enqueue(waiter* w, wait_hooks& hooks) noexcept {
    (tail_ != nullptr ? tail_->next : head_) = w;
    tail_ = w;
    waiting_.fetch_add(1, std::memory_order_relaxed);
    hooks.queued();
    // The observer learns that someone waits: a pool raises its pressure flag, so that from now
    // on frees hand their bytes over at once.
    notify(semaphore_change::queue);
}

void fifo_semaphore::remove(waiter* w) noexcept {
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

void fifo_semaphore::release(amount a) noexcept {
    commit({-a.bytes, -a.blocks});
    grant_waiters();
    notify(semaphore_change::released);
}

fifo_semaphore::take_result fifo_semaphore::try_take(amount need, amount* missing) noexcept {
    std::lock_guard lock(mutex_);
    const take_result r = admits(need);
    if (r == take_result::taken) {
        commit(need);
        notify(semaphore_change::taken);
    } else if (missing != nullptr) {
        *missing = missing_for(need);
    }
    return r;
}

void fifo_semaphore::give(amount a) noexcept {
    std::lock_guard lock(mutex_);
    release(a);
}

bool fifo_semaphore::give_and_take(amount back, amount need) noexcept {
    std::lock_guard lock(mutex_);
    commit({-back.bytes, -back.blocks});
    const bool taken = admits(need) == take_result::taken;
    if (taken) commit(need);
    grant_waiters();  // what is left may serve waiters queued meanwhile
    notify(semaphore_change::released);
    return taken;
}

steady::time_point fifo_semaphore::oldest_start() const {
    std::lock_guard lock(mutex_);
    // The head arrived first of those still queued.
    return head_ != nullptr ? head_->start : steady::time_point::max();
}

// Unlinks a waiter that leaves without being granted or refused: on a timeout, and when its
// thread unwinds out of the wait (pthread_cancel's forced unwind, which re-takes the mutex first,
// or an exception thrown while the mutex was released). Ends the wait's bookkeeping either way.
class fifo_semaphore::queue_guard {
  public:
    queue_guard(fifo_semaphore& s, std::unique_lock<std::mutex>& lock, thread_waiter& w,
                wait_hooks& hooks) noexcept
        : s_(s), lock_(lock), w_(w), hooks_(hooks) {}
    queue_guard(const queue_guard&) = delete;
    queue_guard& operator=(const queue_guard&) = delete;
    ~queue_guard() {
        if (!lock_.owns_lock()) lock_.lock();
        if (w_.state == waiter::queued) s_.remove(&w_);
        s_.waiting_.fetch_sub(1, std::memory_order_relaxed);
        hooks_.ended(
            std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - w_.start));
        s_.notify(semaphore_change::queue);
    }

  private:
    fifo_semaphore& s_;
    std::unique_lock<std::mutex>& lock_;
    thread_waiter& w_;
    wait_hooks& hooks_;
};

fifo_semaphore::wait_result fifo_semaphore::wait(amount need, const wait_terms& terms,
                                                 wait_hooks& hooks) {
    std::unique_lock lock(mutex_);
    if (admits(need) == take_result::taken) {
        commit(need);
        notify(semaphore_change::taken);
        return wait_result::granted;
    }
    if (larger_than_limits(need)) {
        // Larger than the limits themselves: waiting cannot help (unless they are raised, which
        // nobody should wait 15 s for).
        if (!terms.overcommit) return wait_result::refused;
        commit(need);
        notify(semaphore_change::taken);
        return wait_result::overcommitted;
    }
    return queue_and_wait(lock, need, terms, hooks);
}

fifo_semaphore::wait_result fifo_semaphore::queue_and_wait(std::unique_lock<std::mutex>& lock,
                                                           amount need, const wait_terms& terms,
                                                           wait_hooks& hooks) {
    // The guard lives in the frame that sleeps and calls the alarm, the two places a thread's
    // cancellation unwinds from. (ASan unpoisons the frames an unwind leaves only for a C++
    // throw, not for pthread_cancel's forced unwind: a guard in a caller of a frame with redzones
    // would run its destructor's callees on that still poisoned stack.)
    thread_waiter w(need, terms.start);
    w.state = waiter::queued;
    enqueue(&w, hooks);
    const queue_guard guard(*this, lock, w, hooks);
    steady::time_point alarm = hooks.first_alarm(terms.start);
    while (w.state == waiter::queued) {
        reclaim_step(lock, w, hooks);
        if (w.state != waiter::queued) break;
        steady::time_point now = steady::now();
        if (now >= alarm) {
            // Before the deadline check: a wait that lasted until its alarm (a stall warning) is
            // reported even if it is about to time out.
            lock.unlock();
            alarm = hooks.alarm(
                std::chrono::duration_cast<std::chrono::nanoseconds>(now - terms.start));
            lock.lock();
            if (w.state != waiter::queued) break;
            now = steady::now();
        }
        if (now >= terms.deadline) break;
        const steady::time_point until = std::min({now + hooks.next_step(), terms.deadline, alarm});
        // The step's length only paces the next look: a grant wakes the waiter at once.
        w.cv.wait_until(lock, until, [&] { return w.state != waiter::queued; });
    }
    return settle(w, terms);  // before the guard unlinks a waiter that was not granted
}

void fifo_semaphore::reclaim_step(std::unique_lock<std::mutex>& lock, waiter& w,
                                  wait_hooks& hooks) {
    // What the queue lacks up to this waiter, asked of whatever holds the rest outside the count
    // (a pool's idle thread caches) with the lock released; taken back, it serves the queue.
    const amount missing = missing_through(&w);
    if (missing.bytes <= 0 && missing.blocks <= 0) return;  // it fits: being granted
    lock.unlock();
    const amount got = hooks.reclaim(missing);
    lock.lock();
    if (!got.zero()) release(got);
}

fifo_semaphore::wait_result fifo_semaphore::settle(const waiter& w,
                                                   const wait_terms& terms) noexcept {
    if (w.state == waiter::granted) return wait_result::granted;
    if (terms.overcommit) {
        commit(w.need);  // the guard tells the observer, as it unlinks the waiter
        return wait_result::overcommitted;
    }
    return w.state == waiter::rejected ? wait_result::refused : wait_result::timed_out;
}

void fifo_semaphore::reset_after_fork() noexcept {
    mutex_.unlock();
    std::lock_guard lock(mutex_);
    // Async waits too: their completions would run on a driver the child does not have, for
    // callers (event loops) whose threads it does not have either.
    head_ = tail_ = nullptr;
    done_head_ = done_tail_ = nullptr;
    async_queued_ = 0;
    driver_link_ = {};
    waiting_.store(0, std::memory_order_relaxed);
    notify(semaphore_change::released);
}

}  // namespace bpool::detail
