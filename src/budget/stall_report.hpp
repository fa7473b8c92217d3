// Layer 7: stall and pressure reports, the pool's callbacks on the events at its cap, each called
// on the requesting thread with no lock held: on_stall once when a request has waited longer than
// stall_warning and again when it times out, so that a thread that holds most of the cap and then
// waits on it is logged instead of hanging silently; on_pressure when usage crosses the soft
// threshold and before a request waits, so that the application can give memory back first.
//
// Thread safety: report() may be called from any thread; set_live_reader only before the pool is
// shared (the pool's constructor).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>

#include <bpool/pool_options.hpp>

#include "budget/fifo_semaphore.hpp"

namespace bpool::detail {

class stall_reporter {
  public:
    /// Reads the pool's live bytes for a report, from the context given with it.
    using live_reader = std::size_t (*)(const void*) noexcept;

    /// Effects: reports through `options.on_stall` (none if it is empty) after
    /// `options.stall_warning` (0: no stall reports, timeouts are still reported).
    /// Throws std::bad_alloc if copying `options.on_stall` does.
    explicit stall_reporter(const pool_options& options);

    /// Returns: when a wait measured from `start` is reported as stalled (time_point::max():
    /// never).
    [[nodiscard]] steady::time_point warn_at(steady::time_point start) const noexcept;
    /// Effects: calls on_stall, if there is one, with `what`, the request's size `requested`,
    /// `waited`, the live bytes and `capacity`. A callback that throws loses its report, and the
    /// exception goes no further, except a thread's cancellation, which goes on.
    void report(stall_event::kind what, std::size_t requested, std::chrono::nanoseconds waited,
                std::size_t capacity) const;
    /// Returns whether there is an on_pressure callback.
    [[nodiscard]] bool reports_pressure() const noexcept { return static_cast<bool>(on_pressure_); }
    /// Effects: calls on_pressure, if there is one, with `what`, `requested`, the live bytes and
    /// `capacity`; an exception it throws is ignored, as report()'s.
    void pressure(pressure_event::level what, std::size_t requested, std::size_t capacity) const;
    /// Effects: the live bytes of reports are read by `f(ctx)` from now on (0 until then).
    void set_live_reader(live_reader f, const void* ctx) noexcept {
        live_reader_ = f;
        live_ctx_ = ctx;
    }

  private:
    [[nodiscard]] std::size_t live() const noexcept {
        return live_reader_ != nullptr ? live_reader_(live_ctx_) : 0;
    }
    template <class Event>
    static void call(const std::function<void(const Event&)>& f, const Event& e);

    const std::chrono::nanoseconds stall_warning_;
    const std::function<void(const stall_event&)> on_stall_;
    const std::function<void(const pressure_event&)> on_pressure_;
    live_reader live_reader_ = nullptr;
    const void* live_ctx_ = nullptr;
};

}  // namespace bpool::detail
