/// @file
/// bpool/adapters/streambuf.hpp: a std::basic_streambuf whose storage comes from a pool, and the
/// string-stream-like classes built on it (header-only, comes with bpool::bpool).
#pragma once

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ios>
#include <istream>
#include <limits>
#include <memory>
#include <memory_resource>
#include <new>
#include <ostream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <bpool/errors.hpp>
#include <bpool/pool_resource.hpp>

namespace bpool {

/// A stream buffer, like `std::basic_stringbuf`, whose characters live in one block of a
/// `pool_resource` (or of any `std::pmr::memory_resource`).
///
/// - **Output** appends (or, after a seek back, overwrites). The storage grows geometrically (x2)
///   and each step takes the whole size class (`pool_resource::block_size`), so writing n
///   characters copies O(n) in total. The doubled block is only tried, without waiting; if it
///   does not fit under the pool's capacity next to the block it replaces, a smaller step above
///   what the write needs is tried the same way (at most half the pool's headroom, so that growth
///   near the capacity stays geometric); if none fits, the growth asks for just the block the
///   write needs, under the pool's policy: `bpool::allocate_at_least`, as `bpool::buffer` grows.
/// - **Input** reads back what was written; `seekoff`/`seekpos` move the read and/or write position
///   anywhere in [0, `size()`].
/// - **At the pool's capacity** a growth follows the pool's policy (`wait`, `fail`, ...). If it
///   fails, the write stores nothing of the characters that did not fit, `error()` says why, and
///   the exception (`capacity_exceeded`, `std::bad_alloc`) propagates to the caller: the
///   `std` streams turn it into `badbit` (rethrowing it only if the user enabled exceptions for
///   `badbit`), as they do for `std::stringbuf`'s `std::bad_alloc`. What was written before is
///   intact.
///
/// Thread safety: like any stream buffer, one thread at a time; the pool may be shared freely. The
/// resource must outlive the buffer.
template <class CharT, class Traits = std::char_traits<CharT>>
class basic_streambuf : public std::basic_streambuf<CharT, Traits> {
    using base = std::basic_streambuf<CharT, Traits>;

  public:
    using char_type = CharT;                                  ///< The character type.
    using traits_type = Traits;                               ///< The character traits.
    using int_type = typename Traits::int_type;               ///< A character or eof.
    using pos_type = typename Traits::pos_type;               ///< A stream position.
    using off_type = typename Traits::off_type;               ///< A stream offset.
    using view_type = std::basic_string_view<CharT, Traits>;  ///< What `view()` returns.

    /// Effects: an empty buffer drawing from `pool`; allocates nothing yet. Throws nothing.
    explicit basic_streambuf(pool_resource& pool) noexcept : resource_(&pool), pool_(&pool) {}

    /// Effects: an empty buffer drawing from `resource`; if it is a `pool_resource`, growth uses
    /// its size classes and capacity as above. Allocates nothing yet.
    /// Throws: `std::invalid_argument` if `resource` is null.
    explicit basic_streambuf(std::pmr::memory_resource* resource)
        : resource_(non_null(resource)), pool_(dynamic_cast<pool_resource*>(resource)) {}

    /// Effects: takes `other`'s characters, positions and resource; `other` is left empty (same
    /// resource). Throws nothing.
    basic_streambuf(basic_streambuf&& other) noexcept
        : base(other),  // copies the area pointers (into the storage taken below) and the locale
          resource_(other.resource_),
          pool_(other.pool_),
          data_(std::exchange(other.data_, nullptr)),
          cap_(std::exchange(other.cap_, 0)),
          bytes_(std::exchange(other.bytes_, 0)),
          high_(std::exchange(other.high_, 0)),
          error_(std::exchange(other.error_, {})) {
        other.set_areas(0, 0);
    }

    /// Effects: frees this buffer's storage, then takes `other`'s as the move constructor does
    /// (the resource comes along: the storage must go back where it came from). Throws nothing.
    basic_streambuf& operator=(basic_streambuf&& other) noexcept {
        basic_streambuf taken(std::move(other));
        swap(taken);
        return *this;
    }

