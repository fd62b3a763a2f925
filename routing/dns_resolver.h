// Asynchronous DNS through libunbound, driven by the Asio loop: libunbound's result
// descriptor is watched by the io_context and its callbacks complete coroutines.
// libunbound keeps the cache; it is capped at [dns] max_ttl and never outlives a
// record's own TTL, so a changed record is seen within its TTL.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"

namespace edgerelay::routing {

enum class DnsStatus {
    ok,                 // answers present
    nodata,             // the name exists, no record of that type
    nxdomain,           // the name does not exist
    temporary_failure,  // SERVFAIL, timeout, refused, resolver error: try later
};

struct DnsAnswer {
    DnsStatus status = DnsStatus::temporary_failure;
    std::vector<std::string> rdata;  // wire-format record data, one per record
    std::chrono::seconds ttl{0};     // remaining TTL of the answer (0 for failures)
    std::string canonical_name;      // after CNAMEs, lower-case, no trailing dot
    std::string error;               // why, for failures ("SERVFAIL", "timeout", ...)
};

class DnsResolver {
public:
    static constexpr std::uint16_t type_a = 1;
    static constexpr std::uint16_t type_mx = 15;
    static constexpr std::uint16_t type_aaaa = 28;

    // nameservers "ip:port" (forwarders) or, when empty, /etc/resolv.conf. Throws
    // std::runtime_error when libunbound cannot be set up (startup only).
    DnsResolver(boost::asio::any_io_executor executor, const conf::DnsConfig& config);
    ~DnsResolver();
    DnsResolver(const DnsResolver&) = delete;
    DnsResolver& operator=(const DnsResolver&) = delete;

    // Completes on the resolver's executor. Never throws; a query that takes longer
    // than `timeout` ends as temporary_failure ("timeout").
    boost::asio::awaitable<DnsAnswer> query(std::string name, std::uint16_t rrtype,
                                            std::chrono::milliseconds timeout = std::chrono::seconds(10));

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace edgerelay::routing
