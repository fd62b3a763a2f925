// The SMTP listeners: accept connections on every [server] listen address, enforce
// max_connections and max_connections_per_ip, and start a session for each client.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "relay/intake_services.h"

namespace edgerelay::relay {

class SmtpSession;

class SmtpServer {
public:
    SmtpServer(boost::asio::io_context& io, IntakeServices& services);
    ~SmtpServer();

    // Binds every listen address; throws std::runtime_error naming the address.
    void listen();
    // Stops accepting and closes every session (daemon shutdown).
    void stop();

    std::size_t open_connections() const { return sessions_.size(); }
    bool listening() const { return !acceptors_.empty() && !stopped_; }

private:
    boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor);
    void admit(boost::asio::ip::tcp::socket socket);
    void forget(SmtpSession* session);

    boost::asio::io_context& io_;
    IntakeServices& services_;
    std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
    std::unordered_set<SmtpSession*> sessions_;
    std::unordered_map<std::string, unsigned> per_ip_;
    bool stopped_ = false;
};

}  // namespace edgerelay::relay
