// The tracking index: events in, messages out by Message-ID, queue id, sender,
// recipient and time (alone and combined), oldest first; limits; pruning in bounded
// batches with every index entry gone; the daemon's feed through the SpoolWriter and
// the event log's sink; times for --since/--until; the mail-log text.
#include <gtest/gtest.h>
#include <lmdb.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "queue/event_log.h"
#include "queue/spool_writer.h"
#include "queue/tracking_index.h"

namespace edgerelay::queue {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr std::uint64_t map_64m = 64ull << 20;
constexpr UnixMicros second = 1'000'000;
const UnixMicros t0 = *parse_rfc3339("2026-11-26T02:00:00Z");

class TrackingIndexTest : public ::testing::Test {
public:
    void SetUp() override {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/edgerelay-track-XXXXXX";
        ASSERT_NE(mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
        spool_ = std::make_unique<Spool>(spool_path(), map_64m, Spool::Mode::read_write);
        index_ = std::make_unique<TrackingIndex>(*spool_);
    }
    void TearDown() override {
        index_.reset();
        spool_.reset();
        fs::remove_all(dir_);
    }
    std::string spool_path() const { return (dir_ / "spool").string(); }

    void add(std::vector<TrackingEvent> events) {
        ASSERT_FALSE(spool_->write([&](SpoolWriteTxn& txn) { return index_->add(txn, events); }));
    }
    std::size_t prune(UnixMicros cutoff, std::size_t max, bool& more) {
        std::size_t removed = 0;
        EXPECT_FALSE(spool_->write([&](SpoolWriteTxn& txn) { return index_->prune(txn, cutoff, max, removed, more); }));
        return removed;
    }
    std::vector<std::string> queue_ids(const TrackingQuery& q) const {
        std::vector<std::string> ids;
        for (const auto& m : index_->find(q).messages) ids.push_back(m.queue_id);
        return ids;
    }

    fs::path dir_;
    std::unique_ptr<Spool> spool_;
    std::unique_ptr<TrackingIndex> index_;
};

// An event as the daemon logs it, run through tracking_event like the feed does.
TrackingEvent event(json::object fields) {
    auto e = tracking_event(fields, json::serialize(fields));
    EXPECT_TRUE(e.has_value());
    return *e;
}

json::object receive(const std::string& qid, UnixMicros t, const std::string& sender,
                     std::vector<std::string> rcpts, const std::string& mid) {
    json::array a;
    for (auto& r : rcpts) a.emplace_back(r);
    return {{"event", "receive"}, {"time", format_rfc3339(t)}, {"queue_id", qid}, {"message_id", mid},
            {"client_ip", "127.0.0.1"}, {"helo", "client.test"}, {"tls", false}, {"sender", sender},
            {"recipients", a}, {"size", 612}};
}

json::object outcome(const char* kind, const std::string& qid, UnixMicros t, const std::string& rcpt, int code,
                     const std::string& enhanced, const std::string& text, int attempt) {
    return {{"event", kind}, {"time", format_rfc3339(t)}, {"queue_id", qid}, {"message_id", qid + "@client.test"},
            {"recipient", rcpt}, {"next_hop", "inbound.rockerduck.example"}, {"mx_host", "mx1.rockerduck.example"},
            {"ip", "127.0.0.2"}, {"port", 25}, {"tls", false}, {"reply_code", code}, {"enhanced_code", enhanced},
            {"reply_text", text}, {"attempt", attempt}, {"delay", 0.41}};
}

// Three messages: A delivered, B deferred twice (two recipients), C bounced; 10 s apart.
void add_story(TrackingIndexTest& t) {
    t.add({event(receive("000000000000000A", t0, "Alice@Example.org", {"bob@rockerduck.example"}, "a@client.test")),
           event(receive("000000000000000B", t0 + 10 * second, "carol@example.org",
                         {"bob@rockerduck.example", "Dave@Rockerduck.example"}, "b@client.test")),
           event(outcome("deliver", "000000000000000A", t0 + 1 * second, "bob@rockerduck.example", 250, "2.0.0",
                         "ok", 1))});
    t.add({event(outcome("defer", "000000000000000B", t0 + 11 * second, "bob@rockerduck.example", 451, "4.3.0",
                         "try later", 1)),
           event(receive("000000000000000C", t0 + 20 * second, "alice@example.org", {"erin@rockerduck.example"},
                         "c@client.test")),
           event(outcome("defer", "000000000000000B", t0 + 71 * second, "bob@rockerduck.example", 451, "4.3.0",
                         "try later", 2)),
           event(outcome("bounce", "000000000000000C", t0 + 21 * second, "erin@rockerduck.example", 550, "5.1.1",
                         "no such user", 1))});
}

TEST_F(TrackingIndexTest, FindsByMessageIdWithEveryEventOldestFirst) {
    add_story(*this);
    TrackingQuery q;
    q.message_id = "<b@client.test>";
    const auto r = index_->find(q);
    ASSERT_TRUE(r.available);
    ASSERT_EQ(r.messages.size(), 1u);
    const auto& m = r.messages[0];
    EXPECT_EQ(m.queue_id, "000000000000000B");
    EXPECT_EQ(m.message_id, "b@client.test");
    EXPECT_EQ(m.sender, "carol@example.org");
    EXPECT_EQ(m.first, t0 + 10 * second);
    EXPECT_EQ(m.last, t0 + 71 * second);
    ASSERT_EQ(m.events.size(), 3u);
    const char* kinds[] = {"receive", "defer", "defer"};
    for (std::size_t i = 0; i < 3; ++i) {
        const auto e = json::parse(m.events[i]).as_object();
        EXPECT_EQ(e.at("event").as_string(), kinds[i]);
        EXPECT_EQ(e.at("queue_id").as_string(), "000000000000000B");
    }
    EXPECT_EQ(json::parse(m.events[2]).as_object().at("attempt").as_int64(), 2);
    q.message_id = "nobody@client.test";
    EXPECT_TRUE(index_->find(q).messages.empty());
}

TEST_F(TrackingIndexTest, FindsByQueueIdSenderRecipientCaseInsensitively) {
    add_story(*this);
    TrackingQuery q;
    q.queue_id = "000000000000000C";
    EXPECT_EQ(queue_ids(q), std::vector<std::string>{"000000000000000C"});
    q = {};
    q.sender = "ALICE@example.ORG";
    EXPECT_EQ(queue_ids(q), (std::vector<std::string>{"000000000000000A", "000000000000000C"}));
    q = {};
    q.recipient = "<bob@ROCKERDUCK.example>";
    EXPECT_EQ(queue_ids(q), (std::vector<std::string>{"000000000000000A", "000000000000000B"}));
    q.recipient = "dave@rockerduck.example";
    EXPECT_EQ(queue_ids(q), std::vector<std::string>{"000000000000000B"});
    q.recipient = "bob@rockerduck.exampl";  // exact addresses, not prefixes
    EXPECT_TRUE(queue_ids(q).empty());
}

TEST_F(TrackingIndexTest, FiltersCombineWithAnd) {
    add_story(*this);
    TrackingQuery q;
    q.sender = "alice@example.org";
    q.recipient = "erin@rockerduck.example";
    EXPECT_EQ(queue_ids(q), std::vector<std::string>{"000000000000000C"});
    q.recipient = "bob@rockerduck.example";
    EXPECT_EQ(queue_ids(q), std::vector<std::string>{"000000000000000A"});
    q.since = t0 + 5 * second;  // A's last event is at t0 + 1 s
    EXPECT_TRUE(queue_ids(q).empty());
    q = {};
    q.message_id = "a@client.test";
    q.sender = "carol@example.org";
    EXPECT_TRUE(queue_ids(q).empty());
    q.queue_id = "000000000000000A";
    q.sender = "alice@example.org";
    EXPECT_EQ(queue_ids(q), std::vector<std::string>{"000000000000000A"});
}

TEST_F(TrackingIndexTest, SinceAndUntilSelectMessagesActiveInTheWindow) {
    add_story(*this);
    TrackingQuery q;
    q.since = t0 + 15 * second;
    EXPECT_EQ(queue_ids(q), (std::vector<std::string>{"000000000000000B", "000000000000000C"}));
    q.until = t0 + 19 * second;  // C starts at 20 s; B runs from 10 s to 71 s
    EXPECT_EQ(queue_ids(q), std::vector<std::string>{"000000000000000B"});
    q = {};
    q.until = t0 + 5 * second;
    EXPECT_EQ(queue_ids(q), std::vector<std::string>{"000000000000000A"});
}

TEST_F(TrackingIndexTest, WithoutFiltersTheMostRecentUpToTheLimit) {
    add_story(*this);
    TrackingQuery q;
    EXPECT_EQ(queue_ids(q), (std::vector<std::string>{"000000000000000A", "000000000000000B", "000000000000000C"}));
    q.limit = 2;  // most recent activity: B (71 s) and C (21 s), printed oldest first
    const auto r = index_->find(q);
    EXPECT_TRUE(r.truncated);
    ASSERT_EQ(r.messages.size(), 2u);
    EXPECT_EQ(r.messages[0].queue_id, "000000000000000B");
    EXPECT_EQ(r.messages[1].queue_id, "000000000000000C");
    q.limit = 3;
    EXPECT_FALSE(index_->find(q).truncated);
}

TEST_F(TrackingIndexTest, EventsWithoutAMessageAreNotIndexed) {
    json::object reject{{"event", "reject"}, {"time", format_rfc3339(t0)}, {"client_ip", "127.0.0.1"}};
    EXPECT_FALSE(tracking_event(reject, json::serialize(reject)));
    json::object route{{"event", "route"}, {"time", format_rfc3339(t0)}, {"route", "rockerduck.example"}};
    EXPECT_FALSE(tracking_event(route, json::serialize(route)));
    auto e = event(receive("000000000000000A", t0, "", {"x@y.example"}, "<m@x>"));
    EXPECT_EQ(e.time, t0);
    EXPECT_EQ(e.message_id, "m@x");
    EXPECT_EQ(e.sender, "");
    add({e});
    TrackingQuery q;
    q.sender = "<>";  // the null sender
    EXPECT_EQ(queue_ids(q), std::vector<std::string>{"000000000000000A"});
}

TEST_F(TrackingIndexTest, EventsOfOneMillisecondKeepTheirOrder) {
    std::vector<TrackingEvent> events{event(receive("000000000000000A", t0, "a@x.example", {"b@y.example"}, "m@x"))};
    for (int i = 1; i <= 5; ++i)
        events.push_back(event(outcome("attempt", "000000000000000A", t0, "b@y.example", 451, "4.3.0", "busy", i)));
    add(events);
    TrackingQuery q;
    q.queue_id = "000000000000000A";
    const auto m = index_->find(q).messages.at(0);
    ASSERT_EQ(m.events.size(), 6u);
    for (int i = 1; i <= 5; ++i) EXPECT_EQ(json::parse(m.events[i]).as_object().at("attempt").as_int64(), i);
}

TEST_F(TrackingIndexTest, PruneRemovesOldMessagesWholeInBoundedBatches) {
    add_story(*this);  // last events: A 1 s, C 21 s, B 71 s
    const auto c = index_->counts();
    EXPECT_EQ(c.events, 7u);
    EXPECT_EQ(c.messages, 3u);
    EXPECT_EQ(c.by_message_id, 3u);
    EXPECT_EQ(c.by_sender, 3u);
    EXPECT_EQ(c.by_recipient, 4u);  // A-bob, B-bob, B-dave, C-erin
    EXPECT_EQ(c.by_time, 3u);
    bool more = false;
    EXPECT_EQ(prune(t0 + 30 * second, 1, more), 1u);
    EXPECT_TRUE(more);
    EXPECT_EQ(prune(t0 + 30 * second, 10, more), 1u);
    EXPECT_FALSE(more);
    EXPECT_EQ(prune(t0 + 30 * second, 10, more), 0u);
    EXPECT_EQ(queue_ids({}), std::vector<std::string>{"000000000000000B"});
    TrackingQuery q;
    q.sender = "alice@example.org";
    EXPECT_TRUE(queue_ids(q).empty());
    q = {};
    q.recipient = "bob@rockerduck.example";
    EXPECT_EQ(queue_ids(q), std::vector<std::string>{"000000000000000B"});
    q = {};
    q.message_id = "c@client.test";
    EXPECT_TRUE(queue_ids(q).empty());
    EXPECT_EQ(prune(t0 + 100 * second, 10, more), 1u);
    // Nothing left behind in any of the six databases.
    const auto left = index_->counts();
    for (auto n : {left.events, left.messages, left.by_message_id, left.by_sender, left.by_recipient, left.by_time})
        EXPECT_EQ(n, 0u);
}

TEST_F(TrackingIndexTest, ReadOnlySpoolSeesTheIndexAndAnOldSpoolHasNone) {
    add_story(*this);
    {
        const Spool reader(spool_path(), 0, Spool::Mode::read_only);
        TrackingQuery q;
        q.message_id = "a@client.test";
        const auto r = TrackingIndex(reader).find(q);
        ASSERT_TRUE(r.available);
        ASSERT_EQ(r.messages.size(), 1u);
        EXPECT_EQ(r.messages[0].events.size(), 2u);
    }
    // A spool from before the index: only the original three databases.
    const std::string old_path = (dir_ / "old").string();
    fs::create_directories(old_path);
    MDB_env* env = nullptr;
    ASSERT_EQ(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    ASSERT_EQ(mdb_env_open(env, old_path.c_str(), 0, 0640), 0);
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
    MDB_dbi dbi;
    for (const char* name : {"envelopes", "contents"}) ASSERT_EQ(mdb_dbi_open(txn, name, MDB_CREATE, &dbi), 0);
    ASSERT_EQ(mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi), 0);
    MDB_val k{14, const_cast<char*>("schema_version")}, v{1, const_cast<char*>("1")};
    ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    const Spool old(old_path, 0, Spool::Mode::read_only);
    EXPECT_FALSE(TrackingIndex(old).find({}).available);
}

TEST_F(TrackingIndexTest, FeedWritesLoggedEventsThroughTheWriterAndPrunes) {
    SpoolWriter writer(*spool_);
    {
        EventLog log((dir_ / "events.log").string());
        TrackingFeed feed(*index_, writer, 2s);
        log.set_sink([&feed](const LogEvent& e, std::string_view line) { feed.accept(e, line); });
        LogEvent old("receive");
        old.set("queue_id", "000000000000000A").set("message_id", "old@x").set("sender", "a@x.example");
        old.set("recipients", json::array{"b@y.example"});
        old.set("time", format_rfc3339(now_micros() - 10 * second));  // already past retention
        log.write(old);
        LogEvent fresh("receive");
        fresh.set("queue_id", "000000000000000B").set("message_id", "new@x").set("sender", "a@x.example");
        log.write(fresh);
        log.write(LogEvent("route").set("route", "y.example"));
        std::this_thread::sleep_for(300ms);  // a flush interval or two
        TrackingQuery q;
        q.sender = "a@x.example";
        EXPECT_EQ(queue_ids(q), (std::vector<std::string>{"000000000000000A", "000000000000000B"}));
        // The first prune runs after 1 s (retention / 4, at least 1 s).
        for (int i = 0; i < 40 && queue_ids(q).size() != 1; ++i) std::this_thread::sleep_for(100ms);
        EXPECT_EQ(queue_ids(q), std::vector<std::string>{"000000000000000B"});
        // stop() writes what is still buffered.
        LogEvent last("deliver");
        last.set("queue_id", "000000000000000B").set("recipient", "c@y.example");
        log.write(last);
        feed.stop();
        log.set_sink(nullptr);
    }
    TrackingQuery q;
    q.recipient = "c@y.example";
    EXPECT_EQ(queue_ids(q), std::vector<std::string>{"000000000000000B"});
    writer.stop();
}

TEST(TrackingTimes, Rfc3339AndTimesAgo) {
    EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), 0);
    EXPECT_EQ(parse_rfc3339("2026-11-26T02:36:11.123Z"), t0 + (36 * 60 + 11) * second + 123000);
    EXPECT_EQ(parse_rfc3339("2026-11-26T03:00:00+01:00"), t0);
    EXPECT_EQ(parse_rfc3339("2026-11-26t02:00z"), t0);
    EXPECT_EQ(parse_rfc3339("2026-11-26"), t0 - 2 * 3600 * second);
    for (const char* bad : {"", "2026-11-26T", "2026-13-01", "2026-02-30", "2026-11-26T25:00:00Z",
                            "2026-11-26T02:00:00Zjunk", "yesterday", "1h"})
        EXPECT_FALSE(parse_rfc3339(bad)) << bad;
    EXPECT_EQ(parse_log_time("1h", t0), t0 - 3600 * second);
    EXPECT_EQ(parse_log_time("30m", t0), t0 - 1800 * second);
    EXPECT_EQ(parse_log_time("2026-11-26T02:00:00Z", 0), t0);
    EXPECT_FALSE(parse_log_time("soon", t0));
}

