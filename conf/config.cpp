// Loads a TOML configuration file into Config: starts from the embedded defaults, reads
// every section, and collects every problem as file:line: key: message, so one
// --check-config run shows an operator all of their mistakes, not just the first.
#include "conf/config.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <toml++/toml.h>

namespace edgerelay::conf {
namespace {

unsigned line_of(const toml::node& node) { return node.source().begin.line; }

std::string machine_hostname() {
    char name[HOST_NAME_MAX + 1] = {};
    if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
    return name;
}

// For "expected a string, found an integer" messages.
std::string_view type_name(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a floating-point number";
        case toml::node_type::boolean: return "a boolean";
        case toml::node_type::array: return "an array";
        case toml::node_type::table: return "a table";
        default: return "a date or time";
    }
}

// Letters, digits, hyphens and dots, labels of 1..63 octets not starting or ending in a
// hyphen (RFC 1123 2.1). Returned lower-cased, since domains compare case-insensitively;
// one trailing dot (the absolute form) is dropped.
std::optional<std::string> parse_domain(std::string_view text) {
    if (text.ends_with('.')) text.remove_suffix(1);
    if (text.empty() || text.size() > 253) return std::nullopt;
    std::string domain;
    std::size_t label = 0;
    for (char c : text) {
        if (c == '.') {
            if (label == 0 || domain.back() == '-') return std::nullopt;
            label = 0;
        } else {
            bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
            if (!alnum && !(c == '-' && label > 0)) return std::nullopt;
            if (++label > 63) return std::nullopt;
        }
        domain += (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
    }
    if (domain.back() == '-') return std::nullopt;
    return domain;
}

std::optional<TlsPolicy> parse_tls_policy(std::string_view text) {
    if (text == "none") return TlsPolicy::none;
    if (text == "may") return TlsPolicy::may;
    if (text == "verify") return TlsPolicy::verify;
    return std::nullopt;
}

// A resolver is reached by address, never by name; a bare address means port 53.
std::optional<Endpoint> parse_nameserver(std::string_view text) {
    auto endpoint = parse_endpoint(text);
    if (!endpoint) endpoint = parse_endpoint(std::string(text) + ":53");
    if (!endpoint) endpoint = parse_endpoint("[" + std::string(text) + "]:53");
    if (!endpoint || !parse_network(endpoint->host)) return std::nullopt;
    return endpoint;
}

std::optional<std::string> parse_nonempty(std::string_view text) {
    if (text.empty()) return std::nullopt;
    return std::string(text);
}

// Collects the problems of one file, and the line of every key it met, which the checks
// that span several keys use to point at the right place.
struct Reader {
    std::string file;
    std::vector<ConfigError> errors;
    std::map<std::string, unsigned> lines;

    void fail(unsigned line, std::string key, std::string message) {
        errors.push_back({file, line, std::move(key), std::move(message)});
    }
    bool has(const std::string& key) const { return lines.contains(key); }
    // A key already reported keeps its default, which later checks must not blame.
    bool failed(const std::string& key) const {
        return std::any_of(errors.begin(), errors.end(), [&](const ConfigError& e) { return e.key == key; });
    }
    unsigned line(const std::string& key) const {
        auto it = lines.find(key);
        return it == lines.end() ? 0 : it->second;
    }
};

// Reads one key's value into the Config; reports to the Reader when it cannot.
using ReadValue = std::function<void(const toml::node&, const std::string& key)>;

struct Field {
    std::string_view name;
    ReadValue read;
};

void read_table(Reader& r, const toml::table& table, const std::string& prefix,
                std::span<const Field> fields) {
    for (auto&& [name, node] : table) {
        std::string key = prefix + "." + std::string(name.str());
        auto field = std::find_if(fields.begin(), fields.end(),
                                  [&](const Field& f) { return f.name == name.str(); });
        if (field == fields.end()) {
            r.fail(line_of(node), key, "unknown key");
            continue;
        }
        r.lines[key] = line_of(node);
        field->read(node, key);
    }
}

// The string in node, or a report that it is not one.
const std::string* string_at(Reader& r, const toml::node& node, const std::string& key) {
    if (auto* s = node.as_string()) return &s->get();
    r.fail(line_of(node), key, "expected a string, found " + std::string(type_name(node)));
    return nullptr;
}

// A string value turned into T by parse; `expected` names the accepted form.
template <class T, class Parse>
std::optional<T> parsed(Reader& r, const toml::node& node, const std::string& key, Parse parse,
                        std::string_view expected) {
    const std::string* text = string_at(r, node, key);
    if (!text) return std::nullopt;
    std::optional<T> value = parse(*text);
    if (!value) r.fail(line_of(node), key, "\"" + *text + "\": expected " + std::string(expected));
    return value;
}

template <class T, class Parse>
ReadValue parsed_into(Reader& r, T& out, Parse parse, std::string_view expected) {
    return [&r, &out, parse, expected](const toml::node& node, const std::string& key) {
        if (auto value = parsed<T>(r, node, key, parse, expected)) out = std::move(*value);
    };
}

// An array of strings, each turned into T; every bad element is reported on its own line.
template <class T, class Parse>
ReadValue list_into(Reader& r, std::vector<T>& out, Parse parse, std::string_view expected) {
    return [&r, &out, parse, expected](const toml::node& node, const std::string& key) {
        const toml::array* array = node.as_array();
        if (!array) {
            r.fail(line_of(node), key, "expected an array, found " + std::string(type_name(node)));
            return;
        }
        out.clear();
        for (const toml::node& element : *array) {
            if (auto value = parsed<T>(r, element, key, parse, expected)) out.push_back(std::move(*value));
        }
    };
}

ReadValue text_into(Reader& r, std::string& out) {
    return parsed_into(r, out, [](std::string_view s) { return std::optional<std::string>(s); }, "");
}

ReadValue duration_into(Reader& r, Duration& out, bool zero_disables) {
    return [&r, &out, zero_disables](const toml::node& node, const std::string& key) {
        if (node.is_integer()) {
            r.fail(line_of(node), key, "expected a duration string with a unit, such as \"90s\" or \"15m\"");
            return;
        }
        auto value = parsed<Duration>(r, node, key, parse_duration,
                                      "a duration such as \"500ms\", \"90s\", \"15m\", \"4h\" or \"5d\"");
        if (!value) return;
        if (*value == Duration::zero() && !zero_disables) {
            r.fail(line_of(node), key, "must be longer than 0");
            return;
        }
        out = *value;
    };
}

// Sizes may be written "50MiB" or as a plain integer count of bytes.
ReadValue size_into(Reader& r, std::uint64_t& out, std::uint64_t minimum) {
    return [&r, &out, minimum](const toml::node& node, const std::string& key) {
        std::optional<std::uint64_t> value;
        if (auto* integer = node.as_integer()) {
            if (integer->get() >= 0) value = std::uint64_t(integer->get());
        } else if (!node.is_string()) {
            r.fail(line_of(node), key, "expected a size, found " + std::string(type_name(node)));
            return;
        } else {
            value = parsed<std::uint64_t>(r, node, key, parse_size,
                                          "a size such as \"1024\", \"10KiB\", \"50MiB\" or \"64GiB\"");
            if (!value) return;
        }
        if (!value || *value < minimum) {
            r.fail(line_of(node), key,
                   "must be at least " + std::to_string(minimum) + (minimum == 1 ? " byte" : " bytes"));
            return;
        }
        out = *value;
    };
}

template <class Int>
ReadValue integer_into(Reader& r, Int& out, std::int64_t minimum, std::int64_t maximum) {
    return [&r, &out, minimum, maximum](const toml::node& node, const std::string& key) {
        auto* integer = node.as_integer();
        if (!integer) {
            r.fail(line_of(node), key, "expected an integer, found " + std::string(type_name(node)));
        } else if (integer->get() < minimum || integer->get() > maximum) {
            r.fail(line_of(node), key,
                   "must be between " + std::to_string(minimum) + " and " + std::to_string(maximum));
        } else {
            out = Int(integer->get());
        }
    };
}

ReadValue count_into(Reader& r, unsigned& out) {
    return integer_into(r, out, 1, std::numeric_limits<unsigned>::max());
}

constexpr std::string_view endpoint_form = "host:port, such as \"127.0.0.1:2525\" or \"[::1]:2525\"";

void read_server(Reader& r, const toml::table& table, ServerConfig& s) {
    const Field fields[] = {
        {"hostname", parsed_into(r, s.hostname, parse_domain, "a host name such as \"edge.example.net\"")},
        {"mx_names", list_into(r, s.mx_names, parse_domain, "a host name such as \"mx1.example.net\"")},
        {"listen", [&](const toml::node& node, const std::string& key) {
             // One address may be written without the array brackets, like [admin] listen.
             if (node.is_string()) {
                 if (auto one = parsed<Endpoint>(r, node, key, parse_endpoint, endpoint_form)) s.listen = {*one};
                 return;
             }
             list_into(r, s.listen, parse_endpoint, endpoint_form)(node, key);
             if (node.is_array() && node.as_array()->empty()) r.fail(line_of(node), key, "needs at least one address");
         }},
        {"max_message_size", size_into(r, s.max_message_size, 1)},
        {"max_recipients", count_into(r, s.max_recipients)},
        {"max_connections", count_into(r, s.max_connections)},
        {"max_connections_per_ip", count_into(r, s.max_connections_per_ip)},
        {"relay_networks", list_into(r, s.relay_networks, parse_network,
                                     "a network such as \"10.0.0.0/8\" or \"::1/128\", no host bits set")},
        {"tls_certificate", text_into(r, s.tls_certificate)},
        {"tls_private_key", text_into(r, s.tls_private_key)},
        {"command_timeout", duration_into(r, s.command_timeout, false)},
        {"data_timeout", duration_into(r, s.data_timeout, false)},
        {"max_errors", count_into(r, s.max_errors)},
        {"max_received_headers", count_into(r, s.max_received_headers)},
        {"postmaster", text_into(r, s.postmaster)},
    };
    read_table(r, table, "server", fields);
}

void read_spool(Reader& r, const toml::table& table, SpoolConfig& s) {
    const Field fields[] = {
        {"path", parsed_into(r, s.path, parse_nonempty, "a directory path")},
        // LMDB needs room for its own metadata pages before any message fits.
        {"max_size", size_into(r, s.max_size, 1ull << 20)},
    };
    read_table(r, table, "spool", fields);
}

void read_dns(Reader& r, const toml::table& table, DnsConfig& d) {
    const Field fields[] = {
        {"nameservers", list_into(r, d.nameservers, parse_nameserver,
                                  "an IP address with an optional port, such as \"127.0.0.1:5353\"")},
        {"max_ttl", duration_into(r, d.max_ttl, true)},
    };
    read_table(r, table, "dns", fields);
}

void read_delivery(Reader& r, const toml::table& table, DeliveryConfig& d) {
    const Field fields[] = {
        {"retry_initial", duration_into(r, d.retry_initial, false)},
        {"retry_max", duration_into(r, d.retry_max, false)},
        {"max_lifetime", duration_into(r, d.max_lifetime, false)},
        {"delay_warning", duration_into(r, d.delay_warning, true)},
        {"concurrency_per_destination", count_into(r, d.concurrency_per_destination)},
        {"connect_timeout", duration_into(r, d.connect_timeout, false)},
        {"port", integer_into(r, d.port, 1, 65535)},
    };
    read_table(r, table, "delivery", fields);
}

void read_log(Reader& r, const toml::table& table, LogConfig& l) {
    const Field fields[] = {
        {"path", parsed_into(r, l.path, parse_nonempty, "a file path")},
        {"retention", duration_into(r, l.retention, false)},
    };
    read_table(r, table, "log", fields);
}

void read_admin(Reader& r, const toml::table& table, AdminConfig& a) {
    const Field fields[] = {
        {"listen", parsed_into(r, a.listen, parse_endpoint, endpoint_form)},
        {"token", text_into(r, a.token)},
    };
    read_table(r, table, "admin", fields);
}

void read_route(Reader& r, const toml::table& table, const std::string& prefix, RouteConfig& route) {
    route.line = line_of(table);
    const Field fields[] = {
        {"domain", parsed_into(r, route.domain, parse_domain,
                               "a domain name of letters, digits, hyphens and dots")},
        // Only presence here: routing/ owns the next-hop syntax and reports on it.
        {"next_hop", parsed_into(r, route.next_hop, parse_nonempty, "a next hop such as \"inbound.example.net\"")},
        {"tls", parsed_into(r, route.tls, parse_tls_policy, "one of none, may, verify")},
    };
    read_table(r, table, prefix, fields);
    route.next_hop_line = r.line(prefix + ".next_hop");
    for (std::string_view required : {"domain", "next_hop"}) {
        std::string key = prefix + "." + std::string(required);
        if (!r.has(key)) r.fail(route.line, key, "missing: every [[route]] needs a domain and a next_hop");
    }
}

void read_routes(Reader& r, const toml::node& node, std::vector<RouteConfig>& routes) {
    if (node.is_array() && node.as_array()->empty()) return;  // "route = []": no routes
    if (!node.is_array_of_tables()) {
        r.fail(line_of(node), "route", "expected [[route]] tables, found " + std::string(type_name(node)));
        return;
    }
    std::map<std::string, std::size_t> first_of_domain;
    for (const toml::node& element : *node.as_array()) {
        std::string prefix = "route[" + std::to_string(routes.size() + 1) + "]";
        RouteConfig& route = routes.emplace_back();
        read_route(r, *element.as_table(), prefix, route);
        if (route.domain.empty()) continue;
        auto [first, inserted] = first_of_domain.emplace(route.domain, routes.size());
        if (!inserted) {
            r.fail(r.line(prefix + ".domain"), prefix + ".domain",
                   "\"" + route.domain + "\" already has a route: route[" + std::to_string(first->second) + "]");
        }
    }
}

void read_sections(Reader& r, const toml::table& root, Config& config) {
    using SectionReader = std::function<void(const toml::table&)>;
    const std::map<std::string_view, SectionReader> sections = {
        {"server", [&](const toml::table& t) { read_server(r, t, config.server); }},
        {"spool", [&](const toml::table& t) { read_spool(r, t, config.spool); }},
        {"dns", [&](const toml::table& t) { read_dns(r, t, config.dns); }},
        {"delivery", [&](const toml::table& t) { read_delivery(r, t, config.delivery); }},
        {"log", [&](const toml::table& t) { read_log(r, t, config.log); }},
        {"admin", [&](const toml::table& t) { read_admin(r, t, config.admin); }},
    };
    for (auto&& [name, node] : root) {
        std::string key(name.str());
        if (key == "route") {
            read_routes(r, node, config.routes);
        } else if (auto section = sections.find(key); section == sections.end()) {
            r.fail(line_of(node), key, node.is_table() ? "unknown section" : "unknown key");
        } else if (!node.is_table()) {
            r.fail(line_of(node), key, "expected a table ([" + key + "]), found " + std::string(type_name(node)));
        } else {
            section->second(*node.as_table());
        }
    }
}

// errno's text for why path cannot be read, or nothing when it can.
std::optional<std::string> read_file(const std::string& path, std::string* contents) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!file) return std::strerror(errno);
    char buffer[65536];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) {
        if (contents) contents->append(buffer, n);
    }
    // A directory opens fine and fails on the first read (EISDIR).
    if (std::ferror(file.get())) return std::strerror(errno);
    return std::nullopt;
}

