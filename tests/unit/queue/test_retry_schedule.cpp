// The retry backoff: doubling, the cap, the jitter band, huge attempt counts, and the
// same draws from the same seed.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <random>

#include "queue/retry_schedule.h"

namespace edgerelay::queue {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

// The band the result must fall in, for a given base.
void expect_in_band(milliseconds got, std::int64_t base) {
    EXPECT_GE(got.count() * 4, base * 3) << "base " << base;
    EXPECT_LE(got.count(), base) << "base " << base;
    EXPECT_GE(got.count(), 1);
}

TEST(RetryDelay, DoublesPerAttempt) {
    std::mt19937 random(1);
    for (std::uint32_t attempts = 1; attempts <= 10; ++attempts) {
        const std::int64_t base = 60'000LL << (attempts - 1);
        for (int i = 0; i < 50; ++i) expect_in_band(retry_delay(attempts, 1min, 1000h, random), base);
    }
}

TEST(RetryDelay, ZeroAttemptsBehavesAsOne) {
    std::mt19937 random(2);
    for (int i = 0; i < 100; ++i) expect_in_band(retry_delay(0, 1min, 4h, random), 60'000);
}

TEST(RetryDelay, CappedAtRetryMax) {
    std::mt19937 random(3);
    // 1 min * 2^9 = 512 min > 4 h: capped from there on.
    for (std::uint32_t attempts : {9u, 10u, 20u, 62u, 63u, 64u, 65u})
        for (int i = 0; i < 50; ++i) expect_in_band(retry_delay(attempts, 1min, 4h, random), 4 * 3'600'000LL);
    // A maximum below the initial delay wins as well.
    for (int i = 0; i < 50; ++i) expect_in_band(retry_delay(1, 10min, 1min, random), 60'000);
}

TEST(RetryDelay, JitterCoversTheBand) {
    std::mt19937 random(4);
    const std::int64_t base = 1'000'000;
    std::int64_t low = base, high = 0;
    double sum = 0;
    constexpr int draws = 20'000;
    for (int i = 0; i < draws; ++i) {
        const auto d = retry_delay(1, milliseconds{base}, 24h, random);
        expect_in_band(d, base);
        low = std::min<std::int64_t>(low, d.count());
        high = std::max<std::int64_t>(high, d.count());
        sum += static_cast<double>(d.count());
    }
    // Uniform over [750000, 1000000]: both ends are approached and the mean is the middle.
    EXPECT_LT(low, 751'000);
    EXPECT_GT(high, 999'000);
    EXPECT_NEAR(sum / draws, 875'000.0, 2'000.0);
}

TEST(RetryDelay, NoOverflowForHugeAttemptCounts) {
    std::mt19937 random(5);
    for (std::uint32_t attempts : {1000u, 100'000u, std::numeric_limits<std::uint32_t>::max()}) {
        expect_in_band(retry_delay(attempts, 1min, 4h, random), 4 * 3'600'000LL);
        // Even with the largest representable durations the result stays in band.
        const milliseconds huge{std::numeric_limits<milliseconds::rep>::max()};
        const auto d = retry_delay(attempts, 1min, huge, random);
        EXPECT_GE(d.count(), huge.count() - huge.count() / 4);
        EXPECT_LE(d.count(), huge.count());
    }
}

TEST(RetryDelay, NeverBelowOneMillisecond) {
    std::mt19937 random(6);
    for (int i = 0; i < 100; ++i) {
        EXPECT_GE(retry_delay(1, 0ms, 0ms, random).count(), 1);
        EXPECT_GE(retry_delay(1, -5ms, -1ms, random).count(), 1);
        EXPECT_EQ(retry_delay(1, 1ms, 1ms, random).count(), 1);
        EXPECT_GE(retry_delay(3, 1ms, 1h, random).count(), 3);  // base 4: band [3, 4]
    }
}

TEST(RetryDelay, SameSeedSameDelays) {
    std::mt19937 a(12345), b(12345), c(54321);
    bool differs = false;
    for (std::uint32_t attempts = 1; attempts <= 200; ++attempts) {
        const auto da = retry_delay(attempts % 12, 1min, 4h, a);
        EXPECT_EQ(da, retry_delay(attempts % 12, 1min, 4h, b));
        differs = differs || da != retry_delay(attempts % 12, 1min, 4h, c);
    }
    EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace edgerelay::queue
