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

ServiceState nextState(const Health &h, bool pollOk,
                   uint32_t failsNeeded, uint32_t passesNeeded)
{
    switch (h.state) {
    case ServiceState::Healthy:
        return !pollOk && h.fails >= failsNeeded ? ServiceState::Unhealthy
                                                 : ServiceState::Healthy;
    case ServiceState::Unhealthy:
        return pollOk && h.passes >= passesNeeded ? ServiceState::Healthy
                                                  : ServiceState::Unhealthy;
    default:
        // pending, or garbage: the first outcome decides at once
        return pollOk ? ServiceState::Healthy : ServiceState::Unhealthy;
    }
}

} // namespace

bool updateHealth(Health &h, bool pollOk, uint32_t failsNeeded,
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

    ServiceState state = nextState(h, pollOk, failsNeeded, passesNeeded);
    bool changed = state != h.state;

    h.state = state;
    return changed;
}

} // namespace discovery