    basic_streambuf(const basic_streambuf&) = delete;
    basic_streambuf& operator=(const basic_streambuf&) = delete;

    /// Effects: gives the storage back to the resource.
    ~basic_streambuf() override { free_storage(); }

    /// Effects: exchanges contents, positions, locales, resources and errors. Throws nothing.
    void swap(basic_streambuf& other) noexcept {
        base::swap(other);
        std::swap(resource_, other.resource_);
        std::swap(pool_, other.pool_);
        std::swap(data_, other.data_);
        std::swap(cap_, other.cap_);
        std::swap(bytes_, other.bytes_);
        std::swap(high_, other.high_);
        std::swap(error_, other.error_);
    }

    /// Returns the characters written so far (valid until the next write, `clear()` or
    /// `shrink_to_fit()`).
    [[nodiscard]] view_type view() const noexcept { return view_type(data_, size()); }

    /// Returns the number of characters written (the furthest write position reached).
    [[nodiscard]] std::size_t size() const noexcept {
        return std::max(high_, static_cast<std::size_t>(this->pptr() - data_));
    }

    /// Returns the number of characters the storage holds before it must grow.
    [[nodiscard]] std::size_t capacity() const noexcept { return cap_; }

    /// Returns the resource the storage comes from.
    [[nodiscard]] std::pmr::memory_resource* resource() const noexcept { return resource_; }

    /// Returns why the last growth failed since construction or `clear()`:
    /// `errc::capacity_exceeded` (refused at the pool's capacity), `errc::timed_out` (waited for
    /// memory and gave up), `errc::out_of_memory` (upstream failed), `errc::too_large`; empty if
    /// none failed.
    [[nodiscard]] std::error_code error() const noexcept { return error_; }

    /// A point of the contents to come back to (`mark`, `rollback`).
    struct mark_type {
        std::size_t size = 0;  ///< `size()` when the mark was taken.
        std::size_t put = 0;   ///< The write position when the mark was taken.
    };

    /// Returns the current end of the contents and write position, for `rollback`: a record
    /// written in several pieces can then be all or nothing. Throws nothing.
    [[nodiscard]] mark_type mark() const noexcept { return {size(), put_pos()}; }

    /// Effects: forgets what was appended since `m` was taken: `size()` and the write position go
    /// back to `m`'s (at most to the current `size()`), the read position to at most the new
    /// size; keeps the storage and `error()`. It undoes appends, not overwrites: characters
    /// overwritten before `m`'s end (after a seek back) stay as they are. Throws nothing.
    void rollback(mark_type m) noexcept {
        const std::size_t n = std::min(m.size, size());
        const std::size_t get = std::min(get_pos(), n);
        high_ = n;
        set_areas(get, std::min(m.put, n));
    }

    /// Effects: empties the buffer (read and write positions to 0) and `error()`; keeps the
    /// storage. Throws nothing.
    void clear() noexcept {
        high_ = 0;
        error_.clear();
        set_areas(0, 0);
    }

    /// Effects: makes the storage hold at least `n` characters.
    /// Throws: as a write that grows (the pool's policy applies). On failure the contents,
    /// positions and capacity are unchanged, and `error()` says why the growth failed.
    void reserve(std::size_t n) {
        if (n > cap_) (void)grow(n, nullptr);
    }

    /// Effects: replaces the contents with `s` (which may view this buffer); the read position
    /// goes to the start, the write position to the end; clears `error()`.
    /// Throws: as `reserve(s.size())`. On failure the contents, positions and capacity are
    /// unchanged, and `error()` says why the growth failed (it is not cleared).
    void assign(view_type s) {
        const CharT* src = s.size() > cap_ ? grow(s.size(), s.data()) : s.data();
        if (!s.empty()) Traits::move(data_, src, s.size());
        high_ = s.size();
        error_.clear();
        set_areas(0, s.size());
    }

    /// Effects: moves the contents to the smallest block that holds them (none if empty), if that
    /// is smaller than the current one and can be had at once; otherwise nothing. Throws nothing.
    void shrink_to_fit() noexcept;

