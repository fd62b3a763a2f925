// Queue ids: 16 upper-case hex digits, unique in the spool and increasing with time,
// so the spool's key order is arrival order.
#pragma once

#include <string>

namespace edgerelay::queue {

// Thread-safe. Never returns the same id twice in one process, and ids keep growing
// across restarts as long as the clock does not step back by more than the process
// was down.
std::string new_queue_id();

}  // namespace edgerelay::queue
