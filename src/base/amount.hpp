// Leaf header: bytes and blocks counted together, the unit of the cap (budget), of credit (thread
// caches) and of the pool's live tally.
#pragma once

#include <cstdint>

namespace bpool::detail {

/// Bytes and blocks of credit.
struct amount {
    std::int64_t bytes = 0;
    std::int64_t blocks = 0;

    friend constexpr amount operator+(amount a, amount b) noexcept {
        return {a.bytes + b.bytes, a.blocks + b.blocks};
    }
    friend constexpr amount operator-(amount a, amount b) noexcept {
        return {a.bytes - b.bytes, a.blocks - b.blocks};
    }
    [[nodiscard]] constexpr bool zero() const noexcept { return bytes == 0 && blocks == 0; }
};

/// `a` with each negative part raised to zero.
[[nodiscard]] constexpr amount clamped(amount a) noexcept {
    return {a.bytes > 0 ? a.bytes : 0, a.blocks > 0 ? a.blocks : 0};
}

}  // namespace bpool::detail
