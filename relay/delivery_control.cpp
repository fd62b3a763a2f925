// Operator control of delivery (SPEC §2): queue flush / hold / release / delete /
// bounce, and route hold / set / soft-bounce. Each change reaches the spool first (so it
// survives a restart), then the live schedule, and each is a log event naming what it
// touched. Runs on the io_context's thread, like the rest of the agent.
//
// GCC 12: every co_await lands in a named value, and coroutine parameters are
// references (by-value ones are destroyed twice); see delivery_agent.cpp.
#include <algorithm>
#include <set>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "queue/queue_id.h"
#include "relay/delivery_agent.h"
#include "relay/spool_commit.h"

namespace edgerelay::relay {

namespace asio = boost::asio;
using asio::awaitable;
using queue::RecipientState;
using queue::is_final;

namespace {

constexpr const char* kOperatorBounce = "5.0.0 message bounced by the operator";
// A domain-wide action over a big queue goes this many messages per spool transaction:
// intake's commits get their turn between two, and a bounce holds only this many
// messages' contents at once (for their DSNs).
constexpr std::size_t kActionChunk = 1000;

bool has_pending_in(const queue::Envelope& env, const std::string& domain) {
    return std::any_of(env.recipients.begin(), env.recipients.end(), [&](const queue::Recipient& r) {
        return !is_final(r.state) && queue::destination_of(r.address) == domain;
    });
}

queue::LogEvent operator_event(std::string_view kind, const queue::Envelope& env) {
    queue::LogEvent event(kind);
    event.set("queue_id", env.queue_id).set("message_id", env.message_id).set("operator", true);
    return event;
}

}  // namespace

std::optional<MessageAction> message_action_from_string(std::string_view name) {
    if (name == "flush") return MessageAction::flush;
    if (name == "hold") return MessageAction::hold;
    if (name == "release") return MessageAction::release;
    if (name == "delete") return MessageAction::remove;
    if (name == "bounce") return MessageAction::bounce;
    return std::nullopt;
}

std::string_view to_string(MessageAction action) {
    switch (action) {
    case MessageAction::flush: return "flush";
    case MessageAction::hold: return "hold";
    case MessageAction::release: return "release";
    case MessageAction::remove: return "delete";
    case MessageAction::bounce: return "bounce";
    }
    return "?";
}

std::vector<std::string> DeliveryAgent::messages_for(const std::string& domain) const {
    std::vector<std::string> ids;
    const std::string wanted = routing::lowercase_ascii(domain);
    spool_.for_each_envelope([&](const queue::Envelope& env) {
        if (wanted.empty() || has_pending_in(env, wanted)) ids.push_back(env.queue_id);
        return true;
    });
    return ids;
}

awaitable<std::vector<std::string>> DeliveryAgent::act_on_messages(MessageAction action,
                                                                   const std::vector<std::string>& ids,
                                                                   const std::string& domain_name) {
    const std::string domain = routing::lowercase_ascii(domain_name);
    std::vector<std::string> touched;
    for (std::size_t start = 0; start < ids.size() && !stopping_; start += kActionChunk) {
        std::vector<std::string> chunk(ids.begin() + static_cast<std::ptrdiff_t>(start),
                                       ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), start + kActionChunk)));
        bool failed = false;
        if (action == MessageAction::bounce) {
            failed = co_await bounce_messages(chunk, domain);  // leaves the bounced ids in chunk
        } else {
            failed = co_await act_on_chunk(action, chunk);
        }
        touched.insert(touched.end(), chunk.begin(), chunk.end());
        // What a failed transaction (a full spool) did not change stays as it was; the
        // later chunks would meet the same disk.
        if (failed) break;
        // A flush does not wait for the spool: let the sessions have the thread between
        // two chunks all the same.
        auto yield = asio::post(io_, asio::use_awaitable);
        co_await std::move(yield);
    }
    co_return touched;
}

