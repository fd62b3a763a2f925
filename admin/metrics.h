// Prometheus metrics (SPEC §4 `GET /metrics`). Counters and the delivery latency
// histogram are fed by the same log events support staff read, so a metric and the log
// can never disagree; gauges are measured when scraped.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "queue/event_log.h"
#include "queue/spool_writer.h"

namespace edgerelay::admin {

// What a scrape measures at that moment.
struct GaugeSnapshot {
    std::map<std::pair<std::string, std::string>, std::uint64_t> queue_messages;  // (domain, state) -> count
    double oldest_message_age_seconds = 0;
    std::uint64_t smtp_connections = 0;
    std::uint64_t spool_bytes = 0;
    std::uint64_t spool_max_bytes = 0;
    queue::SpoolWriterStats spool_writer;  // counters, read at the scrape like the gauges
    struct RouteGauge {
        std::string route;
        bool down = false;
        bool held = false;
    };
    std::vector<RouteGauge> routes;
};

class Metrics {
public:
    // Upper bounds of the latency buckets, seconds: from a relay that keeps pace (under
    // a second) to mail that waited out a site's outage (hours, a day).
    static constexpr std::array<double, 13> kLatencyBuckets{0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400};

    // An EventLog sink: counts receive, reject, deliver, defer, bounce, expire. Thread-safe.
    void observe(const queue::LogEvent& event);
    // The Prometheus text exposition (format 0.0.4).
    std::string render(const GaugeSnapshot& gauges) const;

private:
    struct PerNextHop {
        std::uint64_t delivered = 0, deferred = 0, bounced = 0, expired = 0;
        std::array<std::uint64_t, kLatencyBuckets.size()> buckets{};  // not cumulative here
        std::uint64_t latency_count = 0;
        double latency_sum = 0;
    };
    mutable std::mutex mutex_;
    std::uint64_t received_ = 0;
    std::uint64_t rejects_ = 0;
    std::map<std::string, PerNextHop, std::less<>> next_hops_;
};

// A label value escaped for the exposition format (backslash, quote, newline).
std::string escape_label(std::string_view value);

}  // namespace edgerelay::admin
