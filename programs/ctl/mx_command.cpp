// `edgerelayctl mx DOMAIN...`: looks each customer domain's MX records up (through
// [dns], like delivery) and says whether they all lead to this relay ([server] hostname
// and mx_names). Needs no daemon. Exit status 0 when every domain is ok, else 1.
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/array.hpp>
#include <exception>
#include <iostream>

#include "programs/ctl/ctl.h"
#include "routing/mx_check.h"
#include "routing/next_hop.h"

namespace edgerelay::ctl {

namespace {

namespace asio = boost::asio;

// "Customer.Example." -> "customer.example"; an address or junk is a usage error, not a
// query DNS would answer with a confusing NXDOMAIN.
std::string domain_argument(const std::string& word) {
    std::string domain = routing::lowercase_ascii(word);
    if (!domain.empty() && domain.back() == '.') domain.pop_back();
    if (domain.find('@') != std::string::npos) fail("mx takes a domain, not an address: " + word);
    const bool plain = std::all_of(domain.begin(), domain.end(), [](unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
    });
    if (domain.empty() || domain.size() > 253 || !plain || domain.front() == '.' ||
        domain.find("..") != std::string::npos)
        fail("not a domain name: '" + word + "'");
    return domain;
}

asio::awaitable<void> check_all(routing::DnsResolver& dns, const std::vector<std::string>& domains,
                                const std::vector<std::string>& relay_names, std::vector<routing::MxVerdict>& out) {
    for (const auto& domain : domains) {
        auto lookup = co_await routing::lookup_mx(dns, domain, relay_names);
        out.push_back(routing::judge_mx(lookup));
    }
}

}  // namespace

int mx_command(const Invocation& inv, const conf::Config& config) {
    inv.allow_options({});
    if (inv.all) fail("mx has no option --all");
    if (inv.words.size() < 2) fail("mx needs a domain");
    std::vector<std::string> domains;
    for (std::size_t i = 1; i < inv.words.size(); ++i) domains.push_back(domain_argument(inv.words[i]));

    std::vector<std::string> relay_names{config.server.hostname};
    for (const auto& name : config.server.mx_names)
        if (std::find(relay_names.begin(), relay_names.end(), name) == relay_names.end()) relay_names.push_back(name);

    std::vector<routing::MxVerdict> verdicts;
    std::exception_ptr failure;
    {
        asio::io_context io(1);
        routing::DnsResolver dns(io.get_executor(), config.dns);
        asio::co_spawn(io, check_all(dns, domains, relay_names, verdicts),
                       [&](std::exception_ptr e) { failure = e; });
        io.run();
    }
    if (failure) std::rethrow_exception(failure);

    const bool all_ok =
        std::all_of(verdicts.begin(), verdicts.end(), [](const routing::MxVerdict& v) { return v.ok(); });
    if (inv.json) {
        boost::json::array items;
        for (const auto& v : verdicts) items.push_back(routing::mx_verdict_json(v));
        print_json_list("domains", std::move(items));
    } else {
        for (const auto& v : verdicts) std::cout << routing::mx_verdict_text(v);
    }
    return all_ok ? 0 : 1;
}

}  // namespace edgerelay::ctl
