// subjects: the allocators under test, one list shared by every workload and by the burst.
//
// The binaries built with mimalloc (bpool_bench_mimalloc, bpool_instructions_mimalloc) offer only
// the mimalloc_resource subject (bpool's adapter): Debian's libmimalloc.so exports malloc and
// operator new, so linking it makes mimalloc the allocator of the whole process, and the glibc
// subject or bpool's upstream would be mimalloc in disguise. bpool_bench_checked offers only
// bpool_checked: bpool's default options over the library built with BPOOL_CHECKED=1 (no
// sanitizer). The other binaries offer everything else; their malloc subject calls malloc and free
// directly and is named after the allocator that really serves malloc (glibc, or mimalloc,
// jemalloc, tcmalloc under LD_PRELOAD).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <memory_resource>
#include <string>
#include <vector>

#include <bpool/pool_resource.hpp>

namespace bench {

/// One instance of a subject: the resource under test and whatever owns it.
struct instance {
    std::unique_ptr<std::pmr::memory_resource> owner;  ///< Null for process-wide resources.
    std::pmr::memory_resource* resource = nullptr;     ///< What workloads allocate from.
    bpool::pool_resource* pool = nullptr;  ///< Set for bpool subjects, for their statistics.
};

/// An allocator under test.
struct subject {
    std::string name;  ///< As it appears in benchmark names and in the report.
    bool thread_safe;  ///< Whether threads may share an instance (multi-threaded workloads).
    std::function<instance()> make;  ///< A fresh instance: each benchmark run gets its own.
};

/// The capacity of the `bpool_capped` subject: far above what any workload holds, so that the cap
/// is never reached while its accounting runs on every operation.
inline constexpr std::size_t never_reached_capacity = std::size_t{64} << 30;

/// Returns the subjects this binary offers, in report order (see the file comment).
[[nodiscard]] const std::vector<subject>& subjects();

/// Returns the subject named `name`, or null.
[[nodiscard]] const subject* find_subject(const std::string& name);

/// Returns a fresh bpool subject instance with `options` over the default resource.
[[nodiscard]] instance make_bpool(const bpool::pool_options& options);

}  // namespace bench
