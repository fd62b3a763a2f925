// Envelope encoding, time and state names, queue ids and the spool error category.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <set>
#include <thread>

#include "queue/envelope.h"
#include "queue/queue_id.h"
#include "queue/spool_error.h"

namespace edgerelay::queue {
namespace {

Envelope full_envelope(std::size_t recipients) {
    Envelope e;
    e.queue_id = "0006123456789ABC";
    e.arrival = 1795660571123456;
    e.sender = std::string("j\xC3\xB6rg@b\xC3\xBC" "cher.example");  // UTF-8 (SMTPUTF8)
    for (std::size_t i = 0; i < recipients; ++i) {
        Recipient r;
        r.address = "user" + std::to_string(i) + "@rockerduck.example";
        r.state = static_cast<RecipientState>(i % 4);
        r.attempts = static_cast<std::uint32_t>(i * 7);
        r.last_reply = i % 3 ? "451 4.3.0 try later #" + std::to_string(i) : "";
        r.last_attempt = 1795660571000000 + static_cast<UnixMicros>(i);
        e.recipients.push_back(r);
    }
    e.message_id = std::string("id\0with\xFFnul@x", 13);  // binary bytes survive
    e.client_ip = "2001:db8::1";
    e.helo = "mail.client.example";
    e.tls = true;
    e.smtputf8 = true;
    e.eight_bit_mime = false;
    e.size = 4096;
    e.state = MessageState::deferred;
    e.attempts = 3;
    e.next_attempt = 1795660631123456;
    e.last_reply = "421 4.4.2 \xE2\x9C\x89 gone";
    e.delay_warning_sent = true;
    e.is_bounce = false;
    return e;
}

void expect_equal(const Envelope& a, const Envelope& b) {
    EXPECT_EQ(a.queue_id, b.queue_id);
    EXPECT_EQ(a.arrival, b.arrival);
    EXPECT_EQ(a.sender, b.sender);
    ASSERT_EQ(a.recipients.size(), b.recipients.size());
    for (std::size_t i = 0; i < a.recipients.size(); ++i) {
        EXPECT_EQ(a.recipients[i].address, b.recipients[i].address) << i;
        EXPECT_EQ(a.recipients[i].state, b.recipients[i].state) << i;
        EXPECT_EQ(a.recipients[i].attempts, b.recipients[i].attempts) << i;
        EXPECT_EQ(a.recipients[i].last_reply, b.recipients[i].last_reply) << i;
        EXPECT_EQ(a.recipients[i].last_attempt, b.recipients[i].last_attempt) << i;
    }
    EXPECT_EQ(a.message_id, b.message_id);
    EXPECT_EQ(a.client_ip, b.client_ip);
    EXPECT_EQ(a.helo, b.helo);
    EXPECT_EQ(a.tls, b.tls);
    EXPECT_EQ(a.smtputf8, b.smtputf8);
    EXPECT_EQ(a.eight_bit_mime, b.eight_bit_mime);
    EXPECT_EQ(a.size, b.size);
    EXPECT_EQ(a.state, b.state);
    EXPECT_EQ(a.attempts, b.attempts);
    EXPECT_EQ(a.next_attempt, b.next_attempt);
    EXPECT_EQ(a.last_reply, b.last_reply);
    EXPECT_EQ(a.delay_warning_sent, b.delay_warning_sent);
    EXPECT_EQ(a.is_bounce, b.is_bounce);
}

TEST(EnvelopeEncoding, RoundTripsEveryField) {
    const auto e = full_envelope(3);
    const auto bytes = encode_envelope(e);
    EXPECT_EQ(bytes[0], '\x01');  // version byte first
    const auto d = decode_envelope(bytes);
    ASSERT_TRUE(d);
    expect_equal(e, *d);
}

TEST(EnvelopeEncoding, RoundTripsManyRecipients) {
    const auto e = full_envelope(5000);
    const auto d = decode_envelope(encode_envelope(e));
    ASSERT_TRUE(d);
    expect_equal(e, *d);
}

TEST(EnvelopeEncoding, RoundTripsDefaultsAndNullSender) {
    Envelope e;
    e.queue_id = "0000000000000001";
    const auto d = decode_envelope(encode_envelope(e));
    ASSERT_TRUE(d);
    expect_equal(e, *d);
    EXPECT_TRUE(d->sender.empty());
    EXPECT_TRUE(d->recipients.empty());
}

TEST(EnvelopeEncoding, RoundTripsEveryFlagAndStateAlone) {
    for (int bit = 0; bit < 5; ++bit) {
        Envelope e;
        e.tls = bit == 0;
        e.smtputf8 = bit == 1;
        e.eight_bit_mime = bit == 2;
        e.delay_warning_sent = bit == 3;
        e.is_bounce = bit == 4;
        const auto d = decode_envelope(encode_envelope(e));
        ASSERT_TRUE(d);
        expect_equal(e, *d);
    }
    for (auto s : {MessageState::ready, MessageState::deferred, MessageState::held}) {
        Envelope e;
        e.state = s;
        const auto d = decode_envelope(encode_envelope(e));
        ASSERT_TRUE(d);
        EXPECT_EQ(d->state, s);
    }
}

TEST(EnvelopeEncoding, RoundTripsExtremeIntegers) {
    Envelope e = full_envelope(2);
    e.arrival = std::numeric_limits<std::int64_t>::min();
    e.next_attempt = std::numeric_limits<std::int64_t>::max();
    e.size = std::numeric_limits<std::uint64_t>::max();
    e.attempts = std::numeric_limits<std::uint32_t>::max();
    e.recipients[0].attempts = std::numeric_limits<std::uint32_t>::max();
    e.recipients[0].last_attempt = -1;
    e.recipients[1].last_attempt = std::numeric_limits<std::int64_t>::min();
    const auto d = decode_envelope(encode_envelope(e));
    ASSERT_TRUE(d);
    expect_equal(e, *d);
}

TEST(EnvelopeEncoding, RoundTripsLargeBinaryStrings) {
    Envelope e = full_envelope(1);
    e.last_reply.clear();
    for (int i = 0; i < 70000; ++i) e.last_reply.push_back(static_cast<char>(i * 31));
    e.recipients[0].address = std::string(300, '\0');
    const auto d = decode_envelope(encode_envelope(e));
    ASSERT_TRUE(d);
    expect_equal(e, *d);
}

TEST(EnvelopeEncoding, EncodeIntoBufferMatchesAndReusesIt) {
    const auto e = full_envelope(4);
    std::string buf = "left over";
    encode_envelope(e, buf);
    EXPECT_EQ(buf, encode_envelope(e));
    encode_envelope(Envelope{}, buf);
    EXPECT_EQ(buf, encode_envelope(Envelope{}));
}

TEST(EnvelopeEncoding, TruncatedAtEveryLengthIsRejected) {
    const auto bytes = encode_envelope(full_envelope(20));
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        // A copy of exactly n bytes, so a sanitizer sees any read past the end.
        const std::string prefix = bytes.substr(0, n);
        EXPECT_FALSE(decode_envelope(prefix)) << "length " << n;
    }
    EXPECT_TRUE(decode_envelope(bytes));
}

TEST(EnvelopeEncoding, TrailingBytesAndUnknownVersionsAreRejected) {
    auto bytes = encode_envelope(full_envelope(2));
    EXPECT_FALSE(decode_envelope(bytes + '\0'));
    bytes[0] = 2;
    EXPECT_FALSE(decode_envelope(bytes));
    bytes[0] = 0;
    EXPECT_FALSE(decode_envelope(bytes));
    EXPECT_FALSE(decode_envelope(""));
}

TEST(EnvelopeEncoding, BadStatesAndFlagsAreRejected) {
    Envelope e;  // all strings empty: the layout is easy to find
    auto bytes = encode_envelope(e);
    // version, queue_id len, arrival, sender len, n_recipients, message_id, client_ip,
    // helo, flags, size, state, attempts, next_attempt, last_reply
    ASSERT_EQ(bytes.size(), 14u);
    auto bad = bytes;
    bad[8] = static_cast<char>(0x20);  // unknown flag
    EXPECT_FALSE(decode_envelope(bad));
    bad = bytes;
    bad[10] = 3;  // no such message state
    EXPECT_FALSE(decode_envelope(bad));
    bad = bytes;
    bad[10] = 2;
    EXPECT_TRUE(decode_envelope(bad));
}

TEST(EnvelopeEncoding, HugeCountsAndLengthsAreRejectedWithoutAllocating) {
    // version, empty queue id, arrival 0, empty sender, then a recipient count of 2^63.
    std::string bytes("\x01\x00\x00\x00", 4);
    bytes.append("\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x7F");
    bytes.append(20, '\0');
    EXPECT_FALSE(decode_envelope(bytes));
    // A string length far beyond the input.
    EXPECT_FALSE(decode_envelope(std::string("\x01\xFF\xFF\xFF\xFF\x0F", 6)));
    // An over-long varint (eleven bytes) and one overflowing 64 bits.
    EXPECT_FALSE(decode_envelope(std::string("\x01\x00", 2) + std::string(10, '\xFF') + '\x01'));
    EXPECT_FALSE(decode_envelope(std::string("\x01\x00\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x02", 12)));
    // Attempts over 32 bits.
    Envelope e;
    auto ok = encode_envelope(e);
    std::string big = ok.substr(0, 11) + "\x80\x80\x80\x80\x10" + ok.substr(12);
    EXPECT_FALSE(decode_envelope(big));
}

TEST(EnvelopeEncoding, SurvivesEverySingleByteMutationAndRandomGarbage) {
    const auto bytes = encode_envelope(full_envelope(3));
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        for (int v = 0; v < 256; ++v) {
            std::string m = bytes;
            m[i] = static_cast<char>(v);
            (void)decode_envelope(m);  // any answer but a crash or an over-read
        }
    }
    std::mt19937_64 rng(42);
    for (int round = 0; round < 20000; ++round) {
        std::string g(rng() % 200, '\0');
        for (auto& c : g) c = static_cast<char>(rng());
        if (!g.empty() && round % 2) g[0] = 1;  // get past the version check half the time
        (void)decode_envelope(g);
    }
}

