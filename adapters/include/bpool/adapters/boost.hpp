/// @file
/// bpool/adapters/boost.hpp: a pool as a boost::container::pmr::memory_resource (target
/// bpool::boost).
#pragma once

#include <cstddef>
#include <memory_resource>

#include <bpool/pool_resource.hpp>

#include <boost/container/pmr/global_resource.hpp>
#include <boost/container/pmr/memory_resource.hpp>

namespace bpool {

/// A `boost::container::pmr::memory_resource` that forwards every request to a `pool_resource` (or
/// to any `std::pmr::memory_resource`), so that Boost.Container's pmr containers
/// (`boost::container::pmr::vector`, `string`, `flat_map`, `small_vector`, `stable_vector`, ...)
/// draw from the pool: `boost::container::pmr::vector<int> v(&boost_res);`.
///
/// It holds nothing but the pointer: accounting, the capacity and its policy are the pool's, and a
/// pool at its capacity throws `capacity_exceeded` (a `std::bad_alloc`) through the container as
/// it would through a `std::pmr` one. Two `boost_resource`s are equal when their resources are (for
/// pools: the same pool). The resource must outlive this object, which must outlive every container
/// that uses it.
///
/// Thread safety: as thread-safe as the resource it forwards to (a pool: fully).
class boost_resource final : public boost::container::pmr::memory_resource {
  public:
    /// Effects: a Boost resource that draws from `pool`. Throws nothing.
    explicit boost_resource(pool_resource& pool) noexcept;

    /// Effects: a Boost resource that draws from any `std::pmr` resource.
    /// Throws: `std::invalid_argument` if `resource` is null.
    explicit boost_resource(std::pmr::memory_resource* resource);

    /// Returns the `std::pmr` resource requests go to (never null).
    [[nodiscard]] std::pmr::memory_resource* resource() const noexcept { return resource_; }

  protected:
    /// Effects: `resource()->allocate(bytes, alignment)`.
    /// Throws: what that throws (a pool: `capacity_exceeded` per its policy, `std::bad_alloc`,
    /// `std::invalid_argument` for an alignment that is not a power of two).
    void* do_allocate(std::size_t bytes, std::size_t alignment) override;

    /// Effects: `resource()->deallocate(p, bytes, alignment)`. Throws nothing.
    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;

    /// Returns true if `other` is a `boost_resource` whose resource equals this one's.
    [[nodiscard]] bool do_is_equal(
        const boost::container::pmr::memory_resource& other) const noexcept override;

  private:
    std::pmr::memory_resource* resource_;
};

/// Makes a pool (or any `std::pmr` resource) Boost.Container's default resource
/// (`boost::container::pmr::get_default_resource()`) for the scope's lifetime, as
/// `scoped_default_resource` (`pmr.hpp`) does for `std::pmr`'s: Boost's pmr containers
/// default-constructed meanwhile (`boost::container::pmr::vector<int> v;`), and elements that
/// Boost's uses-allocator construction does not reach, draw from the pool. The two defaults are
/// separate: set both where both libraries' containers are made.
///
/// The default is process-global, with the same caveats as `scoped_default_resource`: use it for
/// program setup, destroy scopes in reverse order, and the resource must outlive the scope and
/// every container that took it as its default. The scope holds the `boost_resource` it installs.
///
/// Thread safety: construction and destruction call `boost::container::pmr::set_default_resource`,
/// which is free of data races.
class scoped_boost_default_resource {
  public:
    /// Effects: makes `pool` Boost's default resource. Throws nothing.
    explicit scoped_boost_default_resource(pool_resource& pool) noexcept
        : resource_(pool), previous_(boost::container::pmr::set_default_resource(&resource_)) {}

    /// Effects: makes `resource` Boost's default resource.
    /// Throws: `std::invalid_argument` if `resource` is null.
    explicit scoped_boost_default_resource(std::pmr::memory_resource* resource)
        : resource_(resource), previous_(boost::container::pmr::set_default_resource(&resource_)) {}

    /// Effects: restores Boost's default resource in force when this scope was created.
    ~scoped_boost_default_resource() { boost::container::pmr::set_default_resource(previous_); }

    scoped_boost_default_resource(const scoped_boost_default_resource&) = delete;
    scoped_boost_default_resource& operator=(const scoped_boost_default_resource&) = delete;

    /// Returns the Boost resource installed (forwarding to the pool). Throws nothing.
    [[nodiscard]] boost_resource& resource() noexcept { return resource_; }

    /// Returns Boost's default resource before this scope (restored on destruction).
    [[nodiscard]] boost::container::pmr::memory_resource* previous() const noexcept {
        return previous_;
    }

  private:
    boost_resource resource_;
    boost::container::pmr::memory_resource* previous_;
};

}  // namespace bpool