  protected:
    /// Effects: stores `c` (eof: nothing), growing the storage if it is full.
    /// Returns: `c`, or `not_eof(c)` for eof. Throws: as a growth (see the class comment).
    int_type overflow(int_type c) override {
        if (Traits::eq_int_type(c, Traits::eof())) return Traits::not_eof(c);
        if (this->pptr() == this->epptr()) (void)grow(put_pos() + 1, nullptr);
        *this->pptr() = Traits::to_char_type(c);
        this->pbump(1);
        return c;
    }

    /// Effects: stores `n` characters from `s` (which may point into this buffer) with at most one
    /// growth. Returns: `n`. Throws: as a growth; then nothing of `s` is stored.
    std::streamsize xsputn(const CharT* s, std::streamsize n) override {
        // The common case, kept small: the characters fit.
        if (n > 0 && n <= this->epptr() - this->pptr()) {
            copy_in(s, static_cast<std::size_t>(n));
            return n;
        }
        return xsputn_growing(s, n);
    }

    /// Returns: the next character to read (extending the read area to what has been written
    /// since), or eof at the end of what was written. Throws nothing.
    int_type underflow() override {
        extend_get_area();
        if (this->gptr() < this->egptr()) return Traits::to_int_type(*this->gptr());
        return Traits::eof();
    }

    /// Effects: steps the read position back one character, if that character equals `c` (or
    /// `c` is eof). The contents are never changed by a putback. Returns: `c` (`not_eof(c)` for
    /// eof), or eof if it cannot.
    int_type pbackfail(int_type c) override {
        if (this->eback() == this->gptr()) return Traits::eof();
        if (Traits::eq_int_type(c, Traits::eof())) {
            this->gbump(-1);
            return Traits::not_eof(c);
        }
        if (!Traits::eq(Traits::to_char_type(c), this->gptr()[-1])) return Traits::eof();
        this->gbump(-1);
        return c;
    }

    /// Returns the number of characters left to read (0 at the end: more may be written later,
    /// as with `std::stringbuf`).
    std::streamsize showmanyc() override {
        extend_get_area();
        return static_cast<std::streamsize>(this->egptr() - this->gptr());
    }

    /// Effects: moves the read (`in`) and/or write (`out`) position to `off` from the start
    /// (`beg`), the end of what was written (`end`) or the current position (`cur`: one of `in`
    /// and `out` only). Returns: the new position, or -1 (nothing moved) if it falls outside
    /// [0, `size()`].
    pos_type seekoff(off_type off, std::ios_base::seekdir dir,
                     std::ios_base::openmode which = std::ios_base::in |
                                                     std::ios_base::out) override;

    /// Effects: `seekoff(pos, beg, which)`.
    pos_type seekpos(pos_type pos, std::ios_base::openmode which = std::ios_base::in |
                                                                   std::ios_base::out) override {
        return seekoff(off_type(pos), std::ios_base::beg, which);
    }

    /// Effects: none (the characters are already in the buffer). Returns 0.
    int sync() override {
        high_ = size();
        return 0;
    }

  private:
    // Pointer differences must fit a ptrdiff_t and a streamsize.
    static constexpr std::size_t max_chars = static_cast<std::size_t>(
        std::numeric_limits<std::ptrdiff_t>::max() / static_cast<std::ptrdiff_t>(sizeof(CharT)));
    // The first block: small enough for a short message, large enough to skip the tiny classes.
    static constexpr std::size_t first_bytes = 256;

    static std::pmr::memory_resource* non_null(std::pmr::memory_resource* r) {
        if (r == nullptr) throw std::invalid_argument("bpool::basic_streambuf: null resource");
        return r;
    }

    std::size_t put_pos() const noexcept { return static_cast<std::size_t>(this->pptr() - data_); }
    std::size_t get_pos() const noexcept {
        return static_cast<std::size_t>(this->gptr() - this->eback());
    }

