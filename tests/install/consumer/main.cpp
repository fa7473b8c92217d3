// A project that found bpool with find_package(bpool CONFIG REQUIRED).
#include <memory_resource>
#include <vector>

#include <bpool/bpool.hpp>

int main() {
    bpool::pool_resource pool(bpool::pool_options{.capacity = 1 << 20});
    {
        std::pmr::vector<int> v(&pool);
        for (int i = 0; i < 1000; ++i)
            v.push_back(i);
        if (v[999] != 999 || pool.live_bytes() == 0) return 1;
    }
    return pool.live_bytes() == 0 ? 0 : 2;
}
