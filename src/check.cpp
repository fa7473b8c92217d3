#include "check.hpp"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

#include "track.hpp"

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
    const auto* bytes = static_cast<const unsigned char*>(p);
    for (std::size_t i = sizeof(void*); i < size; ++i) {
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
