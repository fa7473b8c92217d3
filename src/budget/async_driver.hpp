// Layer 7: the async driver, one thread per process that does for asynchronous waits what a
// blocking waiter does on its own thread: it ends them at their deadlines, runs their reclaim steps
// and alarms, and runs their completions (fifo_semaphore::drive_async), so that a completion never
// runs on the thread that granted it (a free, deep in a pool, maybe inside operator delete) and
// never with a pool lock held.
//
// The thread starts with the first asynchronous wait (pthread_create, signals blocked, never
// joined: like the process's pools it lives until exit) and sleeps while no semaphore has async
// work. A semaphore lists itself (poke) when an async waiter queues or ends, and the driver drops
// it once it has none; a semaphore that closes waits until the driver is not inside it.
//
// Thread safety: all members are thread-safe. Lock order: a semaphore's mutex, then the driver's
// (poke is called under the former); the driver calls drive_async with its own mutex released.
// fork(): the prepare handler takes the driver's mutex after every pool's locks; the child starts
// with no driver thread and no listed semaphore (they forgot their async waits).
#pragma once

#include "budget/fifo_semaphore.hpp"

namespace bpool::detail {

class async_driver {
  public:
    /// Effects: starts the driver's thread if it is not running. Returns whether it runs.
    /// Call with no lock held.
    static bool start() noexcept;
    /// Effects: lists `s` as having async work and wakes the driver. Called with `s`'s mutex held.
    static void poke(fifo_semaphore* s) noexcept;
    /// Effects: unlists `s` and waits until the driver's thread is not inside `s.drive_async`
    /// (unless called on that thread, from a completion). Call without `s`'s mutex.
    static void forget(fifo_semaphore* s) noexcept;
    /// Returns: whether the calling thread is the driver's.
    [[nodiscard]] static bool on_driver_thread() noexcept;

    /// fork(): the prepare handler takes the driver's mutex; the parent's handler releases it.
    static void lock_for_fork() noexcept;
    /// See lock_for_fork.
    static void unlock_after_fork() noexcept;
    /// The child's handler: a driver with no thread and no semaphore listed.
    static void reset_after_fork() noexcept;
};

}  // namespace bpool::detail
