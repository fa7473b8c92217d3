// Layer 2 (with chunks): the chunks of one size class ordered by address, so that the chunk of
// any block is found by a binary search, whatever the chunks' alignment. Chunks need no alignment
// beyond their blocks' own: an upstream asked for a stricter one pads every chunk (glibc's
// memalign keeps the padding resident), and a chunk that covers its own alignment would need
// exactly that. The table lives in metadata memory (meta.hpp).
//
// Thread safety: none; guarded by the lock of the class's central list.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

#include "meta.hpp"

namespace bpool::detail {

template <class T>
class chunk_index {
  public:
    chunk_index() = default;
    chunk_index(const chunk_index&) = delete;
    chunk_index& operator=(const chunk_index&) = delete;
    ~chunk_index() { clear(); }

    /// Makes sure the next insert cannot fail. Throws std::bad_alloc.
    void reserve_one() {
        if (size_ < room_) return;
        const std::size_t room = room_ == 0 ? 16 : 2 * room_;
        auto* grown = static_cast<entry*>(meta::allocate(room * sizeof(entry)));
        if (grown == nullptr) throw std::bad_alloc();
        if (size_ != 0) std::memcpy(static_cast<void*>(grown), entries_, size_ * sizeof(entry));
        meta::deallocate(entries_, room_ * sizeof(entry));
        entries_ = grown;
        room_ = room;
    }

    /// Adds `value` for the range starting at `base` (room reserved by reserve_one).
    void insert(const void* base, T* value) noexcept {
        const auto key = reinterpret_cast<std::uintptr_t>(base);
        const std::size_t i = upper(key);
        std::memmove(static_cast<void*>(entries_ + i + 1), entries_ + i,
                     (size_ - i) * sizeof(entry));
        entries_[i] = {key, value};
        ++size_;
    }

    /// Removes the range starting at `base` (present).
    void erase(const void* base) noexcept {
        const auto key = reinterpret_cast<std::uintptr_t>(base);
        const std::size_t i = upper(key) - 1;
        std::memmove(static_cast<void*>(entries_ + i), entries_ + i + 1,
                     (size_ - i - 1) * sizeof(entry));
        --size_;
    }

    /// Returns the value of the range [base, base + bytes) that holds `p`, or nullptr.
    [[nodiscard]] T* find(const void* p, std::size_t bytes) const noexcept {
        const auto key = reinterpret_cast<std::uintptr_t>(p);
        const std::size_t i = upper(key);
        if (i == 0) return nullptr;
        const entry& e = entries_[i - 1];
        return key - e.base < bytes ? e.value : nullptr;
    }

    /// Calls f(value) for every range.
    template <class F>
    void for_each(F&& f) const {
        for (std::size_t i = 0; i < size_; ++i)
            f(entries_[i].value);
    }

    /// Removes every range and frees the table.
    void clear() noexcept {
        meta::deallocate(entries_, room_ * sizeof(entry));
        entries_ = nullptr;
        size_ = room_ = 0;
    }

    [[nodiscard]] std::size_t size() const noexcept { return size_; }

  private:
    struct entry {
        std::uintptr_t base;
        T* value;
    };

    // The first entry whose base is above `key`.
    [[nodiscard]] std::size_t upper(std::uintptr_t key) const noexcept {
        std::size_t lo = 0, hi = size_;
        while (lo < hi) {
            const std::size_t mid = lo + (hi - lo) / 2;
            if (entries_[mid].base <= key)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }

    entry* entries_ = nullptr;
    std::size_t size_ = 0;
    std::size_t room_ = 0;
};

}  // namespace bpool::detail
