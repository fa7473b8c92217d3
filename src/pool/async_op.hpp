// Layer 8: the record behind a pending bpool::async_request (async.hpp), and the rules that let
// cancel() race with the request's completion: cancel() announces itself (cancelling_) before it
// reads op_, and the completion clears op_ and then waits out the announced cancels before the
// record is destroyed or the request may start again. Both sides use sequentially consistent
// operations (a store then a load each, Dekker's pattern): either cancel() sees no record, or the
// completion sees the cancel and waits for it.
#pragma once

#include <bpool/async.hpp>

namespace bpool::detail {

class async_op {
  public:
    /// Effects: cancels the request if it still waits. Returns whether it did.
    virtual bool cancel() noexcept = 0;

    /// Effects: `r` is pending, its record `op` (which must stay alive until retire(r)).
    static void begin(async_request& r, async_op* op) noexcept {
        r.pending_.store(true, std::memory_order_relaxed);
        r.op_.store(op, std::memory_order_seq_cst);
    }
    /// Effects: `r`'s record is no longer reachable through cancel(): once this returns it may be
    /// destroyed, and `r` is no longer pending (its completion may start it again).
    static void retire(async_request& r) noexcept;

  protected:
    async_op() noexcept = default;
    virtual ~async_op() = default;
    async_op(const async_op&) = delete;
    async_op& operator=(const async_op&) = delete;
};

}  // namespace bpool::detail
