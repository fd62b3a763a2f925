// What intake adds to a message before it is spooled: the Received: trace field
// (RFC 5321 4.4) at the top and a Message-ID: (RFC 5322 3.6.4) when the client sent
// none. Nothing else in the message is touched.
#pragma once

#include <string>
#include <string_view>

#include "queue/envelope.h"
#include "relay/message_headers.h"

namespace edgerelay::relay {

struct ReceivedInfo {
    std::string_view hostname;  // ours
    std::string_view helo;      // what the client said
    std::string_view client_ip;
    std::string_view protocol;  // "ESMTP", "ESMTPS", "UTF8SMTPS", ... (RFC 3848, 6531)
    std::string_view queue_id;
    std::string_view recipient;  // named in "for <...>" only when there is exactly one
    queue::UnixMicros time = 0;
};

std::string received_header(const ReceivedInfo& info);

// Builds the content to spool: Received: + the client's message, with a Message-ID:
// appended to the header section when scan found none. Returns the Message-ID that
// the message carries afterwards.
std::string spooled_content(std::string_view received, std::string_view data, const HeaderScan& scan,
                            std::string_view generated_message_id, std::string& message_id);

}  // namespace edgerelay::relay
