// libFuzzer target: reads the input as a program of operations on a pool_resource (allocate with
// alignments from 1 B to 4 KiB, deallocate sized or through deallocate_unsized (two operation
// codes; the frees at the end of an input go one way or the other as each block's seed says),
// write, trim, set_capacity, set_max_live_blocks, try_allocate, upstream failures, buffers growing
// over the pool by writes; half the inputs, as their first byte says, trim at the end) and checks
// that the pool agrees with a simple model:
// - live bytes and blocks after every step; every 32 steps and at the end, the rest of stats(): the
//   bytes held from upstream (what the counting upstream holds, and the sum the documentation
//   gives: live + cached + unused bytes, exactly), the pagemap's size (whole 2 MiB tables, the root
//   at least), and the allocation and deallocation totals;
// - what every trim gives back, and after a trim with nothing live that what is held is only
//   cached and unused bytes and that no block freed since is the pool's any more;
// - with the `fail` policy on one thread, that an allocation succeeds exactly when it fits under
//   the limits;
// - that every block is aligned as asked, to 16 B at least, and a pooled one (as the documentation
//   tells them apart: up to largest_pooled_block, in a class that honours the alignment) to the
//   largest power of two that divides its size, up to 4 KiB;
// - blocks by address: usable_size of a live block (and of a buffer's storage) is its block_size,
//   and owns it; neither knows an address inside a live block (its second byte, its second 16
//   bytes, another 16-aligned address in it, the page boundary in it), nullptr, or the harness's
//   own stack, static and heap addresses; the block a live block's class would have across the
//   next page boundary and the block at that boundary, when the pool names both, do not overlap
//   (a chunk's tail is no block); a freed block, until the next allocation, is either the pool's
//   still (owns, and usable_size its block size: idle in a cache) or not at all (usable_size 0);
// - deallocate_unsized(nullptr) changes nothing.
// Any disagreement aborts (a crash for libFuzzer).
//
// Made for speed (over a thousand inputs a second, so that CI's minute explores many), without
// giving up what it checks:
// - Sizes are mostly up to 64 KiB, log-uniform so that every size class is as likely; a few an
//   input are large, up to a little above 1 MiB (the largest classes and the direct blocks past
//   them). Limits are set near what is live, so that they bind at their edge; after the first
//   few refusals in an input that allocate reports by an exception, a request the model expects
//   refused goes through try_allocate (which must refuse it as well).
// - Every block carries a pattern unique to it (its seed includes a serial number): all of a
//   block of up to 4 KiB; of a larger one its first and last 64 bytes and a word every 256 bytes
//   (at most 128 words), from an offset set by the seed. The checked build's own fills (0xCD when
//   handed out, 0xDD when given back) cover whole blocks, so that they overwrite the pattern of
//   any block that overlaps another. A block's pattern is checked whenever the harness touches it
//   (before it is refilled or freed, and every block is freed by the end of the input); a buffer
//   is compared with its model in full after a write that moved it to new storage and before it
//   is emptied or destroyed, and otherwise where the write touched it. After every step a few
//   windows of that memory (of two blocks and one buffer, at places that vary from step to step)
//   are checked too, so that corruption is also caught close to the step that caused it.
// - The address checks are a few pagemap lookups each (an address inside a block is asked of
//   owns or of usable_size, by turns): all of them as a block comes out, its usable_size as it
//   goes back; after every step, all of them for one block sampled or (every other step) the
//   buffer sampled, and for one of the blocks freed since the last allocation (the `max_freed`
//   first; all of them after a trim).
// - Upstream memory comes from a ring that ASan watches as it does its heap (ring_resource).
// - An input runs at most 200 steps.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory_resource>
#include <mutex>
#include <new>
#include <sanitizer/asan_interface.h>
#include <string>
#include <string_view>
#include <sys/mman.h>
#include <system_error>
#include <utility>
#include <vector>

#include <bpool/buffer.hpp>
#include <bpool/errors.hpp>
#include <bpool/pool_resource.hpp>

// The harness's own work (filling and checking patterns, the counting upstream, the model) is not
// instrumented for coverage: it is not the code under test, and its loops would only slow every
// run down and add features that guide nothing. The pragma reaches the header's templates and
// lambdas, which a function attribute cannot.
#pragma clang attribute push(__attribute__((no_sanitize("coverage"))), apply_to = function)
#include "support/counting_resource.hpp"
#pragma clang attribute pop

