/// @file
/// bpool/buffer.hpp: a growable, move-only byte buffer over a pool or any
/// std::pmr::memory_resource.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <span>
#include <string_view>
#include <system_error>

#include <bpool/errors.hpp>

namespace bpool {

class buffer_pool;
class pool_resource;
struct allocation_result;

namespace detail {
class buffer_pool_core;
}

/// A growable byte buffer that owns its storage (a write, batch or per-connection scratch
/// buffer, as one RAII type). Move-only; the storage goes back where it came from when the buffer
/// is destroyed, released, put back or assigned over, so it can be neither leaked nor freed twice.
///
/// A buffer is in one of three states:
/// - **checked out** of a `buffer_pool` (`buffer_pool::get`): storage comes from the pool's
///   `pool_resource`, and the buffer counts in `buffer_pool::live()` until it is destroyed or put
///   back. It must not outlive its pool (a checked build aborts in the pool's destructor if it
///   does).
/// - **standalone**, over any `std::pmr::memory_resource` (`buffer(resource)`): storage comes from
///   that resource, which must outlive the buffer.
/// - **empty**: default-constructed or moved from (`buffer_pool::put` moves from its argument).
///   It owns nothing and belongs to nothing; it may be read (it holds no bytes), assigned to,
///   reset, released and destroyed (even after the pool it came from is gone). Growing it is a
///   logic error: a checked build aborts; otherwise `write` returns
///   `std::errc::operation_not_permitted` and `append`, `reserve` and `resize` throw
///   `std::logic_error`.
///
/// Growth is geometric (doubling, where the pool's capacity allows) and, over a `pool_resource`,
/// goes through its size classes: `capacity()` is always the usable size of the block the buffer
/// holds. Past the pool's `largest_pooled_block` the buffer keeps growing with blocks served by
/// upstream. The doubled size is only tried, without waiting; when it does not fit under the pool's
/// capacity, a smaller step above what the write needs is tried the same way, and when none fits
/// the buffer asks for just what it needs, and only that request meets the policy below
/// (`pool_resource::allocate_at_least`: its middle step takes at most half the pool's headroom, so
/// that growth near the capacity stays geometric). Growth allocates the new block before freeing
/// the old one, so both count against the capacity for a moment; every operation that fails leaves
/// the buffer unchanged.
///
/// At the pool's capacity, growth follows the buffer's pool: with
/// `buffer_pool_options::write_backoff` it follows the pool's exhaustion policy (`wait`: backoff
/// until memory is given back or `backoff.max_elapsed` passes; `fail`: refused at once;
/// `overcommit`; `bypass`), without it it is refused at once, whatever an enclosing
/// `exhaustion_scope` says. A standalone buffer over a `pool_resource` follows that resource's
/// policy. An enclosing `exhaustion_scope` (its policy and its deadline) applies wherever the
/// pool's policy does: to growth with `write_backoff`, and to standalone buffers.
///
/// Thread safety: like `std::string`: a buffer is used by one thread at a time; distinct buffers
/// may be used concurrently, including buffers of the same pool. A buffer may be moved to, and
/// destroyed or put back on, another thread than the one that got it.
class buffer {
  public:
    /// The alignment of a buffer's storage.
    static constexpr std::size_t alignment = alignof(std::max_align_t);

    /// Returns the largest size a buffer can have (`PTRDIFF_MAX`); asking for more is
    /// `errc::too_large`.
    [[nodiscard]] static constexpr std::size_t max_size() noexcept { return PTRDIFF_MAX; }

    /// Effects: an empty buffer that belongs to nothing (see the class comment); assign a buffer
    /// to it before writing.
    buffer() noexcept = default;

    /// Effects: a standalone buffer drawing its storage from `resource` (which must outlive it),
    /// with no storage yet. Over a `pool_resource` growth goes through its size classes.
    /// Throws: `std::invalid_argument` if `resource` is null.
    explicit buffer(std::pmr::memory_resource* resource);

