// Decoding of DNS record data (RFC 1035 wire format, as libunbound hands it over),
// without I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace edgerelay::routing {

struct MxRecord {
    std::uint16_t preference = 0;
    std::string exchange;  // lower-case, no trailing dot; "" for the root (null MX, RFC 7505)
    bool operator==(const MxRecord&) const = default;
};

// A domain name in uncompressed wire format starting at offset; offset moves past it.
// Compression pointers are refused (libunbound's rdata carries none).
std::optional<std::string> parse_wire_name(std::string_view data, std::size_t& offset);
std::optional<MxRecord> parse_mx_rdata(std::string_view rdata);
std::optional<std::string> parse_a_rdata(std::string_view rdata);     // "192.0.2.1"
std::optional<std::string> parse_aaaa_rdata(std::string_view rdata);  // "2001:db8::1"

}  // namespace edgerelay::routing
