// What operators have set on a route (SPEC §2 `route hold`, `route set`, `route
// soft-bounce`), kept in the spool's meta database so it survives restarts and
// edgerelayctl sees it with the daemon stopped. The spool stores it; delivery obeys it.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <system_error>

#include "queue/spool.h"

namespace edgerelay::queue {

struct RouteControl {
    bool held = false;         // deliver nothing until released
    bool soft_bounce = false;  // 5xx from this route is deferred, not bounced
    std::string next_hop;      // operator override of the configured next hop ("" none)
    bool is_default() const { return !held && !soft_bounce && next_hop.empty(); }
};

// Lower-case route domain -> its controls; routes with none set are absent.
using RouteControls = std::map<std::string, RouteControl>;

RouteControls load_route_controls(const Spool& spool);
// Writes (or, when default, removes) one route's controls in the caller's transaction.
std::error_code store_route_control(SpoolWriteTxn& txn, std::string_view domain, const RouteControl& control);

}  // namespace edgerelay::queue
