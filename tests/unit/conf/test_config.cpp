// Unit tests of the configuration loader (conf/config.cpp): defaults, the sample file,
// and every class of error with its file, line and key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "conf/config.h"

using namespace edgerelay::conf;
using namespace std::chrono_literals;

namespace {

// The tests run in the build directory; the sources are found from this file's path.
std::filesystem::path repo_root() {
    return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().parent_path();
}

// A file of the test's own, removed when the test ends; named by pid, since several
// people run these tests on the same machine at once.
class TempFile {
  public:
    explicit TempFile(const std::string& contents) {
        path_ = std::filesystem::temp_directory_path() /
                ("edgerelay_conf_test_" + std::to_string(getpid()) + "_" + std::to_string(counter_++) + ".toml");
        std::ofstream(path_) << contents;
    }
    ~TempFile() { std::filesystem::remove(path_); }
    std::string path() const { return path_.string(); }

  private:
    static inline int counter_ = 0;
    std::filesystem::path path_;
};

std::vector<std::string> messages(const LoadResult& result) {
    std::vector<std::string> out;
    for (const ConfigError& e : result.errors) out.push_back(e.to_string());
    return out;
}

// Parses text expected to hold exactly one error, and returns it.
ConfigError only_error(std::string_view text) {
    LoadResult result = parse_config(text, "t.toml");
    EXPECT_FALSE(result.config);
    EXPECT_EQ(result.errors.size(), 1u) << ::testing::PrintToString(messages(result));
    return result.errors.empty() ? ConfigError{} : result.errors.front();
}

Config parsed_ok(std::string_view text) {
    LoadResult result = parse_config(text, "t.toml");
    EXPECT_TRUE(result.errors.empty()) << ::testing::PrintToString(messages(result));
    return result.config.value_or(Config{});
}

// What a config file must have for its route tables to be complete.
const std::string route = "[[route]]\ndomain = \"a.example\"\nnext_hop = \"mx.a.example\"\n";

}  // namespace

TEST(ConfigError, Formatting) {
    EXPECT_EQ((ConfigError{"f.toml", 7, "server.lisen", "unknown key"}).to_string(), "f.toml:7: server.lisen: unknown key");
    EXPECT_EQ((ConfigError{"f.toml", 0, "server.lisen", "unknown key"}).to_string(), "f.toml: server.lisen: unknown key");
    EXPECT_EQ((ConfigError{"f.toml", 3, "", "syntax error: x"}).to_string(), "f.toml:3: syntax error: x");
    EXPECT_EQ((ConfigError{"f.toml", 0, "", "cannot read"}).to_string(), "f.toml: cannot read");
}

TEST(DefaultConfig, MatchesTheSpec) {
    Config c = default_config();
    EXPECT_EQ(c.source, "(defaults)");
    char host[256] = {};
    ASSERT_EQ(gethostname(host, sizeof host - 1), 0);
    EXPECT_EQ(c.server.hostname, host);
    ASSERT_EQ(c.server.listen.size(), 1u);
    EXPECT_EQ(c.server.listen[0].to_string(), "127.0.0.1:2525");
    EXPECT_EQ(c.server.max_message_size, 50ull << 20);
    EXPECT_EQ(c.server.max_recipients, 1000u);
    EXPECT_EQ(c.server.max_connections, 10000u);
    EXPECT_EQ(c.server.max_connections_per_ip, 100u);
    ASSERT_EQ(c.server.relay_networks.size(), 1u);
    EXPECT_EQ(c.server.relay_networks[0].text, "127.0.0.0/8");
    EXPECT_EQ(c.server.relay_networks[0].length, 104u);
    EXPECT_EQ(c.server.tls_certificate, "");
    EXPECT_EQ(c.server.tls_private_key, "");
    EXPECT_EQ(c.server.command_timeout, 5min);
    EXPECT_EQ(c.server.data_timeout, 10min);
    EXPECT_EQ(c.server.max_errors, 10u);
    EXPECT_EQ(c.server.max_received_headers, 50u);
    EXPECT_EQ(c.server.postmaster, "");
    EXPECT_TRUE(c.server.mx_names.empty());
    EXPECT_EQ(c.spool.path, "var/spool");
    EXPECT_EQ(c.spool.max_size, 64ull << 30);
    EXPECT_TRUE(c.dns.nameservers.empty());
    EXPECT_EQ(c.dns.max_ttl, 1h);
    EXPECT_EQ(c.delivery.retry_initial, 1min);
    EXPECT_EQ(c.delivery.retry_max, 15min);
    EXPECT_EQ(c.delivery.max_lifetime, 120h);
    EXPECT_EQ(c.delivery.delay_warning, 4h);
    EXPECT_EQ(c.delivery.concurrency_per_destination, 20u);
    EXPECT_EQ(c.delivery.connect_timeout, 30s);
    EXPECT_EQ(c.delivery.port, 25);
    EXPECT_EQ(c.log.path, "var/log/edgerelay.log");
    EXPECT_EQ(c.log.retention, 720h);
    EXPECT_EQ(c.admin.listen.to_string(), "127.0.0.1:8025");
    EXPECT_EQ(c.admin.token, "");
    EXPECT_TRUE(c.routes.empty());
}

