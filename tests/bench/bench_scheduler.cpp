// The retry schedule at the scale of a long outage: N messages (default 1,000,000), one
// destination holding a fifth of them (the site that is down), the rest spread over
// 2,000 others. Times scheduling them all (what a restart does), one probe's take_one
// on the big destination, and pull_destination of it (what a record change or a
// `route set` does at the moment of failover; it runs on the io thread, so intake waits
// that long).
//
//   bench_scheduler [--messages N] [--runs R]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "queue/queue_id.h"
#include "queue/scheduler.h"

namespace {

using namespace edgerelay::queue;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

}  // namespace

int main(int argc, char** argv) {
    std::size_t messages = 1000000;
    int runs = 3;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--messages" && i + 1 < argc) messages = std::strtoul(argv[++i], nullptr, 10);
        else if (a == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
        else {
            std::fprintf(stderr, "usage: bench_scheduler [--messages N] [--runs R]\n");
            return 2;
        }
    }
    const std::string big = "dallas.example";
    std::vector<std::string> ids;
    ids.reserve(messages);
    for (std::size_t i = 0; i < messages; ++i) ids.push_back(new_queue_id());
    const UnixMicros later = now_micros() + 3600LL * 1000000;
    for (int run = 0; run < runs; ++run) {
        Scheduler scheduler;
        auto t = Clock::now();
        for (std::size_t i = 0; i < messages; ++i) {
            std::vector<std::string> destinations{i % 5 == 0 ? big : "customer" + std::to_string(i % 2000) + ".example"};
            scheduler.schedule(ids[i], later + static_cast<UnixMicros>(i), std::move(destinations));
        }
        const double schedule_ms = ms_since(t);
        t = Clock::now();
        const auto probe = scheduler.take_one(big);
        const double take_ms = ms_since(t);
        t = Clock::now();
        const auto pulled = scheduler.pull_destination(big);
        const double pull_ms = ms_since(t);
        std::printf("run %d: schedule %zu: %.0f ms; take_one: %.3f ms; pull_destination (%zu ids): %.0f ms; %zu left\n",
                    run + 1, messages, schedule_ms, take_ms, pulled.size() + (probe ? 1 : 0), pull_ms,
                    scheduler.size());
    }
    return 0;
}
