// Layer 8: the process's pools (pools.cpp): ids for the TLS slot tables, and the
// lists the fork handlers walk: every live pool, and the other objects with locks of their own
// that a fork must not find held (fork_client: a buffer_pool's live-buffer cap).
#pragma once

#include <cstdint>

namespace bpool::detail {

class pool_core;

/// Takes an id (a pool's index into the TLS slot tables, recycled) for a new pool; registers the
/// fork handlers on first use. Throws std::bad_alloc. (pools.cpp)
std::uint32_t acquire_pool_id();
/// Gives a destroyed pool's id back.
void release_pool_id(std::uint32_t id) noexcept;
/// Adds a pool to, or removes it from, the list of pools the fork handlers walk.
void list_pool(pool_core* p) noexcept;
void unlist_pool(pool_core* p) noexcept;

/// An object whose locks the fork handlers take after every pool's (none of its locks is held
/// while a pool lock is taken, or the other way round). Listed while it lives.
class fork_client {
  public:
    /// Takes the object's locks (pthread_atfork prepare).
    virtual void fork_prepare() noexcept = 0;
    /// Releases them, in the parent.
    virtual void fork_parent() noexcept = 0;
    /// Releases them and forgets the threads the child does not have.
    virtual void fork_child() noexcept = 0;

    /// The list of clients (guarded by the pools' mutex in pools.cpp).
    fork_client* older_ = nullptr;
    fork_client* newer_ = nullptr;

  protected:
    ~fork_client() = default;
};

/// Adds a client to, or removes it from, the list the fork handlers walk (registering the
/// handlers on first use: throws std::bad_alloc if that fails).
void list_fork_client(fork_client* c);
void unlist_fork_client(fork_client* c) noexcept;

}  // namespace bpool::detail
