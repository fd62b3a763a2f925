// How the queue is shown to operators: filters, the JSON objects of SPEC §2 (keys are
// the snake_case of the columns) and the plain-text tables of `edgerelayctl queue`.
#pragma once

#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "queue/envelope.h"

namespace edgerelay::queue {

struct QueueFilter {
    std::string domain;                 // any recipient in this domain (case-insensitive)
    std::optional<MessageState> state;  // ready / deferred / held
    bool matches(const Envelope& envelope) const;
};

// queue_id, message_id, arrival (RFC 3339), age (seconds), sender, recipients
// [{address, state, attempts, last_reply}], state, attempts, last_reply, size.
boost::json::object envelope_json(const Envelope& envelope, UnixMicros now);
// The same plus client_ip, helo, tls and headers, for `queue show`.
boost::json::object envelope_detail_json(const Envelope& envelope, std::string_view headers, UnixMicros now);

std::string queue_list_text(const std::vector<Envelope>& envelopes, UnixMicros now);
std::string queue_show_text(const Envelope& envelope, std::string_view headers, UnixMicros now);

// The header section of stored content (up to, not including, the blank line).
std::string_view header_section(std::string_view content);
// "45s", "12m", "3h", "2d": ages as operators read them.
std::string format_age(UnixMicros age);

}  // namespace edgerelay::queue
