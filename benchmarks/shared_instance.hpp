// shared_instance: one subject instance shared by the threads of a multi-threaded benchmark run.
#pragma once

#include <memory_resource>
#include <mutex>

#include "subjects.hpp"

namespace bench {

/// The first thread of a run to call `acquire` makes the instance; the last to call `release`
/// destroys it. Correct because Google Benchmark starts the timed loop of all threads at a barrier:
/// every thread acquires before the loop, so none releases before all have acquired.
class shared_instance {
  public:
    /// Returns the run's instance of `s`, made by the first caller.
    std::pmr::memory_resource& acquire(const subject& s) {
        const std::lock_guard lock(mutex_);
        if (users_++ == 0) instance_ = s.make();
        return *instance_.resource;
    }

    /// Effects: the last caller of the run destroys the instance.
    void release() {
        const std::lock_guard lock(mutex_);
        if (--users_ == 0) instance_ = {};
    }

  private:
    std::mutex mutex_;
    int users_ = 0;
    instance instance_;
};

}  // namespace bench
