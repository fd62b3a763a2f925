// One delivery attempt: a message's recipients for one destination, resolved (or the
// destination's answer reused within its TTL), tried host by host over a new or kept
// SMTP session, and its outcomes recorded in the spool and the log.
//
// GCC 12 mis-resumes coroutines suspended in `if (!co_await ...)`, in `a || co_await`
// and inside switch cases, and destroys temporaries of a co_await expression twice:
// every await here takes named values and lands in a named value.
#include <algorithm>
#include <boost/asio/use_awaitable.hpp>

#include "queue/queue_id.h"
#include "relay/delivery_agent.h"
#include "relay/spool_commit.h"

namespace edgerelay::relay {

namespace asio = boost::asio;
using asio::awaitable;
using queue::RecipientState;
using queue::is_final;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(queue::UnixMicros t) { return static_cast<double>(queue::now_micros() - t) / 1e6; }

// A stored reply line ("550 5.1.1 text", or "4.4.3 text" for a local failure) as the
// log's reply_code (0: no SMTP reply) and reply_text (without the enhanced code).
std::pair<int, std::string_view> split_reply(std::string_view reply, std::string_view status) {
    int code = 0;
    if (reply.size() >= 4 && std::isdigit(static_cast<unsigned char>(reply[0])) &&
        std::isdigit(static_cast<unsigned char>(reply[1])) && std::isdigit(static_cast<unsigned char>(reply[2])) &&
        reply[3] == ' ') {
        code = (reply[0] - '0') * 100 + (reply[1] - '0') * 10 + (reply[2] - '0');
        reply.remove_prefix(4);
    }
    if (!status.empty() && reply.substr(0, status.size()) == status && reply.size() > status.size() &&
        reply[status.size()] == ' ')
        reply.remove_prefix(status.size() + 1);
    return {code, reply};
}

// An open connection to a host of the most preferred rank goes first: among equal
// preferences any order is right (RFC 5321 5.1), and this one needs no new session.
void prefer_open_connection(routing::Resolution& resolution, const std::unique_ptr<SmtpClientConnection>& connection) {
    if (!connection || !connection->usable() || resolution.hosts.empty()) return;
    const auto best = resolution.hosts.front().preference;
    for (auto host = resolution.hosts.begin(); host != resolution.hosts.end() && host->preference == best; ++host) {
        if (host->port != connection->options().port) continue;
        auto address = std::find(host->addresses.begin(), host->addresses.end(), connection->options().address);
        if (address == host->addresses.end()) continue;
        std::rotate(host->addresses.begin(), address, address + 1);
        std::rotate(resolution.hosts.begin(), host, host + 1);
        return;
    }
}

}  // namespace

// What one attempt learnt, for the log lines of its outcome.
struct DeliveryAgent::Attempt {
    std::string mx_host;
    std::string ip;
    std::uint16_t port = 0;
    bool tls = false;
    bool reached = false;  // a transaction took place (connect failures are logged apart)
};

// A new session to one address of a host; a failure is logged as an attempt for each
// recipient and kept in `failure`.
awaitable<std::unique_ptr<SmtpClientConnection>> DeliveryAgent::connect(
    const Destination& dest, const routing::TargetHost& host, const std::string& address,
    const queue::Envelope& envelope, const std::vector<std::string>& recipients, RemoteReply& failure) {
    ConnectOptions options;
    options.address = address;
    options.port = host.port;
    options.host_name = host.name;
    options.tls = dest.tls;
    options.helo_name = config_.server.hostname;
    options.connect_timeout = config_.delivery.connect_timeout;
    options.sessions = &sessions_;
    auto connection = co_await SmtpClientConnection::open(io_.get_executor(), *tls_, options, failure);
    if (connection) co_return connection;
    for (const auto& r : recipients) {
        const auto stored = std::find_if(envelope.recipients.begin(), envelope.recipients.end(),
                                         [&](const queue::Recipient& x) { return x.address == r; });
        const unsigned attempt_number = (stored == envelope.recipients.end() ? 0u : stored->attempts) + 1;
        queue::LogEvent event("attempt");
        event.set("queue_id", envelope.queue_id).set("message_id", envelope.message_id).set("recipient", r)
            .set("next_hop", dest.next_hop.to_string()).set("mx_host", host.name).set("ip", address)
            .set("port", static_cast<unsigned>(host.port)).set("tls", false).set("reply_code", failure.code)
            .set("enhanced_code", failure.enhanced).set("reply_text", failure.text)
            .set("attempt", attempt_number).set("delay", seconds_since(envelope.arrival));
        log_.write(event);
    }
    co_return nullptr;
}

