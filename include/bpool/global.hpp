/// @file
/// bpool/global.hpp: the process-wide pool, which `bpool::new_delete` (linked) and
/// `libbpool_preload.so` (LD_PRELOAD) make the program's global operator new and delete.
#pragma once

#include <bpool/pool_resource.hpp>

namespace bpool {

/// Returns the process-wide pool, making it on first use: configured once from the BPOOL_*
/// environment variables (README, "Replace the allocator of an existing program"), its upstream
/// glibc's `malloc` / `posix_memalign` (never `operator new`), and never destroyed, so that it
/// serves static destructors, `thread_local` destructors and everything after `exit` begins.
/// A program may read its `stats()`, call `set_capacity()` or `trim()` at any time.
/// Where neither `bpool::new_delete` nor the preload library replaces `operator new`, it is an
/// ordinary pool that only the calls made to it use. Thread-safe; never throws after the first
/// call (which throws `std::bad_alloc` if the pool cannot be made).
[[nodiscard]] pool_resource& global_pool();

}  // namespace bpool
