// A program linked with the installed bpool::new_delete: its operator new is the process-wide pool.
#include <memory>
#include <string>

#include <bpool/global.hpp>

int main() {
    auto s = std::make_unique<std::string>(500, 'x');
    if (!bpool::global_pool().owns(s.get()) || !bpool::global_pool().owns(s->data())) return 1;
    return bpool::global_pool().stats().allocations > 0 ? 0 : 2;
}
