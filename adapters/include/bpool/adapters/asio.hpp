/// @file
/// bpool/adapters/asio.hpp: Boost.Asio for bpool (target `bpool::asio`, header-only, Boost.Asio
/// from Debian's libboost-dev): `async_get` checks a buffer out of a `buffer_pool` and
/// `async_allocate` a block out of a `pool_resource` with any completion token (a handler,
/// `use_future`, `use_awaitable`, ...), so that an event loop never blocks at a cap; and
/// `dynamic_buffer` reads and writes a `bpool::buffer` as an Asio DynamicBuffer.
///
/// The completion handler runs on its associated executor (or the I/O executor passed to the
/// call), never inside the initiating function and never on bpool's completion thread. While a
/// request waits it counts as outstanding work on that executor, so `io_context::run()` does not
/// return under it. A `bpool::asio::canceller` passed to the call cancels the requests started
/// with it that still wait (Boost 1.74, Debian 12's, has no per-operation cancellation slots);
/// they end with `boost::asio::error::operation_aborted`. When the executor's execution context
/// shuts down (an `io_context` destroyed or shut down with requests waiting) the requests are
/// cancelled and their handlers destroyed without being invoked, as Asio does with every
/// outstanding operation; a buffer or block they had been granted goes back to its pool.
///
/// Errors: `operation_aborted` (cancelled, or the pool was destroyed), `timed_out` (waited
/// `backoff.max_elapsed`), `no_buffer_space` (refused at the cap: `fail`, or larger than the cap),
/// `no_memory` (upstream failed, or an invalid request).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <bpool/async.hpp>
#include <bpool/buffer.hpp>
#include <bpool/buffer_pool.hpp>
#include <bpool/pool_resource.hpp>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/system/error_code.hpp>

namespace bpool::asio {

/// Returns: the error code an asynchronous request that ended with `s` completes with: none for
/// `granted`, `operation_aborted`, `timed_out`, `no_buffer_space` (refused) or `no_memory`.
inline boost::system::error_code to_error_code(async_status s) noexcept {
    namespace e = boost::asio::error;
    switch (s) {
        case async_status::granted:
            return {};
        case async_status::cancelled:
            return e::operation_aborted;
        case async_status::timed_out:
            return e::timed_out;
        case async_status::refused:
            return e::no_buffer_space;
        case async_status::failed:
            break;
    }
    return e::no_memory;
}

namespace detail {

// An operation that may wait in a pool while its executor's context shuts down. The service,
// one per execution context, lists them; its shutdown() cancels them and destroys those that
// ended (their handlers never run), after waiting for the pool's completions that are under way.
class pending_op {
  public:
    virtual bool cancel_op() noexcept = 0;  // cancels the pool request if it still waits
    virtual void destroy() noexcept = 0;    // destroys the operation, its handler uninvoked
    pending_op* prev_ = nullptr;
    pending_op* next_ = nullptr;
    struct link {
        pending_op* prev = nullptr;
        pending_op* next = nullptr;
    } cancel_link_;

  protected:
    virtual ~pending_op() = default;
};

class op_service final : public boost::asio::execution_context::service {
  public:
    using key_type = op_service;
    static inline boost::asio::execution_context::id id;

    explicit op_service(boost::asio::execution_context& ctx) : service(ctx) {}

    // Lists `op` while its pool request may complete.
    void add(pending_op* op) {
        const std::lock_guard lock(mutex_);
        op->next_ = waiting_;
        op->prev_ = nullptr;
        if (waiting_ != nullptr) waiting_->prev_ = op;
        waiting_ = op;
    }

    // The pool request of `op` completed (on any thread). Returns true if the caller may post
    // its handler; false once shutdown began (the service destroys `op` then).
    bool done(pending_op* op) {
        const std::lock_guard lock(mutex_);
        (op->prev_ != nullptr ? op->prev_->next_ : waiting_) = op->next_;
        if (op->next_ != nullptr) op->next_->prev_ = op->prev_;
        if (!shutting_down_) return true;
        op->next_ = ended_;
        ended_ = op;
        changed_.notify_all();
        return false;
    }

  private:
    void shutdown() override {
        std::unique_lock lock(mutex_);
        shutting_down_ = true;
        // Cancelling completes on bpool's thread, which calls done(): wait for each.
        for (pending_op* op = waiting_; op != nullptr; op = op->next_)
            op->cancel_op();
        changed_.wait(lock, [&] { return waiting_ == nullptr; });
        pending_op* ended = std::exchange(ended_, nullptr);
        lock.unlock();
        while (ended != nullptr) {
            pending_op* next = ended->next_;
            ended->destroy();
            ended = next;
        }
    }