#define HARNESS_ONLY __attribute__((no_sanitize("coverage")))

namespace {

using bpool::test::counting_resource;

// --- Patterns --------------------------------------------------------------------------------
// The pattern of a block with seed `s` is a sequence of 64-bit words, word j = mix(s, j), laid
// down in the machine's byte order: byte i of the block is byte i % 8 of word i / 8. A block of up
// to `full_pattern` bytes carries all of it; a larger one only the pieces its `layout` says.

HARNESS_ONLY std::uint64_t mix(std::uint64_t x) {
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 32);
}
HARNESS_ONLY std::uint64_t pattern_word(std::uint64_t seed, std::size_t j) {
    return mix(seed + j * 0x9E3779B97F4A7C15ull);
}
HARNESS_ONLY unsigned char pattern_byte(std::uint64_t seed, std::size_t i) {
    const std::uint64_t w = pattern_word(seed, i / 8);
    unsigned char bytes[8];
    std::memcpy(bytes, &w, 8);
    return bytes[i % 8];
}

// Writes bytes [from, to) of the pattern of `seed` at b, or (check) returns whether they are there.
template <bool check>
HARNESS_ONLY bool pattern_range(unsigned char* b, std::uint64_t seed, std::size_t from,
                                std::size_t to) {
    std::size_t i = from;
    for (; i < to && i % 8 != 0; ++i) {
        if constexpr (check) {
            if (b[i] != pattern_byte(seed, i)) return false;
        } else {
            b[i] = pattern_byte(seed, i);
        }
    }
    for (; i + 8 <= to; i += 8) {
        const std::uint64_t w = pattern_word(seed, i / 8);
        if constexpr (check) {
            std::uint64_t have;
            std::memcpy(&have, b + i, 8);
            if (have != w) return false;
        } else {
            std::memcpy(b + i, &w, 8);
        }
    }
    for (; i < to; ++i) {
        if constexpr (check) {
            if (b[i] != pattern_byte(seed, i)) return false;
        } else {
            b[i] = pattern_byte(seed, i);
        }
    }
    return true;
}

constexpr std::size_t full_pattern = 4096;  // blocks up to this size carry all of their pattern
constexpr std::size_t edge = 64;            // of a larger block: its first and last 64 bytes,
constexpr std::size_t min_stride = 256;     // and a word every 256 bytes between,
constexpr std::size_t max_words = 128;      // or farther apart, so that there are at most 128

struct piece {
    std::size_t from, to;
};
// Where the pattern of an n-byte block lies: `count()` pieces. A block of up to `full_pattern`
// bytes is one piece, all of it; a larger one has its two edges and, between them, words `stride`
// apart from an offset set by the seed (so that a block refilled has its words elsewhere).
class layout {
  public:
    HARNESS_ONLY layout(std::size_t n, std::uint64_t seed) : n_(n) {
        if (n <= full_pattern) return;
        stride_ = std::max(min_stride, n / max_words / 8 * 8);
        phase_ = 8 * (mix(seed) % (stride_ / 8));
        words_ = (n - 2 * edge - 8 - phase_) / stride_ + 1;
    }
    [[nodiscard]] HARNESS_ONLY std::size_t count() const {
        return n_ <= full_pattern ? 1 : 2 + words_;
    }
    [[nodiscard]] HARNESS_ONLY piece at(std::size_t k) const {
        if (n_ <= full_pattern) return {0, n_};
        if (k == 0) return {0, edge};
        if (k == words_ + 1) return {n_ - edge, n_};
        const std::size_t from = edge + phase_ + (k - 1) * stride_;
        return {from, from + 8};
    }

  private:
    std::size_t n_, stride_ = 0, phase_ = 0, words_ = 0;
};

HARNESS_ONLY void fill_pattern(void* p, std::size_t n, std::uint64_t seed) {
    const layout l(n, seed);
    for (std::size_t k = 0; k < l.count(); ++k)
        pattern_range<false>(static_cast<unsigned char*>(p), seed, l.at(k).from, l.at(k).to);
}
HARNESS_ONLY bool check_pattern(const void* p, std::size_t n, std::uint64_t seed) {
    auto* b = const_cast<unsigned char*>(static_cast<const unsigned char*>(p));  // only read
    const layout l(n, seed);
    for (std::size_t k = 0; k < l.count(); ++k)
        if (!pattern_range<true>(b, seed, l.at(k).from, l.at(k).to)) return false;
    return true;
}

