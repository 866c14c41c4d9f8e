// health_test.cpp: the health state machine through the C entry point.
#include "discovery_core.h"

#include <gtest/gtest.h>

namespace {

discovery_health_t fresh()
{
    return {DISCOVERY_STATE_PENDING, 0, 0};
}

TEST(Health, PendingDecidesOnTheFirstPoll)
{
    discovery_health_t good = fresh();
    EXPECT_EQ(discovery_health_update(&good, 1, 3, 2), 1);
    EXPECT_EQ(good.state, DISCOVERY_STATE_HEALTHY);
    EXPECT_EQ(good.passes, 1u);

    discovery_health_t bad = fresh();
    EXPECT_EQ(discovery_health_update(&bad, 0, 3, 2), 1);
    EXPECT_EQ(bad.state, DISCOVERY_STATE_UNHEALTHY);
    EXPECT_EQ(bad.fails, 1u);
}

TEST(Health, HealthyNeedsConsecutiveFailures)
{
    discovery_health_t h = fresh();
    discovery_health_update(&h, 1, 3, 2);

    EXPECT_EQ(discovery_health_update(&h, 0, 3, 2), 0);
    EXPECT_EQ(discovery_health_update(&h, 0, 3, 2), 0);
    EXPECT_EQ(discovery_health_update(&h, 1, 3, 2), 0); // resets the run
    EXPECT_EQ(h.fails, 0u);
    EXPECT_EQ(discovery_health_update(&h, 0, 3, 2), 0);
    EXPECT_EQ(discovery_health_update(&h, 0, 3, 2), 0);
    EXPECT_EQ(h.state, DISCOVERY_STATE_HEALTHY);
    EXPECT_EQ(discovery_health_update(&h, 0, 3, 2), 1);
    EXPECT_EQ(h.state, DISCOVERY_STATE_UNHEALTHY);
    EXPECT_EQ(h.fails, 3u);
    EXPECT_EQ(h.passes, 0u);
}

TEST(Health, UnhealthyNeedsConsecutivePasses)
{
    discovery_health_t h = fresh();
    discovery_health_update(&h, 0, 3, 2);

    EXPECT_EQ(discovery_health_update(&h, 1, 3, 2), 0);
    EXPECT_EQ(discovery_health_update(&h, 0, 3, 2), 0); // resets the run
    EXPECT_EQ(discovery_health_update(&h, 1, 3, 2), 0);
    EXPECT_EQ(h.state, DISCOVERY_STATE_UNHEALTHY);
    EXPECT_EQ(discovery_health_update(&h, 1, 3, 2), 1);
    EXPECT_EQ(h.state, DISCOVERY_STATE_HEALTHY);
    EXPECT_EQ(discovery_health_update(&h, 1, 3, 2), 0);
}

TEST(Health, ZeroThresholdsActLikeOne)
{
    discovery_health_t h = fresh();
    discovery_health_update(&h, 1, 0, 0);
    EXPECT_EQ(discovery_health_update(&h, 0, 0, 0), 1);
    EXPECT_EQ(discovery_health_update(&h, 1, 0, 0), 1);
}

TEST(Health, CountersSaturate)
{
    discovery_health_t h = {DISCOVERY_STATE_UNHEALTHY, UINT32_MAX, 0};
    EXPECT_EQ(discovery_health_update(&h, 0, 3, 2), 0);
    EXPECT_EQ(h.fails, UINT32_MAX);
}

TEST(Health, GarbageStateAndNull)
{
    discovery_health_t h = {77, 5, 5};
    EXPECT_EQ(discovery_health_update(&h, 1, 3, 2), 1);
    EXPECT_EQ(h.state, DISCOVERY_STATE_HEALTHY);
    EXPECT_EQ(discovery_health_update(nullptr, 1, 3, 2), 0);
}

} // namespace
