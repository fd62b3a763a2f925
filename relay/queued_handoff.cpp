#include "relay/queued_handoff.h"

#include <boost/asio/post.hpp>
#include <utility>

namespace edgerelay::relay {

namespace asio = boost::asio;

QueuedHandoff::QueuedHandoff(asio::any_io_executor intake, asio::any_io_executor delivery, OnQueued on_queued)
    : intake_(std::move(intake)), delivery_(std::move(delivery)), on_queued_(std::move(on_queued)) {}

void QueuedHandoff::queued(const std::string& queue_id) {
    pending_.push_back(queue_id);
    // Asio runs a handler posted from its own thread after those already waiting: the
    // other sessions of the same commit, whose completions the writer posted together.
    if (pending_.size() == 1) asio::post(intake_, [this] { hand_over(); });
}

void QueuedHandoff::hand_over() {
    asio::post(delivery_, [this, batch = std::exchange(pending_, {})] {
        for (const auto& id : batch) on_queued_(id);
    });
}

}  // namespace edgerelay::relay
