/// @file
/// bpool/errors.hpp: the exception thrown at the capacity, and bpool's std::error_code category.
#pragma once

#include <chrono>
#include <cstddef>
#include <new>
#include <system_error>

namespace bpool {

/// Error codes reported by bpool operations that return `std::error_code` instead of throwing
/// (`bpool::buffer::write`, the stream adapters). The category is `bpool::error_category()`.
enum class errc : int {
    capacity_exceeded = 1,  ///< The pool's capacity (or live-block cap) was reached and the policy
                            ///< did not let the request proceed.
    timed_out,              ///< The request waited for memory until its deadline and gave up.
    too_large,              ///< The request cannot be represented (size overflow).
    out_of_memory,          ///< The upstream resource failed (`std::bad_alloc`).
};

/// Returns the category of `bpool::errc` (name "bpool"). Thread-safe; the object lives forever.
[[nodiscard]] const std::error_category& error_category() noexcept;

/// Makes an `std::error_code` from a `bpool::errc` (found by argument-dependent lookup).
[[nodiscard]] inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

/// Thrown when a request cannot be served within the pool's capacity: at once under the `fail`
/// policy, after the wait under `wait` (or `allocate_for`). Derived from `std::bad_alloc` so that
/// code written for any allocator handles it. Copying never throws.
class capacity_exceeded : public std::bad_alloc {
  public:
    /// Effects: records the request and the circumstances; builds the message returned by `what()`.
    /// `timed_out` is true when the request waited and its deadline passed (then `code()` is
    /// `errc::timed_out`), false when it was refused without waiting.
    capacity_exceeded(std::size_t requested, std::chrono::nanoseconds waited, std::size_t capacity,
                      bool timed_out = false) noexcept;

    /// Effects: as the constructor above, but `what()` returns `message` (truncated to the
    /// exception's fixed message buffer; the built message if `message` is null): for a refusal
    /// the numbers alone do not explain, such as `buffer_pool::get` at its live-buffer cap.
    capacity_exceeded(std::size_t requested, std::chrono::nanoseconds waited, std::size_t capacity,
                      bool timed_out, const char* message) noexcept;

    /// Returns a message naming the requested size, the time waited and the capacity (or the
    /// message given to the constructor).
    [[nodiscard]] const char* what() const noexcept override { return what_; }
    /// Returns the number of bytes that were requested.
    [[nodiscard]] std::size_t requested() const noexcept { return requested_; }
    /// Returns how long the request waited before giving up (zero when it did not wait).
    [[nodiscard]] std::chrono::nanoseconds waited() const noexcept { return waited_; }
    /// Returns the capacity in force when the request gave up, in bytes (0: another cap refused
    /// it: the live-block cap, or a buffer_pool's live-buffer cap).
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    /// Returns `errc::timed_out` if the request waited until its deadline, else
    /// `errc::capacity_exceeded`.
    [[nodiscard]] std::error_code code() const noexcept {
        return make_error_code(timed_out_ ? errc::timed_out : errc::capacity_exceeded);
    }

  private:
    std::size_t requested_;
    std::chrono::nanoseconds waited_;
    std::size_t capacity_;
    bool timed_out_;
    char what_[176];

    void build_message() noexcept;
};

}  // namespace bpool

/// Makes `bpool::errc` values convert implicitly to `std::error_code` (through
/// `bpool::make_error_code`), so that `ec == bpool::errc::timed_out` and `return errc::...;` work.
template <>
struct std::is_error_code_enum<bpool::errc> : std::true_type {};
