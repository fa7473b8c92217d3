#include "cache/allowance.hpp"

#include <algorithm>

namespace bpool::detail {

namespace {

// Operations a cache does between two requests for a rebalance: a rebalance walks every cache,
// so a cache that keeps finding no room asks again only after this much use of its own.
constexpr std::uint64_t rebalance_interval = 1024;

}  // namespace

void cache_allowance::tune(thread_cache& tc, unsigned c, bin_sink& sink,
                           retired_chunks& out) noexcept {
    const class_info& k = classes[c];
    bin_tuning& t = tc.tuning_of(c);
    const bin_counts n = tc.counts(c);
    const std::uint64_t ops = n.allocs + n.frees;
    const std::uint32_t limit = tc.limit(c);
    // Each operation weighs its block size, but at most 4 KiB: caching a few large blocks a thread
    // reuses at once (a 1 MiB buffer taken and put back) is worth their room.
    t.moved = (3 * t.moved + (ops - t.mark) * std::min<std::uint64_t>(k.size, bin_weight_cap)) / 4;
    t.mark = ops;
    if (tc.reserved() > fair_share() && limit > 0) {
        // More caches are active than when this one reserved its room: give some back, a bin at
        // a time as each is used.
        shrink_bin(tc, c, limit / 2, sink, out);
    } else if (t.moved < bin_grow_bytes && limit < k.cache_limit) {
        grow_bin(tc, c, std::min<std::uint32_t>(k.cache_limit, std::max(2u, 2 * limit)));
    } else if (t.moved > bin_shrink_bytes && limit > 0) {
        shrink_bin(tc, c, limit / 2, sink, out);
    }
}

void cache_allowance::ask_for_room(thread_cache& tc) noexcept {
    const std::uint64_t ops = tc.operations();
    if (ops - tc.asked_at_ < rebalance_interval) return;
    tc.asked_at_ = ops;
    tc.wants_room_ = true;
}

bool cache_allowance::grow_bin(thread_cache& tc, unsigned c, std::uint32_t limit) noexcept {
    const auto delta = static_cast<std::int64_t>(limit - tc.limit(c)) * classes[c].size;
    const std::int64_t reserved = tc.reserved();
    // Reserve first: the allowance is shared, and its total bounds every cache's idle bytes.
    if (reserved + delta > fair_share()) {
        ask_for_room(tc);  // the caches found active may be fewer now
        return false;
    }
    std::int64_t room = room_.load(std::memory_order_relaxed);
    do {
        if (room < delta) {
            ask_for_room(tc);  // idle caches may hold it
            return false;
        }
    } while (!room_.compare_exchange_weak(room, room - delta, std::memory_order_relaxed));
    tc.set_limit(c, limit);
    tc.reserved_.store(reserved + delta, std::memory_order_relaxed);
    return true;
}

void cache_allowance::shrink_bin(thread_cache& tc, unsigned c, std::uint32_t limit, bin_sink& sink,
                                 retired_chunks& out) noexcept {
    const auto delta = static_cast<std::int64_t>(tc.limit(c) - limit) * classes[c].size;
    // The room goes back before the blocks beyond the new limit go to the central list, so that
    // they are not counted twice against max_cached_bytes there.
    room_.fetch_add(delta, std::memory_order_relaxed);
    tc.reserved_.store(tc.reserved() - delta, std::memory_order_relaxed);
    tc.set_limit(c, limit);
    const std::uint32_t count = tc.count(c);
    if (count > limit) sink.put_blocks(c, tc.take_front(c, count - limit), out);
}

void cache_allowance::release_bins(thread_cache& tc, bin_sink& sink, retired_chunks& out) noexcept {
    for (unsigned c = 0; c < table_size; ++c) {
        if (tc.limit(c) != 0) shrink_bin(tc, c, 0, sink, out);
        tc.tuning_of(c) = bin_tuning{};
    }
    BPOOL_ASSERT(tc.reserved() == 0);
}

void cache_allowance::rebalance(thread_cache& self, cache_registry& registry, bin_sink& sink,
                                retired_chunks& out) noexcept {
    self.wants_room_ = false;
    std::lock_guard lock(registry.mutex());
    // A look first, with no barrier: a cache is active if its operation count moved since the
    // last look (its fast path bumps it; reading it disturbs nobody), idle if not.
    std::uint32_t active = 0;
    registry.each([&](thread_cache& tc) {
        const std::uint64_t ops = tc.operations();
        tc.idle_ = &tc != &self && ops == tc.seen_ops_;
        tc.seen_ops_ = ops;
        active += tc.idle_ ? 0 : 1;
    });
    active_.store(std::max<std::uint32_t>(1, active), std::memory_order_relaxed);
    const std::int64_t fair = fair_share();
    auto over = [&](const thread_cache& tc) {
        const std::int64_t r = tc.reserved();
        return tc.idle_ ? r > 0 : r > fair;
    };
    // Only caches that must give room back are quiesced (and waited for).
    registry.quiesce_locked(over, [&](thread_cache& tc) {
        if (tc.idle_) {
            release_bins(tc, sink, out);
            return;
        }
        // Halve the widest bins (by reserved bytes) until within the share.
        while (tc.reserved() > fair) {
            unsigned widest = 0;
            std::int64_t most = 0;
            for (unsigned c = 0; c < table_size; ++c) {
                const std::int64_t r = std::int64_t{tc.limit(c)} * classes[c].size;
                if (r > most) {
                    most = r;
                    widest = c;
                }
            }
            shrink_bin(tc, widest, tc.limit(widest) / 2, sink, out);
        }
    });
}

}  // namespace bpool::detail
