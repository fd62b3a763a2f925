// `edgerelayctl route ...`: list and explain ask the running daemon (it knows which
// routes are down and what it resolved last); with the daemon stopped they read the
// spool and resolve by themselves. hold, release, set, reset and soft-bounce go
// through the admin API, which persists them and logs each change.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <iostream>

#include "admin/route_report.h"
#include "programs/ctl/admin_client.h"
#include "programs/ctl/ctl.h"
#include "queue/queue_census.h"
#include "queue/route_control.h"
#include "routing/dns_resolver.h"
#include "routing/route_table.h"

namespace edgerelay::ctl {

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;

// {"routes": [...]} from the daemon, or nullopt when it does not run.
std::optional<json::array> routes_from_daemon(const conf::Config& config, const std::string& target) {
    const auto response = try_admin_request(config, http::verb::get, target);
    if (!response) return std::nullopt;
    if (response->status != 200) fail(response->error(), 1);
    const auto* routes = response->body.is_object() ? response->body.as_object().if_contains("routes") : nullptr;
    if (!routes || !routes->is_array()) fail("the admin API answered without a routes list", 1);
    return routes->as_array();
}

// The daemon is not running: the same report from the spool and our own lookups.
json::array routes_offline(const conf::Config& config, const std::string& explain_address) {
    const queue::Spool spool(config.spool.path, config.spool.max_size, queue::Spool::Mode::read_only);
    const auto controls = queue::load_route_controls(spool);
    const auto census = queue::take_census(spool);
    const routing::RouteTable routes(config.routes);
    asio::io_context io;
    routing::DnsResolver dns(io.get_executor(), config.dns);
    const admin::RouteReportInputs inputs{config, routes, controls, census, nullptr};
    auto task = [&]() -> asio::awaitable<json::array> {
        if (explain_address.empty()) {
            auto described = co_await admin::describe_routes(dns, inputs);
            co_return described;
        }
        auto explanation = co_await admin::explain_address(dns, inputs, explain_address);
        co_return json::array{std::move(explanation)};
    };
    auto result = asio::co_spawn(io, task(), asio::use_future);
    io.run();
    return result.get();
}

void print_routes(const Invocation& inv, const json::array& routes, bool explanation) {
    if (inv.json) {
        print_json_list("routes", routes);
    } else if (explanation) {
        for (const auto& r : routes) std::cout << admin::explanation_text(r.as_object());
    } else {
        std::cout << admin::routes_text(routes);
    }
}

int route_list(const Invocation& inv, const conf::Config& config) {
    if (inv.words.size() != 2) fail("route list takes options only");
    inv.allow_options({});
    auto routes = routes_from_daemon(config, "/api/v1/routes");
    if (!routes) routes = routes_offline(config, "");
    print_routes(inv, *routes, false);
    return 0;
}

int route_explain(const Invocation& inv, const conf::Config& config) {
    if (inv.words.size() != 3) fail("route explain needs one address (user@domain)");
    inv.allow_options({});
    const std::string& address = inv.words[2];
    const auto at = address.rfind('@');
    if (at == std::string::npos || at + 1 == address.size()) fail("'" + address + "' is not an address (user@domain)");
    auto routes = routes_from_daemon(config, "/api/v1/routes/" + url_encode(address.substr(at + 1)) +
                                                 "/explain?address=" + url_encode(address));
    if (!routes) routes = routes_offline(config, address);
    print_routes(inv, *routes, true);
    return 0;
}

// hold, release, set, reset, soft-bounce: one call, then the route as the daemon now has it.
int route_change(const Invocation& inv, const conf::Config& config, const std::string& verb) {
    inv.allow_options({});
    const std::size_t wanted = verb == "set" || verb == "soft-bounce" ? 4 : 3;
    if (inv.words.size() != wanted) {
        if (verb == "set") fail("route set needs a domain and a next hop, e.g. route set example.com '[192.0.2.1]:25'");
        if (verb == "soft-bounce") fail("route soft-bounce needs a domain and on or off");
        fail("route " + verb + " needs one domain");
    }
    const std::string base = "/api/v1/routes/" + url_encode(inv.words[2]);
    AdminResponse response;
    if (verb == "hold" || verb == "release") {
        response = admin_request(config, http::verb::post, base + "/" + verb);
    } else if (verb == "soft-bounce") {
        const std::string& on = inv.words[3];
        if (on != "on" && on != "off") fail("route soft-bounce takes on or off, not '" + on + "'");
        response = admin_request(config, http::verb::post, base + "/soft-bounce?on=" + (on == "on" ? "true" : "false"));
    } else if (verb == "set") {
        response = admin_request(config, http::verb::put, base + "/next-hop", inv.words[3]);
    } else {
        response = admin_request(config, http::verb::delete_, base + "/next-hop");
    }
    if (response.status != 200) fail(response.error(), 1);
    const auto* routes = response.body.is_object() ? response.body.as_object().if_contains("routes") : nullptr;
    if (!routes || !routes->is_array() || routes->as_array().empty()) fail("the admin API answered without the route", 1);
    if (inv.json) {
        print_json(response.body);
        return 0;
    }
    const auto& r = routes->as_array().front().as_object();
    std::cout << r.at("domain").as_string().c_str() << ": " << r.at("state").as_string().c_str() << ", next hop "
              << r.at("next_hop").as_string().c_str();
    if (!r.at("override").as_string().empty())
        std::cout << " (override; configured " << r.at("configured_next_hop").as_string().c_str() << ")";
    std::cout << (r.at("soft_bounce").as_bool() ? ", soft bounce on" : "") << "\n";
    return 0;
}

}  // namespace

int route_command(const Invocation& inv, const conf::Config& config) {
    const std::string& verb = inv.words[1];
    if (verb == "list") return route_list(inv, config);
    if (verb == "explain") return route_explain(inv, config);
    if (verb == "hold" || verb == "release" || verb == "set" || verb == "reset" || verb == "soft-bounce")
        return route_change(inv, config, verb);
    fail("unknown command 'route " + verb + "'");
}

}  // namespace edgerelay::ctl
