// The queue's shape, like Postfix's qshape: where mail waits and for how long. One pass
// over the envelopes (one read snapshot of the spool), counting into a table per domain.
#include "queue/queue_summary.h"

#include <algorithm>
#include <array>
#include <boost/json/array.hpp>
#include <unordered_map>

#include "queue/scheduler.h"

namespace edgerelay::queue {
namespace {

// qshape's buckets: each twice as wide as the one before, so a glance tells a queue
// that grows steadily from one that is stuck since a given hour.
constexpr std::array<std::int64_t, 9> bucket_limits_minutes{5, 10, 20, 40, 80, 160, 320, 640, 1280};
constexpr std::size_t bucket_count = bucket_limits_minutes.size() + 1;
constexpr UnixMicros micros_per_minute = 60'000'000;

std::vector<std::string> bucket_names() {
    std::vector<std::string> names;
    for (const auto limit : bucket_limits_minutes) names.push_back(std::to_string(limit) + "m");
    names.push_back(std::to_string(bucket_limits_minutes.back()) + "m+");
    return names;
}

// A message that arrived "in the future" (the clock stepped back) counts as the youngest.
std::size_t bucket_of(UnixMicros age) {
    for (std::size_t i = 0; i < bucket_limits_minutes.size(); ++i)
        if (age < bucket_limits_minutes[i] * micros_per_minute) return i;
    return bucket_count - 1;
}

// The counting both entry points share: envelopes in, a sorted summary out.
class Tally {
public:
    explicit Tally(UnixMicros now) : now_(now) {}

    void add(const Envelope& envelope) {
        const std::size_t bucket = bucket_of(now_ - envelope.arrival);
        for (auto& domain : pending_destinations(envelope)) {
            auto [it, inserted] = counts_.try_emplace(std::move(domain));
            ++it->second[bucket];
        }
    }

    QueueSummary finish() && {
        QueueSummary s;
        s.buckets = bucket_names();
        s.total.domain = "TOTAL";
        s.total.counts.assign(bucket_count, 0);
        s.rows.reserve(counts_.size());
        for (auto& [domain, counts] : counts_) {
            QueueSummary::Row row{domain, 0, std::vector<std::uint64_t>(counts.begin(), counts.end())};
            for (std::size_t i = 0; i < bucket_count; ++i) {
                row.total += counts[i];
                s.total.counts[i] += counts[i];
            }
            s.total.total += row.total;
            s.rows.push_back(std::move(row));
        }
        std::sort(s.rows.begin(), s.rows.end(), [](const QueueSummary::Row& a, const QueueSummary::Row& b) {
            return a.total != b.total ? a.total > b.total : a.domain < b.domain;
        });
        return s;
    }

private:
    UnixMicros now_;
    std::unordered_map<std::string, std::array<std::uint64_t, bucket_count>> counts_;
};

}  // namespace

QueueSummary summarize_queue(const Spool& spool, UnixMicros now) {
    Tally tally(now);
    spool.for_each_envelope([&](const Envelope& envelope) {
        tally.add(envelope);
        return true;
    });
    return std::move(tally).finish();
}

QueueSummary summarize_envelopes(const std::vector<Envelope>& envelopes, UnixMicros now) {
    Tally tally(now);
    for (const auto& envelope : envelopes) tally.add(envelope);
    return std::move(tally).finish();
}

boost::json::object queue_summary_json(const QueueSummary& s) {
    boost::json::array domains;
    for (const auto& row : s.rows) {
        boost::json::object buckets;
        for (std::size_t i = 0; i < s.buckets.size() && i < row.counts.size(); ++i)
            buckets[s.buckets[i]] = row.counts[i];
        domains.push_back(boost::json::object{
            {"domain", row.domain}, {"total", row.total}, {"age_buckets", std::move(buckets)}});
    }
    return boost::json::object{{"domains", std::move(domains)}};
}

std::string queue_summary_text(const QueueSummary& s) {
    // Right-aligned columns as wide as their widest cell: domain, T, then the buckets.
    std::vector<const QueueSummary::Row*> rows{&s.total};
    for (const auto& row : s.rows) rows.push_back(&row);
    std::vector<std::string> header{"", "T"};
    header.insert(header.end(), s.buckets.begin(), s.buckets.end());
    std::vector<std::vector<std::string>> table{header};
    for (const auto* row : rows) {
        std::vector<std::string> cells{row->domain, std::to_string(row->total)};
        for (const auto count : row->counts) cells.push_back(std::to_string(count));
        table.push_back(std::move(cells));
    }
    std::vector<std::size_t> widths(header.size(), 0);
    for (const auto& cells : table)
        for (std::size_t i = 0; i < cells.size() && i < widths.size(); ++i)
            widths[i] = std::max(widths[i], cells[i].size());
    std::string out;
    for (const auto& cells : table) {
        for (std::size_t i = 0; i < cells.size() && i < widths.size(); ++i) {
            if (i > 0) out += ' ';
            out.append(widths[i] - cells[i].size(), ' ');
            out += cells[i];
        }
        out += '\n';
    }
    return out;
}

}  // namespace edgerelay::queue
