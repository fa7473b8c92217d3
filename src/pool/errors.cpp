#include <cstdio>
#include <string>

#include <bpool/errors.hpp>

namespace bpool {

namespace {

class category final : public std::error_category {
  public:
    [[nodiscard]] const char* name() const noexcept override { return "bpool"; }
    [[nodiscard]] std::string message(int code) const override {
        switch (static_cast<errc>(code)) {
            case errc::capacity_exceeded:
                return "pool capacity exceeded";
            case errc::timed_out:
                return "timed out waiting for pool capacity";
            case errc::too_large:
                return "request too large";
            case errc::out_of_memory:
                return "upstream resource out of memory";
        }
        return "unknown bpool error";
    }
    [[nodiscard]] std::error_condition default_error_condition(int code) const noexcept override {
        switch (static_cast<errc>(code)) {
            case errc::timed_out:
                return std::errc::timed_out;
            case errc::too_large:
                return std::errc::value_too_large;
            case errc::capacity_exceeded:
            case errc::out_of_memory:
                return std::errc::not_enough_memory;
        }
        return {code, *this};
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const category instance;
    return instance;
}

capacity_exceeded::capacity_exceeded(std::size_t requested, std::chrono::nanoseconds waited,
                                     std::size_t capacity, bool timed_out,
                                     const char* message) noexcept
    : requested_(requested), waited_(waited), capacity_(capacity), timed_out_(timed_out) {
    if (message == nullptr) {
        build_message();
    } else {
        std::snprintf(what_, sizeof what_, "%s", message);
    }
}

capacity_exceeded::capacity_exceeded(std::size_t requested, std::chrono::nanoseconds waited,
                                     std::size_t capacity, bool timed_out) noexcept
    : requested_(requested), waited_(waited), capacity_(capacity), timed_out_(timed_out) {
    build_message();
}

void capacity_exceeded::build_message() noexcept {
    const std::size_t requested = requested_, capacity = capacity_;
    const double ms = static_cast<double>(waited_.count()) / 1e6;
    if (capacity == 0) {
        std::snprintf(what_, sizeof what_,
                      "bpool: capacity exceeded: %zu bytes requested, waited %.3f ms, "
                      "live-block cap reached",
                      requested, ms);
    } else {
        std::snprintf(what_, sizeof what_,
                      "bpool: capacity exceeded: %zu bytes requested, waited %.3f ms, capacity "
                      "%zu bytes",
                      requested, ms, capacity);
    }
}

}  // namespace bpool
