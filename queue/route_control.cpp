// Route controls as meta records "route_control:<domain>" -> a small JSON object.
#include "queue/route_control.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace edgerelay::queue {

namespace {

constexpr std::string_view kPrefix = "route_control:";

}  // namespace

RouteControls load_route_controls(const Spool& spool) {
    RouteControls controls;
    spool.for_each_meta(kPrefix, [&](std::string_view key, std::string_view value) {
        boost::system::error_code ec;
        const auto json = boost::json::parse(value, ec);
        if (ec || !json.is_object()) return;  // damaged: as if unset, never a crash
        const auto& o = json.as_object();
        RouteControl c;
        if (const auto* v = o.if_contains("held"); v && v->is_bool()) c.held = v->as_bool();
        if (const auto* v = o.if_contains("soft_bounce"); v && v->is_bool()) c.soft_bounce = v->as_bool();
        if (const auto* v = o.if_contains("next_hop"); v && v->is_string()) c.next_hop = std::string(v->as_string());
        if (!c.is_default()) controls[std::string(key.substr(kPrefix.size()))] = c;
    });
    return controls;
}

std::error_code store_route_control(SpoolWriteTxn& txn, std::string_view domain, const RouteControl& control) {
    const std::string key = std::string(kPrefix) + std::string(domain);
    if (control.is_default()) return txn.put_meta(key, {});
    boost::json::object o;
    o["held"] = control.held;
    o["soft_bounce"] = control.soft_bounce;
    o["next_hop"] = control.next_hop;
    return txn.put_meta(key, boost::json::serialize(o));
}

}  // namespace edgerelay::queue