// The text buffer writes append: windows of one pseudo-random text, at an offset set by the
// write's seed (so that text put in the wrong place, or copied from the wrong place, differs).
constexpr std::size_t max_write = 200000;
constexpr std::size_t text_offsets = 65536;
HARNESS_ONLY const std::string& write_text() {
    static const std::string text = [] {
        std::string t(text_offsets + max_write, '\0');
        pattern_range<false>(reinterpret_cast<unsigned char*>(t.data()), 0x5EED, 0, t.size());
        return t;
    }();
    return text;
}

#define FUZZ_CHECK(cond)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            std::fprintf(stderr, "pool_fuzz: check failed: %s (line %d)\n", #cond, __LINE__); \
            std::abort();                                                                     \
        }                                                                                     \
    } while (false)

// --- Upstream memory -------------------------------------------------------------------------
// What the pool takes from upstream comes from a ring: one mapping, handed out in order with a
// redzone before and after each block, and poisoned for ASan except while a block is out (one
// thread: the harness's). So, as
// with ASan's heap, reading or writing past a block's end, or a block given back (until the ring
// comes round to it again, 128 MiB of upstream requests later, as with ASan's quarantine), is
// reported by ASan; but it costs a bump and the poisoning, where ASan's allocator maps fresh pages
// for the chunk-aligned and large requests, and recycles its quarantine. A request that finds no
// room (one larger than 16 MiB, or where the ring comes round to blocks still out) goes to ASan's
// heap.
class ring_resource final : public std::pmr::memory_resource {
  public:
    HARNESS_ONLY ring_resource() {
        void* p = mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        FUZZ_CHECK(p != MAP_FAILED);
        base_ = reinterpret_cast<std::uintptr_t>(p);
        next_ = base_;
        ASAN_POISON_MEMORY_REGION(p, ring_bytes);
    }
    ring_resource(const ring_resource&) = delete;
    ring_resource& operator=(const ring_resource&) = delete;
    // Never unmapped: one ring serves every input.

  private:
    static constexpr std::size_t ring_bytes = std::size_t{128} << 20;
    static constexpr std::size_t largest = std::size_t{16} << 20;
    static constexpr int tries = 4;  // blocks still out that a request may skip past

    struct out_block {
        std::uintptr_t at;
        std::size_t size;
    };

    // A redzone scaled with the block, as ASan's: 64 bytes up to 2 KiB.
    HARNESS_ONLY static std::size_t redzone(std::size_t n) {
        return std::clamp<std::size_t>(n / 32, 64, 2048);
    }
    HARNESS_ONLY static bool ends_after(std::uintptr_t p, const out_block& b) {
        return p < b.at + b.size;
    }
    HARNESS_ONLY static bool starts_before(const out_block& b, std::uintptr_t p) {
        return b.at < p;
    }

    HARNESS_ONLY void* do_allocate(std::size_t bytes, std::size_t align) override {
        const std::size_t n = std::max<std::size_t>(bytes, 1);
        if (n <= largest) {
            const std::size_t rz = redzone(n), a = std::max<std::size_t>(align, 16);
            for (int k = 0; k < tries; ++k) {
                const std::uintptr_t p = (next_ + rz + a - 1) & ~(std::uintptr_t{a} - 1);
                if (p + n + rz > base_ + ring_bytes) {  // past the end: round to the start
                    next_ = base_;
                    continue;
                }
                // The first block still out that ends after p: it must start at or after p+n+rz.
                const auto it = std::upper_bound(out_.begin(), out_.end(), p, ends_after);
                if (it != out_.end() && it->at < p + n + rz) {
                    next_ = it->at + it->size;  // skip past it
                    continue;
                }
                out_.insert(it, {p, n});
                next_ = p + n;
                ASAN_UNPOISON_MEMORY_REGION(reinterpret_cast<void*>(p), bytes);
                return reinterpret_cast<void*>(p);
            }
        }
        return std::pmr::new_delete_resource()->allocate(bytes, align);
    }

