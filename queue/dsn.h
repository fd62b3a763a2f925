// Delivery status notifications (RFC 3464, RFC 3461 section 6): the multipart/report a
// bounce or delay warning carries back to the envelope sender.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "queue/envelope.h"

namespace edgerelay::queue {

enum class DsnKind { failure, delay };

struct DsnRecipient {
    std::string address;       // Final-Recipient: rfc822; address
    std::string status;        // "5.1.1", "4.4.1"
    std::string remote_mta;    // Remote-MTA: dns; host (empty when no host answered)
    std::string diagnostic;    // Diagnostic-Code: smtp; <the reply line>  (empty: omitted)
};

struct DsnRequest {
    DsnKind kind = DsnKind::failure;
    std::string reporting_mta;      // our hostname
    std::string postmaster;         // From: of the report, e.g. MAILER-DAEMON@hostname
    const Envelope* original = nullptr;
    std::string_view original_content;  // its headers are returned (RET=HDRS)
    std::vector<DsnRecipient> recipients;
    UnixMicros now = 0;
    std::string message_id;         // Message-ID of the report itself (no brackets)
};

// The complete report message, CRLF line ends, ready to spool (from the null sender
// to original->sender). Callers never report on a null-sender message.
std::string build_dsn(const DsnRequest& request);

}  // namespace edgerelay::queue
