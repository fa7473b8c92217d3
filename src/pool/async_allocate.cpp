// The core's asynchronous allocation (pool_resource::async_allocate): a request that cannot be
// decided at once becomes a budget::async_request in the caller's memory_request, queued at the cap
// with the blocking requests; once it is granted, the async driver's thread serves the block from
// the credit it holds and runs the completion (budget/async_driver.hpp).
#include <algorithm>
#include <new>

#include "pool/async_op.hpp"
#include "pool/options.hpp"
#include "pool/pool_core.hpp"

namespace bpool::detail {

class pool_core::async_block final : public budget::async_request, public async_op {
  public:
    async_block(pool_core& core, memory_request& r, amount n, std::size_t bytes,
                std::size_t alignment, unsigned c, const wait_policy& wp) noexcept
        : budget::async_request(core.budget_, core, n, bytes, wp),
          core_(core),
          owner_(r),
          bytes_(bytes),
          alignment_(alignment),
          class_(c),
          need_(n) {}

    bool cancel() noexcept override { return budget::async_request::cancel(); }

    pool_core& core_;
    memory_request& owner_;
    const std::size_t bytes_;
    const std::size_t alignment_;
    const unsigned class_;
    const amount need_;

  private:
    void finished(outcome o) noexcept override { core_.deliver(*this, o); }
};

bool pool_core::async_allocate(memory_request& r, std::size_t bytes,
                               std::size_t alignment) noexcept {
    static_assert(sizeof(async_block) <= sizeof(memory_request::storage_) &&
                      alignof(async_block) <= alignof(std::max_align_t),
                  "memory_request's storage must hold the pool's record");
    // What fits now is served at once like try_allocate (the thread's cache first, no pacing).
    void* p =
        is_power_of_two(alignment) ? allocate(bytes, alignment, {request_mode::no_wait}) : nullptr;
    const unsigned c = is_power_of_two(alignment) ? class_of(bytes, alignment) : no_class;
    const std::size_t size = c == no_class ? direct_size(bytes) : classes[c].size;
    if (p != nullptr || !is_power_of_two(alignment) || size == 0 ||
        size > static_cast<std::size_t>(budget::unlimited)) {
        if (p != nullptr && track::checked) checked_allocated(p, bytes, alignment);
        r.on_complete(p, p != nullptr ? async_status::granted : async_status::failed);
        return true;
    }
    request_mode mode;
    const wait_policy wp = policy_for(mode);
    auto* b = ::new (static_cast<void*>(r.storage_))
        async_block(*this, r, {static_cast<std::int64_t>(size), 1}, bytes, alignment, c, wp);
    async_op::begin(r, b);
    std::optional<outcome> at_once;
    try {
        at_once = budget_.acquire_async(*b, wp);
    } catch (...) {
        at_once = outcome::refused;  // an on_pressure callback threw: nothing was taken
    }
    if (!at_once) return false;
    deliver(*b, *at_once);
    return true;
}

void pool_core::deliver(async_block& b, outcome o) noexcept {
    memory_request& r = b.owner_;
    const std::size_t bytes = b.bytes_;
    const std::size_t alignment = b.alignment_;
    const unsigned c = b.class_;
    const amount need = b.need_;
    // Retired first: from here on cancel() cannot reach the record, so it may go, and the
    // completion may start the request again.
    async_op::retire(r);
    b.~async_block();
    void* p = nullptr;
    async_status s = async_status::failed;
    // Upstream is asked under `fail`: the driver's thread, which serves every async request of
    // the process, must never wait for another pool's cap.
    request_mode no_wait{request_mode::no_wait};
    switch (o) {
        case outcome::granted:
        case outcome::overcommitted:
            try {
                p = serve_granted(c, bytes, alignment, no_wait);
            } catch (const capacity_exceeded&) {
                budget_.give(need);  // a pool whose capacity covers what it holds is full
                s = async_status::refused;
            } catch (...) {
                budget_.give(need);
            }
            break;
        case outcome::bypass:
            try {
                p = allocate_bypass(c, c == no_class ? direct_size(bytes) : classes[c].size,
                                    c == no_class ? std::max(alignment, alignof(std::max_align_t))
                                                  : classes[c].align,
                                    no_wait);
            } catch (...) {
                p = nullptr;
            }
            break;
        case outcome::refused:
            s = async_status::refused;
            break;
        case outcome::timed_out:
            s = async_status::timed_out;
            break;
        case outcome::cancelled:
            s = async_status::cancelled;
            break;
    }
    if (p != nullptr) {
        s = async_status::granted;
        if constexpr (track::checked) checked_allocated(p, bytes, alignment);
    }
    r.on_complete(p, s);
}

}  // namespace bpool::detail
