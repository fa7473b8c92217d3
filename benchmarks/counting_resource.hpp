// counting_resource: live bytes and blocks of any resource, with their peaks, for the burst.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory_resource>

namespace bench {

/// Forwards to `upstream` and counts what is live (requested sizes), with the peaks; thread-safe.
/// Every burst subject goes through one, so that all are measured the same way. Two atomic
/// operations per call are noise next to a 32 KiB write.
class counting_resource final : public std::pmr::memory_resource {
  public:
    explicit counting_resource(std::pmr::memory_resource& upstream) : upstream_(upstream) {}

    /// Returns the bytes allocated and not yet deallocated.
    [[nodiscard]] std::size_t live_bytes() const noexcept {
        return live_bytes_.load(std::memory_order_relaxed);
    }
    /// Returns the highest `live_bytes()` so far.
    [[nodiscard]] std::size_t peak_bytes() const noexcept {
        return peak_bytes_.load(std::memory_order_relaxed);
    }
    /// Returns the highest number of blocks live at once so far.
    [[nodiscard]] std::size_t peak_blocks() const noexcept {
        return peak_blocks_.load(std::memory_order_relaxed);
    }

  private:
    static void raise(std::atomic<std::size_t>& peak, std::size_t value) noexcept {
        std::size_t seen = peak.load(std::memory_order_relaxed);
        while (seen < value &&
               !peak.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
        }
    }

    void* do_allocate(std::size_t bytes, std::size_t alignment) override {
        void* p = upstream_.allocate(bytes, alignment);
        raise(peak_bytes_, live_bytes_.fetch_add(bytes, std::memory_order_relaxed) + bytes);
        raise(peak_blocks_, live_blocks_.fetch_add(1, std::memory_order_relaxed) + 1);
        return p;
    }
    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
        // Counted down first: the memory may be reused by another thread as soon as it is freed.
        live_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
        live_blocks_.fetch_sub(1, std::memory_order_relaxed);
        upstream_.deallocate(p, bytes, alignment);
    }
    [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
        return this == &other;
    }

    std::pmr::memory_resource& upstream_;
    std::atomic<std::size_t> live_bytes_{0};
    std::atomic<std::size_t> live_blocks_{0};
    std::atomic<std::size_t> peak_bytes_{0};
    std::atomic<std::size_t> peak_blocks_{0};
};

}  // namespace bench
