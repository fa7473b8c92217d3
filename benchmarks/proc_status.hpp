// proc_status: this process's resident memory, now (/proc/self/status) and at its peak (getrusage).
#pragma once

#include <cstddef>
#include <fstream>
#include <string>
#include <sys/resource.h>

namespace bench {

/// Returns this process's resident memory now (VmRSS of /proc/self/status) in bytes, or 0 where
/// there is no such file (not Linux). getrusage has no current figure: Linux leaves ru_ixrss and
/// ru_idrss at 0, so this one reading stays.
inline std::size_t current_rss_bytes() {
    std::ifstream status("/proc/self/status");
    std::string key;
    std::size_t kib = 0;
    while (status >> key) {
        if (key == "VmRSS:") {
            status >> kib;
            return kib * 1024;
        }
        status.ignore(1 << 12, '\n');
    }
    return 0;
}

/// Returns the peak resident memory of this process in bytes: ru_maxrss, which Linux gives in KiB
/// (the VmHWM of /proc/self/status), or 0 if getrusage fails.
inline std::size_t peak_rss_bytes() {
    rusage usage{};
    if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
    return static_cast<std::size_t>(usage.ru_maxrss) * 1024;
}

}  // namespace bench
