// Metrics from log events: counters per next hop, the latency histogram's cumulative
// buckets, gauges as given, and label escaping.
#include <gtest/gtest.h>

#include "admin/metrics.h"

namespace edgerelay::admin {
namespace {

queue::LogEvent outcome(const char* kind, const char* next_hop, double delay) {
    queue::LogEvent e(kind);
    e.set("queue_id", "Q").set("next_hop", next_hop).set("delay", delay);
    return e;
}

bool has_line(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

TEST(Metrics, CountsOutcomesPerNextHop) {
    Metrics m;
    m.observe(queue::LogEvent("receive"));
    m.observe(queue::LogEvent("receive"));
    m.observe(queue::LogEvent("reject"));
    m.observe(outcome("deliver", "inbound.dallas", 0.3));
    m.observe(outcome("deliver", "inbound.dallas", 45));
    m.observe(outcome("defer", "inbound.dallas", 1));
    m.observe(outcome("bounce", "[127.0.0.3]", 1));
    m.observe(outcome("attempt", "inbound.dallas", 1));  // attempts are not outcomes
    const auto text = m.render({});
    EXPECT_TRUE(has_line(text, "edgerelay_messages_received_total 2")) << text;
    EXPECT_TRUE(has_line(text, "edgerelay_smtp_rejects_total 1"));
    EXPECT_TRUE(has_line(text, "edgerelay_recipients_delivered_total{next_hop=\"inbound.dallas\"} 2"));
    EXPECT_TRUE(has_line(text, "edgerelay_recipients_deferred_total{next_hop=\"inbound.dallas\"} 1"));
    EXPECT_TRUE(has_line(text, "edgerelay_recipients_bounced_total{next_hop=\"[127.0.0.3]\"} 1"));
    EXPECT_TRUE(has_line(text, "edgerelay_recipients_bounced_total{next_hop=\"inbound.dallas\"} 0"));
}

TEST(Metrics, LatencyHistogramIsCumulative) {
    Metrics m;
    m.observe(outcome("deliver", "h", 0.05));
    m.observe(outcome("deliver", "h", 0.7));
    m.observe(outcome("deliver", "h", 100000));  // beyond the last bucket: only +Inf
    const auto text = m.render({});
    EXPECT_TRUE(has_line(text, "edgerelay_delivery_latency_seconds_bucket{next_hop=\"h\",le=\"0.1\"} 1")) << text;
    EXPECT_TRUE(has_line(text, "edgerelay_delivery_latency_seconds_bucket{next_hop=\"h\",le=\"1\"} 2"));
    EXPECT_TRUE(has_line(text, "edgerelay_delivery_latency_seconds_bucket{next_hop=\"h\",le=\"86400\"} 2"));
    EXPECT_TRUE(has_line(text, "edgerelay_delivery_latency_seconds_bucket{next_hop=\"h\",le=\"+Inf\"} 3"));
    EXPECT_TRUE(has_line(text, "edgerelay_delivery_latency_seconds_count{next_hop=\"h\"} 3"));
}

TEST(Metrics, GaugesAndEscaping) {
    Metrics m;
    GaugeSnapshot g;
    g.queue_messages[{"we\"ird.example", "deferred"}] = 7;
    g.smtp_connections = 3;
    g.spool_bytes = 4096;
    g.routes.push_back({"dallas.example", true, false});
    const auto text = m.render(g);
    EXPECT_TRUE(has_line(text, "edgerelay_queue_messages{domain=\"we\\\"ird.example\",state=\"deferred\"} 7")) << text;
    EXPECT_TRUE(has_line(text, "edgerelay_smtp_connections 3"));
    EXPECT_TRUE(has_line(text, "edgerelay_spool_bytes 4096"));
    EXPECT_TRUE(has_line(text, "edgerelay_route_down{route=\"dallas.example\"} 1"));
    EXPECT_TRUE(has_line(text, "edgerelay_route_held{route=\"dallas.example\"} 0"));
    EXPECT_EQ(escape_label("a\\b\nc"), "a\\\\b\\nc");
}

TEST(Metrics, SpoolWriterCountersAndIntakeWaitHistogram) {
    Metrics m;
    GaugeSnapshot g;
    g.spool_writer.commits = 4;
    g.spool_writer.operations = 10;
    g.spool_writer.commit_seconds = 0.5;
    g.spool_writer.intake_wait_buckets[1] = 2;  // <= 1 ms
    g.spool_writer.intake_wait_buckets[3] = 1;  // <= 3 ms
    g.spool_writer.intake_waits = 4;            // and one beyond the last bucket
    g.spool_writer.intake_wait_seconds = 2.0035;
    g.spool_writer.headroom_bytes = 8388608;
    g.spool_writer.headroom_failures = 1;
    const auto text = m.render(g);
    EXPECT_TRUE(has_line(text, "edgerelay_spool_commits_total 4")) << text;
    EXPECT_TRUE(has_line(text, "edgerelay_spool_writes_total 10"));
    EXPECT_TRUE(has_line(text, "edgerelay_spool_commit_seconds_total 0.5"));
    EXPECT_TRUE(has_line(text, "edgerelay_spool_headroom_bytes_total 8388608"));
    EXPECT_TRUE(has_line(text, "edgerelay_spool_headroom_failures_total 1"));
    EXPECT_TRUE(has_line(text, "edgerelay_spool_intake_wait_seconds_bucket{le=\"0.0005\"} 0"));
    EXPECT_TRUE(has_line(text, "edgerelay_spool_intake_wait_seconds_bucket{le=\"0.001\"} 2"));
    EXPECT_TRUE(has_line(text, "edgerelay_spool_intake_wait_seconds_bucket{le=\"0.002\"} 2"));
    EXPECT_TRUE(has_line(text, "edgerelay_spool_intake_wait_seconds_bucket{le=\"0.003\"} 3"));
    EXPECT_TRUE(has_line(text, "edgerelay_spool_intake_wait_seconds_bucket{le=\"1\"} 3"));
    EXPECT_TRUE(has_line(text, "edgerelay_spool_intake_wait_seconds_bucket{le=\"+Inf\"} 4"));
    EXPECT_TRUE(has_line(text, "edgerelay_spool_intake_wait_seconds_sum 2.0035"));
    EXPECT_TRUE(has_line(text, "edgerelay_spool_intake_wait_seconds_count 4"));
    EXPECT_TRUE(has_line(text, "# TYPE edgerelay_spool_intake_wait_seconds histogram"));
}

}  // namespace
}  // namespace edgerelay::admin
