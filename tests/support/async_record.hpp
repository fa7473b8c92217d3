// Test support: an asynchronous memory request that records how it ended and lets a test wait
// for its completion.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <pthread.h>
#include <string>

#include <bpool/pool_resource.hpp>

namespace bpool::test {

class recorded : public memory_request {
  public:
    void on_complete(void* p, async_status s) noexcept override {
        char name[16] = {};
        pthread_getname_np(pthread_self(), name, sizeof name);
        std::lock_guard lock(m_);
        block = p;
        status = s;
        thread_name = name;
        when = std::chrono::steady_clock::now();
        ++completions;
        cv_.notify_all();
    }
    /// Waits (bounded only by the test's own timeout) for `n` completions in all.
    void wait_for(int n = 1) {
        std::unique_lock lock(m_);
        cv_.wait(lock, [&] { return completions >= n; });
    }
    [[nodiscard]] int count() {
        std::lock_guard lock(m_);
        return completions;
    }

    void* block = nullptr;
    async_status status = async_status::failed;
    std::string thread_name;
    std::chrono::steady_clock::time_point when{};
    int completions = 0;

  private:
    std::mutex m_;
    std::condition_variable cv_;
};

}  // namespace bpool::test
