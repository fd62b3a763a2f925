// Tracking-log lookups at scale (SPEC §5: "a Message-ID lookup in the tracking log under
// 100 ms" with 1,000,000 messages): builds an index of N messages x 3 events (receive,
// attempt, deliver) through TrackingIndex::add into a temporary spool, in large
// transactions, then reopens it read-only as edgerelayctl does and times random
// Message-ID lookups, a --from and a --to lookup (each its own snapshot, events
// loaded), and optionally the whole `edgerelayctl log --message-id` process.
//
//   bench_tracking_lookup [--messages N] [--lookups L] [--dir D] [--keep] [--ctl PATH]
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

#include "queue/tracking_index.h"

namespace {

using namespace edgerelay::queue;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t map_size = 32ull << 30;
constexpr std::size_t messages_per_txn = 20000;
constexpr std::size_t senders = 10000;      // ~100 messages each at 1M
constexpr std::size_t recipients = 50000;   // ~20 each

std::string queue_id(std::size_t i) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llX", 0x0006612500000000ull + i);
    return buf;
}
std::string message_id(std::size_t i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%08zx.%zu@client%zu.example", (i * 2654435761u) & 0xffffffffu, i, i % 97);
    return buf;
}
std::string sender(std::size_t i) { return "sender" + std::to_string(i % senders) + "@senders.example"; }
std::string recipient(std::size_t i) { return "user" + std::to_string((i * 7) % recipients) + "@rockerduck.example"; }

// The three events of message i, shaped and sized like the daemon's.
void events_of(std::size_t i, UnixMicros t, std::vector<TrackingEvent>& out) {
    const std::string qid = queue_id(i), mid = message_id(i), from = sender(i), to = recipient(i);
    const std::string head = "\"queue_id\":\"" + qid + "\",\"message_id\":\"" + mid + "\"";
    const std::string hop = ",\"recipient\":\"" + to +
                            "\",\"next_hop\":\"inbound.rockerduck.example\",\"mx_host\":\"mx1.rockerduck.example\","
                            "\"ip\":\"192.0.2.25\",\"port\":25,\"tls\":true,";
    out.push_back({t, qid, mid, from, {to},
                   "{\"event\":\"receive\",\"time\":\"" + format_rfc3339(t) + "\"," + head +
                       ",\"client_ip\":\"198.51.100.7\",\"helo\":\"mail.senders.example\",\"tls\":true,\"sender\":\"" +
                       from + "\",\"recipients\":[\"" + to + "\"],\"size\":4711}"});
    out.push_back({t + 300000, qid, mid, std::nullopt, {to},
                   "{\"event\":\"attempt\",\"time\":\"" + format_rfc3339(t + 300000) + "\"," + head + hop +
                       "\"reply_code\":250,\"enhanced_code\":\"2.0.0\",\"reply_text\":\"ok\",\"delay\":0.3}"});
    out.push_back({t + 400000, qid, mid, std::nullopt, {to},
                   "{\"event\":\"deliver\",\"time\":\"" + format_rfc3339(t + 400000) + "\"," + head + hop +
                       "\"reply_code\":250,\"enhanced_code\":\"2.0.0\",\"reply_text\":\"ok\",\"attempt\":1,"
                       "\"delay\":0.41}"});
}

struct Figures {
    double p50, p99, max;
};
Figures figures(std::vector<double> ms) {
    std::sort(ms.begin(), ms.end());
    auto at = [&](double q) { return ms[std::min(ms.size() - 1, static_cast<std::size_t>(q * ms.size()))]; };
    return {at(0.50), at(0.99), ms.back()};
}

