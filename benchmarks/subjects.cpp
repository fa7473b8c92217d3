// Compiled three times: plain, with BPOOL_BENCH_MIMALLOC for the binaries that link mimalloc, and
// with BPOOL_BENCH_CHECKED for bpool_bench_checked (linked with bpool built with BPOOL_CHECKED=1).
#include "subjects.hpp"

#include <cstdlib>
#include <new>
#include <utility>

#include "malloc_identity.hpp"

#if BPOOL_BENCH_MIMALLOC
#include <bpool/adapters/mimalloc.hpp>
#else
#if BPOOL_BENCH_BOOST
#include <boost/container/pmr/synchronized_pool_resource.hpp>
#include <boost/container/pmr/unsynchronized_pool_resource.hpp>

#include "boost_resource.hpp"
#endif
#endif

namespace bench {
namespace {

/// An instance that owns `resource`.
template <class Resource>
instance owning(std::unique_ptr<Resource> resource) {
    instance i;
    i.resource = resource.get();
    i.owner = std::move(resource);
    return i;
}

/// Plain `malloc` / `free` (`aligned_alloc` where the alignment is above what malloc gives): what a
/// program gets from the allocator it runs on, glibc's or a preloaded one, with no `operator new`
/// in between. Stateless, so one instance serves the process.
class malloc_resource final : public std::pmr::memory_resource {
    void* do_allocate(std::size_t bytes, std::size_t alignment) override {
        void* p = alignment <= alignof(std::max_align_t)
                      ? std::malloc(bytes)
                      : std::aligned_alloc(alignment, (bytes + alignment - 1) & ~(alignment - 1));
        if (p == nullptr) throw std::bad_alloc();
        return p;
    }
    void do_deallocate(void* p, std::size_t, std::size_t) override { std::free(p); }
    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
        return this == &other;
    }
};

[[maybe_unused]] std::pmr::memory_resource* malloc_subject() {
    static malloc_resource resource;
    return &resource;
}

/// An instance of a process-wide resource (unused in bpool_bench_checked).
[[maybe_unused]] instance shared(std::pmr::memory_resource* resource) {
    instance i;
    i.resource = resource;
    return i;
}

std::vector<subject> make_subjects() {
    std::vector<subject> list;
#if BPOOL_BENCH_MIMALLOC
    // The adapter: its own name, so that "mimalloc" is mimalloc's malloc (LD_PRELOAD), as for the
    // other allocators.
    list.push_back(
        {"mimalloc_resource", true, [] { return shared(&bpool::mimalloc_resource::instance()); }});
#elif BPOOL_BENCH_CHECKED
    // The "bpool" subject with checking on: the same default options, a checked library.
    list.push_back({"bpool_checked", true, [] { return make_bpool({}); }});
#else
    list.push_back({"bpool", true, [] { return make_bpool({}); }});
    list.push_back(
        {"bpool_capped", true, [] { return make_bpool({.capacity = never_reached_capacity}); }});
    // malloc itself: glibc's, or the preloaded allocator's (mimalloc, jemalloc, tcmalloc).
    list.push_back({identify_malloc().name, true, [] { return shared(malloc_subject()); }});
    list.push_back({"std_sync", true, [] {
                        return owning(std::make_unique<std::pmr::synchronized_pool_resource>());
                    }});
    list.push_back({"std_unsync", false, [] {
                        return owning(std::make_unique<std::pmr::unsynchronized_pool_resource>());
                    }});
#if BPOOL_BENCH_BOOST
    namespace bpmr = boost::container::pmr;
    list.push_back({"boost_sync", true, [] {
                        return owning(
                            std::make_unique<boost_resource<bpmr::synchronized_pool_resource>>());
                    }});
    list.push_back({"boost_unsync", false, [] {
                        return owning(
                            std::make_unique<boost_resource<bpmr::unsynchronized_pool_resource>>());
                    }});
#endif
#endif
    return list;
}

}  // namespace

instance make_bpool(const bpool::pool_options& options) {
    auto pool = std::make_unique<bpool::pool_resource>(options);
    bpool::pool_resource* const raw = pool.get();
    instance i = owning(std::move(pool));
    i.pool = raw;
    return i;
}

const std::vector<subject>& subjects() {
    static const std::vector<subject> list = make_subjects();
    return list;
}

const subject* find_subject(const std::string& name) {
    for (const subject& s : subjects())
        if (s.name == name) return &s;
    return nullptr;
}

}  // namespace bench