    // Copies `n` characters from `s` to the write position, which has room for them, and moves it
    // past them. Streams mostly write short runs (a number, a separator, a word): up to 32 bytes
    // are copied inline, measurably faster than a call to memcpy. memmove only when `s` points
    // into the storage (a write from this very buffer).
    void copy_in(const CharT* s, std::size_t n) noexcept {
        const std::size_t bytes = n * sizeof(CharT);
        if (holds(s)) {
            Traits::move(this->pptr(), s, n);
        } else if (bytes <= 32) {
            copy_short(this->pptr(), s, bytes);
        } else {
            Traits::copy(this->pptr(), s, n);
        }
        advance_put(n);
    }

    // Whether `p` points into the storage. Integers, not pointer comparisons: `p` may point into
    // another object, and this is on the write path.
    bool holds(const CharT* p) const noexcept {
        const std::uintptr_t offset =
            reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(data_);
        return offset < cap_ * sizeof(CharT);
    }

    // Copies at most 32 bytes between distinct objects as two fixed-size, possibly overlapping
    // copies of the first and last bytes: plain loads and stores, no call.
    static void copy_short(void* to, const void* from, std::size_t bytes) noexcept {
        auto* d = static_cast<unsigned char*>(to);
        const auto* f = static_cast<const unsigned char*>(from);
        if (bytes >= 16) {
            std::memcpy(d, f, 16);
            std::memcpy(d + bytes - 16, f + bytes - 16, 16);
        } else if (bytes >= 8) {
            std::memcpy(d, f, 8);
            std::memcpy(d + bytes - 8, f + bytes - 8, 8);
        } else if (bytes >= 4) {
            std::memcpy(d, f, 4);
            std::memcpy(d + bytes - 4, f + bytes - 4, 4);
        } else if (bytes >= 2) {
            std::memcpy(d, f, 2);
            std::memcpy(d + bytes - 2, f + bytes - 2, 2);
        } else if (bytes == 1) {
            *d = *f;
        }
    }

    // pbump takes an int: a buffer may be larger than INT_MAX characters.
    void advance_put(std::size_t n) noexcept {
        for (; n > INT_MAX; n -= INT_MAX)
            this->pbump(INT_MAX);
        this->pbump(static_cast<int>(n));
    }

    // Points the areas at the storage: read area [0, high_) at `get`, write area [0, cap_) at
    // `put`.
    void set_areas(std::size_t get, std::size_t put) noexcept {
        this->setg(data_, data_ + get, data_ + high_);
        this->setp(data_, data_ + cap_);
        advance_put(put);
    }

    // The read area ends where the furthest write did when it was last set: catch up.
    void extend_get_area() noexcept {
        high_ = size();
        this->setg(data_, this->gptr(), data_ + high_);
    }

    // Bytes of a block holding at least `chars` characters: its whole size class when the
    // resource is a pool (the capacity counts the class anyway), as a whole number of characters.
    std::size_t block_bytes(std::size_t chars) const noexcept {
        std::size_t bytes = chars * sizeof(CharT);
        if (pool_ != nullptr) {
            if (const std::size_t b = pool_->block_size(bytes, alignof(CharT)); b >= bytes)
                bytes = b;
        }
        return bytes / sizeof(CharT) * sizeof(CharT);
    }

    // The geometric size of the next storage when `need` characters do not fit: twice the current
    // storage (amortized O(1) copying), never less than `need`. Only tried: see grow().
    std::size_t next_capacity(std::size_t need) const noexcept {
        const std::size_t want =
            cap_ > max_chars / 2 ? max_chars : std::max(cap_ * 2, first_chars());
        return std::max(want, need);
    }
    static constexpr std::size_t first_chars() noexcept {
        return std::max<std::size_t>(first_bytes / sizeof(CharT), 1);
    }

    [[noreturn]] void fail_too_large() {
        error_ = make_error_code(errc::too_large);
        throw std::length_error("bpool::basic_streambuf: too large");
    }

    // The slow path of xsputn: grows the storage first.
    std::streamsize xsputn_growing(const CharT* s, std::streamsize n);

