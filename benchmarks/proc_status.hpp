// proc_status: this process's resident memory, from /proc/self/status.
#pragma once

#include <cstddef>
#include <fstream>
#include <string>

namespace bench {

/// Returns the value of `field` ("VmRSS", "VmHWM"...) of /proc/self/status in bytes, or 0 where
/// there is no such file (not Linux) or field.
inline std::size_t proc_status_bytes(const std::string& field) {
    std::ifstream status("/proc/self/status");
    std::string key;
    std::size_t kib = 0;
    std::string unit;
    while (status >> key) {
        if (key == field + ":") {
            status >> kib >> unit;
            return kib * 1024;
        }
        status.ignore(1 << 12, '\n');
    }
    return 0;
}

}  // namespace bench