TEST(TrackingText, OneMailLogLinePerEventUnderAHeader) {
    const auto deliver = outcome("deliver", "0006612516F0C001", t0 + (36 * 60 + 11) * second + 123000,
                                 "bob@rockerduck.example", 250, "2.0.0", "ok", 1);
    EXPECT_EQ(tracking_event_line(deliver),
              "2026-11-26T02:36:11.123Z 0006612516F0C001 deliver <bob@rockerduck.example> via "
              "inbound.rockerduck.example mx1.rockerduck.example[127.0.0.2]:25 tls=no 250 2.0.0 ok (attempt 1, 0.41s)");
    const auto rcv = receive("0006612516F0C001", t0, "alice@example.org", {"bob@rockerduck.example"}, "m@x");
    EXPECT_EQ(tracking_event_line(rcv),
              "2026-11-26T02:00:00.000Z 0006612516F0C001 receive from <alice@example.org> to "
              "<bob@rockerduck.example> client 127.0.0.1 helo client.test tls=no size 612");
    json::object hold{{"event", "hold"}, {"time", format_rfc3339(t0)}, {"queue_id", "0006612516F0C001"},
                      {"by", "admin"}};
    EXPECT_EQ(tracking_event_line(hold), "2026-11-26T02:00:00.000Z 0006612516F0C001 hold by=admin");

    TrackedMessage m{"0006612516F0C001", "m@x", "alice@example.org", t0, t0, {json::serialize(rcv),
                                                                            json::serialize(deliver)}};
    const std::string text = tracking_text({m, m});
    EXPECT_EQ(text.substr(0, text.find('\n')), "0006612516F0C001 message-id=<m@x> from=<alice@example.org>");
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 7);  // 2 x (header + 2 events) + a blank line
    const auto doc = json::parse(tracking_json({m})).as_object();
    ASSERT_EQ(doc.at("events").as_array().size(), 2u);
    EXPECT_EQ(doc.at("events").as_array()[1].as_object(), deliver);
}

}  // namespace
}  // namespace edgerelay::queue
