#include "budget/async_driver.hpp"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <new>
#include <pthread.h>
#include <signal.h>

namespace bpool::detail {

namespace {

// The driver's state, in static storage that is never destroyed: its thread may still sleep on
// the condition variable while the process exits.
struct driver_state {
    std::mutex mutex;
    std::condition_variable work;  // a semaphore was poked
    std::condition_variable idle;  // the thread left a semaphore (forget waits for it)
    fifo_semaphore* head = nullptr;
    fifo_semaphore* tail = nullptr;
    fifo_semaphore* busy = nullptr;  // the semaphore whose drive_async runs now
    pthread_t thread{};
    bool started = false;
};

alignas(driver_state) unsigned char storage[sizeof(driver_state)];
std::once_flag made;
thread_local bool driver_thread = false;  // set on the driver's own thread

driver_state& state() noexcept {
    std::call_once(made, [] { new (storage) driver_state; });
    return *std::launder(reinterpret_cast<driver_state*>(storage));
}

}  // namespace

// The list and the loop are members so that they may reach fifo_semaphore::driver_link_.
struct async_driver_access {
    static void link(driver_state& d, fifo_semaphore* s) noexcept {
        auto& l = s->driver_link_;
        l.prev = d.tail;
        l.next = nullptr;
        (d.tail != nullptr ? d.tail->driver_link_.next : d.head) = s;
        d.tail = s;
        l.listed = true;
    }
    static void unlink(driver_state& d, fifo_semaphore* s) noexcept {
        auto& l = s->driver_link_;
        (l.prev != nullptr ? l.prev->driver_link_.next : d.head) = l.next;
        (l.next != nullptr ? l.next->driver_link_.prev : d.tail) = l.prev;
        l = {};
    }
    static void* run(void*);
};

void* async_driver_access::run(void*) {
    driver_thread = true;
    driver_state& d = state();
    std::unique_lock lock(d.mutex);
    for (;;) {
        const steady::time_point now = steady::now();
        fifo_semaphore* pick = nullptr;
        steady::time_point earliest = steady::time_point::max();
        for (fifo_semaphore* s = d.head; s != nullptr; s = s->driver_link_.next) {
            if (s->driver_link_.poked || s->driver_link_.due <= now) {
                pick = s;
                break;
            }
            earliest = std::min(earliest, s->driver_link_.due);
        }
        if (pick == nullptr) {
            if (earliest == steady::time_point::max())
                d.work.wait(lock);
            else
                d.work.wait_until(lock, earliest);
            continue;
        }
        // Round robin: the semaphore goes to the back, so that one with a stream of completions
        // does not starve the others' deadlines.
        unlink(d, pick);
        link(d, pick);
        d.busy = pick;
        lock.unlock();
        const steady::time_point due = pick->drive_async(now);
        lock.lock();
        // Not forgotten meanwhile: by a completion closing it (busy is cleared then), or by
        // another thread's close(), which unlisted it and waits for this pass to end (unlinking
        // it again would empty the list).
        if (d.busy == pick && pick->driver_link_.listed) {
            auto& l = pick->driver_link_;
            l.due = due;
            if (due == steady::time_point::max() && !l.poked) unlink(d, pick);
        }
        d.busy = nullptr;
        d.idle.notify_all();
    }
}

bool async_driver::start() noexcept {
    driver_state& d = state();
    std::lock_guard lock(d.mutex);
    if (d.started) return true;
    // The thread takes no signal meant for the application's threads.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    d.started = pthread_create(&d.thread, &attr, &async_driver_access::run, nullptr) == 0;
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (d.started) pthread_setname_np(d.thread, "bpool-async");
    return d.started;
}

void async_driver::poke(fifo_semaphore* s) noexcept {
    driver_state& d = state();
    std::lock_guard lock(d.mutex);
    if (!s->driver_link_.listed) async_driver_access::link(d, s);
    s->driver_link_.poked = true;
    d.work.notify_one();
}

void async_driver::forget(fifo_semaphore* s) noexcept {
    driver_state& d = state();
    std::unique_lock lock(d.mutex);
    if (s->driver_link_.listed) async_driver_access::unlink(d, s);
    if (d.busy != s) return;
    if (on_driver_thread()) {
        d.busy = nullptr;  // the loop must not touch s once this completion returns
        return;
    }
    d.idle.wait(lock, [&] { return d.busy != s; });
}

bool async_driver::on_driver_thread() noexcept {
    return driver_thread;
}

void async_driver::lock_for_fork() noexcept {
    state().mutex.lock();
}

void async_driver::unlock_after_fork() noexcept {
    state().mutex.unlock();
}

void async_driver::reset_after_fork() noexcept {
    // The child has no driver thread; the semaphores forgot their async waits (and links).
    new (storage) driver_state;
}

}  // namespace bpool::detail