// Checks that span several keys, run once every key has been read.
void check_consistency(Reader& r, const Config& config) {
    const ServerConfig& s = config.server;
    const std::pair<std::string, const std::string*> tls_files[] = {
        {"server.tls_certificate", &s.tls_certificate},
        {"server.tls_private_key", &s.tls_private_key},
    };
    for (std::size_t i = 0; i < 2; ++i) {
        const auto& [key, path] = tls_files[i];
        if (path->empty()) continue;
        if (tls_files[1 - i].second->empty() && !r.failed(tls_files[1 - i].first)) {
            r.fail(r.line(key), key, "set without " + tls_files[1 - i].first + " (STARTTLS needs both)");
        }
        // Reported now rather than at the first STARTTLS, when only a client would see it.
        // Only readability: relay/ loads the PEM contents and reports on them.
        if (auto why = read_file(*path, nullptr)) r.fail(r.line(key), key, "cannot read \"" + *path + "\": " + *why);
    }

    const DeliveryConfig& d = config.delivery;
    if (d.retry_initial > d.retry_max && !r.failed("delivery.retry_initial") && !r.failed("delivery.retry_max")) {
        bool blame_max = !r.has("delivery.retry_initial");
        std::string key = blame_max ? "delivery.retry_max" : "delivery.retry_initial";
        r.fail(r.line(key), key,
               "retry_initial (" + format_duration(d.retry_initial) + ") is longer than retry_max (" +
                   format_duration(d.retry_max) + ")");
    }
}

