// `edgerelayctl mx DOMAIN`: do a customer domain's MX records send its mail through this
// relay? The DNS lookups (lookup_mx) are kept apart from the verdict (judge_mx), which
// is a pure function of the answers, so tests hand it made-up records.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "routing/dns_records.h"
#include "routing/dns_resolver.h"
#include "routing/next_hop_resolution.h"

namespace edgerelay::routing {

// What DNS said about one name's addresses (its A and AAAA lookups together).

// Every answer a verdict rests on.
struct MxLookup {
    std::string domain;                          // lower-case, no trailing dot
    DnsStatus status = DnsStatus::temporary_failure;  // of the MX query
    std::string error;                           // of the MX query, when it failed
    std::chrono::seconds ttl{0};                 // of the MX records
    std::vector<MxRecord> records;               // as published, unreadable ones left out
    std::vector<HostAddressLookup> hosts;        // the addresses of records[i].exchange
    HostAddressLookup domain_addresses;          // no MX: where senders go instead (RFC 5321 5.1)
    std::vector<std::string> relay_names;        // [server] hostname and mx_names, lower-case
    std::vector<HostAddressLookup> relay_hosts;  // the addresses of relay_names[i]
};

enum class MxStatus { ok, problems, nxdomain, no_mx, null_mx, dns_error };
std::string_view to_string(MxStatus status);  // "ok", "problems", "nxdomain", "no_mx", ...

struct MxHostVerdict {
    enum class Points { here, elsewhere, unknown };  // unknown: a lookup failed
    std::uint16_t preference = 0;
    std::string exchange;  // "" for a null MX
    std::chrono::seconds ttl{0};
    std::vector<std::string> addresses;
    Points points = Points::elsewhere;
};

struct MxVerdict {
    std::string domain;
    MxStatus status = MxStatus::dns_error;
    std::vector<MxHostVerdict> mx;      // preference order
    std::vector<std::string> problems;  // what is wrong and what it means for mail
    bool ok() const { return status == MxStatus::ok; }
};

// An MX host is this relay when its name is one of relay_names, or when it shares an
// address with them. ok only when every MX host is; a host that could not be judged
// (a temporary DNS failure) makes it dns_error unless another problem is certain.
MxVerdict judge_mx(const MxLookup& lookup);

// The MX records of domain, then every exchange's and every relay name's addresses at
// once. Never throws.
boost::asio::awaitable<MxLookup> lookup_mx(DnsResolver& dns, const std::string& domain,
                                           const std::vector<std::string>& relay_names);

// {"domain","status","mx":[{"preference","exchange","ttl","addresses","points_here"}],"problems"}
boost::json::object mx_verdict_json(const MxVerdict& verdict);
// One line per MX record and a summary line "domain: status: problems".
std::string mx_verdict_text(const MxVerdict& verdict);

}  // namespace edgerelay::routing
