// A delivery destination (a recipient domain) and its live state: where its next hop
// led last time, whether it is down, what waits to go now, how many sessions it has.
// Per-destination state is a real object, so "drain Dallas's queue to LA" is a
// statement about one of these.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "conf/config.h"
#include "routing/next_hop.h"
#include "relay/smtp_client.h"
#include "routing/next_hop_resolution.h"

namespace edgerelay::relay {

struct Destination {
    std::string domain;         // lower-case recipient domain
    routing::NextHop next_hop;  // in effect: the operator's override, else the route's
    routing::NextHop configured_next_hop;  // the route's, or the domain itself by MX
    bool overridden = false;               // next_hop is the operator's (`route set`)
    conf::TlsPolicy tls = conf::TlsPolicy::may;
    bool held = false;          // `route hold`: nothing starts; mail waits in `ready`
    bool soft_bounce = false;   // `route soft-bounce on`: 5xx is deferred, not bounced

    std::deque<std::string> ready;           // queue ids to attempt now, in order
    std::unordered_set<std::string> queued;  // ids in `ready` or in flight here
    unsigned active = 0;                     // delivery sessions running

    bool down = false;          // every host failed: only probes connect
    std::string down_reason;    // the last failure, for suspended deferrals
    bool probing = false;
    bool watching = false;      // a record watcher runs
    std::string host_set;       // where the next hop led last ("addr:port,...")
    std::optional<routing::Resolution> resolution;  // that answer, reused until records_expire
    std::chrono::steady_clock::time_point records_expire{};  // TTL of that answer
    // Connections a worker left open for the next one, oldest first.
    struct IdleConnection {
        std::unique_ptr<SmtpClientConnection> connection;
        std::chrono::steady_clock::time_point until;
    };
    std::vector<IdleConnection> idle;
    bool reaping = false;
    std::unique_ptr<boost::asio::steady_timer> watch_timer;
    std::unique_ptr<boost::asio::steady_timer> probe_timer;
};

}  // namespace edgerelay::relay