// One chunk of act_on_messages (not bounce): on return `ids` holds the ids it changed.
// True when the spool refused the chunk's transaction.
awaitable<bool> DeliveryAgent::act_on_chunk(MessageAction action, std::vector<std::string>& ids) {
    // The envelopes as they are now; what is gone (delivered meanwhile) is not touched.
    std::vector<queue::Envelope> found;
    for (const auto& id : ids)
        if (auto env = spool_.find_envelope(id)) found.push_back(std::move(*env));
    if (action == MessageAction::flush) {
        std::vector<std::string> touched;
        std::set<Destination*> revived;
        for (const auto& env : found) {
            if (env.state == queue::MessageState::held) continue;  // held stays held (Postfix too)
            for (const auto& d : queue::pending_destinations(env)) {
                Destination& dest = destination(d);
                if (dest.down) revived.insert(&dest);
            }
            scheduler_.remove(env.queue_id);
            log_.write(operator_event("flush", env));
            touched.push_back(env.queue_id);
        }
        // A destination marked down is tried again: the operator asked for it now.
        for (Destination* dest : revived) {
            dest->down = false;
            log_route(*dest, "up", "operator flush");
        }
        for (const auto& id : touched) dispatch(id);
        ids = std::move(touched);
        co_return false;
    }

    const auto now = queue::now_micros();
    // changed[i]: found[i] was changed (flags, not ids: a domain may hold many thousands).
    auto changed = std::make_shared<std::vector<char>>();
    queue::SpoolWriter::Operation op = [action, &found, now, changed](queue::SpoolWriteTxn& txn) {
        changed->assign(found.size(), 0);  // the writer may run an operation twice
        for (std::size_t i = 0; i < found.size(); ++i) {
            auto env = txn.find_envelope(found[i].queue_id);
            if (!env) continue;
            if (action == MessageAction::remove) {
                if (auto ec = txn.remove_message(env->queue_id)) return ec;
            } else if (action == MessageAction::hold) {
                if (env->state == queue::MessageState::held) continue;
                env->state = queue::MessageState::held;
                if (auto ec = txn.put_envelope(*env)) return ec;
            } else {  // release
                if (env->state != queue::MessageState::held) continue;
                env->state = env->attempts == 0 ? queue::MessageState::ready : queue::MessageState::deferred;
                env->next_attempt = now;
                if (auto ec = txn.put_envelope(*env)) return ec;
            }
            (*changed)[i] = 1;
        }
        return std::error_code();
    };
    const auto ec = co_await spool_write(writer_, std::move(op));
    ids.clear();
    if (ec) co_return true;
    for (std::size_t i = 0; i < found.size(); ++i) {
        if (!(*changed)[i]) continue;
        const queue::Envelope& env = found[i];
        ids.push_back(env.queue_id);
        auto event = operator_event(to_string(action), env);
        if (action == MessageAction::remove) {
            boost::json::array recipients;
            for (const auto& r : env.recipients)
                if (!is_final(r.state)) recipients.emplace_back(r.address);
            event.set("sender", env.sender).set("recipients", std::move(recipients));
        }
        log_.write(event);
        if (action == MessageAction::release) dispatch(env.queue_id);
        else scheduler_.remove(env.queue_id);  // a delivery already running finds it held or gone
    }
    co_return false;
}

// Every recipient not final (within `domain` when given) fails now with 5.0.0, and the
// sender gets a DSN, exactly as if the next hop had refused them. On return `ids` holds
// the ids bounced; true when the spool refused the transaction.
awaitable<bool> DeliveryAgent::bounce_messages(std::vector<std::string>& ids, const std::string& domain) {
    struct Job {
        queue::Envelope before;
        std::string content;
        std::vector<queue::RecipientOutcome> outcomes;
        std::string dsn_id;
        queue::FateDecision decision;
    };
    auto jobs = std::make_shared<std::vector<Job>>();
    for (const auto& id : ids) {
        auto env = spool_.find_envelope(id);
        if (!env) continue;
        Job job;
        for (const auto& r : env->recipients)
            if (!is_final(r.state) && (domain.empty() || queue::destination_of(r.address) == domain))
                job.outcomes.push_back({r.address, RecipientState::bounced, kOperatorBounce, "5.0.0", ""});
        if (job.outcomes.empty()) continue;
        job.content = spool_.find_content(id).value_or(std::string());
        job.before = std::move(*env);
        job.dsn_id = queue::new_queue_id();
        jobs->push_back(std::move(job));
    }
    ids.clear();
    const auto now = queue::now_micros();
    const std::uint32_t jitter = random_();
    queue::SpoolWriter::Operation op = [this, jobs, now, jitter](queue::SpoolWriteTxn& txn) {
        for (auto& job : *jobs) {
            job.decision = queue::FateDecision{};
            if (auto ec = queue::record_outcomes(txn, job.before.queue_id, job.outcomes, policy_, now, jitter,
                                                 job.content, job.dsn_id, job.decision))
                return ec;
        }
        return std::error_code();
    };
    const auto ec = co_await spool_write(writer_, std::move(op));
    if (ec) co_return true;
    for (const auto& job : *jobs) {
        if (!job.decision.found) continue;
        ids.push_back(job.before.queue_id);
        for (const auto& outcome : job.outcomes) {
            auto event = operator_event("bounce", job.before);
            event.set("recipient", outcome.address).set("reply_code", 0).set("enhanced_code", "5.0.0")
                .set("reply_text", "message bounced by the operator")
                .set("delay", static_cast<double>(now - job.before.arrival) / 1e6);
            if (job.decision.dsn) event.set("dsn_queue_id", job.decision.dsn->queue_id);
            log_.write(event);
        }
        log_dsn(job.decision, job.before);
        if (job.decision.done) {
            scheduler_.remove(job.before.queue_id);
        } else if (job.decision.envelope.state != queue::MessageState::held) {
            scheduler_.schedule(job.before.queue_id, job.decision.envelope.next_attempt,
                                queue::pending_destinations(job.decision.envelope));
            wake_timer();
        }
    }
    co_return false;
}

