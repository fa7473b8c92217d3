// Layer 8 (beside pool_core): the process's pools. Pool ids index the TLS slot tables and are
// recycled, so the tables stay small (a slot left by a destroyed pool holds a cache whose owner
// is no live pool's core: thread_cache.hpp). Every live pool is listed here, newest first, for the
// fork handlers.
//
// fork(). The prepare handler takes every pool's locks in the documented order and quiesces every
// thread cache, so that no lock is held and no cache is half-updated by another thread at the
// moment of the fork; the parent's handler releases it all. The child has one thread, the one that
// forked: its handler releases the locks, forgets the waiters (threads of the parent), and gives
// back what the caches of the parent's other threads held (their idle blocks go to the central
// lists, their credit to the budget) before it unlists and frees them. The forking thread keeps
// its own caches. Blocks live in the parent stay live in the child (its memory is a copy), and so
// does credit another thread had been granted but not yet put in its cache.
//
// No pool holds a lock, or stays inside a thread-cache operation, while it calls its upstream
// (which may be another pool), so the order in which pools are prepared does not matter; they are
// prepared newest first.
#include "pool/pools.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <new>
#include <pthread.h>

#include "budget/async_driver.hpp"
#include "meta/meta.hpp"
#include "pool/pool_core.hpp"

namespace bpool::detail {

namespace {

// Guards the id free list and the list of pools. Taken first by the prepare handler; elsewhere
// only the metadata lock is taken under it (growing the id list), and it is never taken under a
// pool's lock.
std::mutex pools_mutex;
std::uint32_t* free_ids = nullptr;  // metadata memory (meta.hpp)
std::uint32_t free_count = 0;
std::uint32_t free_room = 0;
std::uint32_t next_id = 0;
pool_core* newest_pool = nullptr;
fork_client* newest_client = nullptr;
std::once_flag handlers_once;

void prepare_all() noexcept {
    pools_mutex.lock();
    for (pool_core* p = newest_pool; p != nullptr; p = p->older_)
        p->fork_prepare();
    for (fork_client* c = newest_client; c != nullptr; c = c->older_)
        c->fork_prepare();
    async_driver::lock_for_fork();  // after every semaphore's lock (they poke it under theirs)
    meta::lock_for_fork();          // a leaf: pool locks are held while metadata is allocated
}

void parent_all() noexcept {
    meta::unlock_after_fork();
    async_driver::unlock_after_fork();
    for (fork_client* c = newest_client; c != nullptr; c = c->older_)
        c->fork_parent();
    for (pool_core* p = newest_pool; p != nullptr; p = p->older_)
        p->fork_parent();
    pools_mutex.unlock();
}

void child_all() noexcept {
    meta::unlock_after_fork();
    async_driver::reset_after_fork();
    reinit_heavy_barrier_after_fork();
    for (fork_client* c = newest_client; c != nullptr; c = c->older_)
        c->fork_child();
    // Every pool is unlocked before any gives back the other threads' caches: that may free chunks
    // to an upstream that is itself one of these pools.
    for (pool_core* p = newest_pool; p != nullptr; p = p->older_)
        p->fork_child();
    for (pool_core* p = newest_pool; p != nullptr; p = p->older_)
        p->forget_other_threads();
    pools_mutex.unlock();
}

// Registers the fork handlers once per process. Throws std::bad_alloc if that fails.
void install_fork_handlers() {
    std::call_once(handlers_once, [] {
        if (pthread_atfork(prepare_all, parent_all, child_all) != 0) throw std::bad_alloc();
    });
}

}  // namespace

std::uint32_t acquire_pool_id() {
    install_fork_handlers();
    std::lock_guard lock(pools_mutex);
    if (free_count > 0) return free_ids[--free_count];
    if (free_room <= next_id) {  // so that release_pool_id never needs memory
        const std::uint32_t room = std::max<std::uint32_t>(16, 2 * free_room);
        auto* grown = static_cast<std::uint32_t*>(meta::allocate(room * sizeof(std::uint32_t)));
        if (grown == nullptr) throw std::bad_alloc();
        if (free_count > 0) std::memcpy(grown, free_ids, free_count * sizeof(std::uint32_t));
        meta::deallocate(free_ids, free_room * sizeof(std::uint32_t));
        free_ids = grown;
        free_room = room;
    }
    return next_id++;
}

void release_pool_id(std::uint32_t id) noexcept {
    std::lock_guard lock(pools_mutex);
    free_ids[free_count++] = id;  // room for every id ever handed out: see acquire_pool_id
}

void list_pool(pool_core* p) noexcept {
    std::lock_guard lock(pools_mutex);
    p->older_ = newest_pool;
    p->newer_ = nullptr;
    if (newest_pool != nullptr) newest_pool->newer_ = p;
    newest_pool = p;
}

void list_fork_client(fork_client* c) {
    install_fork_handlers();
    std::lock_guard lock(pools_mutex);
    c->older_ = newest_client;
    c->newer_ = nullptr;
    if (newest_client != nullptr) newest_client->newer_ = c;
    newest_client = c;
}

void unlist_fork_client(fork_client* c) noexcept {
    std::lock_guard lock(pools_mutex);
    (c->newer_ != nullptr ? c->newer_->older_ : newest_client) = c->older_;
    if (c->older_ != nullptr) c->older_->newer_ = c->newer_;
    c->older_ = c->newer_ = nullptr;
}

void unlist_pool(pool_core* p) noexcept {
    std::lock_guard lock(pools_mutex);
    (p->newer_ != nullptr ? p->newer_->older_ : newest_pool) = p->older_;
    if (p->older_ != nullptr) p->older_->newer_ = p->newer_;
    p->older_ = p->newer_ = nullptr;
}

// Lock order: registry, then (with every cache quiesced) the central lists in class order, the
// page heap, the direct blocks' list, the budget, the checked registry. Everywhere else these are
// taken in that order or one at a time, and none is held across a call to upstream, so the
// prepare handler cannot deadlock with a running thread, whatever the pools' stacking.
void pool_core::fork_prepare() noexcept {
    registry_.lock_for_fork();
    for (unsigned c = 0; c < table_size; ++c)
        central_[c].lock_for_fork();
    heap_.lock_for_fork();
    direct_.lock_for_fork();
    budget_.lock_for_fork();
    checked_.lock_for_fork();
}

void pool_core::unlock_components_after_fork() noexcept {
    checked_.unlock_after_fork();
    direct_.unlock_after_fork();
    heap_.unlock_after_fork();
    for (unsigned c = table_size; c-- > 0;)
        central_[c].unlock_after_fork();
}

void pool_core::fork_parent() noexcept {
    budget_.unlock_after_fork();
    unlock_components_after_fork();
    registry_.unlock_after_fork();
}

void pool_core::fork_child() noexcept {
    // The child registered for membarrier again; if that failed, its owners fence for themselves.
    if (!heavy_barrier_available) flags_.fetch_or(flag_fenced, std::memory_order_relaxed);
    budget_.reset_after_fork();
    upstream_.reset_after_fork();
    unlock_components_after_fork();
    registry_.unlock_after_fork();
}

void pool_core::forget_other_threads() noexcept {
    // The caches of threads the child does not have were quiesced by the prepare handler: none is
    // inside an operation, and nobody will ever run on them again.
    const thread_cache* mine = own_cache();
    amount credit{};
    retired_chunks retired;
    {
        std::lock_guard lock(registry_.mutex());
        registry_.each([&](thread_cache& tc) {
            if (&tc == mine) return;
            // Credit a request of that thread had taken out to spend (the fork came in between)
            // is nobody's now.
            credit = credit + tc.in_flight() + unlist(&tc, retired);
            meta::destroy(&tc);
            refs_.fetch_sub(1, std::memory_order_relaxed);  // the pool's own reference remains
        });
    }
    if (!credit.zero()) budget_.give(credit);
    release(retired);
}

}  // namespace bpool::detail