    /// Effects: as `buffer(resource)`, then `reserve(capacity)`.
    /// Throws: as `buffer(resource)` and `reserve` (`std::length_error` past `max_size()`,
    /// `capacity_exceeded` at a pool's cap, `std::bad_alloc` if the resource fails); nothing is
    /// held when it throws.
    buffer(std::pmr::memory_resource* resource, std::size_t capacity);

    /// Effects: takes `other`'s storage, contents and pool membership; `other` becomes empty.
    buffer(buffer&& other) noexcept;

    /// Effects: gives this buffer's storage and pool membership back (as the destructor does),
    /// then takes `other`'s; `other` becomes empty. Self-assignment does nothing.
    buffer& operator=(buffer&& other) noexcept;

    buffer(const buffer&) = delete;
    buffer& operator=(const buffer&) = delete;

    /// Effects: gives the storage back to its pool or resource and, for a buffer checked out of a
    /// `buffer_pool`, ends the checkout. Thread safety: may run on any thread (see class comment).
    ~buffer();

    /// Effects: appends `bytes`, growing the buffer if needed; an empty span is a no-op.
    /// Returns: an empty code on success; otherwise the buffer is unchanged and the code is
    /// `errc::capacity_exceeded` (stopped by the cap: refused at once, or waited until the
    /// deadline; `append` tells the two apart), `errc::too_large` (size() + bytes.size() >
    /// max_size()),
    /// `errc::out_of_memory` (the upstream resource failed), or
    /// `std::errc::operation_not_permitted` (an empty buffer; a checked build aborts instead).
    /// Throws: only what a custom memory resource throws other than `std::bad_alloc` (the buffer
    /// is then unchanged). `bytes` may alias the buffer's own contents.
    [[nodiscard]] std::error_code write(std::span<const std::byte> bytes);

    /// Effects, returns, throws: as `write(std::as_bytes(std::span(text)))`.
    [[nodiscard]] std::error_code write(std::string_view text);

    /// Effects: appends `bytes` like `write`, but reports failure by throwing.
    /// Returns: `*this`.
    /// Throws: `capacity_exceeded` at the cap (`code()` tells a refusal from a timeout);
    /// `std::length_error` past `max_size()`; `std::bad_alloc` if upstream fails;
    /// `std::logic_error` on an empty buffer. The buffer is unchanged when it throws.
    buffer& append(std::span<const std::byte> bytes);

    /// Effects, returns, throws: as `append(std::as_bytes(std::span(text)))`.
    buffer& append(std::string_view text);

    /// Returns the bytes written so far. Valid until the buffer next grows, is released or dies.
    [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }

    /// Returns the bytes written so far as characters. Same validity as `bytes()`.
    [[nodiscard]] std::string_view view() const noexcept {
        return {reinterpret_cast<const char*>(data_), size_};
    }

    /// Returns the first byte of the storage, or null when the buffer holds no storage (never a
    /// dangling pointer). Valid until the buffer next grows, is released or dies.
    [[nodiscard]] std::byte* data() noexcept { return data_; }
    /// Returns the first byte of the storage, or null when the buffer holds no storage.
    [[nodiscard]] const std::byte* data() const noexcept { return data_; }

    /// Returns the number of bytes written.
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

    /// Returns whether `size() == 0`.
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

    /// Returns the usable size of the storage held (over a pool: its block size); 0 without
    /// storage.
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

    /// Returns the resource the storage comes from, or null for an empty buffer.
    [[nodiscard]] std::pmr::memory_resource* resource() const noexcept { return bind_.resource; }

    /// Effects: makes `capacity() >= n` (exactly the block that holds `n` bytes, no geometric
    /// slack); nothing if it already is. Growth at the cap behaves as described for the class.
    /// Throws: as `append`; the buffer is unchanged when it throws.
    void reserve(std::size_t n);

