// Route controls in the spool: stored, read back by a read-only reader, removed when
// back to defaults, and damaged records ignored rather than fatal.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "queue/queue_census.h"
#include "queue/route_control.h"

namespace edgerelay::queue {
namespace {

namespace fs = std::filesystem;

class RouteControlTest : public ::testing::Test {
protected:
    void SetUp() override {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/edgerelay-controls-XXXXXX";
        ASSERT_NE(mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
        spool_ = std::make_unique<Spool>((dir_ / "spool").string(), 64ull << 20, Spool::Mode::read_write);
    }
    void TearDown() override {
        spool_.reset();
        fs::remove_all(dir_);
    }
    void store(const std::string& domain, const RouteControl& c) {
        ASSERT_FALSE(spool_->write([&](SpoolWriteTxn& txn) { return store_route_control(txn, domain, c); }));
    }
    fs::path dir_;
    std::unique_ptr<Spool> spool_;
};

TEST_F(RouteControlTest, StoredControlsReadBackAlsoReadOnly) {
    store("dallas.example", {true, false, ""});
    store("la.example", {false, true, "[127.0.0.3]:25"});
    const Spool reader((dir_ / "spool").string(), 0, Spool::Mode::read_only);
    const auto controls = load_route_controls(reader);
    ASSERT_EQ(controls.size(), 2u);
    EXPECT_TRUE(controls.at("dallas.example").held);
    EXPECT_FALSE(controls.at("dallas.example").soft_bounce);
    EXPECT_TRUE(controls.at("la.example").soft_bounce);
    EXPECT_EQ(controls.at("la.example").next_hop, "[127.0.0.3]:25");
}

TEST_F(RouteControlTest, DefaultControlsAreRemoved) {
    store("dallas.example", {true, true, "x.example"});
    store("dallas.example", {});
    EXPECT_TRUE(load_route_controls(*spool_).empty());
}

TEST_F(RouteControlTest, DamagedRecordIsIgnored) {
    ASSERT_FALSE(spool_->write([](SpoolWriteTxn& txn) { return txn.put_meta("route_control:bad.example", "{not json"); }));
    store("good.example", {true, false, ""});
    const auto controls = load_route_controls(*spool_);
    EXPECT_EQ(controls.size(), 1u);
    EXPECT_TRUE(controls.count("good.example"));
}

TEST_F(RouteControlTest, SchemaVersionCannotBeOverwritten) {
    EXPECT_TRUE(spool_->write([](SpoolWriteTxn& txn) { return txn.put_meta("schema_version", "2"); }));
}

TEST(QueueCensus, CountsPendingDomainsPerStateAndOldest) {
    QueueCensus census;
    Envelope a;
    a.queue_id = "A";
    a.arrival = 2000;
    a.state = MessageState::deferred;
    a.recipients = {{"x@One.example"}, {"y@two.example"}, {"z@two.example"}};
    Envelope b;
    b.queue_id = "B";
    b.arrival = 1000;
    b.state = MessageState::held;
    b.recipients = {{"x@one.example"}, {"done@three.example", RecipientState::delivered}};
    count_envelope(census, a);
    count_envelope(census, b);
    EXPECT_EQ(census.messages, 2u);
    EXPECT_EQ(census.oldest_arrival, 1000);
    EXPECT_EQ(census.by_domain.at("one.example"), 2u);
    EXPECT_EQ(census.by_domain.at("two.example"), 1u);  // once per message, not per recipient
    EXPECT_FALSE(census.by_domain.count("three.example"));  // delivered: not queued there
    EXPECT_EQ((census.by_domain_state.at({"one.example", "held"})), 1u);
    EXPECT_EQ((census.by_domain_state.at({"one.example", "deferred"})), 1u);
}

}  // namespace
}  // namespace edgerelay::queue
