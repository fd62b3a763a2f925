// Listeners and connection limits.
#include "relay/smtp_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <stdexcept>

#include "conf/config.h"
#include "relay/smtp_reply.h"
#include "relay/smtp_session.h"

namespace edgerelay::relay {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// A refused client still hears why (421 4.7.0), then the connection closes.
asio::awaitable<void> refuse(tcp::socket socket, Reply reply) {
    const std::string line = format_reply(reply);
    co_await asio::async_write(socket, asio::buffer(line), asio::as_tuple(asio::use_awaitable));
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
}

tcp::endpoint resolve_listen(asio::io_context& io, const conf::Endpoint& endpoint) {
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(endpoint.host, ec);
    if (!ec) return {address, endpoint.port};
    // A host name here is resolved once at startup, like Postfix's inet_interfaces.
    tcp::resolver resolver(io);
    auto results = resolver.resolve(endpoint.host, std::to_string(endpoint.port), ec);
    if (ec || results.empty())
        throw std::runtime_error("listen " + endpoint.to_string() + ": cannot resolve: " + ec.message());
    return results.begin()->endpoint();
}

}  // namespace

SmtpServer::SmtpServer(asio::io_context& io, IntakeServices& services) : io_(io), services_(services) {}

SmtpServer::~SmtpServer() { stop(); }

void SmtpServer::listen() {
    for (const auto& endpoint : services_.config.server.listen) {
        auto acceptor = std::make_unique<tcp::acceptor>(io_);
        const tcp::endpoint where = resolve_listen(io_, endpoint);
        boost::system::error_code ec;
        acceptor->open(where.protocol(), ec);
        if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
        if (!ec) acceptor->bind(where, ec);
        if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
        if (ec) throw std::runtime_error("listen " + endpoint.to_string() + ": " + ec.message());
        acceptors_.push_back(std::move(acceptor));
    }
    for (auto& acceptor : acceptors_) asio::co_spawn(io_, accept_loop(*acceptor), asio::detached);
    listening_ = !acceptors_.empty();
}

void SmtpServer::stop() {
    if (stopped_) return;
    stopped_ = true;
    listening_ = false;
    for (auto& acceptor : acceptors_) {
        boost::system::error_code ignored;
        acceptor->close(ignored);
    }
    // close() may end a session synchronously later; iterate over a copy.
    const std::vector<SmtpSession*> open(sessions_.begin(), sessions_.end());
    for (SmtpSession* session : open) session->close();
}

asio::awaitable<void> SmtpServer::accept_loop(tcp::acceptor& acceptor) {
    while (!stopped_) {
        auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
        if (stopped_) co_return;
        if (ec) {
            // Out of descriptors and the like: keep serving the clients we have.
            if (ec == asio::error::operation_aborted) co_return;
            continue;
        }
        admit(std::move(socket));
    }
}

void SmtpServer::admit(tcp::socket socket) {
    const auto& server = services_.config.server;
    boost::system::error_code ec;
    const auto remote = socket.remote_endpoint(ec);
    if (ec) return;
    std::string ip = remote.address().is_v6() && remote.address().to_v6().is_v4_mapped()
                         ? asio::ip::make_address_v4(asio::ip::v4_mapped, remote.address().to_v6()).to_string()
                         : remote.address().to_string();
    if (sessions_.size() >= server.max_connections) {
        asio::co_spawn(io_, refuse(std::move(socket), Reply::too_many_connections), asio::detached);
        return;
    }
    unsigned& from_ip = per_ip_[ip];
    if (from_ip >= server.max_connections_per_ip) {
        asio::co_spawn(io_, refuse(std::move(socket), Reply::too_many_from_ip), asio::detached);
        return;
    }
    ++from_ip;
    socket.set_option(tcp::no_delay(true), ec);
    auto session = std::make_shared<SmtpSession>(std::move(socket), std::move(ip), services_,
                                                 [this](SmtpSession* s) { forget(s); });
    sessions_.insert(session.get());
    open_ = sessions_.size();
    session->start();
}

void SmtpServer::forget(SmtpSession* session) {
    sessions_.erase(session);
    open_ = sessions_.size();
    const auto it = per_ip_.find(session->client_ip());
    if (it != per_ip_.end() && --it->second == 0) per_ip_.erase(it);
}

}  // namespace edgerelay::relay