    std::mutex mutex_;
    std::condition_variable changed_;
    pending_op* waiting_ = nullptr;
    pending_op* ended_ = nullptr;
    bool shutting_down_ = false;
};

}  // namespace detail

/// Cancels the requests started with it (the last argument of `async_get` and `async_allocate`)
/// that still wait; they complete with `operation_aborted`. One canceller may serve any number of
/// requests (a connection's, a component's); it must outlive them. Thread-safe.
class canceller {
  public:
    canceller() = default;
    canceller(const canceller&) = delete;
    canceller& operator=(const canceller&) = delete;

    /// Effects: cancels every request started with this canceller that still waits.
    /// Returns: how many it cancelled. Throws nothing. Thread-safe.
    std::size_t cancel() noexcept {
        const std::lock_guard lock(mutex_);
        std::size_t n = 0;
        for (detail::pending_op* op = head_; op != nullptr; op = op->cancel_link_.next)
            if (op->cancel_op()) ++n;
        return n;
    }

    /// Effects: lists `op` (an operation started with this canceller). Internal.
    void add(detail::pending_op* op) noexcept {
        const std::lock_guard lock(mutex_);
        op->cancel_link_ = {nullptr, head_};
        if (head_ != nullptr) head_->cancel_link_.prev = op;
        head_ = op;
    }
    /// Effects: unlists `op`, whose request ended. Internal.
    void remove(detail::pending_op* op) noexcept {
        const std::lock_guard lock(mutex_);
        auto& l = op->cancel_link_;
        (l.prev != nullptr ? l.prev->cancel_link_.next : head_) = l.next;
        if (l.next != nullptr) l.next->cancel_link_.prev = l.prev;
    }

  private:
    std::mutex mutex_;
    detail::pending_op* head_ = nullptr;
};

namespace detail {

// What a request completes with, and the pool request that produces it: a buffer (async_get)
// or a block (async_allocate). Op is the operation, which takes the result (finished).
template <class Op>
class buffer_side : public buffer_request {
  public:
    struct result {
        buffer value;
    };

  private:
    void on_complete(buffer b, async_status s) noexcept override {
        static_cast<Op*>(this)->finished(result{std::move(b)}, s);
    }
};
template <class Op>
class block_side : public memory_request {
  public:
    struct result {
        void* value = nullptr;
    };

  private:
    void on_complete(void* p, async_status s) noexcept override {
        static_cast<Op*>(this)->finished(result{p}, s);
    }
};

// The operation of one request: the pool's record (Request), the handler, the work it keeps on
// the handler's executor, and the result until the handler runs. It lives from the initiation to
// the handler's call, allocated with the handler's associated allocator.
template <template <class> class Side, class Handler, class Executor>
class op final : public Side<op<Side, Handler, Executor>>, public pending_op {
    using side = Side<op>;
    using result_type = typename side::result;
    friend side;

  public:
    using executor_type = boost::asio::associated_executor_t<Handler, Executor>;
    // The executor with outstanding work tracked: io_context::run() does not return while the
    // request waits.
    using work_executor = std::decay_t<decltype(boost::asio::prefer(
        std::declval<executor_type>(), boost::asio::execution::outstanding_work.tracked))>;
    using allocator_type = boost::asio::associated_allocator_t<Handler>;
    using self_alloc = typename std::allocator_traits<allocator_type>::template rebind_alloc<op>;

    template <class H>
    static op* make(H&& handler, const Executor& io) {
        self_alloc a(boost::asio::get_associated_allocator(handler));
        op* p = std::allocator_traits<self_alloc>::allocate(a, 1);
        try {
            ::new (static_cast<void*>(p)) op(std::forward<H>(handler), io);
        } catch (...) {
            std::allocator_traits<self_alloc>::deallocate(a, p, 1);
            throw;
        }
        return p;
    }

    // Starts the request with `start(request)`, which returns whether it completed at once.
    template <class Start>
    void run(Start&& start, canceller* c) {
        service_.add(this);
        canceller_ = c;
        if (c != nullptr) c->add(this);
        start(static_cast<side&>(*this));
    }

    bool cancel_op() noexcept override { return this->cancel(); }
    void destroy() noexcept override { free(this); }

