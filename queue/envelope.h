// What the spool keeps about a message besides its content: the SMTP envelope, where
// it came from, and per-recipient delivery state. Delivery and the scheduler update
// the same record, so it has room for attempts, replies and timing from the start.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgerelay::queue {

// Times are microseconds since the Unix epoch (UTC), as stored.
using UnixMicros = std::int64_t;
UnixMicros now_micros();
std::string format_rfc3339(UnixMicros t);  // "2026-11-26T02:36:11.123Z"
std::string format_rfc5322(UnixMicros t);  // "Thu, 26 Nov 2026 02:36:11 +0000" (UTC)

enum class MessageState : std::uint8_t { ready = 0, deferred = 1, held = 2 };
enum class RecipientState : std::uint8_t { pending = 0, delivered = 1, deferred = 2, bounced = 3 };

// Delivered or bounced: nothing more will be tried for that recipient.
inline bool is_final(RecipientState s) { return s == RecipientState::delivered || s == RecipientState::bounced; }

std::string_view to_string(MessageState s);    // "ready", "deferred", "held"
std::string_view to_string(RecipientState s);  // "pending", "delivered", "deferred", "bounced"
std::optional<MessageState> message_state_from_string(std::string_view s);

struct Recipient {
    std::string address;  // as given in RCPT TO, without angle brackets
    RecipientState state = RecipientState::pending;
    std::uint32_t attempts = 0;
    std::string last_reply;  // e.g. "451 4.3.0 try later" from the next hop
    UnixMicros last_attempt = 0;
};

struct Envelope {
    std::string queue_id;
    UnixMicros arrival = 0;
    std::string sender;  // empty for the null sender <>
    std::vector<Recipient> recipients;
    std::string message_id;  // without angle brackets
    std::string client_ip;
    std::string helo;
    bool tls = false;
    bool smtputf8 = false;
    bool eight_bit_mime = false;
    std::uint64_t size = 0;  // bytes of content as stored
    MessageState state = MessageState::ready;
    std::uint32_t attempts = 0;
    UnixMicros next_attempt = 0;
    std::string last_reply;
    bool delay_warning_sent = false;
    bool is_bounce = false;  // a DSN edgerelay generated; never bounced itself
};

// Versioned binary encoding; decode returns nullopt on a damaged or unknown record.
std::string encode_envelope(const Envelope& e);
// The same into a caller's buffer (cleared first), so the spool's writer reuses one.
void encode_envelope(const Envelope& e, std::string& out);
std::optional<Envelope> decode_envelope(std::string_view bytes);

}  // namespace edgerelay::queue
