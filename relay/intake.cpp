// Received: and Message-ID: for accepted messages.
#include "relay/intake.h"

namespace edgerelay::relay {

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
    h += queue::format_rfc5322(info.time);
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
