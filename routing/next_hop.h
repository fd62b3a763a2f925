// A route's next hop in Postfix's notation (SPEC §3):
//   host          MX lookup of host, then its A/AAAA if it has no MX
//   host:port     MX lookup, every MX host on that port
//   [host]        A/AAAA of host only, no MX
//   [host]:port   the same on that port
//   [192.0.2.1]:25, [IPv6:2001:db8::1]:25   a literal address
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace edgerelay::routing {

struct NextHop {
    std::string host;                  // lower-case name, or the literal address
    std::optional<std::uint16_t> port; // unset: the delivery port from [delivery] port
    bool mx_lookup = true;             // false for [host] forms
    bool literal = false;              // host is an IP address
    std::string to_string() const;     // back to the notation above
};

struct NextHopParse {
    std::optional<NextHop> next_hop;
    std::string error;  // what is wrong, when next_hop is empty
};

NextHopParse parse_next_hop(std::string_view text);

// Host and domain names compare case-insensitively (RFC 1035 2.3.3): ASCII lower case.
std::string lowercase_ascii(std::string_view text);

}  // namespace edgerelay::routing