// --- routes ----------------------------------------------------------------------------

awaitable<std::error_code> DeliveryAgent::store_control(const std::string& domain) {
    const queue::RouteControl control = controls_[domain];
    if (control.is_default()) controls_.erase(domain);
    queue::SpoolWriter::Operation op = [domain, control](queue::SpoolWriteTxn& txn) {
        return queue::store_route_control(txn, domain, control);
    };
    const auto ec = co_await spool_write(writer_, std::move(op));
    co_return ec;
}

awaitable<std::error_code> DeliveryAgent::hold_route(const std::string& domain_name, bool hold) {
    const std::string domain = routing::lowercase_ascii(domain_name);
    controls_[domain].held = hold;
    const auto ec = co_await store_control(domain);
    if (ec) co_return ec;
    Destination& dest = destination(domain);
    dest.held = hold;
    queue::LogEvent event(hold ? "hold" : "release");
    event.set("route", domain).set("next_hop", dest.next_hop.to_string()).set("operator", true);
    log_.write(event);
    log_operator_route(dest, hold ? "held" : "released");
    // Released: what waited (held in `ready`, or deferred meanwhile) goes at once.
    if (!hold) drain(dest, "route released");
    co_return std::error_code();
}

awaitable<std::error_code> DeliveryAgent::set_soft_bounce(const std::string& domain_name, bool on) {
    const std::string domain = routing::lowercase_ascii(domain_name);
    controls_[domain].soft_bounce = on;
    const auto ec = co_await store_control(domain);
    if (ec) co_return ec;
    Destination& dest = destination(domain);
    dest.soft_bounce = on;
    log_operator_route(dest, on ? "soft-bounce-on" : "soft-bounce-off");
    co_return std::error_code();
}

awaitable<std::error_code> DeliveryAgent::set_next_hop(const std::string& domain_name,
                                                       const std::optional<routing::NextHop>& next_hop) {
    const std::string domain = routing::lowercase_ascii(domain_name);
    controls_[domain].next_hop = next_hop ? next_hop->to_string() : std::string();
    const auto ec = co_await store_control(domain);
    if (ec) co_return ec;
    Destination& dest = destination(domain);
    apply_next_hop(dest, next_hop ? *next_hop : dest.configured_next_hop, next_hop.has_value());
    co_return std::error_code();
}

// The manual activation of a standby (or the way back): forget where the old next hop
// led, close sessions kept open to it, and send the deferred mail to the new one now.
void DeliveryAgent::apply_next_hop(Destination& dest, const routing::NextHop& next_hop, bool overridden) {
    dest.next_hop = next_hop;
    dest.overridden = overridden;
    dest.resolution.reset();
    dest.records_expire = {};
    dest.host_set.clear();
    for (auto& idle : dest.idle) idle.until = std::chrono::steady_clock::now();  // the reaper closes them
    log_operator_route(dest, overridden ? "overridden" : "reset");
    if (dest.down) {
        dest.down = false;
        log_route(dest, "up", "next hop changed by the operator");
    }
    drain(dest, "next hop changed by the operator");
}

void DeliveryAgent::log_operator_route(const Destination& dest, const char* state) {
    queue::LogEvent event("route");
    event.set("route", dest.domain).set("state", state).set("next_hop", dest.next_hop.to_string())
        .set("configured_next_hop", dest.configured_next_hop.to_string()).set("operator", true);
    log_.write(event);
}

RouteLiveState DeliveryAgent::live_state(const std::string& domain) const {
    RouteLiveState state;
    const std::string key = routing::lowercase_ascii(domain);
    if (const auto control = controls_.find(key); control != controls_.end()) {
        state.held = control->second.held;
        state.soft_bounce = control->second.soft_bounce;
        state.override_next_hop = control->second.next_hop;
    }
    const auto it = destinations_.find(key);
    if (it == destinations_.end()) return state;
    const Destination& dest = *it->second;
    state.down = dest.down;
    state.next_hop = dest.next_hop.to_string();
    const auto now = std::chrono::steady_clock::now();
    if (dest.resolution && now < dest.records_expire) {
        state.resolution = dest.resolution;
        state.ttl_left = std::chrono::ceil<std::chrono::seconds>(dest.records_expire - now);
    }
    return state;
}

}  // namespace edgerelay::relay
