#include "pool/options.hpp"

#include <algorithm>
#include <cmath>

#include "classes/size_classes.hpp"

namespace bpool {

namespace {
thread_local const exhaustion_scope* current_scope = nullptr;
}  // namespace

exhaustion_scope::exhaustion_scope(exhaustion policy) noexcept
    : has_policy_(true), policy_(policy), deadline_(clock::time_point::max()) {
    install();
}

exhaustion_scope::exhaustion_scope(clock::time_point deadline) noexcept
    : has_policy_(false), policy_(exhaustion::wait), deadline_(deadline) {
    install();
}

exhaustion_scope::exhaustion_scope(exhaustion policy, clock::time_point deadline) noexcept
    : has_policy_(true), policy_(policy), deadline_(deadline) {
    install();
}

void exhaustion_scope::install() noexcept {
    // Store the effective values: the innermost policy, the earliest deadline.
    outer_ = current_scope;
    if (outer_ != nullptr) {
        if (!has_policy_ && outer_->has_policy_) {
            has_policy_ = true;
            policy_ = outer_->policy_;
        }
        deadline_ = std::min(deadline_, outer_->deadline_);
    }
    current_scope = this;
}

exhaustion_scope::~exhaustion_scope() {
    current_scope = outer_;
}

namespace detail {

void scope_override(exhaustion* policy, std::chrono::steady_clock::time_point* deadline,
                    bool keep_policy) noexcept {
    const exhaustion_scope* s = current_scope;
    if (s == nullptr) return;
    s->apply(policy, deadline, keep_policy);
}

pool_options normalize(const pool_options& in) noexcept {
    pool_options o = in;
    // The largest pooled block: the class at or below the request, within [16 B, 1 MiB].
    const std::size_t want = std::clamp(o.largest_pooled_block, min_block_size, max_block_size);
    unsigned c = size_to_class(want);
    if (classes[c].size > want) --c;
    o.largest_pooled_block = classes[c].size;
    if (o.max_cached_bytes == 0) o.max_cached_bytes = default_max_cached_bytes;

    backoff_options& b = o.backoff;
    using ns = std::chrono::nanoseconds;
    b.initial_interval = std::max(b.initial_interval, ns{1000});
    b.max_interval = std::max(b.max_interval, b.initial_interval);
    b.max_elapsed = std::max(b.max_elapsed, ns{0});
    b.multiplier = std::isfinite(b.multiplier) ? std::max(b.multiplier, 1.0) : 2.0;
    b.randomization = std::isfinite(b.randomization) ? std::clamp(b.randomization, 0.0, 1.0) : 0.0;
    o.delay_threshold =
        std::isfinite(o.delay_threshold) && o.delay_threshold > 0.0 && o.delay_threshold < 1.0
            ? o.delay_threshold
            : 0.0;
    o.stall_warning = std::max(o.stall_warning, ns{0});
    return o;
}

}  // namespace detail
}  // namespace bpool
