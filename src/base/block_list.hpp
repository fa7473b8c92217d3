// An intrusive singly linked list of idle blocks, threaded through each block's first word.
#pragma once

#include <cstdint>
#include <utility>

#include "base/track.hpp"

namespace bpool::detail {

struct block_list {
    void* head = nullptr;
    void* tail = nullptr;
    std::uint32_t count = 0;

    [[nodiscard]] bool empty() const noexcept { return count == 0; }

    /// Adds idle block `p` at the front.
    void push(void* p) noexcept {
        track::write_link(p, head);
        if (count == 0) tail = p;
        head = p;
        ++count;
    }

    /// Removes and returns the front block. Precondition: not empty.
    void* pop() noexcept {
        void* p = head;
        head = track::read_link(p);
        if (--count == 0) tail = nullptr;
        return p;
    }

    /// Moves all of `other` to the front of this list in O(1).
    void splice(block_list& other) noexcept {
        if (other.count == 0) return;
        track::write_link(other.tail, head);
        if (count == 0) tail = other.tail;
        head = other.head;
        count += other.count;
        other = {};
    }

    /// Removes and returns the first `n` blocks (all if fewer). O(n).
    block_list take_front(std::uint32_t n) noexcept {
        if (n >= count) return std::exchange(*this, {});
        block_list out;
        out.head = head;
        out.count = n;
        void* last = head;
        for (std::uint32_t i = 1; i < n; ++i)
            last = track::read_link(last);
        out.tail = last;
        head = track::read_link(last);
        count -= n;
        track::write_link(last, nullptr);
        return out;
    }
};

}  // namespace bpool::detail
