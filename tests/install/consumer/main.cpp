// A project that found bpool with find_package(bpool CONFIG REQUIRED), and links bpool::mimalloc,
// bpool::boost and bpool::asio when the installed package has them (CMakeLists.txt defines
// CONSUMER_HAS_*).
#include <memory_resource>
#include <utility>  // before Asio: Boost 1.74's headers need it
#include <vector>

#include <bpool/bpool.hpp>

#if CONSUMER_HAS_MIMALLOC
#include <bpool/adapters/mimalloc.hpp>
#endif
#if CONSUMER_HAS_BOOST
#include <bpool/adapters/boost.hpp>

#include <boost/container/pmr/vector.hpp>
#endif

#if CONSUMER_HAS_ASIO
#include <bpool/adapters/asio.hpp>

#include <boost/asio/use_future.hpp>
#endif

#include <cstring>

#include <bpool/version.hpp>  // also in bpool.hpp; included alone here to show it stands alone

static_assert(BPOOL_VERSION ==
              BPOOL_VERSION_MAJOR * 10000 + BPOOL_VERSION_MINOR * 100 + BPOOL_VERSION_PATCH);

int main() {
    // The generated version header agrees with the library the program links, and with the
    // version find_package or pkg-config reported (CONSUMER_VERSION).
    const bpool::version_info linked = bpool::version();
    if (linked != bpool::header_version || std::strcmp(linked.text, BPOOL_VERSION_STRING) != 0)
        return 10;
#ifdef CONSUMER_VERSION
    if (std::strcmp(BPOOL_VERSION_STRING, CONSUMER_VERSION) != 0) return 11;
#endif
    bpool::pool_resource pool(bpool::pool_options{.capacity = 1 << 20});
    {
        std::pmr::vector<int> v(&pool);
        for (int i = 0; i < 1000; ++i)
            v.push_back(i);
        if (v[999] != 999 || pool.live_bytes() == 0) return 1;
    }
    if (pool.live_bytes() != 0) return 2;
#if CONSUMER_HAS_MIMALLOC
    {
        // A pool over mimalloc.
        bpool::pool_resource over_mimalloc(bpool::pool_options{},
                                           &bpool::mimalloc_resource::instance());
        std::pmr::vector<int> v(1000, 7, &over_mimalloc);
        if (v[999] != 7 || over_mimalloc.live_bytes() == 0) return 3;
    }
#endif
#if CONSUMER_HAS_BOOST
    {
        // A Boost.Container pmr container drawing from the pool.
        bpool::boost_resource boost_res(pool);
        boost::container::pmr::vector<int> v(&boost_res);
        for (int i = 0; i < 1000; ++i)
            v.push_back(i);
        if (v[999] != 999 || pool.live_bytes() == 0) return 4;
    }
    if (pool.live_bytes() != 0) return 5;
#endif
#if CONSUMER_HAS_ASIO
    {
        // A buffer through Boost.Asio's completion tokens.
        bpool::buffer_pool buffers(1 << 20);
        bpool::buffer b = bpool::asio::async_get(buffers, boost::asio::use_future).get();
        if (b.capacity() == 0 || buffers.live() != 1) return 6;
    }
#endif
    return 0;
}
