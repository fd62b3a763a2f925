// Backoff for deferred mail: retry_initial doubled per attempt up to retry_max, then
// jittered down by at most a quarter so messages deferred together spread out again.
#include "queue/retry_schedule.h"

#include <algorithm>
#include <limits>

namespace edgerelay::queue {

std::chrono::milliseconds retry_delay(std::uint32_t attempts, std::chrono::milliseconds retry_initial,
                                      std::chrono::milliseconds retry_max, std::mt19937& random) {
    using Rep = std::chrono::milliseconds::rep;
    const Rep initial = std::max<Rep>(retry_initial.count(), 1);
    const Rep cap = std::max<Rep>(retry_max.count(), 1);
    // 2^(attempts-1) overflows after a few dozen attempts; past the cap it no longer matters.
    const std::uint32_t doublings = std::max<std::uint32_t>(attempts, 1) - 1;
    Rep base = cap;
    if (doublings < std::numeric_limits<Rep>::digits && initial <= (cap >> doublings))
        base = std::min(cap, initial << doublings);
    // [base - base/4, base] is [ceil(3 base / 4), base], computed without base * 3 overflowing.
    std::uniform_int_distribution<Rep> jitter(base - base / 4, base);
    return std::chrono::milliseconds{std::max<Rep>(jitter(random), 1)};
}

}  // namespace edgerelay::queue
