// Queue ids: the larger of "last id + 1" and the current time in microseconds, as 16
// upper-case hex digits. Fixed width makes the spool's byte order the arrival order.
#include "queue/queue_id.h"

#include <atomic>
#include <cstdint>

#include "queue/envelope.h"

namespace edgerelay::queue {

namespace {
std::atomic<std::uint64_t> last_id{0};
}

std::string new_queue_id() {
    const auto now = static_cast<std::uint64_t>(now_micros());
    auto last = last_id.load(std::memory_order_relaxed);
    std::uint64_t next;
    do {
        // Many ids in one microsecond, or a clock stepping back, still get fresh ids.
        next = now > last ? now : last + 1;
    } while (!last_id.compare_exchange_weak(last, next, std::memory_order_relaxed));

    static constexpr char digits[] = "0123456789ABCDEF";
    std::string id(16, '0');
    for (int i = 15; i >= 0; --i) {
        id[static_cast<std::size_t>(i)] = digits[next & 0xf];
        next >>= 4;
    }
    return id;
}

}  // namespace edgerelay::queue
