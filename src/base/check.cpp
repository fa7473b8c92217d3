#include "base/check.hpp"

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/track.hpp"

#if BPOOL_CHECKED && __has_include(<execinfo.h>)
#include <execinfo.h>
#include <unistd.h>
#define BPOOL_FATAL_STACK 1
#else
#define BPOOL_FATAL_STACK 0
#endif

namespace bpool::detail {

namespace {

// Checked build: the stack of the failing call (a double free, a foreign pointer, a use after
// free, a broken invariant), printed after the message. backtrace_symbols_fd writes straight to
// the descriptor without malloc (backtrace_symbols would allocate, and the pool may be the global
// operator new); the checked registry has already made backtrace() itself allocation-free.
BPOOL_NOINLINE void print_stack() noexcept {
#if BPOOL_FATAL_STACK
    void* frames[32];
    const int n = ::backtrace(frames, 32);
    std::fprintf(stderr,
                 "bpool: stack of the failing call (names need -rdynamic, or addr2line):\n");
    std::fflush(stderr);
    for (int i = 2; i < n; ++i) {  // from fatal's caller: not this frame, not fatal's
        if (::write(STDERR_FILENO, "    ", 4) < 0) return;
        ::backtrace_symbols_fd(frames + i, 1, STDERR_FILENO);
    }
#endif
}

}  // namespace

void fatal(const char* file, int line, const char* message) noexcept {
    std::fprintf(stderr, "bpool: %s:%d: %s\n", file, line, message);
    print_stack();
    std::fflush(stderr);
    std::abort();
}

void fatalf(const char* file, int line, const char* format, ...) noexcept {
    std::fprintf(stderr, "bpool: %s:%d: ", file, line);
    va_list args;
    va_start(args, format);
    std::vfprintf(stderr, format, args);
    va_end(args);
    std::fputc('\n', stderr);
    print_stack();
    std::fflush(stderr);
    std::abort();
}

namespace track {

#if BPOOL_VALGRIND
namespace {
// The bytes of a region's upstream allocation that memcheck sees while the pool holds the region.
constexpr std::size_t kept = 16;
}  // namespace
#endif

void verify_idle_fill(const void* p, std::size_t size) noexcept {
    // The first word is the free-list link; everything after it must still be the free fill.
    // Compared a word at a time (blocks are 16-byte multiples), byte by byte only to report.
    const auto* bytes = static_cast<const unsigned char*>(p);
    constexpr std::uint64_t pattern = 0x0101010101010101ull * free_fill;
    std::size_t i = sizeof(void*);
    for (; i + sizeof pattern <= size; i += sizeof pattern) {
        std::uint64_t word;
        std::memcpy(&word, bytes + i, sizeof word);
        if (word != pattern) break;
    }
    for (; i < size; ++i) {
        if (bytes[i] != free_fill) {
            fatalf(__FILE__, __LINE__,
                   "use after free: byte %zu of idle block %p (%zu bytes) was written while the "
                   "block was free",
                   i, p, size);
        }
    }
}

void abandon_live_blocks(void* p, std::size_t size) noexcept {
#if BPOOL_VALGRIND
    if (!RUNNING_ON_VALGRIND) return;
    // Idle and uncarved memory is NOACCESS and a live block accessible throughout, so the first
    // accessible granule (blocks are 16-byte multiples) is a live block's start; its FREELIKE makes
    // the rest of it NOACCESS. Errors stay off, should some granule not be a block after all.
    auto* bytes = static_cast<unsigned char*>(p);
    VALGRIND_DISABLE_ERROR_REPORTING;
    for (std::size_t i = 0; i < size; i += 16) {
        unsigned char vbits;
        if (VALGRIND_GET_VBITS(bytes + i, &vbits, 1) == 1) VALGRIND_FREELIKE_BLOCK(bytes + i, 0);
    }
    VALGRIND_ENABLE_ERROR_REPORTING;
#else
    (void)p, (void)size;
#endif
}

void shrink_to_front(void* start, std::size_t front, std::size_t bytes) noexcept {
#if BPOOL_VALGRIND
    if (front != 0) {
        // Errors off: an upstream whose blocks memcheck does not know (an arena) has none to
        // resize.
        VALGRIND_DISABLE_ERROR_REPORTING;
        VALGRIND_RESIZEINPLACE_BLOCK(start, front + bytes, kept, 0);
        VALGRIND_ENABLE_ERROR_REPORTING;
    }
    (void)VALGRIND_MAKE_MEM_NOACCESS(static_cast<char*>(start) + front, bytes);
#else
    (void)start, (void)front, (void)bytes;
#endif
}

void grow_from_front(void* start, std::size_t front, std::size_t bytes) noexcept {
#if BPOOL_VALGRIND
    if (front != 0) {
        VALGRIND_DISABLE_ERROR_REPORTING;
        VALGRIND_RESIZEINPLACE_BLOCK(start, kept, front + bytes, 0);
        VALGRIND_ENABLE_ERROR_REPORTING;
    }
#else
    (void)start, (void)front, (void)bytes;
#endif
}

}  // namespace track
}  // namespace bpool::detail
