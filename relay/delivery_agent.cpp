// Delivery orchestration: scheduling, per-destination sessions, outcomes, and the
// record watch that drains deferred mail when a destination moves.
//
// GCC 12 mis-resumes coroutines suspended in `if (!co_await ...)`, in `a || co_await`
// and inside switch cases, and destroys temporaries of a co_await expression twice:
// every await here takes named values and lands in a named value.
#include "relay/delivery_agent.h"

#include <algorithm>
#include <set>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "queue/queue_id.h"
#include "relay/spool_commit.h"

namespace edgerelay::relay {

namespace asio = boost::asio;
using asio::awaitable;
using queue::RecipientState;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kDispatchBatch = 2000;
constexpr auto kWatchRetry = std::chrono::seconds(5);
// libunbound's cache counts whole seconds and may serve an answer until the second after
// its TTL (with ttl 0 meanwhile): look just after the TTL, and again every margin while
// the answer says 0, so a change is seen within about 100 ms of the cache letting go.
constexpr auto kTtlMargin = std::chrono::milliseconds(100);

bool is_final(RecipientState s) { return s == RecipientState::delivered || s == RecipientState::bounced; }

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

constexpr auto kIdleConnectionTime = std::chrono::seconds(2);

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

std::chrono::milliseconds probe_interval(const conf::DeliveryConfig& delivery) {
    return std::clamp(delivery.retry_initial / 2, std::chrono::milliseconds(1000), std::chrono::milliseconds(60000));
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

DeliveryAgent::DeliveryAgent(asio::io_context& io, const conf::Config& config, const routing::RouteTable& routes,
                             queue::Spool& spool, queue::SpoolWriter& writer, queue::EventLog& log,
                             routing::DnsResolver& dns)
    : io_(io),
      config_(config),
      routes_(routes),
      spool_(spool),
      writer_(writer),
      log_(log),
      dns_(dns),
      tls_(make_client_tls_context()),
      wake_(io),
      random_(std::random_device{}()) {
    self_ = routing::self_identity_of(config);
    policy_.retry_initial = config.delivery.retry_initial;
    policy_.retry_max = config.delivery.retry_max;
    policy_.max_lifetime = config.delivery.max_lifetime;
    policy_.delay_warning = config.delivery.delay_warning;
    policy_.hostname = config.server.hostname;
    policy_.postmaster = "MAILER-DAEMON@" + config.server.hostname;
}

DeliveryAgent::~DeliveryAgent() = default;

std::size_t DeliveryAgent::start() {
    std::size_t count = 0;
    std::set<std::string> waiting;
    controls_ = queue::load_route_controls(spool_);
    spool_.for_each_envelope([&](const queue::Envelope& env) {
        ++count;
        if (env.state == queue::MessageState::held) return true;
        // Deferred mail keeps its backoff; what was new or in flight when we stopped
        // (next_attempt in the past) goes at once.
        auto destinations = queue::pending_destinations(env);
        waiting.insert(destinations.begin(), destinations.end());
        scheduler_.schedule(env.queue_id, env.next_attempt, std::move(destinations));
        return true;
    });
    // Deferred mail follows the records from the start, not only after its next try.
    for (const auto& domain : waiting) ensure_watch(destination(domain));
    asio::co_spawn(io_, timer_loop(), asio::detached);
    return count;
}

void DeliveryAgent::stop() {
    stopping_ = true;
    wake_.cancel();
    for (auto& [name, dest] : destinations_) {
        if (dest->watch_timer) dest->watch_timer->cancel();
        if (dest->probe_timer) dest->probe_timer->cancel();
    }
}

void DeliveryAgent::on_queued(const std::string& queue_id) {
    if (!stopping_) dispatch(queue_id);
}

void DeliveryAgent::wake_timer() { wake_.cancel(); }

awaitable<void> DeliveryAgent::timer_loop() {
    while (!stopping_) {
        const auto next = scheduler_.next_due();
        if (next) {
            const auto wait = std::chrono::microseconds(std::max<queue::UnixMicros>(0, *next - queue::now_micros()));
            wake_.expires_after(wait);
        } else {
            wake_.expires_after(std::chrono::hours(24));
        }
        co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
        if (stopping_) co_return;
        for (const auto& id : scheduler_.pop_due(queue::now_micros(), kDispatchBatch)) dispatch(id);
    }
}

Destination& DeliveryAgent::destination(const std::string& domain) {
    auto& slot = destinations_[domain];
    if (!slot) {
        slot = std::make_unique<Destination>();
        slot->domain = domain;
        if (const routing::Route* route = routes_.find(domain)) {
            slot->configured_next_hop = route->next_hop;
            slot->tls = route->tls;
        } else {
            // Relayed for relay_networks: the recipient domain's own MX (SPEC §3).
            slot->configured_next_hop.host = domain;
            slot->tls = conf::TlsPolicy::may;
        }
        slot->next_hop = slot->configured_next_hop;
        // What operators set on the route, as the spool keeps it across restarts.
        if (const auto control = controls_.find(domain); control != controls_.end()) {
            slot->held = control->second.held;
            slot->soft_bounce = control->second.soft_bounce;
            if (auto parsed = routing::parse_next_hop(control->second.next_hop); parsed.next_hop) {
                slot->next_hop = *parsed.next_hop;
                slot->overridden = true;
            }
        }
    }
    return *slot;
}

void DeliveryAgent::dispatch(const std::string& queue_id) {
    const auto env = spool_.find_envelope(queue_id);
    if (!env || env->state == queue::MessageState::held) return;
    for (const auto& domain : queue::pending_destinations(*env)) {
        Destination& dest = destination(domain);
        if (!dest.queued.insert(queue_id).second) continue;  // already here
        dest.ready.push_back(queue_id);
        pump(dest);
    }
}

void DeliveryAgent::pump(Destination& dest) {
    if (stopping_ || dest.held) return;
    const unsigned limit = dest.down ? 1u : std::max(1u, config_.delivery.concurrency_per_destination);
    while (dest.active < limit && dest.active < dest.ready.size()) {
        ++dest.active;
        asio::co_spawn(io_, worker(dest, false), asio::detached);
    }
}

void DeliveryAgent::drain(Destination& dest, const char* why) {
    const bool was_down = dest.down;
    dest.down = false;
    if (was_down) log_route(dest, "up", why);
    for (const auto& id : scheduler_.pull_destination(dest.domain)) {
        // Every destination of that message gets it again; only this one is known
        // to have moved, but an early retry elsewhere costs little.
        dispatch(id);
    }
    pump(dest);
}

void DeliveryAgent::mark_down(Destination& dest, const std::string& reason) {
    dest.down_reason = reason;
    if (dest.down) return;
    dest.down = true;
    log_route(dest, "down", reason);
    if (!dest.probing) {
        dest.probing = true;
        asio::co_spawn(io_, probe_loop(dest), asio::detached);
    }
    ensure_watch(dest);
}

void DeliveryAgent::note_resolution(Destination& dest, const routing::Resolution& resolution) {
    if (resolution.outcome != routing::Resolution::Outcome::ok) {
        dest.resolution.reset();
        return;
    }
    dest.records_expire = Clock::now() + resolution.ttl;
    dest.resolution = resolution;
    const std::string hosts = resolution.host_set();
    if (dest.host_set.empty()) {
        dest.host_set = hosts;
        return;
    }
    if (hosts == dest.host_set) return;
    dest.host_set = hosts;
    log_route(dest, "changed", hosts);
    drain(dest, "records changed");
}

void DeliveryAgent::ensure_watch(Destination& dest) {
    if (dest.watching || stopping_) return;
    dest.watching = true;
    asio::co_spawn(io_, watch_records(dest), asio::detached);
}

// SPEC §4: a route with deferred mail re-resolves when its TTL runs out; a new host
// set sends that mail at once instead of at the end of each message's backoff.
awaitable<void> DeliveryAgent::watch_records(Destination& dest) {
    if (!dest.watch_timer) dest.watch_timer = std::make_unique<asio::steady_timer>(io_);
    while (!stopping_ && (dest.down || scheduler_.waiting(dest.domain) > 0)) {
        const auto at = std::max(dest.records_expire + kTtlMargin, Clock::now() + std::chrono::milliseconds(200));
        dest.watch_timer->expires_at(at);
        co_await dest.watch_timer->async_wait(asio::as_tuple(asio::use_awaitable));
        if (stopping_) break;
        const auto resolution =
            co_await routing::resolve_next_hop(dns_, dest.next_hop, config_.delivery.port, self_, random_);
        if (resolution.outcome != routing::Resolution::Outcome::ok) {
            dest.records_expire = Clock::now() + kWatchRetry;
            continue;
        }
        note_resolution(dest, resolution);
    }
    dest.watching = false;
}

// A down destination is tried with one message at a time; success drains it.
awaitable<void> DeliveryAgent::probe_loop(Destination& dest) {
    if (!dest.probe_timer) dest.probe_timer = std::make_unique<asio::steady_timer>(io_);
    while (!stopping_ && dest.down) {
        dest.probe_timer->expires_after(probe_interval(config_.delivery));
        co_await dest.probe_timer->async_wait(asio::as_tuple(asio::use_awaitable));
        if (stopping_ || !dest.down) break;
        if (dest.held) continue;  // an operator holds it: nothing is tried, not even a probe
        // One message probes; the others keep waiting for the verdict.
        const auto probe = scheduler_.take_one(dest.domain);
        if (probe && dest.queued.insert(*probe).second) dest.ready.push_front(*probe);
        if (dest.ready.empty()) continue;
        ++dest.active;
        co_await worker(dest, true);
    }
    dest.probing = false;
}

awaitable<void> DeliveryAgent::worker(Destination& dest, bool probe) {
    std::unique_ptr<SmtpClientConnection> connection;
    if (!dest.idle.empty()) {
        connection = std::move(dest.idle.back().connection);
        dest.idle.pop_back();
    }
    while (!stopping_ && !dest.held && !dest.ready.empty()) {
        const std::string id = dest.ready.front();
        dest.ready.pop_front();
        const bool reached = co_await deliver_one(dest, id, connection, probe);
        dest.queued.erase(id);
        if (probe) {
            if (reached) drain(dest, "probe succeeded");
            break;
        }
    }
    if (connection && connection->usable() && !stopping_ && !dest.down) {
        keep_idle(dest, std::move(connection));
    } else if (connection) {
        co_await connection->quit();
    }
    --dest.active;
    if (!probe) pump(dest);
}

// While delivery keeps pace with intake a worker often finds its queue empty; keeping
// its connection a moment (Postfix's smtp_connection_cache_time_limit, 2 s) spares the
// next message a new connection, greeting and EHLO.
void DeliveryAgent::keep_idle(Destination& dest, std::unique_ptr<SmtpClientConnection> connection) {
    dest.idle.push_back({std::move(connection), Clock::now() + kIdleConnectionTime});
    if (!dest.reaping) {
        dest.reaping = true;
        asio::co_spawn(io_, reap_idle(dest), asio::detached);
    }
}

awaitable<void> DeliveryAgent::reap_idle(Destination& dest) {
    asio::steady_timer timer(io_);
    while (!dest.idle.empty()) {
        timer.expires_at(stopping_ ? Clock::now() : dest.idle.front().until);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        while (!dest.idle.empty() && (stopping_ || dest.idle.front().until <= Clock::now())) {
            auto expired = std::move(dest.idle.front().connection);
            dest.idle.erase(dest.idle.begin());
            co_await expired->quit();
        }
    }
    dest.reaping = false;
}

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
        for (const auto& address : host.addresses) {
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

// A message for a destination that is down waits for the probe or a record change to
// drain it. Its spool record says so through mark_parked(), a few times a second for
// all such messages at once: one write per arrival would double the disk work exactly
// when intake must keep up. When the message is due to expire or to warn its sender it
// goes through record() instead (false).
bool DeliveryAgent::park(Destination& dest, const queue::Envelope& envelope) {
    const auto now = queue::now_micros();
    const auto micros = [](std::chrono::milliseconds d) { return static_cast<queue::UnixMicros>(d.count()) * 1000; };
    queue::UnixMicros until = now + micros(config_.delivery.retry_max);
    const queue::UnixMicros expires = envelope.arrival + micros(config_.delivery.max_lifetime);
    if (expires <= now) return false;
    until = std::min(until, expires);
    const bool may_warn = config_.delivery.delay_warning.count() > 0 && !envelope.delay_warning_sent &&
                          !envelope.sender.empty() && !envelope.is_bounce;
    if (may_warn) {
        const queue::UnixMicros warn = envelope.arrival + micros(config_.delivery.delay_warning);
        if (warn <= now) return false;
        until = std::min(until, warn);
    }
    scheduler_.schedule(envelope.queue_id, until, queue::pending_destinations(envelope));
    wake_timer();
    ensure_watch(dest);
    if (envelope.state == queue::MessageState::ready) {
        parked_.emplace_back(envelope.queue_id, "delivery temporarily suspended: " + dest.down_reason);
        if (parked_.size() == 1) asio::co_spawn(io_, mark_parked(), asio::detached);
    }
    return true;
}

awaitable<void> DeliveryAgent::mark_parked() {
    asio::steady_timer pause(io_, std::chrono::milliseconds(250));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    auto batch = std::make_shared<std::vector<std::pair<std::string, std::string>>>(std::move(parked_));
    parked_.clear();
    queue::SpoolWriter::Operation op = [batch](queue::SpoolWriteTxn& txn) {
        for (const auto& [id, reason] : *batch) {
            auto env = txn.find_envelope(id);
            if (!env || env->state != queue::MessageState::ready) continue;
            env->state = queue::MessageState::deferred;
            env->last_reply = reason;
            for (auto& r : env->recipients) {
                if (is_final(r.state)) continue;
                r.state = RecipientState::deferred;
                if (r.last_reply.empty()) r.last_reply = reason;
            }
            if (auto ec = txn.put_envelope(*env)) return ec;
        }
        return std::error_code();
    };
    co_await spool_write(writer_, std::move(op));
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

void DeliveryAgent::log_route(const Destination& dest, const char* state, const std::string& detail) {
    queue::LogEvent event("route");
    event.set("route", dest.domain).set("next_hop", dest.next_hop.to_string()).set("state", state);
    if (std::string_view(state) == "changed") event.set("hosts", detail);
    else event.set("hosts", dest.host_set).set("reason", detail);
    log_.write(event);
}

}  // namespace edgerelay::relay
