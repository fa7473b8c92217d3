// libFuzzer target: reads the input as a program of operations on a pool_resource (allocate,
// deallocate, write, trim, set_capacity, set_max_live_blocks, try_allocate, upstream failures,
// buffers growing over the pool by writes) and after every step checks that the pool agrees with a
// simple model: live bytes and blocks, and, with the `fail` policy on one thread, that an
// allocation succeeds exactly when it fits under the limits. Any disagreement aborts (a crash for
// libFuzzer).
//
// Contents are checked incrementally, so that a step costs the same however much memory is live:
// every block carries a pattern derived from its seed, checked in full whenever the harness
// touches the block (before it is refilled or freed, and every block is freed by the end of the
// input), and every buffer is compared with its model after each write to it and before it is
// emptied or destroyed. After every step a few windows of that memory (of two blocks and one
// buffer, at places that vary from step to step) are checked too, so that corruption is also
// caught close to the step that caused it.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory_resource>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <bpool/buffer.hpp>
#include <bpool/errors.hpp>
#include <bpool/pool_resource.hpp>

// The harness's own work (filling and checking patterns, the counting upstream) is not instrumented
// for coverage: it is not the code under test, and its loops would only slow every run down and
// add features that guide nothing. The pragma reaches the header's templates and lambdas, which a
// function attribute cannot.
#pragma clang attribute push(__attribute__((no_sanitize("coverage"))), apply_to = function)
#include "support/counting_resource.hpp"
#pragma clang attribute pop

#define HARNESS_ONLY __attribute__((no_sanitize("coverage")))

namespace {

using bpool::test::check_pattern;
using bpool::test::counting_resource;
using bpool::test::fill_pattern;
using bpool::test::pattern_byte;

// The bytes fill_pattern writes into an n-byte block, numbered in order: all of a block of up to
// 4096 bytes; of a larger one the first and last 256 and every 61st between (the rule of
// bpool::test::for_pattern_bytes, which rule_agrees() checks once).
struct pattern_bytes {
    std::size_t n;
    [[nodiscard]] HARNESS_ONLY std::size_t middle() const {
        return n <= 4096 ? 0 : (n - 512 + 60) / 61;
    }
    [[nodiscard]] HARNESS_ONLY std::size_t count() const { return n <= 4096 ? n : 512 + middle(); }
    [[nodiscard]] HARNESS_ONLY std::size_t at(std::size_t k) const {
        if (n <= 4096 || k < 256) return k;
        if (k < 256 + middle()) return 256 + 61 * (k - 256);
        return n - 256 + (k - 256 - middle());
    }
};

HARNESS_ONLY bool rule_agrees() {
    constexpr std::size_t sizes[] = {0, 1, 4096, 4097, 4608, 4669, 70000, 3 << 20};
    for (const std::size_t n : sizes) {
        const pattern_bytes pb{n};
        std::size_t k = 0;
        bool ok = true;
        bpool::test::for_pattern_bytes(n, [&](std::size_t i) { ok = ok && pb.at(k++) == i; });
        if (!ok || k != pb.count()) return false;
    }
    return true;
}

// Checks `len` of the pattern bytes of the n-byte block at `p`, from the `first`-th.
HARNESS_ONLY bool check_window(const void* p, std::size_t n, std::uint64_t seed, std::size_t first,
                               std::size_t len) {
    const auto* b = static_cast<const unsigned char*>(p);
    const pattern_bytes pb{n};
    const std::size_t end = std::min(pb.count(), first + len);
    for (std::size_t k = first; k < end; ++k) {
        const std::size_t i = pb.at(k);
        if (b[i] != pattern_byte(seed, i)) return false;
    }
    return true;
}

// The text a buffer write appends: the pattern of `seed`, every byte.
HARNESS_ONLY std::string pattern_text(std::size_t n, std::uint32_t seed) {
    std::string text(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        text[i] = static_cast<char>(pattern_byte(seed, i));
    return text;
}

#define FUZZ_CHECK(cond)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            std::fprintf(stderr, "pool_fuzz: check failed: %s (line %d)\n", #cond, __LINE__); \
            std::abort();                                                                     \
        }                                                                                     \
    } while (false)

// Consumes the fuzzer's bytes; reads past the end give zeros.
class reader {
  public:
    reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    [[nodiscard]] bool empty() const { return pos_ >= size_; }
    std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
    std::uint32_t u32() {
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i)
            v = v << 8 | byte();
        return v;
    }
    // Sizes: mostly small, sometimes up to a few MiB (pooled classes and direct blocks).
    std::size_t size() {
        const std::uint8_t kind = byte();
        const std::uint32_t v = u32();
        if (kind < 160) return v % 512;
        if (kind < 230) return v % 70000;
        return v % (3u << 20);
    }

  private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

