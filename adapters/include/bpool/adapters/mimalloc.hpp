/// @file
/// bpool/adapters/mimalloc.hpp: mimalloc as a std::pmr::memory_resource (target bpool::mimalloc).
#pragma once

#include <cstddef>
#include <memory_resource>

namespace bpool {

/// A `std::pmr::memory_resource` over mimalloc's sized API (`mi_malloc` / `mi_free_size`, or
/// their `_aligned` forms where the alignment needs them). Stateless: all
/// instances are equal and share mimalloc's heaps. Usable as a pool's upstream
/// (`pool_resource(options, &bpool::mimalloc_resource::instance())`) and as a plain resource.
/// Thread-safe, like mimalloc.
///
/// **Linking `bpool::mimalloc` replaces `malloc` for the whole program.** The target links the
/// mimalloc that `find_package(mimalloc)` finds, on Debian the shared `libmimalloc.so` of
/// `libmimalloc-dev`, which is built to override: it defines `malloc`, `free`, `calloc`,
/// `realloc`, `posix_memalign`, `aligned_alloc` and `operator new` / `delete` themselves, and a
/// shared library the executable needs comes before glibc in symbol lookup. So every allocation of
/// the program and of the libraries it loads (`std::allocator`, `std::pmr::new_delete_resource`,
/// glibc's own, and `bpool::global_pool()`'s upstream, which calls `malloc`) is mimalloc's, not
/// only what goes through this resource. Where `bpool::new_delete` or `libbpool_preload.so` also
/// replaces `operator new`, their `operator new` wins and draws from the global pool, whose
/// upstream `malloc` is then mimalloc. Under ASan or TSan the sanitizer's `malloc` comes first.
///
/// Where that is not wanted (the program must keep glibc's `malloc`, or another allocator such as
/// jemalloc or tcmalloc is linked too, and whichever library comes first in the link wins): do
/// not link `bpool::mimalloc`, and give the pool another upstream (the default, `operator new`,
/// or a resource of your own). Or build mimalloc from source with `-DMI_OVERRIDE=OFF` (its
/// `cmake` option; Debian ships no non-overriding or static build) and configure bpool with
/// `-Dmimalloc_DIR=` the directory of that build's `mimalloc-config.cmake`: then only this
/// resource uses mimalloc.
class mimalloc_resource final : public std::pmr::memory_resource {
  public:
    /// Returns a process-wide instance (never destroyed).
    static mimalloc_resource& instance() noexcept;

    /// Returns mimalloc's version as an integer (e.g. 209 for 2.0.9).
    static int version() noexcept;

  private:
    /// Effects: `mi_malloc(bytes)`, or `mi_malloc_aligned(bytes, alignment)` where the alignment
    /// needs it. Throws `std::bad_alloc` when it returns null, and
    /// `std::invalid_argument` for an alignment that is not a power of two.
    void* do_allocate(std::size_t bytes, std::size_t alignment) override;
    /// Effects: `mi_free_size(p, bytes)`, or `mi_free_size_aligned(p, bytes, alignment)` for a
    /// block allocated with `mi_malloc_aligned`.
    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
    /// Returns true for any other mimalloc_resource (they share mimalloc's heaps).
    [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override;
};

}  // namespace bpool