awaitable<bool> DeliveryAgent::deliver_one(Destination& dest, const std::string& queue_id,
                                           std::unique_ptr<SmtpClientConnection>& connection, bool probe) {
    const auto envelope = spool_.find_envelope(queue_id);
    if (!envelope || envelope->state == queue::MessageState::held) co_return false;
    std::vector<std::string> recipients;
    for (const auto& r : envelope->recipients)
        if (!is_final(r.state) && queue::destination_of(r.address) == dest.domain) recipients.push_back(r.address);
    if (recipients.empty()) co_return false;
    if (dest.down && !probe && park(dest, *envelope)) co_return false;
    const std::string content = spool_.find_content(queue_id).value_or(std::string());
    Attempt attempt;
    std::vector<queue::RecipientOutcome> outcomes;
    auto all = [&](RecipientState state, const std::string& reply, const std::string& status) {
        outcomes.clear();
        for (const auto& address : recipients) outcomes.push_back({address, state, reply, status, attempt.mx_host});
    };

    if (dest.down && !probe) {
        // Postfix's "delivery temporarily suspended": no connection to a dead site; the
        // record lets expiry or the delay warning happen.
        all(RecipientState::deferred, "delivery temporarily suspended: " + dest.down_reason, "4.4.1");
        co_await record(dest, *envelope, content, std::move(outcomes), attempt);
        co_return false;
    }

    // Within the answer's TTL the destination's own copy serves (a cross-thread trip to
    // libunbound per message cost more than the rest of the attempt); equal preferences
    // are shuffled again for every attempt all the same.
    routing::Resolution resolution;
    if (dest.resolution && Clock::now() < dest.records_expire) {
        resolution = *dest.resolution;
        routing::shuffle_equal_preferences(resolution.hosts, random_);
    } else {
        resolution = co_await routing::resolve_next_hop(dns_, dest.next_hop, config_.delivery.port, self_, random_);
        note_resolution(dest, resolution);
    }
    if (resolution.outcome != routing::Resolution::Outcome::ok) {
        const bool permanent =
            resolution.outcome == routing::Resolution::Outcome::permanent_failure && !dest.soft_bounce;
        if (resolution.enhanced_status == "4.4.6") log_route(dest, "misconfigured", resolution.error);
        // No SMTP reply exists: the stored reply is the status and what DNS said.
        all(permanent ? RecipientState::bounced : RecipientState::deferred,
            resolution.enhanced_status + " " + resolution.error, resolution.enhanced_status);
        co_await record(dest, *envelope, content, std::move(outcomes), attempt);
        co_return false;
    }

    prefer_open_connection(resolution, connection);
    Transaction transaction{envelope->sender, recipients, content, envelope->eight_bit_mime, envelope->smtputf8};
    RemoteReply last_failure{0, "", "no address to try", };
    bool reached = false;
    std::optional<TransactionResult> result;
    for (const auto& host : resolution.hosts) {
        if (stopping_) break;  // no new sessions once the daemon stops
        for (const auto& address : host.addresses) {
            if (stopping_) break;
            attempt = Attempt{host.name, address, host.port, false};
            bool reuse = connection && connection->usable() && connection->options().address == address &&
                         connection->options().port == host.port;
            for (int tries = 0; tries < 2 && !reached; ++tries) {
                if (!reuse) {
                    if (connection) co_await connection->quit();
                    connection = co_await connect(dest, host, address, *envelope, recipients, last_failure);
                    if (!connection) break;  // the next address
                }
                attempt.tls = connection->tls_active();
                auto sent = co_await connection->send(transaction);
                const bool dropped = std::all_of(sent.recipient_replies.begin(), sent.recipient_replies.end(),
                                                 [](const RemoteReply& r) { return r.code == 0; });
                if (reuse && dropped) {
                    // A kept connection the server had closed meanwhile: once more, fresh.
                    reuse = false;
                    continue;
                }
                result = std::move(sent);
                reached = true;
                attempt.reached = true;
                if (!result->connection_reusable) {
                    co_await connection->quit();
                    connection.reset();
                }
            }
            if (reached) break;
        }
        if (reached) break;
    }

    // Stopping: the sessions were ended on purpose (no reply came back); the message
    // stays as it was and is tried again as soon as the daemon restarts.
    if (stopping_ && (!reached || std::all_of(result->recipient_replies.begin(), result->recipient_replies.end(),
                                              [](const RemoteReply& r) { return r.code == 0; })))
        co_return false;
    if (!reached) {
        all(RecipientState::deferred, last_failure.line(), last_failure.enhanced.empty() ? "4.4.1" : last_failure.enhanced);
        mark_down(dest, last_failure.line());
    } else {
        outcomes.clear();
        for (std::size_t i = 0; i < recipients.size(); ++i) {
            const RemoteReply& reply = i < result->recipient_replies.size() ? result->recipient_replies[i]
                                                                           : RemoteReply{0, "", "no reply"};
            // Soft bounce (Postfix's soft_bounce, per route): a 5xx waits for the site to
            // come to its senses instead of bouncing while it is unstable.
            const RecipientState state = reply.positive()                        ? RecipientState::delivered
                                         : reply.permanent() && !dest.soft_bounce ? RecipientState::bounced
                                                                                  : RecipientState::deferred;
            outcomes.push_back({recipients[i], state, reply.line(), reply.enhanced, attempt.mx_host});
        }
    }
    co_await record(dest, *envelope, content, std::move(outcomes), attempt);
    co_return reached;
}