    // Moves the contents to a block of at least `need` characters. `src`, if it points into the
    // old storage, is returned pointing at the same character in the new one. On failure records
    // error() and rethrows; nothing changes.
    const CharT* grow(std::size_t need, const CharT* src);

    // Allocates `bytes` without ever waiting; null on any failure (shrink_to_fit then keeps the
    // storage it has).
    void* try_take(std::size_t bytes) noexcept {
        if (pool_ != nullptr) return pool_->try_allocate(bytes, alignof(CharT));
        try {
            return resource_->allocate(bytes, alignof(CharT));
        } catch (...) {
            return nullptr;
        }
    }

    static std::error_code failure_code() noexcept;
    void free_storage() noexcept {
        if (data_ != nullptr) resource_->deallocate(data_, bytes_, alignof(CharT));
    }
    // Installs `data` (allocated as `bytes`) as the storage, keeping the contents (already copied)
    // and positions.
    void replace_storage(CharT* data, std::size_t bytes) noexcept {
        const std::size_t get = get_pos(), put = put_pos();
        high_ = size();
        free_storage();
        data_ = data;
        cap_ = bytes / sizeof(CharT);
        bytes_ = bytes;
        set_areas(get, put);
    }

    std::pmr::memory_resource* resource_;
    pool_resource* pool_;  // resource_ if it is a pool (for its size classes), else null
    CharT* data_ = nullptr;
    std::size_t cap_ = 0;  // characters data_ holds
    // The size data_ was allocated with: cap_ characters, and a pool's block may add a few bytes
    // short of one more character.
    std::size_t bytes_ = 0;
    std::size_t high_ = 0;  // furthest write position when last synced (see size())
    std::error_code error_;
};

// The geometric size is only preferred (the old block stays live during the copy):
// allocate_at_least tries it without waiting, then (over a pool) a smaller step that still fits
// above `need`, and if none fits under the cap asks for just the block that holds `need`
// characters under the pool's policy (which may wait), so that a write that can succeed is not
// refused for the slack.
template <class CharT, class Traits>
const CharT* basic_streambuf<CharT, Traits>::grow(std::size_t need, const CharT* src) {
    try {
        if (need > max_chars) fail_too_large();
        const std::size_t minimal = block_bytes(need);
        const std::size_t geometric = block_bytes(next_capacity(need));
        const allocation_result got =
            bpool::allocate_at_least(*resource_, minimal, geometric, alignof(CharT));
        auto* data = static_cast<CharT*>(got.ptr);
        const std::size_t used = size();
        if (used != 0) Traits::copy(data, data_, used);
        if (src != nullptr && holds(src)) src = data + (src - data_);
        replace_storage(data, got.bytes);
        return src;
    } catch (...) {
        error_ = failure_code();
        throw;
    }
}

template <class CharT, class Traits>
std::streamsize basic_streambuf<CharT, Traits>::xsputn_growing(const CharT* s, std::streamsize n) {
    if (n <= 0) return 0;
    const auto count = static_cast<std::size_t>(n);
    if (count > max_chars - put_pos()) fail_too_large();
    s = grow(put_pos() + count, s);
    copy_in(s, count);
    return n;
}

template <class CharT, class Traits>
std::error_code basic_streambuf<CharT, Traits>::failure_code() noexcept {
    try {
        throw;
    } catch (const capacity_exceeded& e) {
        return e.code();
    } catch (const std::length_error&) {
        return make_error_code(errc::too_large);
    } catch (...) {  // std::bad_alloc, or whatever a custom resource throws
        return make_error_code(errc::out_of_memory);
    }
}

template <class CharT, class Traits>
void basic_streambuf<CharT, Traits>::shrink_to_fit() noexcept {
    const std::size_t used = size();
    if (used == 0) {
        free_storage();
        data_ = nullptr;
        cap_ = bytes_ = high_ = 0;
        set_areas(0, 0);
        return;
    }
    const std::size_t bytes = block_bytes(used);
    if (bytes >= cap_ * sizeof(CharT)) return;
    void* p = try_take(bytes);  // never waits: shrinking is optional
    if (p == nullptr) return;
    auto* data = static_cast<CharT*>(p);
    Traits::copy(data, data_, used);
    replace_storage(data, bytes);
}

template <class CharT, class Traits>
auto basic_streambuf<CharT, Traits>::seekoff(off_type off, std::ios_base::seekdir dir,
                                             std::ios_base::openmode which) -> pos_type {
    const pos_type fail = pos_type(off_type(-1));
    const bool in = (which & std::ios_base::in) != 0, out = (which & std::ios_base::out) != 0;
    if (!in && !out) return fail;
    if (in && out && dir == std::ios_base::cur) return fail;  // which position? (as stringbuf)
    high_ = size();
    const auto end = static_cast<off_type>(high_);
    off_type from = 0;
    if (dir == std::ios_base::end) from = end;
    if (dir == std::ios_base::cur) from = static_cast<off_type>(in ? get_pos() : put_pos());
    if (off < -from || off > end - from) return fail;  // outside [0, size()], without overflow
    const auto to = static_cast<std::size_t>(from + off);
    set_areas(in ? to : get_pos(), out ? to : put_pos());
    return pos_type(off_type(to));
}

/// A `std` stream (`Stream` is `std::basic_ostream`, `std::basic_istream` or
/// `std::basic_iostream`) that owns a `bpool::basic_streambuf`: the string-stream of a pool. Use
/// the aliases `bpool::ostream`, `bpool::istream`, `bpool::stringstream` (and, for `wchar_t`,
/// `bpool::wostream`, `bpool::wistream`, `bpool::wstringstream`).
///
/// Writes at the pool's capacity follow the pool's policy; a write that fails sets `badbit` (and
/// throws the pool's exception only if `exceptions()` includes `badbit`), `error()` says why, and
/// what was written before is intact. `reset()` empties the stream and clears its state.
///
/// Thread safety: one thread at a time, like any stream; the pool may be shared freely.
template <class Stream>
class pool_stream : public Stream {
  public:
    using char_type = typename Stream::char_type;                 ///< The character type.
    using traits_type = typename Stream::traits_type;             ///< The character traits.
    using buffer_type = basic_streambuf<char_type, traits_type>;  ///< What `rdbuf()` points to.
    using view_type = typename buffer_type::view_type;            ///< What `view()` returns.

