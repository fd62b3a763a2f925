// Recording delivery outcomes and deciding a message's fate, in one spool transaction:
// recipients' states, the retry time, expiry after max_lifetime, the one-time delay
// warning, the DSN for what bounced, and removal once every recipient is final. Runs
// on the spool writer's thread; it knows no SMTP.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "queue/envelope.h"
#include "queue/spool.h"

namespace edgerelay::queue {

struct RecipientOutcome {
    std::string address;
    RecipientState state = RecipientState::deferred;  // delivered, deferred or bounced
    std::string reply;       // the reply line, e.g. "550 5.1.1 no such user"
    std::string status;      // enhanced status for a DSN ("5.1.1"); derived when empty
    std::string remote_mta;  // the host that answered, for a DSN
};

struct FatePolicy {
    std::chrono::milliseconds retry_initial{60000};
    std::chrono::milliseconds retry_max{900000};
    std::chrono::milliseconds max_lifetime{std::chrono::hours(120)};
    std::chrono::milliseconds delay_warning{std::chrono::hours(4)};  // 0: never
    std::string hostname;    // Reporting-MTA of DSNs
    std::string postmaster;  // From: of DSNs
};

struct FateDecision {
    bool found = false;           // the message was still in the spool
    bool done = false;            // every recipient final: removed from the spool
    Envelope envelope;            // the envelope as written (or as it was, when done)
    std::vector<std::string> expired;  // recipients given up on now (max_lifetime)
    std::optional<Envelope> dsn;  // a DSN queued in the same transaction
    std::string dsn_kind;         // "failure" or "delay"
};

// Applies `outcomes` (recipients not named keep their state) at time `now`. `content`
// is the message (for the DSN's returned headers); `dsn_queue_id` names the DSN if one
// is made. `jitter` picks the retry time within its band. Idempotent for the same
// inputs, since the writer may run an operation again.
std::error_code record_outcomes(SpoolWriteTxn& txn, const std::string& queue_id,
                                const std::vector<RecipientOutcome>& outcomes, const FatePolicy& policy,
                                UnixMicros now, std::uint32_t jitter, std::string_view content,
                                const std::string& dsn_queue_id, FateDecision& decision);

// The enhanced status code a reply carries ("550 5.1.1 ..." -> "5.1.1"), or a default
// for its class ("5.0.0", "4.0.0").
std::string status_of_reply(std::string_view reply);

}  // namespace edgerelay::queue
