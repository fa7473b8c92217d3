// Layer 0: the doubly linked intrusive lists (base/intrusive_list.hpp), with a node in two lists.
#include "base/intrusive_list.hpp"

#include <vector>

#include <gtest/gtest.h>

namespace bpool::detail {
namespace {

struct node {
    int id = 0;
    node* prev = nullptr;
    node* next = nullptr;
    node* all_prev = nullptr;
    node* all_next = nullptr;
};

// The ids from the front, checking every back link on the way.
template <auto Prev, auto Next>
std::vector<int> walk(node* head) {
    std::vector<int> ids;
    node* before = nullptr;
    for (node* n = head; n != nullptr; before = n, n = n->*Next) {
        EXPECT_EQ(n->*Prev, before) << "node " << n->id;
        ids.push_back(n->id);
    }
    return ids;
}

TEST(IntrusiveList, PushFrontAndUnlinkAnywhere) {
    node n[4] = {{.id = 0}, {.id = 1}, {.id = 2}, {.id = 3}};
    node* head = nullptr;
    for (node& x : n)
        list_push_front<&node::prev, &node::next>(head, &x);
    EXPECT_EQ((walk<&node::prev, &node::next>(head)), (std::vector<int>{3, 2, 1, 0}));
    list_unlink<&node::prev, &node::next>(head, &n[2]);  // the middle
    EXPECT_EQ((walk<&node::prev, &node::next>(head)), (std::vector<int>{3, 1, 0}));
    EXPECT_EQ(n[2].prev, nullptr);
    EXPECT_EQ(n[2].next, nullptr);
    list_unlink<&node::prev, &node::next>(head, &n[3]);  // the head
    EXPECT_EQ((walk<&node::prev, &node::next>(head)), (std::vector<int>{1, 0}));
    list_unlink<&node::prev, &node::next>(head, &n[0]);  // the tail
    EXPECT_EQ((walk<&node::prev, &node::next>(head)), (std::vector<int>{1}));
    list_unlink<&node::prev, &node::next>(head, &n[1]);  // the last one
    EXPECT_EQ(head, nullptr);
}

TEST(IntrusiveList, ANodeInTwoListsKeepsThemApart) {
    node n[3] = {{.id = 0}, {.id = 1}, {.id = 2}};
    node* some = nullptr;
    node* all = nullptr;
    for (node& x : n)
        list_push_front<&node::all_prev, &node::all_next>(all, &x);
    list_push_front<&node::prev, &node::next>(some, &n[0]);
    list_push_front<&node::prev, &node::next>(some, &n[2]);
    list_unlink<&node::prev, &node::next>(some, &n[2]);
    EXPECT_EQ((walk<&node::prev, &node::next>(some)), (std::vector<int>{0}));
    EXPECT_EQ((walk<&node::all_prev, &node::all_next>(all)), (std::vector<int>{2, 1, 0}));
}

}  // namespace
}  // namespace bpool::detail