awaitable<void> DeliveryAgent::record(Destination& dest, const queue::Envelope& before, const std::string& content,
                                      std::vector<queue::RecipientOutcome> outcomes, const Attempt& attempt) {
    auto decision = std::make_shared<queue::FateDecision>();
    const std::string dsn_id = queue::new_queue_id();
    const auto now = queue::now_micros();
    const std::uint32_t jitter = random_();
    const std::string queue_id = before.queue_id;
    // Named, not a temporary inside co_await (GCC 12 destroys those twice).
    queue::SpoolWriter::Operation op = [&, decision](queue::SpoolWriteTxn& txn) {
        return queue::record_outcomes(txn, queue_id, outcomes, policy_, now, jitter, content, dsn_id, *decision);
    };
    const auto ec = co_await spool_write(writer_, std::move(op));
    if (ec || !decision->found) co_return;

    const char* kinds[] = {"attempt", nullptr};
    for (const auto& outcome : outcomes) {
        const auto r = std::find_if(before.recipients.begin(), before.recipients.end(),
                                    [&](const queue::Recipient& x) { return x.address == outcome.address; });
        const unsigned attempt_number = (r == before.recipients.end() ? 0u : r->attempts) + 1;
        const bool expired = std::find(decision->expired.begin(), decision->expired.end(), outcome.address) !=
                             decision->expired.end();
        kinds[1] = outcome.state == RecipientState::delivered ? "deliver"
                   : outcome.state == RecipientState::bounced ? "bounce"
                   : expired                                  ? "expire"
                                                              : "defer";
        const auto [code, text] = split_reply(outcome.reply, outcome.status);
        const std::string status = expired ? std::string("4.4.7") : outcome.status;
        for (const char* kind : kinds) {
            if (kind == kinds[0] && !attempt.reached) continue;
            queue::LogEvent event(kind);
            event.set("queue_id", queue_id).set("message_id", before.message_id).set("recipient", outcome.address)
                .set("next_hop", dest.next_hop.to_string()).set("mx_host", attempt.mx_host).set("ip", attempt.ip)
                .set("port", static_cast<unsigned>(attempt.port)).set("tls", attempt.tls).set("reply_code", code)
                .set("enhanced_code", kind == kinds[0] ? outcome.status : status)
                .set("reply_text", text)
                .set("attempt", attempt_number).set("delay", seconds_since(before.arrival));
            if (decision->dsn && std::string_view(kind) == "bounce") event.set("dsn_queue_id", decision->dsn->queue_id);
            log_.write(event);
        }
    }
    for (const auto& address : decision->expired) {
        if (std::any_of(outcomes.begin(), outcomes.end(), [&](const auto& o) { return o.address == address; }))
            continue;
        queue::LogEvent event("expire");
        event.set("queue_id", queue_id).set("message_id", before.message_id).set("recipient", address)
            .set("delay", seconds_since(before.arrival));
        log_.write(event);
    }
    log_dsn(*decision, before);
    if (!decision->done) {
        scheduler_.schedule(queue_id, decision->envelope.next_attempt, queue::pending_destinations(decision->envelope));
        wake_timer();
        ensure_watch(dest);
    }
}

// A DSN queued with an outcome is a message received from ourselves; it is delivered
// like any other.
void DeliveryAgent::log_dsn(const queue::FateDecision& decision, const queue::Envelope& about) {
    if (!decision.dsn) return;
    queue::LogEvent event("receive");
    event.set("queue_id", decision.dsn->queue_id).set("message_id", decision.dsn->message_id)
        .set("client_ip", "").set("helo", "").set("tls", false).set("sender", "")
        .set("recipients", boost::json::array{boost::json::value(about.sender)})
        .set("size", decision.dsn->size).set("dsn_kind", decision.dsn_kind).set("dsn_for", about.queue_id);
    log_.write(event);
    on_queued(decision.dsn->queue_id);
}

}  // namespace edgerelay::relay
