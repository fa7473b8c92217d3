#include "budget/stall_report.hpp"

#include <cxxabi.h>

namespace bpool::detail {

stall_reporter::stall_reporter(const pool_options& options)
    : stall_warning_(options.stall_warning), on_stall_(options.on_stall) {}

steady::time_point stall_reporter::warn_at(steady::time_point start) const noexcept {
    return stall_warning_.count() > 0 ? start + stall_warning_ : steady::time_point::max();
}

void stall_reporter::report(stall_event::kind what, std::size_t requested,
                            std::chrono::nanoseconds waited, std::size_t capacity) const {
    if (!on_stall_) return;
    const stall_event e{what, requested, waited,
                        live_reader_ != nullptr ? live_reader_(live_ctx_) : 0, capacity};
    // A logging callback that throws loses its report, nothing else. Only a thread's cancellation
    // goes on (it must: glibc aborts a cancellation that is swallowed); the queue survives it, as
    // a queued waiter's guard unlinks it on the way out.
    try {
        on_stall_(e);
    } catch (const abi::__forced_unwind&) {
        throw;
    } catch (...) {
    }
}

}  // namespace bpool::detail
