// Delivery orchestration: scheduling, per-destination sessions, parking while a
// destination is down, probes, and the record watch that drains deferred mail when a
// destination moves. One attempt itself is in delivery_attempt.cpp.
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
using queue::is_final;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kDispatchBatch = 2000;
constexpr auto kWatchRetry = std::chrono::seconds(5);
// libunbound's cache counts whole seconds and may serve an answer until the second after
// its TTL (with ttl 0 meanwhile): look just after the TTL, and again every margin while
// the answer says 0, so a change is seen within about 100 ms of the cache letting go.
constexpr auto kTtlMargin = std::chrono::milliseconds(100);

constexpr auto kIdleConnectionTime = std::chrono::seconds(2);

std::chrono::milliseconds probe_interval(const conf::DeliveryConfig& delivery) {
    return std::clamp(delivery.retry_initial / 2, std::chrono::milliseconds(1000), std::chrono::milliseconds(60000));
}

}  // namespace

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
    // What is in flight ends now as a lost connection (deferred, retried after the
    // restart) rather than after RFC 5321's timeouts.
    sessions_.abort_all();
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

void DeliveryAgent::log_route(const Destination& dest, const char* state, const std::string& detail) {
    queue::LogEvent event("route");
    event.set("route", dest.domain).set("next_hop", dest.next_hop.to_string()).set("state", state);
    if (std::string_view(state) == "changed") event.set("hosts", detail);
    else event.set("hosts", dest.host_set).set("reason", detail);
    log_.write(event);
}

}  // namespace edgerelay::relay
