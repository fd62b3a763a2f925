// Delivery: takes due messages from the scheduler, hands them to their destinations,
// runs up to concurrency_per_destination SMTP client sessions per destination, records
// every outcome in the spool, and keeps watching where each destination's records point
// so deferred mail follows them (SPEC §4).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <system_error>
#include <random>
#include <string>
#include <vector>

#include "conf/config.h"
#include "queue/event_log.h"
#include "queue/message_fate.h"
#include "queue/route_control.h"
#include "queue/scheduler.h"
#include "queue/spool.h"
#include "queue/spool_writer.h"
#include "relay/destination.h"
#include "relay/smtp_client.h"
#include "routing/dns_resolver.h"
#include "routing/next_hop_resolution.h"
#include "routing/route_table.h"

namespace edgerelay::relay {

// Operator actions on queued messages (SPEC §2 `queue flush|hold|release|delete|bounce`).
enum class MessageAction { flush, hold, release, remove, bounce };
std::optional<MessageAction> message_action_from_string(std::string_view name);  // "delete" -> remove
std::string_view to_string(MessageAction action);

// What the running daemon knows about a route beyond its configuration.
struct RouteLiveState {
    bool down = false;
    bool held = false;
    bool soft_bounce = false;
    std::string next_hop;   // in effect
    std::string override_next_hop;  // "" when the configured one is in effect
    std::optional<routing::Resolution> resolution;  // the last answer, while its TTL runs
    std::chrono::seconds ttl_left{0};
};

class DeliveryAgent {
public:
    DeliveryAgent(boost::asio::io_context& io, const conf::Config& config, const routing::RouteTable& routes,
                  queue::Spool& spool, queue::SpoolWriter& writer, queue::EventLog& log, routing::DnsResolver& dns);
    ~DeliveryAgent();

    // Rebuilds the schedule from the spool and starts delivering. Returns the number
    // of queued messages found.
    std::size_t start();
    void stop();
    // A message was committed (intake, or a DSN): deliver it now.
    void on_queued(const std::string& queue_id);

    // Operator control (relay/delivery_control.cpp), called on the io_context's thread.
    // The queue ids of messages with a recipient not yet final in `domain` (every
    // queued message when domain is ""). Reads the spool only: any thread may call it.
    std::vector<std::string> messages_for(const std::string& domain) const;
    // Does `action` to each message that exists (and, for bounce with a domain, only to
    // that domain's recipients); returns the ids it touched and logs each action. Many
    // messages go in chunks, one spool transaction each, so intake is not held up.
    // (Coroutine parameters are references: GCC 12 destroys by-value ones twice.)
    boost::asio::awaitable<std::vector<std::string>> act_on_messages(MessageAction action,
                                                                     const std::vector<std::string>& ids,
                                                                     const std::string& domain);
    // Route controls, persisted in the spool; the domain must be a configured route.
    boost::asio::awaitable<std::error_code> hold_route(const std::string& domain, bool hold);
    boost::asio::awaitable<std::error_code> set_soft_bounce(const std::string& domain, bool on);
    // nullopt: back to the configured next hop.
    boost::asio::awaitable<std::error_code> set_next_hop(const std::string& domain,
                                                         const std::optional<routing::NextHop>& next_hop);
    RouteLiveState live_state(const std::string& domain) const;

private:
    struct Attempt;  // one message to one destination, see delivery_agent.cpp

    boost::asio::awaitable<void> timer_loop();
    void wake_timer();
    void dispatch(const std::string& queue_id);
    Destination& destination(const std::string& domain);
    void pump(Destination& dest);
    void drain(Destination& dest, const char* why);
    void mark_down(Destination& dest, const std::string& reason);
    void note_resolution(Destination& dest, const routing::Resolution& resolution);
    void ensure_watch(Destination& dest);
    bool park(Destination& dest, const queue::Envelope& envelope);
    void keep_idle(Destination& dest, std::unique_ptr<SmtpClientConnection> connection);
    boost::asio::awaitable<void> reap_idle(Destination& dest);
    boost::asio::awaitable<void> mark_parked();
    boost::asio::awaitable<void> worker(Destination& dest, bool probe);
    boost::asio::awaitable<bool> deliver_one(Destination& dest, const std::string& queue_id,
                                             std::unique_ptr<SmtpClientConnection>& connection, bool probe);
    boost::asio::awaitable<std::unique_ptr<SmtpClientConnection>> connect(
        const Destination& dest, const routing::TargetHost& host, const std::string& address,
        const queue::Envelope& envelope, const std::vector<std::string>& recipients, RemoteReply& failure);
    boost::asio::awaitable<void> watch_records(Destination& dest);
    boost::asio::awaitable<void> probe_loop(Destination& dest);
    boost::asio::awaitable<void> record(Destination& dest, const queue::Envelope& before, const std::string& content,
                                        std::vector<queue::RecipientOutcome> outcomes, const Attempt& attempt);
    void log_route(const Destination& dest, const char* state, const std::string& detail);
    void log_operator_route(const Destination& dest, const char* state);
    void log_dsn(const queue::FateDecision& decision, const queue::Envelope& about);
    boost::asio::awaitable<std::error_code> store_control(const std::string& domain);
    void apply_next_hop(Destination& dest, const routing::NextHop& next_hop, bool overridden);
    boost::asio::awaitable<bool> act_on_chunk(MessageAction action, std::vector<std::string>& ids);
    boost::asio::awaitable<bool> bounce_messages(std::vector<std::string>& ids, const std::string& domain);

    boost::asio::io_context& io_;
    const conf::Config& config_;
    const routing::RouteTable& routes_;
    queue::Spool& spool_;
    queue::SpoolWriter& writer_;
    queue::EventLog& log_;
    routing::DnsResolver& dns_;
    std::unique_ptr<boost::asio::ssl::context> tls_;
    routing::SelfIdentity self_;
    queue::FatePolicy policy_;
    queue::Scheduler scheduler_;
    queue::RouteControls controls_;  // as stored in the spool
    std::map<std::string, std::unique_ptr<Destination>> destinations_;
    boost::asio::steady_timer wake_;
    std::mt19937 random_;
    ClientSessions sessions_;  // every open client session, ended at once by stop()
    std::vector<std::pair<std::string, std::string>> parked_;  // (queue id, reason) to mark deferred
    bool stopping_ = false;
};

}  // namespace edgerelay::relay
