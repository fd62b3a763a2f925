#include "relay/queued_handoff.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <string>
#include <thread>
#include <vector>

namespace edgerelay::relay {
namespace {

namespace asio = boost::asio;

struct Threads {
    asio::io_context intake;
    asio::io_context delivery;
    std::vector<std::string> told;
    std::thread::id told_on;
    QueuedHandoff handoff{intake.get_executor(), delivery.get_executor(), [this](const std::string& id) {
                              told.push_back(id);
                              told_on = std::this_thread::get_id();
                          }};
};

TEST(QueuedHandoff, MessagesQueuedInOneRoundReachDeliveryInOneHandler) {
    Threads t;
    // Three sessions resumed by one group commit: three handlers ready at once.
    for (const char* id : {"A1", "A2", "A3"}) asio::post(t.intake, [&t, id] { t.handoff.queued(id); });
    t.intake.run();
    EXPECT_TRUE(t.told.empty()) << "delivery is told on its own thread, not the intake thread";

    std::size_t handlers = 0;
    std::thread::id delivery_id;
    std::thread delivery_thread([&] {
        delivery_id = std::this_thread::get_id();
        handlers = t.delivery.run();
    });
    delivery_thread.join();
    EXPECT_EQ(handlers, 1u) << "one wake-up of the delivery thread for the round";
    EXPECT_EQ(t.told, (std::vector<std::string>{"A1", "A2", "A3"}));
    EXPECT_EQ(t.told_on, delivery_id);
}

TEST(QueuedHandoff, EachRoundIsHandedOverOnItsOwn) {
    Threads t;
    asio::post(t.intake, [&t] { t.handoff.queued("B1"); });
    t.intake.run();
    EXPECT_EQ(t.delivery.run(), 1u);
    EXPECT_EQ(t.told, std::vector<std::string>{"B1"});

    t.intake.restart();
    t.delivery.restart();
    asio::post(t.intake, [&t] {
        t.handoff.queued("B2");
        t.handoff.queued("B3");
    });
    t.intake.run();
    EXPECT_EQ(t.delivery.run(), 1u);
    EXPECT_EQ(t.told, (std::vector<std::string>{"B1", "B2", "B3"}));
}

}  // namespace
}  // namespace edgerelay::relay