TEST(Time, FormatsRfc3339Utc) {
    EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(format_rfc3339(1795660571123456), "2026-11-26T02:36:11.123Z");
    EXPECT_EQ(format_rfc3339(951868799999999), "2000-02-29T23:59:59.999Z");
    EXPECT_EQ(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
}

TEST(Time, NowIsMicrosecondsSinceEpoch) {
    const auto t = now_micros();
    EXPECT_GT(t, 1'600'000'000'000'000);  // after 2020
    EXPECT_LT(t, 4'000'000'000'000'000);
    EXPECT_LE(t, now_micros());
}

TEST(States, NamesRoundTrip) {
    EXPECT_EQ(to_string(MessageState::ready), "ready");
    EXPECT_EQ(to_string(MessageState::deferred), "deferred");
    EXPECT_EQ(to_string(MessageState::held), "held");
    EXPECT_EQ(to_string(RecipientState::pending), "pending");
    EXPECT_EQ(to_string(RecipientState::delivered), "delivered");
    EXPECT_EQ(to_string(RecipientState::deferred), "deferred");
    EXPECT_EQ(to_string(RecipientState::bounced), "bounced");
    for (auto s : {MessageState::ready, MessageState::deferred, MessageState::held})
        EXPECT_EQ(message_state_from_string(to_string(s)), s);
    EXPECT_FALSE(message_state_from_string("Ready"));
    EXPECT_FALSE(message_state_from_string(""));
    EXPECT_FALSE(message_state_from_string("bounced"));
}

bool is_queue_id(const std::string& id) {
    return id.size() == 16 &&
           std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); });
}