struct live_block {
    void* p;
    std::size_t bytes;
    std::size_t align;
    std::uint64_t seed;
};

class harness {
  public:
    harness(reader& in, counting_resource& upstream)
        : in_(in),
          upstream_(upstream),
          pool_({.largest_pooled_block = std::size_t{16} << (in.byte() % 17),
                 .max_cached_bytes = std::size_t{1} << (10 + in.byte() % 14),
                 .on_exhaustion = bpool::exhaustion::fail},
                &upstream) {}

    void run() {
        while (!in_.empty() && steps_++ < 500) {
            step(in_.byte() % 11);
            verify();
        }
        for (const live_block& b : live_)
            free_block(b);
        live_.clear();
        for (const auto& [buf, model] : buffers_)
            FUZZ_CHECK(buf.view() == model);
        buffers_.clear();
        verify();
        upstream_.fail_all(false);
    }

  private:
    void step(unsigned op) {
        switch (op) {
            case 0:
            case 1:
            case 2:
                allocate(false);
                break;
            case 3:
                allocate(true);
                break;
            case 4:
            case 5:
                if (!live_.empty()) {
                    const std::size_t k = in_.byte() % live_.size();
                    free_block(live_[k]);
                    live_[k] = live_.back();
                    live_.pop_back();
                }
                break;
            case 6:
                if (!live_.empty()) {
                    live_block& b = live_[in_.byte() % live_.size()];
                    FUZZ_CHECK(check_pattern(b.p, b.bytes, b.seed));
                    b.seed = in_.u32();
                    fill_pattern(b.p, b.bytes, b.seed);
                }
                break;
            case 7:
                pool_.trim();
                FUZZ_CHECK(pool_.stats().upstream_bytes == upstream_.live_bytes());
                break;
            case 8: {
                const std::uint8_t what = in_.byte();
                if (what % 2 == 0) {
                    pool_.set_capacity(what < 64 ? 0 : in_.u32() % (8u << 20));
                } else {
                    pool_.set_max_live_blocks(what < 64 ? 0 : in_.byte());
                }
                break;
            }
            case 9:
                buffer_op(in_.byte());
                break;
            default: {
                const std::uint8_t n = in_.byte();
                if (n < 32)
                    upstream_.fail_after(n % 4);  // the next few upstream calls: one fails
                else
                    upstream_.fail_after(SIZE_MAX);
                injected_ = n < 32;
                break;
            }
        }
    }

    void allocate(bool nothrow) {
        if (live_.size() >= 64) return;
        const std::size_t bytes = in_.size();
        const std::size_t align = std::size_t{1} << (in_.byte() % 13);
        const std::size_t block = pool_.block_size(bytes, align);
        const std::size_t cap = pool_.capacity();
        const std::size_t max_blocks = pool_.max_live_blocks();
        const bool fits = (cap == 0 || model_bytes() + block <= cap) &&
                          (max_blocks == 0 || model_blocks() + 1 <= max_blocks);
        void* p = nullptr;
        bool upstream_failed = false;
        if (nothrow) {
            p = pool_.try_allocate(bytes, align);
        } else {
            try {
                p = pool_.allocate(bytes, align);
            } catch (const bpool::capacity_exceeded&) {
            } catch (const std::bad_alloc&) {
                upstream_failed = true;
            }
        }
        if (p == nullptr) {
            // A refusal is right only at the limits, or when upstream was made to fail.
            FUZZ_CHECK(!fits || upstream_failed || injected_);
            return;
        }
        FUZZ_CHECK(fits);  // the cap is exact
        FUZZ_CHECK(reinterpret_cast<std::uintptr_t>(p) % align == 0);
        const live_block b{p, bytes, align, in_.u32()};
        fill_pattern(b.p, b.bytes, b.seed);
        live_.push_back(b);
        model_bytes_ += block;
    }

    // Buffers over the pool: create one, write to it (growing it through the size classes and
    // past them), empty it, or destroy it. A failed write must leave the buffer unchanged and is
    // right only when the block it needs does not fit, or upstream was made to fail.
    void buffer_op(std::uint8_t what) {
        if (what % 4 == 0 && buffers_.size() < 4) {
            buffers_.emplace_back(bpool::buffer(&pool_), std::string());
        } else if (buffers_.empty()) {
            return;
        } else if (what % 4 == 1) {
            write_buffer(buffers_[in_.byte() % buffers_.size()]);
        } else if (what % 4 == 2) {
            auto& [buf, model] = buffers_[in_.byte() % buffers_.size()];
            FUZZ_CHECK(buf.view() == model);
            buf.reset();
            model.clear();
        } else {
            const std::size_t k = in_.byte() % buffers_.size();
            FUZZ_CHECK(buffers_[k].first.view() == buffers_[k].second);
            buffers_[k] = std::move(buffers_.back());
            buffers_.pop_back();
        }
    }

