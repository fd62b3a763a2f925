// Where a next hop leads right now: MX lookup (or not), then the addresses of every
// host, in the order delivery tries them (RFC 5321 5.1). Resolved again for every
// delivery attempt through the resolver's TTL-bounded cache.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "conf/config.h"
#include "routing/dns_records.h"
#include "routing/dns_resolver.h"
#include "routing/next_hop.h"

namespace edgerelay::routing {

struct TargetHost {
    std::string name;                    // MX exchange or the next-hop host; the literal for [ip]
    std::uint16_t preference = 0;        // MX preference (0 without MX)
    std::vector<std::string> addresses;  // every A and AAAA address, IPv4 first
    std::uint16_t port = 25;
};

struct Resolution {
    enum class Outcome { ok, temporary_failure, permanent_failure };
    Outcome outcome = Outcome::temporary_failure;
    std::vector<TargetHost> hosts;   // try order: preference, equal preferences shuffled
    std::vector<MxRecord> mx;        // as published (for explain and logs)
    bool implicit_mx = false;        // no MX: the host itself (RFC 5321 5.1)
    std::chrono::seconds ttl{0};     // the shortest TTL among the answers used
    std::string enhanced_status;     // failures: "4.4.3" DNS trouble, "5.1.2" NXDOMAIN,
                                     // "5.1.10" null MX, "4.4.6" MX points back at us
    std::string error;               // failures: what happened, for logs and DSNs

    // The set of "address:port" this resolution leads to, sorted: two resolutions lead
    // to the same place exactly when these are equal (order changes are not moves).
    std::string host_set() const;
};

// One name's A and AAAA answers, read.
struct HostAddressLookup {
    std::vector<std::string> addresses;  // IPv4 first
    bool nxdomain = false;               // both answers say the name does not exist
    std::string error;                   // set when a lookup failed temporarily ("SERVFAIL")
};
HostAddressLookup read_host_addresses(const DnsAnswer& a, const DnsAnswer& aaaa);

// Who "we" are, to spot an MX that points back at this relay.
struct SelfIdentity {
    std::vector<std::string> names;      // our hostname and any other names, lower-case
    std::vector<std::string> addresses;  // addresses we listen on (specific ones only)
};
// [server] hostname, and the listen addresses on the delivery port.
SelfIdentity self_identity_of(const conf::Config& config);

// An MX list in which we appear keeps only the hosts preferred over us (RFC 5321 5.1);
// when none is left the result is a temporary failure "4.4.6" (a configuration error
// the caller logs). NXDOMAIN of the next hop is permanent (5.1.2); a null MX is
// permanent (5.1.10); SERVFAIL and timeouts are temporary (4.4.3); MX hosts whose
// names do not resolve are skipped, and none left is temporary (4.4.3).
// Equal preferences in a new random order (hosts already in try order): a resolution
// reused within its TTL still spreads mail over equal-preference hosts.
void shuffle_equal_preferences(std::vector<TargetHost>& hosts, std::mt19937& random);

boost::asio::awaitable<Resolution> resolve_next_hop(DnsResolver& dns, const NextHop& hop, std::uint16_t default_port,
                                                    const SelfIdentity& self, std::mt19937& random);

}  // namespace edgerelay::routing