    HARNESS_ONLY void do_deallocate(void* ptr, std::size_t bytes, std::size_t align) override {
        const auto p = reinterpret_cast<std::uintptr_t>(ptr);
        if (p < base_ || p >= base_ + ring_bytes) {
            std::pmr::new_delete_resource()->deallocate(ptr, bytes, align);
            return;
        }
        const auto it = std::lower_bound(out_.begin(), out_.end(), p, starts_before);
        FUZZ_CHECK(it != out_.end() && it->at == p);  // counting_resource passes on only these
        out_.erase(it);
        ASAN_POISON_MEMORY_REGION(ptr, std::max<std::size_t>(bytes, 1));
    }

    [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
        return this == &other;
    }

    std::uintptr_t base_ = 0, next_ = 0;
    std::vector<out_block> out_;  // the blocks out, by address (few: a pool's chunks and blocks)
};

// Consumes the fuzzer's bytes; reads past the end give zeros. (Not instrumented either: how the
// bytes decode is no coverage of the pool.)
class reader {
  public:
    reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    [[nodiscard]] HARNESS_ONLY bool empty() const { return pos_ >= size_; }
    HARNESS_ONLY std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
    HARNESS_ONLY std::uint32_t u32() {
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i)
            v = v << 8 | byte();
        return v;
    }
    // Sizes (a kind byte, then 4 bytes): under 512 B (kind < 160); up to 64 KiB, log-uniform
    // (the bound 512 B << (kind - 160) % 8); or (kind >= 252) large: 64 KiB up to 128 KiB, 256 KiB
    // or 1 MiB, or around 1 MiB (960 KiB to 1088 KiB: the largest class and the direct blocks past
    // it). Large blocks cost the checked build's whole-block fills (a few hundred microseconds
    // each): after `max_large` of them in an input, a large kind reads as up to 64 KiB.
    HARNESS_ONLY std::size_t size() {
        const std::uint8_t kind = byte();
        const std::uint32_t v = u32();
        if (kind < 160) return v % 512;
        if (kind < 252 || large_left_ == 0) return v % ((std::size_t{512} << (kind - 160) % 8) + 1);
        --large_left_;
        const std::size_t r = v & 0x3FFFFFFF;
        switch (v >> 30) {
            case 0:
                return 65536 + r % 65537;
            case 1:
                return 65536 + r % (196608 + 1);
            case 2:
                return 65536 + r % ((1u << 20) - 65536 + 1);
            default:
                return (1u << 20) - 65536 + r % (131072 + 1);
        }
    }
    static constexpr int max_large = 4;

  private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
    int large_left_ = max_large;
};

struct live_block {
    void* p;
    std::size_t bytes;
    std::size_t align;
    std::uint64_t seed;
    std::size_t block;  // block_size(bytes, align)
};

// A block given back, and its block size (see harness::check_freed).
struct freed_block {
    const void* p;
    std::size_t block;
};

// Addresses that are no pool's: the harness's static storage (a stack and a heap address are
// taken where they are checked).
int static_marker;

constexpr std::size_t page = 4096;  // the most alignment a pooled block above 16 KiB has
constexpr std::size_t multi_block_limit = 16 * 1024;  // blocks up to this are carved from chunks
// The alignment of a pooled block of `block` bytes: up to 16 KiB the largest power of two that
// divides it; above, 16 B (or a page, for a request that asks up to a page: the class's twin).
HARNESS_ONLY std::size_t natural_alignment(std::size_t block) {
    return block <= multi_block_limit ? block & (~block + 1) : 16;
}

class harness {
  public:
    harness(reader& in, counting_resource& upstream)
        : in_(in),
          upstream_(upstream),
          shape_(in.byte()),
          pool_({.largest_pooled_block = std::size_t{16} << (shape_ % 17),
                 .max_cached_bytes = std::size_t{1} << (10 + in.byte() % 14),
                 .on_exhaustion = bpool::exhaustion::fail},
                &upstream),
          largest_(pool_.options().largest_pooled_block) {}

