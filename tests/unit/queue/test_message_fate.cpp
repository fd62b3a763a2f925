// Recording outcomes: recipient states, retry time, removal when final, DSNs,
// expiry and the one delay warning.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "queue/message_fate.h"
#include "queue/queue_id.h"
#include "queue/spool.h"

namespace edgerelay::queue {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class MessageFateTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string pattern = "/tmp/edgerelay-fate-XXXXXX";
        ASSERT_NE(mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
        spool_ = std::make_unique<Spool>((dir_ / "spool").string(), 64ull << 20, Spool::Mode::read_write);
        policy_.retry_initial = 60s;
        policy_.retry_max = 15min;
        policy_.max_lifetime = 5 * 24h;
        policy_.delay_warning = 4h;
        policy_.hostname = "edge.test";
        policy_.postmaster = "MAILER-DAEMON@edge.test";
    }
    void TearDown() override {
        spool_.reset();
        fs::remove_all(dir_);
    }

    Envelope queue_message(const std::string& sender, std::vector<std::string> recipients, UnixMicros arrival) {
        Envelope env;
        env.queue_id = new_queue_id();
        env.arrival = arrival;
        env.sender = sender;
        env.message_id = "m1@client.example";
        for (auto& r : recipients) env.recipients.push_back(Recipient{r});
        EXPECT_FALSE(spool_->write([&](SpoolWriteTxn& txn) { return txn.put_message(env, content_); }));
        return env;
    }

    FateDecision record(const Envelope& env, std::vector<RecipientOutcome> outcomes, UnixMicros now,
                        std::string* dsn_id_out = nullptr) {
        FateDecision decision;
        const std::string dsn_id = new_queue_id();
        if (dsn_id_out) *dsn_id_out = dsn_id;
        EXPECT_FALSE(spool_->write([&](SpoolWriteTxn& txn) {
            return record_outcomes(txn, env.queue_id, outcomes, policy_, now, 7, content_, dsn_id, decision);
        }));
        return decision;
    }

    fs::path dir_;
    std::unique_ptr<Spool> spool_;
    FatePolicy policy_;
    std::string content_ = "Subject: hello\r\nMessage-ID: <m1@client.example>\r\n\r\nbody\r\n";
};

TEST_F(MessageFateTest, DeferralKeepsTheMessageWithABackoff) {
    const UnixMicros t0 = 1'000'000'000'000'000;
    auto env = queue_message("s@senders.example", {"a@d.example", "b@d.example"}, t0);
    auto d = record(env, {{"a@d.example", RecipientState::deferred, "451 4.3.0 try later"},
                          {"b@d.example", RecipientState::delivered, "250 2.0.0 ok"}},
                    t0 + 1'000'000);
    ASSERT_TRUE(d.found);
    EXPECT_FALSE(d.done);
    EXPECT_FALSE(d.dsn);
    const auto stored = spool_->find_envelope(env.queue_id);
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->state, MessageState::deferred);
    EXPECT_EQ(stored->attempts, 1u);
    EXPECT_EQ(stored->recipients[0].state, RecipientState::deferred);
    EXPECT_EQ(stored->recipients[0].last_reply, "451 4.3.0 try later");
    EXPECT_EQ(stored->recipients[0].attempts, 1u);
    EXPECT_EQ(stored->recipients[1].state, RecipientState::delivered);
    // retry_initial 60 s, jittered into [45 s, 60 s].
    const auto wait = stored->next_attempt - (t0 + 1'000'000);
    EXPECT_GE(wait, 45'000'000);
    EXPECT_LE(wait, 60'000'000);
}

TEST_F(MessageFateTest, AllFinalRemovesTheMessageAndBouncesGoToTheSender) {
    const UnixMicros t0 = now_micros();
    auto env = queue_message("s@senders.example", {"a@d.example", "b@d.example"}, t0);
    std::string dsn_id;
    auto d = record(env, {{"a@d.example", RecipientState::bounced, "550 5.1.1 no such user", "", "mx.d.example"},
                          {"b@d.example", RecipientState::delivered, "250 ok"}},
                    t0 + 1000, &dsn_id);
    EXPECT_TRUE(d.done);
    EXPECT_FALSE(spool_->find_envelope(env.queue_id));
    ASSERT_TRUE(d.dsn);
    EXPECT_EQ(d.dsn_kind, "failure");
    const auto dsn = spool_->find_envelope(dsn_id);
    ASSERT_TRUE(dsn);
    EXPECT_EQ(dsn->sender, "");
    EXPECT_TRUE(dsn->is_bounce);
    ASSERT_EQ(dsn->recipients.size(), 1u);
    EXPECT_EQ(dsn->recipients[0].address, "s@senders.example");
    const auto body = spool_->find_content(dsn_id);
    ASSERT_TRUE(body);
    EXPECT_NE(body->find("Final-Recipient: rfc822; a@d.example"), std::string::npos);
    EXPECT_NE(body->find("Status: 5.1.1"), std::string::npos);
    EXPECT_NE(body->find("Subject: hello"), std::string::npos);
    EXPECT_EQ(body->find("Final-Recipient: rfc822; b@d.example"), std::string::npos);
}