    void write_buffer(std::pair<bpool::buffer, std::string>& entry) {
        auto& [buf, model] = entry;
        const std::size_t n = in_.size() % 200000;
        const std::uint32_t seed = in_.u32();
        const std::string text = pattern_text(n, seed);
        const std::size_t need = buf.size() + n;
        const bool grows = need > buf.capacity();
        const std::size_t cap = pool_.capacity();
        const std::size_t max_blocks = pool_.max_live_blocks();
        // Growth takes the new block before it frees the old one.
        const bool fits = !grows || ((cap == 0 || model_bytes() + pool_.block_size(need) <= cap) &&
                                     (max_blocks == 0 || model_blocks() + 1 <= max_blocks));
        const std::error_code ec = buf.write(text);
        if (!ec) {
            model += text;
        } else {
            FUZZ_CHECK(ec == bpool::errc::capacity_exceeded || ec == bpool::errc::out_of_memory);
            FUZZ_CHECK(ec != bpool::errc::capacity_exceeded || !fits);
            FUZZ_CHECK(ec != bpool::errc::out_of_memory || injected_);
        }
        FUZZ_CHECK(buf.view() == model);
    }

    // What the pool holds for the test: its own blocks and the buffers' storage.
    [[nodiscard]] std::size_t model_bytes() const {
        std::size_t bytes = model_bytes_;
        for (const auto& [buf, model] : buffers_)
            if (buf.capacity() != 0) bytes += pool_.block_size(buf.capacity());
        return bytes;
    }
    [[nodiscard]] std::size_t model_blocks() const {
        std::size_t blocks = live_.size();
        for (const auto& [buf, model] : buffers_)
            if (buf.capacity() != 0) ++blocks;
        return blocks;
    }

    void free_block(const live_block& b) {
        FUZZ_CHECK(check_pattern(b.p, b.bytes, b.seed));
        model_bytes_ -= pool_.block_size(b.bytes, b.align);
        pool_.deallocate(b.p, b.bytes, b.align);
    }

    void verify() {
        FUZZ_CHECK(pool_.live_bytes() == model_bytes());
        FUZZ_CHECK(pool_.live_blocks() == model_blocks());
        const bpool::pool_stats s = pool_.stats();
        FUZZ_CHECK(s.live_bytes == model_bytes());
        FUZZ_CHECK(s.live_blocks == model_blocks());
        FUZZ_CHECK(s.upstream_bytes == upstream_.live_bytes());
        FUZZ_CHECK(s.allocations - s.deallocations == model_blocks());
        sample_contents();
    }

    // A bounded sample of the contents, at places that vary from step to step (see the top).
    HARNESS_ONLY void sample_contents() {
        ++samples_;
        const std::size_t blocks = std::min<std::size_t>(live_.size(), 2);
        for (std::size_t j = 0; j < blocks; ++j) {
            const live_block& b = live_[(samples_ * 2 + j) % live_.size()];
            const std::size_t count = pattern_bytes{b.bytes}.count();
            const std::size_t first = count <= window ? 0 : place(j) % (count - window + 1);
            FUZZ_CHECK(check_window(b.p, b.bytes, b.seed, first, window));
        }
        if (!buffers_.empty()) {
            const auto& [buf, model] = buffers_[samples_ % buffers_.size()];
            FUZZ_CHECK(buf.size() == model.size());
            const std::size_t from =
                model.size() <= window ? 0 : place(2) % (model.size() - window + 1);
            FUZZ_CHECK(buf.view().substr(from, window) ==
                       std::string_view(model).substr(from, window));
        }
    }
    // Spreads the samples over the memory: a different place for each step and each `j`.
    [[nodiscard]] std::size_t place(std::size_t j) const {
        return static_cast<std::size_t>(
            (samples_ * 0x9E3779B97F4A7C15ull + j * 0xBF58476D1CE4E5B9ull) >> 16);
    }
    static constexpr std::size_t window = 32;  // pattern bytes of a block, or bytes of a buffer

    reader& in_;
    counting_resource& upstream_;
    bpool::pool_resource pool_;
    std::vector<live_block> live_;
    std::vector<std::pair<bpool::buffer, std::string>> buffers_;  // after pool_: destroyed first
    std::size_t model_bytes_ = 0;
    bool injected_ = false;
    int steps_ = 0;
    std::uint64_t samples_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const bool rule_ok = rule_agrees();
    FUZZ_CHECK(rule_ok);
    reader in(data, size);
    counting_resource upstream;
    {
        harness h(in, upstream);
        h.run();
    }
    FUZZ_CHECK(upstream.live_bytes() == 0);
    FUZZ_CHECK(upstream.mismatches() == 0);
    FUZZ_CHECK(upstream.misaligned() == 0);
    return 0;
}
