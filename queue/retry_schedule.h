// When a deferred message is tried again: exponential backoff from retry_initial,
// doubling per attempt, capped at retry_max, with jitter so a queue that filled up
// during an outage does not come back in one wave.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace edgerelay::queue {

// attempts: how many attempts have been made (1 after the first). The result lies in
// [base * 3/4, base] where base = min(retry_initial * 2^(attempts-1), retry_max).
std::chrono::milliseconds retry_delay(std::uint32_t attempts, std::chrono::milliseconds retry_initial,
                                      std::chrono::milliseconds retry_max, std::mt19937& random);

}  // namespace edgerelay::queue
