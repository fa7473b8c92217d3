// The core's life, its thread caches and its central lists (see pool_core.hpp for the other
// files).
#include "pool/pool_core.hpp"

#include <algorithm>
#include <new>

#include "meta/meta.hpp"

namespace bpool::detail {

namespace {

// Blocks a central list keeps before giving the rest back to chunks (or upstream); either way
// the pool's idle bytes stay under max_cached_bytes (put_blocks). A multi-block class keeps a few
// batches: the rest refills its chunks, which then go back whole. A single-block class is bounded
// by max_cached_bytes alone: giving its blocks straight back to upstream only to take them again
// made a capped burst churn malloc (docs/decisions.md, "single-block classes in the central
// list").
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
    const std::uint32_t id = acquire_pool_id();
    try {
        void* memory = meta::allocate(sizeof(pool_core));
        if (memory == nullptr) throw std::bad_alloc();
        pool_core* core;
        try {
            core = ::new (memory) pool_core(options, upstream, id, resource);
        } catch (...) {
            meta::deallocate(memory, sizeof(pool_core));
            throw;
        }
        list_pool(core);
        return core;
    } catch (...) {
        release_pool_id(id);
        throw;
    }
}

pool_core::pool_core(const pool_options& options, std::pmr::memory_resource* upstream,
                     std::uint32_t id, const void* resource)
    : id_(id),
      slot_key_(slot_key(id)),
      largest_size_(options.largest_pooled_block),
      options_(options),
      upstream_(upstream),
      largest_class_(size_to_class(options.largest_pooled_block)),
      budget_(flags_, options_),
      resource_(resource),
      allowance_(static_cast<std::int64_t>(options_.max_cached_bytes / 2)) {
    if (!heavy_barrier_available) flags_.fetch_or(flag_fenced, std::memory_order_relaxed);
    map_.init();
    budget_.set_limits(options.capacity, options.max_live_blocks);
    if (options.capacity_covers == capacity_scope::held) upstream_.set_limit(options.capacity);
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
    // First: async requests still waiting complete (cancelled) while everything they might touch
    // is intact, and the async driver lets go of the budget.
    budget_.close();
    unlist_pool(this);
    // Unlist every cache. Their owners still hold references and free them later; their bins
    // point into chunks that are about to go and are never read again (see the protocol).
    registry_.clear();
    // A thread that unlisted its cache before the clear may still be giving its blocks back to
    // the central lists and the page heap, outside every lock: wait for it. Any later exit finds
    // its cache unlisted and touches nothing but its own reference.
    for (std::uint32_t n; (n = detaching_.load(std::memory_order_acquire)) != 0;)
        detaching_.wait(n, std::memory_order_acquire);
    checked_.report_leaks();
    for (unsigned c = 0; c < table_size; ++c)
        central_[c].destroy();
    heap_.destroy();
    direct_.destroy(upstream_);
    map_.destroy();
    BPOOL_ASSERT(upstream_.held() == 0);
    release_pool_id(id_);
    release_ref();
}

// ---------------------------------------------------------------------------------------------
// Thread caches: creation, exit, what their operations leave behind
// ---------------------------------------------------------------------------------------------

thread_cache* pool_core::cache_for_thread() noexcept {
    if (thread_cache* tc = own_cache()) return tc;
    thread_cache** slot = slot_for(id_);
    if (slot == nullptr) return nullptr;
    // Left by a destroyed pool that had the same id.
    if (thread_cache* stale = take_slot(*slot)) stale->owner()->detach(stale);
    void* memory = meta::allocate(sizeof(thread_cache));
    if (memory == nullptr) return nullptr;
    auto* tc = ::new (memory) thread_cache(this);
    refs_.fetch_add(1, std::memory_order_relaxed);
    // Under the registry lock: set_limits changes the lease size under it.
    registry_.add(tc, [&](thread_cache& t) { refresh_limits(&t); });
    *slot = tc;
    return tc;
}

amount pool_core::unlist(thread_cache* tc, retired_chunks& out) noexcept {
    for (unsigned c = 0; c < table_size; ++c) {
        const bin_counts n = tc->counts(c);
        retired_allocs_[c].fetch_add(n.allocs);
        retired_frees_[c].fetch_add(n.frees);
    }
    allowance_.release_bins(*tc, *this, out);
    const amount credit = return_credit(tc, {});
    registry_.remove_locked(tc);
    return credit;
}

void pool_core::detach(thread_cache* tc) noexcept {
    amount credit{};
    retired_chunks retired;
    bool listed;
    {
        std::lock_guard lock(registry_.mutex());
        listed = cache_registry::listed(tc);
        if (listed) {
            credit = unlist(tc, retired);
            // Under the lock, so that a shutdown that clears the registry after it waits for it.
            detaching_.fetch_add(1, std::memory_order_relaxed);
        }
    }
    if (listed) {
        if (!credit.zero()) budget_.give(credit);
        release(retired);
        // release: what this thread did to the heap happens before shutdown destroys it. The
        // core outlives the notify: this cache's reference is dropped below.
        if (detaching_.fetch_sub(1, std::memory_order_release) == 1) detaching_.notify_all();
    }
    meta::destroy(tc);
    release_ref();
}

void pool_core::finish(thread_cache* tc, retired_chunks& retired) noexcept {
    release(retired);
    if (BPOOL_UNLIKELY(tc->wants_room())) {
        allowance_.rebalance(*tc, registry_, *this, retired);
        release(retired);
    }
}

amount pool_core::reclaim_for(amount missing) noexcept {
    amount total{};
    std::lock_guard lock(registry_.mutex());
    // A look first (no barrier): quiesce only if the caches hold enough to cover what is
    // missing, and then only those that hold credit. The sum may be slightly stale; a quiesce
    // that finds less merely refuses later, and a waiter looks again at its next step.
    amount held{};
    registry_.each([&](const thread_cache& tc) { held = held + clamped(tc.credit()); });
    if (held.bytes < missing.bytes || held.blocks < missing.blocks || held.zero()) return {};
    registry_.quiesce_locked(
        [](const thread_cache& tc) {
            const amount a = tc.credit();
            return a.bytes > 0 || a.blocks > 0;
        },
        [&](thread_cache& tc) { total = total + return_credit(&tc, {}); });
    return total;
}

// ---------------------------------------------------------------------------------------------
// The central lists
// ---------------------------------------------------------------------------------------------

void pool_core::put_blocks(unsigned c, block_list blocks, retired_chunks& out) noexcept {
    const class_info& k = classes[c];
    // Idle memory stays under max_cached_bytes: what the thread caches have reserved of their
    // allowance counts against it too. (Bounding it by the live bytes as well cost busy classes
    // their blocks while idle ones held the bound: docs/decisions.md.)
    const auto reserved = static_cast<std::size_t>(allowance_.reserved());
    const bool over =
        totals_.idle_bytes.load(std::memory_order_relaxed) + reserved > options_.max_cached_bytes;
    central_[c].put(k, blocks, over ? 0 : central_keep(k), map_, totals_, out);
}

}  // namespace bpool::detail