    /// Effects: sets `size()` to `n`: shrinking keeps the storage; growing reserves like a write
    /// and sets the new bytes to zero.
    /// Throws: as `append`; the buffer is unchanged when it throws.
    void resize(std::size_t n);

    /// Effects: makes room for at least `n` more bytes past `size()`, growing like a write of `n`
    /// bytes (geometric, through the size classes, at the cap as described for the class), but
    /// writes nothing: the room is not zero-filled and `size()` does not change. For reading into
    /// the buffer (`read`, `recv`), then `commit` what was read.
    /// Returns: the writable bytes past `size()`: all of `capacity() - size()`, at least `n`.
    /// Valid until the buffer next grows, is released or dies.
    /// Throws: as `append`; the buffer is unchanged when it throws.
    [[nodiscard]] std::span<std::byte> prepare(std::size_t n);

    /// Effects: appends to the contents the first `n` bytes of the room past `size()` (what the
    /// caller wrote into the span `prepare` returned): `size()` grows by `n`. An `n` above
    /// `capacity() - size()` is cut to it (a checked build aborts instead: a read into more room
    /// than the buffer has overran it).
    void commit(std::size_t n) noexcept;

    /// A point of the contents to come back to (`mark`, `rollback`).
    struct mark_type {
        std::size_t size = 0;  ///< `size()` when the mark was taken.
    };

    /// Returns the current end of the contents, for `rollback`: a record written in several
    /// pieces can then be all or nothing. Throws nothing.
    [[nodiscard]] mark_type mark() const noexcept { return {size_}; }

    /// Effects: forgets what was written since `m` was taken: `size()` goes back to `m.size` (at
    /// most to the current size); the storage is kept. Throws nothing.
    void rollback(mark_type m) noexcept { size_ = m.size < size_ ? m.size : size_; }

    /// Effects: sets `size()` to 0 and keeps the storage for the next writes (the seed's `Reset`).
    void reset() noexcept { size_ = 0; }

    /// Effects: sets `size()` to 0 and gives the storage back to its pool or resource now
    /// (`capacity()` becomes 0, `data()` null). The buffer stays usable, and a buffer checked out
    /// of a pool stays checked out: the next write takes storage from the pool again. Does
    /// nothing to an empty buffer.
    void release() noexcept;

  private:
    friend class buffer_pool;

    // Where a buffer's storage comes from, and how its growth behaves at the cap.
    struct binding {
        std::pmr::memory_resource* resource = nullptr;
        pool_resource* pool = nullptr;  // `resource` as a pool_resource, if it is one
        detail::buffer_pool_core* home = nullptr;
        bool may_wait = true;  // growth may wait at the cap (the pool's policy applies)
        bool slot = false;     // holds one of the home's live slots (set_max_live)
    };

    explicit buffer(const binding& b) noexcept;

    void grow(std::size_t need, bool geometric, std::span<const std::byte> tail, bool may_wait);
    [[nodiscard]] std::size_t round_up(std::size_t n) const;
    [[nodiscard]] std::size_t first_capacity() const noexcept;
    // A block of `minimal` bytes at least, `want` if it can be had at once (allocate_at_least);
    // at the cap only `minimal` meets the policy, and only if `may_wait`. Throws on failure.
    [[nodiscard]] allocation_result take(std::size_t minimal, std::size_t want,
                                         bool may_wait) const;
    // size() + n; throws std::length_error past max_size().
    [[nodiscard]] std::size_t size_after(std::size_t n) const;
    // try_get's storage: the block for `n` bytes if the pool can give it at once; false if not.
    [[nodiscard]] bool try_take_storage(std::size_t n) noexcept;
    // Takes block `p` of `block` bytes from the buffer's resource as its storage (it has none).
    void adopt_storage(void* p, std::size_t block) noexcept {
        data_ = static_cast<std::byte*>(p);
        capacity_ = block;
    }
    void check_bound() const;
    void free_storage() noexcept;
    void leave_home() noexcept;

    std::byte* data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
    binding bind_{};
};

}  // namespace bpool
