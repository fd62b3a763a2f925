// Accepting admin connections and running their request/response loops.
//
// GCC 12: every co_await lands in a named value (see relay/delivery_agent.cpp).
#include "admin/admin_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <stdexcept>

namespace edgerelay::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::ip::tcp;

namespace {

// A request is a path and at most a next hop: anything bigger is not ours.
constexpr std::size_t kBodyLimit = 64 * 1024;
// Long enough for an operator's slowest call (a bounce of a whole domain), short
// enough that a stuck client does not keep a slot for ever.
constexpr auto kRequestTimeout = std::chrono::seconds(30);
constexpr auto kIdleTimeout = std::chrono::seconds(60);

}  // namespace

AdminServer::AdminServer(asio::io_context& io, AdminContext& context) : io_(io), context_(context) {}

void AdminServer::listen() {
    const auto& endpoint = context_.config.admin.listen;
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(endpoint.host, ec);
    if (ec) throw std::runtime_error("admin listen " + endpoint.to_string() + ": not an IP address");
    auto acceptor = std::make_unique<tcp::acceptor>(io_);
    const tcp::endpoint where(address, endpoint.port);
    acceptor->open(where.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(where, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error("admin listen " + endpoint.to_string() + ": " + ec.message());
    acceptor_ = std::move(acceptor);
    asio::co_spawn(io_, accept_loop(), asio::detached);
}

void AdminServer::stop() {
    stopped_ = true;
    if (acceptor_) {
        boost::system::error_code ignored;
        acceptor_->close(ignored);
    }
    // Kept-alive clients would otherwise hold the daemon's shutdown for their idle time.
    for (auto* socket : open_) {
        boost::system::error_code ignored;
        socket->close(ignored);
    }
}

awaitable<void> AdminServer::accept_loop() {
    while (!stopped_) {
        auto [ec, socket] = co_await acceptor_->async_accept(asio::as_tuple(asio::use_awaitable));
        if (ec) {
            if (stopped_ || ec == asio::error::operation_aborted) co_return;
            continue;  // EMFILE and the like: the next accept may succeed
        }
        asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
    }
}

awaitable<void> AdminServer::serve(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    open_.insert(&stream.socket());
    beast::flat_buffer buffer;
    bool first = true;
    while (!stopped_) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(kBodyLimit);
        stream.expires_after(first ? kRequestTimeout : kIdleTimeout);
        first = false;
        auto [read_ec, read_bytes] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
        (void)read_bytes;
        if (read_ec) {
            if (read_ec == http::error::body_limit || read_ec == http::error::header_limit) {
                Response response{http::status::payload_too_large, 11};
                response.set(http::field::content_type, "application/json");
                response.body() = "{\"error\":\"request too large\"}\n";
                response.prepare_payload();
                stream.expires_after(kRequestTimeout);
                auto [write_ec, written] = co_await http::async_write(stream, response, asio::as_tuple(asio::use_awaitable));
                (void)write_ec;
                (void)written;
            }
            break;
        }
        const Request request = parser.release();
        Response response = co_await handle_admin_request(context_, request);
        stream.expires_after(kRequestTimeout);
        auto [write_ec, written] = co_await http::async_write(stream, response, asio::as_tuple(asio::use_awaitable));
        (void)written;
        if (write_ec || !response.keep_alive()) break;
    }
    open_.erase(&stream.socket());
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

}  // namespace edgerelay::admin
