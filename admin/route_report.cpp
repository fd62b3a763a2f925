// Route reports: configuration + operator controls + live resolution + queue depth.
//
// GCC 12: every co_await lands in a named value (see relay/delivery_agent.cpp).
#include "admin/route_report.h"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <sstream>

#include "routing/next_hop_resolution.h"

namespace edgerelay::admin {

namespace asio = boost::asio;
namespace json = boost::json;
using asio::awaitable;

namespace {

const char* outcome_name(routing::Resolution::Outcome o) {
    switch (o) {
    case routing::Resolution::Outcome::ok: return "ok";
    case routing::Resolution::Outcome::temporary_failure: return "temporary_failure";
    case routing::Resolution::Outcome::permanent_failure: return "permanent_failure";
    }
    return "?";
}

json::object resolution_json(const routing::Resolution& r, std::chrono::seconds ttl_left) {
    json::object o;
    o["outcome"] = outcome_name(r.outcome);
    o["ttl_left"] = ttl_left.count();
    json::array mx;
    for (const auto& record : r.mx) mx.push_back(json::object{{"preference", record.preference}, {"exchange", record.exchange}});
    o["mx"] = std::move(mx);
    json::array hosts;
    for (const auto& host : r.hosts) {
        json::array addresses;
        for (const auto& a : host.addresses) addresses.emplace_back(a);
        hosts.push_back(json::object{{"name", host.name}, {"preference", host.preference}, {"port", host.port},
                                     {"addresses", std::move(addresses)}});
    }
    o["hosts"] = std::move(hosts);
    o["error"] = r.outcome == routing::Resolution::Outcome::ok ? std::string() : r.enhanced_status + " " + r.error;
    return o;
}

// Everything about one route that does not need DNS.
struct RouteFacts {
    std::string domain;
    std::string configured;
    std::string override_next_hop;
    routing::NextHop next_hop;
    bool held = false, down = false, soft_bounce = false;
    std::optional<relay::RouteLiveState> live;
};

RouteFacts facts_of(const routing::Route& route, const RouteReportInputs& in) {
    RouteFacts f;
    f.domain = route.domain;
    f.configured = route.next_hop.to_string();
    f.next_hop = route.next_hop;
    if (const auto c = in.controls.find(route.domain); c != in.controls.end()) {
        f.held = c->second.held;
        f.soft_bounce = c->second.soft_bounce;
        f.override_next_hop = c->second.next_hop;
    }
    if (in.live) f.live = in.live(route.domain);
    if (f.live) {  // the daemon's word wins: it may have changed since the spool was read
        f.held = f.live->held;
        f.soft_bounce = f.live->soft_bounce;
        f.override_next_hop = f.live->override_next_hop;
        f.down = f.live->down;
    }
    if (!f.override_next_hop.empty())
        if (auto parsed = routing::parse_next_hop(f.override_next_hop); parsed.next_hop) f.next_hop = *parsed.next_hop;
    return f;
}

const char* state_of(const RouteFacts& f) {
    return f.held ? "held" : f.down ? "down" : !f.override_next_hop.empty() ? "overridden" : "active";
}

// The daemon's own resolution while its TTL runs; otherwise a fresh one (the cache in
// the resolver still answers within TTLs).
awaitable<std::pair<routing::Resolution, std::chrono::seconds>> resolution_of(routing::DnsResolver& dns,
                                                                              const RouteFacts& f,
                                                                              const RouteReportInputs& in) {
    if (f.live && f.live->resolution) co_return std::pair{*f.live->resolution, f.live->ttl_left};
    std::mt19937 random(std::random_device{}());
    const auto self = routing::self_identity_of(in.config);
    auto r = co_await routing::resolve_next_hop(dns, f.next_hop, in.config.delivery.port, self, random);
    const auto ttl = r.ttl;
    co_return std::pair{std::move(r), ttl};
}

std::string json_text(const json::value& v) {
    if (v.is_string()) return std::string(v.as_string());
    return json::serialize(v);
}

}  // namespace

awaitable<json::array> describe_routes(routing::DnsResolver& dns, const RouteReportInputs& in) {
    json::array out;
    for (const auto& route : in.routes.routes()) {
        if (!in.only_domain.empty() && route.domain != in.only_domain) continue;
        const RouteFacts f = facts_of(route, in);
        auto resolved = co_await resolution_of(dns, f, in);
        json::object o;
        o["domain"] = f.domain;
        o["next_hop"] = f.next_hop.to_string();
        o["configured_next_hop"] = f.configured;
        o["override"] = f.override_next_hop;
        o["state"] = state_of(f);
        o["held"] = f.held;
        o["down"] = f.down;
        o["soft_bounce"] = f.soft_bounce;
        const auto depth = in.census.by_domain.find(f.domain);
        o["queue_depth"] = depth == in.census.by_domain.end() ? 0 : depth->second;
        o["resolution"] = resolution_json(resolved.first, resolved.second);
        out.push_back(std::move(o));
    }
    co_return out;
}

awaitable<json::object> explain_address(routing::DnsResolver& dns, const RouteReportInputs& in,
                                        const std::string& address) {
    json::object o;
    o["address"] = address;
    const auto at = address.rfind('@');
    const std::string domain = at == std::string::npos ? std::string() : routing::lowercase_ascii(address.substr(at + 1));
    o["domain"] = domain;
    if (domain.empty()) {
        o["error"] = "not an address (user@domain)";
        co_return o;
    }
    const routing::Route* route = in.routes.find(domain);
    routing::Route relayed;  // no route: the domain's own MX, for relay_networks clients
    if (!route) {
        relayed.domain = domain;
        relayed.next_hop.host = domain;
        route = &relayed;
    }
    const RouteFacts f = facts_of(*route, in);
    o["route"] = route == &relayed ? std::string() : f.domain;
    o["next_hop"] = f.next_hop.to_string();
    o["configured_next_hop"] = f.configured;
    o["override"] = f.override_next_hop;
    o["held"] = f.held;
    o["down"] = f.down;
    o["soft_bounce"] = f.soft_bounce;

    // The records as published, each with its TTL as the resolver holds it now.
    json::array mx;
    if (f.next_hop.mx_lookup && !f.next_hop.literal) {
        const auto answer = co_await dns.query(f.next_hop.host, routing::DnsResolver::type_mx);
        for (const auto& rdata : answer.rdata)
            if (auto record = routing::parse_mx_rdata(rdata))
                mx.push_back(json::object{{"preference", record->preference}, {"exchange", record->exchange},
                                          {"ttl", answer.ttl.count()}});
    }
    o["mx"] = std::move(mx);
    auto resolved = co_await resolution_of(dns, f, in);
    const routing::Resolution& r = resolved.first;
    json::array hosts;
    for (const auto& host : r.hosts) {
        json::array addresses;
        for (const std::uint16_t type : {routing::DnsResolver::type_a, routing::DnsResolver::type_aaaa}) {
            if (f.next_hop.literal) break;
            const auto answer = co_await dns.query(host.name, type);
            for (const auto& rdata : answer.rdata) {
                auto a = type == routing::DnsResolver::type_a ? routing::parse_a_rdata(rdata) : routing::parse_aaaa_rdata(rdata);
                if (a) addresses.push_back(json::object{{"address", *a}, {"ttl", answer.ttl.count()}});
            }
        }
        if (f.next_hop.literal)
            for (const auto& a : host.addresses) addresses.push_back(json::object{{"address", a}, {"ttl", 0}});
        hosts.push_back(json::object{{"name", host.name}, {"preference", host.preference}, {"port", host.port},
                                     {"addresses", std::move(addresses)}});
    }
    o["hosts"] = std::move(hosts);
    json::object try_now;
    if (!r.hosts.empty() && !r.hosts.front().addresses.empty())
        try_now = {{"host", r.hosts.front().name}, {"address", r.hosts.front().addresses.front()},
                   {"port", r.hosts.front().port}};
    o["try_now"] = try_now;
    o["error"] = r.outcome == routing::Resolution::Outcome::ok ? std::string() : r.enhanced_status + " " + r.error;

    std::string verdict;
    if (route == &relayed)
        verdict = "no route serves " + domain + ": accepted only from relay_networks, then delivered by its own MX; ";
    if (f.held) verdict += "held by the operator: nothing is delivered until `route release`";
    else if (f.down) verdict += "down: every host failed; one message probes it, the rest wait";
    else if (r.outcome != routing::Resolution::Outcome::ok)
        verdict += std::string(r.outcome == routing::Resolution::Outcome::permanent_failure ? "bounces: " : "defers: ") +
                   r.enhanced_status + " " + r.error;
    else verdict += "would try " + r.hosts.front().name + " [" + r.hosts.front().addresses.front() + "]:" +
                    std::to_string(r.hosts.front().port) + " now";
    if (f.soft_bounce) verdict += " (soft bounce: 5xx replies are deferred)";
    o["verdict"] = verdict;
    co_return o;
}

std::string routes_text(const json::array& routes) {
    std::ostringstream out;
    out << "DOMAIN                           STATE       QUEUE  NEXT HOP -> HOSTS (TTL LEFT)\n";
    for (const auto& v : routes) {
        const auto& r = v.as_object();
        std::string domain = json_text(r.at("domain")), state = json_text(r.at("state"));
        out << domain << std::string(domain.size() < 33 ? 33 - domain.size() : 1, ' ') << state
            << std::string(state.size() < 12 ? 12 - state.size() : 1, ' ');
        const std::string depth = json_text(r.at("queue_depth"));
        out << std::string(depth.size() < 5 ? 5 - depth.size() : 0, ' ') << depth << "  " << json_text(r.at("next_hop"));
        if (!json_text(r.at("override")).empty()) out << " (configured " << json_text(r.at("configured_next_hop")) << ")";
        const auto& res = r.at("resolution").as_object();
        if (json_text(res.at("outcome")) != "ok") {
            out << " -> " << json_text(res.at("error"));
        } else {
            out << " ->";
            for (const auto& h : res.at("hosts").as_array()) {
                const auto& host = h.as_object();
                out << " " << json_text(host.at("name")) << "[";
                bool first = true;
                for (const auto& a : host.at("addresses").as_array()) {
                    out << (first ? "" : ",") << json_text(a);
                    first = false;
                }
                out << "]:" << json_text(host.at("port"));
            }
            out << " (" << json_text(res.at("ttl_left")) << "s)";
        }
        if (r.at("soft_bounce").as_bool()) out << " soft-bounce";
        out << "\n";
    }
    return out.str();
}

std::string explanation_text(const json::object& e) {
    std::ostringstream out;
    out << "address:   " << json_text(e.at("address")) << "\n";
    if (const auto error = json_text(e.at("error")); !error.empty() && !e.contains("route")) {
        out << "error:     " << error << "\n";
        return out.str();
    }
    const std::string route = json_text(e.at("route"));
    out << "route:     " << (route.empty() ? "(none: relayed by the domain's own MX)" : route) << "\n";
    out << "next hop:  " << json_text(e.at("next_hop"));
    if (!json_text(e.at("override")).empty()) out << " (operator override; configured " << json_text(e.at("configured_next_hop")) << ")";
    out << "\n";
    out << "controls:  " << (e.at("held").as_bool() ? "held" : "not held") << ", "
        << (e.at("soft_bounce").as_bool() ? "soft bounce on" : "soft bounce off") << (e.at("down").as_bool() ? ", down" : "")
        << "\n";
    for (const auto& m : e.at("mx").as_array()) {
        const auto& mx = m.as_object();
        out << "MX:        " << json_text(mx.at("preference")) << " " << json_text(mx.at("exchange")) << " (ttl "
            << json_text(mx.at("ttl")) << "s)\n";
    }
    for (const auto& h : e.at("hosts").as_array()) {
        const auto& host = h.as_object();
        out << "host:      " << json_text(host.at("name")) << " pref " << json_text(host.at("preference")) << " port "
            << json_text(host.at("port")) << ":";
        for (const auto& a : host.at("addresses").as_array())
            out << " " << json_text(a.as_object().at("address")) << " (ttl " << json_text(a.as_object().at("ttl")) << "s)";
        out << "\n";
    }
    if (const auto error = json_text(e.at("error")); !error.empty()) out << "DNS:       " << error << "\n";
    out << "verdict:   " << json_text(e.at("verdict")) << "\n";
    return out.str();
}

}  // namespace edgerelay::admin