double elapsed_ms(Clock::time_point since) {
    return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t n = 1000000, lookups = 1000;
    std::string dir, ctl;
    bool keep = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--messages" && i + 1 < argc) n = std::stoul(argv[++i]);
        else if (a == "--lookups" && i + 1 < argc) lookups = std::stoul(argv[++i]);
        else if (a == "--dir" && i + 1 < argc) dir = argv[++i];
        else if (a == "--ctl" && i + 1 < argc) ctl = argv[++i];
        else if (a == "--keep") keep = true;
        else {
            std::cerr << "usage: bench_tracking_lookup [--messages N] [--lookups L] [--dir D] [--keep] [--ctl PATH]\n";
            return 2;
        }
    }
    if (dir.empty()) {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/edgerelay-bench-track-XXXXXX";
        if (!mkdtemp(pattern.data())) return 1;
        dir = pattern;
    }
    const std::string spool_path = dir + "/spool";
    const UnixMicros start = now_micros() - UnixMicros(30) * 86400 * 1000000;  // spread over 30 days
    const UnixMicros step = UnixMicros(30) * 86400 * 1000000 / static_cast<UnixMicros>(n);

    std::mt19937_64 random(42);
    try {
        {
            Spool spool(spool_path, map_size, Spool::Mode::read_write);
            TrackingIndex index(spool);
            const auto t = Clock::now();
            std::vector<TrackingEvent> batch;
            for (std::size_t first = 0; first < n; first += messages_per_txn) {
                batch.clear();
                for (std::size_t i = first; i < std::min(n, first + messages_per_txn); ++i)
                    events_of(i, start + static_cast<UnixMicros>(i) * step, batch);
                if (auto ec = spool.write([&](SpoolWriteTxn& txn) { return index.add(txn, batch); })) {
                    std::cerr << "index write failed: " << ec.message() << "\n";
                    return 1;
                }
            }
            const double s = elapsed_ms(t) / 1000;
            const auto c = index.counts();
            std::printf("indexed %zu messages, %llu events in %.1f s (%.0f events/s); spool %.0f MiB\n", n,
                        static_cast<unsigned long long>(c.events), s, c.events / s,
                        fs::file_size(spool_path + "/data.mdb") / 1048576.0);
        }

        // As edgerelayctl: a read-only environment, one snapshot per lookup.
        const Spool spool(spool_path, 0, Spool::Mode::read_only);
        const TrackingIndex index(spool);
        std::vector<double> ms;
        std::size_t found = 0;
        for (std::size_t k = 0; k < lookups; ++k) {
            TrackingQuery q;
            q.message_id = "<" + message_id(random() % n) + ">";
            const auto t = Clock::now();
            const auto r = index.find(q);
            ms.push_back(elapsed_ms(t));
            found += r.messages.size() == 1 && r.messages[0].events.size() == 3;
        }
        const auto f = figures(ms);
        std::printf("Message-ID lookup (%zu random, %zu found with 3 events): p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
                    lookups, found, f.p50, f.p99, f.max);

        for (const char* kind : {"--from", "--to"}) {
            TrackingQuery q;
            const std::size_t i = random() % n;
            (std::string_view(kind) == "--from" ? q.sender : q.recipient) =
                std::string_view(kind) == "--from" ? sender(i) : recipient(i);
            const auto t = Clock::now();
            const auto r = index.find(q);
            const double took = elapsed_ms(t);
            std::size_t events = 0;
            for (const auto& m : r.messages) events += m.events.size();
            std::printf("%s lookup: %zu messages%s, %zu events in %.3f ms\n", kind, r.messages.size(),
                        r.truncated ? " (the 100 most recent)" : "", events, took);
        }

        if (!ctl.empty()) {
            const std::string config = dir + "/bench.toml";
            std::ofstream(config) << "[spool]\npath = \"" << spool_path << "\"\n";
            std::vector<double> runs;
            for (int k = 0; k < 20; ++k) {
                const std::string cmd = ctl + " --config " + config + " log --message-id '" +
                                        message_id(random() % n) + "' > /dev/null";
                const auto t = Clock::now();
                if (std::system(cmd.c_str()) != 0) {
                    std::cerr << "failed: " << cmd << "\n";
                    return 1;
                }
                runs.push_back(elapsed_ms(t));
            }
            const auto g = figures(runs);
            std::printf("edgerelayctl log --message-id, whole process (20 runs): p50 %.1f ms, max %.1f ms\n", g.p50,
                        g.max);
        }
    } catch (const std::exception& e) {
        std::cerr << "bench_tracking_lookup: " << e.what() << "\n";
        return 1;
    }
    if (!keep) fs::remove_all(dir);
    else std::printf("kept %s\n", dir.c_str());
    return 0;
}
