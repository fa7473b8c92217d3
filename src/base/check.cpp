#include "base/check.hpp"

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/track.hpp"

namespace bpool::detail {

void fatal(const char* file, int line, const char* message) noexcept {
    std::fprintf(stderr, "bpool: %s:%d: %s\n", file, line, message);
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
    std::fflush(stderr);
    std::abort();
}

namespace track {

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

}  // namespace track
}  // namespace bpool::detail
