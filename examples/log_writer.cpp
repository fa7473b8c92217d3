// A log writer: producer threads batch records into buffers from one capped buffer_pool and hand
// full batches to a writer thread, which writes them to a file. The cap bounds the memory of all
// batches together (those being filled and those queued for the writer): when the writer falls
// behind, producers wait in get() for a batch to come back instead of growing without bound.
// Every record is written between a mark() and, if the batch cannot grow at the cap, a rollback(),
// so a batch holds whole records only, and a producer that meets the cap hands its batch on
// before it waits for a new one (it never waits holding memory). At the end: the pool's
// statistics, and a check that every record reached the file.
//
// The cap is a budget (capacity_scope::held): it covers everything the pool holds from upstream,
// the writer's idle batches too, so the process's memory for batches stays under it; `live`
// as the third argument caps the batches in use only, and upstream then holds more.
//
//   log_writer [producers] [records per producer] [held|live]     (defaults: 4, 20000, held)
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <bpool/bpool.hpp>

namespace {

constexpr std::size_t cap = std::size_t{1} << 20;  // all batches together
constexpr std::size_t batch_bytes = 32 << 10;      // a batch goes to the writer at this size

// The batches waiting for the writer; once it is closed and drained, pop() gives an empty buffer.
class batch_queue {
  public:
    void push(bpool::buffer b) {
        {
            std::lock_guard lock(mutex_);
            batches_.push_back(std::move(b));
        }
        ready_.notify_one();
    }
    void close() {
        {
            std::lock_guard lock(mutex_);
            closed_ = true;
        }
        ready_.notify_one();
    }
    // The next batch, or an empty buffer once the queue is closed and drained.
    bpool::buffer pop() {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return !batches_.empty() || closed_; });
        if (batches_.empty()) return {};
        bpool::buffer b = std::move(batches_.front());
        batches_.pop_front();
        return b;
    }

  private:
    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<bpool::buffer> batches_;
    bool closed_ = false;
};

// Writes `count` records into batches from `pool`, handing each full batch to `queue`.
void produce(bpool::buffer_pool& pool, batch_queue& queue, int id, int count) {
    bpool::buffer batch = pool.get();
    char record[128];
    for (int i = 0; i < count;) {
        const int n = std::snprintf(record, sizeof record,
                                    "producer %d record %d: something happened, value=%d\n", id, i,
                                    (id * 7919 + i) % 1000);
        const bpool::buffer::mark_type m = batch.mark();
        // Two writes per record, as a formatter would make them: all or nothing together.
        std::error_code ec = batch.write(std::string_view(record, static_cast<std::size_t>(n) / 2));
        if (!ec)
            ec = batch.write(std::string_view(record + n / 2, static_cast<std::size_t>(n - n / 2)));
        if (!ec) {
            ++i;
            if (batch.size() < batch_bytes) continue;
        } else {
            batch.rollback(m);  // at the cap: the half-written record goes, the batch is whole
        }
        queue.push(std::move(batch));
        batch = pool.get();  // waits at the cap until the writer gives a batch back
    }
    if (!batch.empty()) queue.push(std::move(batch));
}

}  // namespace

int main(int argc, char** argv) {
    const int producers = argc > 1 ? std::atoi(argv[1]) : 4;
    const int records = argc > 2 ? std::atoi(argv[2]) : 20000;
    const bool budget = argc <= 3 || std::string(argv[3]) != "live";
    // write_backoff off: a batch that cannot grow at the cap is refused at once (and handed on);
    // get() waits, for up to 10 s, for a batch to come back.
    bpool::buffer_pool pool(cap, {.backoff = {.max_elapsed = std::chrono::seconds(10)},
                                  .default_capacity = 4 << 10,
                                  .capacity_covers = budget ? bpool::capacity_scope::held
                                                            : bpool::capacity_scope::live});
    std::FILE* out = std::tmpfile();
    if (out == nullptr) return 1;
    batch_queue queue;
    std::size_t written = 0;
    std::thread writer([&] {
        for (bpool::buffer b = queue.pop(); b.resource() != nullptr; b = queue.pop())
            written += std::fwrite(b.data(), 1, b.size(), out);  // b goes back to the pool here
    });
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p)
        threads.emplace_back(produce, std::ref(pool), std::ref(queue), p, records);
    for (std::thread& t : threads)
        t.join();
    queue.close();
    writer.join();

    // Every record reached the file once: count its lines.
    std::rewind(out);
    long lines = 0;
    for (int c = std::fgetc(out); c != EOF; c = std::fgetc(out))
        lines += c == '\n';
    std::fclose(out);
    const bpool::pool_stats s = pool.resource().stats();
    std::cout << s;
    std::printf(
        "%ld records, %zu bytes written; peak live at most %zu, peak held from upstream "
        "%zu, of a %zu-byte %s\n",
        lines, written, s.peak_live_bytes, s.peak_upstream_bytes, s.capacity,
        budget ? "budget (everything held)" : "cap on live bytes");
    const bool within = s.peak_live_bytes <= cap && (!budget || s.peak_upstream_bytes <= cap);
    return lines == static_cast<long>(producers) * records && within ? 0 : 1;
}
