// spsc_ring: a bounded single-producer single-consumer ring, the hand-off between two threads.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <thread>

namespace bench {

/// Waits politely: a short spin, then yields. On a loaded 2-core machine a pure spin can keep the
/// other side of a hand-off from running at all.
class spin_wait {
  public:
    void operator()() noexcept {
        if (++spins_ < 64) return;
        spins_ = 0;
        std::this_thread::yield();
    }

  private:
    unsigned spins_ = 0;
};

/// A bounded lock-free ring of `Capacity` (a power of two) values of `T`: one thread pushes, one
/// thread pops. Each side keeps a cached copy of the other's index so that it reads the shared
/// cache line only when the ring looks full (or empty).
template <class T, std::size_t Capacity>
class spsc_ring {
    static_assert((Capacity & (Capacity - 1)) == 0, "Capacity must be a power of two");

  public:
    /// Effects: pushes `v`, waiting while the ring is full. Producer only.
    void push(const T& v) noexcept {
        spin_wait wait;
        while (tail_ - head_cache_ == Capacity) {
            head_cache_ = head_.load(std::memory_order_acquire);
            if (tail_ - head_cache_ == Capacity) wait();
        }
        slots_[tail_ & (Capacity - 1)] = v;
        tail_shared_.store(++tail_, std::memory_order_release);
    }

    /// Returns the oldest value, waiting while the ring is empty. Consumer only.
    T pop() noexcept {
        spin_wait wait;
        while (head_local_ == tail_cache_) {
            tail_cache_ = tail_shared_.load(std::memory_order_acquire);
            if (head_local_ == tail_cache_) wait();
        }
        T v = slots_[head_local_ & (Capacity - 1)];
        head_.store(++head_local_, std::memory_order_release);
        return v;
    }

  private:
    // Producer's line: its index and its view of the consumer's.
    alignas(64) std::size_t tail_ = 0;
    std::size_t head_cache_ = 0;
    // Consumer's line.
    alignas(64) std::size_t head_local_ = 0;
    std::size_t tail_cache_ = 0;
    // Shared indices, one line each.
    alignas(64) std::atomic<std::size_t> tail_shared_{0};
    alignas(64) std::atomic<std::size_t> head_{0};
    alignas(64) std::array<T, Capacity> slots_{};
};

}  // namespace bench
