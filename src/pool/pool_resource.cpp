// Layer 8: bpool::pool_resource. The allocation and deallocation fast paths live here, inline in
// do_allocate/do_deallocate: for an allocation size -> class (one load from a byte table), for a
// deallocation address -> class (the pagemap: two dependent loads, and a multiply that tells a
// block start from an interior pointer), then this thread's cache (two TLS loads) and one pop or
// push (thread_cache.hpp). Everything else is a call into the core's slow paths.
#include <stdexcept>

#include <bpool/pool_resource.hpp>

#include "pool/options.hpp"
#include "pool/pool_core.hpp"

namespace bpool {

using detail::pool_core;

namespace {

// The allocation fast path (its budget is in thread_cache.hpp): a block from this thread's cache,
// or nullptr, and the caller takes the slow path. It only spends credit the cache already holds,
// so it suits every request mode, try_allocate's included.
BPOOL_INLINE void* pop_cached(pool_core& core, std::size_t bytes, std::size_t alignment) noexcept {
    if (BPOOL_LIKELY(bytes <= core.largest_size_ && detail::is_fast_alignment(alignment)))
        if (detail::thread_cache* tc = detail::find_cache(core.id_, core.gen_))
            return tc->try_pop(core.flags_, detail::size_to_class(bytes));
    return nullptr;
}

// The deallocation fast path: the pagemap gives the block's class, whatever size the caller
// passed (so a sized free with a wrong size that the checked build would report is still handled
// as the block it is). A block start of a chunk of this pool is pushed: found by its offset in a
// page-aligned chunk, or (off the common path) as the start, recorded in the entry, of a
// single-block chunk aligned to 16 B. Anything else (a direct or bypass block, a foreign or
// interior pointer, nullptr) takes the slow path, which tells them apart.
BPOOL_INLINE bool push_cached(pool_core& core, void* p) noexcept {
    const detail::page_entry e = core.map_.find(p);
    const unsigned c = e.cls();
    bool start;
    if (BPOOL_LIKELY(e.aligned_chunk()))
        start = detail::classes[c].is_block_start(e.chunk_offset(p));
    else
        start = e.base_chunk() && e.starts_at(p);
    if (BPOOL_LIKELY(start))
        if (detail::thread_cache* tc = detail::find_cache(core.id_, core.gen_))
            return tc->try_push(core.flags_, c, p);
    return false;
}

}  // namespace

pool_resource::pool_resource() : pool_resource(pool_options{}) {}

pool_resource::pool_resource(const pool_options& options, std::pmr::memory_resource* upstream) {
    if (upstream == nullptr) throw std::invalid_argument("bpool: upstream resource is null");
    core_ = pool_core::create(detail::normalize(options), upstream, this);
}

pool_resource::~pool_resource() {
    core_->shutdown();
}

void* pool_resource::do_allocate(std::size_t bytes, std::size_t alignment) {
    pool_core& core = *core_;
    void* p = pop_cached(core, bytes, alignment);
    if (BPOOL_UNLIKELY(p == nullptr)) p = core.allocate(bytes, alignment, {});
    if constexpr (detail::track::checked) {
        detail::note_allocation_caller(__builtin_return_address(0));
        core.checked_allocated(p, bytes, alignment);
    }
    return p;
}

void pool_resource::do_deallocate(void* p, std::size_t bytes, std::size_t alignment) {
    pool_core& core = *core_;
    if constexpr (detail::track::checked) core.checked_deallocating(p, bytes, alignment);
    if (BPOOL_UNLIKELY(!push_cached(core, p))) core.deallocate(p);  // nullptr: a no-op there
}

void pool_resource::deallocate_unsized(void* p) {
    pool_core& core = *core_;
    if constexpr (detail::track::checked) core.checked_deallocating_unsized(p);
    if (BPOOL_UNLIKELY(!push_cached(core, p))) core.deallocate(p);
}

std::size_t pool_resource::usable_size(const void* p) const noexcept {
    return core_->usable_size(p);
}

bool pool_resource::owns(const void* p) const noexcept {
    return core_->owns(p);
}

bool pool_resource::do_is_equal(const std::pmr::memory_resource& other) const noexcept {
    return this == &other;
}

void* pool_resource::try_allocate(std::size_t bytes, std::size_t alignment) noexcept {
    try {
        void* p = pop_cached(*core_, bytes, alignment);
        if (BPOOL_UNLIKELY(p == nullptr))
            p = core_->allocate(bytes, alignment, {detail::request_mode::no_wait, {}});
        if constexpr (detail::track::checked) {
            if (p != nullptr) {
                detail::note_allocation_caller(__builtin_return_address(0));
                core_->checked_allocated(p, bytes, alignment);
            }
        }
        return p;
    } catch (...) {  // upstream failures, and whatever a custom upstream throws
        return nullptr;
    }
}

allocation_result pool_resource::allocate_at_least(std::size_t min, std::size_t preferred,
                                                   std::size_t alignment) {
    const std::size_t low = block_size(min, alignment);  // 0: allocate(min) below throws
    const std::size_t high = preferred > min ? block_size(preferred, alignment) : 0;
    if (low != 0 && high > low) {
        if (void* p = try_allocate(high, alignment)) return {p, high};
        // Measured after the refusal, which gave this thread's unspent credit back to the budget.
        const std::size_t room = core_->headroom();
        // Half of what is left above `low`: a lone growing container then reaches the largest
        // size growth can reach (the old block and the new one together fill the capacity) in
        // one more step, and containers growing side by side each leave the others room.
        if (room > low) {
            const std::size_t step = core_->block_size_at_most(low + (room - low) / 2, alignment);
            if (step > low && step < high)
                if (void* p = try_allocate(step, alignment)) return {p, step};
        }
    }
    // What allocate(min) gives is a block of `low` bytes, bypass and direct blocks included.
    return {allocate(min, alignment), low};
}

void* pool_resource::allocate_for(std::size_t bytes, std::size_t alignment,
                                  std::chrono::nanoseconds timeout) {
    void* p = pop_cached(*core_, bytes, alignment);
    if (BPOOL_UNLIKELY(p == nullptr))
        p = core_->allocate(bytes, alignment, {detail::request_mode::timed, timeout});
    if constexpr (detail::track::checked) {
        detail::note_allocation_caller(__builtin_return_address(0));
        core_->checked_allocated(p, bytes, alignment);
    }
    return p;
}

pool_options pool_resource::options() const {
    return core_->options();
}
std::pmr::memory_resource* pool_resource::upstream_resource() const noexcept {
    return core_->upstream();
}
pool_stats pool_resource::stats() const {
    return core_->stats();
}
std::size_t pool_resource::live_bytes() const noexcept {
    return core_->live_bytes();
}
std::size_t pool_resource::live_blocks() const noexcept {
    return core_->live_blocks();
}
std::size_t pool_resource::trim() {
    return core_->trim();
}
std::size_t pool_resource::block_size(std::size_t bytes, std::size_t alignment) const noexcept {
    return core_->block_size(bytes, alignment);
}
void pool_resource::set_capacity(std::size_t bytes) {
    core_->set_limits(bytes, core_->max_live_blocks());
}
void pool_resource::set_max_live_blocks(std::size_t blocks) {
    core_->set_limits(core_->capacity(), blocks);
}
std::size_t pool_resource::capacity() const noexcept {
    return core_->capacity();
}
std::size_t pool_resource::max_live_blocks() const noexcept {
    return core_->max_live_blocks();
}

allocation_result allocate_at_least(std::pmr::memory_resource& resource, std::size_t min,
                                    std::size_t preferred, std::size_t alignment) {
    // pool_resource is final: the cast is a type check.
    if (auto* pool = dynamic_cast<pool_resource*>(&resource))
        return pool->allocate_at_least(min, preferred, alignment);
    if (preferred > min) {
        try {
            return {resource.allocate(preferred, alignment), preferred};
        } catch (...) {  // any failure: the request for `min` below reports its own
        }
    }
    return {resource.allocate(min, alignment), min};
}

}  // namespace bpool
