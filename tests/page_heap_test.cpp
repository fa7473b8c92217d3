// Layer 3: the page heap, driven directly with a counting upstream that also records the ranges it
// handed out. The runs' memory is never touched (under ASan the heap keeps it poisoned).
#include "pages/page_heap.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <map>
#include <memory_resource>
#include <new>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "support/counting_resource.hpp"

namespace bpool::detail {
namespace {

/// Passes everything on to a counting_resource, remembering every live allocation's range and the
/// size of every allocation in order.
class recording_resource final : public std::pmr::memory_resource {
  public:
    explicit recording_resource(std::pmr::memory_resource* next) : next_(next) {}

    /// The live allocation holding [p, p + bytes), or {0, 0} if none does.
    [[nodiscard]] std::pair<std::uintptr_t, std::size_t> holder(const void* p,
                                                                std::size_t bytes) const {
        const auto addr = reinterpret_cast<std::uintptr_t>(p);
        auto it = live_.upper_bound(addr);
        if (it == live_.begin()) return {0, 0};
        --it;
        if (addr + bytes > it->first + it->second) return {0, 0};
        return *it;
    }
    [[nodiscard]] const std::vector<std::size_t>& sizes() const { return sizes_; }

  private:
    void* do_allocate(std::size_t bytes, std::size_t alignment) override {
        void* p = next_->allocate(bytes, alignment);
        live_[reinterpret_cast<std::uintptr_t>(p)] = bytes;
        sizes_.push_back(bytes);
        return p;
    }
    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
        live_.erase(reinterpret_cast<std::uintptr_t>(p));
        next_->deallocate(p, bytes, alignment);
    }
    [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
        return this == &other;
    }

    std::pmr::memory_resource* next_;
    std::map<std::uintptr_t, std::size_t> live_;
    std::vector<std::size_t> sizes_;
};

constexpr std::size_t dedicated = page_heap::dedicated_pages;
constexpr std::size_t largest = page_heap::max_extent_pages;
static_assert(dedicated == 5 && largest == 16, "the runs below are sized for these limits");

class PageHeap : public ::testing::Test {
  protected:
    PageHeap() { map.init(); }
    ~PageHeap() override {
        heap.destroy();
        // Whatever a test did, destroy() gave everything back, with matching sizes.
        EXPECT_EQ(counting.live_bytes(), 0u);
        EXPECT_EQ(counting.live_allocations(), 0u);
        EXPECT_EQ(counting.mismatches(), 0u);
        EXPECT_EQ(up.held(), 0u);
    }

