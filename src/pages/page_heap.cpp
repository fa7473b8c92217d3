#include "pages/page_heap.hpp"

#include <algorithm>
#include <bit>
#include <new>
#include <utility>

#include "base/intrusive_list.hpp"
#include "base/track.hpp"
#include "meta/meta.hpp"

namespace bpool::detail {

struct extent {
    track::hidden_ptr<std::byte> base = nullptr;
    [[no_unique_address]] track::region_anchor anchor;  // what upstream gave, if more
    std::uint32_t pages = 0;
    std::uint32_t free_pages = 0;
    std::uint32_t longest = 0;  // the longest run of free pages
    std::size_t align = 0;      // what upstream was asked for
    bool dedicated = false;     // one run of its own, never shared
    extent* prev = nullptr;     // in a bucket
    extent* next = nullptr;
    extent* all_prev = nullptr;  // in the heap's list of every extent
    extent* all_next = nullptr;
    std::uint64_t used = 0;  // a bit per page (a dedicated extent's are unused)

    // The first page at or after `i` whose bit is `value`; `pages` if none.
    [[nodiscard]] std::size_t next_with(std::size_t i, bool value) const noexcept {
        if (i >= pages) return pages;
        const std::uint64_t w = (value ? used : ~used) & (~0ull << i);
        return w == 0 ? pages
                      : std::min<std::size_t>(pages, static_cast<std::size_t>(std::countr_zero(w)));
    }

    // Calls f(start, length) for each free run, in address order, until f returns true.
    template <class F>
    void each_free_run(F&& f) const noexcept {
        for (std::size_t i = next_with(0, false); i < pages;) {
            const std::size_t end = next_with(i, true);
            if (f(i, end - i)) return;
            i = next_with(end, false);
        }
    }

    void mark(std::size_t first, std::size_t n, bool value) noexcept {
        const std::uint64_t bits = ((std::uint64_t{1} << n) - 1) << first;
        used = value ? used | bits : used & ~bits;
    }

