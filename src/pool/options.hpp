// pool_options normalization and the thread's exhaustion_scope, as the slow paths see them.
#pragma once

#include <chrono>

#include <bpool/pool_options.hpp>

namespace bpool::detail {

/// The default for pool_options::max_cached_bytes (when given as 0).
inline constexpr std::size_t default_max_cached_bytes = std::size_t{8} << 20;

/// Returns `o` normalized: classes rounded, fractions and intervals clamped, defaults filled in.
pool_options normalize(const pool_options& o) noexcept;

/// Applies the calling thread's exhaustion_scope (if any) to a request's policy and deadline: the
/// scope's policy replaces `*policy` unless `keep_policy`; its deadline shortens `*deadline`.
void scope_override(exhaustion* policy, std::chrono::steady_clock::time_point* deadline,
                    bool keep_policy) noexcept;

}  // namespace bpool::detail
