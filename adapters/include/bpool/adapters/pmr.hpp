/// @file
/// bpool/adapters/pmr.hpp: std::pmr helpers: a scoped default resource, and unique_ptrs to objects
/// allocated from a resource (header-only, comes with bpool::bpool).
#pragma once

#include <memory>
#include <memory_resource>
#include <type_traits>
#include <utility>

namespace bpool {

/// Makes a resource (typically a `pool_resource`) the `std::pmr` default resource for the lifetime
/// of the object, and restores the previous default when it is destroyed. Code that
/// default-constructs `std::pmr` containers (`std::pmr::vector<int> v;`) then draws from the pool
/// without being changed.
///
/// The default resource is process-global: while the scope lives, every thread that asks for the
/// default resource gets this one. Use it for program setup (main, before threads start) or for a
/// scope on which no other thread relies. Scopes nest: destroy them in reverse order of creation.
/// The resource must outlive the scope, and every container that took it as its default.
///
/// Thread safety: construction and destruction call `std::pmr::set_default_resource`, which is
/// itself free of data races; the caveat above is about meaning, not races.
class scoped_default_resource {
  public:
    /// Effects: makes `resource` the default resource.
    /// Throws: nothing.
    explicit scoped_default_resource(std::pmr::memory_resource& resource) noexcept
        : previous_(std::pmr::set_default_resource(&resource)) {}

    /// Effects: as above; `nullptr` selects `std::pmr::new_delete_resource()` (as
    /// `std::pmr::set_default_resource` does).
    /// Throws: nothing.
    explicit scoped_default_resource(std::pmr::memory_resource* resource) noexcept
        : previous_(std::pmr::set_default_resource(resource)) {}

    /// Effects: restores the default resource in force when this scope was created.
    ~scoped_default_resource() { std::pmr::set_default_resource(previous_); }

    scoped_default_resource(const scoped_default_resource&) = delete;
    scoped_default_resource& operator=(const scoped_default_resource&) = delete;

    /// Returns the default resource that was in force before this scope (restored on destruction).
    [[nodiscard]] std::pmr::memory_resource* previous() const noexcept { return previous_; }

  private:
    std::pmr::memory_resource* previous_;
};

/// The deleter of `bpool::pmr_unique_ptr<T>`: destroys the object and gives its storage back to
/// the resource it came from. Not convertible between types: a `T` must be deleted as a `T` (the
/// resource needs the exact size), so a `pmr_unique_ptr<Derived>` does not convert to
/// `pmr_unique_ptr<Base>`.
template <class T>
class pmr_deleter {
  public:
    /// Effects: a deleter with no resource, for empty pointers only (so that `pmr_unique_ptr<T>`
    /// is default-constructible); it must not be asked to delete an object.
    pmr_deleter() noexcept = default;

    /// Effects: a deleter for objects allocated from `resource` (which must outlive them).
    explicit pmr_deleter(std::pmr::memory_resource* resource) noexcept : resource_(resource) {}

    /// Effects: `p->~T()`, then gives its storage back to the resource. Throws nothing (unless
    /// `T`'s destructor does). Thread-safe if the resource is.
    void operator()(T* p) const { std::pmr::polymorphic_allocator<T>(resource_).delete_object(p); }

    /// Returns the resource objects are given back to.
    [[nodiscard]] std::pmr::memory_resource* resource() const noexcept { return resource_; }

  private:
    std::pmr::memory_resource* resource_ = nullptr;
};

/// A `std::unique_ptr` to an object allocated from a `std::pmr::memory_resource`.
template <class T>
using pmr_unique_ptr = std::unique_ptr<T, pmr_deleter<T>>;

/// Effects: allocates a `T` from `resource` and constructs it from `args` (uses-allocator
/// construction, so a pmr-aware `T` such as `std::pmr::string` also draws from `resource`).
/// Returns: the owning pointer; destroying it gives the storage back to `resource`.
/// Throws: what `resource.allocate` throws (for a pool at its capacity: `capacity_exceeded`, per
/// its policy) and what `T`'s constructor throws; nothing is leaked. Thread-safe if the resource
/// is.
template <class T, class... Args>
requires(!std::is_array_v<T>)
    [[nodiscard]] pmr_unique_ptr<T> make_pmr_unique(std::pmr::memory_resource& resource,
                                                    Args&&... args) {
    std::pmr::polymorphic_allocator<T> alloc(&resource);
    return pmr_unique_ptr<T>(alloc.template new_object<T>(std::forward<Args>(args)...),
                             pmr_deleter<T>(&resource));
}

}  // namespace bpool
