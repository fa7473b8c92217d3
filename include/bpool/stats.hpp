/// @file
/// bpool/stats.hpp: the snapshot returned by pool_resource::stats(), and its outputs for people
/// (operator<<), programs (to_json) and Prometheus (to_prometheus).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace bpool {

/// Counters of one size class.
struct size_class_stats {
    std::size_t block_size = 0;       ///< Bytes of a block of this class.
    std::uint64_t allocations = 0;    ///< Blocks of this class handed out since construction.
    std::uint64_t deallocations = 0;  ///< Blocks of this class given back since construction.
    std::size_t live_blocks = 0;      ///< allocations - deallocations.
};

/// A snapshot of a pool's counters. Counters are gathered from every thread without stopping
/// them: while other threads allocate, the figures are each exact for some recent moment, not
/// necessarily the same one. Once the pool is quiescent, they are exact.
struct pool_stats {
    /// Number of buckets in `wait_histogram`.
    static constexpr std::size_t wait_buckets = 32;

    // Memory.
    std::size_t live_bytes = 0;   ///< Bytes handed out and not given back (block sizes).
    std::size_t live_blocks = 0;  ///< Blocks handed out and not given back.
    /// An upper bound of the highest live byte count since construction, never above
    /// `peak_upstream_bytes` and never below the `live_bytes` of the same snapshot. It is the
    /// peak of what was committed against the cap (live bytes plus the credit thread caches hold:
    /// up to about three leases per thread more), bounded by what upstream held (see README,
    /// "Statistics").
    std::size_t peak_live_bytes = 0;
    std::size_t cached_bytes = 0;  ///< Idle bytes kept for reuse: thread caches, central lists,
                                   ///< free blocks in chunks.
    std::size_t thread_cached_bytes = 0;  ///< The part of `cached_bytes` in thread caches.
    std::size_t upstream_bytes = 0;       ///< Bytes currently held from the upstream resource.
    std::size_t peak_upstream_bytes = 0;  ///< Highest `upstream_bytes` since construction.
    /// The part of `upstream_bytes` in no block: the tails of chunks past their last block
    /// (chunks are whole pages), free pages between the chunks of the classes up to 2 KiB (they
    /// share upstream allocations of up to 64 KiB, each kept until all its pages are free; one
    /// wholly free is kept against thrashing), and what upstream holds for a direct block beyond
    /// its size (each asks for at least a page). Once no thread uses the pool, `upstream_bytes` is
    /// `live_bytes + cached_bytes + unused_bytes` (live bytes include bypass blocks).
    std::size_t unused_bytes = 0;
    /// Bytes of address space mapped for the pool's pagemap (its address-to-block table): 2 MiB
    /// for the root and 2 MiB per GiB-aligned GiB the pool's memory touches. Only touched pages
    /// are resident: one 4 KiB page of the table per 2 MiB of address space holding pool pages
    /// (8 bytes per page when the pool's memory is contiguous), plus a root page per 512 GiB.
    std::size_t pagemap_bytes = 0;
    std::size_t large_live_bytes = 0;    ///< Live bytes of requests above the size classes.
    std::size_t bypass_live_bytes = 0;   ///< Live bytes served by the `bypass` policy (not pooled).
    std::size_t bypass_live_blocks = 0;  ///< Live blocks served by the `bypass` policy.

    // Operations.
    std::uint64_t allocations = 0;          ///< Successful allocations since construction.
    std::uint64_t deallocations = 0;        ///< Deallocations since construction.
    std::vector<size_class_stats> classes;  ///< Per size class, smallest first (pooled only).

    // Thread caches.
    std::size_t thread_caches = 0;  ///< Threads that have a cache for this pool now.
    /// Times the pool stopped its threads' fast paths to reach into their caches (trim,
    /// capacity changes, credit stranded in idle caches that a request at the cap needs, room
    /// taken back from idle caches), each a process-wide memory barrier (README, "Thread caches").
    std::uint64_t quiesces = 0;
    /// True where the process-wide barrier is not available (no `membarrier`: seccomp filters,
    /// gVisor, valgrind, non-Linux, or `BPOOL_MEMBARRIER=0`): every fast path then pays a full
    /// memory fence instead (README, "Thread caches").
    bool fenced_fast_path = false;

