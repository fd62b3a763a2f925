// Counting log events into Prometheus counters and rendering the text format.
#include "admin/metrics.h"

#include <charconv>

namespace edgerelay::admin {

namespace {

std::string_view field_text(const boost::json::object& fields, std::string_view key) {
    const auto* v = fields.if_contains(key);
    return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
}

// The shortest text that reads back as the same double ("0.1", not "0.10000000000000001").
std::string number(double v) {
    char buf[64];
    const auto result = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, result.ptr);
}

// The same without an exponent, for bucket bounds people read ("0.0005", not "5e-04").
std::string bound(double v) {
    char buf[64];
    const auto result = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
    return std::string(buf, result.ptr);
}

void header(std::string& out, const char* name, const char* type, const char* help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

}  // namespace

std::string escape_label(std::string_view value) {
    std::string out;
    for (char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

void Metrics::observe(const queue::LogEvent& event) {
    const auto& fields = event.fields();
    const auto kind = field_text(fields, "event");
    std::lock_guard lock(mutex_);
    if (kind == "receive") {
        ++received_;
        return;
    }
    if (kind == "reject") {
        ++rejects_;
        return;
    }
    if (kind != "deliver" && kind != "defer" && kind != "bounce" && kind != "expire") return;
    const auto name = field_text(fields, "next_hop");
    auto found = next_hops_.find(name);
    if (found == next_hops_.end()) found = next_hops_.emplace(std::string(name), PerNextHop{}).first;
    PerNextHop& hop = found->second;
    if (kind == "defer") ++hop.deferred;
    else if (kind == "bounce") ++hop.bounced;
    else if (kind == "expire") ++hop.expired;
    else {
        ++hop.delivered;
        const auto* delay = fields.if_contains("delay");
        const double seconds = delay && delay->is_number() ? delay->to_number<double>() : 0.0;
        std::size_t i = 0;
        while (i < kLatencyBuckets.size() && seconds > kLatencyBuckets[i]) ++i;
        if (i < kLatencyBuckets.size()) ++hop.buckets[i];
        ++hop.latency_count;
        hop.latency_sum += seconds;
    }
}

std::string Metrics::render(const GaugeSnapshot& g) const {
    std::string out;
    out.reserve(4096);
    auto sample = [&out](const char* name, const std::string& labels, const std::string& value) {
        out += name;
        if (!labels.empty()) (out += '{') += labels + '}';
        (out += ' ') += value;
        out += '\n';
    };

    header(out, "edgerelay_queue_messages", "gauge",
           "Queued messages with recipients not yet final, by destination domain and state.");
    for (const auto& [key, count] : g.queue_messages)
        sample("edgerelay_queue_messages", "domain=\"" + escape_label(key.first) + "\",state=\"" + key.second + "\"",
               std::to_string(count));
    header(out, "edgerelay_queue_oldest_message_age_seconds", "gauge", "Age of the oldest queued message (0: empty).");
    sample("edgerelay_queue_oldest_message_age_seconds", "", number(g.oldest_message_age_seconds));

    std::lock_guard lock(mutex_);
    header(out, "edgerelay_messages_received_total", "counter", "Messages accepted and queued (DSNs included).");
    sample("edgerelay_messages_received_total", "", std::to_string(received_));
    header(out, "edgerelay_smtp_rejects_total", "counter", "SMTP commands and messages refused at intake.");
    sample("edgerelay_smtp_rejects_total", "", std::to_string(rejects_));

    const std::pair<const char*, std::uint64_t PerNextHop::*> counters[] = {
        {"edgerelay_recipients_delivered_total", &PerNextHop::delivered},
        {"edgerelay_recipients_deferred_total", &PerNextHop::deferred},
        {"edgerelay_recipients_bounced_total", &PerNextHop::bounced},
        {"edgerelay_recipients_expired_total", &PerNextHop::expired}};
    for (const auto& [name, member] : counters) {
        header(out, name, "counter", "Recipient outcomes by next hop.");
        for (const auto& [next_hop, hop] : next_hops_)
            sample(name, "next_hop=\"" + escape_label(next_hop) + "\"", std::to_string(hop.*member));
    }

    header(out, "edgerelay_delivery_latency_seconds", "histogram",
           "From arrival to delivery of each recipient, by next hop.");
    for (const auto& [next_hop, hop] : next_hops_) {
        if (hop.latency_count == 0) continue;
        const std::string label = "next_hop=\"" + escape_label(next_hop) + "\"";
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
            cumulative += hop.buckets[i];
            sample("edgerelay_delivery_latency_seconds_bucket", label + ",le=\"" + number(kLatencyBuckets[i]) + "\"",
                   std::to_string(cumulative));
        }
        sample("edgerelay_delivery_latency_seconds_bucket", label + ",le=\"+Inf\"", std::to_string(hop.latency_count));
        sample("edgerelay_delivery_latency_seconds_sum", label, number(hop.latency_sum));
        sample("edgerelay_delivery_latency_seconds_count", label, std::to_string(hop.latency_count));
    }

    header(out, "edgerelay_smtp_connections", "gauge", "Open SMTP sessions.");
    sample("edgerelay_smtp_connections", "", std::to_string(g.smtp_connections));
    header(out, "edgerelay_spool_bytes", "gauge", "Spool (LMDB) pages in use, bytes.");
    sample("edgerelay_spool_bytes", "", std::to_string(g.spool_bytes));
    header(out, "edgerelay_spool_max_bytes", "gauge", "Spool map size ([spool] max_size), bytes.");
    sample("edgerelay_spool_max_bytes", "", std::to_string(g.spool_max_bytes));
    const auto& w = g.spool_writer;
    header(out, "edgerelay_spool_commits_total", "counter",
           "Spool write transactions committed (each synced); under load one commit serves many writes.");
    sample("edgerelay_spool_commits_total", "", std::to_string(w.commits));
    header(out, "edgerelay_spool_writes_total", "counter",
           "Writes in those commits: messages, delivery records, operator actions, index batches.");
    sample("edgerelay_spool_writes_total", "", std::to_string(w.operations));
    header(out, "edgerelay_spool_commit_seconds_total", "counter",
           "Time spent committing and syncing the spool: the disk's share of every 250.");
    sample("edgerelay_spool_commit_seconds_total", "", number(w.commit_seconds));
    header(out, "edgerelay_spool_headroom_bytes_total", "counter",
           "Zeros written past the spool's last page, so that commits need not grow the file.");
    sample("edgerelay_spool_headroom_bytes_total", "", std::to_string(w.headroom_bytes));
    header(out, "edgerelay_spool_headroom_failures_total", "counter",
           "Writes of that room that failed (a full disk); commits then grow the file themselves.");
    sample("edgerelay_spool_headroom_failures_total", "", std::to_string(w.headroom_failures));
    header(out, "edgerelay_spool_intake_wait_seconds", "histogram",
           "From a received message handed to the spool to its commit being durable (then the 250).");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < w.kWaitBuckets.size(); ++i) {
        cumulative += w.intake_wait_buckets[i];
        sample("edgerelay_spool_intake_wait_seconds_bucket", "le=\"" + bound(w.kWaitBuckets[i]) + "\"",
               std::to_string(cumulative));
    }
    sample("edgerelay_spool_intake_wait_seconds_bucket", "le=\"+Inf\"", std::to_string(w.intake_waits));
    sample("edgerelay_spool_intake_wait_seconds_sum", "", number(w.intake_wait_seconds));
    sample("edgerelay_spool_intake_wait_seconds_count", "", std::to_string(w.intake_waits));
    header(out, "edgerelay_route_down", "gauge", "1 while every host of the route fails and it is being probed.");
    for (const auto& r : g.routes)
        sample("edgerelay_route_down", "route=\"" + escape_label(r.route) + "\"", r.down ? "1" : "0");
    header(out, "edgerelay_route_held", "gauge", "1 while an operator holds the route.");
    for (const auto& r : g.routes)
        sample("edgerelay_route_held", "route=\"" + escape_label(r.route) + "\"", r.held ? "1" : "0");
    return out;
}

}  // namespace edgerelay::admin
