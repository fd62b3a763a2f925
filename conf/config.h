// The relay's configuration as typed values, with the embedded defaults of SPEC §3.
// conf/ depends on nothing else of edgerelay: every other folder reads these structs.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgerelay::conf {

using Duration = std::chrono::milliseconds;

// "127.0.0.1:2525", "[::1]:2525", "localhost:8025". host keeps no brackets.
struct Endpoint {
    std::string host;
    std::uint16_t port = 0;
    std::string to_string() const;  // "[::1]:2525" for IPv6, "host:port" otherwise
};

// A CIDR block. IPv4 blocks are kept IPv4-mapped (::ffff:a.b.c.d, length + 96) so one
// comparison serves both families.
struct Network {
    std::array<unsigned char, 16> prefix{};
    unsigned length = 0;  // 0..128, in the IPv6-mapped space
    std::string text;     // as written in the file, for messages
    bool contains(const std::array<unsigned char, 16>& v6_or_mapped) const;
};

enum class TlsPolicy { none, may, verify };

struct ServerConfig {
    std::string hostname;  // default: the machine's host name
    std::vector<std::string> mx_names;  // other names customers' MX records use for us, lower-case
    std::vector<Endpoint> listen{{"127.0.0.1", 2525}};
    std::uint64_t max_message_size = 50ull << 20;
    unsigned max_recipients = 1000;
    unsigned max_connections = 10000;
    unsigned max_connections_per_ip = 100;
    std::vector<Network> relay_networks;  // default: 127.0.0.0/8
    std::string tls_certificate;
    std::string tls_private_key;
    Duration command_timeout = std::chrono::minutes(5);
    Duration data_timeout = std::chrono::minutes(10);
    unsigned max_errors = 10;
    unsigned max_received_headers = 50;
    std::string postmaster;  // empty = postmaster@hostname
};

struct SpoolConfig {
    std::string path = "var/spool";
    std::uint64_t max_size = 64ull << 30;
};

struct DnsConfig {
    std::vector<Endpoint> nameservers;  // empty = /etc/resolv.conf
    Duration max_ttl = std::chrono::hours(1);
};

struct DeliveryConfig {
    Duration retry_initial = std::chrono::minutes(1);
    Duration retry_max = std::chrono::minutes(15);
    Duration max_lifetime = std::chrono::hours(24 * 5);
    Duration delay_warning = std::chrono::hours(4);  // 0 disables
    unsigned concurrency_per_destination = 20;
    Duration connect_timeout = std::chrono::seconds(30);
    std::uint16_t port = 25;
};

struct LogConfig {
    std::string path = "var/log/edgerelay.log";
    Duration retention = std::chrono::hours(24 * 30);
};

struct AdminConfig {
    Endpoint listen{"127.0.0.1", 8025};
    std::string token;
};

struct RouteConfig {
    std::string domain;  // lower-cased
    std::string next_hop;
    TlsPolicy tls = TlsPolicy::may;
    unsigned line = 0;           // line of the [[route]] table, for later diagnostics
    unsigned next_hop_line = 0;  // line of the next_hop key
};

// A value-initialised Config lacks the defaults that need the machine or parsing
// (hostname, relay_networks): start from default_config().
struct Config {
    std::string source;  // file name, or "(defaults)"
    ServerConfig server;
    SpoolConfig spool;
    DnsConfig dns;
    DeliveryConfig delivery;
    LogConfig log;
    AdminConfig admin;
    std::vector<RouteConfig> routes;
};

// One problem found in a file; to_string() gives "file:line: key: message".
struct ConfigError {
    std::string file;
    unsigned line = 0;
    std::string key;  // dotted, e.g. "server.max_message_size" or "route[2].tls"
    std::string message;
    std::string to_string() const;
};

struct LoadResult {
    std::optional<Config> config;  // set only when errors is empty
    std::vector<ConfigError> errors;
};

Config default_config();
LoadResult load_config_file(const std::string& path);
LoadResult parse_config(std::string_view toml_text, const std::string& source_name);

// Value parsers, pure, shared with the command-line tools.
std::optional<Duration> parse_duration(std::string_view text);  // "0", "500ms", "90s", "15m", "4h", "5d"
std::optional<std::uint64_t> parse_size(std::string_view text);  // "1024", "10KiB", "50MiB", "64GiB", "1KB"
std::optional<Endpoint> parse_endpoint(std::string_view text);   // needs an explicit port
std::optional<Network> parse_network(std::string_view text);     // "127.0.0.0/8", "::1/128", "10.1.2.3"
std::string format_duration(Duration d);                        // "90s", "15m", ...

}  // namespace edgerelay::conf
