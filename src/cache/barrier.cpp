#include "cache/barrier.hpp"

#include <cstdlib>
#include <cstring>
#include <mutex>

#if defined(__linux__)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace bpool::detail {

bool heavy_barrier_available = false;

namespace {

#if defined(__linux__) && defined(__NR_membarrier)
long membarrier(int cmd) noexcept {
    return syscall(__NR_membarrier, cmd, 0, 0);
}
#endif

bool register_membarrier() noexcept {
    // BPOOL_MEMBARRIER=0 turns the heavy barrier off, as a seccomp filter would: to measure and
    // test the fallback on a machine that has membarrier.
    if (const char* v = std::getenv("BPOOL_MEMBARRIER"); v != nullptr && std::strcmp(v, "0") == 0)
        return false;
#if defined(__linux__) && defined(__NR_membarrier)
    const long cmds = membarrier(MEMBARRIER_CMD_QUERY);
    if (cmds < 0 || (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
    return membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
#else
    return false;
#endif
}

}  // namespace

void init_heavy_barrier() noexcept {
    static std::once_flag once;
    // heavy_barrier_available is written once here, before any pool exists, and only read after a
    // pool's constructor (which calls this) has returned: the once_flag orders the two.
    std::call_once(once, [] { heavy_barrier_available = register_membarrier(); });
}

void reinit_heavy_barrier_after_fork() noexcept {
    if (heavy_barrier_available) heavy_barrier_available = register_membarrier();
}

void heavy_barrier() noexcept {
#if defined(__linux__) && defined(__NR_membarrier)
    if (heavy_barrier_available && membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return;
    BPOOL_CHECK(!heavy_barrier_available, "membarrier failed after registration");
#endif
#if !BPOOL_TSAN
    std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

}  // namespace bpool::detail
