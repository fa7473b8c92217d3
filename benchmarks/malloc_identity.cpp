#include "malloc_identity.hpp"

#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <string_view>

namespace bench {
namespace {

/// Returns the symbol `name` as a pointer to a function of type `F`, or null if no loaded object
/// defines it.
template <class F>
F* find_function(const char* name) {
    // POSIX guarantees that dlsym's object pointer converts to a function pointer.
    return reinterpret_cast<F*>(dlsym(RTLD_DEFAULT, name));
}

std::string jemalloc_version() {
    auto* mallctl =
        find_function<int(const char*, void*, std::size_t*, void*, std::size_t)>("mallctl");
    if (mallctl == nullptr) return {};
    const char* version = nullptr;
    std::size_t size = sizeof(version);
    if (mallctl("version", static_cast<void*>(&version), &size, nullptr, 0) != 0 ||
        version == nullptr)
        return {};
    return version;
}

std::string tcmalloc_version() {
    auto* tc_version = find_function<const char*(int*, int*, const char**)>("tc_version");
    if (tc_version == nullptr) return {};
    int major = 0;
    int minor = 0;
    const char* patch = nullptr;
    const char* text = tc_version(&major, &minor, &patch);
    return text != nullptr ? text : std::to_string(major) + "." + std::to_string(minor);
}

std::string mimalloc_version() {
    auto* mi_version = find_function<int()>("mi_version");
    if (mi_version == nullptr) return {};
    const int v = mi_version();  // e.g. 209 for 2.0.9
    return std::to_string(v / 100) + "." + std::to_string(v / 10 % 10) + "." +
           std::to_string(v % 10);
}

}  // namespace

malloc_identity identify_malloc() {
    malloc_identity id;
    Dl_info info{};
    void* const malloc_symbol = dlsym(RTLD_DEFAULT, "malloc");
    if (malloc_symbol == nullptr || dladdr(malloc_symbol, &info) == 0 ||
        info.dli_fname == nullptr) {
        id.name = "unknown";
        return id;
    }
    id.library = info.dli_fname;
    const std::string_view file = std::string_view(id.library).substr(id.library.rfind('/') + 1);
    if (file.find("jemalloc") != std::string_view::npos) {
        id.name = "jemalloc";
        id.version = jemalloc_version();
    } else if (file.find("tcmalloc") != std::string_view::npos) {
        id.name = "tcmalloc";
        id.version = tcmalloc_version();
    } else if (file.find("mimalloc") != std::string_view::npos) {
        id.name = "mimalloc";
        id.version = mimalloc_version();
    } else if (file.starts_with("libc.so") || file.starts_with("libc-")) {
        id.name = "glibc";
        id.version = gnu_get_libc_version();
    } else {
        id.name = std::string(file);
    }
    return id;
}

void check_expected_malloc() {
    const char* expected = std::getenv("BPOOL_BENCH_EXPECT_MALLOC");
    if (expected == nullptr || *expected == '\0') return;
    const malloc_identity id = identify_malloc();
    if (id.name == expected) return;
    std::fprintf(stderr,
                 "bpool bench: expected malloc to be %s, but it is %s (%s): "
                 "the LD_PRELOAD did not take effect\n",
                 expected, id.name.c_str(), id.library.c_str());
    std::exit(3);
}

}  // namespace bench
