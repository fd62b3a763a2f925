// The MX verdict (routing/mx_check.h) from made-up answers: which hosts are this relay
// (by name, by mx_names, by address), and every kind of problem with its status.
#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include "routing/mx_check.h"

using namespace edgerelay::routing;
using namespace std::chrono_literals;
using Points = MxHostVerdict::Points;

namespace {

constexpr const char* domain = "customer.example";

HostAddressLookup at(std::vector<std::string> addresses) { return {std::move(addresses), false, ""}; }
HostAddressLookup failing(std::string error) { return {{}, false, std::move(error)}; }

// A domain with MX records, each host with its addresses; this relay is edge.example.net
// (192.0.2.10, 2001:db8::10) and its alias mx.edge.example.net.
MxLookup with_mx(std::vector<std::pair<MxRecord, HostAddressLookup>> hosts) {
    MxLookup l;
    l.domain = domain;
    l.status = DnsStatus::ok;
    l.ttl = 300s;
    for (auto& [record, host] : hosts) {
        l.records.push_back(record);
        l.hosts.push_back(host);
    }
    l.relay_names = {"edge.example.net", "mx.edge.example.net"};
    l.relay_hosts = {at({"192.0.2.10", "2001:db8::10"}), at({})};
    return l;
}

std::string problems_of(const MxVerdict& v) {
    std::string all;
    for (const auto& p : v.problems) all += p + "\n";
    return all;
}

}  // namespace

TEST(MxCheck, EveryHostByNameOrAliasIsOk) {
    const auto v = judge_mx(with_mx({{{10, "edge.example.net"}, at({"192.0.2.10"})},
                                     {{20, "mx.edge.example.net"}, at({"203.0.113.1"})}}));
    EXPECT_EQ(v.status, MxStatus::ok);
    EXPECT_TRUE(v.ok());
    EXPECT_TRUE(v.problems.empty()) << problems_of(v);
    ASSERT_EQ(v.mx.size(), 2u);
    EXPECT_EQ(v.mx[0].points, Points::here);
    EXPECT_EQ(v.mx[1].points, Points::here);
}

TEST(MxCheck, OurNameWithoutAnAddressIsSkippedBySenders) {
    const auto v = judge_mx(with_mx({{{10, "edge.example.net"}, at({"192.0.2.10"})},
                                     {{20, "mx.edge.example.net"}, at({})}}));
    EXPECT_EQ(v.status, MxStatus::problems);
    EXPECT_EQ(v.mx[1].points, Points::here);
    EXPECT_EQ(problems_of(v), "MX 20 mx.edge.example.net names this relay but has no A or AAAA record: senders skip it\n");
}

TEST(MxCheck, AnotherNameWithOurAddressIsUs) {
    // A customer's vanity name, or an IPv4-mapped AAAA of our address.
    const auto v = judge_mx(with_mx({{{10, "mail.customer.example"}, at({"192.0.2.10"})},
                                     {{10, "mail6.customer.example"}, at({"::ffff:192.0.2.10"})},
                                     {{10, "mail7.customer.example"}, at({"2001:DB8:0::10"})}}));
    EXPECT_EQ(v.status, MxStatus::ok) << problems_of(v);
}

TEST(MxCheck, ABackupElsewhereBypassesTheRelay) {
    const auto v = judge_mx(with_mx({{{20, "backup.other.net"}, at({"198.51.100.7"})},
                                     {{10, "edge.example.net"}, at({"192.0.2.10"})}}));
    EXPECT_EQ(v.status, MxStatus::problems);
    ASSERT_EQ(v.mx.size(), 2u);
    EXPECT_EQ(v.mx[0].exchange, "edge.example.net");  // preference order
    EXPECT_EQ(v.mx[1].points, Points::elsewhere);
    ASSERT_EQ(v.problems.size(), 1u);
    EXPECT_EQ(v.problems[0], "MX 20 backup.other.net does not point at this relay: mail sent there bypasses it");
}

TEST(MxCheck, NoneHereSaysAllMailBypasses) {
    const auto v = judge_mx(with_mx({{{10, "mx1.other.net"}, at({"198.51.100.1"})}}));
    EXPECT_EQ(v.status, MxStatus::problems);
    ASSERT_EQ(v.problems.size(), 2u);
    EXPECT_EQ(v.problems[0], "no MX host of customer.example points at this relay: all its mail bypasses it");
}

TEST(MxCheck, HostsWithoutAddressAreSkippedBySenders) {
    auto gone = HostAddressLookup{};
    gone.nxdomain = true;
    const auto v = judge_mx(with_mx({{{10, "edge.example.net"}, at({"192.0.2.10"})},
                                     {{20, "gone.customer.example"}, gone},
                                     {{30, "bare.customer.example"}, at({})}}));
    EXPECT_EQ(v.status, MxStatus::problems);
    EXPECT_EQ(problems_of(v),
              "MX 20 gone.customer.example has no address (NXDOMAIN): senders skip it\n"
              "MX 30 bare.customer.example has no A or AAAA record: senders skip it\n");
}

