/// @file
/// bpool/async.hpp: what the asynchronous requests of `pool_resource` and `buffer_pool` share:
/// how one ended (`async_status`) and the base of the caller's request records (`async_request`).
#pragma once

#include <atomic>

namespace bpool {

namespace detail {
class async_op;
}

/// How an asynchronous request ended.
enum class async_status : unsigned char {
    granted,    ///< Served: the block or buffer is the caller's (within the cap, or past it when
                ///< the policy is `overcommit` and the wait ran out).
    refused,    ///< Refused at the cap: the `fail` policy, a request larger than the cap, or a cap
                ///< lowered below it while it waited.
    timed_out,  ///< It waited past its deadline (`backoff.max_elapsed`, or a scope's deadline).
    cancelled,  ///< `cancel()`, or the pool was destroyed while it waited.
    failed,     ///< Upstream could not serve it, or the request itself is invalid (an alignment
                ///< that is not a power of two, a size that overflows).
};

/// Returns: the enumerator's name (`"granted"`, ...). Throws nothing.
[[nodiscard]] const char* to_string(async_status s) noexcept;

/// The base of a caller-owned asynchronous request (`memory_request`, `buffer_request`): the
/// record a pool queues while the request waits at its cap, so that starting one allocates
/// nothing. A request is *pending* from the call that starts it until its completion is about to
/// run; its completion runs exactly once per start, on the thread that started it when the request
/// ends at once, otherwise on bpool's completion thread (`bpool-async`, one per process), never
/// with a pool lock held. A completion may start the same request again, destroy it, or destroy
/// the pool.
///
/// Lifetime: a pending request must not be destroyed or moved (a checked build aborts in the
/// destructor); cancel it and wait for its completion first. A pool destroyed with requests
/// pending completes them, as `cancelled`, in its destructor.
///
/// Thread safety: `cancel()` and `pending()` may be called from any thread, concurrently with the
/// request's completion; starting a request that is pending is undefined.
class async_request {
  public:
    async_request(const async_request&) = delete;
    async_request& operator=(const async_request&) = delete;

    /// Effects: if the request still waits at a cap, ends it: its completion runs with
    /// `async_status::cancelled` on bpool's completion thread (what it waited for goes to the
    /// requests behind it). Returns: whether it was waiting (false: it is not pending, or it has
    /// ended already and its completion, with that ending, has run or is about to run).
    /// Throws nothing. Thread-safe.
    bool cancel() noexcept;

    /// Returns: whether the request is pending (started, its completion not yet begun).
    /// Throws nothing. Thread-safe (a moment's value while the request ends).
    [[nodiscard]] bool pending() const noexcept { return pending_.load(std::memory_order_acquire); }

  protected:
    /// Effects: a request that is not pending.
    async_request() noexcept = default;
    /// Effects: destroys the request, which must not be pending (a checked build aborts if it
    /// is).
    ~async_request();

  private:
    friend class detail::async_op;
    std::atomic<detail::async_op*> op_{nullptr};  // the record while it waits (in the derived
                                                  // class's storage)
    std::atomic<bool> pending_{false};
    std::atomic<unsigned> cancelling_{0};  // cancel() calls that may be reading op_'s record
};

}  // namespace bpool