TEST(ParseConfig, EmptyFileGivesTheDefaults) {
    Config c = parsed_ok("# nothing set\n");
    EXPECT_EQ(c.source, "t.toml");
    EXPECT_EQ(c.server.hostname, default_config().server.hostname);
    EXPECT_EQ(c.delivery.retry_max, 15min);
    EXPECT_EQ(c.server.relay_networks.size(), 1u);
}

TEST(SampleFile, LoadsAndStartsTheRelayFromTheRepoRoot) {
    std::string path = (repo_root() / "conf" / "edgerelay.toml").string();
    LoadResult result = load_config_file(path);
    ASSERT_TRUE(result.errors.empty()) << ::testing::PrintToString(messages(result));
    ASSERT_TRUE(result.config);
    const Config& c = *result.config;
    EXPECT_EQ(c.source, path);
    EXPECT_EQ(c.server.hostname, "edge.example.net");
    ASSERT_EQ(c.server.listen.size(), 1u);
    EXPECT_EQ(c.server.listen[0].to_string(), "127.0.0.1:2525");
    EXPECT_EQ(c.spool.path, "var/spool");
    EXPECT_EQ(c.log.path, "var/log/edgerelay.log");
    EXPECT_EQ(c.admin.listen.to_string(), "127.0.0.1:8025");
    ASSERT_EQ(c.routes.size(), 1u);
    EXPECT_EQ(c.routes[0].domain, "rockerduck.example");
    EXPECT_EQ(c.routes[0].next_hop, "inbound.rockerduck.example");
    EXPECT_EQ(c.routes[0].tls, TlsPolicy::may);
    EXPECT_GT(c.routes[0].line, 0u);
    EXPECT_GT(c.routes[0].next_hop_line, c.routes[0].line);
}

// The sample documents the defaults: apart from hostname and routes, loading it must
// change nothing, or the two have drifted apart.
TEST(SampleFile, SpellsOutTheEmbeddedDefaults) {
    LoadResult result = load_config_file((repo_root() / "conf" / "edgerelay.toml").string());
    ASSERT_TRUE(result.config);
    Config sample = *result.config;
    Config defaults = default_config();
    EXPECT_EQ(sample.server.max_message_size, defaults.server.max_message_size);
    EXPECT_EQ(sample.server.max_recipients, defaults.server.max_recipients);
    EXPECT_EQ(sample.server.max_connections, defaults.server.max_connections);
    EXPECT_EQ(sample.server.max_connections_per_ip, defaults.server.max_connections_per_ip);
    EXPECT_EQ(sample.server.relay_networks[0].text, defaults.server.relay_networks[0].text);
    EXPECT_EQ(sample.server.mx_names, defaults.server.mx_names);
    EXPECT_EQ(sample.server.command_timeout, defaults.server.command_timeout);
    EXPECT_EQ(sample.server.data_timeout, defaults.server.data_timeout);
    EXPECT_EQ(sample.server.max_errors, defaults.server.max_errors);
    EXPECT_EQ(sample.server.max_received_headers, defaults.server.max_received_headers);
    EXPECT_EQ(sample.spool.max_size, defaults.spool.max_size);
    EXPECT_EQ(sample.dns.max_ttl, defaults.dns.max_ttl);
    EXPECT_EQ(sample.delivery.retry_initial, defaults.delivery.retry_initial);
    EXPECT_EQ(sample.delivery.retry_max, defaults.delivery.retry_max);
    EXPECT_EQ(sample.delivery.max_lifetime, defaults.delivery.max_lifetime);
    EXPECT_EQ(sample.delivery.delay_warning, defaults.delivery.delay_warning);
    EXPECT_EQ(sample.delivery.concurrency_per_destination, defaults.delivery.concurrency_per_destination);
    EXPECT_EQ(sample.delivery.connect_timeout, defaults.delivery.connect_timeout);
    EXPECT_EQ(sample.delivery.port, defaults.delivery.port);
    EXPECT_EQ(sample.log.retention, defaults.log.retention);
}

