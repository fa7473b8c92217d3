// Layer 9: buffer_pool::async_get. A checkout in two waits, each asynchronous: a live slot at the
// live-buffer cap (the pool's fifo_semaphore, in arrival order with the blocking get()s), then the
// buffer's storage at the memory capacity (pool_resource::async_allocate). The record, in the
// caller's buffer_request, is both waits' record.
//
// Cancellation: the record's mutex orders cancel() against the moves between the phases. cancel()
// marks the record, then cancels the wait in progress; a phase that ends after the mark (its wait
// could no longer be cancelled) sees it and ends the checkout as cancelled, giving back what it
// got. So cancel() returns true exactly when the request will complete as cancelled.
#include <new>
#include <utility>

#include <bpool/buffer_pool.hpp>
#include <bpool/pool_resource.hpp>

#include "buffer/buffer_pool_core.hpp"
#include "pool/async_op.hpp"

namespace bpool {

using detail::buffer_pool_core;
using detail::fifo_semaphore;

class buffer_pool::async_checkout final : public fifo_semaphore::async_waiter,
                                          public detail::async_op,
                                          public memory_request,
                                          public buffer_pool_core::pending_checkout {
  public:
    enum class phase : unsigned char { slot, starting, memory, done };

    async_checkout(buffer_pool_core& core, buffer_request& owner, const detail::wait_terms& terms,
                   phase first) noexcept
        : async_waiter({0, 1}, terms, core.slot_hooks()),
          core_(core),
          owner_(owner),
          phase_(first) {}

    bool cancel() noexcept override {
        const std::lock_guard lock(mutex_);
        switch (phase_) {
            case phase::done:
                return false;
            case phase::slot:
                cancelled_ = true;
                core_.slots().cancel(
                    *this);  // if it was granted already, start_memory sees the mark
                return true;
            case phase::starting:
                cancelled_ = true;
                return true;
            case phase::memory:
                cancelled_ = true;
                memory_request::cancel();  // if it was served already, on_complete sees the mark
                return true;
        }
        return false;
    }
    bool cancel_checkout() noexcept override { return cancel(); }

    /// The memory phase: the buffer's storage from the resource. Returns whether the checkout
    /// completed before this returned.
    bool start_memory() noexcept {
        const std::size_t reserve = core_.options().default_capacity;
        const std::size_t block = reserve > buffer::max_size()
                                      ? 0
                                      : core_.resource().block_size(reserve, buffer::alignment);
        std::unique_lock lock(mutex_);
        if (cancelled_ || reserve == 0 || block == 0) {
            phase_ = phase::done;
            const bool was_cancelled = cancelled_;
            lock.unlock();  // before finish destroys the mutex with the record
            if (was_cancelled || block == 0) {
                core_.abandon(true);
                finish({}, was_cancelled ? async_status::cancelled : async_status::failed);
            } else {
                finish(checked_out(core_, true, nullptr, 0), async_status::granted);
            }
            return true;
        }
        phase_ = phase::memory;
        block_ = block;
        lock.unlock();
        return core_.resource().async_allocate(*this, block, buffer::alignment);
    }

    /// The slot phase ended with a slot: on to the memory phase. Returns whether the checkout
    /// completed before this returned.
    bool slot_granted() noexcept {
        {
            const std::lock_guard lock(mutex_);
            phase_ = phase::starting;
        }
        return start_memory();
    }

  private:
    // The slot phase ended (on the driver's thread, or in the pool's destructor).
    void completed(fifo_semaphore::wait_result r) noexcept override {
        switch (r) {
            case fifo_semaphore::wait_result::granted:
            case fifo_semaphore::wait_result::overcommitted:
                slot_granted();
                return;
            case fifo_semaphore::wait_result::refused:
                return end_without(async_status::refused);
            case fifo_semaphore::wait_result::timed_out:
                return end_without(async_status::timed_out);
            case fifo_semaphore::wait_result::cancelled:
                return end_without(async_status::cancelled);
        }
    }

    // The memory phase ended.
    void on_complete(void* p, async_status s) noexcept override {
        bool was_cancelled;
        {
            const std::lock_guard lock(mutex_);
            phase_ = phase::done;
            was_cancelled = cancelled_;
        }
        if (s == async_status::granted && was_cancelled) {
            core_.resource().deallocate(p, block_, buffer::alignment);
            s = async_status::cancelled;
        }
        if (s == async_status::granted) return finish(checked_out(core_, true, p, block_), s);
        core_.abandon(true);
        finish({}, s);
    }

    void end_without(async_status s) noexcept {
        {
            const std::lock_guard lock(mutex_);
            phase_ = phase::done;
        }
        finish({}, s);
    }

    // Last: the record is destroyed, then the request completes (it may start again).
    // The pool's destructor waits for the completion to return (unless the completion is the
    // one destroying it).
    void finish(buffer b, async_status s) noexcept {
        buffer_request& owner = owner_;
        buffer_pool_core& core = core_;
        core.unlist(this);
        async_op::retire(owner);
        this->~async_checkout();
        core.run_completion([&] { buffer_pool::complete(owner, std::move(b), s); });
    }

    buffer_pool_core& core_;
    buffer_request& owner_;
    std::mutex mutex_;  // orders cancel() against the phases' ends
    phase phase_;
    bool cancelled_ = false;
    std::size_t block_ = 0;
};

bool buffer_pool::async_get(buffer_request& r) noexcept {
    static_assert(sizeof(async_checkout) <= sizeof(buffer_request::storage_) &&
                      alignof(async_checkout) <= alignof(std::max_align_t),
                  "buffer_request's storage must hold the pool's record");
    buffer_pool_core& core = *core_;
    const buffer_pool_core::slot_terms t = core.terms_now();
    constexpr detail::amount one{0, 1};
    const bool at_once = t.policy == exhaustion::fail || t.policy == exhaustion::bypass;
    if (at_once && core.slots().try_take(one) != fifo_semaphore::take_result::taken) {
        if (t.policy == exhaustion::fail) {
            complete(r, {}, async_status::refused);
            return true;
        }
        // Bypass: storage from upstream, outside the resource and its capacity, as get() does.
        buffer out({core.resource().upstream_resource(), nullptr, nullptr, true, false});
        try {
            const std::size_t reserve = core.options().default_capacity;
            if (reserve > 0) out.grow(reserve, false, {}, true);
        } catch (...) {
            complete(r, {}, async_status::failed);
            return true;
        }
        out.bind_.home = &core;
        core.counted();
        complete(r, std::move(out), async_status::granted);
        return true;
    }
    auto* record = ::new (static_cast<void*>(r.storage_)) async_checkout(
        core, r, t.terms, at_once ? async_checkout::phase::starting : async_checkout::phase::slot);
    detail::async_op::begin(r, record);
    core.list(record);
    if (at_once) return record->start_memory();
    const std::optional<fifo_semaphore::wait_result> ended = core.slots().wait_async(*record);
    if (!ended) return false;
    if (*ended == fifo_semaphore::wait_result::granted ||
        *ended == fifo_semaphore::wait_result::overcommitted)
        return record->slot_granted();
    static_cast<fifo_semaphore::async_waiter*>(record)->completed(*ended);
    return true;
}

buffer buffer_pool::checked_out(buffer_pool_core& core, bool slot, void* p,
                                std::size_t block) noexcept {
    buffer out = slot
                     ? slotted(core)
                     : buffer({core.resource().upstream_resource(), nullptr, nullptr, true, false});
    if (p != nullptr) out.adopt_storage(p, block);
    out.bind_.home = &core;
    core.counted();
    return out;
}

void buffer_pool::complete(buffer_request& r, buffer b, async_status s) noexcept {
    r.on_complete(std::move(b), s);
}

}  // namespace bpool
