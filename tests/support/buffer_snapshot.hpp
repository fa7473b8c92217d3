// Everything a buffer shows about itself, to check that a failed operation changed nothing.
#pragma once

#include <cstddef>
#include <string>

#include <bpool/buffer.hpp>

namespace bpool::test {

struct snapshot {
    const std::byte* data;
    std::size_t size;
    std::size_t capacity;
    std::string contents;

    explicit snapshot(const buffer& b)
        : data(b.data()), size(b.size()), capacity(b.capacity()), contents(b.view()) {}
    bool operator==(const snapshot&) const = default;
};

}  // namespace bpool::test
