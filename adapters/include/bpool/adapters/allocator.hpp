/// @file
/// bpool/adapters/allocator.hpp: bpool::allocator<T>, a classic (non-pmr) stateful allocator over a
/// pool, for containers that take an allocator template argument; allocate_unique, and the strings
/// of the pool (bpool::string, hashable) (header-only, with bpool::bpool).
#pragma once

#include <cstddef>
#include <functional>
#include <limits>
#include <memory>
#include <memory_resource>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <bpool/pool_resource.hpp>

namespace bpool {

/// A stateful allocator that draws from a `bpool::pool_resource` (or any
/// `std::pmr::memory_resource`): `std::vector<T, bpool::allocator<T>> v(pool);` — a drop-in
/// replacement for `std::allocator<T>` in code whose containers take an allocator template
/// argument.
///
/// Semantics, chosen so that the allocator travels with the memory it handed out:
/// - **Equality**: two allocators are equal when their resources are (`*a.resource() ==
///   *b.resource()`, i.e. the same pool); memory from one can then be freed by the other.
///   `is_always_equal` is false.
/// - **Propagation**: on copy assignment, move assignment and swap, a container takes the other
///   container's allocator along with its contents (`propagate_on_container_*` are all true). So a
///   move assignment or a swap is O(1), never allocates and never meets a pool's capacity, and
///   swapping containers of different pools is well defined (it is undefined behaviour for
///   allocators that do not propagate, such as `std::pmr::polymorphic_allocator`). For containers
///   that stay with the resource they were built with whatever is assigned to them, use the
///   `std::pmr` containers instead.
/// - **Copy construction** (`select_on_container_copy_construction`): the copy uses the same pool.
/// - **Default construction** draws from `std::pmr::get_default_resource()` at that moment (as
///   `polymorphic_allocator` does): it exists because library code default-constructs allocators
///   (`std::basic_string::substr`, for one). Give containers their pool explicitly.
/// - **Construction of elements** is the default (`allocator_traits` placement-new): unlike
///   `polymorphic_allocator`, the pool is not passed on to nested containers; wrap the allocator
///   in `std::scoped_allocator_adaptor` for that.
///
/// Thread safety: an allocator is a pointer; copies may be used from any threads at once since the
/// pool is thread-safe (a non-pool resource must be thread-safe for that too). The resource must
/// outlive every allocator and all memory allocated through them.
template <class T>
class allocator {
  public:
    using value_type = T;                    ///< The type allocated.
    using size_type = std::size_t;           ///< Counts of objects.
    using difference_type = std::ptrdiff_t;  ///< Differences of pointers.
    /// True: a container that is copy-assigned takes the source's allocator (see above).
    using propagate_on_container_copy_assignment = std::true_type;
    /// True: a container that is move-assigned takes the source's allocator (O(1), no copy).
    using propagate_on_container_move_assignment = std::true_type;
    /// True: swapping containers swaps their allocators (defined across pools).
    using propagate_on_container_swap = std::true_type;
    /// False: allocators of different pools compare unequal.
    using is_always_equal = std::false_type;

    /// Effects: an allocator drawing from the current `std::pmr` default resource (a pool if a
    /// `scoped_default_resource` made it the default). Throws nothing.
    allocator() noexcept : resource_(std::pmr::get_default_resource()) {}

    /// Effects: an allocator drawing from `pool` (implicit, so `std::vector<T,
    /// bpool::allocator<T>> v(pool);` reads naturally). Throws nothing.
    // NOLINTNEXTLINE(google-explicit-constructor)
    allocator(pool_resource& pool) noexcept : resource_(&pool) {}

    /// Effects: an allocator drawing from any `std::pmr::memory_resource`.
    /// Throws: `std::invalid_argument` if `resource` is null.
    explicit allocator(std::pmr::memory_resource* resource) : resource_(resource) {
        if (resource == nullptr) throw std::invalid_argument("bpool::allocator: null resource");
    }

    /// Effects: the rebound copy of `other`: same resource. Throws nothing.
    template <class U>
    // NOLINTNEXTLINE(google-explicit-constructor)
    allocator(const allocator<U>& other) noexcept : resource_(other.resource()) {}