    // The std stream is built without a buffer, and given buf_ once buf_ exists: handing it
    // &buf_ before buf_ is constructed would refer to a member whose lifetime has not begun.
    // basic_ios::rdbuf(sb) rather than a second init(sb): it sets the buffer and clears the
    // badbit init(nullptr) set, and touches nothing else, whereas initializing an ios_base twice
    // is not something every standard library is written for.

    /// Effects: an empty stream drawing from `pool`. Throws: what the `std` stream's constructor
    /// throws (nothing is allocated from the pool yet).
    explicit pool_stream(pool_resource& pool) : Stream(nullptr), buf_(pool) {
        Stream::rdbuf(std::addressof(buf_));
    }

    /// Effects: an empty stream drawing from `resource` (a pool, or any resource).
    /// Throws: `std::invalid_argument` if `resource` is null.
    explicit pool_stream(std::pmr::memory_resource* resource) : Stream(nullptr), buf_(resource) {
        Stream::rdbuf(std::addressof(buf_));
    }

    /// Effects: a stream drawing from `pool` that starts with `contents`: reads start at the
    /// beginning, writes append. Throws: what allocating the storage throws (the pool's policy
    /// applies).
    pool_stream(pool_resource& pool, view_type contents) : pool_stream(pool) {
        buf_.assign(contents);
    }

    /// Effects: as above, from any resource.
    pool_stream(std::pmr::memory_resource* resource, view_type contents) : pool_stream(resource) {
        buf_.assign(contents);
    }

    /// Effects: takes `other`'s state and buffer (contents, positions, resource); `other` is left
    /// an empty stream over its own (empty) buffer, drawing from the same resource.
    pool_stream(pool_stream&& other) : Stream(std::move(other)), buf_(std::move(other.buf_)) {
        this->set_rdbuf(&buf_);
    }

