// How routes are shown to operators (`route list`, `route explain`, GET /api/v1/routes):
// the configuration, what operators set, the live resolution and the queue depth, as
// the JSON objects of docs/admin-api.md and as text. The daemon passes what only it
// knows (down, its last resolution); edgerelayctl with the daemon stopped resolves by
// itself and passes nothing.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <functional>
#include <optional>
#include <random>
#include <string>

#include "conf/config.h"
#include "queue/queue_census.h"
#include "queue/route_control.h"
#include "relay/delivery_agent.h"
#include "routing/dns_resolver.h"
#include "routing/route_table.h"

namespace edgerelay::admin {

// The daemon's live view of a route; empty (nullopt) when the daemon is not asked.
using LiveStateSource = std::function<std::optional<relay::RouteLiveState>(const std::string& domain)>;

struct RouteReportInputs {
    const conf::Config& config;
    const routing::RouteTable& routes;
    const queue::RouteControls& controls;
    const queue::QueueCensus& census;
    LiveStateSource live;  // may be empty
    std::string only_domain;  // describe this route only ("" every route)
};

// {"routes": [route...]} objects, one per configured route, in configuration order.
// (References only: GCC 12 destroys by-value coroutine parameters twice.)
boost::asio::awaitable<boost::json::array> describe_routes(routing::DnsResolver& dns, const RouteReportInputs& inputs);
// The explanation object for one recipient address; error set when it is no address.
boost::asio::awaitable<boost::json::object> explain_address(routing::DnsResolver& dns, const RouteReportInputs& inputs,
                                                            const std::string& address);

std::string routes_text(const boost::json::array& routes);
std::string explanation_text(const boost::json::object& explanation);

}  // namespace edgerelay::admin
