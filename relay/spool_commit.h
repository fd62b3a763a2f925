// Asio face of the group-commit writer: a session co_awaits its message's durable
// commit while the io thread serves the other sessions.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>
#include <system_error>

#include "queue/envelope.h"
#include "queue/spool_writer.h"

namespace edgerelay::relay {

// Completes, on the caller's executor, once the message and envelope are synced to
// disk (empty error code) or could not be stored (queue::SpoolError::full, ...).
boost::asio::awaitable<std::error_code> commit_message(queue::SpoolWriter& writer, queue::Envelope envelope,
                                                       std::string content);

}  // namespace edgerelay::relay