    // Capacity in force.
    std::size_t capacity = 0;         ///< 0: unlimited.
    std::size_t max_live_blocks = 0;  ///< 0: unlimited.

    // Exhaustion.
    /// Requests that had to wait at the cap, counted when their wait begins (so a stall in
    /// progress shows here at once, and in `waiters` and `oldest_wait`).
    std::uint64_t waits = 0;
    std::chrono::nanoseconds total_wait{0};  ///< Sum of the time finished waits took.
    std::chrono::nanoseconds max_wait{0};    ///< Longest finished wait.
    /// Waits by duration: bucket i counts waits of [2^i, 2^(i+1)) microseconds (bucket 0 also
    /// counts waits under 1 us; the last bucket also counts everything longer).
    std::array<std::uint64_t, wait_buckets> wait_histogram{};
    std::uint64_t timeouts = 0;     ///< Requests that gave up (threw `capacity_exceeded`).
    std::uint64_t failures = 0;     ///< Requests refused at once (`fail`, `try_allocate`).
    std::uint64_t overcommits = 0;  ///< Requests that proceeded past the cap (`overcommit`).
    std::uint64_t bypasses = 0;     ///< Requests served outside the pool (`bypass`).
    std::uint64_t paced = 0;        ///< Requests delayed by the soft threshold.
    std::size_t waiters = 0;        ///< Requests waiting right now.
    std::chrono::nanoseconds oldest_wait{0};  ///< How long the oldest wait in progress has lasted
                                              ///< (0: nobody waits).
    std::chrono::nanoseconds backoff_interval{0};  ///< The step the next wait starts with.
};

/// Effects: writes `s` to `os` for a person to read: one line each for memory, operations, thread
/// caches, the capacity and the waits (sizes in B/KiB/MiB/GiB, durations in ns/us/ms/s), then a
/// table of the size classes that served at least one block (block size, allocations,
/// deallocations, live blocks). Several lines, each ending in a newline.
/// Returns: `os`. Throws: what `os` throws under its exception mask.
/// Thread safety: as for any stream; `s` is a snapshot, read only.
std::ostream& operator<<(std::ostream& os, const pool_stats& s);

/// Returns: `s` as one JSON object (RFC 8259) whose keys are the member names of `pool_stats`:
/// sizes and counts as integers, `fenced_fast_path` as a boolean, durations as integers of
/// nanoseconds under the member's name followed by `_ns` (`total_wait_ns`, `max_wait_ns`,
/// `oldest_wait_ns`, `backoff_interval_ns`), `wait_histogram` as an array of
/// `pool_stats::wait_buckets` counts and `classes` as an array of objects with the members of
/// `size_class_stats`, smallest first. One line, no trailing newline.
/// Throws: `std::bad_alloc`. Thread safety: reads `s` only.
[[nodiscard]] std::string to_json(const pool_stats& s);

/// Returns: `s` in Prometheus' text exposition format (version 0.0.4), each metric named
/// `<prefix>_<name>` with its `# HELP` and `# TYPE` lines and a final newline: gauges in bytes
/// end in `_bytes`, counters end in `_total`, times are in seconds; the waits by duration are
/// the histogram `<prefix>_wait_seconds` (its buckets' upper bounds 2 us, 4 us, ... and `+Inf`;
/// `_count` and `_sum` cover finished waits, while `<prefix>_waits_total` counts every wait
/// from its start); the size classes that served a block give the counters
/// `<prefix>_class_allocations_total` and `<prefix>_class_deallocations_total` and the gauge
/// `<prefix>_class_live_blocks`, labelled `block_size`. A scrape that exposes several pools gives
/// each its own prefix (a metric may appear only once in an exposition).
/// Throws: `std::invalid_argument` if `prefix` is not a metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`);
/// `std::bad_alloc`. Thread safety: reads `s` only.
[[nodiscard]] std::string to_prometheus(const pool_stats& s, std::string_view prefix = "bpool");

}  // namespace bpool
