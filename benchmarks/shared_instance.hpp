// shared_instance: one subject instance shared by the threads of a multi-threaded benchmark run.
#pragma once

#include <memory_resource>
#include <mutex>

#include "subjects.hpp"

namespace bench {

/// The first thread of a run to call `acquire` makes the instance (destroying the previous run's);
/// `release` only counts the run's threads out. Correct because Google Benchmark starts the timed
/// loop of all threads at a barrier: every thread acquires before the loop, so none releases
/// before all have acquired. An instance outlives its run, up to the next run or the end of the
/// process, because a run's threads are still exiting after their last `release`, and
/// std::pmr::synchronized_pool_resource's per-thread destructor (a pthread key's) then reads the
/// resource: destroying it at once crashed, now and then, on a loaded machine.
class shared_instance {
  public:
    /// Returns the run's instance of `s`, made by the first caller.
    std::pmr::memory_resource& acquire(const subject& s) {
        const std::lock_guard lock(mutex_);
        if (users_++ == 0) {
            instance_ = {};  // the previous run's threads have all been joined by now
            instance_ = s.make();
        }
        return *instance_.resource;
    }

    /// Effects: counts the calling thread out of the run.
    void release() {
        const std::lock_guard lock(mutex_);
        --users_;
    }

  private:
    std::mutex mutex_;
    int users_ = 0;
    instance instance_;
};

}  // namespace bench
