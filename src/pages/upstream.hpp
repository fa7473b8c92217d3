// Layer 3 (with the page heap): the pool's only door to its upstream resource. Every byte the pool
// holds from upstream passes through here and is counted, so stats().upstream_bytes is exact and
// the destructor can prove that everything went back.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory_resource>

namespace bpool::detail {

class upstream_source {
  public:
    explicit upstream_source(std::pmr::memory_resource* r) noexcept : resource_(r) {}

    /// Allocates from upstream and counts it. Throws whatever upstream throws; nothing is counted
    /// then.
    void* allocate(std::size_t bytes, std::size_t alignment);

    /// Gives memory back to upstream and uncounts it. Upstream's deallocate must not throw.
    void deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept;

    [[nodiscard]] std::pmr::memory_resource* resource() const noexcept { return resource_; }
    [[nodiscard]] std::size_t held() const noexcept {
        return held_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] std::size_t peak() const noexcept {
        return peak_.load(std::memory_order_relaxed);
    }

  private:
    std::pmr::memory_resource* resource_;
    std::atomic<std::size_t> held_{0};
    std::atomic<std::size_t> peak_{0};
};

}  // namespace bpool::detail
