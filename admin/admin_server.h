// The admin API's HTTP/1.1 listener (Boost.Beast) on [admin] listen: one coroutine
// per connection reads a request, has admin_api answer it, writes the response, and
// loops while the client keeps the connection alive.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <unordered_set>

#include "admin/admin_api.h"

namespace edgerelay::admin {

class AdminServer {
public:
    AdminServer(boost::asio::io_context& io, AdminContext& context);
    // Binds [admin] listen; throws std::runtime_error naming the address (startup).
    void listen();
    void stop();

private:
    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);

    boost::asio::io_context& io_;
    AdminContext& context_;
    std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
    std::unordered_set<boost::asio::ip::tcp::socket*> open_;  // closed by stop()
    bool stopped_ = false;
};

}  // namespace edgerelay::admin