TEST(ParseConfig, ReadsEveryKey) {
    Config c = parsed_ok(R"(
[server]
hostname = "MX1.Example.NET"
listen = ["0.0.0.0:25", "[::]:25"]
max_message_size = 1048576
max_recipients = 5
max_connections = 6
max_connections_per_ip = 7
relay_networks = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]
command_timeout = "90s"
data_timeout = "500ms"
max_errors = 3
max_received_headers = 30
postmaster = "hostmaster@example.net"
[spool]
path = "/var/spool/edgerelay"
max_size = "1GB"
[dns]
nameservers = ["127.0.0.1:5353", "[::1]:53", "192.0.2.53"]
max_ttl = "0"
[delivery]
retry_initial = "30s"
retry_max = "2h"
max_lifetime = "3d"
delay_warning = "0"
concurrency_per_destination = 4
connect_timeout = "10s"
port = 2526
[log]
path = "/tmp/x.log"
retention = "7d"
[admin]
listen = "[::1]:8080"
token = "s3cret"
[[route]]
domain = "Rockerduck.Example"
next_hop = "[192.0.2.1]:25"
tls = "verify"
[[route]]
domain = "b.example"
next_hop = "mx.b.example"
)");
    EXPECT_EQ(c.server.hostname, "mx1.example.net");
    ASSERT_EQ(c.server.listen.size(), 2u);
    EXPECT_EQ(c.server.listen[1].to_string(), "[::]:25");
    EXPECT_EQ(c.server.max_message_size, 1048576u);
    EXPECT_EQ(c.server.max_recipients, 5u);
    EXPECT_EQ(c.server.max_connections, 6u);
    EXPECT_EQ(c.server.max_connections_per_ip, 7u);
    ASSERT_EQ(c.server.relay_networks.size(), 3u);
    EXPECT_EQ(c.server.relay_networks[1].text, "2001:db8::/32");
    EXPECT_EQ(c.server.relay_networks[2].length, 128u);
    EXPECT_EQ(c.server.command_timeout, 90s);
    EXPECT_EQ(c.server.data_timeout, 500ms);
    EXPECT_EQ(c.server.max_errors, 3u);
    EXPECT_EQ(c.server.max_received_headers, 30u);
    EXPECT_EQ(c.server.postmaster, "hostmaster@example.net");
    EXPECT_EQ(c.spool.path, "/var/spool/edgerelay");
    EXPECT_EQ(c.spool.max_size, 1'000'000'000u);
    ASSERT_EQ(c.dns.nameservers.size(), 3u);
    EXPECT_EQ(c.dns.nameservers[0].to_string(), "127.0.0.1:5353");
    EXPECT_EQ(c.dns.nameservers[1].to_string(), "[::1]:53");
    EXPECT_EQ(c.dns.nameservers[2].to_string(), "192.0.2.53:53");
    EXPECT_EQ(c.dns.max_ttl, Duration::zero());
    EXPECT_EQ(c.delivery.retry_initial, 30s);
    EXPECT_EQ(c.delivery.retry_max, 2h);
    EXPECT_EQ(c.delivery.max_lifetime, 72h);
    EXPECT_EQ(c.delivery.delay_warning, Duration::zero());
    EXPECT_EQ(c.delivery.concurrency_per_destination, 4u);
    EXPECT_EQ(c.delivery.connect_timeout, 10s);
    EXPECT_EQ(c.delivery.port, 2526);
    EXPECT_EQ(c.log.path, "/tmp/x.log");
    EXPECT_EQ(c.log.retention, 168h);
    EXPECT_EQ(c.admin.listen.to_string(), "[::1]:8080");
    EXPECT_EQ(c.admin.token, "s3cret");
    ASSERT_EQ(c.routes.size(), 2u);
    EXPECT_EQ(c.routes[0].domain, "rockerduck.example");
    EXPECT_EQ(c.routes[0].next_hop, "[192.0.2.1]:25");
    EXPECT_EQ(c.routes[0].tls, TlsPolicy::verify);
    EXPECT_EQ(c.routes[0].line, 35u);
    EXPECT_EQ(c.routes[0].next_hop_line, 37u);
    EXPECT_EQ(c.routes[1].domain, "b.example");
    EXPECT_EQ(c.routes[1].tls, TlsPolicy::may);
    EXPECT_EQ(c.routes[1].line, 39u);
    EXPECT_EQ(c.routes[1].next_hop_line, 41u);
}

