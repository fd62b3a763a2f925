// Whether a domain's MX records lead to this relay: what senders do with them (RFC 5321
// 5.1: every MX host is a way in, a domain without MX is reached at its address; RFC
// 7505: a null MX refuses all mail), the lookups that feed the verdict, and its JSON
// and text forms. A backup MX elsewhere is the classic leak: senders use it whenever
// they like, and the mail never sees the relay's checks nor its queue.
#include "routing/mx_check.h"

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/array.hpp>
#include <optional>

#include "conf/config.h"

namespace edgerelay::routing {
namespace asio = boost::asio;

namespace {

using Points = MxHostVerdict::Points;

std::string join(const std::vector<std::string>& items, std::string_view separator) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : std::string(separator)) + item;
    return out;
}

// Addresses as 16 bytes (IPv4 mapped), so "::ffff:192.0.2.1" and "192.0.2.1" match.
std::optional<std::array<unsigned char, 16>> address_key(const std::string& text) {
    const auto network = conf::parse_network(text);
    if (!network) return std::nullopt;
    return network->prefix;
}

// Who this relay is, from the lookups of its own names.
struct RelayIdentity {
    std::vector<std::string> names;
    std::vector<std::array<unsigned char, 16>> addresses;
    std::vector<std::string> unresolved;  // "name (SERVFAIL)": their addresses are unknown

    explicit RelayIdentity(const MxLookup& lookup) : names(lookup.relay_names) {
        for (std::size_t i = 0; i < lookup.relay_names.size() && i < lookup.relay_hosts.size(); ++i) {
            const auto& host = lookup.relay_hosts[i];
            for (const auto& address : host.addresses)
                if (auto key = address_key(address)) addresses.push_back(*key);
            if (!host.error.empty()) unresolved.push_back(lookup.relay_names[i] + " (" + host.error + ")");
        }
    }

    bool is(const std::string& name, const std::vector<std::string>& host_addresses) const {
        if (std::find(names.begin(), names.end(), name) != names.end()) return true;
        return std::any_of(host_addresses.begin(), host_addresses.end(), [&](const std::string& address) {
            const auto key = address_key(address);
            return key && std::find(addresses.begin(), addresses.end(), *key) != addresses.end();
        });
    }
};

std::string mx_name(const MxRecord& record) {
    return "MX " + std::to_string(record.preference) + " " + (record.exchange.empty() ? "." : record.exchange);
}

// A domain without MX is reached at its own A/AAAA records (RFC 5321 5.1), whatever
// they are: the relay is only in the path if that address is ours, and even then by
// accident rather than by the records customers are told to publish.
std::string no_mx_problem(const MxLookup& lookup, const RelayIdentity& relay) {
    const auto& host = lookup.domain_addresses;
    const std::string head = lookup.domain + " has no MX record: ";
    if (!host.addresses.empty()) {
        const std::string where = "its address record (" + join(host.addresses, ", ") + ")";
        if (relay.is(lookup.domain, host.addresses))
            return head + "senders deliver to " + where + ", which is this relay; publish an MX record naming it";
        return head + "mail goes to " + where + " and bypasses this relay";
    }
    if (!host.error.empty())
        return head + "mail goes to its address record (whose lookup failed: " + host.error + "), bypassing this relay";
    return head + "and no address record either: mail for it cannot be delivered";
}

// Senders skip an MX host they cannot find an address for, and go on to the next.
std::string skipped(const std::string& name, const HostAddressLookup& host) {
    return name + (host.nxdomain ? " has no address (NXDOMAIN)" : " has no A or AAAA record") + ": senders skip it";
}

// certain: wrong in the records; uncertain: a lookup failed, ask again later.
enum class Trouble { none, certain, uncertain };

