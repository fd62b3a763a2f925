// Route lookup is exact and case-insensitive; look-alikes never match.
#include <gtest/gtest.h>

#include "routing/route_table.h"

using namespace edgerelay;

namespace {
conf::Config config_with_routes() {
    conf::Config config;
    config.source = "test.toml";
    config.routes.push_back({"rockerduck.example", "inbound.rockerduck.example", conf::TlsPolicy::may, 10, 12});
    config.routes.push_back({"duck.example", "[192.0.2.7]:2525", conf::TlsPolicy::none, 14, 15});
    return config;
}
}  // namespace

TEST(RouteTable, ExactCaseInsensitive) {
    routing::RouteTable table(config_with_routes().routes);
    ASSERT_NE(table.find("RockerDuck.Example"), nullptr);
    EXPECT_EQ(table.find("rockerduck.example")->next_hop.host, "inbound.rockerduck.example");
    EXPECT_EQ(table.find("duck.example")->next_hop.port, 2525);
    for (const char* other : {"rockerduck.example.", "sub.rockerduck.example", "rockerduck.example.evil.test",
                              "evil-rockerduck.example", "ockerduck.example", "", "[192.0.2.7]"})
        EXPECT_EQ(table.find(other), nullptr) << other;
}

TEST(RouteTable, CheckRoutesNamesFileLineAndKey) {
    auto config = config_with_routes();
    config.routes.push_back({"bad.example", "[unclosed", conf::TlsPolicy::may, 20, 21});
    config.routes.push_back({"other.example", "host:99999", conf::TlsPolicy::may, 23, 24});
    auto errors = routing::check_routes(config);
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_EQ(errors[0].key, "route[3].next_hop");
    EXPECT_EQ(errors[0].line, 21u);
    EXPECT_EQ(errors[0].file, "test.toml");
    EXPECT_EQ(errors[1].key, "route[4].next_hop");
    EXPECT_EQ(errors[1].line, 24u);
    EXPECT_TRUE(routing::check_routes(config_with_routes()).empty());
}
