// Assertions in levels. BPOOL_ASSERT is for internal invariants and compiles away in release
// builds; BPOOL_CHECK is always on, for conditions whose failure would corrupt memory. Both report
// through bpool::detail::fatal, which prints one line and aborts.
#pragma once

namespace bpool::detail {

/// Prints "bpool: <file>:<line>: <message>" (plus the formatted detail, if any) to stderr and
/// aborts.
[[noreturn]] void fatal(const char* file, int line, const char* message) noexcept;
/// Same, with a printf-style detail line appended.
[[noreturn]] void fatalf(const char* file, int line, const char* format, ...) noexcept
    __attribute__((format(printf, 3, 4)));

}  // namespace bpool::detail

#define BPOOL_LIKELY(x) __builtin_expect(!!(x), 1)
#define BPOOL_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define BPOOL_NOINLINE __attribute__((noinline))
#define BPOOL_COLD __attribute__((cold, noinline))
#define BPOOL_INLINE inline __attribute__((always_inline))

#define BPOOL_CHECK(cond, message)                                                        \
    do {                                                                                  \
        if (BPOOL_UNLIKELY(!(cond))) ::bpool::detail::fatal(__FILE__, __LINE__, message); \
    } while (false)

#ifdef NDEBUG
#define BPOOL_ASSERT(cond) ((void)0)
#else
#define BPOOL_ASSERT(cond) BPOOL_CHECK(cond, "assertion failed: " #cond)
#endif