TEST(ParseConfig, ListenMayBeASingleString) {
    Config c = parsed_ok("[server]\nlisten = \"[::1]:25\"\n");
    ASSERT_EQ(c.server.listen.size(), 1u);
    EXPECT_EQ(c.server.listen[0].to_string(), "[::1]:25");
}

TEST(ParseConfig, RelayNetworksMayBeEmpty) {
    EXPECT_TRUE(parsed_ok("[server]\nrelay_networks = []\n").server.relay_networks.empty());
}

// The names `edgerelayctl mx` takes for this relay besides hostname.
TEST(ParseConfig, MxNames) {
    EXPECT_EQ(parsed_ok("[server]\nmx_names = [\"MX1.Example.NET.\", \"edge-2.example.net\"]\n").server.mx_names,
              (std::vector<std::string>{"mx1.example.net", "edge-2.example.net"}));
    EXPECT_TRUE(parsed_ok("[server]\nmx_names = []\n").server.mx_names.empty());
    EXPECT_EQ(only_error("[server]\nmx_names = [\n  \"mx1.example.net\",\n  \"not a name\",\n]\n").to_string(),
              "t.toml:4: server.mx_names: \"not a name\": expected a host name such as \"mx1.example.net\"");
    EXPECT_EQ(only_error("[server]\nmx_names = \"mx1.example.net\"\n").to_string(),
              "t.toml:2: server.mx_names: expected an array, found a string");
}

TEST(ParseConfig, SyntaxErrorNamesTheLine) {
    ConfigError e = only_error("[server]\nmax_errors = 3\nhostname = \n");
    EXPECT_EQ(e.file, "t.toml");
    EXPECT_EQ(e.line, 3u);
    EXPECT_EQ(e.key, "");
    EXPECT_TRUE(e.to_string().starts_with("t.toml:3: syntax error: ")) << e.to_string();
}

TEST(ParseConfig, UnknownKeysAndSections) {
    ConfigError key = only_error("# comment\n[server]\nlisen = [\"127.0.0.1:25\"]\n");
    EXPECT_EQ(key.to_string(), "t.toml:3: server.lisen: unknown key");

    ConfigError section = only_error("[sever]\nhostname = \"x.example\"\n");
    EXPECT_EQ(section.to_string(), "t.toml:1: sever: unknown section");

    ConfigError top = only_error("hostname = \"x.example\"\n");
    EXPECT_EQ(top.to_string(), "t.toml:1: hostname: unknown key");

    ConfigError in_route = only_error(route + "tsl = \"may\"\n");
    EXPECT_EQ(in_route.to_string(), "t.toml:4: route[1].tsl: unknown key");
}

