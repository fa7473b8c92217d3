// Layer 10: the process-wide pool's configuration from the environment (BPOOL_CAPACITY and the
// other BPOOL_* variables), read once when the pool is made. Everything here runs inside the
// first `operator new` of the process, before `main` perhaps: it never allocates through
// `operator new` (no std::string, no iostreams), reads the variables and files through plain C
// calls, and reports a bad value as one line through a callback, then keeps the default.
#pragma once

#include <chrono>
#include <cstddef>

#include <bpool/pool_options.hpp>

namespace bpool::detail {

/// What the BPOOL_* variables ask of the process-wide pool.
struct env_config {
    pool_options options;      ///< capacity, on_exhaustion, backoff.max_elapsed, delay_threshold,
                               ///< max_cached_bytes as the variables set them; defaults otherwise
    bool print_stats = false;  ///< BPOOL_STATS=1: print the statistics to stderr at exit
    bool verbose = false;      ///< BPOOL_VERBOSE=1: report stalls and timeouts to stderr
};

/// Where read_env_config gets what it reads; a test passes its own.
struct env_source {
    /// The value of variable `name`, or nullptr if it is unset.
    const char* (*lookup)(const char* name, void* context);
    /// Receives one complaint (a line without its newline).
    void (*complain)(const char* line, void* context);
    /// The memory the process may use, in bytes, for `N%` capacities (0: unknown).
    std::size_t (*memory_limit)(void* context);
    void* context;
};

/// Returns the configuration the variables describe. A variable whose value is not one of the
/// accepted forms is reported through `source.complain` (naming the variable, the value and the
/// forms) and leaves its default. Never allocates through `operator new`.
[[nodiscard]] env_config read_env_config(const env_source& source) noexcept;

/// The process's environment: getenv, complaints through report_line, and the memory limit
/// (the cgroup v2 `memory.max` of the process, else physical memory).
[[nodiscard]] env_source process_env() noexcept;

/// Writes "bpool: <line>" and a newline to stderr with one write(2): no stdio buffer, which may be
/// gone at exit, and no allocation. Thread-safe.
void report_line(const char* line) noexcept;

/// The cgroup v2 `memory.max` of the process read from the files under `root` ("/" for the real
/// ones: `/proc/self/cgroup` names the group, under `/sys/fs/cgroup`); 0 if none is set ("max")
/// or it cannot be read.
[[nodiscard]] std::size_t cgroup_memory_max(const char* root) noexcept;

// The parsers, one per kind of value; each returns false (and leaves *out) for a bad value.

/// Bytes: digits with an optional suffix K, M, G (powers of 1024; also KiB, MiB, GiB, any case),
/// or `N%` of `limit` (0 < N <= 100; false if `limit` is 0).
bool parse_bytes(const char* text, std::size_t limit, std::size_t* out) noexcept;
/// A duration: digits followed by ns, us, ms, s or min.
bool parse_duration(const char* text, std::chrono::nanoseconds* out) noexcept;
/// A fraction in [0, 1): digits with an optional decimal point.
bool parse_fraction(const char* text, double* out) noexcept;
/// A policy: wait, fail, overcommit or bypass.
bool parse_exhaustion(const char* text, exhaustion* out) noexcept;
/// A switch: 1, 0, true, false, yes, no, on, off.
bool parse_switch(const char* text, bool* out) noexcept;

}  // namespace bpool::detail
