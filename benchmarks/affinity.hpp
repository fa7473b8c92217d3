// affinity: pins the two sides of a cross-thread workload to two different cores.
#pragma once

#include <cstddef>
#include <pthread.h>
#include <sched.h>
#include <vector>

namespace bench {

/// Pins the calling thread to one CPU while it lives, then restores the thread's former affinity.
/// A hand-off between two threads left to the scheduler is timed sometimes across two cores and
/// sometimes time-sliced on one (where nothing crosses a cache), a different workload each time;
/// pinning makes it the cross-core one on every run. Does nothing where it cannot pin.
class cpu_pin {
  public:
    /// Effects: pins this thread to the `index`-th CPU the process was allowed when the first
    /// cpu_pin was made (so that a thread started by a pinned thread can still be pinned
    /// elsewhere), if there are more than `index` of them.
    explicit cpu_pin(std::size_t index) noexcept {
        static const std::vector<std::size_t> cpus = allowed_cpus();
        if (index >= cpus.size()) return;
        if (pthread_getaffinity_np(pthread_self(), sizeof(saved_), &saved_) != 0) return;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpus[index], &one);
        pinned_ = pthread_setaffinity_np(pthread_self(), sizeof(one), &one) == 0;
    }
    ~cpu_pin() {
        if (pinned_) pthread_setaffinity_np(pthread_self(), sizeof(saved_), &saved_);
    }
    cpu_pin(const cpu_pin&) = delete;
    cpu_pin& operator=(const cpu_pin&) = delete;

  private:
    static std::vector<std::size_t> allowed_cpus() {
        std::vector<std::size_t> cpus;
        cpu_set_t set;
        if (pthread_getaffinity_np(pthread_self(), sizeof(set), &set) != 0) return cpus;
        for (std::size_t cpu = 0; cpu < static_cast<std::size_t>(CPU_SETSIZE); ++cpu)
            if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
        return cpus;
    }

    cpu_set_t saved_{};
    bool pinned_ = false;
};

}  // namespace bench
