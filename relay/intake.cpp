// Received: and Message-ID: for accepted messages.
#include "relay/intake.h"

#include <ctime>

namespace edgerelay::relay {
namespace {

// RFC 5322 date-time, always in UTC: "Thu, 26 Nov 2026 02:36:11 +0000".
std::string rfc5322_date(queue::UnixMicros t) {
    const std::time_t seconds = static_cast<std::time_t>(t / 1000000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    return buf;
}

}  // namespace

std::string received_header(const ReceivedInfo& info) {
    std::string h;
    h.reserve(256);
    h += "Received: from ";
    h += info.helo.empty() ? std::string_view("unknown") : info.helo;
    h += " (unknown [";
    h += info.client_ip;
    h += "])\r\n\tby ";
    h += info.hostname;
    h += " (edgerelay) with ";
    h += info.protocol;
    h += " id ";
    h += info.queue_id;
    if (!info.recipient.empty()) {
        h += "\r\n\tfor <";
        h += info.recipient;
        h += ">";
    }
    h += "; ";
    h += rfc5322_date(info.time);
    h += "\r\n";
    return h;
}

std::string spooled_content(std::string_view received, std::string_view data, const HeaderScan& scan,
                            std::string_view generated_message_id, std::string& message_id) {
    std::string content;
    if (scan.has_message_id) {
        message_id = scan.message_id;
        content.reserve(received.size() + data.size());
        content += received;
        content += data;
        return content;
    }
    message_id = generated_message_id;
    const std::string field = "Message-ID: <" + message_id + ">\r\n";
    // The new field goes at the end of the header section, before the blank line.
    std::size_t at = scan.header_end;
    if (scan.has_blank_line) at -= 2;
    content.reserve(received.size() + data.size() + field.size() + 2);
    content += received;
    content += data.substr(0, at);
    content += field;
    content += data.substr(at);
    return content;
}

}  // namespace edgerelay::relay
