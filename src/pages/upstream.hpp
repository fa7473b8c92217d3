// Layer 3 (with the page heap): the pool's only door to its upstream resource. Every byte the pool
// holds from upstream passes through here and is counted, so stats().upstream_bytes is exact and
// the destructor can prove that everything went back.
//
// A pool whose capacity counts what it holds (capacity_counts::held) sets a limit here: an
// allocation that would take the count past it is refused before upstream is asked (the bytes are
// reserved with a compare-and-swap first, so concurrent callers never pass the limit together),
// and the pool above gives idle memory back and tries again (pool_core::bounded). The bypass
// policy, and an overcommit that ran out of patience, pass under an uncapped_scope.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory_resource>
#include <new>

namespace bpool::detail {

/// Thrown by upstream_source::allocate when the limit would be passed (nothing is counted or
/// allocated). A std::bad_alloc, should it ever reach a caller who does not expect it.
class upstream_full : public std::bad_alloc {
  public:
    [[nodiscard]] const char* what() const noexcept override {
        return "bpool: the pool holds its whole capacity from upstream";
    }
};

class upstream_source {
  public:
    explicit upstream_source(std::pmr::memory_resource* r) noexcept : resource_(r) {}

    /// Allocates from upstream and counts it. Throws upstream_full if a limit is set, the calling
    /// thread is not in an uncapped_scope, and the count would pass it; whatever upstream throws.
    /// Nothing is counted when it throws.
    void* allocate(std::size_t bytes, std::size_t alignment);

    /// Sets the most bytes the pool may hold from upstream (0: no limit). Holding more already is
    /// not undone; new allocations are refused until the count is back under it. Thread-safe.
    void set_limit(std::size_t bytes) noexcept { limit_.store(bytes, std::memory_order_relaxed); }
    /// Returns the limit (0: none). Thread-safe.
    [[nodiscard]] std::size_t limit() const noexcept {
        return limit_.load(std::memory_order_relaxed);
    }

    /// fork(), in the child: allocations that other threads of the parent had under way will never
    /// complete here; their claims go.
    void reset_after_fork() noexcept {
        claimed_.store(held_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    }

    /// While one lives, the calling thread's allocations pass the limit (bypass, overcommit).
    class uncapped_scope {
      public:
        uncapped_scope() noexcept : outer_(uncapped_) { uncapped_ = true; }
        ~uncapped_scope() { uncapped_ = outer_; }
        uncapped_scope(const uncapped_scope&) = delete;
        uncapped_scope& operator=(const uncapped_scope&) = delete;

      private:
        const bool outer_;
    };

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
    /// Claims `bytes`, within the limit unless uncapped. Returns whether it did.
    bool reserve(std::size_t bytes) noexcept;

    static thread_local bool uncapped_;
    std::pmr::memory_resource* resource_;
    std::atomic<std::size_t> limit_{0};
    std::atomic<std::size_t> claimed_{0};  // held, plus allocations under way (the limit's count)
    std::atomic<std::size_t> held_{0};
    std::atomic<std::size_t> peak_{0};
};

}  // namespace bpool::detail