  private:
    // Destroys the operation when the posted function is destroyed without running (its
    // context shut down after the post), or after it ran.
    struct holder {
        op* self;
        explicit holder(op* o) noexcept : self(o) {}
        holder(holder&& h) noexcept : self(std::exchange(h.self, nullptr)) {}
        holder(const holder&) = delete;
        holder& operator=(const holder&) = delete;
        holder& operator=(holder&&) = delete;
        ~holder() {
            if (self != nullptr) self->destroy();
        }
        void operator()() {
            op* o = std::exchange(self, nullptr);
            o->invoke();
        }
    };

    template <class H>
    op(H&& handler, const Executor& io)
        : handler_(std::forward<H>(handler)),
          work_(boost::asio::prefer(boost::asio::get_associated_executor(handler_, io),
                                    boost::asio::execution::outstanding_work.tracked)),
          service_(boost::asio::use_service<op_service>(context_of(work_))) {}

    // The executor's execution context: the Networking TS member where there is one (the system
    // and io_context executors), else the property (any_io_executor).
    template <class Ex>
    static boost::asio::execution_context& context_of(const Ex& ex) {
        if constexpr (requires { ex.context(); })
            return ex.context();
        else
            return boost::asio::query(
                ex, boost::asio::execution::context_as<boost::asio::execution_context&>);
    }

    static void free(op* p) noexcept {
        self_alloc a(boost::asio::get_associated_allocator(p->handler_));
        p->~op();
        std::allocator_traits<self_alloc>::deallocate(a, p, 1);
    }

    void finished(result_type r, async_status s) noexcept {
        result_ = std::move(r);
        status_ = s;
        if (canceller_ != nullptr) canceller_->remove(this);
        if (!service_.done(this)) return;  // shutting down: the service destroys it
        // Never inside the initiating function, never on bpool's thread: posted. If posting
        // throws, whichever holder still owns the operation (this one, or the copy post made)
        // destroys it, the handler uninvoked.
        holder h(this);
        try {
            boost::asio::post(work_, std::move(h));
        } catch (...) {
        }
    }

    // On the handler's executor: the operation goes, then the handler runs.
    void invoke() {
        Handler h(std::move(handler_));
        auto value = std::move(result_.value);
        const boost::system::error_code ec = to_error_code(status_);
        free(this);
        std::move(h)(ec, std::move(value));
    }

    Handler handler_;
    work_executor work_;
    op_service& service_;
    canceller* canceller_ = nullptr;
    result_type result_{};
    async_status status_ = async_status::failed;
};

}  // namespace detail

/// Effects: checks a buffer out of `pool` as `buffer_pool::async_get` does (waiting at either cap
/// without blocking), and completes `token` with `(boost::system::error_code, bpool::buffer)`:
/// on success the buffer, checked out as from `get()`; on an error an empty buffer (see the file
/// comment for the codes). `io` is the executor the handler runs on unless it has its own
/// associated executor; `cancel`, if not null, can cancel the request while it waits. The pool
/// (and `cancel`) must outlive the request.
/// Returns: what `token`'s async_result makes of it (nothing for a handler, a `std::future` for
/// `use_future`, an awaitable for `use_awaitable`).
/// Thread safety: as `buffer_pool::async_get`.
template <class Executor, class CompletionToken>
auto async_get(buffer_pool& pool, const Executor& io, CompletionToken&& token,
               canceller* cancel = nullptr) {
    using signature = void(boost::system::error_code, buffer);
    return boost::asio::async_initiate<CompletionToken, signature>(
        [&pool, io, cancel](auto&& handler) {
            using handler_t = std::decay_t<decltype(handler)>;
            using op_t = detail::op<detail::buffer_side, handler_t, Executor>;
            op_t* o = op_t::make(std::forward<decltype(handler)>(handler), io);
            o->run([&pool](buffer_request& r) { return pool.async_get(r); }, cancel);
        },
        token);
}

/// Effects: `async_get(pool, boost::asio::system_executor(), token)`: the handler runs on its
/// associated executor (`use_awaitable`'s is the coroutine's), or on the system executor.
template <class CompletionToken>
auto async_get(buffer_pool& pool, CompletionToken&& token) {
    return async_get(pool, boost::asio::system_executor(), std::forward<CompletionToken>(token));
}

/// Effects: allocates `bytes` aligned to `alignment` from `pool` as
/// `pool_resource::async_allocate` does, and completes `token` with
/// `(boost::system::error_code, void*)`: the block (give it back with `pool.deallocate(p, bytes,
/// alignment)`), or null on an error. `io` as for `async_get`.
/// Returns: what `token`'s async_result makes of it. Thread safety: as `async_allocate`.
template <class Executor, class CompletionToken>
auto async_allocate(pool_resource& pool, std::size_t bytes, std::size_t alignment,
                    const Executor& io, CompletionToken&& token, canceller* cancel = nullptr) {
    using signature = void(boost::system::error_code, void*);
    return boost::asio::async_initiate<CompletionToken, signature>(
        [&pool, bytes, alignment, io, cancel](auto&& handler) {
            using handler_t = std::decay_t<decltype(handler)>;
            using op_t = detail::op<detail::block_side, handler_t, Executor>;
            op_t* o = op_t::make(std::forward<decltype(handler)>(handler), io);
            o->run([&](memory_request& r) { return pool.async_allocate(r, bytes, alignment); },
                   cancel);
        },
        token);
}

/// A `bpool::buffer` seen as an Asio DynamicBuffer (the v1 requirements, which
/// `boost::asio::async_read`, `async_read_until` and `async_write` take): readable bytes are the
/// buffer's contents, `prepare(n)` is `buffer::prepare(n)` (no zero fill; it grows the buffer
/// under its pool's rules, and throws `std::length_error` past `max_size()`), `commit(n)` appends
/// what was written, `consume(n)` drops bytes from the front. Refers to the buffer, which must
/// outlive it; copies refer to the same buffer. Not thread-safe (a buffer is one thread's).
class dynamic_buffer_adapter {
  public:
    using const_buffers_type = boost::asio::const_buffer;      ///< The readable bytes.
    using mutable_buffers_type = boost::asio::mutable_buffer;  ///< The writable room.

