// Unit tests of the value parsers of conf/config_values.cpp and of Network::contains.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "conf/config.h"

using namespace edgerelay::conf;
using namespace std::chrono_literals;

namespace {

std::array<unsigned char, 16> v6(const char* text) {
    std::array<unsigned char, 16> address{};
    EXPECT_EQ(inet_pton(AF_INET6, text, address.data()), 1) << text;
    return address;
}

// How a dual-stack socket reports an IPv4 peer.
std::array<unsigned char, 16> v4(const char* text) {
    return v6(("::ffff:" + std::string(text)).c_str());
}

}  // namespace

TEST(ParseDuration, AcceptsEveryUnit) {
    EXPECT_EQ(parse_duration("0"), Duration::zero());
    EXPECT_EQ(parse_duration("500ms"), 500ms);
    EXPECT_EQ(parse_duration("90s"), 90s);
    EXPECT_EQ(parse_duration("15m"), 15min);
    EXPECT_EQ(parse_duration("4h"), 4h);
    EXPECT_EQ(parse_duration("5d"), 120h);
    EXPECT_EQ(parse_duration("0s"), Duration::zero());
}

TEST(ParseDuration, RejectsJunk) {
    for (const char* bad : {"", "90", "-5s", "+5s", "5", "s", "5x", "5 s", " 5s", "5s ", "1.5h", "5sec",
                            "5S", "1h30m", "0x10s", "99999999999999999999d", "9999999999999999d"}) {
        EXPECT_FALSE(parse_duration(bad)) << bad;
    }
}

TEST(FormatDuration, PicksTheLargestExactUnit) {
    EXPECT_EQ(format_duration(Duration::zero()), "0");
    EXPECT_EQ(format_duration(500ms), "500ms");
    EXPECT_EQ(format_duration(1500ms), "1500ms");
    EXPECT_EQ(format_duration(90s), "90s");
    EXPECT_EQ(format_duration(15min), "15m");
    EXPECT_EQ(format_duration(4h), "4h");
    EXPECT_EQ(format_duration(120h), "5d");
}

TEST(FormatDuration, RoundTripsThroughParse) {
    for (Duration d : {Duration(0), Duration(1), Duration(1001), Duration(60'000), Duration(86'400'000 * 30ll),
                       Duration(3'600'000 * 25ll), Duration(59'000)}) {
        EXPECT_EQ(parse_duration(format_duration(d)), d) << format_duration(d);
    }
    for (const char* text : {"0", "500ms", "90s", "15m", "4h", "5d"}) {
        EXPECT_EQ(format_duration(*parse_duration(text)), text);
    }
}

TEST(ParseSize, BinaryAndDecimalUnits) {
    EXPECT_EQ(parse_size("1024"), 1024u);
    EXPECT_EQ(parse_size("0"), 0u);
    EXPECT_EQ(parse_size("10B"), 10u);
    EXPECT_EQ(parse_size("10KiB"), 10u * 1024);
    EXPECT_EQ(parse_size("50MiB"), 50ull << 20);
    EXPECT_EQ(parse_size("64GiB"), 64ull << 30);
    EXPECT_EQ(parse_size("2TiB"), 2ull << 40);
    EXPECT_EQ(parse_size("1KB"), 1000u);
    EXPECT_EQ(parse_size("10MB"), 10'000'000u);
    EXPECT_EQ(parse_size("3GB"), 3'000'000'000u);
    EXPECT_EQ(parse_size("50mib"), 50ull << 20);  // unit case does not matter
}

TEST(ParseSize, RejectsJunk) {
    for (const char* bad : {"", "MiB", "-1", "+1", "1.5MiB", "10 MiB", "10XiB", "10Ki", "0x10",
                            "99999999999999999999", "17179869184GiB"}) {
        EXPECT_FALSE(parse_size(bad)) << bad;
    }
}

TEST(ParseEndpoint, HostsAndPorts) {
    auto v4_endpoint = parse_endpoint("127.0.0.1:2525");
    ASSERT_TRUE(v4_endpoint);
    EXPECT_EQ(v4_endpoint->host, "127.0.0.1");
    EXPECT_EQ(v4_endpoint->port, 2525);

    auto v6_endpoint = parse_endpoint("[::1]:2525");
    ASSERT_TRUE(v6_endpoint);
    EXPECT_EQ(v6_endpoint->host, "::1");  // no brackets kept
    EXPECT_EQ(v6_endpoint->port, 2525);

    auto named = parse_endpoint("localhost:8025");
    ASSERT_TRUE(named);
    EXPECT_EQ(named->host, "localhost");
    EXPECT_EQ(named->port, 8025);

    EXPECT_EQ(parse_endpoint("0.0.0.0:1")->port, 1);
    EXPECT_EQ(parse_endpoint("[::]:65535")->port, 65535);
}

TEST(ParseEndpoint, RejectsMissingOrBadParts) {
    for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", ":25", "127.0.0.1:0", "127.0.0.1:65536",
                            "127.0.0.1:-1", "127.0.0.1:25x", "::1:25", "[::1]", "[::1]25", "[::1:25",
                            "[nonsense]:25", "[127.0.0.1]:25", "host name:25", "1.2.3:25", "999.1.1.1:25"}) {
        EXPECT_FALSE(parse_endpoint(bad)) << bad;
    }
}

TEST(Endpoint, ToStringBracketsIpv6AndRoundTrips) {
    EXPECT_EQ((Endpoint{"::1", 2525}).to_string(), "[::1]:2525");
    EXPECT_EQ((Endpoint{"127.0.0.1", 25}).to_string(), "127.0.0.1:25");
    EXPECT_EQ((Endpoint{"localhost", 8025}).to_string(), "localhost:8025");
    for (const char* text : {"127.0.0.1:2525", "[2001:db8::1]:25", "mx.example.net:587"}) {
        EXPECT_EQ(parse_endpoint(text)->to_string(), text);
    }
}

TEST(ParseNetwork, Ipv4IsStoredMapped) {
    auto net = parse_network("127.0.0.0/8");
    ASSERT_TRUE(net);
    EXPECT_EQ(net->length, 8u + 96);
    EXPECT_EQ(net->prefix, v4("127.0.0.0"));
    EXPECT_EQ(net->text, "127.0.0.0/8");

    auto host = parse_network("10.1.2.3");  // a bare address is one host
    ASSERT_TRUE(host);
    EXPECT_EQ(host->length, 128u);
    EXPECT_EQ(host->prefix, v4("10.1.2.3"));

    EXPECT_EQ(parse_network("0.0.0.0/0")->length, 96u);
}

TEST(ParseNetwork, Ipv6) {
    auto loopback = parse_network("::1/128");
    ASSERT_TRUE(loopback);
    EXPECT_EQ(loopback->length, 128u);
    EXPECT_EQ(loopback->prefix, v6("::1"));

    auto block = parse_network("2001:db8::/32");
    ASSERT_TRUE(block);
    EXPECT_EQ(block->length, 32u);
    EXPECT_EQ(block->prefix, v6("2001:db8::"));

    EXPECT_EQ(parse_network("::1")->length, 128u);
    EXPECT_EQ(parse_network("::/0")->length, 0u);
}

TEST(ParseNetwork, RejectsBadBlocks) {
    for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.0.0.0/8", "10.0.0.0/33", "10.0.0.0/", "/8",
                            "10.0.0.0/-1", "10.0.0.0/8x", "10.0.0.0/+8", "::1/129", "fe80::1%eth0",
                            "localhost", "10.0.0.1/8", "2001:db8::1/32", " 10.0.0.0/8"}) {
        EXPECT_FALSE(parse_network(bad)) << bad;
    }
}