// One MX host, in preference order: where it leads, and what is wrong with it if anything.
Trouble judge_host(const MxRecord& record, const HostAddressLookup& host, const MxLookup& lookup,
                   const RelayIdentity& relay, MxVerdict& v) {
    auto& h = v.mx.emplace_back(MxHostVerdict{record.preference, record.exchange, lookup.ttl, host.addresses,
                                              Points::elsewhere});
    auto problem = [&](Trouble trouble, std::string text) {
        v.problems.push_back(std::move(text));
        return trouble;
    };
    const std::string name = mx_name(record);
    const bool no_address = host.addresses.empty() && host.error.empty();
    if (record.exchange.empty())
        return problem(Trouble::certain,
                       "a null MX beside other MX records is a publishing mistake (RFC 7505 3): senders ignore it");
    if (relay.is(record.exchange, host.addresses)) {
        h.points = Points::here;
        // Named as this relay, but unreachable under that name.
        return no_address ? problem(Trouble::certain, skipped(name + " names this relay but", host)) : Trouble::none;
    }
    if (host.addresses.empty() && !host.error.empty()) {
        h.points = Points::unknown;
        return problem(Trouble::uncertain, name + ": its address lookup failed (" + host.error +
                                               "), so whether it is this relay cannot be told; try again");
    }
    if (no_address) return problem(Trouble::certain, skipped(name, host));
    if (!relay.unresolved.empty()) {
        // Our own names did not resolve: an address match may have been missed.
        h.points = Points::unknown;
        return problem(Trouble::uncertain,
                       name + " (" + join(host.addresses, ", ") +
                           ") is not named as this relay, and its addresses cannot be compared: the lookup of " +
                           join(relay.unresolved, ", ") + " failed; try again");
    }
    return problem(Trouble::certain, name + " does not point at this relay: mail sent there bypasses it");
}

// Every name's A and AAAA at once, so a name whose servers do not answer costs one
// timeout, not one per name and type.
asio::awaitable<std::vector<HostAddressLookup>> lookup_addresses(DnsResolver& dns, const std::vector<std::string>& names) {
    auto executor = co_await asio::this_coro::executor;
    using Op = decltype(asio::co_spawn(executor, dns.query({}, 0), asio::deferred));
    std::vector<Op> ops;
    for (const auto& name : names)
        for (const auto type : {DnsResolver::type_a, DnsResolver::type_aaaa})
            ops.push_back(asio::co_spawn(executor, dns.query(name, type), asio::deferred));
    auto group = asio::experimental::make_parallel_group(std::move(ops));
    auto done = co_await group.async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    auto& exceptions = std::get<1>(done);
    auto& answers = std::get<2>(done);
    std::vector<HostAddressLookup> hosts;
    for (std::size_t i = 0; i + 1 < answers.size(); i += 2) {
        // query() does not throw; an allocation failure might.
        for (const std::size_t k : {i, i + 1})
            if (exceptions[k]) answers[k] = DnsAnswer{DnsStatus::temporary_failure, {}, {}, {}, "internal error"};
        hosts.push_back(read_host_addresses(answers[i], answers[i + 1]));
    }
    co_return hosts;
}

}  // namespace

std::string_view to_string(MxStatus status) {
    switch (status) {
        case MxStatus::ok: return "ok";
        case MxStatus::problems: return "problems";
        case MxStatus::nxdomain: return "nxdomain";
        case MxStatus::no_mx: return "no_mx";
        case MxStatus::null_mx: return "null_mx";
        case MxStatus::dns_error: return "dns_error";
    }
    return "dns_error";
}

MxVerdict judge_mx(const MxLookup& lookup) {
    MxVerdict v;
    v.domain = lookup.domain;
    const RelayIdentity relay(lookup);
    if (lookup.status == DnsStatus::nxdomain) {
        v.status = MxStatus::nxdomain;
        v.problems.push_back(lookup.domain + " does not exist (NXDOMAIN): senders bounce mail for it");
        return v;
    }
    if (lookup.status == DnsStatus::temporary_failure) {
        v.status = MxStatus::dns_error;
        v.problems.push_back("the MX lookup for " + lookup.domain + " failed (" + lookup.error +
                             "): a temporary DNS failure, nothing can be told yet; try again");
        return v;
    }
    if (lookup.status == DnsStatus::nodata) {
        v.status = MxStatus::no_mx;
        v.problems.push_back(no_mx_problem(lookup, relay));
        return v;
    }
    if (lookup.records.empty()) {
        v.status = MxStatus::dns_error;
        v.problems.push_back("the MX records of " + lookup.domain + " cannot be read");
        return v;
    }

    // Preference order, as senders try them; the published order otherwise.
    std::vector<std::size_t> order(lookup.records.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return lookup.records[a].preference < lookup.records[b].preference;
    });
    if (std::all_of(lookup.records.begin(), lookup.records.end(), [](const MxRecord& r) { return r.exchange.empty(); })) {
        v.status = MxStatus::null_mx;
        for (const auto i : order) v.mx.push_back({lookup.records[i].preference, "", lookup.ttl, {}, Points::elsewhere});
        v.problems.push_back(lookup.domain + " publishes a null MX (RFC 7505): it accepts no mail, and senders bounce "
                                             "what they send to it");
        return v;
    }

    bool certain = false, uncertain = false;
    const HostAddressLookup none;
    for (const auto i : order) {
        const auto trouble =
            judge_host(lookup.records[i], i < lookup.hosts.size() ? lookup.hosts[i] : none, lookup, relay, v);
        certain = certain || trouble == Trouble::certain;
        uncertain = uncertain || trouble == Trouble::uncertain;
    }
    if (std::all_of(v.mx.begin(), v.mx.end(), [](const MxHostVerdict& h) { return h.points == Points::elsewhere; }))
        v.problems.insert(v.problems.begin(),
                          "no MX host of " + lookup.domain + " points at this relay: all its mail bypasses it");
    v.status = certain ? MxStatus::problems : uncertain ? MxStatus::dns_error : MxStatus::ok;
    return v;
}