TEST_F(MessageFateTest, NullSenderAndReportsNeverBounce) {
    const UnixMicros t0 = now_micros();
    auto env = queue_message("", {"a@d.example"}, t0);
    auto d = record(env, {{"a@d.example", RecipientState::bounced, "550 5.1.1 no"}}, t0 + 1);
    EXPECT_TRUE(d.done);
    EXPECT_FALSE(d.dsn);
    EXPECT_EQ(spool_->stats().messages, 0u);
}

TEST_F(MessageFateTest, FinalRecipientsAreNotChangedAgain) {
    const UnixMicros t0 = now_micros();
    auto env = queue_message("s@senders.example", {"a@d.example", "b@d.example"}, t0);
    record(env, {{"a@d.example", RecipientState::delivered, "250 ok"}}, t0 + 1);
    // A late duplicate outcome for a delivered recipient must not undo it.
    record(env, {{"a@d.example", RecipientState::bounced, "550 5.1.1 no"}}, t0 + 2);
    const auto stored = spool_->find_envelope(env.queue_id);
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->recipients[0].state, RecipientState::delivered);
    EXPECT_EQ(stored->recipients[0].attempts, 1u);
}

TEST_F(MessageFateTest, ExpiryBouncesWhatIsLeftWith447) {
    const UnixMicros t0 = now_micros() - 6ll * 24 * 3600 * 1'000'000;  // older than 5 days
    auto env = queue_message("s@senders.example", {"a@d.example"}, t0);
    std::string dsn_id;
    auto d = record(env, {{"a@d.example", RecipientState::deferred, "451 4.3.0 later"}}, now_micros(), &dsn_id);
    EXPECT_TRUE(d.done);
    EXPECT_EQ(d.expired, (std::vector<std::string>{"a@d.example"}));
    ASSERT_TRUE(d.dsn);
    const auto body = spool_->find_content(dsn_id);
    ASSERT_TRUE(body);
    EXPECT_NE(body->find("Status: 4.4.7"), std::string::npos);
    EXPECT_NE(body->find("Action: failed"), std::string::npos);
}

TEST_F(MessageFateTest, DelayWarningIsSentOnce) {
    const UnixMicros t0 = now_micros() - 5ll * 3600 * 1'000'000;  // 5 hours old
    auto env = queue_message("s@senders.example", {"a@d.example"}, t0);
    std::string dsn_id;
    auto first = record(env, {{"a@d.example", RecipientState::deferred, "451 4.3.0 later"}}, now_micros(), &dsn_id);
    EXPECT_FALSE(first.done);
    ASSERT_TRUE(first.dsn);
    EXPECT_EQ(first.dsn_kind, "delay");
    const auto body = spool_->find_content(dsn_id);
    ASSERT_TRUE(body);
    EXPECT_NE(body->find("Action: delayed"), std::string::npos);
    auto second = record(env, {{"a@d.example", RecipientState::deferred, "451 4.3.0 later"}}, now_micros());
    EXPECT_FALSE(second.dsn);
    EXPECT_TRUE(spool_->find_envelope(env.queue_id)->delay_warning_sent);
}

TEST_F(MessageFateTest, AMessageDeletedMeanwhileIsNotRecreated) {
    const UnixMicros t0 = now_micros();
    auto env = queue_message("s@senders.example", {"a@d.example"}, t0);
    ASSERT_FALSE(spool_->write([&](SpoolWriteTxn& txn) { return txn.remove_message(env.queue_id); }));
    auto d = record(env, {{"a@d.example", RecipientState::deferred, "451 later"}}, t0 + 1);
    EXPECT_FALSE(d.found);
    EXPECT_FALSE(spool_->find_envelope(env.queue_id));
}

TEST(StatusOfReply, EnhancedCodeOrClassDefault) {
    EXPECT_EQ(status_of_reply("550 5.1.1 no such user"), "5.1.1");
    EXPECT_EQ(status_of_reply("451 4.3.0 later"), "4.3.0");
    EXPECT_EQ(status_of_reply("550 no such user"), "5.0.0");
    EXPECT_EQ(status_of_reply("421 5.1.1 mismatched class"), "4.0.0");
    EXPECT_EQ(status_of_reply("connect to 127.0.0.2:25: Connection refused"), "4.0.0");
}

}  // namespace
}  // namespace edgerelay::queue