LoadResult parse_checked(std::string_view toml_text, const std::string& source_name) {
    Reader r{source_name, {}, {}};
    Config config = default_config();
    config.source = source_name;
    try {
        toml::table root = toml::parse(toml_text, std::string_view(source_name));
        read_sections(r, root, config);
    } catch (const toml::parse_error& e) {
        r.fail(e.source().begin.line, "", "syntax error: " + std::string(e.description()));
    }
    check_consistency(r, config);
    if (!r.errors.empty()) {
        // toml++ keeps keys sorted, not in file order; operators read errors top down.
        std::stable_sort(r.errors.begin(), r.errors.end(),
                         [](const ConfigError& a, const ConfigError& b) { return a.line < b.line; });
        return {std::nullopt, std::move(r.errors)};
    }
    return {std::move(config), {}};
}

}  // namespace

std::string Endpoint::to_string() const {
    std::string port_text = ":" + std::to_string(port);
    return host.find(':') == std::string::npos ? host + port_text : "[" + host + "]" + port_text;
}

bool Network::contains(const std::array<unsigned char, 16>& v6_or_mapped) const {
    unsigned whole = std::min(length, 128u) / 8;
    if (!std::equal(prefix.begin(), prefix.begin() + whole, v6_or_mapped.begin())) return false;
    unsigned rest = length % 8;
    if (rest == 0 || whole >= 16) return true;
    unsigned char mask = static_cast<unsigned char>(0xff00u >> rest);
    return (prefix[whole] & mask) == (v6_or_mapped[whole] & mask);
}

std::string ConfigError::to_string() const {
    std::string text = file;
    if (line != 0) text += ":" + std::to_string(line);
    text += ": ";
    if (!key.empty()) text += key + ": ";
    return text + message;
}

Config default_config() {
    Config config;
    config.source = "(defaults)";
    config.server.hostname = machine_hostname();
    config.server.relay_networks = {*parse_network("127.0.0.0/8")};
    return config;
}

LoadResult parse_config(std::string_view toml_text, const std::string& source_name) {
    try {
        return parse_checked(toml_text, source_name);
    } catch (const std::exception& e) {
        // Out of memory and the like: still an error report, never an escaping throw.
        return {std::nullopt, {{source_name, 0, "", std::string("cannot load configuration: ") + e.what()}}};
    }
}

LoadResult load_config_file(const std::string& path) {
    try {
        std::string text;
        if (auto why = read_file(path, &text)) {
            return {std::nullopt, {{path, 0, "", "cannot read configuration file: " + *why}}};
        }
        return parse_config(text, path);
    } catch (const std::exception& e) {
        return {std::nullopt, {{path, 0, "", std::string("cannot load configuration: ") + e.what()}}};
    }
}

}  // namespace edgerelay::conf