asio::awaitable<MxLookup> lookup_mx(DnsResolver& dns, const std::string& domain,
                                    const std::vector<std::string>& relay_names) {
    MxLookup lookup;
    lookup.domain = domain;
    lookup.relay_names = relay_names;
    const auto answer = co_await dns.query(domain, DnsResolver::type_mx);
    lookup.status = answer.status;
    lookup.error = answer.error;
    lookup.ttl = answer.ttl;
    for (const auto& rdata : answer.rdata)
        if (auto record = parse_mx_rdata(rdata)) lookup.records.push_back(std::move(*record));

    // Whose addresses matter: the MX hosts (a null MX has none), or the domain itself
    // when it has no MX; and ours, to compare.
    std::vector<std::string> names;
    if (answer.status == DnsStatus::ok) {
        for (const auto& record : lookup.records)
            if (!record.exchange.empty()) names.push_back(record.exchange);
    } else if (answer.status == DnsStatus::nodata) {
        names.push_back(domain);
    }
    if (names.empty()) co_return lookup;
    names.insert(names.end(), relay_names.begin(), relay_names.end());
    auto found = co_await lookup_addresses(dns, names);

    std::size_t next = 0;
    if (answer.status == DnsStatus::nodata) {
        lookup.domain_addresses = std::move(found[next++]);
    } else {
        for (const auto& record : lookup.records)
            lookup.hosts.push_back(record.exchange.empty() ? HostAddressLookup{} : std::move(found[next++]));
    }
    while (next < found.size()) lookup.relay_hosts.push_back(std::move(found[next++]));
    co_return lookup;
}

boost::json::object mx_verdict_json(const MxVerdict& verdict) {
    boost::json::array mx;
    for (const auto& h : verdict.mx) {
        mx.push_back(boost::json::object{{"preference", h.preference},
                                         {"exchange", h.exchange},
                                         {"ttl", h.ttl.count()},
                                         {"addresses", boost::json::array(h.addresses.begin(), h.addresses.end())},
                                         {"points_here", h.points == Points::here}});
    }
    return boost::json::object{{"domain", verdict.domain},
                               {"status", to_string(verdict.status)},
                               {"mx", std::move(mx)},
                               {"problems", boost::json::array(verdict.problems.begin(), verdict.problems.end())}};
}

std::string mx_verdict_text(const MxVerdict& verdict) {
    std::string out;
    for (const auto& h : verdict.mx) {
        out += verdict.domain + ": " + mx_name({h.preference, h.exchange});
        if (h.exchange.empty()) {
            out += " (null MX)\n";
            continue;
        }
        out += " (" + (h.addresses.empty() ? std::string("no address") : join(h.addresses, ", ")) + ") ttl " +
               std::to_string(h.ttl.count()) + "s: ";
        out += h.points == Points::here        ? "this relay\n"
               : h.points == Points::elsewhere ? "NOT this relay\n"
                                               : "cannot tell (DNS failure)\n";
    }
    out += verdict.domain + ": " + std::string(to_string(verdict.status)) + ": " +
           (verdict.problems.empty() ? std::string("every MX host is this relay") : join(verdict.problems, "; ")) +
           "\n";
    return out;
}

}  // namespace edgerelay::routing
