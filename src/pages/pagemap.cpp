#include "pages/pagemap.hpp"

#include <new>

#include "meta/meta.hpp"

namespace bpool::detail {

void pagemap::init() {
    BPOOL_ASSERT(root_ == nullptr);
    // Zero-filled: every root entry reads as the default leaf.
    root_ = static_cast<std::atomic<std::uintptr_t>*>(meta::allocate(table_bytes));
    if (root_ == nullptr) throw std::bad_alloc();
}

void pagemap::destroy() noexcept {
    if (root_ == nullptr) return;
    for (leaf_node* n = reserved_.exchange(nullptr); n != nullptr;) {
        leaf_node* next = n->next;
        meta::deallocate(n->leaf, table_bytes);
        meta::deallocate(n, sizeof(leaf_node));
        n = next;
    }
    meta::deallocate(root_, table_bytes);
    root_ = nullptr;
    leaves_.store(0, std::memory_order_relaxed);
}

bool pagemap::reserve(const void* p, std::size_t bytes) noexcept {
    const auto addr = reinterpret_cast<std::uintptr_t>(p);
    if (bytes == 0) return true;
    if ((addr >> address_bits) != 0 || ((addr + bytes - 1) >> address_bits) != 0) return false;
    const std::uintptr_t first = addr >> (page_shift + leaf_bits);
    const std::uintptr_t last = (addr + bytes - 1) >> (page_shift + leaf_bits);
    for (std::uintptr_t i = first; i <= last; ++i) {
        if (root_[i].load(std::memory_order_acquire) != 0) continue;
        void* leaf = meta::allocate(table_bytes);
        if (leaf == nullptr) return false;
        auto* node = static_cast<leaf_node*>(meta::allocate(sizeof(leaf_node)));
        if (node == nullptr) {
            meta::deallocate(leaf, table_bytes);
            return false;
        }
        std::uintptr_t expected = 0;
        const std::uintptr_t encoded =
            reinterpret_cast<std::uintptr_t>(leaf) ^ default_leaf_address();
        // Release: a thread that reads the root entry sees the leaf's (zero) contents.
        if (!root_[i].compare_exchange_strong(expected, encoded, std::memory_order_acq_rel)) {
            meta::deallocate(leaf, table_bytes);  // another thread mapped this leaf first
            meta::deallocate(node, sizeof(leaf_node));
            continue;
        }
        node->leaf = leaf;
        node->next = reserved_.load(std::memory_order_relaxed);
        while (!reserved_.compare_exchange_weak(node->next, node, std::memory_order_release,
                                                std::memory_order_relaxed)) {
        }
        leaves_.fetch_add(1, std::memory_order_relaxed);
    }
    return true;
}

std::atomic<std::uint64_t>& pagemap::slot(const void* p) const noexcept {
    const auto addr = reinterpret_cast<std::uintptr_t>(p);
    const std::uintptr_t page = addr >> page_shift;
    const std::uintptr_t encoded = root_[page >> leaf_bits].load(std::memory_order_acquire);
    BPOOL_ASSERT((addr >> address_bits) == 0 && encoded != 0);
    auto* leaf = reinterpret_cast<std::atomic<std::uint64_t>*>(encoded ^ default_leaf_address());
    return leaf[page & (leaf_entries - 1)];
}

}  // namespace bpool::detail
