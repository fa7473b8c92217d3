// Layer 9: bpool::buffer. Growth allocates the new block, copies, and only then frees the old one
// and commits, so that every failure leaves the buffer as it was (no partial write), and a write of
// the buffer's own bytes stays valid while they are copied.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <utility>

#include <bpool/buffer.hpp>
#include <bpool/pool_resource.hpp>

#include "base/check.hpp"
#include "base/track.hpp"
#include "buffer/buffer_pool_core.hpp"

namespace bpool {

namespace {

// The first storage of a standalone buffer that grows by writes: small writes should not start a
// chain of 16-, 32-, 64-byte copies.
constexpr std::size_t min_first_capacity = 64;

// Growing an empty buffer has no resource to draw from: a logic error in the caller. The checked
// build stops at the spot; otherwise the caller reports it (error code or std::logic_error).
void on_unbound(const char* operation) noexcept {
    if constexpr (detail::track::checked) {
        detail::fatalf(
            __FILE__, __LINE__,
            "buffer::%s on an empty buffer (moved from, put back or default-constructed):"
            " it belongs to no pool or resource; use a buffer from buffer_pool::get()",
            operation);
    }
}

}  // namespace

buffer::buffer(std::pmr::memory_resource* resource) {
    if (resource == nullptr) throw std::invalid_argument("bpool::buffer: resource is null");
    bind_.resource = resource;
    // pool_resource is final: the cast is a type check, done once rather than at every growth.
    bind_.pool = dynamic_cast<pool_resource*>(resource);
}

buffer::buffer(std::pmr::memory_resource* resource, std::size_t capacity) : buffer(resource) {
    reserve(capacity);
}

buffer::buffer(const binding& b) noexcept : bind_(b) {}

buffer::buffer(buffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0)),
      bind_(std::exchange(other.bind_, {})) {}

buffer& buffer::operator=(buffer&& other) noexcept {
    if (this != &other) {
        free_storage();
        leave_home();
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
        capacity_ = std::exchange(other.capacity_, 0);
        bind_ = std::exchange(other.bind_, {});
    }
    return *this;
}

buffer::~buffer() {
    free_storage();
    leave_home();
}

std::error_code buffer::write(std::span<const std::byte> bytes) {
    if (bytes.empty()) return {};
    if (bind_.resource == nullptr) {
        on_unbound("write");
        return std::make_error_code(std::errc::operation_not_permitted);
    }
    try {
        append(bytes);
    } catch (const capacity_exceeded&) {
        // Refused or timed out alike: the caller learns that the cap stopped the write;
        // append's exception (code(), waited()) tells the two apart.
        return errc::capacity_exceeded;
    } catch (const std::length_error&) {
        return errc::too_large;
    } catch (const std::bad_alloc&) {
        return errc::out_of_memory;
    }
    return {};
}

std::error_code buffer::write(std::string_view text) {
    return write(std::as_bytes(std::span(text)));
}

buffer& buffer::append(std::span<const std::byte> bytes) {
    if (bytes.empty()) return *this;
    const std::size_t need = size_after(bytes.size());
    if (need > capacity_) {
        grow(need, true, bytes, bind_.may_wait);
    } else {
        // memmove: the source may be the buffer's own spare capacity.
        std::memmove(data_ + size_, bytes.data(), bytes.size());
        size_ = need;
    }
    return *this;
}

buffer& buffer::append(std::string_view text) {
    return append(std::as_bytes(std::span(text)));
}

void buffer::reserve(std::size_t n) {
    if (n > capacity_) grow(n, false, {}, bind_.may_wait);
}

void buffer::resize(std::size_t n) {
    if (n > capacity_) grow(n, true, {}, bind_.may_wait);
    if (n > size_) std::memset(data_ + size_, 0, n - size_);
    size_ = n;
}

std::span<std::byte> buffer::prepare(std::size_t n) {
    const std::size_t need = size_after(n);
    if (need > capacity_) grow(need, true, {}, bind_.may_wait);
    return {data_ + size_, capacity_ - size_};
}