TEST(QueueId, SixteenUpperHexDigitsIncreasingWithTime) {
    const auto before = now_micros();
    std::string last = new_queue_id();
    ASSERT_TRUE(is_queue_id(last)) << last;
    EXPECT_GE(std::stoull(last, nullptr, 16), static_cast<unsigned long long>(before));
    for (int i = 0; i < 100000; ++i) {
        auto id = new_queue_id();
        ASSERT_TRUE(is_queue_id(id)) << id;
        ASSERT_LT(last, id);  // string order is numeric order: fixed width
        last = std::move(id);
    }
}

TEST(QueueId, UniqueAcrossThreads) {
    constexpr int threads = 4, per_thread = 20000;
    std::vector<std::vector<std::string>> ids(threads);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t)
        workers.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) ids[t].push_back(new_queue_id());
        });
    for (auto& w : workers) w.join();
    std::set<std::string> all;
    for (const auto& v : ids) {
        EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
        all.insert(v.begin(), v.end());
    }
    EXPECT_EQ(all.size(), static_cast<std::size_t>(threads * per_thread));
}

TEST(SpoolErrorCategory, NamesAndMessages) {
    std::error_code ec = SpoolError::full;
    EXPECT_STREQ(ec.category().name(), "edgerelay.spool");
    EXPECT_EQ(ec, SpoolError::full);
    EXPECT_NE(ec, SpoolError::io);
    EXPECT_EQ(ec.message(), "spool full");
    EXPECT_FALSE(std::error_code(SpoolError::ok));
    for (auto e : {SpoolError::io, SpoolError::not_found, SpoolError::corrupt, SpoolError::closed})
        EXPECT_FALSE(std::error_code(e).message().empty());
}

}  // namespace
}  // namespace edgerelay::queue
