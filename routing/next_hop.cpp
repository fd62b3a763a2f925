// Parsing of next-hop notation (Postfix's transport nexthop syntax, SPEC §3).
#include "routing/next_hop.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace edgerelay::routing {
namespace {

bool is_ip_literal(const std::string& text) {
    unsigned char buf[16];
    return inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

bool is_host_name(std::string_view name) {
    if (name.empty() || name.size() > 253) return false;
    std::size_t label = 0;
    char previous = '.';
    for (char c : name) {
        if (c == '.') {
            if (label == 0 || previous == '-') return false;
            label = 0;
        } else {
            const bool ldh = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
            if (!ldh || (label == 0 && c == '-') || ++label > 63) return false;
        }
        previous = c;
    }
    return label > 0 && previous != '-';
}

}  // namespace

std::string lowercase_ascii(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); });
    return out;
}

std::string NextHop::to_string() const {
    std::string text;
    if (!mx_lookup) {
        text = "[";
        text += (literal && host.find(':') != std::string::npos) ? "IPv6:" + host : host;
        text += "]";
    } else {
        text = host;
    }
    if (port) text += ":" + std::to_string(*port);
    return text;
}

NextHopParse parse_next_hop(std::string_view text) {
    NextHop hop;
    std::string_view host = text;
    std::string_view port_text;
    if (text.empty()) return {std::nullopt, "next hop is empty"};
    if (text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) return {std::nullopt, "missing ']'"};
        host = text.substr(1, close - 1);
        const std::string_view after = text.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return {std::nullopt, "unexpected text after ']'"};
            port_text = after.substr(1);
            if (port_text.empty()) return {std::nullopt, "missing port after ':'"};
        }
        hop.mx_lookup = false;
        if (host.size() > 5 && lowercase_ascii(host.substr(0, 5)) == "ipv6:") host.remove_prefix(5);
    } else {
        const auto colon = text.rfind(':');
        if (colon != std::string_view::npos) {
            host = text.substr(0, colon);
            port_text = text.substr(colon + 1);
            if (port_text.empty()) return {std::nullopt, "missing port after ':'"};
        }
    }
    if (!port_text.empty()) {
        unsigned value = 0;
        const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
        if (ec != std::errc() || end != port_text.data() + port_text.size() || value == 0 || value > 65535)
            return {std::nullopt, "bad port '" + std::string(port_text) + "'"};
        hop.port = static_cast<std::uint16_t>(value);
    }
    hop.host = lowercase_ascii(host);
    if (is_ip_literal(hop.host)) {
        // A bare address only makes sense without an MX lookup: Postfix requires brackets.
        if (hop.mx_lookup) return {std::nullopt, "an IP address must be written in brackets, e.g. [" + hop.host + "]"};
        hop.literal = true;
    } else if (!is_host_name(hop.host)) {
        return {std::nullopt, "bad host name '" + std::string(host) + "'"};
    }
    return {hop, {}};
}

}  // namespace edgerelay::routing
