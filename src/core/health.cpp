// health.cpp: consecutive-failure and consecutive-success thresholds.
#include "health.hpp"

namespace discovery {

namespace {

// Counters live in shared memory for the process lifetime: never wrap.
void bump(uint32_t &counter)
{
    if (counter != UINT32_MAX) {
        counter++;
    }
}

uint32_t nextState(const discovery_health_t &h, bool pollOk,
                   uint32_t failsNeeded, uint32_t passesNeeded)
{
    switch (h.state) {
    case DISCOVERY_STATE_HEALTHY:
        return !pollOk && h.fails >= failsNeeded ? DISCOVERY_STATE_UNHEALTHY
                                                 : DISCOVERY_STATE_HEALTHY;
    case DISCOVERY_STATE_UNHEALTHY:
        return pollOk && h.passes >= passesNeeded ? DISCOVERY_STATE_HEALTHY
                                                  : DISCOVERY_STATE_UNHEALTHY;
    default:
        // pending, or garbage: the first outcome decides at once
        return pollOk ? DISCOVERY_STATE_HEALTHY : DISCOVERY_STATE_UNHEALTHY;
    }
}

} // namespace

bool updateHealth(discovery_health_t &h, bool pollOk, uint32_t failsNeeded,
                  uint32_t passesNeeded)
{
    // a threshold of 0 would mean "changed without any poll": treat as 1
    failsNeeded = failsNeeded == 0 ? 1 : failsNeeded;
    passesNeeded = passesNeeded == 0 ? 1 : passesNeeded;

    if (pollOk) {
        bump(h.passes);
        h.fails = 0;
    } else {
        bump(h.fails);
        h.passes = 0;
    }

    uint32_t state = nextState(h, pollOk, failsNeeded, passesNeeded);
    bool changed = state != h.state;

    h.state = state;
    return changed;
}

} // namespace discovery
