// Request routing and the handlers of the admin API. Paths and shapes follow
// docs/admin-api.md; errors are {"error": "..."} with 400/401/404/405.
//
// GCC 12 mis-resumes coroutines in `if (!co_await ...)` and destroys temporaries of a
// co_await expression (by-value coroutine arguments included) twice: every await here
// lands in a named value and passes named values by reference.
#include "admin/admin_api.h"

#include <openssl/crypto.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/serialize.hpp>
#include <map>

#include "admin/route_report.h"
#include "queue/queue_census.h"
#include "queue/queue_report.h"
#include "queue/queue_summary.h"
#include "queue/route_control.h"
#include "queue/tracking_index.h"

namespace edgerelay::admin {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
using asio::awaitable;

namespace {

// A request target split into path segments and decoded query parameters.
struct Target {
    std::vector<std::string> path;
    std::map<std::string, std::string> query;
    std::string param(const std::string& name) const {
        const auto it = query.find(name);
        return it == query.end() ? std::string() : it->second;
    }
};

std::string url_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out += ' ';
        } else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
                   std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

Target parse_target(std::string_view target) {
    Target t;
    const auto q = target.find('?');
    std::string_view path = target.substr(0, q);
    while (!path.empty()) {
        const auto slash = path.find('/');
        const auto segment = path.substr(0, slash);
        if (!segment.empty()) t.path.push_back(url_decode(segment));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
    if (q != std::string_view::npos) {
        std::string_view rest = target.substr(q + 1);
        while (!rest.empty()) {
            const auto amp = rest.find('&');
            const auto pair = rest.substr(0, amp);
            const auto eq = pair.find('=');
            if (!pair.empty())
                t.query[url_decode(pair.substr(0, eq))] =
                    eq == std::string_view::npos ? std::string() : url_decode(pair.substr(eq + 1));
            if (amp == std::string_view::npos) break;
            rest.remove_prefix(amp + 1);
        }
    }
    return t;
}

Response make_response(const Request& request, http::status status, std::string body,
                       std::string_view content_type = "application/json") {
    Response response{status, request.version()};
    response.set(http::field::server, "edgerelayd");
    response.set(http::field::content_type, content_type);
    response.keep_alive(request.keep_alive());
    response.body() = std::move(body);
    response.prepare_payload();
    return response;
}

Response json_response(const Request& request, http::status status, const json::value& body) {
    return make_response(request, status, json::serialize(body) + "\n");
}

Response error_response(const Request& request, http::status status, const std::string& message) {
    return json_response(request, status, json::object{{"error", message}});
}

json::object list_of(const char* key, json::array items) {
    json::object o;
    o[key] = std::move(items);
    return o;
}

bool mutating(http::verb method) { return method != http::verb::get && method != http::verb::head; }

// Constant-time comparison, so the token cannot be guessed a byte at a time by timing.
bool token_matches(const Request& request, const std::string& token) {
    const auto header = request[http::field::authorization];
    const std::string expected = "Bearer " + token;
    return header.size() == expected.size() && CRYPTO_memcmp(header.data(), expected.data(), expected.size()) == 0;
}

bool is_message_action(std::string_view s) { return relay::message_action_from_string(s).has_value(); }

// The methods a path answers to (empty: no such path), so a wrong method gets 405.
std::vector<http::verb> allowed_methods(const std::vector<std::string>& p) {
    using v = http::verb;
    const auto n = p.size();
    if (n == 1 && (p[0] == "healthz" || p[0] == "metrics")) return {v::get};
    if (n < 3 || p[0] != "api" || p[1] != "v1") return {};
    if (p[2] == "queue") {
        if (n == 3) return {v::get};
        if (n == 4) return p[3] == "summary" ? std::vector{v::get} : is_message_action(p[3]) ? std::vector{v::post}
                                                                                              : std::vector{v::get};
        if (n == 5 && is_message_action(p[4])) return {v::post};
        return {};
    }
    if (p[2] == "log" && n == 3) return {v::get};
    if (p[2] == "routes") {
        if (n == 3) return {v::get};
        if (n == 5 && p[4] == "explain") return {v::get};
        if (n == 5 && (p[4] == "hold" || p[4] == "release" || p[4] == "soft-bounce")) return {v::post};
        if (n == 5 && p[4] == "next-hop") return {v::put, v::delete_};
    }
    return {};
}

// Runs fn() on the reader pool and resumes here with its result.
// (fn by reference: GCC 12 destroys by-value coroutine parameters twice.)
template <class Result, class Fn>
awaitable<Result> on_reader(AdminContext& context, const Fn& fn) {
    auto task = [&fn]() -> awaitable<Result> { co_return fn(); };
    auto work = asio::co_spawn(context.readers, std::move(task), asio::use_awaitable);
    Result result = co_await std::move(work);
    co_return result;
}

// The route report's inputs in the daemon: the agent's live state carries the route
// controls (it owns them), so none are read from the spool; the queue depth comes from a
// census on the reader thread. `explain` set: the explanation of that address instead.
awaitable<json::array> route_report(AdminContext& c, const std::string& only_domain, const std::string* explain) {
    const queue::Spool& spool = c.spool;
    auto count = [&spool] { return queue::take_census(spool); };
    const auto census = co_await on_reader<queue::QueueCensus>(c, count);
    const queue::RouteControls controls;
    relay::DeliveryAgent& delivery = c.delivery;
    RouteReportInputs inputs{c.config, c.routes, controls, census,
                             [&delivery](const std::string& domain) -> std::optional<relay::RouteLiveState> {
                                 return delivery.live_state(domain);
                             }};
    inputs.only_domain = only_domain;
    if (!explain) {
        auto routes = co_await describe_routes(c.dns, inputs);
        co_return routes;
    }
    auto explanation = co_await explain_address(c.dns, inputs, *explain);
    co_return json::array{std::move(explanation)};
}

awaitable<Response> metrics(AdminContext& c, const Request& request) {
    GaugeSnapshot gauges;
    gauges.smtp_connections = c.smtp.open_connections();
    for (const auto& route : c.routes.routes()) {
        const auto live = c.delivery.live_state(route.domain);
        gauges.routes.push_back({route.domain, live.down, live.held});
    }
    const queue::Spool& spool = c.spool;
    auto count = [&spool] { return queue::take_census(spool); };
    auto census = co_await on_reader<queue::QueueCensus>(c, count);
    const auto stats = spool.stats();
    for (const auto& [key, count] : census.by_domain_state) gauges.queue_messages[key] = count;
    if (census.oldest_arrival != 0)
        gauges.oldest_message_age_seconds = static_cast<double>(queue::now_micros() - census.oldest_arrival) / 1e6;
    gauges.spool_bytes = stats.used_bytes;
    gauges.spool_max_bytes = stats.map_size;
    gauges.spool_writer = c.writer.stats();
    co_return make_response(request, http::status::ok, c.metrics.render(gauges), "text/plain; version=0.0.4");
}

awaitable<Response> queue_get(AdminContext& c, const Request& request, const Target& t) {
    const queue::Spool& spool = c.spool;
    const auto now = queue::now_micros();
    if (t.path.size() == 4 && t.path[3] == "summary") {
        auto summarize = [&spool, now] { return queue::queue_summary_json(queue::summarize_queue(spool, now)); };
        auto summary = co_await on_reader<json::object>(c, summarize);
        co_return json_response(request, http::status::ok, summary);
    }
    if (t.path.size() == 4) {
        const auto envelope = spool.find_envelope(t.path[3]);
        if (!envelope) co_return error_response(request, http::status::not_found, "no message " + t.path[3] + " in the queue");
        const std::string content = spool.find_content(t.path[3]).value_or(std::string());
        json::array items;
        items.push_back(queue::envelope_detail_json(*envelope, queue::header_section(content), now));
        co_return json_response(request, http::status::ok, list_of("messages", std::move(items)));
    }
    queue::QueueFilter filter;
    filter.domain = t.param("domain");
    if (const auto state = t.param("state"); !state.empty()) {
        filter.state = queue::message_state_from_string(state);
        if (!filter.state) co_return error_response(request, http::status::bad_request, "state must be ready, deferred or held");
    }
    auto scan = [&spool, filter, now] {
        json::array list;
        spool.for_each_envelope([&](const queue::Envelope& e) {
            if (filter.matches(e)) list.push_back(queue::envelope_json(e, now));
            return true;
        });
        return list;
    };
    auto items = co_await on_reader<json::array>(c, scan);
    co_return json_response(request, http::status::ok, list_of("messages", std::move(items)));
}

awaitable<Response> queue_action(AdminContext& c, const Request& request, const Target& t) {
    const bool by_id = t.path.size() == 5;
    const std::string& action_name = by_id ? t.path[4] : t.path[3];
    const auto action = *relay::message_action_from_string(action_name);
    std::vector<std::string> ids;
    std::string domain;
    if (by_id) {
        if (!c.spool.find_envelope(t.path[3]))
            co_return error_response(request, http::status::not_found, "no message " + t.path[3] + " in the queue");
        ids.push_back(t.path[3]);
    } else {
        domain = t.param("domain");
        if (domain.empty() && action != relay::MessageAction::flush)
            co_return error_response(request, http::status::bad_request,
                                     "queue " + action_name + " needs ?domain= (or a queue id in the path)");
        // A scan of every envelope (about 0.6 s per million): on the reader thread, not
        // in the way of intake.
        const relay::DeliveryAgent& delivery = c.delivery;
        auto scan = [&delivery, &domain] { return delivery.messages_for(domain); };
        auto found = co_await on_reader<std::vector<std::string>>(c, scan);
        ids = std::move(found);
    }
    auto touched = co_await c.delivery.act_on_messages(action, ids, domain);
    // A domain may name hundreds of thousands of ids (some MiB of JSON): built on the
    // reader thread too.
    auto render = [&touched, &action_name] {
        json::array messages;
        messages.reserve(touched.size());
        for (const auto& id : touched) messages.push_back(json::object{{"queue_id", id}});
        return json::serialize(json::object{{"action", action_name}, {"messages", std::move(messages)}}) + "\n";
    };
    auto body = co_await on_reader<std::string>(c, render);
    co_return make_response(request, http::status::ok, std::move(body));
}

awaitable<Response> log_get(AdminContext& c, const Request& request, const Target& t) {
    queue::TrackingQuery query;
    const auto error =
        queue::tracking_query_from([&](std::string_view name) { return t.param(std::string(name)); }, queue::now_micros(), query);
    if (!error.empty()) co_return error_response(request, http::status::bad_request, error);
    const queue::Spool& spool = c.spool;
    auto find = [&spool, query] { return queue::tracking_json(queue::TrackingIndex(spool).find(query).messages); };
    auto body = co_await on_reader<std::string>(c, find);
    co_return make_response(request, http::status::ok, std::move(body));
}

awaitable<Response> routes_get(AdminContext& c, const Request& request, const Target& t) {
    const std::string every;
    if (t.path.size() == 3) {
        auto routes = co_await route_report(c, every, nullptr);
        co_return json_response(request, http::status::ok, list_of("routes", std::move(routes)));
    }
    std::string address = t.param("address");
    if (address.empty()) address = "postmaster@" + t.path[3];
    auto items = co_await route_report(c, every, &address);
    const auto& explanation = items.front().as_object();
    if (!explanation.contains("route"))
        co_return error_response(request, http::status::bad_request, std::string(explanation.at("error").as_string()));
    co_return json_response(request, http::status::ok, list_of("routes", std::move(items)));
}

awaitable<Response> route_change(AdminContext& c, const Request& request, const Target& t) {
    const std::string domain = routing::lowercase_ascii(t.path[3]);
    if (!c.routes.find(domain))
        co_return error_response(request, http::status::not_found, "no route serves " + domain);
    const std::string& what = t.path[4];
    std::error_code ec;
    if (what == "hold" || what == "release") {
        ec = co_await c.delivery.hold_route(domain, what == "hold");
    } else if (what == "soft-bounce") {
        const std::string on = t.param("on");
        if (on != "true" && on != "false")
            co_return error_response(request, http::status::bad_request, "soft-bounce needs ?on=true or ?on=false");
        ec = co_await c.delivery.set_soft_bounce(domain, on == "true");
    } else if (request.method() == http::verb::delete_) {
        const std::optional<routing::NextHop> configured;  // named: see the top of the file
        ec = co_await c.delivery.set_next_hop(domain, configured);
    } else {
        std::string text = request.body();
        while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
        while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.erase(0, 1);
        const auto parsed = routing::parse_next_hop(text);
        if (!parsed.next_hop)
            co_return error_response(request, http::status::bad_request, "next hop '" + text + "': " + parsed.error);
        const std::optional<routing::NextHop> override_hop = parsed.next_hop;
        ec = co_await c.delivery.set_next_hop(domain, override_hop);
    }
    if (ec) co_return error_response(request, http::status::service_unavailable, "spool: " + ec.message());
    // The route as GET /api/v1/routes shows it now.
    auto routes = co_await route_report(c, domain, nullptr);
    co_return json_response(request, http::status::ok, list_of("routes", std::move(routes)));
}

}  // namespace

awaitable<Response> handle_admin_request(AdminContext& c, const Request& request) {
    const Target t = parse_target(std::string_view(request.target().data(), request.target().size()));
    const auto allowed = allowed_methods(t.path);
    if (allowed.empty()) co_return error_response(request, http::status::not_found, "no such call");
    if (std::find(allowed.begin(), allowed.end(), request.method()) == allowed.end()) {
        auto response = error_response(request, http::status::method_not_allowed, "method not allowed here");
        std::string allow;
        for (const auto m : allowed) allow += (allow.empty() ? "" : ", ") + std::string(http::to_string(m));
        response.set(http::field::allow, allow);
        co_return response;
    }
    if (mutating(request.method()) && !c.config.admin.token.empty() && !token_matches(request, c.config.admin.token)) {
        auto response = error_response(request, http::status::unauthorized,
                                       "this call changes state: it needs Authorization: Bearer <[admin] token>");
        response.set(http::field::www_authenticate, "Bearer realm=\"edgerelay\"");
        co_return response;
    }

    const auto& p = t.path;
    if (p[0] == "healthz") {
        // The spool answers a read snapshot, and the SMTP listeners are open.
        std::string reason;
        try {
            (void)c.spool.stats();
        } catch (const std::exception& e) {
            reason = e.what();
        }
        if (reason.empty() && !c.smtp.listening()) reason = "SMTP listeners are not up";
        const bool up = reason.empty();
        json::object body{{"status", up ? "ok" : "unavailable"}};
        if (!up) body["reason"] = reason;
        co_return json_response(request, up ? http::status::ok : http::status::service_unavailable, body);
    }
    if (p[0] == "metrics") {
        auto response = co_await metrics(c, request);
        co_return response;
    }
    if (p[2] == "queue" && request.method() == http::verb::get) {
        auto response = co_await queue_get(c, request, t);
        co_return response;
    }
    if (p[2] == "queue") {
        auto response = co_await queue_action(c, request, t);
        co_return response;
    }
    if (p[2] == "log") {
        auto response = co_await log_get(c, request, t);
        co_return response;
    }
    if (request.method() == http::verb::get) {
        auto response = co_await routes_get(c, request, t);
        co_return response;
    }
    auto response = co_await route_change(c, request, t);
    co_return response;
}

}  // namespace edgerelay::admin
