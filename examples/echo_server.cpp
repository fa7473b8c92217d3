// An echo server on one io thread whose buffers come from a capped buffer_pool: every connection
// asks for its buffer with bpool::asio::async_get, so a connection that arrives while the pool is
// at its cap waits (in arrival order) without blocking the io thread, which goes on serving the
// connections that hold buffers; each one that finishes gives its buffer back and the next waiting
// connection gets it. Thousands of loopback clients connect at once: every one must get its line
// echoed back, the live buffers never pass the cap, and the pool must have been at its cap (some
// connections waited). At the end: the pool's statistics.
//
//   echo_server [clients] [max live buffers]     (defaults: 3000 and 16)
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <sys/resource.h>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <bpool/adapters/asio.hpp>
#include <bpool/bpool.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

namespace {

namespace net = boost::asio;
using boost::system::error_code;
using net::ip::tcp;

constexpr std::size_t buffer_bytes = 4 << 10;
constexpr std::size_t max_line = 1 << 10;

struct tally {
    std::atomic<int> echoed{0};         // clients that got their line back
    std::atomic<int> failed{0};         // clients that did not
    std::atomic<int> server_errors{0};  // connections the server could not serve
    std::atomic<std::size_t> peak_live{0};
};

// One connection: a buffer from the pool (waiting for it if need be), a line read into it, the
// line written back. The buffer goes back to the pool with the session.
class session : public std::enable_shared_from_this<session> {
  public:
    session(tcp::socket s, bpool::buffer_pool& pool, tally& t)
        : socket_(std::move(s)), pool_(pool), tally_(t) {}

    void start() {
        bpool::asio::async_get(pool_, socket_.get_executor(),
                               [self = shared_from_this()](error_code ec, bpool::buffer b) {
                                   self->got_buffer(ec, std::move(b));
                               });
    }

  private:
    void got_buffer(error_code ec, bpool::buffer b) {
        if (ec) {
            ++tally_.server_errors;
            return;
        }
        buffer_ = std::move(b);
        const std::size_t live = pool_.live();
        std::size_t seen = tally_.peak_live.load();
        while (live > seen && !tally_.peak_live.compare_exchange_weak(seen, live)) {
        }
        net::async_read_until(
            socket_, bpool::asio::dynamic_buffer(buffer_, max_line), '\n',
            [self = shared_from_this()](error_code e, std::size_t) { self->echo(e); });
    }

    void echo(error_code ec) {
        if (ec) {
            ++tally_.server_errors;
            return;
        }
        net::async_write(socket_, bpool::asio::const_buffer(buffer_),
                         [self = shared_from_this()](error_code e, std::size_t) {
                             if (e) ++self->tally_.server_errors;
                         });
    }

    tcp::socket socket_;
    bpool::buffer_pool& pool_;
    tally& tally_;
    bpool::buffer buffer_;
};

void accept(tcp::acceptor& acceptor, bpool::buffer_pool& pool, tally& t) {
    acceptor.async_accept([&](error_code ec, tcp::socket s) {
        if (ec) return;  // closed: the run is over
        std::make_shared<session>(std::move(s), pool, t)->start();
        accept(acceptor, pool, t);
    });
}

// A client: connect, send its line, read it back, compare.
class client : public std::enable_shared_from_this<client> {
  public:
    client(net::io_context& io, tcp::endpoint to, int id, tally& t)
        : socket_(io),
          to_(to),
          line_("hello from client " + std::to_string(id) + "\n"),
          tally_(t) {}

    void start() {
        socket_.async_connect(to_, [self = shared_from_this()](error_code ec) {
            if (ec) return self->fail();
            net::async_write(self->socket_, net::buffer(self->line_),
                             [self](error_code e, std::size_t) {
                                 if (e) return self->fail();
                                 self->read();
                             });
        });
    }

  private:
    void read() {
        net::async_read_until(socket_, net::dynamic_buffer(reply_), '\n',
                              [self = shared_from_this()](error_code ec, std::size_t) {
                                  if (ec || self->reply_ != self->line_) return self->fail();
                                  ++self->tally_.echoed;
                              });
    }
    void fail() { ++tally_.failed; }

    tcp::socket socket_;
    tcp::endpoint to_;
    std::string line_;
    std::string reply_;
    tally& tally_;
};

// Each client holds two descriptors (its socket and the server's): raise the soft limit to the
// hard one, and keep the clients in flight under it.
int clients_in_flight(int wanted) {
    rlimit r{};
    getrlimit(RLIMIT_NOFILE, &r);
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
    getrlimit(RLIMIT_NOFILE, &r);
    const auto room = static_cast<long long>(r.rlim_cur) - 64;
    return static_cast<int>(std::clamp<long long>(room / 2, 1, wanted));
}

}  // namespace

int main(int argc, char** argv) {
    const int clients = argc > 1 ? std::atoi(argv[1]) : 3000;
    const std::size_t max_live = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 16;
    if (clients <= 0 || max_live == 0) {
        std::cerr << "usage: echo_server [clients > 0] [max live buffers > 0]\n";
        return 2;
    }
    // The server prefers to wait: a connection waits for a buffer as long as it takes (the
    // clients are all on this machine; a real server would bound it and answer "busy").
    bpool::buffer_pool_options o;
    o.max_live = max_live;
    o.default_capacity = buffer_bytes;
    o.backoff.max_elapsed = std::chrono::hours(1);
    bpool::buffer_pool pool(max_live * buffer_bytes, o);
    tally t;

    net::io_context server_io(1);
    tcp::acceptor acceptor(server_io, tcp::endpoint(net::ip::address_v4::loopback(), 0));
    acceptor.listen(net::socket_base::max_listen_connections);
    accept(acceptor, pool, t);
    std::thread server([&] { server_io.run(); });  // the one io thread

    // The clients, on their own io thread, at most `in_flight` connected at once.
    const int in_flight = clients_in_flight(clients);
    const tcp::endpoint to = acceptor.local_endpoint();
    for (int started = 0; started < clients;) {
        net::io_context client_io;
        const int batch = std::min(in_flight, clients - started);
        for (int i = 0; i < batch; ++i)
            std::make_shared<client>(client_io, to, started + i, t)->start();
        client_io.run();
        started += batch;
    }

    net::post(server_io, [&] { acceptor.close(); });
    // Every session ends once its write completes; then the server's run() returns.
    server.join();

    const bpool::pool_stats s = pool.resource().stats();
    std::cout << "echo_server: " << t.echoed << " of " << clients << " clients echoed, " << t.failed
              << " failed, " << t.server_errors << " server errors; live buffers "
              << "peaked at " << t.peak_live << " (cap " << max_live << ")\n"
              << s;
    const bool ok = t.echoed == clients && t.failed == 0 && t.server_errors == 0 &&
                    t.peak_live <= max_live && pool.live() == 0 &&
                    s.peak_live_bytes <= max_live * buffer_bytes;
    if (!ok) std::cout << "echo_server: FAILED\n";
    return ok ? 0 : 1;
}
