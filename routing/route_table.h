// The route table: which recipient domains this relay serves and where each goes.
// Matching is exact and case-insensitive on the whole domain: no suffix, no trailing
// dot, no look-alike ever matches another domain's route.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "conf/config.h"
#include "routing/next_hop.h"

namespace edgerelay::routing {

struct Route {
    std::string domain;
    NextHop next_hop;
    conf::TlsPolicy tls = conf::TlsPolicy::may;
};

class RouteTable {
public:
    RouteTable() = default;
    // Every route's next_hop must parse (checked by check_routes at startup).
    explicit RouteTable(const std::vector<conf::RouteConfig>& routes);

    const Route* find(std::string_view domain) const;
    bool serves(std::string_view domain) const { return find(domain) != nullptr; }
    const std::vector<Route>& routes() const { return routes_; }

private:
    std::vector<Route> routes_;
    std::unordered_map<std::string, std::size_t> by_domain_;
};

// "file:line: route[N].next_hop: what is wrong" for every route whose next hop does
// not parse (conf/ checks everything else); empty when all are good.
std::vector<conf::ConfigError> check_routes(const conf::Config& config);

}  // namespace edgerelay::routing