    /// Returns: storage for `n` objects of type `T`, aligned to `alignof(T)` (over-aligned types
    /// included: the pool honours any power-of-two alignment).
    /// Throws: `std::bad_array_new_length` if `n * sizeof(T)` overflows; what the resource throws
    /// (a pool at its capacity: `capacity_exceeded` per its policy, `std::bad_alloc` when
    /// upstream fails). Thread-safe.
    [[nodiscard]] T* allocate(std::size_t n) {
        if (n > max_size()) throw std::bad_array_new_length();
        return static_cast<T*>(resource_->allocate(n * sizeof(T), alignof(T)));
    }

    /// Effects: gives back storage from `allocate(n)` of an allocator equal to this one.
    /// Throws nothing. Thread-safe.
    void deallocate(T* p, std::size_t n) noexcept {
        resource_->deallocate(p, n * sizeof(T), alignof(T));
    }

    /// Returns the largest `n` for which `allocate(n)` does not throw `bad_array_new_length`.
    [[nodiscard]] static constexpr std::size_t max_size() noexcept {
        return std::numeric_limits<std::size_t>::max() / sizeof(T);
    }

    /// Returns an allocator for a copy of a container using this one: this same allocator.
    [[nodiscard]] allocator select_on_container_copy_construction() const noexcept { return *this; }

    /// Returns the resource this allocator draws from (never null).
    [[nodiscard]] std::pmr::memory_resource* resource() const noexcept { return resource_; }

    /// Returns whether memory from `a` can be freed through `b` (their resources are equal).
    template <class U>
    friend bool operator==(const allocator& a, const allocator<U>& b) noexcept {
        return *a.resource() == *b.resource();
    }

  private:
    std::pmr::memory_resource* resource_;
};

/// The deleter of `bpool::allocator_unique_ptr<T>`: destroys the object and gives its storage back
/// through the allocator it was allocated with. It holds that allocator, one pointer, so the
/// `std::unique_ptr` is two pointers. Not convertible between types: a `T` must be deleted as a
/// `T` (the resource needs the exact size), so an `allocator_unique_ptr<Derived>` does not
/// convert to `allocator_unique_ptr<Base>`.
template <class T>
class allocator_deleter {
  public:
    /// Effects: a deleter over the current default resource, for empty pointers only (so that
    /// `allocator_unique_ptr<T>` is default-constructible): it must not be asked to delete an
    /// object that `allocate_unique` did not allocate from that resource. Throws nothing.
    allocator_deleter() noexcept = default;

    /// Effects: a deleter for objects allocated with `alloc` (whose resource must outlive them).
    /// Throws nothing.
    explicit allocator_deleter(const allocator<T>& alloc) noexcept : alloc_(alloc) {}

    /// Effects: destroys `*p` (`std::allocator_traits::destroy`), then gives its storage back to
    /// the allocator's resource. Throws what `T`'s destructor throws (nothing, for the usual
    /// `noexcept` destructor). Thread-safe if the resource is (a pool is).
    void operator()(T* p) const noexcept(std::is_nothrow_destructible_v<T>) {
        allocator<T> alloc = alloc_;
        std::allocator_traits<allocator<T>>::destroy(alloc, p);
        alloc.deallocate(p, 1);
    }

    /// Returns the allocator objects are given back through.
    [[nodiscard]] allocator<T> get_allocator() const noexcept { return alloc_; }