    /// Effects: exchanges stream state with `other`, then takes its buffer.
    pool_stream& operator=(pool_stream&& other) {
        Stream::operator=(std::move(other));
        buf_ = std::move(other.buf_);
        return *this;
    }

    pool_stream(const pool_stream&) = delete;
    pool_stream& operator=(const pool_stream&) = delete;

    /// Effects: destroys the stream, then its buffer (whose storage goes back to the resource).
    ~pool_stream() override = default;

    /// Effects: exchanges stream state and buffers with `other`. Throws nothing.
    void swap(pool_stream& other) noexcept {
        Stream::swap(other);
        buf_.swap(other.buf_);
    }

    /// Returns the stream's buffer (never null; hides `std::basic_ios::rdbuf`).
    [[nodiscard]] buffer_type* rdbuf() const noexcept { return std::addressof(buf_); }

    /// Returns the characters written so far (`rdbuf()->view()`).
    [[nodiscard]] view_type view() const noexcept { return buf_.view(); }

    /// Returns a copy of the characters written so far, allocated with `alloc`.
    template <class Alloc = std::allocator<char_type>>
    [[nodiscard]] std::basic_string<char_type, traits_type, Alloc> str(
        const Alloc& alloc = Alloc()) const {
        const view_type v = view();
        return std::basic_string<char_type, traits_type, Alloc>(v.begin(), v.end(), alloc);
    }

    /// A point of the contents to come back to (`rdbuf()->mark()`).
    using mark_type = typename buffer_type::mark_type;

    /// Returns the current end of the contents, for `rollback`: take it before a record that is
    /// written with several `<<`. Throws nothing.
    [[nodiscard]] mark_type mark() const noexcept { return buf_.mark(); }

    /// Effects: `rdbuf()->rollback(m)` (what was appended since `m` is gone) and clears the
    /// state flags, so that a record that failed half-way at the pool's capacity is undone and
    /// the stream writes again; `error()` still says why the write failed. Throws nothing.
    void rollback(mark_type m) noexcept {
        buf_.rollback(m);
        this->clear();
    }

    /// Returns why the last write that failed did (`rdbuf()->error()`).
    [[nodiscard]] std::error_code error() const noexcept { return buf_.error(); }

    /// Effects: empties the stream (keeping its storage), clears `error()` and the state flags.
    void reset() {
        buf_.clear();
        this->clear();
    }

  private:
    mutable buffer_type buf_;  // mutable: rdbuf() is const and returns it mutable, as std's does
};

/// An output stream whose characters live in a pool: like `std::basic_ostringstream`.
template <class CharT, class Traits = std::char_traits<CharT>>
using basic_ostream = pool_stream<std::basic_ostream<CharT, Traits>>;
/// An input stream over characters in a pool: like `std::basic_istringstream`.
template <class CharT, class Traits = std::char_traits<CharT>>
using basic_istream = pool_stream<std::basic_istream<CharT, Traits>>;
/// An input and output stream whose characters live in a pool: like `std::basic_stringstream`.
template <class CharT, class Traits = std::char_traits<CharT>>
using basic_stringstream = pool_stream<std::basic_iostream<CharT, Traits>>;

using streambuf = basic_streambuf<char>;        ///< Characters in a pool.
using ostream = basic_ostream<char>;            ///< Like `std::ostringstream`, in a pool.
using istream = basic_istream<char>;            ///< Like `std::istringstream`, in a pool.
using stringstream = basic_stringstream<char>;  ///< Like `std::stringstream`, in a pool.

using wstreambuf = basic_streambuf<wchar_t>;        ///< Wide characters in a pool.
using wostream = basic_ostream<wchar_t>;            ///< Like `std::wostringstream`, in a pool.
using wistream = basic_istream<wchar_t>;            ///< Like `std::wistringstream`, in a pool.
using wstringstream = basic_stringstream<wchar_t>;  ///< Like `std::wstringstream`, in a pool.

}  // namespace bpool