void buffer::commit(std::size_t n) noexcept {
    const std::size_t room = capacity_ - size_;
    if constexpr (detail::track::checked) {
        if (n > room) {
            detail::fatalf(__FILE__, __LINE__,
                           "buffer::commit(%zu) with only %zu bytes of room past size(): more was "
                           "committed than prepare() gave",
                           n, room);
        }
    }
    size_ += n < room ? n : room;
}

void buffer::release() noexcept {
    free_storage();
}

// Makes room for `need` bytes (need > capacity_) and appends `tail`. The geometric size is only
// preferred: allocate_at_least tries it without waiting, then (over a pool) a smaller step that
// still fits above `need`, and if none fits under the cap asks for just `need` (which may wait,
// per `may_wait`), so that a write that can succeed is not refused for the slack.
void buffer::grow(std::size_t need, bool geometric, std::span<const std::byte> tail,
                  bool may_wait) {
    check_bound();
    if (need > max_size()) throw std::length_error("bpool::buffer: size would exceed max_size()");
    const std::size_t minimal = round_up(need);
    std::size_t want = minimal;
    if (geometric) {
        const std::size_t target = capacity_ == 0                ? first_capacity()
                                   : capacity_ <= max_size() / 2 ? capacity_ * 2
                                                                 : max_size();
        if (target > need) want = std::max(minimal, round_up(target));
    }
    const allocation_result got = take(minimal, want, may_wait);
    auto* p = static_cast<std::byte*>(got.ptr);
    // Nothing below throws: the buffer changes only now.
    if (size_ > 0) std::memcpy(p, data_, size_);
    if (!tail.empty()) std::memcpy(p + size_, tail.data(), tail.size());
    const std::size_t new_size = size_ + tail.size();
    free_storage();
    data_ = p;
    capacity_ = got.bytes;
    size_ = new_size;
}

// The storage a request of `n` bytes really gets: over a pool, its block (class) size, so that the
// capacity is all usable and growth steps through the classes.
std::size_t buffer::round_up(std::size_t n) const {
    if (bind_.pool == nullptr) return n;
    const std::size_t block = bind_.pool->block_size(n, alignment);
    if (block == 0) throw std::length_error("bpool::buffer: size overflows the pool's rounding");
    return block;
}

std::size_t buffer::first_capacity() const noexcept {
    if (bind_.home != nullptr) return bind_.home->options().default_capacity;
    return min_first_capacity;
}

allocation_result buffer::take(std::size_t minimal, std::size_t want, bool may_wait) const {
    if (bind_.pool != nullptr && !may_wait) {
        // Refused at once at the cap (capacity_exceeded), yet an upstream failure still reads as
        // std::bad_alloc: a no-throw form would fold both into nullptr.
        const exhaustion_scope no_wait(exhaustion::fail);
        return bind_.pool->allocate_at_least(minimal, want, alignment);
    }
    return bpool::allocate_at_least(*bind_.resource, minimal, want, alignment);
}

std::size_t buffer::size_after(std::size_t n) const {
    if (n > max_size() - size_)
        throw std::length_error("bpool::buffer: size would exceed max_size()");
    return size_ + n;
}

bool buffer::try_take_storage(std::size_t n) noexcept {
    if (n > max_size()) return false;
    const std::size_t block = bind_.pool->block_size(n, alignment);
    void* p = block == 0 ? nullptr : bind_.pool->try_allocate(block, alignment);
    if (p == nullptr) return false;
    adopt_storage(p, block);
    return true;
}

void buffer::check_bound() const {
    if (bind_.resource != nullptr) return;
    on_unbound("grow");
    throw std::logic_error(
        "bpool::buffer: an empty (moved-from or default-constructed) buffer cannot grow");
}

void buffer::free_storage() noexcept {
    if (data_ != nullptr) bind_.resource->deallocate(data_, capacity_, alignment);
    data_ = nullptr;
    size_ = 0;
    capacity_ = 0;
}

void buffer::leave_home() noexcept {
    if (bind_.home != nullptr) bind_.home->check_in(bind_.slot);
    bind_ = {};
}

}  // namespace bpool