TEST(ParseConfig, ReportsEveryErrorInFileOrder) {
    LoadResult result = parse_config(R"([server]
max_recipients = 0
lisen = "x"
[spool]
max_size = "lots"
[delivery]
port = 0
[admin]
listen = "127.0.0.1"
)", "f.toml");
    EXPECT_FALSE(result.config);
    std::vector<std::string> got = messages(result);
    ASSERT_EQ(got.size(), 5u) << ::testing::PrintToString(got);
    EXPECT_EQ(got[0], "f.toml:2: server.max_recipients: must be between 1 and 4294967295");
    EXPECT_EQ(got[1], "f.toml:3: server.lisen: unknown key");
    EXPECT_TRUE(got[2].starts_with("f.toml:5: spool.max_size: \"lots\": expected a size")) << got[2];
    EXPECT_EQ(got[3], "f.toml:7: delivery.port: must be between 1 and 65535");
    EXPECT_TRUE(got[4].starts_with("f.toml:9: admin.listen: \"127.0.0.1\": expected host:port")) << got[4];
}

TEST(ParseConfig, WrongTypes) {
    EXPECT_EQ(only_error("[server]\nhostname = 5\n").message, "expected a string, found an integer");
    EXPECT_EQ(only_error("[server]\nmax_errors = \"10\"\n").message, "expected an integer, found a string");
    EXPECT_EQ(only_error("[server]\nmax_errors = 1.5\n").message, "expected an integer, found a floating-point number");
    EXPECT_EQ(only_error("[server]\nlisten = true\n").message, "expected an array, found a boolean");
    EXPECT_EQ(only_error("[admin]\ntoken = []\n").message, "expected a string, found an array");
    EXPECT_EQ(only_error("[spool]\nmax_size = true\n").message, "expected a size, found a boolean");
    EXPECT_EQ(only_error("server = 1\n").to_string(), "t.toml:1: server: expected a table ([server]), found an integer");
    EXPECT_EQ(only_error("[route]\ndomain = \"a.example\"\n").to_string(),
              "t.toml:1: route: expected [[route]] tables, found a table");

    ConfigError element = only_error("[server]\nrelay_networks = [\n  \"10.0.0.0/8\",\n  7,\n]\n");
    EXPECT_EQ(element.to_string(), "t.toml:4: server.relay_networks: expected a string, found an integer");
}

TEST(ParseConfig, BadDurations) {
    for (const char* bad : {"\"90\"", "\"-5s\"", "\"5 minutes\"", "\"1.5h\"", "\"\""}) {
        ConfigError e = only_error(std::string("[delivery]\nconnect_timeout = ") + bad + "\n");
        EXPECT_EQ(e.line, 2u);
        EXPECT_EQ(e.key, "delivery.connect_timeout");
        EXPECT_NE(e.message.find("expected a duration"), std::string::npos) << e.message;
    }
    ConfigError integer = only_error("[server]\ncommand_timeout = 300\n");
    EXPECT_EQ(integer.key, "server.command_timeout");
    EXPECT_NE(integer.message.find("with a unit"), std::string::npos) << integer.message;

    // "0" is only for the keys where it means "off".
    EXPECT_EQ(only_error("[server]\ndata_timeout = \"0\"\n").message, "must be longer than 0");
    EXPECT_EQ(parsed_ok("[delivery]\ndelay_warning = \"0\"\n").delivery.delay_warning, Duration::zero());
}

TEST(ParseConfig, BadSizes) {
    EXPECT_EQ(parsed_ok("[server]\nmax_message_size = \"10KiB\"\n").server.max_message_size, 10240u);
    ConfigError junk = only_error("[server]\nmax_message_size = \"50 MiB\"\n");
    EXPECT_EQ(junk.key, "server.max_message_size");
    EXPECT_EQ(junk.line, 2u);
    EXPECT_EQ(only_error("[server]\nmax_message_size = -1\n").message, "must be at least 1 byte");
    EXPECT_EQ(only_error("[server]\nmax_message_size = \"0\"\n").message, "must be at least 1 byte");
    EXPECT_EQ(only_error("[spool]\nmax_size = \"4KiB\"\n").to_string(), "t.toml:2: spool.max_size: must be at least 1048576 bytes");
}

