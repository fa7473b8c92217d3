#include <stdexcept>

#include <bpool/adapters/boost.hpp>

namespace bpool {

boost_resource::boost_resource(pool_resource& pool) noexcept : resource_(&pool) {}

boost_resource::boost_resource(std::pmr::memory_resource* resource) : resource_(resource) {
    if (resource == nullptr) throw std::invalid_argument("bpool::boost_resource: null resource");
}

void* boost_resource::do_allocate(std::size_t bytes, std::size_t alignment) {
    return resource_->allocate(bytes, alignment);
}

void boost_resource::do_deallocate(void* p, std::size_t bytes, std::size_t alignment) {
    resource_->deallocate(p, bytes, alignment);
}

bool boost_resource::do_is_equal(
    const boost::container::pmr::memory_resource& other) const noexcept {
    const auto* o = dynamic_cast<const boost_resource*>(&other);
    return o != nullptr && *o->resource_ == *resource_;
}

}  // namespace bpool
