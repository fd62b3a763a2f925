// Decoding of the record data libunbound hands over (RFC 1035 3.1, 3.3.9, 3.4.1;
// RFC 3596 2.2). The bytes come from the network: every length is checked, and
// anything malformed is refused rather than guessed at.
#include "routing/dns_records.h"

#include <arpa/inet.h>

namespace edgerelay::routing {
namespace {

constexpr std::size_t max_label = 63;      // RFC 1035 2.3.4
constexpr std::size_t max_wire_name = 255;  // octets, length bytes and the root included

// The text form is used unescaped (as a query name, in logs and DSNs), so bytes that
// would need escaping in master-file notation -- the dot above all -- are refused.
bool plain_name_byte(unsigned char c) { return c > 0x20 && c < 0x7f && c != '.' && c != '\\'; }

char lower(unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); }

}  // namespace

std::optional<std::string> parse_wire_name(std::string_view data, std::size_t& offset) {
    std::string name;
    std::size_t pos = offset;
    std::size_t wire_length = 0;
    for (;;) {
        if (pos >= data.size()) return std::nullopt;
        const auto length = static_cast<unsigned char>(data[pos++]);
        // 0xC0 marks a compression pointer, 0x40/0x80 the obsolete extended labels:
        // all are larger than a label may be.
        if (length > max_label) return std::nullopt;
        wire_length += 1 + length;
        if (wire_length > max_wire_name) return std::nullopt;
        if (length == 0) break;
        if (data.size() - pos < length) return std::nullopt;
        if (!name.empty()) name += '.';
        for (std::size_t i = 0; i < length; ++i) {
            const auto c = static_cast<unsigned char>(data[pos + i]);
            if (!plain_name_byte(c)) return std::nullopt;
            name += lower(c);
        }
        pos += length;
    }
    offset = pos;
    return name;
}

std::optional<MxRecord> parse_mx_rdata(std::string_view rdata) {
    if (rdata.size() < 3) return std::nullopt;
    MxRecord mx;
    mx.preference = static_cast<std::uint16_t>(static_cast<unsigned char>(rdata[0]) << 8 |
                                               static_cast<unsigned char>(rdata[1]));
    std::size_t offset = 2;
    auto exchange = parse_wire_name(rdata, offset);
    if (!exchange || offset != rdata.size()) return std::nullopt;  // trailing bytes: not an MX
    mx.exchange = std::move(*exchange);
    return mx;
}

std::optional<std::string> parse_a_rdata(std::string_view rdata) {
    char text[INET_ADDRSTRLEN];
    if (rdata.size() != 4 || !inet_ntop(AF_INET, rdata.data(), text, sizeof text)) return std::nullopt;
    return std::string(text);
}

std::optional<std::string> parse_aaaa_rdata(std::string_view rdata) {
    char text[INET6_ADDRSTRLEN];
    if (rdata.size() != 16 || !inet_ntop(AF_INET6, rdata.data(), text, sizeof text)) return std::nullopt;
    return std::string(text);
}

}  // namespace edgerelay::routing
