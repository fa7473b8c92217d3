#include "meta/meta.hpp"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <sys/mman.h>

namespace bpool::detail::meta {

namespace {

constexpr std::size_t region_bytes = std::size_t{1} << 20;
constexpr std::size_t list_count = small_limit / granule;
constexpr std::size_t page = 4096;

struct free_block {
    free_block* next;
};

// The lock guards the free lists and the current region; it is a leaf, never held across mmap.
std::mutex lock;
free_block* lists[list_count] = {};
std::byte* bump = nullptr;  // the unused tail of the current region
std::byte* bump_end = nullptr;
std::atomic<std::size_t> mapped{0};

std::size_t list_of(std::size_t bytes) noexcept {
    return (bytes + granule - 1) / granule - 1;
}

void* map(std::size_t bytes) noexcept {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    mapped.fetch_add(bytes, std::memory_order_relaxed);
    return p;
}

std::size_t round_to_pages(std::size_t bytes) noexcept {
    return (bytes + page - 1) & ~(page - 1);
}

// Takes a small block from its list or the region (lock held); nullptr if the region is used up.
void* take_locked(std::size_t list, std::size_t size) noexcept {
    if (free_block* b = lists[list]) {
        lists[list] = b->next;
        std::memset(static_cast<void*>(b), 0, size);
        return b;
    }
    if (static_cast<std::size_t>(bump_end - bump) < size) return nullptr;
    void* p = bump;  // fresh mapped memory is zero already
    bump += size;
    return p;
}

}  // namespace

void* allocate(std::size_t bytes) noexcept {
    if (bytes == 0) bytes = 1;
    if (bytes > small_limit) return map(round_to_pages(bytes));
    const std::size_t list = list_of(bytes);
    const std::size_t size = (list + 1) * granule;
    for (;;) {
        {
            std::lock_guard guard(lock);
            if (void* p = take_locked(list, size)) return p;
        }
        // Map a new region outside the lock. What is left of the current one goes to the free
        // lists (in the largest pieces that fit), so nothing is lost for good.
        auto* region = static_cast<std::byte*>(map(region_bytes));
        if (region == nullptr) return nullptr;
        std::unique_lock guard(lock);
        if (void* p = take_locked(list, size)) {
            // Another thread installed a region meanwhile: keep that one, give ours back.
            guard.unlock();
            munmap(region, region_bytes);
            mapped.fetch_sub(region_bytes, std::memory_order_relaxed);
            return p;
        }
        while (bump_end - bump >= static_cast<std::ptrdiff_t>(granule)) {
            const auto left = static_cast<std::size_t>(bump_end - bump);
            const std::size_t piece = left >= small_limit ? small_limit : left / granule * granule;
            auto* b = reinterpret_cast<free_block*>(bump);
            const std::size_t l = list_of(piece);
            b->next = lists[l];
            lists[l] = b;
            bump += piece;
        }
        bump = region;
        bump_end = region + region_bytes;
    }
}

void deallocate(void* p, std::size_t bytes) noexcept {
    if (p == nullptr) return;
    if (bytes == 0) bytes = 1;
    if (bytes > small_limit) {
        const std::size_t size = round_to_pages(bytes);
        munmap(p, size);
        mapped.fetch_sub(size, std::memory_order_relaxed);
        return;
    }
    const std::size_t list = list_of(bytes);
    std::lock_guard guard(lock);
    auto* b = static_cast<free_block*>(p);
    b->next = lists[list];
    lists[list] = b;
}

std::size_t mapped_bytes() noexcept {
    return mapped.load(std::memory_order_relaxed);
}

void lock_for_fork() noexcept {
    lock.lock();
}

void unlock_after_fork() noexcept {
    lock.unlock();
}

}  // namespace bpool::detail::meta
