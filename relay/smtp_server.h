// The SMTP listeners: accept connections on every [server] listen address, enforce
// max_connections and max_connections_per_ip, and start a session for each client.
// Everything but open_connections() and listening() runs on the io_context given, the
// intake thread's own.
#pragma once

#include <atomic>
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

    // Any thread may ask (the admin API runs on another one than intake).
    std::size_t open_connections() const { return open_.load(std::memory_order_relaxed); }
    bool listening() const { return listening_.load(std::memory_order_relaxed); }

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
    std::atomic<std::size_t> open_{0};
    std::atomic<bool> listening_{false};
};

}  // namespace edgerelay::relay
