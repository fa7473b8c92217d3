// Layer 0: doubly linked intrusive lists. A node carries its own links, named by member pointers,
// so one node may sit in several lists (a chunk in its set's list of chunks with blocks to give
// and in the list of all its set's chunks). No allocation, no locking: the owner of the list
// guards it.
#pragma once

namespace bpool::detail {

/// Effects: links `n` at the front of the list that starts at `head`, through the members
/// `Prev` and `Next` of its type (e.g. `&chunk::prev`, `&chunk::next`).
template <auto Prev, auto Next, class T>
void list_push_front(T*& head, T* n) noexcept {
    n->*Prev = nullptr;
    n->*Next = head;
    if (head != nullptr) head->*Prev = n;
    head = n;
}

/// Effects: unlinks `n`, which is in the list that starts at `head`, and clears its links.
template <auto Prev, auto Next, class T>
void list_unlink(T*& head, T* n) noexcept {
    if (n->*Prev != nullptr)
        (n->*Prev)->*Next = n->*Next;
    else
        head = n->*Next;
    if (n->*Next != nullptr) (n->*Next)->*Prev = n->*Prev;
    n->*Prev = n->*Next = nullptr;
}

}  // namespace bpool::detail