  private:
    allocator<T> alloc_;
};

/// A `std::unique_ptr` to an object allocated with a `bpool::allocator` (`allocate_unique`).
template <class T>
using allocator_unique_ptr = std::unique_ptr<T, allocator_deleter<T>>;

/// Effects: allocates storage for one `T` with `alloc` (rebound to `T`) and constructs it from
/// `args` through `std::allocator_traits::construct`, as a container of `bpool::allocator` does
/// its elements: the pool is not passed on to the object (for a pmr-aware `T` that should draw
/// from the pool too, use `bpool::make_pmr_unique`). Single objects only: `T` is not an array.
/// Returns: the owning pointer, whose deleter destroys the object and gives the storage back
/// through the same allocator.
/// Throws: what `alloc.allocate(1)` throws (for a pool at its capacity, `capacity_exceeded` per
/// its policy; `std::bad_alloc` when upstream fails) and what `T`'s constructor throws; if the
/// constructor throws, the storage is given back first: nothing leaks. Thread-safe if the
/// resource is (a pool is).
template <class T, class U, class... Args>
requires(!std::is_array_v<T>)
    [[nodiscard]] allocator_unique_ptr<T> allocate_unique(const allocator<U>& alloc,
                                                          Args&&... args) {
    allocator<T> a(alloc);
    T* p = a.allocate(1);
    try {
        std::allocator_traits<allocator<T>>::construct(a, p, std::forward<Args>(args)...);
    } catch (...) {
        a.deallocate(p, 1);
        throw;
    }
    return allocator_unique_ptr<T>(p, allocator_deleter<T>(a));
}

/// Effects: `allocate_unique<T>(bpool::allocator<T>(&resource), args...)`: a `T` allocated from
/// `resource` (a `pool_resource`, or any `std::pmr::memory_resource`), which must outlive it.
/// Returns and throws: as above. Thread-safe if the resource is.
template <class T, class... Args>
requires(!std::is_array_v<T>)
    [[nodiscard]] allocator_unique_ptr<T> allocate_unique(std::pmr::memory_resource& resource,
                                                          Args&&... args) {
    return bpool::allocate_unique<T>(allocator<T>(&resource), std::forward<Args>(args)...);
}

/// A `std::basic_string` whose characters live in a pool, with `bpool::allocator`'s semantics
/// (the pool travels with the string on assignment and swap; see `allocator`):
/// `bpool::string s("text", pool);`. Usable as a key of unordered containers: `std::hash` is
/// specialized for the standard character types and hashes equal to
/// `std::hash<std::basic_string_view<CharT>>` of the same characters, as the standard strings'
/// hashes do.
template <class CharT, class Traits = std::char_traits<CharT>>
using basic_string = std::basic_string<CharT, Traits, allocator<CharT>>;

using string = basic_string<char>;         ///< `std::string` in a pool.
using wstring = basic_string<wchar_t>;     ///< `std::wstring` in a pool.
using u8string = basic_string<char8_t>;    ///< `std::u8string` in a pool.
using u16string = basic_string<char16_t>;  ///< `std::u16string` in a pool.
using u32string = basic_string<char32_t>;  ///< `std::u32string` in a pool.

namespace detail {

// What the std::hash specializations below share: the hash of the characters as a string view,
// so that a pool string, a std::string and a string_view of the same text hash alike.
template <class CharT>
struct string_hash {
    [[nodiscard]] std::size_t operator()(const basic_string<CharT>& s) const noexcept {
        return std::hash<std::basic_string_view<CharT>>{}(std::basic_string_view<CharT>(s));
    }
};

}  // namespace detail

}  // namespace bpool

// libstdc++ 12 hashes std::basic_string only with std::allocator and the std::pmr allocator (C++20
// specializes std::hash for those; LWG 3705, hashing with any allocator, came later). Full
// specializations, one per character type, and not a partial one over any traits: a library that
// implements LWG 3705 has a partial specialization for any allocator, which would make a second
// partial one ambiguous, while a full one is always the better match.

/// Hashes a `bpool::string` as `std::hash<std::string_view>` hashes its characters. Throws nothing.
template <>
struct std::hash<bpool::string> : bpool::detail::string_hash<char> {};
/// Hashes a `bpool::wstring` as `std::hash<std::wstring_view>` hashes its characters.
template <>
struct std::hash<bpool::wstring> : bpool::detail::string_hash<wchar_t> {};
/// Hashes a `bpool::u8string` as `std::hash<std::u8string_view>` hashes its characters.
template <>
struct std::hash<bpool::u8string> : bpool::detail::string_hash<char8_t> {};
/// Hashes a `bpool::u16string` as `std::hash<std::u16string_view>` hashes its characters.
template <>
struct std::hash<bpool::u16string> : bpool::detail::string_hash<char16_t> {};
/// Hashes a `bpool::u32string` as `std::hash<std::u32string_view>` hashes its characters.
template <>
struct std::hash<bpool::u32string> : bpool::detail::string_hash<char32_t> {};