TEST(NetworkContains, Ipv4) {
    auto loopback = *parse_network("127.0.0.0/8");
    EXPECT_TRUE(loopback.contains(v4("127.0.0.1")));
    EXPECT_TRUE(loopback.contains(v4("127.255.255.255")));
    EXPECT_FALSE(loopback.contains(v4("128.0.0.1")));
    EXPECT_FALSE(loopback.contains(v4("10.0.0.1")));
    EXPECT_FALSE(loopback.contains(v6("::1")));

    auto odd = *parse_network("192.168.4.0/22");  // a length that is not a whole octet
    EXPECT_TRUE(odd.contains(v4("192.168.7.255")));
    EXPECT_TRUE(odd.contains(v4("192.168.4.0")));
    EXPECT_FALSE(odd.contains(v4("192.168.8.0")));
    EXPECT_FALSE(odd.contains(v4("192.168.3.255")));

    auto host = *parse_network("10.1.2.3");
    EXPECT_TRUE(host.contains(v4("10.1.2.3")));
    EXPECT_FALSE(host.contains(v4("10.1.2.4")));

    auto all_v4 = *parse_network("0.0.0.0/0");
    EXPECT_TRUE(all_v4.contains(v4("203.0.113.9")));
    EXPECT_FALSE(all_v4.contains(v6("2001:db8::1")));  // IPv4's "everything" is not IPv6
}

TEST(NetworkContains, Ipv6) {
    auto block = *parse_network("2001:db8::/33");
    EXPECT_TRUE(block.contains(v6("2001:db8::1")));
    EXPECT_TRUE(block.contains(v6("2001:db8:7fff:ffff::1")));
    EXPECT_FALSE(block.contains(v6("2001:db8:8000::1")));
    EXPECT_FALSE(block.contains(v6("2001:db9::1")));
    EXPECT_FALSE(block.contains(v4("32.1.13.184")));

    auto loopback = *parse_network("::1/128");
    EXPECT_TRUE(loopback.contains(v6("::1")));
    EXPECT_FALSE(loopback.contains(v6("::2")));

    auto everything = *parse_network("::/0");
    EXPECT_TRUE(everything.contains(v6("2001:db8::1")));
    EXPECT_TRUE(everything.contains(v4("192.0.2.1")));
}