    void run() {
        while (!in_.empty() && steps_++ < max_steps) {
            const unsigned op = in_.byte() % 11;
            step(op);
            // The counts every step; all of stats() every `stats_every` steps (what it adds are
            // running totals, in which a miscount stays until it is seen) and at the end.
            verify_counts();
            if (steps_ % stats_every == 0) verify_stats();
            sample_contents();
            check_one_freed();
        }
        check_foreign();
        // The last frees: sized or not as their block's seed says (4 bytes of the input).
        for (const live_block& b : live_)
            free_block(b, (b.seed & 1) != 0);
        live_.clear();
        for (const auto& [buf, model] : buffers_)
            FUZZ_CHECK(buf.view() == model);
        buffers_.clear();
        verify_counts();
        verify_stats();
        check_freed();
        // Half the inputs trim before the pool is destroyed (nothing is live: see check_trimmed),
        // the others leave the destructor idle blocks and chunks to give back.
        if ((shape_ / 17) % 2 == 1) {
            const std::size_t before = upstream_.live_bytes();
            const std::size_t released = pool_.trim();
            FUZZ_CHECK(upstream_.live_bytes() + released == before);
            check_trimmed();
        }
        upstream_.fail_all(false);
    }

  private:
    static constexpr int max_steps = 200;
    static constexpr int stats_every = 32;
    static constexpr int max_refusals_thrown = 8;
    static constexpr std::size_t max_freed = 16;

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
            case 5:  // deallocate_unsized
                if (!live_.empty()) {
                    const std::size_t k = in_.byte() % live_.size();
                    free_block(live_[k], op == 5);
                    live_[k] = live_.back();
                    live_.pop_back();
                } else if (op == 5) {
                    pool_.deallocate_unsized(nullptr);  // a no-op: the counts after the step
                }
                break;
            case 6:
                if (!live_.empty()) {
                    live_block& b = live_[in_.byte() % live_.size()];
                    FUZZ_CHECK(check_pattern(b.p, b.bytes, b.seed));
                    b.seed = next_seed();
                    fill_pattern(b.p, b.bytes, b.seed);
                }
                break;
            case 7: {
                // What trim says it gave back is what left upstream's count.
                const std::size_t before = upstream_.live_bytes();
                const std::size_t released = pool_.trim();
                FUZZ_CHECK(upstream_.live_bytes() + released == before);
                check_freed();
                if (model_blocks() == 0) check_trimmed();
                break;
            }
            case 8: {
                const std::uint8_t what = in_.byte();
                if (what % 2 == 0)
                    pool_.set_capacity(what < 64 ? 0 : capacity_near_live(what));
                else
                    pool_.set_max_live_blocks(what < 64 ? 0 : max_blocks_near_live(in_.byte()));
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

    // Limits near what is live, so that they bind soon and at their edge rather than from the start
    // (or never): a cap of the live bytes plus a margin of up to 64 B << 0..17 (8 MiB at most,
    // log-uniform), or, one time in eight, less than is live by such a margin (at least 1 byte: 0
    // would lift the cap).
    std::size_t capacity_near_live(std::uint8_t what) {
        const std::uint32_t v = in_.u32();
        const std::size_t margin = v % ((std::size_t{64} << (what / 8 % 18)) + 1);
        const std::size_t live = model_bytes();
        if ((what & 14) == 14) return std::max<std::size_t>(live - std::min(live, margin), 1);
        return live + margin;
    }
    // The live-block cap: 1 to 127 (0: none), or the live blocks plus 0 to 15.
    std::size_t max_blocks_near_live(std::uint8_t b) {
        return b < 128 ? b : model_blocks() + b % 16;
    }

    // A block's seed: 4 bytes of the input, and a serial number, so that no two blocks of an
    // input carry the same pattern (a block handed out twice cannot pass for two).
    std::uint64_t next_seed() { return std::uint64_t{++serial_} << 32 | in_.u32(); }

    void allocate(bool nothrow) {
        if (live_.size() >= 64) return;
        freed_.clear();  // the pool may hand their memory out again, as blocks of any class
        const std::size_t bytes = in_.size();
        const std::size_t align = std::size_t{1} << (in_.byte() % 13);
        const std::size_t block = pool_.block_size(bytes, align);
        const std::size_t cap = pool_.capacity();
        const std::size_t max_blocks = pool_.max_live_blocks();
        const bool fits = (cap == 0 || model_bytes() + block <= cap) &&
                          (max_blocks == 0 || model_blocks() + 1 <= max_blocks);
        void* p = nullptr;
        bool upstream_failed = false;
        // A refusal that allocate reports costs an exception (tens of microseconds under ASan),
        // and at a limit most requests are refused: after the first few in an input, a request
        // the model expects refused is made with try_allocate, which must refuse it too (and
        // which makes the same checks at the cap: only the way it reports differs).
        if (!fits && !nothrow && refusals_thrown_ >= max_refusals_thrown) nothrow = true;
        if (nothrow) {
            p = pool_.try_allocate(bytes, align);
        } else {
            try {
                p = pool_.allocate(bytes, align);
            } catch (const bpool::capacity_exceeded&) {
                ++refusals_thrown_;
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
        const auto at = reinterpret_cast<std::uintptr_t>(p);
        FUZZ_CHECK(at % std::max(align, alignof(std::max_align_t)) == 0);
        const bool in_class = pooled(bytes, align, block);
        if (in_class) FUZZ_CHECK(at % natural_alignment(block) == 0);
        const live_block b{p, bytes, align, next_seed(), block};
        check_addresses(p, block, b.seed);
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
            freed_.clear();  // a write may allocate
            write_buffer(buffers_[in_.byte() % buffers_.size()]);
        } else if (what % 4 == 2) {
            auto& [buf, model] = buffers_[in_.byte() % buffers_.size()];
            FUZZ_CHECK(buf.view() == model);
            const freed_block f{buf.data(), buf.capacity()};
            buf.reset();
            model.clear();
            note_freed(f.p, f.block);
        } else {
            const std::size_t k = in_.byte() % buffers_.size();
            FUZZ_CHECK(buffers_[k].first.view() == buffers_[k].second);
            const freed_block f{buffers_[k].first.data(), buffers_[k].first.capacity()};
            buffers_[k] = std::move(buffers_.back());
            buffers_.pop_back();
            note_freed(f.p, f.block);
        }
    }

    void write_buffer(std::pair<bpool::buffer, std::string>& entry) {
        auto& [buf, model] = entry;
        const std::size_t n = in_.size() % max_write;
        const std::uint32_t seed = in_.u32();
        const std::string_view text = std::string_view(write_text()).substr(seed % text_offsets, n);
        const std::size_t need = buf.size() + n;
        const bool grows = need > buf.capacity();
        const std::size_t cap = pool_.capacity();
        const std::size_t max_blocks = pool_.max_live_blocks();
        // Growth takes the new block before it frees the old one.
        const bool fits = !grows || ((cap == 0 || model_bytes() + pool_.block_size(need) <= cap) &&
                                     (max_blocks == 0 || model_blocks() + 1 <= max_blocks));
        const std::size_t old_size = buf.size();
        const std::byte* old_data = buf.data();
        const std::error_code ec = buf.write(text);
        if (!ec) {
            model += text;
        } else {
            FUZZ_CHECK(ec == bpool::errc::capacity_exceeded || ec == bpool::errc::out_of_memory);
            FUZZ_CHECK(ec != bpool::errc::capacity_exceeded || !fits);
            FUZZ_CHECK(ec != bpool::errc::out_of_memory || injected_);
        }
        if (ec || buf.data() != old_data) {
            FUZZ_CHECK(buf.view() == model);  // refused (unchanged), or moved: all of it
        } else {
            // Written in place: what the write touched, and the start of the buffer.
            FUZZ_CHECK(buf.size() == model.size());
            const std::string_view have = buf.view(), want = model;
            FUZZ_CHECK(have.substr(old_size) == want.substr(old_size));
            FUZZ_CHECK(have.substr(0, edge) == want.substr(0, edge));
        }
    }

    // What the pool holds for the test: its own blocks and the buffers' storage.
    [[nodiscard]] HARNESS_ONLY std::size_t model_bytes() const {
        std::size_t bytes = model_bytes_;
        for (const auto& [buf, model] : buffers_)
            if (buf.capacity() != 0) bytes += pool_.block_size(buf.capacity());
        return bytes;
    }
    [[nodiscard]] HARNESS_ONLY std::size_t model_blocks() const {
        std::size_t blocks = live_.size();
        for (const auto& [buf, model] : buffers_)
            if (buf.capacity() != 0) ++blocks;
        return blocks;
    }

    // Gives a block back, with its size and alignment or (unsized) without.
    void free_block(const live_block& b, bool unsized) {
        FUZZ_CHECK(check_pattern(b.p, b.bytes, b.seed));
        FUZZ_CHECK(pool_.usable_size(b.p) == b.block);  // the rest as it came out, and sampled
        model_bytes_ -= b.block;
        if (unsized)
            pool_.deallocate_unsized(b.p);
        else
            pool_.deallocate(b.p, b.bytes, b.align);
        note_freed(b.p, b.block);
    }

    // Whether a request is pooled, as the documentation tells: up to largest_pooled_block, in a
    // class whose blocks are aligned as asked (natural_alignment), or above 16 KiB with up to a
    // page's alignment. A class size is its own
    // block_size; a direct block, `bytes` rounded up to 16, is one only where that class does not
    // honour the alignment (else the request would be in it, or in a smaller class).
    [[nodiscard]] HARNESS_ONLY bool pooled(std::size_t bytes, std::size_t align,
                                           std::size_t block) const {
        if (bytes > largest_ || block > largest_ || pool_.block_size(block) != block) return false;
        if (block > multi_block_limit) return align <= page;
        return natural_alignment(block) >= align;
    }

    // What the pool says of the addresses of a live block of `block` bytes at p: its start is a
    // block of that size; no address inside it is (its second byte, its second 16 bytes when it
    // has more, another 16-aligned address chosen by `where`, the page boundary in it: asked of
    // owns or of usable_size, as `where` says, to keep to a few lookups). A block that ends in p's
    // page: the block of its size that would cross the next page boundary (past p, blocks of a
    // chunk follow each other), if the pool names one, and the block at that boundary, if the
    // pool names one, do not overlap.
    HARNESS_ONLY void check_addresses(const void* p, std::size_t block, std::uint64_t where) const {
        FUZZ_CHECK(pool_.usable_size(p) == block && pool_.owns(p));
        const std::uint64_t h = mix(where);
        const bool ask_owns = (h & 1) != 0;
        const auto known = [&](const void* q) {
            return ask_owns ? pool_.owns(q) : pool_.usable_size(q) != 0;
        };
        const auto* b = static_cast<const unsigned char*>(p);
        FUZZ_CHECK(!known(b + 1));
        if (block > 16) {
            FUZZ_CHECK(!known(b + 16));
            FUZZ_CHECK(!known(b + 16 * (1 + (h >> 1) % (block / 16 - 1))));
        }
        const auto at = reinterpret_cast<std::uintptr_t>(p);
        const std::uintptr_t boundary = (at | (page - 1)) + 1;
        const auto* next = reinterpret_cast<const void*>(boundary);
        if (boundary < at + block) {
            FUZZ_CHECK(!known(next));
            return;
        }
        const std::uintptr_t across = at + (boundary - at) / block * block;
        if (across == boundary || !pool_.owns(next)) return;
        const std::size_t size = pool_.usable_size(reinterpret_cast<const void*>(across));
        FUZZ_CHECK(size == 0 || across + size <= boundary);
    }

    // Blocks freed since the last allocation (the pool may give their memory out again only when
    // asked for a block): each is the pool's still (idle in a cache: owned, of its block size) or
    // not at all.
    HARNESS_ONLY void note_freed(const void* p, std::size_t block) {
        if (p == nullptr) return;
        const freed_block f{p, block};
        check_freed(f);
        if (freed_.size() < max_freed) freed_.push_back(f);
    }
    HARNESS_ONLY void check_freed(const freed_block& f) const {
        const std::size_t size = pool_.usable_size(f.p);
        FUZZ_CHECK(size == 0 || size == f.block);
        FUZZ_CHECK(pool_.owns(f.p) == (size != 0));
    }
    HARNESS_ONLY void check_freed() const {
        for (const freed_block& f : freed_)
            check_freed(f);
    }
    // One of them after every step (a free or a trim may have given its memory back since).
    HARNESS_ONLY void check_one_freed() const {
        if (!freed_.empty()) check_freed(freed_[samples_ % freed_.size()]);
    }

    // After a trim with nothing live: every chunk went back to upstream (trim), so that what the
    // pool still holds is cached or unused, and none of the blocks freed since the last allocation
    // is the pool's.
    HARNESS_ONLY void check_trimmed() const {
        const bpool::pool_stats s = pool_.stats();
        FUZZ_CHECK(s.live_bytes == 0 && s.live_blocks == 0);
        FUZZ_CHECK(s.upstream_bytes == s.cached_bytes + s.unused_bytes);
        for (const freed_block& f : freed_)
            FUZZ_CHECK(!pool_.owns(f.p) && pool_.usable_size(f.p) == 0);
    }

    // No address of the harness's own is the pool's: nullptr, a stack, a static and heap ones.
    HARNESS_ONLY void check_foreign() const {
        const int local = 0;
        const std::string heap(64, 'x');  // past the small-string buffer: on ASan's heap
        const void* foreign[] = {
            nullptr, &local, &static_marker, heap.data(), live_.data(), write_text().data(), this};
        for (const void* p : foreign)
            FUZZ_CHECK(!pool_.owns(p) && pool_.usable_size(p) == 0);
    }

    // The counts the model predicts, cheap enough for every step.
    HARNESS_ONLY void verify_counts() {
        FUZZ_CHECK(pool_.live_bytes() == model_bytes());
        FUZZ_CHECK(pool_.live_blocks() == model_blocks());
    }

    // All of stats() that the model predicts (it builds the per-class table: a few per input).
    HARNESS_ONLY void verify_stats() {
        const bpool::pool_stats s = pool_.stats();
        FUZZ_CHECK(s.live_bytes == model_bytes());
        FUZZ_CHECK(s.live_blocks == model_blocks());
        FUZZ_CHECK(s.upstream_bytes == upstream_.live_bytes());
        // Held: live, cached and unused bytes (stats.hpp), exactly on one thread.
        FUZZ_CHECK(s.upstream_bytes == s.live_bytes + s.cached_bytes + s.unused_bytes);
        // The pagemap: whole tables of 2 MiB, the root at least.
        constexpr std::size_t table = std::size_t{2} << 20;
        FUZZ_CHECK(s.pagemap_bytes >= table && s.pagemap_bytes % table == 0);
        FUZZ_CHECK(s.allocations - s.deallocations == model_blocks());
    }
    // A bounded sample of the contents, at places that vary from step to step (see the top).
    HARNESS_ONLY void sample_contents() {
        ++samples_;
        const std::size_t blocks = std::min<std::size_t>(live_.size(), 2);
        for (std::size_t j = 0; j < blocks; ++j) {
            const live_block& b = live_[(samples_ * 2 + j) % live_.size()];
            const layout l(b.bytes, b.seed);
            const piece whole = l.at(place(j) % l.count());
            // A piece of up to `window` bytes whole, or a window of it.
            const std::size_t len = whole.to - whole.from;
            const std::size_t from =
                whole.from + (len <= window ? 0 : place(j + 3) % (len - window + 1));
            auto* p = static_cast<unsigned char*>(b.p);
            FUZZ_CHECK(pattern_range<true>(p, b.seed, from, std::min(whole.to, from + window)));
        }
        // The addresses of one of them: a block's, or every other step the buffer's storage.
        const auto* buf_sampled =
            buffers_.empty() ? nullptr : &buffers_[samples_ % buffers_.size()].first;
        if (buf_sampled != nullptr && buf_sampled->capacity() != 0 &&
            (samples_ % 2 == 1 || live_.empty()))
            check_addresses(buf_sampled->data(), buf_sampled->capacity(), place(4));
        else if (!live_.empty())
            check_addresses(live_[samples_ * 2 % live_.size()].p,
                            live_[samples_ * 2 % live_.size()].block, place(5));
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
    [[nodiscard]] HARNESS_ONLY std::size_t place(std::size_t j) const {
        return static_cast<std::size_t>(
            (samples_ * 0x9E3779B97F4A7C15ull + j * 0xBF58476D1CE4E5B9ull) >> 16);
    }
    static constexpr std::size_t window = 32;  // pattern bytes of a block, or bytes of a buffer

    reader& in_;
    counting_resource& upstream_;
    const std::uint8_t shape_;  // the first byte: the largest pooled block, and the final trim
    bpool::pool_resource pool_;
    const std::size_t largest_;  // largest_pooled_block, normalized
    std::vector<live_block> live_;
    std::vector<freed_block> freed_;  // since the last allocation (at most max_freed)
    std::vector<std::pair<bpool::buffer, std::string>> buffers_;  // after pool_: destroyed first
    std::size_t model_bytes_ = 0;
    bool injected_ = false;
    int steps_ = 0;
    int refusals_thrown_ = 0;
    std::uint32_t serial_ = 0;
    std::uint64_t samples_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static ring_resource ring;
    reader in(data, size);
    counting_resource upstream(&ring);
    {
        harness h(in, upstream);
        h.run();
    }
    FUZZ_CHECK(upstream.live_bytes() == 0);
    FUZZ_CHECK(upstream.mismatches() == 0);
    FUZZ_CHECK(upstream.misaligned() == 0);
    return 0;
}
