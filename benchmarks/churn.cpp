#include "churn.hpp"

#include <algorithm>
#include <cmath>
#include <random>

namespace bench {

std::vector<std::uint32_t> log_uniform_sizes(std::size_t count, std::size_t lo, std::size_t hi,
                                             std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> log_size(std::log(static_cast<double>(lo)),
                                                    std::log(static_cast<double>(hi) + 1.0));
    std::vector<std::uint32_t> sizes(count);
    for (auto& s : sizes) {
        const auto n = static_cast<std::size_t>(std::exp(log_size(rng)));
        s = static_cast<std::uint32_t>(std::clamp(n, lo, hi));
    }
    return sizes;
}

churn_plan make_churn_plan(std::size_t max_bytes, std::uint64_t seed) {
    churn_plan plan;
    plan.initial = log_uniform_sizes(churn_plan::live_blocks, 8, max_bytes, seed);
    plan.sizes = log_uniform_sizes(churn_plan::steps, 8, max_bytes, seed + 1);
    std::mt19937_64 rng(seed + 2);
    std::uniform_int_distribution<std::uint16_t> slot(0, churn_plan::live_blocks - 1);
    plan.slots.resize(churn_plan::steps);
    for (auto& s : plan.slots)
        s = slot(rng);
    return plan;
}

std::size_t peak_live_bytes(const churn_plan& plan, std::uint64_t steps,
                            const std::function<std::size_t(std::size_t)>& rounded) {
    std::vector<std::size_t> next(plan.sizes.size());  // rounded once: steps may be 10^8
    std::transform(plan.sizes.begin(), plan.sizes.end(), next.begin(), rounded);
    std::vector<std::size_t> live(plan.initial.size());
    std::transform(plan.initial.begin(), plan.initial.end(), live.begin(), rounded);
    std::size_t total = 0;
    for (const std::size_t n : live)
        total += n;
    std::size_t peak = total;
    for (std::uint64_t k = 0; k < steps; ++k) {
        const std::size_t i = k & (churn_plan::steps - 1);
        std::size_t& slot = live[plan.slots[i]];
        total = total - slot + next[i];
        slot = next[i];
        peak = std::max(peak, total);
    }
    return peak;
}

std::size_t class_peaks_bytes(const churn_plan& plan, std::uint64_t steps,
                              const std::function<std::size_t(std::size_t)>& rounded) {
    // Block sizes are few (size classes): number them once, then count live blocks per number.
    std::vector<std::size_t> sizes;
    for (const auto* list : {&plan.initial, &plan.sizes})
        for (const std::uint32_t n : *list)
            sizes.push_back(rounded(n));
    std::sort(sizes.begin(), sizes.end());
    sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
    auto index = [&](std::uint32_t n) {
        return static_cast<std::size_t>(std::lower_bound(sizes.begin(), sizes.end(), rounded(n)) -
                                        sizes.begin());
    };
    std::vector<std::size_t> next(plan.sizes.size());
    std::transform(plan.sizes.begin(), plan.sizes.end(), next.begin(), index);
    std::vector<std::size_t> slot(plan.initial.size());
    std::transform(plan.initial.begin(), plan.initial.end(), slot.begin(), index);
    std::vector<std::size_t> live(sizes.size()), peak(sizes.size());
    for (const std::size_t c : slot)
        peak[c] = ++live[c];
    for (std::uint64_t k = 0; k < steps; ++k) {
        const std::size_t i = k & (churn_plan::steps - 1);
        std::size_t& s = slot[plan.slots[i]];
        --live[s];
        s = next[i];
        peak[s] = std::max(peak[s], ++live[s]);
    }
    std::size_t total = 0;
    for (std::size_t c = 0; c < sizes.size(); ++c)
        total += sizes[c] * peak[c];
    return total;
}

live_set::live_set(std::pmr::memory_resource& resource, const churn_plan& plan)
    : resource_(resource), plan_(plan) {
    blocks_.reserve(plan.initial.size());
    for (const std::uint32_t size : plan.initial) {
        blocks_.push_back({resource_.allocate(size), size});
        touch(blocks_.back().p, size);
    }
}

live_set::~live_set() {
    for (const block& b : blocks_)
        resource_.deallocate(b.p, b.size);
}

}  // namespace bench
