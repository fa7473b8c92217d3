// bpool/adapters/allocator.hpp: bpool::allocator<T>, a classic (non-pmr) stateful allocator over a
// pool, for containers that take an allocator template argument (header-only, with bpool::bpool).
#pragma once

#include <cstddef>
#include <limits>
#include <memory_resource>
#include <new>
#include <stdexcept>
#include <type_traits>

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

}  // namespace bpool
