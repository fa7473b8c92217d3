// bpool/adapters/mimalloc.hpp: mimalloc as a std::pmr::memory_resource (target bpool::mimalloc).
#pragma once

#include <cstddef>
#include <memory_resource>

namespace bpool {

/// A `std::pmr::memory_resource` over mimalloc's aligned, sized API (`mi_malloc_aligned`,
/// `mi_free_size_aligned`). Stateless: all instances are equal and share mimalloc's heaps. Usable
/// as a pool's upstream (`pool_resource(options, &bpool::mimalloc_resource::instance())`) and as
/// a plain resource. Thread-safe, like mimalloc.
class mimalloc_resource final : public std::pmr::memory_resource {
  public:
    /// Returns a process-wide instance (never destroyed).
    static mimalloc_resource& instance() noexcept;

    /// Returns mimalloc's version as an integer (e.g. 209 for 2.0.9).
    static int version() noexcept;

  private:
    /// Effects: `mi_malloc_aligned(bytes, alignment)`. Throws `std::bad_alloc` when it returns
    /// null, and `std::invalid_argument` for an alignment that is not a power of two.
    void* do_allocate(std::size_t bytes, std::size_t alignment) override;
    /// Effects: `mi_free_size_aligned(p, bytes, alignment)`.
    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
    /// Returns true for any other mimalloc_resource (they share mimalloc's heaps).
    [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override;
};

}  // namespace bpool
