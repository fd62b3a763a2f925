// What an SMTP intake session needs from the rest of the daemon. Owned by main, shared
// by every session on the intake thread: the writer, the log and on_queued must take
// calls from it while the delivery thread uses them too.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace boost::asio::ssl {
class context;
}

namespace edgerelay::conf {
struct Config;
}
namespace edgerelay::routing {
class RouteTable;
}
namespace edgerelay::queue {
class SpoolWriter;
class EventLog;
}  // namespace edgerelay::queue

namespace edgerelay::relay {

struct IntakeCounters {
    std::uint64_t connections = 0;
    std::uint64_t received = 0;
    std::uint64_t rejected = 0;
};

struct IntakeServices {
    const conf::Config& config;
    const routing::RouteTable& routes;
    queue::SpoolWriter& writer;
    queue::EventLog& log;
    boost::asio::ssl::context* tls = nullptr;  // null: STARTTLS not offered
    // Told of every message once it is durable (delivery starts at once); called on the
    // intake thread.
    std::function<void(const std::string& queue_id)> on_queued;
    IntakeCounters counters{};
};

}  // namespace edgerelay::relay
