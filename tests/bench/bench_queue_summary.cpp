// `queue summary` at scale (SPEC §5: under 2 s with 1,000,000 queued messages): writes N
// envelopes shaped like a backed-up queue into a temporary spool through Spool::write in
// large transactions, reopens it read-only as edgerelayctl does and times
// summarize_queue, and optionally the whole `edgerelayctl queue summary` process.
//
//   bench_queue_summary [--messages N] [--runs R] [--dir D] [--keep] [--ctl PATH]
//   bench_queue_summary --spool PATH [--runs R] [--ctl PATH]   times a spool kept before
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "queue/queue_summary.h"

namespace {

using namespace edgerelay::queue;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t map_size = 32ull << 30;
constexpr std::size_t messages_per_txn = 50000;
constexpr std::size_t domains = 2000;

std::string queue_id(std::size_t i) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llX", 0x0006612500000000ull + i);
    return buf;
}

// A few big customers hold most of the queue (the site that is down), many small ones
// the rest: domain d with probability ~ 1/(d+1).
std::string domain_of(std::mt19937_64& random) {
    static const std::vector<double> weights = [] {
        std::vector<double> w;
        for (std::size_t d = 0; d < domains; ++d) w.push_back(1.0 / static_cast<double>(d + 1));
        return w;
    }();
    static std::discrete_distribution<std::size_t> pick(weights.begin(), weights.end());
    return "customer" + std::to_string(pick(random)) + ".example";
}

// An envelope as intake writes it, after some delivery attempts: 1 to 3 recipients,
// most deferred with the site's reply, arrivals spread over two days.
Envelope envelope_of(std::size_t i, UnixMicros now, std::mt19937_64& random) {
    Envelope e;
    e.queue_id = queue_id(i);
    e.arrival = now - static_cast<UnixMicros>(random() % (48ull * 3600 * 1000000));
    e.sender = "sender" + std::to_string(i % 10000) + "@senders.example";
    e.message_id = std::to_string(i) + "." + std::to_string(random() % 1000000) + "@client.senders.example";
    e.client_ip = "198.51.100." + std::to_string(i % 250);
    e.helo = "mail.senders.example";
    e.size = 4096;
    e.state = i % 50 == 0 ? MessageState::held : MessageState::deferred;
    const std::size_t n = 1 + random() % 3;
    for (std::size_t r = 0; r < n; ++r) {
        Recipient rcpt;
        rcpt.address = "user" + std::to_string(random() % 50000) + "@" + domain_of(random);
        rcpt.state = r == 2 ? RecipientState::delivered : RecipientState::deferred;
        rcpt.attempts = 3;
        rcpt.last_reply = "451 4.4.1 connection to mx1.dallas.example [192.0.2.25] timed out";
        rcpt.last_attempt = now - 60000000;
        e.recipients.push_back(std::move(rcpt));
    }
    e.attempts = 3;
    e.next_attempt = now + 300000000;
    e.last_reply = "451 4.4.1 connection to mx1.dallas.example [192.0.2.25] timed out";
    return e;
}

