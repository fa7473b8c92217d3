#include "budget/stall_report.hpp"

#include <cxxabi.h>

namespace bpool::detail {

stall_reporter::stall_reporter(const pool_options& options)
    : stall_warning_(options.stall_warning),
      on_stall_(options.on_stall),
      on_pressure_(options.on_pressure) {}

steady::time_point stall_reporter::warn_at(steady::time_point start) const noexcept {
    return stall_warning_.count() > 0 ? start + stall_warning_ : steady::time_point::max();
}

template <class Event>
void stall_reporter::call(const std::function<void(const Event&)>& f, const Event& e) {
    // A callback that throws loses its report, nothing else. Only a thread's cancellation goes on
    // (it must: glibc aborts a cancellation that is swallowed); the queue survives it, as a queued
    // waiter's guard unlinks it on the way out.
    try {
        f(e);
    } catch (const abi::__forced_unwind&) {
        throw;
    } catch (...) {
    }
}

void stall_reporter::report(stall_event::kind what, std::size_t requested,
                            std::chrono::nanoseconds waited, std::size_t capacity) const {
    if (on_stall_) call(on_stall_, stall_event{what, requested, waited, live(), capacity});
}

void stall_reporter::pressure(pressure_event::level what, std::size_t requested,
                              std::size_t capacity) const {
    if (on_pressure_) call(on_pressure_, pressure_event{what, requested, live(), capacity});
}

}  // namespace bpool::detail