TEST(ParseConfig, BadEndpoints) {
    ConfigError listen = only_error("[server]\nlisten = [\"127.0.0.1:25\",\n \"127.0.0.1:70000\"]\n");
    EXPECT_EQ(listen.line, 3u);
    EXPECT_EQ(listen.key, "server.listen");
    EXPECT_NE(listen.message.find("\"127.0.0.1:70000\""), std::string::npos);
    EXPECT_EQ(only_error("[server]\nlisten = [\"::1:25\"]\n").key, "server.listen");
    EXPECT_EQ(only_error("[server]\nlisten = []\n").message, "needs at least one address");
    EXPECT_EQ(only_error("[admin]\nlisten = \"localhost\"\n").key, "admin.listen");
    // Resolvers are reached by address, not by a name that itself needs resolving.
    EXPECT_EQ(only_error("[dns]\nnameservers = [\"ns.example:53\"]\n").key, "dns.nameservers");
}

TEST(ParseConfig, BadNetworks) {
    for (const char* bad : {"10.0.0.0/33", "1.2.3", "10.0.0.1/8", "::1/129", "everyone"}) {
        ConfigError e = only_error(std::string("[server]\nrelay_networks = [\"") + bad + "\"]\n");
        EXPECT_EQ(e.to_string().rfind("t.toml:2: server.relay_networks: \"" + std::string(bad) + "\": expected a network", 0), 0u)
            << e.to_string();
    }
}

TEST(ParseConfig, OutOfRangeIntegers) {
    for (const char* key : {"max_recipients", "max_connections", "max_connections_per_ip", "max_errors",
                            "max_received_headers"}) {
        ConfigError e = only_error(std::string("[server]\n") + key + " = 0\n");
        EXPECT_EQ(e.key, std::string("server.") + key);
        EXPECT_EQ(e.line, 2u);
    }
    EXPECT_EQ(only_error("[server]\nmax_recipients = 4294967296\n").key, "server.max_recipients");
    EXPECT_EQ(only_error("[delivery]\nconcurrency_per_destination = 0\n").key, "delivery.concurrency_per_destination");
    EXPECT_EQ(only_error("[delivery]\nport = 65536\n").key, "delivery.port");
    EXPECT_EQ(only_error("[delivery]\nport = -25\n").key, "delivery.port");
    EXPECT_EQ(parsed_ok("[delivery]\nport = 65535\n").delivery.port, 65535);
}

TEST(ParseConfig, RouteErrors) {
    ConfigError tls = only_error(route + "tls = \"required\"\n");
    EXPECT_EQ(tls.to_string(), "t.toml:4: route[1].tls: \"required\": expected one of none, may, verify");

    ConfigError no_hop = only_error(route + "\n[[route]]\ndomain = \"b.example\"\n");
    EXPECT_EQ(no_hop.line, 5u);  // the [[route]] header
    EXPECT_EQ(no_hop.key, "route[2].next_hop");

    ConfigError no_domain = only_error("[[route]]\nnext_hop = \"mx.example\"\n");
    EXPECT_EQ(no_domain.line, 1u);
    EXPECT_EQ(no_domain.key, "route[1].domain");

    EXPECT_EQ(only_error("[[route]]\ndomain = \"a.example\"\nnext_hop = \"\"\n").key, "route[1].next_hop");

    for (const char* bad : {"", "a..example", "-a.example", "a-.example", "a_b.example", "*.example", "a example",
                            "\u00e9t\u00e9.example"}) {
        ConfigError e = only_error(std::string("[[route]]\ndomain = \"") + bad + "\"\nnext_hop = \"mx\"\n");
        EXPECT_EQ(e.line, 2u) << bad;
        EXPECT_EQ(e.key, "route[1].domain") << bad;
    }

    ConfigError duplicate = only_error(route + "[[route]]\ndomain = \"A.example\"\nnext_hop = \"x\"\n");
    EXPECT_EQ(duplicate.line, 5u);
    EXPECT_EQ(duplicate.key, "route[2].domain");
}

TEST(ParseConfig, NextHopSyntaxIsLeftToRouting) {
    Config c = parsed_ok("[[route]]\ndomain = \"a.example.\"\nnext_hop = \"[not checked here\"\n");
    EXPECT_EQ(c.routes[0].domain, "a.example");
    EXPECT_EQ(c.routes[0].next_hop, "[not checked here");
}

