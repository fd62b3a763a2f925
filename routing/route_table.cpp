// The route table: exact, case-insensitive domain lookup.
#include "routing/route_table.h"

#include <algorithm>

namespace edgerelay::routing {
RouteTable::RouteTable(const std::vector<conf::RouteConfig>& routes) {
    for (const auto& config : routes) {
        auto parsed = parse_next_hop(config.next_hop);
        if (!parsed.next_hop) continue;  // check_routes reported it at startup
        std::string domain = lowercase_ascii(config.domain);
        if (by_domain_.contains(domain)) continue;
        by_domain_.emplace(domain, routes_.size());
        routes_.push_back(Route{std::move(domain), std::move(*parsed.next_hop), config.tls});
    }
}

const Route* RouteTable::find(std::string_view domain) const {
    // Domains arrive as the client wrote them; lowering here keeps every caller exact.
    const auto it = by_domain_.find(lowercase_ascii(domain));
    return it == by_domain_.end() ? nullptr : &routes_[it->second];
}

std::vector<conf::ConfigError> check_routes(const conf::Config& config) {
    std::vector<conf::ConfigError> errors;
    for (std::size_t i = 0; i < config.routes.size(); ++i) {
        const auto& route = config.routes[i];
        const std::string key = "route[" + std::to_string(i + 1) + "]";
        const auto parsed = parse_next_hop(route.next_hop);
        if (!parsed.next_hop)
            errors.push_back({config.source, route.next_hop_line, key + ".next_hop", parsed.error});
    }
    return errors;
}

}  // namespace edgerelay::routing
