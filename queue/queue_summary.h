// `edgerelayctl queue summary` (GET /api/v1/queue/summary): queued messages counted by
// destination domain and age, in Postfix qshape's doubling buckets, as JSON and as text.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "queue/envelope.h"
#include "queue/spool.h"

namespace edgerelay::queue {

struct QueueSummary {
    std::vector<std::string> buckets;  // "5m","10m","20m","40m","80m","160m","320m","640m","1280m","1280m+"
    struct Row {
        std::string domain;
        std::uint64_t total = 0;
        std::vector<std::uint64_t> counts;  // one per bucket
    };
    std::vector<Row> rows;  // one per destination domain, most messages first (ties: domain name)
    Row total;              // domain "TOTAL": the sum of the rows, as in qshape
};

// A message counts once in every destination domain that still has recipients without
// a final outcome (held messages too), in the bucket of its age (now - arrival):
// "5m" under 5 minutes, "10m" 5 to 10, ... "1280m" 640 to 1280, "1280m+" the rest.
QueueSummary summarize_queue(const Spool& spool, UnixMicros now);  // one read snapshot scan
QueueSummary summarize_envelopes(const std::vector<Envelope>& envelopes, UnixMicros now);

// {"domains":[{"domain":..,"total":N,"age_buckets":{"5m":n,...,"1280m+":n}}]}, no TOTAL.
boost::json::object queue_summary_json(const QueueSummary& s);
// qshape's table: a header of bucket names, the TOTAL row, then one row per domain.
std::string queue_summary_text(const QueueSummary& s);

}  // namespace edgerelay::queue
