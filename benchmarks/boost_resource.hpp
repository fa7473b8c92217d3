// boost_resource: a Boost.Container pmr pool seen as a std::pmr::memory_resource.
#pragma once

#include <cstddef>
#include <memory_resource>

namespace bench {

/// Owns a `boost::container::pmr` resource of type `Pool` (default-constructed: Boost's default
/// pool options over Boost's new_delete_resource) and forwards std::pmr calls to it, so that the
/// harness drives Boost's pools through the same interface as every other subject.
template <class Pool>
class boost_resource final : public std::pmr::memory_resource {
  private:
    void* do_allocate(std::size_t bytes, std::size_t alignment) override {
        return pool_.allocate(bytes, alignment);
    }
    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
        pool_.deallocate(p, bytes, alignment);
    }
    [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
        return this == &other;
    }

    Pool pool_;
};

}  // namespace bench
