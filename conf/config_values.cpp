// Parsers for the value types a configuration file spells as strings: durations, sizes,
// endpoints and networks. Pure functions with no I/O, shared with edgerelayctl.
#include "conf/config.h"

#include <arpa/inet.h>

#include <charconv>
#include <limits>
#include <utility>

namespace edgerelay::conf {
namespace {

// Decimal digits only: no sign, no spaces, no hex, and the whole text must be used,
// so "10 m", "+5s" and "0x10" are rejected instead of half-read.
std::optional<std::uint64_t> parse_digits(std::string_view text) {
    if (text.empty() || text.front() < '0' || text.front() > '9') return std::nullopt;
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return value;
}

// Splits "50MiB" into "50" and "MiB".
std::pair<std::string_view, std::string_view> split_number(std::string_view text) {
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    return {text.substr(0, digits), text.substr(digits)};
}

std::optional<std::uint64_t> multiply(std::uint64_t value, std::uint64_t unit) {
    if (unit != 0 && value > std::numeric_limits<std::uint64_t>::max() / unit) return std::nullopt;
    return value * unit;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

struct Unit {
    std::string_view name;
    std::uint64_t factor;
};

// Largest first, so format_duration picks the most readable unit that is exact.
constexpr Unit duration_units[] = {
    {"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}, {"ms", 1},
};

// Binary units as operators mean them for memory and map sizes; the SI spellings are
// accepted too, as powers of 1000, because people write "10MB" and mean it literally.
constexpr Unit size_units[] = {
    {"", 1},           {"B", 1},
    {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {"TiB", 1ull << 40},
    {"KB", 1'000},     {"MB", 1'000'000},   {"GB", 1'000'000'000}, {"TB", 1'000'000'000'000},
};

// A host name as far as an endpoint needs: letters, digits, hyphens, dots and (for
// service names like _submission) underscores. A name made only of digits and dots must
// be a real IPv4 address, so a typo such as "127.0.1:25" is not taken for a host name.
bool plausible_host(std::string_view host) {
    bool only_digits_and_dots = true;
    for (char c : host) {
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && c != '.' && c != '_') return false;
        if ((c < '0' || c > '9') && c != '.') only_digits_and_dots = false;
    }
    if (only_digits_and_dots) {
        unsigned char buf[4];
        return inet_pton(AF_INET, std::string(host).c_str(), buf) == 1;
    }
    return true;
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text) {
    // A bare number has no unit and is ambiguous, except zero, which means "off".
    if (text == "0") return Duration::zero();
    auto [number, unit] = split_number(text);
    auto value = parse_digits(number);
    if (!value) return std::nullopt;
    for (const Unit& u : duration_units) {
        if (unit != u.name) continue;
        auto ms = multiply(*value, u.factor);
        if (!ms || *ms > std::uint64_t(std::numeric_limits<Duration::rep>::max())) return std::nullopt;
        return Duration(Duration::rep(*ms));
    }
    return std::nullopt;
}

std::string format_duration(Duration d) {
    if (d == Duration::zero()) return "0";
    if (d < Duration::zero()) {
        // Appending, not "-" + string: GCC 12 -O3 reports a false -Wrestrict on the latter.
        std::string negative = "-";
        negative += format_duration(-d);
        return negative;
    }
    for (const Unit& u : duration_units) {
        auto factor = Duration::rep(u.factor);
        if (d.count() % factor == 0) return std::to_string(d.count() / factor) + std::string(u.name);
    }
    return std::to_string(d.count()) + "ms";  // not reached: the last unit divides everything
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
    auto [number, unit] = split_number(text);
    auto value = parse_digits(number);
    if (!value) return std::nullopt;
    for (const Unit& u : size_units) {
        if (equals_ignoring_case(unit, u.name)) return multiply(*value, u.factor);
    }
    return std::nullopt;
}

std::optional<Endpoint> parse_endpoint(std::string_view text) {
    std::string_view host;
    std::string_view rest;
    if (text.starts_with('[')) {
        // RFC 3986 style: an IPv6 address carries colons, so it needs brackets.
        auto close = text.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        host = text.substr(1, close - 1);
        rest = text.substr(close + 1);
        unsigned char buf[16];
        if (inet_pton(AF_INET6, std::string(host).c_str(), buf) != 1) return std::nullopt;
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return std::nullopt;
        host = text.substr(0, colon);
        rest = text.substr(colon);
        if (host.empty() || !plausible_host(host)) return std::nullopt;
    }
    if (!rest.starts_with(':')) return std::nullopt;
    auto port = parse_digits(rest.substr(1));
    if (!port || *port < 1 || *port > 65535) return std::nullopt;
    return Endpoint{std::string(host), std::uint16_t(*port)};
}

std::optional<Network> parse_network(std::string_view text) {
    auto slash = text.find('/');
    std::string address(text.substr(0, slash));
    Network net;
    net.text = std::string(text);
    unsigned max_length = 128;
    unsigned char v4[4];
    if (inet_pton(AF_INET, address.c_str(), v4) == 1) {
        // Mapped form ::ffff:a.b.c.d, the way a dual-stack socket reports IPv4 peers.
        net.prefix[10] = 0xff;
        net.prefix[11] = 0xff;
        std::copy(std::begin(v4), std::end(v4), net.prefix.begin() + 12);
        max_length = 32;
    } else if (inet_pton(AF_INET6, address.c_str(), net.prefix.data()) != 1) {
        return std::nullopt;
    }
    unsigned length = max_length;
    if (slash != std::string_view::npos) {
        auto written = parse_digits(text.substr(slash + 1));
        if (!written || *written > max_length) return std::nullopt;
        length = unsigned(*written);
    }
    net.length = length + (128 - max_length);
    // Like Postfix's mynetworks, refuse "10.0.0.1/8": the host bits hint at a typo in
    // either the address or the length, and guessing which would widen the relay.
    for (unsigned bit = net.length; bit < 128; ++bit) {
        if (net.prefix[bit / 8] & (0x80u >> (bit % 8))) return std::nullopt;
    }
    return net;
}

}  // namespace edgerelay::conf
