// One synchronous request to edgerelayd's admin API (Boost.Beast).
#include "programs/ctl/admin_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <limits>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <chrono>

#include "programs/ctl/ctl.h"

namespace edgerelay::ctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

std::string AdminResponse::error() const {
    if (body.is_object())
        if (const auto* message = body.as_object().if_contains("error"); message && message->is_string())
            return std::string(message->as_string());
    return "HTTP " + std::to_string(status) + (text.empty() ? "" : ": " + text);
}

std::string url_encode(std::string_view text) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '@') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

namespace {

// nullopt: nothing answers at [admin] listen (connection refused and the like).
std::optional<AdminResponse> exchange(const conf::Config& config, http::verb method, const std::string& target,
                                      const std::string& body, std::string& connect_error) {
    const auto& endpoint = config.admin.listen;
    const std::string where = endpoint.to_string();
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(60));
    boost::system::error_code ec;
    asio::ip::tcp::resolver resolver(io);
    const auto addresses = resolver.resolve(endpoint.host, std::to_string(endpoint.port), ec);
    if (!ec) stream.connect(addresses, ec);
    if (ec) {
        connect_error = ec.message();
        return std::nullopt;
    }

    http::request<http::string_body> request{method, target, 11};
    request.set(http::field::host, where);
    request.set(http::field::user_agent, "edgerelayctl");
    if (!config.admin.token.empty()) request.set(http::field::authorization, "Bearer " + config.admin.token);
    if (!body.empty() || method == http::verb::put || method == http::verb::post) {
        request.set(http::field::content_type, "text/plain");
        request.body() = body;
        request.prepare_payload();
    }
    http::write(stream, request, ec);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    // A domain-wide action names every message it touched: some 30 MiB for a million,
    // beyond Beast's default limit of 8 MiB. The daemon is ours and on loopback.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    if (!ec) http::read(stream, buffer, parser, ec);
    if (ec) fail("the admin API at " + where + " did not answer (" + ec.message() + ")", 1);
    const auto& response = parser.get();

    AdminResponse result;
    result.status = response.result_int();
    result.text = response.body();
    boost::system::error_code parse_error;
    result.body = boost::json::parse(result.text, parse_error);
    if (parse_error) result.body = nullptr;
    if (result.status == 401)
        fail("the admin API at " + where + " refused the request (401): " + result.error() +
                 "; edgerelayctl sends [admin] token from its configuration (--config FILE)",
             1);
    return result;
}

}  // namespace

AdminResponse admin_request(const conf::Config& config, http::verb method, const std::string& target,
                            const std::string& body) {
    std::string connect_error;
    auto response = exchange(config, method, target, body, connect_error);
    if (!response)
        fail("edgerelayd is not running, or not answering on its admin API at " + config.admin.listen.to_string() +
                 " (" + connect_error + "); this command needs the daemon. Start it, or check [admin] listen in "
                 "the configuration.",
             1);
    return std::move(*response);
}

std::optional<AdminResponse> try_admin_request(const conf::Config& config, http::verb method, const std::string& target) {
    std::string connect_error;
    return exchange(config, method, target, {}, connect_error);
}

}  // namespace edgerelay::ctl