TEST(ParseConfig, TlsFilesComeInPairs) {
    std::string readable = __FILE__;
    ConfigError no_key = only_error("[server]\n\ntls_certificate = \"" + readable + "\"\n");
    EXPECT_EQ(no_key.line, 3u);
    EXPECT_EQ(no_key.key, "server.tls_certificate");
    EXPECT_NE(no_key.message.find("server.tls_private_key"), std::string::npos);

    ConfigError no_cert = only_error("[server]\ntls_private_key = \"" + readable + "\"\n");
    EXPECT_EQ(no_cert.line, 2u);
    EXPECT_EQ(no_cert.key, "server.tls_private_key");

    Config both = parsed_ok("[server]\ntls_certificate = \"" + readable + "\"\ntls_private_key = \"" + readable + "\"\n");
    EXPECT_EQ(both.server.tls_certificate, readable);
}

TEST(ParseConfig, UnreadableTlsFilesAreReportedAtTheirKey) {
    std::string readable = __FILE__;
    ConfigError missing = only_error("[server]\ntls_certificate = \"/nonexistent/cert.pem\"\ntls_private_key = \"" +
                                     readable + "\"\n");
    EXPECT_EQ(missing.to_string(),
              "t.toml:2: server.tls_certificate: cannot read \"/nonexistent/cert.pem\": No such file or directory");

    std::string directory = std::filesystem::path(__FILE__).parent_path().string();
    ConfigError is_dir = only_error("[server]\ntls_certificate = \"" + readable + "\"\ntls_private_key = \"" +
                                    directory + "\"\n");
    EXPECT_EQ(is_dir.line, 3u);
    EXPECT_EQ(is_dir.key, "server.tls_private_key");
    EXPECT_NE(is_dir.message.find("Is a directory"), std::string::npos) << is_dir.message;
}

TEST(ParseConfig, RetryInitialMustNotExceedRetryMax) {
    ConfigError both = only_error("[delivery]\nretry_max = \"5m\"\nretry_initial = \"10m\"\n");
    EXPECT_EQ(both.to_string(), "t.toml:3: delivery.retry_initial: retry_initial (10m) is longer than retry_max (5m)");

    // Only retry_max in the file: it is the one to blame, against the default 1m.
    ConfigError max_only = only_error("[delivery]\nretry_max = \"30s\"\n");
    EXPECT_EQ(max_only.line, 2u);
    EXPECT_EQ(max_only.key, "delivery.retry_max");

    // A bad value is reported once, not again as a comparison with the default.
    EXPECT_EQ(only_error("[delivery]\nretry_initial = \"1h\"\nretry_max = \"junk\"\n").key, "delivery.retry_max");
    EXPECT_EQ(parsed_ok("[delivery]\nretry_initial = \"15m\"\n").delivery.retry_initial, 15min);
}

TEST(LoadConfigFile, MissingFile) {
    LoadResult result = load_config_file("/nonexistent/edgerelay.toml");
    EXPECT_FALSE(result.config);
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_EQ(result.errors[0].to_string(),
              "/nonexistent/edgerelay.toml: cannot read configuration file: No such file or directory");
}

TEST(LoadConfigFile, DirectoryIsReportedNotParsedAsEmpty) {
    std::string dir = repo_root().string();
    LoadResult result = load_config_file(dir);
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_EQ(result.errors[0].to_string(), dir + ": cannot read configuration file: Is a directory");
}

TEST(LoadConfigFile, ErrorsNameTheFile) {
    TempFile file("[server]\nmax_errors = 10\nlisen = 1\n");
    LoadResult result = load_config_file(file.path());
    EXPECT_FALSE(result.config);
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_EQ(result.errors[0].to_string(), file.path() + ":3: server.lisen: unknown key");
}

TEST(LoadConfigFile, GoodFile) {
    TempFile file(route + "[server]\nhostname = \"edge.example.net\"\n");
    LoadResult result = load_config_file(file.path());
    ASSERT_TRUE(result.config) << ::testing::PrintToString(messages(result));
    EXPECT_EQ(result.config->source, file.path());
    EXPECT_EQ(result.config->routes.size(), 1u);
    EXPECT_EQ(result.config->server.hostname, "edge.example.net");
}