TEST(MxCheck, AHostThatCannotBeResolvedIsADnsError) {
    const auto v = judge_mx(with_mx({{{10, "edge.example.net"}, at({"192.0.2.10"})},
                                     {{20, "flaky.customer.example"}, failing("SERVFAIL")}}));
    EXPECT_EQ(v.status, MxStatus::dns_error);
    EXPECT_EQ(v.mx[1].points, Points::unknown);
    EXPECT_NE(problems_of(v).find("SERVFAIL"), std::string::npos) << problems_of(v);

    // A certain problem outweighs an uncertain one.
    const auto both = judge_mx(with_mx({{{10, "other.net"}, at({"198.51.100.1"})},
                                        {{20, "flaky.customer.example"}, failing("timeout")}}));
    EXPECT_EQ(both.status, MxStatus::problems);
}

TEST(MxCheck, OurOwnNamesFailingLeavesOtherHostsUnjudged) {
    auto l = with_mx({{{10, "mail.customer.example"}, at({"192.0.2.10"})}});
    l.relay_hosts = {failing("SERVFAIL"), at({})};
    const auto v = judge_mx(l);
    EXPECT_EQ(v.status, MxStatus::dns_error);
    EXPECT_NE(problems_of(v).find("edge.example.net (SERVFAIL)"), std::string::npos) << problems_of(v);
    // By name it still counts.
    l.records[0].exchange = "edge.example.net";
    EXPECT_EQ(judge_mx(l).status, MxStatus::ok);
}

TEST(MxCheck, NullMx) {
    const auto v = judge_mx(with_mx({{{0, ""}, {}}}));
    EXPECT_EQ(v.status, MxStatus::null_mx);
    ASSERT_EQ(v.problems.size(), 1u);
    EXPECT_NE(v.problems[0].find("null MX (RFC 7505)"), std::string::npos);

    const auto mixed = judge_mx(with_mx({{{0, ""}, {}}, {{10, "edge.example.net"}, at({})}}));
    EXPECT_EQ(mixed.status, MxStatus::problems);
    EXPECT_NE(problems_of(mixed).find("publishing mistake"), std::string::npos);
}

TEST(MxCheck, NoMxMeansTheAddressRecordBypassesTheRelay) {
    MxLookup l = with_mx({});
    l.status = DnsStatus::nodata;
    l.domain_addresses = at({"203.0.113.5"});
    auto v = judge_mx(l);
    EXPECT_EQ(v.status, MxStatus::no_mx);
    EXPECT_TRUE(v.mx.empty());
    EXPECT_EQ(problems_of(v),
              "customer.example has no MX record: mail goes to its address record (203.0.113.5) and bypasses this "
              "relay\n");
    l.domain_addresses = at({"192.0.2.10"});
    v = judge_mx(l);
    EXPECT_EQ(v.status, MxStatus::no_mx);  // works by accident: still a problem
    EXPECT_NE(problems_of(v).find("which is this relay"), std::string::npos);
    l.domain_addresses = at({});
    EXPECT_NE(problems_of(judge_mx(l)).find("cannot be delivered"), std::string::npos);
}

TEST(MxCheck, NxdomainAndFailedLookups) {
    MxLookup l = with_mx({});
    l.status = DnsStatus::nxdomain;
    auto v = judge_mx(l);
    EXPECT_EQ(v.status, MxStatus::nxdomain);
    EXPECT_EQ(problems_of(v), "customer.example does not exist (NXDOMAIN): senders bounce mail for it\n");
    l.status = DnsStatus::temporary_failure;
    l.error = "SERVFAIL";
    v = judge_mx(l);
    EXPECT_EQ(v.status, MxStatus::dns_error);
    EXPECT_NE(problems_of(v).find("failed (SERVFAIL): a temporary DNS failure"), std::string::npos);
    l.status = DnsStatus::ok;  // records present but none readable
    EXPECT_EQ(judge_mx(l).status, MxStatus::dns_error);
}

TEST(MxCheck, Json) {
    const auto v = judge_mx(with_mx({{{10, "edge.example.net"}, at({"192.0.2.10"})},
                                     {{20, "backup.other.net"}, at({"198.51.100.7"})}}));
    EXPECT_EQ(boost::json::serialize(mx_verdict_json(v)),
              R"({"domain":"customer.example","status":"problems","mx":[)"
              R"({"preference":10,"exchange":"edge.example.net","ttl":300,"addresses":["192.0.2.10"],"points_here":true},)"
              R"({"preference":20,"exchange":"backup.other.net","ttl":300,"addresses":["198.51.100.7"],"points_here":false}],)"
              R"("problems":["MX 20 backup.other.net does not point at this relay: mail sent there bypasses it"]})");
}

TEST(MxCheck, TextHasALinePerMxAndASummary) {
    const auto v = judge_mx(with_mx({{{10, "edge.example.net"}, at({"192.0.2.10"})},
                                     {{20, "backup.other.net"}, at({"198.51.100.7", "2001:db8::7"})}}));
    EXPECT_EQ(mx_verdict_text(v),
              "customer.example: MX 10 edge.example.net (192.0.2.10) ttl 300s: this relay\n"
              "customer.example: MX 20 backup.other.net (198.51.100.7, 2001:db8::7) ttl 300s: NOT this relay\n"
              "customer.example: problems: MX 20 backup.other.net does not point at this relay: mail sent there "
              "bypasses it\n");
    EXPECT_EQ(mx_verdict_text(judge_mx(with_mx({{{10, "mx.edge.example.net"}, at({"203.0.113.1"})}}))),
              "customer.example: MX 10 mx.edge.example.net (203.0.113.1) ttl 300s: this relay\n"
              "customer.example: ok: every MX host is this relay\n");
}
