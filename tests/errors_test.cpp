// bpool/errors.hpp: the error category and capacity_exceeded.
#include <string>
#include <system_error>

#include <bpool/errors.hpp>

#include <gtest/gtest.h>

namespace bpool {
namespace {

TEST(Errors, CategoryNamesAndMessages) {
    EXPECT_STREQ(error_category().name(), "bpool");
    for (errc e :
         {errc::capacity_exceeded, errc::timed_out, errc::too_large, errc::out_of_memory}) {
        const std::error_code code = e;  // implicit through is_error_code_enum
        EXPECT_EQ(&code.category(), &error_category());
        EXPECT_FALSE(code.message().empty());
        EXPECT_NE(code.message(), "unknown bpool error");
    }
    EXPECT_EQ(std::error_code(errc::timed_out), std::errc::timed_out);
    EXPECT_EQ(std::error_code(errc::capacity_exceeded), std::errc::not_enough_memory);
    EXPECT_FALSE(std::error_code{});
}

TEST(Errors, CapacityExceededSaysSizeWaitAndCapacity) {
    const capacity_exceeded e(4096, std::chrono::milliseconds(250), 1 << 20, true);
    const std::string what = e.what();
    EXPECT_NE(what.find("4096"), std::string::npos) << what;
    EXPECT_NE(what.find("250.000 ms"), std::string::npos) << what;
    EXPECT_NE(what.find("1048576"), std::string::npos) << what;
    EXPECT_EQ(e.requested(), 4096u);
    EXPECT_EQ(e.waited(), std::chrono::milliseconds(250));
    EXPECT_EQ(e.capacity(), 1u << 20);
    EXPECT_EQ(e.code(), errc::timed_out);
    EXPECT_EQ(capacity_exceeded(1, {}, 2).code(), errc::capacity_exceeded);
    const std::bad_alloc& base = e;  // catchable as bad_alloc
    EXPECT_STREQ(base.what(), e.what());
    const capacity_exceeded copy = e;  // nothrow copy keeps the message
    EXPECT_STREQ(copy.what(), e.what());
}

}  // namespace
}  // namespace bpool
