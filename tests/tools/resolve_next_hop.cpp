// Test driver: resolves a next hop through the real resolver (libunbound) and prints
// one JSON line per resolution, so integration tests can check routing against a DNS
// server they control. Repeated resolutions share one resolver, and so its cache.
//
//   resolve_next_hop [--nameserver IP:PORT]... [--max-ttl DURATION] [--port N]
//                    [--self-name NAME]... [--self-address IP]... [--seed N]
//                    [--repeat N --interval-ms M] [--destroy-after-ms N] NEXT_HOP
//   resolve_next_hop [options] --stdin      one resolution per line read (a next hop)
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string_view>
#include <thread>

#include "conf/config.h"
#include "routing/next_hop_resolution.h"

namespace asio = boost::asio;
namespace json = boost::json;
using namespace edgerelay;

namespace {

struct Options {
    conf::DnsConfig dns;
    routing::SelfIdentity self;
    routing::NextHop hop;
    std::uint16_t port = 25;
    unsigned repeat = 1;
    std::chrono::milliseconds interval{0};
    unsigned seed = std::random_device{}();
    bool from_stdin = false;
    std::chrono::milliseconds destroy_after{0};
};

[[noreturn]] void usage(const std::string& why) {
    std::cerr << "resolve_next_hop: " << why << "\n";
    std::exit(2);
}

Options parse_options(int argc, char** argv) {
    Options o;
    std::optional<std::string> hop;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(std::string(arg) + " needs a value");
            return argv[++i];
        };
        if (arg == "--nameserver") {
            auto endpoint = conf::parse_endpoint(value());
            if (!endpoint) usage("bad --nameserver");
            o.dns.nameservers.push_back(*endpoint);
        } else if (arg == "--max-ttl") {
            auto duration = conf::parse_duration(value());
            if (!duration) usage("bad --max-ttl");
            o.dns.max_ttl = *duration;
        } else if (arg == "--port") {
            o.port = static_cast<std::uint16_t>(std::stoul(value()));
        } else if (arg == "--self-name") {
            o.self.names.push_back(value());
        } else if (arg == "--self-address") {
            o.self.addresses.push_back(value());
        } else if (arg == "--seed") {
            o.seed = static_cast<unsigned>(std::stoul(value()));
        } else if (arg == "--repeat") {
            o.repeat = static_cast<unsigned>(std::stoul(value()));
        } else if (arg == "--interval-ms") {
            o.interval = std::chrono::milliseconds(std::stoul(value()));
        } else if (arg == "--stdin") {
            o.from_stdin = true;
        } else if (arg == "--destroy-after-ms") {
            o.destroy_after = std::chrono::milliseconds(std::stoul(value()));
        } else if (!arg.empty() && arg.front() != '-' && !hop) {
            hop = std::string(arg);
        } else {
            usage("unknown argument " + std::string(arg));
        }
    }
    if (!hop) hop = "[127.0.0.1]";  // --stdin names its own

    auto parsed = routing::parse_next_hop(*hop);
    if (!parsed.next_hop) usage("bad next hop: " + parsed.error);
    o.hop = *parsed.next_hop;
    return o;
}

const char* outcome_name(routing::Resolution::Outcome outcome) {
    switch (outcome) {
        case routing::Resolution::Outcome::ok: return "ok";
        case routing::Resolution::Outcome::temporary_failure: return "temporary_failure";
        case routing::Resolution::Outcome::permanent_failure: return "permanent_failure";
    }
    return "?";
}

json::object to_json(const routing::Resolution& r) {
    json::array hosts;
    for (const auto& host : r.hosts) {
        json::array addresses(host.addresses.begin(), host.addresses.end());
        hosts.push_back(json::object{{"name", host.name},
                                     {"preference", host.preference},
                                     {"addresses", std::move(addresses)},
                                     {"port", host.port}});
    }
    json::array mx;
    for (const auto& record : r.mx) mx.push_back(json::object{{"preference", record.preference}, {"exchange", record.exchange}});
    return json::object{{"outcome", outcome_name(r.outcome)},
                        {"enhanced_status", r.enhanced_status},
                        {"error", r.error},
                        {"ttl", r.ttl.count()},
                        {"implicit_mx", r.implicit_mx},
                        {"mx", std::move(mx)},
                        {"hosts", std::move(hosts)},
                        {"host_set", r.host_set()}};
}

asio::awaitable<void> resolve_into(routing::DnsResolver& dns, routing::NextHop hop, const Options& o,
                                   std::mt19937& random, routing::Resolution& out) {
    out = co_await routing::resolve_next_hop(dns, hop, o.port, o.self, random);
}

void report_exception(std::exception_ptr e) {
    if (!e) return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& error) {
        std::cerr << "resolve_next_hop: " << error.what() << "\n";
        std::exit(1);
    }
}

}  // namespace

// Each resolution runs the loop until it is done: an idle resolver must leave no work
// behind, or io.run() would not return.
int main(int argc, char** argv) {
    const Options o = parse_options(argc, argv);
    asio::io_context io;
    auto dns = std::make_unique<routing::DnsResolver>(io.get_executor(), o.dns);
    std::mt19937 random(o.seed);
    auto resolve = [&](const routing::NextHop& hop) {
        routing::Resolution r;
        asio::co_spawn(io, resolve_into(*dns, hop, o, random, r), report_exception);
        if (o.destroy_after.count() > 0) {
            // The resolver goes away with the query outstanding (shutdown, reload).
            auto timer = std::make_shared<asio::steady_timer>(io, o.destroy_after);
            timer->async_wait([&, timer](boost::system::error_code) { dns.reset(); });
        }
        io.restart();
        io.run();
        std::cout << json::serialize(to_json(r)) << std::endl;  // flushed: tests read it live
    };
    if (o.from_stdin) {
        // One resolution per input line: the line's next hop, or the argument's when empty.
        for (std::string line; std::getline(std::cin, line);) {
            if (line.empty()) {
                resolve(o.hop);
                continue;
            }
            auto parsed = routing::parse_next_hop(line);
            if (!parsed.next_hop) usage("bad next hop: " + parsed.error);
            resolve(*parsed.next_hop);
        }
        return 0;
    }
    for (unsigned i = 0; i < o.repeat; ++i) {
        if (i > 0) std::this_thread::sleep_for(o.interval);
        resolve(o.hop);
        if (!dns) break;
    }
    return 0;
}
