#include "cache/thread_cache.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "meta/meta.hpp"

namespace bpool::detail {

constinit thread_local thread_slots tls_slots;

void thread_cache::wait_idle() const noexcept {
    // The owner's operation is a few dozen instructions, unless it was preempted: spin briefly,
    // then yield the processor to it.
    for (unsigned spins = 0; in_op_.load(std::memory_order_seq_cst) != 0; ++spins) {
        if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            std::this_thread::yield();
        }
    }
}

void* thread_cache::pop(unsigned c) noexcept {
    bin& b = bins_[c];
    void* p = b.head;
    b.head = track::read_link(p);
    bump(b.allocs, std::uint64_t{1});
    bump(b.count, std::uint32_t(-1), std::memory_order_release);
    return p;
}

block_list thread_cache::take_front(unsigned c, std::uint32_t n) noexcept {
    // Bins are null-terminated lists; the segment taken is cut after its n-th block.
    bin& b = bins_[c];
    const std::uint32_t have = b.count.load(std::memory_order_relaxed);
    n = std::min(n, have);
    if (n == 0) return {};
    block_list out;
    out.head = b.head;
    out.count = n;
    void* last = b.head;
    for (std::uint32_t i = 1; i < n; ++i)
        last = track::read_link(last);
    out.tail = last;
    b.head = track::read_link(last);
    track::write_link(last, nullptr);
    b.count.store(have - n, std::memory_order_release);
    return out;
}

void thread_cache::fill(unsigned c, block_list blocks) noexcept {
    if (blocks.empty()) return;
    bin& b = bins_[c];
    track::write_link(blocks.tail, b.head);
    b.head = blocks.head;
    bump(b.count, blocks.count, std::memory_order_release);
}

void thread_cache::push_freed(unsigned c, void* p) noexcept {
    bin& b = bins_[c];
    track::write_link(p, b.head);
    b.head = p;
    bump(b.frees, std::uint64_t{1});
    bump(b.count, std::uint32_t{1}, std::memory_order_release);
}

std::size_t thread_cache::cached_bytes() const noexcept {
    std::size_t total = 0;
    for (unsigned c = 0; c < table_size; ++c)
        total += bins_[c].count.load(std::memory_order_relaxed) * std::size_t{classes[c].size};
    return total;
}

std::uint64_t thread_cache::operations() const noexcept {
    std::uint64_t total = 0;
    for (const bin& b : bins_)
        total += b.allocs.load(std::memory_order_relaxed) + b.frees.load(std::memory_order_relaxed);
    return total;
}

namespace {

// Runs at thread exit (a thread_local's destructor): gives every cache of this thread back.
struct exit_hook {
    bool armed = false;
    exit_hook() = default;
    exit_hook(const exit_hook&) = delete;
    exit_hook& operator=(const exit_hook&) = delete;
    ~exit_hook() {
        thread_slots& t = tls_slots;
        t.exiting = true;  // from now on this thread's operations go uncached
        auto release = [](thread_cache*& s) {
            if (thread_cache* tc = take_slot(s)) tc->owner()->detach(tc);
        };
        for (thread_cache*& s : t.fixed)
            release(s);
        for (std::uint32_t i = 0; i < t.extra_size; ++i)
            release(t.extra[i]);
        meta::deallocate(std::exchange(t.extra, nullptr), t.extra_size * sizeof(thread_cache*));
        t.extra_size = 0;
    }
};

thread_local exit_hook hook;

}  // namespace

thread_cache** slot_for(std::uint32_t id) noexcept {
    thread_slots& t = tls_slots;
    if (t.exiting) return nullptr;
    if (!t.hooked) {
        hook.armed = true;  // first use constructs this thread's hook and registers its destructor
        t.hooked = true;
    }
    if (id < fixed_slots) return &t.fixed[id];
    const std::uint32_t i = id - fixed_slots;
    if (i >= t.extra_size) {
        const std::uint32_t n = std::max<std::uint32_t>(i + 1, t.extra_size * 2);
        auto* grown = static_cast<thread_cache**>(meta::allocate(n * sizeof(thread_cache*)));
        if (grown == nullptr) return nullptr;
        if (t.extra_size) std::memcpy(grown, t.extra, t.extra_size * sizeof(thread_cache*));
        meta::deallocate(t.extra, t.extra_size * sizeof(thread_cache*));
        t.extra = grown;
        t.extra_size = n;
    }
    return &t.extra[i];
}

}  // namespace bpool::detail
