// Asio face of the group-commit writer: a coroutine co_awaits its spool write while
// the io thread serves everything else.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>
#include <system_error>

#include "queue/envelope.h"
#include "queue/spool_writer.h"

namespace edgerelay::relay {

// Completes, on the caller's executor, once the operation's transaction is synced to
// disk (empty error code) or has failed (queue::SpoolError::full, ...).
boost::asio::awaitable<std::error_code> spool_write(queue::SpoolWriter& writer, queue::SpoolWriter::Operation op,
                                                    queue::SpoolWriter::Lane lane = queue::SpoolWriter::Lane::background);

// A new message and its envelope, in the intake lane.
boost::asio::awaitable<std::error_code> commit_message(queue::SpoolWriter& writer, queue::Envelope envelope,
                                                       std::string content);

}  // namespace edgerelay::relay
