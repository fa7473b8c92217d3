// Layer 2 (with chunks): the multi-block chunks of one size class by address, so that the chunk of
// any block is found in O(1) whatever the chunks' alignment. Chunks need no alignment beyond their
// blocks' own: an upstream asked for a stricter one pads every chunk (glibc's memalign keeps the
// padding resident), and a chunk found by masking its blocks' addresses would need exactly that.
//
// Addresses are cut into buckets of G bytes, G the chunk size rounded up to a power of two. A
// chunk of B bytes (G/2 < B <= G) overlaps at most two buckets and is listed in both; a bucket
// overlaps at most three chunks (one whole, two in part). A lookup reads one bucket and checks
// the ranges of at most three chunks. The table lives in metadata memory (ptr_map.hpp).
//
// Thread safety: none; guarded by the lock of the class's central list.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#include "check.hpp"
#include "ptr_map.hpp"

namespace bpool::detail {

template <class T>
class chunk_index {
  public:
    chunk_index() = default;
    chunk_index(const chunk_index&) = delete;
    chunk_index& operator=(const chunk_index&) = delete;

    /// Makes sure the next insert cannot fail. Throws std::bad_alloc.
    void reserve_one() { buckets_.reserve(2); }

    /// Adds `value` for the range [base, base + bytes) (room reserved by reserve_one). `bytes`
    /// is the same for every range of an index.
    void insert(const void* base, std::size_t bytes, T* value) noexcept {
        const auto addr = reinterpret_cast<std::uintptr_t>(base);
        each_bucket(addr, bytes, [&](const void* key) {
            bucket* b = buckets_.find(key);
            if (b == nullptr) {
                buckets_.insert(key, bucket{});  // cannot grow: reserved
                b = buckets_.find(key);
            }
            entry* free = nullptr;
            for (entry& e : b->entries)
                if (e.value == nullptr && free == nullptr) free = &e;
            BPOOL_CHECK(free != nullptr, "chunk index: a bucket overlaps more than three chunks");
            *free = {addr, value};
        });
        ++count_;
    }

    /// Removes the range starting at `base` (present).
    void erase(const void* base, std::size_t bytes) noexcept {
        const auto addr = reinterpret_cast<std::uintptr_t>(base);
        each_bucket(addr, bytes, [&](const void* key) {
            bucket* b = buckets_.find(key);
            BPOOL_ASSERT(b != nullptr);
            bool empty = true;
            for (entry& e : b->entries) {
                if (e.base == addr) e = {};
                empty = empty && e.value == nullptr;
            }
            if (empty) buckets_.erase(key);
        });
        --count_;
    }

    /// Returns the value of the range that holds `p`, or nullptr.
    [[nodiscard]] T* find(const void* p, std::size_t bytes) noexcept {
        const auto addr = reinterpret_cast<std::uintptr_t>(p);
        const bucket* b = buckets_.find(key_of(addr >> shift_of(bytes)));
        if (b == nullptr) return nullptr;
        for (const entry& e : b->entries)
            if (e.value != nullptr && addr - e.base < bytes) return e.value;
        return nullptr;
    }

    /// Calls f(value) once for every range.
    template <class F>
    void for_each(std::size_t bytes, F&& f) {
        const unsigned shift = shift_of(bytes);
        buckets_.for_each([&](void* key, bucket& b) {
            for (const entry& e : b.entries)
                if (e.value != nullptr && key_of(e.base >> shift) == key) f(e.value);
        });
    }

    /// Removes every range and frees the table.
    void clear() noexcept {
        buckets_.clear();
        count_ = 0;
    }

    [[nodiscard]] std::size_t size() const noexcept { return count_; }

  private:
    struct entry {
        std::uintptr_t base = 0;
        T* value = nullptr;
    };
    struct bucket {
        entry entries[3];
    };

    static unsigned shift_of(std::size_t bytes) noexcept {
        return static_cast<unsigned>(std::bit_width(std::bit_ceil(bytes)) - 1);
    }
    // Bucket numbers as map keys: shifted so that the map's hash sees their low bits, never 0.
    static void* key_of(std::uintptr_t bucket_number) noexcept {
        return reinterpret_cast<void*>((bucket_number << 4) | 8);
    }

    template <class F>
    static void each_bucket(std::uintptr_t addr, std::size_t bytes, F&& f) {
        const unsigned shift = shift_of(bytes);
        const std::uintptr_t first = addr >> shift, last = (addr + bytes - 1) >> shift;
        f(key_of(first));
        if (last != first) f(key_of(last));
    }

    ptr_map<bucket> buckets_;
    std::size_t count_ = 0;
};

}  // namespace bpool::detail
