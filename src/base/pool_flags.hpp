// Leaf header: the bits of a pool's flags word, which every fast path reads (thread caches) and
// the budget raises and lowers (requests waiting, the soft threshold).
#pragma once

#include <cstdint>

namespace bpool::detail {

/// Bits of a pool's flags word, read by every fast path.
enum pool_flag : std::uint32_t {
    flag_quiesce = 1u << 0,   ///< A quiescer is at work: every operation takes the slow path.
    flag_pressure = 1u << 1,  ///< Requests wait at the cap.
    flag_pacing = 1u << 2,    ///< Usage is above the soft threshold.
    /// The process has no heavy barrier: owners fence for themselves (permanent;
    /// cache/barrier.hpp).
    flag_fenced = 1u << 3,
};
inline constexpr std::uint32_t slow_alloc_flags = flag_quiesce | flag_pressure | flag_pacing;
inline constexpr std::uint32_t slow_free_flags = slow_alloc_flags;

}  // namespace bpool::detail
