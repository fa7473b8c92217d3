// Layer 7 (beside pool_core): the process's pools. Pool ids index the TLS slot tables and are
// recycled, so the tables stay small; generations are never reused, so a slot left by a destroyed
// pool never matches a new one. Every live pool is listed here, newest first, for the fork
// handlers.
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
// Pools are prepared newest first: a pool's upstream was constructed before it (it is an argument
// of the constructor), so a thread of a newer pool that holds one of its locks while it calls into
// an older pool (its upstream) can finish that call before the older pool is locked.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <new>
#include <pthread.h>

#include "meta.hpp"
#include "pool_core.hpp"

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
std::atomic<std::uint64_t> next_gen{1};
pool_core* newest_pool = nullptr;
std::once_flag handlers_once;

void prepare_all() noexcept {
    pools_mutex.lock();
    for (pool_core* p = newest_pool; p != nullptr; p = p->older_)
        p->fork_prepare();
    meta::lock_for_fork();  // a leaf: pool locks are held while metadata is allocated
}

void parent_all() noexcept {
    meta::unlock_after_fork();
    for (pool_core* p = newest_pool; p != nullptr; p = p->older_)
        p->fork_parent();
    pools_mutex.unlock();
}

void child_all() noexcept {
    meta::unlock_after_fork();
    reinit_heavy_barrier_after_fork();
    // Every pool is unlocked before any gives back the other threads' caches: that may free chunks
    // to an upstream that is itself one of these pools.
    for (pool_core* p = newest_pool; p != nullptr; p = p->older_)
        p->fork_child();
    for (pool_core* p = newest_pool; p != nullptr; p = p->older_)
        p->forget_other_threads();
    pools_mutex.unlock();
}

}  // namespace

pool_ident acquire_pool_ident() {
    std::call_once(handlers_once, [] {
        if (pthread_atfork(prepare_all, parent_all, child_all) != 0) throw std::bad_alloc();
    });
    std::lock_guard lock(pools_mutex);
    pool_ident ident{0, next_gen.fetch_add(1, std::memory_order_relaxed)};
    if (free_count > 0) {
        ident.id = free_ids[--free_count];
        return ident;
    }
    if (free_room <= next_id) {  // so that release_pool_ident never needs memory
        const std::uint32_t room = std::max<std::uint32_t>(16, 2 * free_room);
        auto* grown = static_cast<std::uint32_t*>(meta::allocate(room * sizeof(std::uint32_t)));
        if (grown == nullptr) throw std::bad_alloc();
        if (free_count > 0) std::memcpy(grown, free_ids, free_count * sizeof(std::uint32_t));
        meta::deallocate(free_ids, free_room * sizeof(std::uint32_t));
        free_ids = grown;
        free_room = room;
    }
    ident.id = next_id++;
    return ident;
}

void release_pool_ident(std::uint32_t id) noexcept {
    std::lock_guard lock(pools_mutex);
    free_ids[free_count++] = id;  // room for every id ever handed out: see acquire_pool_ident
}

void list_pool(pool_core* p) noexcept {
    std::lock_guard lock(pools_mutex);
    p->older_ = newest_pool;
    p->newer_ = nullptr;
    if (newest_pool != nullptr) newest_pool->newer_ = p;
    newest_pool = p;
}

void unlist_pool(pool_core* p) noexcept {
    std::lock_guard lock(pools_mutex);
    (p->newer_ != nullptr ? p->newer_->older_ : newest_pool) = p->older_;
    if (p->older_ != nullptr) p->older_->newer_ = p->newer_;
    p->older_ = p->newer_ = nullptr;
}

// Lock order: registry, then (with every cache quiesced) the central lists in class order, the
// page heap, the direct blocks' list, the budget, the checked registry. Everywhere else these are
// taken in that order or one at a time, so the prepare handler cannot deadlock with a running
// thread.
void pool_core::fork_prepare() noexcept {
    registry_mutex_.lock();
    if (caches_ != nullptr) {
        flags_.fetch_or(flag_quiesce, std::memory_order_seq_cst);
        heavy_barrier();
        for (thread_cache* tc = caches_; tc != nullptr; tc = tc->next_)
            tc->wait_idle();
    }
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
    flags_.fetch_and(~std::uint32_t{flag_quiesce}, std::memory_order_release);
    registry_mutex_.unlock();
}

void pool_core::fork_child() noexcept {
    budget_.reset_after_fork();
    unlock_components_after_fork();
    flags_.fetch_and(~std::uint32_t{flag_quiesce}, std::memory_order_release);
    registry_mutex_.unlock();
}

void pool_core::forget_other_threads() noexcept {
    // The caches of threads the child does not have were quiesced by the prepare handler: none is
    // inside an operation, and nobody will ever run on them again.
    const thread_cache* mine = find_cache(id_, gen_);
    amount credit{};
    std::unique_lock lock(registry_mutex_);
    for (thread_cache* tc = caches_; tc != nullptr;) {
        thread_cache* next = tc->next_;
        if (tc != mine) {
            credit = credit + unlist(tc);
            meta::destroy(tc);
            refs_.fetch_sub(1, std::memory_order_relaxed);  // the pool's own reference remains
        }
        tc = next;
    }
    lock.unlock();
    if (!credit.zero()) budget_.give(credit);
}

}  // namespace bpool::detail