    static std::size_t bytes(std::size_t pages) { return pages * page_size; }
    static std::uintptr_t addr(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

    // Takes one-page runs (kept) until the heap asks upstream for an extent of the largest size,
    // and returns the run at its start: every other extent is full then, so the rest of that
    // extent is all the heap has free.
    page_run warm_up() {
        for (int i = 0; i < 10000; ++i) {
            const std::size_t calls = recording.sizes().size();
            const page_run run = heap.allocate(1);
            if (recording.sizes().size() != calls && recording.sizes().back() == bytes(largest))
                return run;
        }
        ADD_FAILURE() << "no extent of " << largest << " pages";
        return {};
    }

    test::counting_resource counting;
    recording_resource recording{&counting};
    upstream_source up{&recording};
    pagemap map;
    page_heap heap{up, map};
};

TEST_F(PageHeap, RunsArePageAlignedDisjointAndInsideUpstreamMemory) {
    struct taken {
        page_run run;
        std::size_t pages;
        std::size_t align;
    };
    std::vector<taken> runs;
    const std::size_t lengths[] = {1, 2, 3, 4, 1, 2, 5, 7, 16, 3, 1, 4, 2, 40, 6, 1};
    const std::size_t aligns[] = {page_size, 2 * page_size, 8 * page_size};
    for (int round = 0; round < 4; ++round) {
        for (std::size_t i = 0; i < std::size(lengths); ++i) {
            const std::size_t n = lengths[i];
            const std::size_t align = n >= dedicated ? aligns[i % 3] : page_size;
            const page_run run = heap.allocate(n, align);
            ASSERT_NE(run.base, nullptr);
            ASSERT_NE(run.owner, nullptr);
            runs.push_back({run, n, align});
        }
        // Free every third one, so that later rounds reuse holes.
        for (std::size_t i = runs.size() - std::size(lengths); i < runs.size(); i += 3) {
            heap.deallocate(runs[i].run, runs[i].pages);
            runs.erase(runs.begin() + static_cast<std::ptrdiff_t>(i));
        }
    }
    EXPECT_EQ(counting.misaligned(), 0u);
    EXPECT_EQ(counting.max_alignment(), 8 * page_size) << "upstream is asked what runs need";
    for (const taken& t : runs) {
        EXPECT_EQ(addr(t.run.base) % page_size, 0u);
        EXPECT_EQ(addr(t.run.base) % t.align, 0u);
        EXPECT_NE(recording.holder(t.run.base, bytes(t.pages)).first, 0u)
            << "a run lies inside one live upstream allocation";
        // Its pagemap leaves are reserved already: reserving them again maps nothing.
        const std::size_t mapped = map.mapped_bytes();
        ASSERT_TRUE(map.reserve(t.run.base, bytes(t.pages)));
        EXPECT_EQ(map.mapped_bytes(), mapped);
    }
    std::sort(runs.begin(), runs.end(),
              [](const taken& a, const taken& b) { return a.run.base < b.run.base; });
    for (std::size_t i = 1; i < runs.size(); ++i)
        EXPECT_LE(addr(runs[i - 1].run.base) + bytes(runs[i - 1].pages), addr(runs[i].run.base))
            << "runs overlap";
    EXPECT_GT(map.mapped_bytes(), pagemap::table_bytes) << "the heap reserved leaves";
}

TEST_F(PageHeap, ASmallHeapHoldsLittleMoreThanItsRuns) {
    EXPECT_EQ(heap.free_bytes(), 0u);
    const page_run a = heap.allocate(1);
    ASSERT_EQ(recording.sizes(), std::vector<std::size_t>{page_size}) << "one page, no more";
    EXPECT_EQ(up.held(), page_size);
    EXPECT_EQ(counting.max_alignment(), page_size);
    EXPECT_EQ(heap.free_bytes(), 0u);
    EXPECT_EQ(recording.holder(a.base, bytes(1)).first, addr(a.base)) << "it starts the extent";
    // An extent is at least as long as the run it is made for.
    const page_run b = heap.allocate(3);
    ASSERT_EQ(recording.sizes().size(), 2u);
    EXPECT_EQ(recording.sizes()[1], bytes(3));
    EXPECT_NE(b.owner, a.owner);
    EXPECT_EQ(heap.free_bytes(), 0u);
}

TEST_F(PageHeap, BestFitPicksTheExtentWhoseLongestRunFitsBest) {
    const page_run w = warm_up();
    ASSERT_NE(w.base, nullptr);
    ASSERT_EQ(heap.free_bytes(), bytes(largest - 1));
    const std::size_t calls = recording.sizes().size();
    const page_run a1 = heap.allocate(4);
    const page_run a2 = heap.allocate(4);
    const page_run a3 = heap.allocate(4);  // 3 pages left in this extent
    ASSERT_EQ(a1.base, w.base + bytes(1)) << "first fit, in address order";
    ASSERT_EQ(a2.base, w.base + bytes(5));
    ASSERT_EQ(a3.base, w.base + bytes(9));
    const page_run b = heap.allocate(4);  // fits nowhere: a new extent, 12 pages left
    ASSERT_EQ(recording.sizes().size(), calls + 1);
    ASSERT_NE(b.owner, w.owner);
    // 3 pages fit both: the first extent's run of 3 fits better than the new one's 12.
    const page_run c = heap.allocate(3);
    EXPECT_EQ(c.owner, w.owner);
    EXPECT_EQ(c.base, w.base + bytes(13));
    // 2 pages now fit only the new extent.
    const page_run d = heap.allocate(2);
    EXPECT_EQ(d.owner, b.owner);
    EXPECT_EQ(d.base, b.base + bytes(4));
    EXPECT_EQ(recording.sizes().size(), calls + 1) << "no other run needed upstream";
    EXPECT_EQ(heap.free_bytes(), bytes(largest - 6));
}

TEST_F(PageHeap, FreedRunIsReusedBeforeUpstream) {
    const page_run w = warm_up();
    ASSERT_NE(w.base, nullptr);
    const std::size_t calls = recording.sizes().size();
    const page_run a = heap.allocate(4);
    const page_run b = heap.allocate(4);
    (void)heap.allocate(4);
    (void)heap.allocate(3);  // the extent is full
    ASSERT_EQ(heap.free_bytes(), 0u);
    EXPECT_EQ(heap.deallocate(b, 4), 0u);
    EXPECT_EQ(heap.free_bytes(), bytes(4));
    const page_run again = heap.allocate(4);
    EXPECT_EQ(again.base, b.base);
    EXPECT_EQ(again.owner, b.owner);
    // A shorter run takes part of a freed one.
    EXPECT_EQ(heap.deallocate(a, 4), 0u);
    const page_run part = heap.allocate(3);
    EXPECT_EQ(part.base, a.base);
    EXPECT_EQ(heap.free_bytes(), bytes(1));
    EXPECT_EQ(recording.sizes().size(), calls) << "upstream was not asked";
}

TEST_F(PageHeap, NeighbouringFreeRunsCoalesce) {
    const page_run w = warm_up();
    ASSERT_NE(w.base, nullptr);
    const std::size_t calls = recording.sizes().size();
    const page_run x = heap.allocate(2);
    const page_run y = heap.allocate(2);
    const page_run z = heap.allocate(4);
    const page_run u = heap.allocate(4);
    const page_run v = heap.allocate(3);
    ASSERT_EQ(x.base, w.base + bytes(1));
    ASSERT_EQ(y.base, w.base + bytes(3));
    ASSERT_EQ(heap.free_bytes(), 0u);
    heap.deallocate(y, 2);
    heap.deallocate(x, 2);
    // Only pages 1-4 are free: a 4-page run fits only if the two freed runs became one.
    const page_run both = heap.allocate(4);
    EXPECT_EQ(both.base, x.base);
    EXPECT_EQ(both.owner, w.owner);
    EXPECT_EQ(recording.sizes().size(), calls) << "no new extent";
    // Freed in any order, all of its runs make the extent whole: it is the spare, in one piece.
    heap.deallocate(u, 4);
    heap.deallocate(both, 4);
    heap.deallocate(v, 3);
    heap.deallocate(z, 4);
    EXPECT_EQ(heap.release_spare(), 0u) << "the first page is still in use";
    heap.deallocate(w, 1);
    EXPECT_EQ(heap.free_bytes(), bytes(largest));
    EXPECT_EQ(heap.release_spare(), bytes(largest));
    EXPECT_EQ(heap.free_bytes(), 0u);
}

TEST_F(PageHeap, ExtentsGrowFromOnePageToTheLargestWithWhatTheHeapHolds) {
    std::vector<std::size_t> held_before;  // what the heap held when each extent was asked for
    for (;;) {
        const std::size_t before = up.held();
        const std::size_t calls = recording.sizes().size();
        (void)heap.allocate(1);
        if (recording.sizes().size() != calls) {
            held_before.push_back(before);
            if (recording.sizes().back() == bytes(largest)) break;
        }
        ASSERT_LT(up.held(), 64 * bytes(largest)) << "extents never reached the largest size";
    }
    const std::vector<std::size_t> sizes = recording.sizes();
    ASSERT_EQ(sizes.size(), held_before.size());
    EXPECT_EQ(sizes.front(), page_size);
    bool grew_in_between = false;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        EXPECT_TRUE(std::has_single_bit(sizes[i] / page_size)) << sizes[i];
        EXPECT_LE(sizes[i], bytes(largest));
        if (i > 0) {
            EXPECT_GE(sizes[i], sizes[i - 1]) << "extents never shrink while it grows";
        }
        // An extent is a fraction of what the heap already holds (or a page).
        EXPECT_LE(sizes[i], std::max(page_size, held_before[i] / 4)) << "extent " << i;
        grew_in_between = grew_in_between || (sizes[i] > page_size && sizes[i] < bytes(largest));
    }
    EXPECT_TRUE(grew_in_between) << "growth goes through the sizes between";
    // Once at the largest size, extents stay there.
    for (std::size_t i = 0; i < 4 * largest; ++i)
        (void)heap.allocate(1);
    ASSERT_GT(recording.sizes().size(), sizes.size());
    for (std::size_t i = sizes.size(); i < recording.sizes().size(); ++i)
        EXPECT_EQ(recording.sizes()[i], bytes(largest));
    EXPECT_EQ(up.held(), counting.live_bytes());
}

TEST_F(PageHeap, DedicatedRunsAreUpstreamAllocationsOfTheirOwn) {
    const page_run a = heap.allocate(dedicated);
    const page_run b = heap.allocate(100);
    const page_run c = heap.allocate(8, 8 * page_size);
    ASSERT_EQ(recording.sizes().size(), 3u);
    EXPECT_EQ(recording.sizes()[0], bytes(dedicated)) << "exactly the run";
    EXPECT_EQ(recording.sizes()[1], bytes(100)) << "not rounded up";
    EXPECT_EQ(recording.sizes()[2], bytes(8));
    EXPECT_EQ(recording.holder(a.base, bytes(dedicated)).first, addr(a.base));
    EXPECT_EQ(recording.holder(b.base, bytes(100)).first, addr(b.base));
    EXPECT_EQ(addr(c.base) % (8 * page_size), 0u);
    EXPECT_EQ(counting.max_alignment(), 8 * page_size) << "asked of upstream, not padded here";
    EXPECT_EQ(heap.free_bytes(), 0u) << "a dedicated run brings no free pages";
    // They go back to upstream at once, never kept as the spare.
    EXPECT_EQ(heap.deallocate(a, dedicated), bytes(dedicated));
    EXPECT_EQ(counting.live_bytes(), bytes(108));
    EXPECT_EQ(heap.deallocate(b, 100), bytes(100));
    EXPECT_EQ(heap.deallocate(c, 8), bytes(8));
    EXPECT_EQ(counting.live_bytes(), 0u);
    EXPECT_EQ(heap.release_spare(), 0u);
    // Just below the threshold, a run comes from a shared extent, which is kept when empty.
    const page_run d = heap.allocate(dedicated - 1);
    ASSERT_EQ(recording.sizes().size(), 4u);
    EXPECT_EQ(heap.deallocate(d, dedicated - 1), 0u);
    EXPECT_EQ(heap.free_bytes(), recording.sizes()[3]);
    EXPECT_EQ(heap.release_spare(), recording.sizes()[3]);
}

TEST_F(PageHeap, KeepsOneEmptyExtentAsTheSpare) {
    const page_run a = heap.allocate(1);  // a small heap: one extent of a page each
    const page_run b = heap.allocate(1);
    const page_run c = heap.allocate(1);
    ASSERT_EQ(recording.sizes(), std::vector<std::size_t>(3, page_size));
    EXPECT_EQ(heap.deallocate(a, 1), 0u) << "the first empty extent is kept";
    EXPECT_EQ(counting.live_bytes(), bytes(3));
    EXPECT_EQ(heap.free_bytes(), bytes(1));
    EXPECT_EQ(heap.deallocate(b, 1), bytes(1)) << "a second empty one replaces it";
    EXPECT_EQ(counting.live_bytes(), bytes(2));
    EXPECT_EQ(heap.free_bytes(), bytes(1));
    // The spare serves the next run without upstream, and is no spare while in use.
    const page_run d = heap.allocate(1);
    EXPECT_EQ(d.owner, b.owner);
    EXPECT_EQ(recording.sizes().size(), 3u);
    EXPECT_EQ(heap.release_spare(), 0u);
    EXPECT_EQ(counting.live_bytes(), bytes(2));
    // Empty again, it is the spare again; release_spare gives it back.
    EXPECT_EQ(heap.deallocate(d, 1), 0u);
    EXPECT_EQ(heap.release_spare(), bytes(1));
    EXPECT_EQ(counting.live_bytes(), bytes(1));
    EXPECT_EQ(heap.free_bytes(), 0u);
    EXPECT_EQ(heap.release_spare(), 0u) << "one spare at most";
    // With no spare, the next empty extent becomes it: nothing goes back.
    EXPECT_EQ(heap.deallocate(c, 1), 0u);
    EXPECT_EQ(counting.live_bytes(), bytes(1));
    EXPECT_EQ(heap.release_spare(), bytes(1));
    EXPECT_EQ(counting.live_bytes(), 0u);
    EXPECT_EQ(counting.mismatches(), 0u);
    EXPECT_EQ(heap.free_bytes(), 0u);
}

TEST_F(PageHeap, FreeBytesCountsTheFreePagesOfSharedExtents) {
    const page_run w = warm_up();
    ASSERT_NE(w.base, nullptr);
    EXPECT_EQ(heap.free_bytes(), bytes(largest - 1));
    const page_run a = heap.allocate(3);
    EXPECT_EQ(heap.free_bytes(), bytes(largest - 4));
    const page_run big = heap.allocate(20);
    EXPECT_EQ(heap.free_bytes(), bytes(largest - 4)) << "dedicated runs are not counted";
    const page_run b = heap.allocate(4);
    EXPECT_EQ(heap.free_bytes(), bytes(largest - 8));
    heap.deallocate(a, 3);
    EXPECT_EQ(heap.free_bytes(), bytes(largest - 5));
    heap.deallocate(big, 20);
    EXPECT_EQ(heap.free_bytes(), bytes(largest - 5));
    heap.deallocate(b, 4);
    EXPECT_EQ(heap.free_bytes(), bytes(largest - 1));
    heap.deallocate(w, 1);
    EXPECT_EQ(heap.free_bytes(), bytes(largest)) << "the spare's pages are free pages";
    heap.release_spare();
    EXPECT_EQ(heap.free_bytes(), 0u) << "every other extent is full";
}

TEST_F(PageHeap, UpstreamFailureLeavesTheHeapUnchangedAndUsable) {
    const page_run w = warm_up();
    ASSERT_NE(w.base, nullptr);
    const std::size_t calls = recording.sizes().size();
    counting.fail_all(true);
    // What the heap holds still serves, with upstream failing.
    std::vector<page_run> runs;
    for (int i = 0; i < 3; ++i)
        runs.push_back(heap.allocate(4));
    EXPECT_EQ(runs[2].owner, w.owner);
    const std::size_t free_before = heap.free_bytes();
    const std::size_t held_before = up.held();
    const std::size_t mapped_before = map.mapped_bytes();
    ASSERT_EQ(free_before, bytes(3));
    EXPECT_THROW((void)heap.allocate(4), std::bad_alloc) << "needs a new extent";
    EXPECT_THROW((void)heap.allocate(dedicated), std::bad_alloc);
    EXPECT_EQ(counting.failures(), 2u);
    EXPECT_EQ(heap.free_bytes(), free_before);
    EXPECT_EQ(up.held(), held_before);
    EXPECT_EQ(map.mapped_bytes(), mapped_before);
    EXPECT_EQ(recording.sizes().size(), calls);
    const page_run last = heap.allocate(3);
    EXPECT_EQ(last.owner, w.owner);
    EXPECT_EQ(heap.free_bytes(), 0u);
    // And upstream is asked again once it works.
    counting.fail_all(false);
    const page_run fresh = heap.allocate(4);
    EXPECT_NE(fresh.owner, w.owner);
    EXPECT_EQ(recording.sizes().size(), calls + 1);
    const std::size_t fresh_free = heap.free_bytes();
    counting.fail_after(0);
    while (heap.free_bytes() >= bytes(4))
        runs.push_back(heap.allocate(4));
    EXPECT_THROW((void)heap.allocate(4), std::bad_alloc);
    EXPECT_EQ(recording.sizes().size(), calls + 1);
    EXPECT_LT(heap.free_bytes(), fresh_free);
    // Emptied, the extents are found empty: the failed calls left nothing behind in them.
    heap.deallocate(last, 3);
    heap.deallocate(runs[0], 4);
    heap.deallocate(runs[1], 4);
    heap.deallocate(runs[2], 4);
    EXPECT_EQ(heap.deallocate(w, 1), 0u) << "the warm extent is the spare";
    EXPECT_EQ(heap.release_spare(), bytes(largest));
}

TEST_F(PageHeap, DestroyGivesEverythingBackWhateverIsInUse) {
    const page_run w = warm_up();
    ASSERT_NE(w.base, nullptr);
    for (std::size_t n : {1, 2, 4, 3})
        (void)heap.allocate(n);
    (void)heap.allocate(dedicated);
    (void)heap.allocate(64, 16 * page_size);
    const page_run gone = heap.allocate(3);
    heap.deallocate(gone, 3);
    EXPECT_EQ(heap.free_bytes(), bytes(largest - 11));
    heap.destroy();
    EXPECT_EQ(counting.live_bytes(), 0u);
    EXPECT_EQ(counting.live_allocations(), 0u);
    EXPECT_EQ(counting.mismatches(), 0u);
    EXPECT_EQ(up.held(), 0u);
    EXPECT_EQ(heap.free_bytes(), 0u);
    EXPECT_EQ(heap.release_spare(), 0u);
    // The heap starts over: the smallest extent again.
    const std::size_t calls = recording.sizes().size();
    (void)heap.allocate(1);
    ASSERT_EQ(recording.sizes().size(), calls + 1);
    EXPECT_EQ(recording.sizes().back(), page_size);
    EXPECT_EQ(heap.free_bytes(), 0u);
}

}  // namespace
}  // namespace bpool::detail
