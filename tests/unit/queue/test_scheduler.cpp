// The in-memory schedule: due order, destinations, pulling a destination for a drain.
#include <gtest/gtest.h>

#include "queue/scheduler.h"

namespace edgerelay::queue {
namespace {

TEST(Scheduler, PopsDueMessagesEarliestFirst) {
    Scheduler s;
    s.schedule("B", 200, {"b.example"});
    s.schedule("A", 100, {"a.example"});
    s.schedule("C", 300, {"a.example"});
    EXPECT_EQ(s.next_due(), 100);
    EXPECT_TRUE(s.pop_due(99, 10).empty());
    EXPECT_EQ(s.pop_due(250, 10), (std::vector<std::string>{"A", "B"}));
    EXPECT_EQ(s.size(), 1u);
    EXPECT_EQ(s.next_due(), 300);
    EXPECT_EQ(s.pop_due(1000, 10), (std::vector<std::string>{"C"}));
    EXPECT_FALSE(s.next_due());
}

TEST(Scheduler, PopRespectsTheLimit) {
    Scheduler s;
    for (int i = 0; i < 10; ++i) s.schedule("M" + std::to_string(i), i, {"d.example"});
    EXPECT_EQ(s.pop_due(100, 3).size(), 3u);
    EXPECT_EQ(s.size(), 7u);
}

TEST(Scheduler, RescheduleReplacesTheEntry) {
    Scheduler s;
    s.schedule("A", 100, {"a.example"});
    s.schedule("A", 500, {"b.example"});
    EXPECT_EQ(s.size(), 1u);
    EXPECT_EQ(s.waiting("a.example"), 0u);
    EXPECT_EQ(s.waiting("b.example"), 1u);
    EXPECT_TRUE(s.pop_due(400, 10).empty());
}

TEST(Scheduler, PullDestinationTakesEveryWaitingMessageOldestFirst) {
    Scheduler s;
    s.schedule("0003", 900, {"dallas.example"});
    s.schedule("0001", 999, {"dallas.example", "other.example"});
    s.schedule("0002", 100, {"other.example"});
    EXPECT_EQ(s.waiting("dallas.example"), 2u);
    EXPECT_EQ(s.pull_destination("dallas.example"), (std::vector<std::string>{"0001", "0003"}));
    EXPECT_EQ(s.waiting("dallas.example"), 0u);
    // 0001 left the schedule entirely: its other destination goes with it.
    EXPECT_EQ(s.waiting("other.example"), 1u);
    EXPECT_EQ(s.size(), 1u);
    EXPECT_TRUE(s.pull_destination("nowhere.example").empty());
}

TEST(Scheduler, TakeOneTakesTheOldest) {
    Scheduler s;
    s.schedule("0009", 1, {"d.example"});
    s.schedule("0004", 5, {"d.example"});
    EXPECT_EQ(s.take_one("d.example"), "0004");
    EXPECT_EQ(s.take_one("d.example"), "0009");
    EXPECT_FALSE(s.take_one("d.example"));
}

TEST(Scheduler, AProbeThatFailsPutsItsMessageBackAsTheOldest) {
    // The probe cycle of a site that is down: the oldest goes out, fails, and is
    // scheduled again behind messages that arrived after it.
    Scheduler s;
    for (const char* id : {"0001", "0002", "0003"}) s.schedule(id, 10, {"d.example"});
    EXPECT_EQ(s.take_one("d.example"), "0001");
    s.schedule("0004", 10, {"d.example"});
    s.schedule("0001", 99, {"d.example"});
    EXPECT_EQ(s.waiting("d.example"), 4u);
    EXPECT_EQ(s.take_one("d.example"), "0001");
    EXPECT_EQ(s.pull_destination("d.example"), (std::vector<std::string>{"0002", "0003", "0004"}));
}

TEST(Scheduler, DestinationOfAnAddress) {
    EXPECT_EQ(destination_of("User@RockerDuck.Example"), "rockerduck.example");
    EXPECT_EQ(destination_of("\"a@b\"@c.example"), "c.example");
    EXPECT_EQ(destination_of("postmaster"), "");
}

}  // namespace
}  // namespace edgerelay::queue