double elapsed_ms(Clock::time_point since) {
    return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t n = 1000000, runs = 5;
    std::string dir, ctl, existing;
    bool keep = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--messages" && i + 1 < argc) n = std::stoul(argv[++i]);
        else if (a == "--runs" && i + 1 < argc) runs = std::max<std::size_t>(1, std::stoul(argv[++i]));
        else if (a == "--dir" && i + 1 < argc) dir = argv[++i];
        else if (a == "--ctl" && i + 1 < argc) ctl = argv[++i];
        else if (a == "--keep") keep = true;
        else if (a == "--spool" && i + 1 < argc) existing = argv[++i];
        else {
            std::cerr << "usage: bench_queue_summary [--messages N] [--runs R] [--dir D] [--keep] [--ctl PATH]\n"
                         "       bench_queue_summary --spool PATH [--runs R] [--ctl PATH]\n";
            return 2;
        }
    }
    if (dir.empty()) {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/edgerelay-bench-summary-XXXXXX";
        if (!mkdtemp(pattern.data())) return 1;
        dir = pattern;
    }
    const std::string spool_path = existing.empty() ? dir + "/spool" : existing;
    const UnixMicros now = now_micros();
    // The summary reads envelopes only; a small body keeps the temporary spool small.
    const std::string content(512, 'x');

    std::mt19937_64 random(42);
    try {
        if (existing.empty()) {
            Spool spool(spool_path, map_size, Spool::Mode::read_write);
            const auto t = Clock::now();
            std::vector<Envelope> batch;
            for (std::size_t first = 0; first < n; first += messages_per_txn) {
                batch.clear();
                for (std::size_t i = first; i < std::min(n, first + messages_per_txn); ++i)
                    batch.push_back(envelope_of(i, now, random));
                const auto ec = spool.write([&](SpoolWriteTxn& txn) {
                    for (const auto& e : batch)
                        if (auto put = txn.put_message(e, content)) return put;
                    return std::error_code{};
                });
                if (ec) {
                    std::cerr << "spool write failed: " << ec.message() << "\n";
                    return 1;
                }
            }
            std::printf("wrote %zu messages in %.1f s; spool %.0f MiB\n", n, elapsed_ms(t) / 1000,
                        fs::file_size(spool_path + "/data.mdb") / 1048576.0);
        }

        // As edgerelayctl: a read-only environment, one snapshot per summary.
        const Spool spool(spool_path, 0, Spool::Mode::read_only);
        n = spool.stats().messages;
        std::vector<double> ms;
        QueueSummary summary;
        for (std::size_t k = 0; k < runs; ++k) {
            const auto t = Clock::now();
            summary = summarize_queue(spool, now);
            ms.push_back(elapsed_ms(t));
        }
        std::sort(ms.begin(), ms.end());
        // What the spool scan alone costs (a snapshot, every envelope decoded), to tell
        // it from the counting.
        std::vector<double> scan;
        for (std::size_t k = 0; k < runs; ++k) {
            const auto t = Clock::now();
            std::size_t seen = 0;
            spool.for_each_envelope([&](const Envelope&) { return ++seen != 0; });
            scan.push_back(elapsed_ms(t));
        }
        std::sort(scan.begin(), scan.end());
        std::printf("for_each_envelope alone (%zu runs): min %.0f ms, median %.0f ms\n", runs, scan.front(),
                    scan[scan.size() / 2]);
        std::printf("summarize_queue over %zu messages (%zu runs): min %.0f ms, median %.0f ms, max %.0f ms; "
                    "%zu domains, TOTAL %llu\n",
                    n, runs, ms.front(), ms[ms.size() / 2], ms.back(), summary.rows.size(),
                    static_cast<unsigned long long>(summary.total.total));

        if (!ctl.empty()) {
            const std::string config = dir + "/bench.toml";
            std::ofstream(config) << "[spool]\npath = \"" << spool_path << "\"\n";
            std::vector<double> whole;
            for (std::size_t k = 0; k < runs; ++k) {
                const std::string cmd = ctl + " --config " + config + " queue summary > /dev/null";
                const auto t = Clock::now();
                if (std::system(cmd.c_str()) != 0) {
                    std::cerr << "failed: " << cmd << "\n";
                    return 1;
                }
                whole.push_back(elapsed_ms(t));
            }
            std::sort(whole.begin(), whole.end());
            std::printf("edgerelayctl queue summary, whole process (%zu runs): min %.0f ms, median %.0f ms, "
                        "max %.0f ms\n",
                        runs, whole.front(), whole[whole.size() / 2], whole.back());
        }
    } catch (const std::exception& e) {
        std::cerr << "bench_queue_summary: " << e.what() << "\n";
        return 1;
    }
    if (!keep || !existing.empty()) fs::remove_all(dir);  // with --spool, only the config is ours
    else std::printf("kept %s\n", dir.c_str());
    return 0;
}
