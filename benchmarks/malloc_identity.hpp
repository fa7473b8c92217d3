// malloc_identity: which malloc this process really uses, found at run time.
//
// jemalloc and tcmalloc are benchmarked by running the same binary again under LD_PRELOAD; this is
// how a run proves that the preload took effect (and how a run without one proves it measures
// glibc, not an allocator that a linked library slipped in: Debian's libmimalloc.so exports
// malloc).
#pragma once

#include <string>

namespace bench {

/// The allocator that serves `malloc` in this process.
struct malloc_identity {
    std::string name;  ///< "glibc", "jemalloc", "tcmalloc", "mimalloc", or the library's file name.
    std::string version;  ///< As the allocator reports it; empty if it cannot tell.
    std::string library;  ///< Path of the shared object that defines the `malloc` in use.
};

/// Returns the allocator behind `malloc`: the shared object that defines the symbol the dynamic
/// linker resolves for it (dlsym(RTLD_DEFAULT)), and its version from its own API (mallctl,
/// tc_version, mi_version, gnu_get_libc_version).
[[nodiscard]] malloc_identity identify_malloc();

/// Effects: if the environment variable BPOOL_BENCH_EXPECT_MALLOC is set and names another
/// allocator than `identify_malloc()` finds, prints both to stderr and exits with status 3, so that
/// a preload that did not take effect can never be reported under the preloaded allocator's name.
void check_expected_malloc();

}  // namespace bench
