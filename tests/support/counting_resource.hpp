// A test upstream: counts what the pool takes and gives back, checks that every deallocation names
// exactly the size and alignment of its allocation, and can fail allocations on demand. The burst
// benchmark (benchmarks/burst.cpp) counts the live bytes of every subject through it too: one lock
// and one map node per call are noise next to the 32 KiB it writes into each buffer.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory_resource>
#include <mutex>
#include <new>

namespace bpool::test {

class counting_resource final : public std::pmr::memory_resource {
  public:
    explicit counting_resource(
        std::pmr::memory_resource* upstream = std::pmr::new_delete_resource())
        : upstream_(upstream) {}

    /// The next `n` allocations succeed, the one after throws std::bad_alloc (then all succeed).
    void fail_after(std::size_t n) {
        std::lock_guard lock(mutex_);
        fail_countdown_ = static_cast<std::int64_t>(n);
    }
    /// Every allocation throws while `on`.
    void fail_all(bool on) {
        std::lock_guard lock(mutex_);
        fail_all_ = on;
    }

    [[nodiscard]] std::size_t live_bytes() const {
        std::lock_guard lock(mutex_);
        return live_bytes_;
    }
    [[nodiscard]] std::size_t live_allocations() const {
        std::lock_guard lock(mutex_);
        return blocks_.size();
    }
    [[nodiscard]] std::size_t peak_bytes() const {
        std::lock_guard lock(mutex_);
        return peak_bytes_;
    }
    /// The highest `live_allocations()` so far.
    [[nodiscard]] std::size_t peak_allocations() const {
        std::lock_guard lock(mutex_);
        return peak_allocations_;
    }
    [[nodiscard]] std::size_t allocations() const {
        std::lock_guard lock(mutex_);
        return allocations_;
    }
    [[nodiscard]] std::size_t failures() const {
        std::lock_guard lock(mutex_);
        return failures_;
    }
    /// Deallocations whose pointer, size or alignment did not match an allocation.
    [[nodiscard]] std::size_t mismatches() const {
        std::lock_guard lock(mutex_);
        return mismatches_;
    }
    /// The strictest alignment any allocation asked for.
    [[nodiscard]] std::size_t max_alignment() const {
        std::lock_guard lock(mutex_);
        return max_alignment_;
    }
    /// Allocations returned with less alignment than asked.
    [[nodiscard]] std::size_t misaligned() const {
        std::lock_guard lock(mutex_);
        return misaligned_;
    }

  private:
    void* do_allocate(std::size_t bytes, std::size_t alignment) override {
        {
            std::lock_guard lock(mutex_);
            if (fail_all_ || (fail_countdown_ >= 0 && fail_countdown_-- == 0)) {
                ++failures_;
                throw std::bad_alloc();
            }
        }
        void* p = upstream_->allocate(bytes, alignment);
        std::lock_guard lock(mutex_);
        if (reinterpret_cast<std::uintptr_t>(p) % alignment != 0) ++misaligned_;
        blocks_[p] = {bytes, alignment};
        ++allocations_;
        if (alignment > max_alignment_) max_alignment_ = alignment;
        live_bytes_ += bytes;
        if (live_bytes_ > peak_bytes_) peak_bytes_ = live_bytes_;
        if (blocks_.size() > peak_allocations_) peak_allocations_ = blocks_.size();
        return p;
    }

    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
        {
            std::lock_guard lock(mutex_);
            auto it = blocks_.find(p);
            if (it == blocks_.end() || it->second.bytes != bytes || it->second.align != alignment) {
                ++mismatches_;
                return;  // do not pass a bad pointer on: the test reports the mismatch
            }
            live_bytes_ -= bytes;
            blocks_.erase(it);
        }
        upstream_->deallocate(p, bytes, alignment);
    }

    [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
        return this == &other;
    }

    struct record {
        std::size_t bytes;
        std::size_t align;
    };

    std::pmr::memory_resource* upstream_;
    mutable std::mutex mutex_;
    std::map<void*, record> blocks_;
    std::size_t live_bytes_ = 0, peak_bytes_ = 0, allocations_ = 0, failures_ = 0;
    std::size_t mismatches_ = 0, misaligned_ = 0, max_alignment_ = 0, peak_allocations_ = 0;
    std::int64_t fail_countdown_ = -1;
    bool fail_all_ = false;
};

/// Returns whether `p` is aligned to `a` bytes.
inline bool aligned(const void* p, std::size_t a) {
    return reinterpret_cast<std::uintptr_t>(p) % a == 0;
}

/// The bytes fill_pattern writes: all of a small block; of a large one the first and last 256
/// bytes and every 61st byte between (enough to catch a block handed out twice or overlapping).
template <class F>
void for_pattern_bytes(std::size_t n, F&& f) {
    if (n <= 4096) {
        for (std::size_t i = 0; i < n; ++i)
            f(i);
        return;
    }
    for (std::size_t i = 0; i < 256; ++i)
        f(i);
    for (std::size_t i = 256; i < n - 256; i += 61)
        f(i);
    for (std::size_t i = n - 256; i < n; ++i)
        f(i);
}
inline unsigned char pattern_byte(std::uint64_t seed, std::size_t i) {
    return static_cast<unsigned char>((seed * 0x9E3779B97F4A7C15ull + i * 131) >> 7);
}
/// Writes a pattern derived from `seed` into the `n` bytes at `p`.
inline void fill_pattern(void* p, std::size_t n, std::uint64_t seed) {
    auto* b = static_cast<unsigned char*>(p);
    for_pattern_bytes(n, [&](std::size_t i) { b[i] = pattern_byte(seed, i); });
}
/// Returns whether the pattern written by fill_pattern(p, n, seed) is intact.
[[nodiscard]] inline bool check_pattern(const void* p, std::size_t n, std::uint64_t seed) {
    const auto* b = static_cast<const unsigned char*>(p);
    bool ok = true;
    for_pattern_bytes(n, [&](std::size_t i) { ok = ok && b[i] == pattern_byte(seed, i); });
    return ok;
}

}  // namespace bpool::test