    void update_longest() noexcept {
        std::size_t best = 0;
        each_free_run([&](std::size_t, std::size_t n) {
            best = std::max(best, n);
            return false;
        });
        longest = static_cast<std::uint32_t>(best);
    }
};

namespace {
unsigned bucket_of(std::size_t longest) noexcept {
    return static_cast<unsigned>(std::min(longest, page_heap::dedicated_pages));
}
}  // namespace

void page_heap::file(extent* e) noexcept {
    if (e->longest == 0) return;
    const unsigned b = bucket_of(e->longest);
    list_push_front<&extent::prev, &extent::next>(buckets_[b], e);
    nonempty_[b / 64] |= std::uint64_t{1} << (b % 64);
}

void page_heap::unfile(extent* e) noexcept {
    if (e->longest == 0) return;
    const unsigned b = bucket_of(e->longest);
    list_unlink<&extent::prev, &extent::next>(buckets_[b], e);
    if (buckets_[b] == nullptr) nonempty_[b / 64] &= ~(std::uint64_t{1} << (b % 64));
}

void page_heap::link_all(extent* e) noexcept {
    list_push_front<&extent::all_prev, &extent::all_next>(all_, e);
}

void page_heap::unlink_all(extent* e) noexcept {
    list_unlink<&extent::all_prev, &extent::all_next>(all_, e);
}

page_run page_heap::take_locked(std::size_t pages) noexcept {
    // The best-fitting bucket first: the extent whose longest run is shortest among those that fit,
    // so that long runs stay whole for the requests that need them.
    for (unsigned b = bucket_of(pages); b < bucket_count; ++b) {
        if ((nonempty_[b / 64] & (std::uint64_t{1} << (b % 64))) == 0) continue;
        for (extent* e = buckets_[b]; e != nullptr; e = e->next) {
            if (e->longest < pages) continue;  // the last bucket holds runs of every length
            std::size_t start = e->pages;
            e->each_free_run([&](std::size_t i, std::size_t n) {
                if (n < pages) return false;
                start = i;
                return true;
            });
            BPOOL_ASSERT(start < e->pages);
            unfile(e);
            e->mark(start, pages, true);
            e->free_pages -= static_cast<std::uint32_t>(pages);
            e->update_longest();
            file(e);
            if (e == spare_) spare_ = nullptr;
            free_pages_ -= pages;
            return {e->base + start * page_size, e};
        }
    }
    return {};
}

extent* page_heap::new_extent(std::size_t pages, std::size_t align) {
    const std::size_t bytes = pages * page_size;
    const std::size_t front = track::region_front(align);
    void* memory = up_.allocate(front + bytes, align);  // no lock held: upstream may be slow
    auto* base = static_cast<std::byte*>(memory) + front;
    extent* e = nullptr;
    if (map_.reserve(base, bytes)) e = static_cast<extent*>(meta::allocate(sizeof(extent)));
    if (e == nullptr) {
        up_.deallocate(memory, front + bytes, align);
        throw std::bad_alloc();
    }
    ::new (e) extent();
    e->base = base;
    e->anchor.set(memory, front);
    e->pages = static_cast<std::uint32_t>(pages);
    e->align = align;
    track::region_reserved(memory, front, bytes);
    return e;
}

page_run page_heap::allocate(std::size_t pages, std::size_t align) {
    BPOOL_ASSERT(pages >= 1 && (pages >= dedicated_pages || align <= page_size));
    if (pages >= dedicated_pages) {
        extent* e = new_extent(pages, align);
        e->dedicated = true;
        std::lock_guard lock(mutex_);
        link_all(e);
        return {e->base, e};
    }
    std::size_t grow_pages;
    {
        std::lock_guard lock(mutex_);
        if (const page_run run = take_locked(pages); run.base != nullptr) return run;
        // Extents grow with the heap: an eighth of what its extents hold, one page to 64 KiB, so
        // that a pool with one small block holds one page.
        grow_pages =
            std::min(std::bit_ceil(std::max<std::size_t>(1, extent_bytes_ / 8 / page_size)),
                     max_extent_pages);
    }
    // Upstream is called with the lock released; a run freed meanwhile by another thread stays
    // for the next request.
    extent* e = new_extent(std::max(grow_pages, pages), page_size);
    std::lock_guard lock(mutex_);
    link_all(e);
    extent_bytes_ += e->pages * page_size;
    e->mark(0, pages, true);
    e->free_pages = e->pages - static_cast<std::uint32_t>(pages);
    free_pages_ += e->free_pages;
    e->update_longest();
    file(e);
    return {e->base, e};
}

std::size_t page_heap::deallocate(page_run run, std::size_t pages) noexcept {
    extent* e = run.owner;
    extent* victim = nullptr;
    {
        std::lock_guard lock(mutex_);
        if (e->dedicated) {
            unlink_all(e);
            victim = e;
        } else {
            unfile(e);
            e->mark(static_cast<std::size_t>(run.base - e->base) / page_size, pages, false);
            e->free_pages += static_cast<std::uint32_t>(pages);
            free_pages_ += pages;
            e->update_longest();
            file(e);
            if (e->free_pages == e->pages) {
                // Empty: keep it as the spare, giving the previous spare back.
                victim = std::exchange(spare_, e);
                if (victim != nullptr) {
                    unfile(victim);
                    unlink_all(victim);
                    free_pages_ -= victim->pages;
                    extent_bytes_ -= victim->pages * page_size;
                }
            }
        }
    }
    return victim != nullptr ? release(victim) : 0;
}

std::size_t page_heap::release_spare() noexcept {
    extent* victim;
    {
        std::lock_guard lock(mutex_);
        victim = std::exchange(spare_, nullptr);
        if (victim == nullptr) return 0;
        unfile(victim);
        unlink_all(victim);
        free_pages_ -= victim->pages;
        extent_bytes_ -= victim->pages * page_size;
    }
    return release(victim);
}

std::size_t page_heap::release(extent* e) noexcept {
    const std::size_t bytes = std::size_t{e->pages} * page_size;
    const std::size_t front = e->anchor.bytes();
    track::region_returning(e->base - front, front, bytes);
    up_.deallocate(e->base - front, front + bytes, e->align);
    meta::deallocate(e, sizeof(extent));
    return bytes;
}

void page_heap::destroy() noexcept {
    std::lock_guard lock(mutex_);
    for (extent* e = std::exchange(all_, nullptr); e != nullptr;) {
        extent* next = e->all_next;
        track::region_destroyed(e->base, std::size_t{e->pages} * page_size);
        release(e);
        e = next;
    }
    std::fill(std::begin(buckets_), std::end(buckets_), nullptr);
    nonempty_[0] = nonempty_[1] = 0;
    spare_ = nullptr;
    free_pages_ = extent_bytes_ = 0;
}

std::size_t page_heap::free_bytes() const noexcept {
    std::lock_guard lock(mutex_);
    return free_pages_ * page_size;
}

}  // namespace bpool::detail
