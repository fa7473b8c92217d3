// The process-wide pool serves operator new through the whole life of a program linked with
// bpool::new_delete: static initializers (before main), thread_local destructors, atexit handlers
// and static destructors (after main). Each stage prints "<stage>: ok" if its block came from the
// pool; the ctest test expects all four, in this order (a crash would cut the output short).
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <unistd.h>
#include <vector>

#include <bpool/global.hpp>

// See new_delete_test.cpp: the never-destroyed pool is no leak.
extern "C" const char* __asan_default_options() {
    return "detect_leaks=0";
}

namespace {

// Allocates through operator new, checks that the pool served it, prints the verdict.
void check(const char* stage) {
    auto* v = new std::vector<int>(1000, 7);
    const bool ok =
        bpool::global_pool().owns(v) && bpool::global_pool().owns(v->data()) && (*v)[999] == 7;
    delete v;
    char line[128];
    const int n =
        std::snprintf(line, sizeof line, "%s: %s\n", stage, ok ? "ok" : "NOT FROM THE POOL");
    [[maybe_unused]] const ssize_t w = ::write(1, line, static_cast<std::size_t>(n));
}

struct at_static_init {
    at_static_init() { check("static initializer"); }
    ~at_static_init() { check("static destructor"); }
};
at_static_init first;  // made before main, destroyed after the atexit handler below ran

struct at_thread_exit {
    bool used = false;
    ~at_thread_exit() {
        if (used) check("thread_local destructor");
    }
};
thread_local at_thread_exit per_thread;

}  // namespace

int main() {
    std::thread([] { per_thread.used = true; }).join();
    std::atexit([] { check("atexit handler"); });
    return 0;
}
