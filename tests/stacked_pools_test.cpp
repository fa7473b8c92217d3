// Stacked pools: a pool A over a capped pool B whose cap is reached, through A, by one
// thread's blocks. Another thread's request of A needs a new chunk, so A's refill waits in B. That
// wait must not hold up the rest of A: the first thread's frees of A's blocks (which are what
// makes room in B) and A.trim() from any thread must run while the refill waits, and so serve it.
//
// Nothing here depends on the machine's speed: B and A give up waiting only after 60 s, the
// assertions are orderings (what the waiting request's state was when the frees or the trim
// returned, B's waiters seen through stats()), and a watchdog turns a hang into a failure.
#include <cstddef>
#include <vector>

#include <bpool/pool_resource.hpp>

#include <gtest/gtest.h>

#include "support/stacked.hpp"
#include "support/watchdog.hpp"

namespace bpool {
namespace {

using test::background_allocation;
using test::big_block;
using test::describe;
using state = background_allocation::state;

// B full of A's big blocks, which this thread holds.
struct full_stack {
    pool_resource below{test::capped_below()};
    pool_resource above{test::patient_above(), &below};
    std::vector<void*> held = test::fill_until_refused(above, big_block);

    void free_held() {
        for (void* p : held)
            above.deallocate(p, big_block);
        held.clear();
    }
    ~full_stack() { free_held(); }
};

TEST(StackedPools, FreesOfTheUpperPoolServeItsRefillWaitingBelow) {
    test::watchdog dog(
        "frees of pool A (and A.trim()) while A's refill waits in its capped upstream B");
    full_stack s;
    ASSERT_GE(s.held.size(), 2u);
    ASSERT_GT(s.below.stats().live_bytes + big_block, s.below.capacity()) << "B is full";

    background_allocation refill(s.above, big_block);  // needs a new chunk of A: waits in B
    ASSERT_TRUE(test::wait_for_waiter(s.below, refill))
        << "the request did not wait in B: " << refill.error();

    // The frees give B room (A keeps less than a block idle). They must not wait for the refill:
    // when they return, it still waits (and the room is its) or has been served; it must not have
    // given up first. B counts a timeout before the refill leaves its wait, so a free or a trim
    // that waited for the refill to give up sees it there (the refill's own state may lag).
    s.free_held();
    const state after_frees = refill.now();
    EXPECT_EQ(s.below.stats().timeouts, 0u)
        << "the frees of A's blocks returned only after A's refill waiting in B gave up: they "
           "waited for it (A's class lock, or its operation, held across the refill's upstream "
           "call)";
    (void)s.above.trim();  // whatever A kept idle goes back to B now
    const state after_trim = refill.now();
    EXPECT_EQ(s.below.stats().timeouts, 0u)
        << "A.trim() returned only after A's refill waiting in B gave up";

    refill.join();
    EXPECT_EQ(refill.now(), state::granted)
        << "the refill was not served by the room the frees made in B: " << refill.error()
        << " (state after the frees: " << describe(after_frees)
        << ", after the trim: " << describe(after_trim) << ")";
}

TEST(StackedPools, TrimOfTheUpperPoolReturnsWhileItsRefillWaitsBelow) {
    test::watchdog dog(
        "A.trim() from a third thread while A's refill waits in its capped upstream");
    full_stack s;
    ASSERT_GE(s.held.size(), 1u);

    background_allocation refill(s.above, big_block);
    ASSERT_TRUE(test::wait_for_waiter(s.below, refill))
        << "the request did not wait in B: " << refill.error();

    // Nothing of B is freed: the refill cannot be served, and A.trim() must return anyway.
    pool_stats at_return;
    state refill_at_return = state::pending;
    std::thread trimmer([&] {
        (void)s.above.trim();
        at_return = s.below.stats();
        refill_at_return = refill.now();
    });
    trimmer.join();
    EXPECT_EQ(at_return.timeouts, 0u)
        << "A.trim() returned only after A's refill waiting in B gave up: it waited for the "
           "refill's operation to end";
    EXPECT_TRUE(at_return.waiters >= 1 || refill_at_return == state::granted)
        << "when A.trim() returned, nobody waited in B and the refill was "
        << describe(refill_at_return);

    s.free_held();  // now the refill is served
    refill.join();
    EXPECT_EQ(refill.now(), state::granted) << refill.error();
}

}  // namespace
}  // namespace bpool
