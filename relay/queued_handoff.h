// Tells the delivery thread of messages the intake thread has just queued, a round at a
// time. One group commit completes many sessions at once; told one message at a time,
// the delivery thread would wake once per message, and on a busy core each wake-up
// preempts the intake thread that is answering the next client.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <string>
#include <vector>

namespace edgerelay::relay {

class QueuedHandoff {
public:
    using OnQueued = std::function<void(const std::string& queue_id)>;

    // on_queued runs on the delivery executor, once per message, in queueing order.
    QueuedHandoff(boost::asio::any_io_executor intake, boost::asio::any_io_executor delivery, OnQueued on_queued);

    // Intake thread only. The message goes over with the others queued in the same
    // round of the intake thread's ready work, after that round, not at once.
    void queued(const std::string& queue_id);

private:
    void hand_over();

    boost::asio::any_io_executor intake_;
    boost::asio::any_io_executor delivery_;
    OnQueued on_queued_;
    std::vector<std::string> pending_;
};

}  // namespace edgerelay::relay
