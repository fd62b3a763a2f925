// next_hop notation: every form of SPEC §3 and the malformed ones.
#include <gtest/gtest.h>

#include "routing/next_hop.h"

using edgerelay::routing::parse_next_hop;

TEST(NextHop, HostMeansMxLookupOnDefaultPort) {
    auto p = parse_next_hop("Inbound.Rockerduck.Example");
    ASSERT_TRUE(p.next_hop) << p.error;
    EXPECT_EQ(p.next_hop->host, "inbound.rockerduck.example");
    EXPECT_TRUE(p.next_hop->mx_lookup);
    EXPECT_FALSE(p.next_hop->literal);
    EXPECT_FALSE(p.next_hop->port);
}

TEST(NextHop, HostPortKeepsMxLookup) {
    auto p = parse_next_hop("inbound.example:2525");
    ASSERT_TRUE(p.next_hop) << p.error;
    EXPECT_TRUE(p.next_hop->mx_lookup);
    EXPECT_EQ(p.next_hop->port, 2525);
}

TEST(NextHop, BracketsSkipMx) {
    auto p = parse_next_hop("[mx1.example]:26");
    ASSERT_TRUE(p.next_hop) << p.error;
    EXPECT_FALSE(p.next_hop->mx_lookup);
    EXPECT_FALSE(p.next_hop->literal);
    EXPECT_EQ(p.next_hop->host, "mx1.example");
    EXPECT_EQ(p.next_hop->port, 26);
    EXPECT_EQ(p.next_hop->to_string(), "[mx1.example]:26");
    EXPECT_FALSE(parse_next_hop("[mx1.example]").next_hop->port);
}

TEST(NextHop, Literals) {
    auto v4 = parse_next_hop("[192.0.2.1]:25");
    ASSERT_TRUE(v4.next_hop) << v4.error;
    EXPECT_TRUE(v4.next_hop->literal);
    EXPECT_EQ(v4.next_hop->host, "192.0.2.1");
    auto v6 = parse_next_hop("[IPv6:2001:db8::1]:25");
    ASSERT_TRUE(v6.next_hop) << v6.error;
    EXPECT_TRUE(v6.next_hop->literal);
    EXPECT_EQ(v6.next_hop->host, "2001:db8::1");
    EXPECT_EQ(v6.next_hop->to_string(), "[IPv6:2001:db8::1]:25");
}

TEST(NextHop, Malformed) {
    for (const char* bad : {"", "[", "[host", "[host]x", "[host]:", "host:", "host:0", "host:65536", "host:2x",
                            "-bad.example", "bad-.example", "a..b", "under_score.example", "192.0.2.1",
                            "host name", "[]"}) {
        auto p = parse_next_hop(bad);
        EXPECT_FALSE(p.next_hop) << "accepted: " << bad;
        EXPECT_FALSE(p.error.empty()) << bad;
    }
}
