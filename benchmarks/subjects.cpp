// Compiled three times: plain, with BPOOL_BENCH_MIMALLOC for the binaries that link mimalloc, and
// with BPOOL_BENCH_CHECKED for bpool_bench_checked (linked with bpool built with BPOOL_CHECKED=1).
#include "subjects.hpp"

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

/// An instance of a process-wide resource (unused in bpool_bench_checked).
[[maybe_unused]] instance shared(std::pmr::memory_resource* resource) {
    instance i;
    i.resource = resource;
    return i;
}

std::vector<subject> make_subjects() {
    std::vector<subject> list;
#if BPOOL_BENCH_MIMALLOC
    list.push_back(
        {"mimalloc", true, [] { return shared(&bpool::mimalloc_resource::instance()); }});
#elif BPOOL_BENCH_CHECKED
    // The "bpool" subject with checking on: the same default options, a checked library.
    list.push_back({"bpool_checked", true, [] { return make_bpool({}); }});
#else
    list.push_back({"bpool", true, [] { return make_bpool({}); }});
    list.push_back(
        {"bpool_capped", true, [] { return make_bpool({.capacity = never_reached_capacity}); }});
    // new_delete_resource is operator new, that is malloc: glibc's, or the preloaded allocator's.
    list.push_back(
        {identify_malloc().name, true, [] { return shared(std::pmr::new_delete_resource()); }});
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
