// What an SMTP intake session needs from the rest of the daemon. Owned by main, shared
// by every session on the io thread.
#pragma once

#include <cstdint>

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
    IntakeCounters counters{};
};

}  // namespace edgerelay::relay
