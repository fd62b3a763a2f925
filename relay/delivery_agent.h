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
#include <random>
#include <string>
#include <vector>

#include "conf/config.h"
#include "queue/event_log.h"
#include "queue/message_fate.h"
#include "queue/scheduler.h"
#include "queue/spool.h"
#include "queue/spool_writer.h"
#include "relay/destination.h"
#include "relay/smtp_client.h"
#include "routing/dns_resolver.h"
#include "routing/next_hop_resolution.h"
#include "routing/route_table.h"

namespace edgerelay::relay {

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
    std::map<std::string, std::unique_ptr<Destination>> destinations_;
    boost::asio::steady_timer wake_;
    std::mt19937 random_;
    std::vector<std::pair<std::string, std::string>> parked_;  // (queue id, reason) to mark deferred
    bool stopping_ = false;
};

}  // namespace edgerelay::relay
