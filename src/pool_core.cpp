#include "pool_core.hpp"

#include <algorithm>
#include <new>
#include <stdexcept>
#include <thread>

#include "meta.hpp"
#include "options.hpp"

namespace bpool::detail {

namespace {

constexpr amount amount_of(const class_info& k) noexcept {
    return {k.size, 1};
}

constexpr amount clamped(amount a) noexcept {
    return {std::max<std::int64_t>(a.bytes, 0), std::max<std::int64_t>(a.blocks, 0)};
}

// Blocks moved between a bin and the central list at once: half the bin's limit, at most the
// class's batch, at least one.
std::uint32_t transfer_batch(const bin& b, const class_info& k) noexcept {
    return std::clamp<std::uint32_t>(b.limit / 2, 1, k.batch);
}

// Size of a direct block: the request rounded up to 16 bytes, at least 16 (a request of 0 bytes
// still gets a unique block); 0 if the rounding overflows.
constexpr std::size_t direct_size(std::size_t bytes) noexcept {
    if (bytes > SIZE_MAX - 15) return 0;
    return bytes == 0 ? 16 : (bytes + 15) & ~std::size_t{15};
}

// Blocks a central list keeps before giving the rest back to chunks (or upstream); either way
// the pool's idle bytes stay under max_cached_bytes (put_central). A multi-block class keeps a few
// batches: the rest refills its chunks, which then go back whole. A single-block class is bounded
// by max_cached_bytes alone: giving its blocks straight back to upstream only to take them again
// made a capped burst churn malloc, whose per-thread arenas then held each other's freed blocks
// (the burst benchmark's peak RSS: about 20 MiB above its 64 MiB live set).
constexpr std::uint32_t central_keep(const class_info& k) noexcept {
    return k.chunk_blocks > 1 ? 4u * k.batch : UINT32_MAX;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Construction and destruction
// ---------------------------------------------------------------------------------------------

pool_core* pool_core::create(const pool_options& options, std::pmr::memory_resource* upstream,
                             const void* resource) {
    init_heavy_barrier();
    const pool_ident ident = acquire_pool_ident();
    try {
        void* memory = meta::allocate(sizeof(pool_core));
        if (memory == nullptr) throw std::bad_alloc();
        pool_core* core;
        try {
            core = ::new (memory) pool_core(options, upstream, ident.id, ident.gen, resource);
        } catch (...) {
            meta::deallocate(memory, sizeof(pool_core));
            throw;
        }
        list_pool(core);
        return core;
    } catch (...) {
        release_pool_ident(ident.id);
        throw;
    }
}

pool_core::pool_core(const pool_options& options, std::pmr::memory_resource* upstream,
                     std::uint32_t id, std::uint64_t gen, const void* resource)
    : id_(id),
      gen_(gen),
      largest_size_(options.largest_pooled_block),
      options_(options),
      upstream_(upstream),
      largest_class_(size_to_class(options.largest_pooled_block)),
      budget_(flags_, options_),
      cache_share_(static_cast<std::int64_t>(options_.max_cached_bytes / 2)),
      cache_room_(cache_share_),
      resource_(resource) {
    map_.init();
    budget_.set_limits(options.capacity, options.max_live_blocks);
    budget_.set_live_reader(
        [](const void* self) noexcept { return static_cast<const pool_core*>(self)->live_bytes(); },
        this);
}

pool_core::~pool_core() = default;

void pool_core::release_ref() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        this->~pool_core();
        meta::deallocate(this, sizeof(pool_core));
    }
}

void pool_core::shutdown() noexcept {
    unlist_pool(this);
    {
        std::lock_guard lock(registry_mutex_);
        // Unlist every cache. Their owners still hold references and free them later; their bins
        // point into chunks that are about to go and are never read again (see the protocol).
        for (thread_cache* tc = caches_; tc != nullptr; tc = tc->next_)
            tc->listed_ = false;
        caches_ = nullptr;
    }
    checked_.report_leaks();
    for (unsigned c = 0; c < table_size; ++c)
        central_[c].destroy();
    heap_.destroy();
    direct_.destroy(upstream_);
    map_.destroy();
    BPOOL_ASSERT(upstream_.held() == 0);
    release_pool_ident(id_);
    release_ref();
}

// ---------------------------------------------------------------------------------------------
// Thread caches: creation, the handshake, exit
// ---------------------------------------------------------------------------------------------

thread_cache* pool_core::cache_for_thread() noexcept {
    if (thread_cache* tc = find_cache(id_, gen_)) return tc;
    tls_slot* slot = slot_for(id_);
    if (slot == nullptr) return nullptr;
    if (slot->cache != nullptr) {  // left by a destroyed pool that had the same id
        thread_cache* stale = std::exchange(slot->cache, nullptr);
        slot->gen = 0;
        stale->core_->detach(stale);
    }
    void* memory = meta::allocate(sizeof(thread_cache));
    if (memory == nullptr) return nullptr;
    auto* tc = ::new (memory) thread_cache(this);
    refs_.fetch_add(1, std::memory_order_relaxed);
    {
        std::lock_guard lock(registry_mutex_);  // set_limits changes the lease under this lock
        refresh_limits(tc);
        tc->next_ = caches_;
        if (caches_) caches_->prev_ = tc;
        caches_ = tc;
        tc->listed_ = true;
        cache_count_.fetch_add(1, std::memory_order_relaxed);
        registrations_.fetch_add(1, std::memory_order_relaxed);
    }
    slot->cache = tc;
    slot->gen = gen_;
    return tc;
}

void pool_core::refresh_limits(thread_cache* tc) const noexcept {
    // A lease leaves a cache with up to its request plus one lease of credit; frees may add as
    // much again before the surplus goes back, leaving one lease. So in a balanced alloc/free
    // churn of blocks smaller than a lease the fast path meets neither limit, and in a one-way
    // flow it returns credit once per lease. (Under a small capacity the lease is small too, 4 KiB
    // at least: frees of blocks above two leases then always take the slow path.)
    tc->hold_limit_ = 3 * budget_.lease_bytes();
}

void pool_core::enter(thread_cache* tc) noexcept {
    // A quiescer holds the registry lock while flag_quiesce is up: wait on it, then try again.
    while (!tc->enter_fast(flags_, flag_quiesce)) {
        std::lock_guard wait(registry_mutex_);
    }
}

template <class F>
void pool_core::quiesce_locked(F&& f) noexcept {
    if (caches_ == nullptr) return;
    flags_.fetch_or(flag_quiesce, std::memory_order_seq_cst);
    heavy_barrier();
    for (thread_cache* tc = caches_; tc != nullptr; tc = tc->next_) {
        tc->wait_idle();
        f(*tc);
    }
    flags_.fetch_and(~std::uint32_t{flag_quiesce}, std::memory_order_release);
}

amount pool_core::unlist(thread_cache* tc) noexcept {
    for (unsigned c = 0; c < table_size; ++c) {
        const bin& b = tc->bin_of(c);
        retired_allocs_[c].fetch_add(b.allocs.load(std::memory_order_relaxed));
        retired_frees_[c].fetch_add(b.frees.load(std::memory_order_relaxed));
    }
    release_bins(tc);
    const amount credit = return_credit(tc, {});
    if (tc->prev_)
        tc->prev_->next_ = tc->next_;
    else
        caches_ = tc->next_;
    if (tc->next_) tc->next_->prev_ = tc->prev_;
    tc->listed_ = false;
    cache_count_.fetch_sub(1, std::memory_order_relaxed);
    return credit;
}

void pool_core::detach(thread_cache* tc) noexcept {
    amount credit{};
    {
        std::lock_guard lock(registry_mutex_);
        if (tc->listed_) credit = unlist(tc);
    }
    if (!credit.zero()) budget_.give(credit);
    meta::destroy(tc);
    release_ref();
}

void pool_core::reclaim(bool force) noexcept {
    amount total{};
    {
        std::lock_guard lock(registry_mutex_);
        bool stranded = force;
        for (thread_cache* tc = caches_; tc != nullptr && !stranded; tc = tc->next_) {
            const amount a = tc->credit();
            stranded = a.bytes > 0 || a.blocks > 0;
        }
        if (!stranded) return;
        quiesce_locked([&](thread_cache& tc) { total = total + return_credit(&tc, {}); });
    }
    if (!total.zero()) budget_.give(total);
}

amount pool_core::reclaim_for(amount missing) noexcept {
    amount total{};
    std::lock_guard lock(registry_mutex_);
    // A look first (no barrier): quiesce only if the caches hold enough to cover what is
    // missing. The sum may be slightly stale; a quiesce that finds less merely refuses later.
    amount held{};
    for (const thread_cache* tc = caches_; tc != nullptr; tc = tc->next_)
        held = held + clamped(tc->credit());
    if (held.bytes < missing.bytes || held.blocks < missing.blocks || held.zero()) return {};
    quiesce_locked([&](thread_cache& tc) { total = total + return_credit(&tc, {}); });
    return total;
}

// Takes the cache's credit above `keep` out of it (the caller gives it to the budget).
amount pool_core::return_credit(thread_cache* tc, amount keep) noexcept {
    const amount have = tc->credit();
    const amount back = clamped(have - keep);
    tc->set_credit(have - back);
    return back;
}

// ---------------------------------------------------------------------------------------------
// Allocation
// ---------------------------------------------------------------------------------------------

wait_policy pool_core::policy_for(request_mode& mode) const noexcept {
    if (mode.policy) return *mode.policy;
    // The deadline and the wait's start come from one instant, so that a request that times out
    // reports at least the wait it was allowed.
    const auto now = steady::now();
    wait_policy wp{options_.on_exhaustion, steady::time_point::max(), now};
    std::chrono::nanoseconds budget_time = options_.backoff.max_elapsed;
    if (mode.what == request_mode::timed) {
        wp.policy = exhaustion::wait;
        budget_time = mode.timeout;
    }
    wp.deadline =
        now + std::min(budget_time, std::chrono::nanoseconds(std::chrono::hours(24 * 365)));
    scope_override(&wp.policy, &wp.deadline, mode.what == request_mode::timed);
    if (mode.what == request_mode::no_wait) wp.policy = exhaustion::fail;
    mode.policy = wp;
    return wp;
}

template <class F>
decltype(auto) pool_core::bounded(request_mode& mode, F&& f) {
    const wait_policy wp = policy_for(mode);
    if (wp.policy == exhaustion::fail) {
        const exhaustion_scope scope(exhaustion::fail, wp.deadline);
        return f();
    }
    const exhaustion_scope scope(wp.deadline);
    return f();
}

void pool_core::throw_refused(outcome o, std::size_t bytes, std::chrono::nanoseconds waited) const {
    throw capacity_exceeded(bytes, waited, budget_.capacity(), o == outcome::timed_out);
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

bool pool_core::paces(const request_mode& mode) const noexcept {
    // The soft threshold slows every request down, except those that promise not to be slowed:
    // try_allocate, and requests in an exhaustion_scope that asks to fail or bypass.
    if (mode.what == request_mode::no_wait) return false;
    if (mode.what == request_mode::timed) return true;
    exhaustion policy = exhaustion::wait;  // kept unless a scope sets one
    auto unused_deadline = steady::time_point::max();
    scope_override(&policy, &unused_deadline, false);
    return policy == exhaustion::wait || policy == exhaustion::overcommit;
}

// Makes sure the cache holds credit for `need`. Returns true if it does (possibly after a pause or
// a wait), inside the operation, so that the caller spends it before a quiescer could take it
// back; false with the outcome otherwise. Called inside an operation; may leave and re-enter it,
// but never while holding credit it has just been granted.
bool pool_core::take_credit(thread_cache* tc, amount need, std::size_t bytes, request_mode& mode,
                            outcome* result, std::chrono::nanoseconds* waited) {
    bool pace = paces(mode);
    for (;;) {
        const std::uint32_t f = flags_.load(std::memory_order_acquire);
        if ((f & flag_pressure) != 0) break;
        const amount have = tc->credit();
        if ((!pace || (f & flag_pacing) == 0) && have.bytes >= need.bytes &&
            have.blocks >= need.blocks)
            return true;
        amount granted{};
        std::chrono::nanoseconds pause{0};
        const budget::lease_result r = budget_.try_lease(need, true, pace, &granted, &pause);
        if (r == budget::lease_result::refused) break;
        if (r == budget::lease_result::leased) {
            tc->set_credit(have + granted);
            refresh_limits(tc);
            return true;
        }
        // Above the soft threshold: pause once, holding no new credit, then lease for real.
        tc->leave();
        std::this_thread::sleep_for(pause);
        enter(tc);
        pace = false;
    }
    // At the cap, or others wait: hand our own credit to the queue first (the oldest waiter may
    // need it), then wait our turn for exactly what this request needs.
    const amount mine = return_credit(tc, {});
    tc->leave();
    if (!mine.zero()) budget_.give(mine);
    *result = budget_.acquire(need, bytes, policy_for(mode), *this, waited);
    enter(tc);
    if (*result != outcome::granted && *result != outcome::overcommitted) return false;
    tc->set_credit(tc->credit() + need);
    return true;
}

amount pool_core::excess_credit(thread_cache* tc) noexcept {
    if ((flags_.load(std::memory_order_acquire) & (flag_pressure | flag_pacing)) != 0)
        return return_credit(tc, {});
    if (tc->credit().bytes > tc->hold_limit_) return return_credit(tc, budget_.lease());
    return {};
}

void* pool_core::allocate_cached(thread_cache* tc, unsigned c, std::size_t bytes,
                                 request_mode& mode) {
    const class_info& k = classes[c];
    enter(tc);
    outcome result = outcome::granted;
    std::chrono::nanoseconds waited{0};
    if (!take_credit(tc, amount_of(k), bytes, mode, &result, &waited)) {
        tc->leave();
        if (result == outcome::bypass) return allocate_bypass(c, k.size, k.align, mode);
        if (mode.what == request_mode::no_wait) return nullptr;
        throw_refused(result, bytes, waited);
    }
    if (tc->bin_of(c).head == nullptr) {
        tune(tc, c);
        try {
            tc->fill(c, bounded(mode, [&] {
                         return central_[c].take(k, transfer_batch(tc->bin_of(c), k), pages(),
                                                 totals_);
                     }));
        } catch (...) {
            // The credit stays with the cache unless others need it now; nothing else changed.
            const amount back = excess_credit(tc);
            tc->leave();
            if (!back.zero()) budget_.give(back);
            if (mode.what == request_mode::no_wait) return nullptr;
            throw;
        }
    }
    void* p = tc->pop(c);
    tc->set_credit(tc->credit() - amount_of(k));
    tc->leave();
    if (BPOOL_UNLIKELY(tc->wants_room_)) rebalance(tc);
    track::block_live(p, k.size);
    return p;
}

outcome pool_core::acquire_exact(amount need, std::size_t bytes, request_mode& mode,
                                 std::chrono::nanoseconds* waited) {
    // No cache to keep an extra lease in: exactly `need`, paced first above the soft threshold.
    for (bool pace = paces(mode);; pace = false) {
        amount granted{};
        std::chrono::nanoseconds pause{0};
        const budget::lease_result r = budget_.try_lease(need, false, pace, &granted, &pause);
        if (r == budget::lease_result::leased) return outcome::granted;
        if (r == budget::lease_result::refused) break;
        std::this_thread::sleep_for(pause);
    }
    return budget_.acquire(need, bytes, policy_for(mode), *this, waited);
}

void* pool_core::allocate_uncached(unsigned c, std::size_t bytes, request_mode& mode) {
    const class_info& k = classes[c];
    std::chrono::nanoseconds waited{0};
    const outcome o = acquire_exact(amount_of(k), bytes, mode, &waited);
    if (o == outcome::bypass) return allocate_bypass(c, k.size, k.align, mode);
    if (o != outcome::granted && o != outcome::overcommitted) {
        if (mode.what == request_mode::no_wait) return nullptr;
        throw_refused(o, bytes, waited);
    }
    block_list got;
    try {
        got = bounded(mode, [&] { return central_[c].take(k, 1, pages(), totals_); });
    } catch (...) {
        budget_.give(amount_of(k));
        if (mode.what == request_mode::no_wait) return nullptr;
        throw;
    }
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
    // unspent credit back before queueing at the cap), else straight from the budget.
    std::chrono::nanoseconds waited{0};
    outcome o = outcome::granted;
    thread_cache* tc = cache_for_thread();
    if (tc != nullptr) {
        enter(tc);
        if (take_credit(tc, need, bytes, mode, &o, &waited)) tc->set_credit(tc->credit() - need);
        tc->leave();
    } else {
        o = acquire_exact(need, bytes, mode, &waited);
    }
    // Every block is aligned to at least max_align_t, whatever upstream gives for less.
    alignment = std::max(alignment, alignof(std::max_align_t));
    if (o == outcome::bypass) return allocate_bypass(no_class, size, alignment, mode);
    if (o != outcome::granted && o != outcome::overcommitted) {
        if (mode.what == request_mode::no_wait) return nullptr;
        throw_refused(o, bytes, waited);
    }
    try {
        return bounded(mode,
                       [&] { return direct_.allocate(upstream_, map_, size, alignment, false); });
    } catch (...) {
        if (tc == nullptr) {
            budget_.give(need);
        } else {
            enter(tc);  // the credit goes back to the cache it came from, or to whoever needs it
            tc->set_credit(tc->credit() + need);
            const amount back = excess_credit(tc);
            tc->leave();
            if (!back.zero()) budget_.give(back);
        }
        if (mode.what == request_mode::no_wait) return nullptr;
        throw;
    }
}

void* pool_core::allocate_bypass(unsigned c, std::size_t size, std::size_t alignment,
                                 request_mode& mode) {
    if (c == no_class)
        return bounded(mode,
                       [&] { return direct_.allocate(upstream_, map_, size, alignment, true); });
    const class_info& k = classes[c];
    void* p = bounded(mode, [&] { return central_[c].take_bypass(k, pages(), totals_); });
    direct_.count_bypass(k.size, +1);
    track::block_live(p, k.size);
    return p;
}

// ---------------------------------------------------------------------------------------------
// Deallocation
// ---------------------------------------------------------------------------------------------

pool_core::located pool_core::locate(const void* p) const noexcept {
    const page_entry e = map_.find(p);
    switch (e.kind()) {
        case page_kind::chunk:
        case page_kind::bypass_chunk:
            if (is_chunk_block_start(e, classes[e.cls()], p)) return {e.kind(), e.cls(), nullptr};
            break;
        case page_kind::direct:
            if (direct_block* b = direct_blocks::find(map_, p)) return {e.kind(), 0, b};
            break;
        case page_kind::none:
            break;
    }
    return {};
}

void pool_core::deallocate(void* p) noexcept {
    // The pagemap says what `p` is; anything it does not know is not this pool's.
    const located b = locate(p);
    switch (b.kind) {
        case page_kind::chunk:
            if (thread_cache* tc = cache_for_thread())
                deallocate_cached(tc, b.cls, p);
            else
                deallocate_uncached(b.cls, p);
            return;
        case page_kind::bypass_chunk:
            return deallocate_bypass(b.cls, p);
        case page_kind::direct:
            return deallocate_direct(b.direct);
        case page_kind::none:
            break;
    }
    if (p != nullptr) report_foreign(p);
}

void pool_core::report_foreign(const void* p) const noexcept {
    const char* what =
        "another pool's or malloc's block, a stack or static address, or an "
        "interior pointer";
    switch (map_.find(p).kind()) {
        case page_kind::chunk:
        case page_kind::bypass_chunk:
            what = "an interior pointer of a pooled block";
            break;
        case page_kind::direct:
            what = "an interior pointer of a block served by upstream";
            break;
        case page_kind::none:
            break;
    }
    fatalf(__FILE__, __LINE__,
           "deallocate(%p): foreign pointer, not allocated by this pool (bpool::pool_resource "
           "%p): %s, or a block given back twice whose memory went back to upstream",
           p, resource_, what);
}

void pool_core::deallocate_direct(direct_block* b) noexcept {
    const amount cost{static_cast<std::int64_t>(b->size), 1};
    const bool bypass = b->bypass;
    direct_.deallocate(b, upstream_, map_);
    if (!bypass) budget_.give(cost);
}

void pool_core::deallocate_bypass(unsigned c, void* p) noexcept {
    const class_info& k = classes[c];
    track::block_idle(p, k.size);
    central_[c].put_bypass(p, k, pages(), totals_);
    direct_.count_bypass(k.size, -1);
}

std::size_t pool_core::put_central(unsigned c, block_list blocks) noexcept {
    const class_info& k = classes[c];
    // Idle memory stays under max_cached_bytes: what the thread caches have reserved of their
    // allowance counts against it too. (Bounding it by the live bytes as well, e.g. a quarter of
    // them plus 1 MiB, was measured: held/peak-live 1.44 -> 1.34 in the 8 B-64 KiB churn, but
    // 13.7 -> 19.7 ns/op there and 32 -> 38 us for pmr_map, as busy classes gave blocks back to
    // upstream because idle ones held the bound.)
    const auto reserved =
        static_cast<std::size_t>(cache_share_ - cache_room_.load(std::memory_order_relaxed));
    const bool over =
        totals_.idle_bytes.load(std::memory_order_relaxed) + reserved > options_.max_cached_bytes;
    return central_[c].put(k, blocks, over ? 0 : central_keep(k), pages(), totals_);
}

std::size_t pool_core::flush(thread_cache* tc, unsigned c, std::uint32_t n) noexcept {
    return put_central(c, tc->take_front(c, n));
}

// ---------------------------------------------------------------------------------------------
// Bin sizes (thread_cache.hpp): tuned at each refill and flush, reserved from the allowance
// ---------------------------------------------------------------------------------------------

void pool_core::tune(thread_cache* tc, unsigned c) noexcept {
    const class_info& k = classes[c];
    const bin& b = tc->bin_of(c);
    bin_tuning& t = tc->tuning_of(c);
    const std::uint64_t ops =
        b.allocs.load(std::memory_order_relaxed) + b.frees.load(std::memory_order_relaxed);
    // Each operation weighs its block size, but at most 4 KiB: caching a few large blocks a thread
    // reuses at once (a 1 MiB buffer taken and put back) is worth their room.
    t.moved = (3 * t.moved + (ops - t.mark) * std::min<std::uint64_t>(k.size, bin_weight_cap)) / 4;
    t.mark = ops;
    if (tc->reserved_ > fair_share() && b.limit > 0) {
        // More threads share the allowance than when this cache reserved its room: give some
        // back, a bin at a time as each is used.
        shrink_bin(tc, c, b.limit / 2);
    } else if (t.moved < bin_grow_bytes && b.limit < k.cache_limit) {
        grow_bin(tc, c, std::min<std::uint32_t>(k.cache_limit, std::max(2u, 2 * b.limit)));
    } else if (t.moved > bin_shrink_bytes && b.limit > 0) {
        shrink_bin(tc, c, b.limit / 2);
    }
}

bool pool_core::grow_bin(thread_cache* tc, unsigned c, std::uint32_t limit) noexcept {
    bin& b = tc->bin_of(c);
    const auto delta = static_cast<std::int64_t>(limit - b.limit) * classes[c].size;
    // Reserve first: the allowance is shared, and its total bounds every cache's idle bytes. One
    // cache takes at most an equal share of it, so that busy threads cannot starve the others.
    if (tc->reserved_ + delta > fair_share()) return false;
    std::int64_t room = cache_room_.load(std::memory_order_relaxed);
    do {
        if (room < delta) {
            // Others hold the allowance: if some cache registered since the last rebalance, the
            // older ones may hold more than their share now (and, busy on their fast paths,
            // never notice). Ask for a rebalance once this operation is over.
            tc->wants_room_ = registrations_.load(std::memory_order_relaxed) !=
                              rebalanced_at_.load(std::memory_order_relaxed);
            return false;
        }
    } while (!cache_room_.compare_exchange_weak(room, room - delta, std::memory_order_relaxed));
    b.limit = limit;
    tc->reserved_ += delta;
    return true;
}

void pool_core::rebalance(thread_cache* self) noexcept {
    self->wants_room_ = false;
    std::lock_guard lock(registry_mutex_);
    const std::uint64_t epoch = registrations_.load(std::memory_order_relaxed);
    if (epoch == rebalanced_at_.load(std::memory_order_relaxed)) return;  // another thread did it
    rebalanced_at_.store(epoch, std::memory_order_relaxed);
    const std::int64_t fair = fair_share();
    // Caches above their share halve their largest bins (by reserved bytes) until within it.
    quiesce_locked([&](thread_cache& tc) {
        while (tc.reserved_ > fair) {
            unsigned widest = 0;
            std::int64_t most = 0;
            for (unsigned c = 0; c < table_size; ++c) {
                const std::int64_t r = std::int64_t{tc.bin_of(c).limit} * classes[c].size;
                if (r > most) {
                    most = r;
                    widest = c;
                }
            }
            shrink_bin(&tc, widest, tc.bin_of(widest).limit / 2);
        }
    });
}

std::size_t pool_core::shrink_bin(thread_cache* tc, unsigned c, std::uint32_t limit) noexcept {
    bin& b = tc->bin_of(c);
    const auto delta = static_cast<std::int64_t>(b.limit - limit) * classes[c].size;
    // The room goes back before the blocks beyond the new limit go to the central list, so that
    // they are not counted twice against max_cached_bytes there.
    cache_room_.fetch_add(delta, std::memory_order_relaxed);
    tc->reserved_ -= delta;
    b.limit = limit;
    const std::uint32_t count = b.count.load(std::memory_order_relaxed);
    return count > limit ? flush(tc, c, count - limit) : 0;
}

std::size_t pool_core::release_bins(thread_cache* tc) noexcept {
    std::size_t released = 0;
    for (unsigned c = 0; c < table_size; ++c) {
        if (tc->bin_of(c).limit != 0) released += shrink_bin(tc, c, 0);
        tc->tuning_of(c) = bin_tuning{};
    }
    BPOOL_ASSERT(tc->reserved_ == 0);
    return released;
}

void pool_core::deallocate_cached(thread_cache* tc, unsigned c, void* p) noexcept {
    const class_info& k = classes[c];
    enter(tc);
    track::block_idle(p, k.size);
    bin& b = tc->bin_of(c);
    // While requests wait (or usage is above the soft threshold) the block goes where any thread
    // finds it, and excess_credit below hands its bytes and all of this cache's credit over now.
    bool to_central = (flags_.load(std::memory_order_acquire) & (flag_pressure | flag_pacing)) != 0;
    if (!to_central && b.count.load(std::memory_order_relaxed) >= b.limit) {
        tune(tc, c);
        const std::uint32_t count = b.count.load(std::memory_order_relaxed);
        if (count != 0 && count >= b.limit) flush(tc, c, transfer_batch(b, k));
        to_central = b.limit == 0;  // no room reserved for this class
    }
    if (to_central) {
        block_list one;
        one.push(p);
        put_central(c, one);
        bump(b.frees, std::uint64_t{1});
    } else {
        tc->push_freed(c, p);
    }
    tc->set_credit(tc->credit() + amount_of(k));
    const amount give_back = excess_credit(tc);
    tc->leave();
    if (!give_back.zero()) budget_.give(give_back);
    if (BPOOL_UNLIKELY(tc->wants_room_)) rebalance(tc);
}

void pool_core::deallocate_uncached(unsigned c, void* p) noexcept {
    const class_info& k = classes[c];
    track::block_idle(p, k.size);
    block_list one;
    one.push(p);
    put_central(c, one);
    retired_frees_[c].fetch_add(1, std::memory_order_relaxed);
    budget_.give(amount_of(k));
}

// ---------------------------------------------------------------------------------------------
// Checked build
// ---------------------------------------------------------------------------------------------

void pool_core::checked_allocated(void* p, std::size_t bytes, std::size_t alignment) noexcept {
    checked_.add(p, {bytes, alignment, block_size(bytes, alignment)});
}

void pool_core::checked_deallocating_unsized(void* p) noexcept {
    if (p == nullptr) return;
    live_record was;
    if (checked_.remove(p, 0, 0, &was) != free_verdict::ok) report_not_live(p);
}

void pool_core::report_not_live(const void* p) const noexcept {
    if (owns(p))
        fatalf(__FILE__, __LINE__, "deallocate(%p): double free (the block is not live)", p);
    report_foreign(p);
}

void pool_core::checked_deallocating(void* p, std::size_t bytes, std::size_t alignment) noexcept {
    if (p == nullptr) return;
    live_record was;
    const std::size_t block = block_size(bytes, alignment);
    if (block == 0) {
        fatalf(__FILE__, __LINE__,
               "deallocate(%p, %zu, %zu): that size and alignment select no block; wrong size or "
               "alignment",
               p, bytes, alignment);
    }
    switch (checked_.remove(p, block, alignment, &was)) {
        case free_verdict::ok:
            return;
        case free_verdict::wrong_size:
            fatalf(__FILE__, __LINE__,
                   "deallocate(%p, %zu, %zu): block was allocated as (%zu bytes, alignment %zu); "
                   "wrong size or alignment",
                   p, bytes, alignment, was.bytes, was.align);
        case free_verdict::not_live:
            break;
    }
    report_not_live(p);
}

std::size_t pool_core::usable_size(const void* p) const noexcept {
    const located b = locate(p);
    switch (b.kind) {
        case page_kind::chunk:
        case page_kind::bypass_chunk:
            return classes[b.cls].size;
        case page_kind::direct:
            return b.direct->size;
        case page_kind::none:
            break;
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// The rest of the public API
// ---------------------------------------------------------------------------------------------

std::size_t pool_core::block_size(std::size_t bytes, std::size_t alignment) const noexcept {
    if (!is_power_of_two(alignment)) return 0;
    const unsigned c = class_of(bytes, alignment);
    return c == no_class ? direct_size(bytes) : classes[c].size;
}

std::size_t pool_core::block_size_at_most(std::size_t limit, std::size_t alignment) const noexcept {
    if (!is_power_of_two(alignment)) return 0;
    // Every block size is a multiple of 16; a direct block is exactly its rounded request.
    const std::size_t s = limit & ~std::size_t{15};
    if (s < min_block_size) return 0;
    unsigned c = class_of(s, alignment);
    if (c == no_class) return s;
    // s is pooled, in class c (whose size may exceed s): the largest class no larger than s
    // among those that honour the alignment (class_for skips the others upwards).
    for (;; --c) {
        if (classes[c].size <= s && classes[c].align >= alignment) return classes[c].size;
        if (c == 0) return 0;
    }
}

std::size_t pool_core::headroom() const noexcept {
    const std::size_t cap = budget_.capacity();
    if (cap == 0) return SIZE_MAX;
    std::int64_t used = budget_.committed().bytes;
    if (const thread_cache* tc = find_cache(id_, gen_)) used -= tc->credit().bytes;
    const auto limit = static_cast<std::int64_t>(cap);
    return used >= limit ? 0 : static_cast<std::size_t>(limit - used);
}

pool_options pool_core::options() const {
    pool_options o = options_;
    o.capacity = budget_.capacity();
    o.max_live_blocks = budget_.max_live_blocks();
    return o;
}

amount pool_core::committed_live() const noexcept {
    // Read before the caches' credit is subtracted from it (registry lock held): credit leased in
    // between is subtracted without having been counted, so the result may be low for a moment,
    // never above what is committed (and so never above the capacity under `wait` and `fail`).
    const direct_counts d = direct_.counts();
    return budget_.committed() + amount{static_cast<std::int64_t>(d.bypass_bytes),
                                        static_cast<std::int64_t>(d.bypass_blocks)};
}

amount pool_core::live() const noexcept {
    amount live = committed_live();
    std::lock_guard lock(registry_mutex_);
    for (const thread_cache* tc = caches_; tc != nullptr; tc = tc->next_)
        live = live - tc->credit();
    return clamped(live);
}

std::size_t pool_core::live_bytes() const noexcept {
    return static_cast<std::size_t>(live().bytes);
}

std::size_t pool_core::live_blocks() const noexcept {
    return static_cast<std::size_t>(live().blocks);
}

pool_stats pool_core::stats() const {
    pool_stats s;
    // The totals come from the budget (bounded by the capacity even while other threads run);
    // the per-class figures from the caches' counters, which are each a little stale.
    amount live = committed_live();
    // A page-aligned twin counts with its size class (one entry per block size).
    s.classes.resize(largest_class_ + 1);
    auto entry = [&](unsigned c) -> size_class_stats* {
        const unsigned k = size_class_of(c);
        return k <= largest_class_ ? &s.classes[k] : nullptr;
    };
    std::size_t thread_cached = 0;
    {
        std::lock_guard lock(registry_mutex_);
        for (unsigned c = 0; c < table_size; ++c) {
            if (size_class_stats* k = entry(c)) {
                k->allocations += retired_allocs_[c].load(std::memory_order_relaxed);
                k->deallocations += retired_frees_[c].load(std::memory_order_relaxed);
            }
        }
        for (thread_cache* tc = caches_; tc != nullptr; tc = tc->next_) {
            for (unsigned c = 0; c < table_size; ++c) {
                const bin& b = tc->bin_of(c);
                if (size_class_stats* k = entry(c)) {
                    k->allocations += b.allocs.load(std::memory_order_relaxed);
                    k->deallocations += b.frees.load(std::memory_order_relaxed);
                }
            }
            thread_cached += tc->cached_bytes();
            live = live - tc->credit();
        }
    }
    live = clamped(live);
    s.live_bytes = static_cast<std::size_t>(live.bytes);
    s.live_blocks = static_cast<std::size_t>(live.blocks);
    for (unsigned c = 0; c <= largest_class_; ++c) {
        size_class_stats& k = s.classes[c];
        k.block_size = classes[c].size;
        // Counters of different threads are read at slightly different moments: a block freed on
        // one thread may be seen before its allocation on another. Clamp rather than wrap.
        k.live_blocks = k.allocations > k.deallocations
                            ? static_cast<std::size_t>(k.allocations - k.deallocations)
                            : 0;
        s.allocations += k.allocations;
        s.deallocations += k.deallocations;
    }
    const direct_counts d = direct_.counts();
    s.allocations += d.allocations;
    s.deallocations += d.deallocations;
    s.large_live_bytes = d.large_bytes;
    s.bypass_live_bytes = d.bypass_bytes;
    s.bypass_live_blocks = d.bypass_blocks;
    s.thread_cached_bytes = thread_cached;
    s.cached_bytes = thread_cached + totals_.idle_bytes.load(std::memory_order_relaxed);
    s.upstream_bytes = upstream_.held();
    s.unused_bytes =
        heap_.free_bytes() + totals_.unused_bytes.load(std::memory_order_relaxed) + d.slack_bytes;
    s.pagemap_bytes = map_.mapped_bytes();
    // Live bytes are always committed (or bypass blocks) and always inside memory held from
    // upstream: both peaks bound the peak of live bytes from above. The upstream peak is read
    // last, so that the bound holds against everything read before it.
    s.peak_upstream_bytes = upstream_.peak();
    s.peak_live_bytes =
        std::min(std::max(s.live_bytes, budget_.peak_committed() + d.bypass_peak_bytes),
                 s.peak_upstream_bytes);
    budget_.fill_stats(s);
    return s;
}

std::size_t pool_core::trim() {
    std::size_t released = 0;
    {
        std::lock_guard lock(registry_mutex_);
        // Every bin starts afresh: limit 0, its allowance back in the pool's share.
        quiesce_locked([&](thread_cache& tc) { released += release_bins(&tc); });
    }
    for (unsigned c = 0; c < table_size; ++c)
        released += central_[c].trim(classes[c], pages(), totals_);
    return released + heap_.release_spare();
}

void pool_core::set_limits(std::size_t bytes, std::size_t blocks) {
    std::lock_guard lock(registry_mutex_);
    budget_.set_limits(bytes, blocks);
    // Credit leased under the old limits may be more than the new ones allow: take it all back,
    // and give every cache the new lease size.
    amount reclaimed{};
    quiesce_locked([&](thread_cache& tc) {
        reclaimed = reclaimed + return_credit(&tc, {});
        refresh_limits(&tc);
    });
    budget_.give(reclaimed);
}

}  // namespace bpool::detail
