// A small open-addressing hash map from addresses to values: linear probing, backward-shift
// deletion (no tombstones), power-of-two table kept at most 50 % full. The checked build's registry
// of live blocks. Not thread-safe: its user guards it with its own lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>

#include "base/check.hpp"
#include "meta/meta.hpp"

namespace bpool::detail {

template <class V>
class ptr_map {
  public:
    ptr_map() = default;
    ptr_map(const ptr_map&) = delete;
    ptr_map& operator=(const ptr_map&) = delete;

    /// Returns the number of entries.
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

    /// Returns the value stored for `key`, or nullptr.
    [[nodiscard]] V* find(const void* key) noexcept {
        if (size_ == 0) return nullptr;
        const auto k = reinterpret_cast<std::uintptr_t>(key);
        for (std::size_t i = home(k);; i = (i + 1) & mask_) {
            if (slots_[i].key == k) return &slots_[i].value;
            if (slots_[i].key == 0) return nullptr;
        }
    }

    /// Inserts or overwrites the entry for `key` (never null). Throws std::bad_alloc when the table
    /// must grow and cannot; the map is then unchanged.
    void insert(const void* key, const V& value) {
        BPOOL_ASSERT(key != nullptr);
        while ((size_ + 1) * 2 > capacity())
            grow();
        const auto k = reinterpret_cast<std::uintptr_t>(key);
        std::size_t i = home(k);
        while (slots_[i].key != 0 && slots_[i].key != k)
            i = (i + 1) & mask_;
        if (slots_[i].key == 0) ++size_;
        slots_[i] = {k, value};
    }

    /// Removes the entry for `key`; returns whether there was one (its value is moved to `*out`).
    bool erase(const void* key, V* out = nullptr) noexcept {
        if (size_ == 0) return false;
        const auto k = reinterpret_cast<std::uintptr_t>(key);
        std::size_t i = home(k);
        while (slots_[i].key != k) {
            if (slots_[i].key == 0) return false;
            i = (i + 1) & mask_;
        }
        if (out) *out = std::move(slots_[i].value);
        // Backward shift: pull later entries of the probe run into the hole, so lookups never need
        // tombstones.
        for (std::size_t j = (i + 1) & mask_; slots_[j].key != 0; j = (j + 1) & mask_) {
            const std::size_t h = home(slots_[j].key);
            if (((j - h) & mask_) >= ((j - i) & mask_)) {
                slots_[i] = std::move(slots_[j]);
                i = j;
            }
        }
        slots_[i].key = 0;
        --size_;
        return true;
    }

    /// Calls f(key, value&) for every entry. `f` must not modify the map.
    template <class F>
    void for_each(F&& f) {
        for (std::size_t i = 0; i < capacity(); ++i)
            if (slots_[i].key != 0) f(reinterpret_cast<void*>(slots_[i].key), slots_[i].value);
    }

    /// Removes every entry and frees the table.
    void clear() noexcept {
        release(slots_, capacity());
        slots_ = nullptr;
        mask_ = 0;
        size_ = 0;
    }

    ~ptr_map() { clear(); }

  private:
    struct slot {
        std::uintptr_t key = 0;
        V value{};
    };

    [[nodiscard]] std::size_t capacity() const noexcept { return slots_ ? mask_ + 1 : 0; }

    // Tables live in metadata memory (meta.hpp), never in the global heap.
    static slot* make_table(std::size_t n) {
        void* p = meta::allocate(n * sizeof(slot));
        if (p == nullptr) throw std::bad_alloc();
        auto* table = static_cast<slot*>(p);
        std::uninitialized_value_construct_n(table, n);
        return table;
    }
    static void release(slot* table, std::size_t n) noexcept {
        if (table == nullptr) return;
        std::destroy_n(table, n);
        meta::deallocate(table, n * sizeof(slot));
    }

    [[nodiscard]] std::size_t home(std::uintptr_t k) const noexcept {
        // Fibonacci hashing of the address without its always-zero low bits.
        return static_cast<std::size_t>(((k >> 4) * 0x9E3779B97F4A7C15ull) >> 20) & mask_;
    }

    void grow() {
        const std::size_t old_n = capacity();
        const std::size_t n = old_n ? old_n * 2 : 16;
        slot* old = std::exchange(slots_, make_table(n));
        mask_ = n - 1;
        for (std::size_t i = 0; i < old_n; ++i) {
            if (old[i].key == 0) continue;
            std::size_t j = home(old[i].key);
            while (slots_[j].key != 0)
                j = (j + 1) & mask_;
            slots_[j] = std::move(old[i]);
        }
        release(old, old_n);
    }

    slot* slots_ = nullptr;
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
};

}  // namespace bpool::detail
