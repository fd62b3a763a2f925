// From a next hop to the hosts and addresses delivery tries, in order: RFC 5321 5.1
// (MX, implicit MX, "MX pointing at us"), RFC 7505 (null MX) and Postfix's next-hop
// forms. Every DNS answer goes through the resolver's cache; nothing here caches.
#include "routing/next_hop_resolution.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>

namespace edgerelay::routing {
namespace asio = boost::asio;

namespace {

// A literal address cannot change; a day just keeps callers from re-resolving it.
constexpr std::chrono::seconds literal_ttl = std::chrono::hours(24);

struct Question {
    std::string name;
    std::uint16_t type = 0;
};

// Every question at once: an MX list's hosts are looked up in parallel, so one slow
// name costs one timeout, not one per host.
asio::awaitable<std::vector<DnsAnswer>> ask_all(DnsResolver& dns, std::vector<Question> questions) {
    if (questions.empty()) co_return std::vector<DnsAnswer>{};
    auto executor = co_await asio::this_coro::executor;
    using Op = decltype(asio::co_spawn(executor, dns.query({}, 0), asio::deferred));
    std::vector<Op> ops;
    for (auto& q : questions) ops.push_back(asio::co_spawn(executor, dns.query(q.name, q.type), asio::deferred));
    auto group = asio::experimental::make_parallel_group(std::move(ops));
    auto done = co_await group.async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    auto& exceptions = std::get<1>(done);
    auto& answers = std::get<2>(done);
    for (std::size_t i = 0; i < answers.size(); ++i) {
        if (exceptions[i]) {  // query() does not throw; an allocation failure might
            answers[i] = DnsAnswer{};
            answers[i].error = "internal error";
        }
    }
    co_return std::move(answers);
}

// The shortest TTL of the answers a resolution rests on. Negative answers count with
// their negative TTL when the server gave one (a new record may appear after it);
// failures carry none.
void use_ttl(std::optional<std::chrono::seconds>& ttl, const DnsAnswer& answer) {
    const bool counts = answer.status == DnsStatus::ok ||
                        (answer.status != DnsStatus::temporary_failure && answer.ttl.count() > 0);
    if (counts) ttl = ttl ? std::min(*ttl, answer.ttl) : answer.ttl;
}

HostAddressLookup read_addresses(const DnsAnswer& a, const DnsAnswer& aaaa, std::optional<std::chrono::seconds>& ttl) {
    use_ttl(ttl, a);
    use_ttl(ttl, aaaa);
    return read_host_addresses(a, aaaa);
}

std::vector<Question> address_questions(const std::string& name) {
    return {{name, DnsResolver::type_a}, {name, DnsResolver::type_aaaa}};
}

// Addresses as 16 bytes (IPv4 mapped), so "::ffff:192.0.2.1" and "192.0.2.1" match.
std::optional<std::array<unsigned char, 16>> address_bytes(const std::string& text) {
    std::array<unsigned char, 16> bytes{};
    if (inet_pton(AF_INET6, text.c_str(), bytes.data()) == 1) return bytes;
    if (inet_pton(AF_INET, text.c_str(), bytes.data() + 12) != 1) return std::nullopt;
    bytes[10] = bytes[11] = 0xff;
    return bytes;
}

bool is_self(const SelfIdentity& self, const std::string& name, const std::vector<std::string>& addresses) {
    if (std::find(self.names.begin(), self.names.end(), name) != self.names.end()) return true;
    for (const auto& ours : self.addresses) {
        const auto mine = address_bytes(ours);
        for (const auto& address : addresses)
            if (mine && address_bytes(address) == mine) return true;
    }
    return false;
}

Resolution failed(Resolution::Outcome outcome, std::string status, std::string error) {
    Resolution r;
    r.outcome = outcome;
    r.enhanced_status = std::move(status);
    r.error = std::move(error);
    return r;
}

Resolution temporary(std::string status, std::string error) {
    return failed(Resolution::Outcome::temporary_failure, std::move(status), std::move(error));
}

Resolution permanent(std::string status, std::string error) {
    return failed(Resolution::Outcome::permanent_failure, std::move(status), std::move(error));
}

Resolution not_found(const std::string& host) { return permanent("5.1.2", "Host or domain name not found: " + host); }

// The host itself, without MX: [host], and a domain with no MX (implicit MX).
asio::awaitable<Resolution> resolve_host(DnsResolver& dns, const NextHop& hop, std::uint16_t port) {
    std::optional<std::chrono::seconds> ttl;
    auto answers = co_await ask_all(dns, address_questions(hop.host));
    HostAddressLookup host = read_addresses(answers[0], answers[1], ttl);
    Resolution r;
    if (!host.addresses.empty()) {
        r.outcome = Resolution::Outcome::ok;
        r.hosts.push_back({hop.host, 0, std::move(host.addresses), port});
    } else if (host.nxdomain) {
        r = not_found(hop.host);
    } else if (!host.error.empty()) {
        r = temporary("4.4.3", "address lookup for " + hop.host + " failed: " + host.error);
    } else {
        r = temporary("4.4.3", "no address for " + hop.host);
    }
    r.ttl = ttl.value_or(std::chrono::seconds(0));
    co_return r;
}

// The MX records as published, minus the unreadable ones.
std::vector<MxRecord> read_mx(const DnsAnswer& answer) {
    std::vector<MxRecord> records;
    for (const auto& rdata : answer.rdata)
        if (auto mx = parse_mx_rdata(rdata)) records.push_back(std::move(*mx));
    return records;
}

// Shuffles each run of equal preference in a list already in preference order.
template <class T>
void shuffle_runs(std::vector<T>& items, std::mt19937& random) {
    for (auto first = items.begin(); first != items.end();) {
        auto last =
            std::find_if(first, items.end(), [&](const T& item) { return item.preference != first->preference; });
        std::shuffle(first, last, random);
        first = last;
    }
}

// Preference order, equal preferences shuffled (RFC 5321 5.1). A null MX beside real
// ones is a publishing mistake (RFC 7505 3) and is left out.
std::vector<MxRecord> try_order(std::vector<MxRecord> records, std::mt19937& random) {
    std::erase_if(records, [](const MxRecord& mx) { return mx.exchange.empty(); });
    std::sort(records.begin(), records.end(),
              [](const MxRecord& a, const MxRecord& b) { return a.preference < b.preference; });
    shuffle_runs(records, random);
    return records;
}

// The hosts of an MX list in try order, given each one's A and AAAA answers
// (answers[2i], answers[2i+1]).
Resolution choose_hosts(const std::string& domain, const std::vector<MxRecord>& records,
                        const std::vector<DnsAnswer>& answers, const SelfIdentity& self, std::uint16_t port,
                        std::optional<std::chrono::seconds>& ttl) {
    std::vector<HostAddressLookup> found;
    std::optional<std::uint16_t> our_preference;
    for (std::size_t i = 0; i < records.size(); ++i) {
        found.push_back(read_addresses(answers[2 * i], answers[2 * i + 1], ttl));
        if (is_self(self, records[i].exchange, found.back().addresses) &&
            (!our_preference || records[i].preference < *our_preference))
            our_preference = records[i].preference;
    }
    // RFC 5321 5.1: when we are in the list, only hosts preferred over us; the others
    // would hand the mail back to us.
    auto preferred_over_us = [&](const MxRecord& mx) { return !our_preference || mx.preference < *our_preference; };
    if (std::none_of(records.begin(), records.end(), preferred_over_us))
        return temporary("4.4.6", "mail for " + domain + " loops back to myself");

    Resolution r;
    std::string first_error;
    for (std::size_t i = 0; i < records.size(); ++i) {
        if (!preferred_over_us(records[i])) continue;
        if (found[i].addresses.empty()) {  // skipped: the next host may do
            if (first_error.empty())
                first_error = records[i].exchange + ": " +
                              (found[i].error.empty() ? "no address" : found[i].error);
            continue;
        }
        r.hosts.push_back({records[i].exchange, records[i].preference, std::move(found[i].addresses), port});
    }
    if (r.hosts.empty()) return temporary("4.4.3", "no MX host of " + domain + " has an address (" + first_error + ")");
    r.outcome = Resolution::Outcome::ok;
    return r;
}

asio::awaitable<Resolution> resolve_mx(DnsResolver& dns, const NextHop& hop, std::uint16_t port,
                                       const SelfIdentity& self, std::mt19937& random) {
    const auto mx_answer = co_await dns.query(hop.host, DnsResolver::type_mx);
    if (mx_answer.status == DnsStatus::nxdomain) {
        auto r = not_found(hop.host);
        r.ttl = mx_answer.ttl;
        co_return r;
    }
    if (mx_answer.status == DnsStatus::temporary_failure)
        co_return temporary("4.4.3", "MX lookup for " + hop.host + " failed: " + mx_answer.error);
    if (mx_answer.status == DnsStatus::nodata) {
        // RFC 5321 5.1: the domain itself, as if it had an MX of preference 0.
        auto r = co_await resolve_host(dns, hop, port);
        const auto ttl = mx_answer.ttl.count() > 0 ? std::min(r.ttl, mx_answer.ttl) : r.ttl;
        if (r.outcome == Resolution::Outcome::ok && is_self(self, hop.host, r.hosts.front().addresses))
            r = temporary("4.4.6", "mail for " + hop.host + " loops back to myself");
        r.implicit_mx = true;
        r.ttl = ttl;
        co_return r;
    }

    std::optional<std::chrono::seconds> ttl;
    use_ttl(ttl, mx_answer);
    const auto published = read_mx(mx_answer);
    Resolution r;
    if (published.empty()) {
        r = temporary("4.4.3", "no readable MX record for " + hop.host);
    } else if (std::all_of(published.begin(), published.end(), [](const MxRecord& mx) { return mx.exchange.empty(); })) {
        r = permanent("5.1.10", hop.host + " does not accept mail (null MX, RFC 7505)");
    } else {
        const auto records = try_order(published, random);
        std::vector<Question> questions;
        for (const auto& mx : records)
            for (auto& q : address_questions(mx.exchange)) questions.push_back(std::move(q));
        const auto answers = co_await ask_all(dns, std::move(questions));
        r = choose_hosts(hop.host, records, answers, self, port, ttl);
    }
    r.mx = published;
    r.ttl = ttl.value_or(std::chrono::seconds(0));
    co_return r;
}

}  // namespace

std::string Resolution::host_set() const {
    std::vector<std::string> endpoints;
    for (const auto& host : hosts)
        for (const auto& address : host.addresses)
            endpoints.push_back((address.find(':') != std::string::npos ? "[" + address + "]" : address) + ":" +
                                std::to_string(host.port));
    std::sort(endpoints.begin(), endpoints.end());
    endpoints.erase(std::unique(endpoints.begin(), endpoints.end()), endpoints.end());
    std::string joined;
    for (const auto& endpoint : endpoints) joined += (joined.empty() ? "" : ",") + endpoint;
    return joined;
}

asio::awaitable<Resolution> resolve_next_hop(DnsResolver& dns, const NextHop& hop, std::uint16_t default_port,
                                             const SelfIdentity& self, std::mt19937& random) {
    const std::uint16_t port = hop.port.value_or(default_port);
    if (hop.literal) {
        Resolution r;
        r.outcome = Resolution::Outcome::ok;
        r.hosts.push_back({hop.host, 0, {hop.host}, port});
        r.ttl = literal_ttl;
        co_return r;
    }
    if (!hop.mx_lookup) {
        auto r = co_await resolve_host(dns, hop, port);
        co_return r;
    }
    auto r = co_await resolve_mx(dns, hop, port, self, random);
    co_return r;
}

HostAddressLookup read_host_addresses(const DnsAnswer& a, const DnsAnswer& aaaa) {
    HostAddressLookup host;
    for (const auto& rdata : a.rdata)
        if (auto address = parse_a_rdata(rdata)) host.addresses.push_back(std::move(*address));
    for (const auto& rdata : aaaa.rdata)
        if (auto address = parse_aaaa_rdata(rdata)) host.addresses.push_back(std::move(*address));
    host.nxdomain = a.status == DnsStatus::nxdomain && aaaa.status == DnsStatus::nxdomain;
    for (const auto* answer : {&a, &aaaa})
        if (answer->status == DnsStatus::temporary_failure && host.error.empty()) host.error = answer->error;
    return host;
}

SelfIdentity self_identity_of(const conf::Config& config) {
    SelfIdentity self;
    self.names.push_back(lowercase_ascii(config.server.hostname));
    for (const auto& endpoint : config.server.listen)
        if (endpoint.port == config.delivery.port) self.addresses.push_back(endpoint.host);
    return self;
}

void shuffle_equal_preferences(std::vector<TargetHost>& hosts, std::mt19937& random) { shuffle_runs(hosts, random); }

}  // namespace edgerelay::routing