    /// Effects: an adapter over `b` that grows it to at most `max_size` bytes.
    explicit dynamic_buffer_adapter(buffer& b, std::size_t max_size = buffer::max_size()) noexcept
        : b_(&b), max_size_(max_size) {}

    /// Returns: the readable bytes' count (the buffer's size).
    [[nodiscard]] std::size_t size() const noexcept { return b_->size(); }
    /// Returns: the most bytes the buffer may hold through this adapter.
    [[nodiscard]] std::size_t max_size() const noexcept { return max_size_; }
    /// Returns: what the buffer holds without growing.
    [[nodiscard]] std::size_t capacity() const noexcept { return b_->capacity(); }
    /// Returns: the readable bytes.
    [[nodiscard]] const_buffers_type data() const noexcept { return {b_->data(), b_->size()}; }
    /// Effects: makes room for `n` bytes past the readable ones. Returns: that room.
    /// Throws: `std::length_error` if `size() + n` passes `max_size()`; what growing throws
    /// (`capacity_exceeded` at the pool's cap, `std::bad_alloc`).
    mutable_buffers_type prepare(std::size_t n) {
        if (n > max_size_ || b_->size() > max_size_ - n)
            throw std::length_error("bpool::asio::dynamic_buffer: past max_size");
        const std::span<std::byte> room = b_->prepare(n);
        return {room.data(), n};
    }
    /// Effects: appends the first `n` prepared bytes to the readable ones (at most what was
    /// prepared).
    void commit(std::size_t n) noexcept { b_->commit(std::min(n, b_->capacity() - b_->size())); }
    /// Effects: removes the first `n` readable bytes (all of them if `n >= size()`).
    void consume(std::size_t n) noexcept {
        const std::size_t left = n >= b_->size() ? 0 : b_->size() - n;
        if (left > 0) std::memmove(b_->data(), b_->data() + n, left);
        b_->resize(left);  // shrinking: never allocates
    }

  private:
    buffer* b_;
    std::size_t max_size_;
};

/// Returns: `b` as an Asio DynamicBuffer, growing to at most `max_size` bytes.
inline dynamic_buffer_adapter dynamic_buffer(buffer& b,
                                             std::size_t max_size = buffer::max_size()) noexcept {
    return dynamic_buffer_adapter(b, max_size);
}

/// Returns: the readable bytes of `b` as an Asio buffer, for a write.
inline boost::asio::const_buffer const_buffer(const buffer& b) noexcept {
    return {b.data(), b.size()};
}

}  // namespace bpool::asio
