// The queue's shape (queue/queue_summary.h): buckets and their edges, which domains a
// message counts in, row order, the JSON and the text table, and the spool scan.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <filesystem>

#include "queue/queue_summary.h"

namespace edgerelay::queue {
namespace {

constexpr UnixMicros now = 1'800'000'000'000'000;
constexpr UnixMicros minute = 60'000'000;

Envelope message(const std::string& id, UnixMicros age, std::vector<std::pair<std::string, RecipientState>> rcpts) {
    Envelope e;
    e.queue_id = id;
    e.arrival = now - age;
    e.sender = "ann@senders.example";
    for (auto& [address, state] : rcpts) e.recipients.push_back({address, state, 0, "", 0});
    return e;
}

Envelope to(const std::string& id, UnixMicros age, const std::string& address) {
    return message(id, age, {{address, RecipientState::pending}});
}

const QueueSummary::Row* row_of(const QueueSummary& s, const std::string& domain) {
    for (const auto& row : s.rows)
        if (row.domain == domain) return &row;
    return nullptr;
}

std::vector<std::uint64_t> counts(std::initializer_list<std::pair<std::size_t, std::uint64_t>> set) {
    std::vector<std::uint64_t> c(10, 0);
    for (const auto& [i, n] : set) c[i] = n;
    return c;
}

TEST(QueueSummary, BucketsAreQshapes) {
    const auto s = summarize_envelopes({}, now);
    EXPECT_EQ(s.buckets, (std::vector<std::string>{"5m", "10m", "20m", "40m", "80m", "160m", "320m", "640m", "1280m",
                                                   "1280m+"}));
    EXPECT_TRUE(s.rows.empty());
    EXPECT_EQ(s.total.domain, "TOTAL");
    EXPECT_EQ(s.total.total, 0u);
    EXPECT_EQ(s.total.counts, counts({}));
}

TEST(QueueSummary, AgeEdgesFallIntoTheOlderBucket) {
    const auto s = summarize_envelopes(
        {to("A", 0, "a@d.example"), to("B", 5 * minute - 1, "a@d.example"), to("C", 5 * minute, "a@d.example"),
         to("D", 10 * minute, "a@d.example"), to("E", 639 * minute, "a@d.example"),
         to("F", 1280 * minute - 1, "a@d.example"), to("G", 1280 * minute, "a@d.example"),
         to("H", 30 * 24 * 60 * minute, "a@d.example"),
         to("I", -3 * minute, "a@d.example")},  // arrival after now: the clock stepped back
        now);
    ASSERT_EQ(s.rows.size(), 1u);
    EXPECT_EQ(s.rows[0].counts, counts({{0, 3}, {1, 1}, {2, 1}, {7, 1}, {8, 1}, {9, 2}}));
    EXPECT_EQ(s.rows[0].total, 9u);
}

TEST(QueueSummary, CountsAMessageOnceInEachDomainWithPendingRecipients) {
    const auto s = summarize_envelopes(
        {message("A", 1 * minute,
                 {{"a@one.example", RecipientState::pending},
                  {"b@ONE.example", RecipientState::deferred},  // same domain, any case: once
                  {"c@two.example", RecipientState::deferred},
                  {"d@three.example", RecipientState::delivered},  // final: not waiting there
                  {"e@four.example", RecipientState::bounced}}),
         message("B", 1 * minute, {{"a@done.example", RecipientState::delivered}})},  // nothing left
        now);
    ASSERT_EQ(s.rows.size(), 2u);
    EXPECT_EQ(s.rows[0].domain, "one.example");
    EXPECT_EQ(s.rows[0].total, 1u);
    EXPECT_EQ(s.rows[1].domain, "two.example");
    EXPECT_FALSE(row_of(s, "three.example"));
    EXPECT_FALSE(row_of(s, "done.example"));
    EXPECT_EQ(s.total.total, 2u);  // the sum of the rows, as qshape adds them up
}

TEST(QueueSummary, HeldMessagesCountToo) {
    auto held = to("A", 50 * minute, "a@d.example");
    held.state = MessageState::held;
    auto deferred = to("B", 50 * minute, "b@d.example");
    deferred.state = MessageState::deferred;
    const auto s = summarize_envelopes({held, deferred}, now);
    ASSERT_EQ(s.rows.size(), 1u);
    EXPECT_EQ(s.rows[0].counts, counts({{4, 2}}));
}

TEST(QueueSummary, MostMessagesFirstThenByName) {
    const auto s = summarize_envelopes({to("A", 0, "x@b.example"), to("B", 0, "x@c.example"),
                                        to("C", 100 * minute, "x@big.example"), to("D", 0, "x@big.example"),
                                        to("E", 0, "x@a.example")},
                                       now);
    ASSERT_EQ(s.rows.size(), 4u);
    EXPECT_EQ(s.rows[0].domain, "big.example");
    EXPECT_EQ(s.rows[1].domain, "a.example");
    EXPECT_EQ(s.rows[2].domain, "b.example");
    EXPECT_EQ(s.rows[3].domain, "c.example");
    EXPECT_EQ(s.total.counts, counts({{0, 4}, {5, 1}}));
    EXPECT_EQ(s.total.total, 5u);
}

TEST(QueueSummary, JsonHasOneObjectPerDomainWithoutTotal) {
    const auto s = summarize_envelopes({to("A", 7 * minute, "x@a.example"), to("B", 2000 * minute, "y@a.example"),
                                        to("C", 0, "z@b.example")},
                                       now);
    EXPECT_EQ(boost::json::serialize(queue_summary_json(s)),
              R"({"domains":[{"domain":"a.example","total":2,"age_buckets":{"5m":0,"10m":1,"20m":0,"40m":0,"80m":0,)"
              R"("160m":0,"320m":0,"640m":0,"1280m":0,"1280m+":1}},{"domain":"b.example","total":1,"age_buckets":)"
              R"({"5m":1,"10m":0,"20m":0,"40m":0,"80m":0,"160m":0,"320m":0,"640m":0,"1280m":0,"1280m+":0}}]})");
    EXPECT_EQ(boost::json::serialize(queue_summary_json(summarize_envelopes({}, now))), R"({"domains":[]})");
}

TEST(QueueSummary, TextIsQshapesTableTotalFirst) {
    std::vector<Envelope> envelopes;
    for (int i = 0; i < 12; ++i) envelopes.push_back(to("A" + std::to_string(i), 0, "x@rockerduck.example"));
    envelopes.push_back(to("B", 90 * minute, "x@b.example"));
    EXPECT_EQ(queue_summary_text(summarize_envelopes(envelopes, now)),
              "                    T 5m 10m 20m 40m 80m 160m 320m 640m 1280m 1280m+\n"
              "             TOTAL 13 12   0   0   0   0    1    0    0     0      0\n"
              "rockerduck.example 12 12   0   0   0   0    0    0    0     0      0\n"
              "         b.example  1  0   0   0   0   0    1    0    0     0      0\n");
}

TEST(QueueSummary, ScanOfTheSpoolCountsLikeTheEnvelopes) {
    const auto dir = std::filesystem::temp_directory_path() / ("edgerelay_summary_test_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir);
    const std::vector<Envelope> envelopes{to("0000000000000001", 3 * minute, "a@one.example"),
                                          message("0000000000000002", 30 * minute,
                                                  {{"a@one.example", RecipientState::deferred},
                                                   {"b@two.example", RecipientState::pending}}),
                                          to("0000000000000003", 3000 * minute, "c@two.example")};
    {
        Spool spool(dir.string(), 1ull << 26, Spool::Mode::read_write);
        ASSERT_FALSE(spool.write([&](SpoolWriteTxn& txn) {
            for (const auto& e : envelopes)
                if (auto ec = txn.put_message(e, "Subject: x\r\n\r\nbody\r\n")) return ec;
            return std::error_code{};
        }));
    }
    const Spool reader(dir.string(), 0, Spool::Mode::read_only);
    const auto scanned = summarize_queue(reader, now);
    const auto expected = summarize_envelopes(envelopes, now);
    EXPECT_EQ(queue_summary_text(scanned), queue_summary_text(expected));
    EXPECT_EQ(scanned.total.counts, counts({{0, 1}, {3, 2}, {9, 1}}));
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace edgerelay::queue
