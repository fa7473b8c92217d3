// Test support: turns a hang into a failure. A test whose scenario could block forever (a lock held
// across a wait in another pool, a fork handler waiting for a thread) arms a watchdog; if the test
// body has not finished within the limit, the watchdog names the test and the scenario on stderr
// and aborts the process, so that CI reports a crash instead of running into its own timeout.
//
// The limit is generous (120 s: no slow or busy machine needs it) and can be shortened with the
// environment variable BPOOL_TEST_WATCHDOG_S, e.g. to see quickly that a test fails on a core that
// hangs: BPOOL_TEST_WATCHDOG_S=10.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace bpool::test {

/// The watchdog limit: BPOOL_TEST_WATCHDOG_S seconds if set to a positive number, else 120 s.
inline std::chrono::seconds watchdog_limit() {
    if (const char* s = std::getenv("BPOOL_TEST_WATCHDOG_S")) {
        char* end = nullptr;
        const long v = std::strtol(s, &end, 10);
        if (end != s && *end == '\0' && v > 0) return std::chrono::seconds(v);
    }
    return std::chrono::seconds(120);
}

/// Aborts the process if it is not destroyed (or disarmed) within `watchdog_limit()`.
/// Its thread sleeps on a condition variable and allocates nothing once started, so a test may
/// fork while it runs (the child does not have it: a child arms `alarm(child_alarm_seconds())`).
class watchdog {
  public:
    explicit watchdog(std::string what) : what_(std::move(what)), limit_(watchdog_limit()) {
        const testing::TestInfo* t = testing::UnitTest::GetInstance()->current_test_info();
        if (t != nullptr) test_ = std::string(t->test_suite_name()) + "." + t->name();
        thread_ = std::thread([this] { guard(); });
    }
    ~watchdog() { disarm(); }
    watchdog(const watchdog&) = delete;
    watchdog& operator=(const watchdog&) = delete;

    /// The body finished: stop watching.
    void disarm() {
        {
            std::lock_guard lock(mutex_);
            done_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable()) thread_.join();
    }

  private:
    void guard() {
        std::unique_lock lock(mutex_);
        if (cv_.wait_for(lock, limit_, [this] { return done_; })) return;
        std::fprintf(stderr,
                     "\nwatchdog: %s did not finish within %lld s: %s (a hang; the limit is "
                     "BPOOL_TEST_WATCHDOG_S, default 120)\n",
                     test_.c_str(), static_cast<long long>(limit_.count()), what_.c_str());
        std::fflush(stderr);
        std::abort();
    }

    std::string what_;
    std::string test_ = "the test";
    std::chrono::seconds limit_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread thread_;
};

/// For `alarm()` in a forked child: half the watchdog limit, so that the parent sees the child
/// die of it (and reports which child) before its own watchdog fires.
inline unsigned child_alarm_seconds() {
    return static_cast<unsigned>(std::max<long long>(1, watchdog_limit().count() / 2));
}

}  // namespace bpool::test
