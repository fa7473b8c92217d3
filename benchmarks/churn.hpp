// churn: a live set of blocks in which each step frees a random block and allocates a new one of
// a random size. The random choices are drawn once, before timing, so that the RNG is not measured.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory_resource>
#include <vector>

namespace bench {

/// Returns `count` sizes drawn log-uniformly from [lo, hi] with a fixed seed (as many 8-16 B
/// requests as 512 B-1 KiB ones: the mix of a real program, not a uniform one).
[[nodiscard]] std::vector<std::uint32_t> log_uniform_sizes(std::size_t count, std::size_t lo,
                                                           std::size_t hi, std::uint64_t seed);

/// Effects: writes the first and the last byte of a block, so that every block handed out is
/// really used (a pool that handed out bad memory would crash, not win).
inline void touch(void* p, std::size_t bytes) noexcept {
    auto* b = static_cast<unsigned char*>(p);
    b[0] = 0x5a;
    b[bytes - 1] = 0xa5;
}

/// The precomputed random operations of a churn: the initial live set, then per step which slot
/// to free and what size to allocate in its place. Steps wrap around after `steps`.
struct churn_plan {
    static constexpr std::size_t live_blocks = 1024;
    static constexpr std::size_t steps = std::size_t{1} << 16;
    std::vector<std::uint32_t> initial;  ///< Sizes of the initial live set (`live_blocks`).
    std::vector<std::uint32_t> sizes;    ///< Size allocated at step k (`steps`).
    std::vector<std::uint16_t> slots;    ///< Slot freed at step k (`steps`).
};

/// Returns a plan with sizes log-uniform in [8, max_bytes], from `seed`.
[[nodiscard]] churn_plan make_churn_plan(std::size_t max_bytes, std::uint64_t seed);

/// Returns the highest total of `rounded(size)` over the live set, from the initial set through
/// `steps` steps of `plan`. With a pool's `block_size` as `rounded`, this is the true peak of the
/// live bytes the pool must hold, computed after timing so that the churn pays nothing for it.
[[nodiscard]] std::size_t peak_live_bytes(const churn_plan& plan, std::uint64_t steps,
                                          const std::function<std::size_t(std::size_t)>& rounded);

/// Returns the sum over block sizes (`rounded(size)`) of the highest number of live blocks of that
/// size, times the size, over the same steps: what any allocator that keeps freed blocks per size
/// class for reuse in that class must hold at least, since each class reaches its own peak at its
/// own moment. With a pool's `block_size` as `rounded`, the floor of that pool's held bytes.
[[nodiscard]] std::size_t class_peaks_bytes(const churn_plan& plan, std::uint64_t steps,
                                            const std::function<std::size_t(std::size_t)>& rounded);

/// A churn's live set, allocated from one resource. Not thread-safe: one per thread.
class live_set {
  public:
    /// Effects: allocates (and touches) the plan's initial live set from `resource`.
    live_set(std::pmr::memory_resource& resource, const churn_plan& plan);
    /// Effects: frees every block still live.
    ~live_set();
    live_set(const live_set&) = delete;
    live_set& operator=(const live_set&) = delete;

    /// Effects: step `k` of the plan: frees one block, allocates and touches its replacement.
    void step(std::uint64_t k) {
        const std::size_t i = k & (churn_plan::steps - 1);
        block& b = blocks_[plan_.slots[i]];
        resource_.deallocate(b.p, b.size);
        b.size = plan_.sizes[i];
        b.p = resource_.allocate(b.size);
        touch(b.p, b.size);
    }

  private:
    struct block {
        void* p;
        std::size_t size;
    };
    std::pmr::memory_resource& resource_;
    const churn_plan& plan_;
    std::vector<block> blocks_;
};

}  // namespace bench
