// Layer 8: bpool::pool_resource. The allocation and deallocation fast paths are inline in
// do_allocate/do_deallocate (pool_core::pop_cached / push_cached): for an allocation size -> class
// (one load from a byte table), for a deallocation address -> class (the pagemap: two dependent
// loads, and a multiply that tells a block start from an interior pointer), then this thread's
// cache (one TLS load, and its owner tested) and one pop or push (thread_cache.hpp). Everything
// else is a tail call into the core's slow paths.
#include <stdexcept>

#include <bpool/pool_resource.hpp>

#include "pool/options.hpp"
#include "pool/pool_core.hpp"

namespace bpool {

using detail::pool_core;

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
    void* p = core.pop_cached(bytes, alignment);
    if constexpr (detail::track::checked) {
        if (p == nullptr) p = core.allocate_normal(bytes, alignment);
        detail::note_allocation_caller(__builtin_return_address(0));
        core.checked_allocated(p, bytes, alignment);
        return p;
    }
    if (BPOOL_LIKELY(p != nullptr)) return p;
    return core.allocate_normal(bytes, alignment);  // a tail call
}

void pool_resource::do_deallocate(void* p, std::size_t bytes, std::size_t alignment) {
    pool_core& core = *core_;
    if constexpr (detail::track::checked) core.checked_deallocating(p, bytes, alignment);
    if (BPOOL_LIKELY(core.push_cached(p))) return;
    core.deallocate_normal(p);  // a tail call; nullptr: a no-op there
}

void pool_resource::deallocate_unsized(void* p) {
    pool_core& core = *core_;
    if constexpr (detail::track::checked) core.checked_deallocating_unsized(p);
    if (BPOOL_LIKELY(core.push_cached(p))) return;
    core.deallocate_normal(p);
}

bool pool_resource::async_allocate(memory_request& r, std::size_t bytes,
                                   std::size_t alignment) noexcept {
    return core_->async_allocate(r, bytes, alignment);
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
        void* p = core_->pop_cached<true>(bytes, alignment);
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
    void* p = core_->pop_cached<true>(bytes, alignment);
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
