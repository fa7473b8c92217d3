#include "pool/checked.hpp"

#if BPOOL_CHECKED

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <unistd.h>

#if __has_include(<execinfo.h>)
#include <execinfo.h>
#define BPOOL_HAS_BACKTRACE 1
#else
#define BPOOL_HAS_BACKTRACE 0
#endif

namespace bpool::detail {

namespace {

// Set by the entry point handing the block out, read (and cleared) by add() on the same thread.
constinit thread_local void* allocation_caller __attribute__((tls_model("initial-exec"))) = nullptr;

// Room for the frames above the entry point's caller: this function's (where not inlined into
// add), add's, pool_core::checked_allocated's (where not a tail call), the entry point's, and
// ASan's interceptor of backtrace. Unwinding costs about 0.3 us a frame: not one more than needed.
constexpr std::size_t own_frames = 4 + (track::asan ? 1 : 0);

// Fills r's stack with the caller's stack, from the noted caller's frame on. Without a noted
// caller (or if it is not found), everything but the innermost frame. Without `unwind`, the noted
// caller alone: the allocating call site, for nothing.
void capture_stack(live_record& r, bool unwind) noexcept {
    void* const caller = allocation_caller;
    allocation_caller = nullptr;
    if (!unwind || !BPOOL_HAS_BACKTRACE) {
        r.stack[0] = caller;
        r.frames = caller != nullptr ? 1 : 0;
        return;
    }
#if BPOOL_HAS_BACKTRACE
    void* frames[alloc_frames + own_frames];
    const int got = ::backtrace(frames, static_cast<int>(alloc_frames + own_frames));
    const auto n = static_cast<std::size_t>(std::max(got, 0));
    std::size_t first = std::min<std::size_t>(1, n);
    for (std::size_t i = 1; i < n; ++i) {
        if (frames[i] == caller) {
            first = i;
            break;
        }
    }
    r.frames = std::min(n - first, alloc_frames);
    std::memcpy(r.stack, frames + first, r.frames * sizeof(void*));
#endif
}

// One line per frame, indented, straight to fd 2: backtrace_symbols_fd writes without malloc
// (backtrace_symbols would allocate: never from here, where the pool may be operator new).
void write_frames(void* const* frames, std::size_t n) noexcept {
#if BPOOL_HAS_BACKTRACE
    std::fflush(stderr);
    for (std::size_t i = 0; i < n; ++i) {
        if (::write(STDERR_FILENO, "    ", 4) < 0) return;
        ::backtrace_symbols_fd(const_cast<void**>(frames + i), 1, STDERR_FILENO);
    }
#else
    (void)frames;
    (void)n;
#endif
}

bool same_stack(const live_record& a, const live_record& b) noexcept {
    return a.frames == b.frames && std::equal(a.stack, a.stack + a.frames, b.stack);
}

}  // namespace

void note_allocation_caller(void* return_address) noexcept {
    allocation_caller = return_address;
}

checked_registry::checked_registry() noexcept {
    // Read here, for each pool, rather than with the process-wide pool's BPOOL_* variables (layer
    // 10): it is a setting of every checked pool. getenv does not allocate.
    const char* stacks = std::getenv("BPOOL_CHECKED_STACKS");
    unwind_ = stacks == nullptr || std::strcmp(stacks, "0") != 0;
#if BPOOL_HAS_BACKTRACE
    // glibc's first backtrace() loads libgcc_s (dlopen, which mallocs) to find the unwinder.
    // Called once here, where a pool is being made and no lock of any pool is held, so that every
    // later call (an allocation's stack, a fatal report under a pool's lock, possibly inside the
    // global operator new) finds it loaded and allocates nothing.
    static std::atomic<bool> primed{false};
    if (!primed.exchange(true, std::memory_order_acq_rel)) {
        void* frame[1];
        (void)::backtrace(frame, 1);
    }
#endif
}

void checked_registry::add(void* p, const live_record& r) noexcept {
    live_record rec = r;
    capture_stack(rec, unwind_);  // unwinding is slow: not under the lock
    std::lock_guard lock(mutex_);
    BPOOL_CHECK(live_.find(p) == nullptr, "internal error: a live block was handed out again");
    try {
        live_.insert(p, rec);
    } catch (const std::bad_alloc&) {
        fatal(__FILE__, __LINE__, "checked build: out of memory for the live-block registry");
    }
}

free_verdict checked_registry::remove(void* p, std::size_t block, std::size_t align,
                                      live_record* was) noexcept {
    std::lock_guard lock(mutex_);
    live_record* r = live_.find(p);
    if (r == nullptr) return free_verdict::not_live;
    *was = *r;
    // The size may differ from the request as long as it selects the same block (pmr requires the
    // same size; allowing the same block keeps std::allocator-style rounding working). The
    // alignment must not exceed what the block was allocated with.
    // An unsized free (block 0) matches whatever the block was allocated as.
    if (block != 0 && (r->block != block || align > r->align)) return free_verdict::wrong_size;
    live_.erase(p);
    return free_verdict::ok;
}

void checked_registry::report_leaks() const noexcept {
    // Grouped by block size in a fixed table (no allocation while the pool is being destroyed);
    // sizes beyond the table's room are counted together.
    struct group {
        std::size_t block, count;
    };
    constexpr std::size_t room = 64;
    group groups[room];
    std::size_t used = 0, blocks = 0, bytes = 0, others = 0;
    std::lock_guard lock(mutex_);
    live_.for_each([&](void*, live_record& r) {
        ++blocks;
        bytes += r.block;
        std::size_t i = 0;
        while (i < used && groups[i].block != r.block)
            ++i;
        if (i == used) {
            if (used == room) {
                ++others;
                return;
            }
            groups[used++] = {r.block, 0};
        }
        ++groups[i].count;
    });
    if (blocks == 0) return;
    std::sort(groups, groups + used, [](const group& a, const group& b) {
        return a.count != b.count ? a.count > b.count : a.block < b.block;
    });
    std::fprintf(stderr, "bpool: pool destroyed with %zu live blocks (%zu bytes):", blocks, bytes);
    for (std::size_t i = 0; i < used; ++i)
        std::fprintf(stderr, "%s %zu x %zu B", i == 0 ? "" : ",", groups[i].count, groups[i].block);
    if (others != 0) std::fprintf(stderr, ", %zu of other sizes", others);
    std::fprintf(stderr, "\n");
    report_leak_stacks();
}

void checked_registry::report_leak_stacks() const noexcept {
    // The first few distinct allocating stacks, each with how many leaked blocks (and bytes) it
    // allocated; the records stay in the map, which nothing changes while the lock is held.
    struct site {
        const live_record* first;
        std::size_t count, bytes;
    };
    constexpr std::size_t shown = 8;
    site sites[shown];
    std::size_t used = 0, elsewhere = 0;
    live_.for_each([&](void*, live_record& r) {
        std::size_t i = 0;
        while (i < used && !same_stack(*sites[i].first, r))
            ++i;
        if (i == used) {
            if (used == shown) {
                ++elsewhere;
                return;
            }
            sites[used++] = {&r, 0, 0};
        }
        ++sites[i].count;
        sites[i].bytes += r.block;
    });
    for (std::size_t i = 0; i < used; ++i) {
        std::fprintf(stderr, "bpool: %zu leaked block(s) (%zu bytes) allocated at:%s\n",
                     sites[i].count, sites[i].bytes,
                     sites[i].first->frames == 0 ? " (no stack)" : "");
        write_frames(sites[i].first->stack, sites[i].first->frames);
    }
    if (elsewhere != 0)
        std::fprintf(stderr, "bpool: %zu more leaked block(s) allocated elsewhere\n", elsewhere);
    if (used != 0)
        std::fprintf(stderr, "bpool: (frame names need -rdynamic, or addr2line on the offsets)\n");
}

}  // namespace bpool::detail

#endif
