// bpool_instructions (and its _mimalloc, _checked flavours): the loops whose instructions
// benchmarks/instructions.py counts with callgrind, one subject and one loop per process.
//
//   bpool_instructions --subject=NAME --loop=LOOP --steps=N
//   bpool_instructions --list     prints the subjects this binary offers
// LOOP is fixed_64 (allocate 64 B, touch it, free it), churn_1k or churn_64k (one step of the churn
// workloads of bench_churn.cpp: free a random block of the 1024 live, allocate one of a random size
// in its place, from the same plans). NAME `none` runs the same loop without calling any allocator
// (the block is a static buffer): its instructions are the loop's own, which instructions.py
// subtracts. Everything but the loop (the plan, the initial live set, the subject) is the same
// whatever N is, so the difference between two runs with different N is N's steps alone.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory_resource>
#include <string>
#include <vector>

#include "churn.hpp"
#include "malloc_identity.hpp"
#include "subjects.hpp"

namespace {

/// What the loops without an allocator hand out: big enough for the largest churn block.
alignas(64) unsigned char scratch[64 * 1024];

/// Effects: none, but the compiler must assume `p`'s memory read and written: the loop without an
/// allocator keeps the shape of the loop with one (not folded into one store, or removed).
inline void opaque(void* p) noexcept {
    asm volatile("" : : "r"(p) : "memory");
}

struct block {
    void* p;
    std::size_t size;
};

/// Effects: `steps` allocate + touch + deallocate pairs of 64 B (with `Calls`; else the touch).
template <bool Calls>
[[gnu::noinline]] void fixed_loop(std::pmr::memory_resource& r, std::uint64_t steps) {
    for (std::uint64_t k = 0; k < steps; ++k) {
        void* p = Calls ? r.allocate(64) : static_cast<void*>(scratch);
        bench::touch(p, 64);
        opaque(p);
        if constexpr (Calls) r.deallocate(p, 64);
    }
}

/// Effects: the initial live set of `plan`, then `steps` churn steps, then frees what is live.
template <bool Calls>
[[gnu::noinline]] void churn_loop(std::pmr::memory_resource& r, const bench::churn_plan& plan,
                                  std::uint64_t steps) {
    std::vector<block> blocks(plan.initial.size());
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        blocks[i] = {Calls ? r.allocate(plan.initial[i]) : scratch, plan.initial[i]};
        bench::touch(blocks[i].p, blocks[i].size);
    }
    for (std::uint64_t k = 0; k < steps; ++k) {
        const std::size_t i = k & (bench::churn_plan::steps - 1);
        block& b = blocks[plan.slots[i]];
        if constexpr (Calls) r.deallocate(b.p, b.size);
        b.size = plan.sizes[i];
        b.p = Calls ? r.allocate(b.size) : static_cast<void*>(scratch);
        bench::touch(b.p, b.size);
        opaque(b.p);
    }
    if constexpr (Calls)
        for (const block& b : blocks)
            r.deallocate(b.p, b.size);
}

template <bool Calls>
void run(std::pmr::memory_resource& r, const std::string& loop, std::uint64_t steps) {
    if (loop == "fixed_64") {
        fixed_loop<Calls>(r, steps);
    } else {
        // The plans of bench_churn.cpp (same maximum sizes, same seeds).
        const bool small = loop == "churn_1k";
        const bench::churn_plan plan =
            bench::make_churn_plan(small ? 1024 : 64 * 1024, small ? 1 : 2);
        churn_loop<Calls>(r, plan, steps);
    }
}

[[noreturn]] void usage(const char* bad) {
    std::fprintf(stderr,
                 "bad argument %s\nusage: bpool_instructions --subject=NAME "
                 "--loop=fixed_64|churn_1k|churn_64k --steps=N\nsubjects: none",
                 bad);
    for (const bench::subject& s : bench::subjects())
        std::fprintf(stderr, " %s", s.name.c_str());
    std::fputc('\n', stderr);
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    bench::check_expected_malloc();
    std::string name;
    std::string loop;
    std::uint64_t steps = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--list") {
            for (const bench::subject& s : bench::subjects())
                std::printf("%s\n", s.name.c_str());
            return 0;
        }
        if (a.rfind("--subject=", 0) == 0) {
            name = a.substr(10);
        } else if (a.rfind("--loop=", 0) == 0) {
            loop = a.substr(7);
        } else if (a.rfind("--steps=", 0) == 0) {
            steps = std::strtoull(a.c_str() + 8, nullptr, 10);
        } else {
            usage(argv[i]);
        }
    }
    if (loop != "fixed_64" && loop != "churn_1k" && loop != "churn_64k") usage(loop.c_str());
    if (name == "none") {
        run<false>(*std::pmr::null_memory_resource(), loop, steps);
        return 0;
    }
    const bench::subject* s = bench::find_subject(name);
    if (s == nullptr) usage(name.c_str());
    const bench::instance inst = s->make();
    run<true>(*inst.resource, loop, steps);
    return 0;
}
