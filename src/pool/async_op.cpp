#include "pool/async_op.hpp"

#include <thread>

#include "base/check.hpp"
#include "base/track.hpp"

namespace bpool {

using detail::async_op;

void async_op::retire(async_request& r) noexcept {
    r.op_.store(nullptr, std::memory_order_seq_cst);
    // A cancel() that read the record before it was cleared is a few instructions from done.
    while (r.cancelling_.load(std::memory_order_seq_cst) != 0)
        std::this_thread::yield();
    r.pending_.store(false, std::memory_order_release);
}

bool async_request::cancel() noexcept {
    cancelling_.fetch_add(1, std::memory_order_seq_cst);
    async_op* op = op_.load(std::memory_order_seq_cst);
    const bool cancelled = op != nullptr && op->cancel();
    cancelling_.fetch_sub(1, std::memory_order_release);
    return cancelled;
}

async_request::~async_request() {
    if constexpr (detail::track::checked) {
        if (pending())
            detail::fatal(__FILE__, __LINE__,
                          "async_request destroyed while pending: cancel it and wait for its "
                          "completion first");
    }
}

const char* to_string(async_status s) noexcept {
    switch (s) {
        case async_status::granted:
            return "granted";
        case async_status::refused:
            return "refused";
        case async_status::timed_out:
            return "timed_out";
        case async_status::cancelled:
            return "cancelled";
        case async_status::failed:
            return "failed";
    }
    return "unknown";
}

}  // namespace bpool
