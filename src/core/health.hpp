// health.hpp: a service's health states and the machine that moves them.
#ifndef DISCOVERY_HEALTH_HPP
#define DISCOVERY_HEALTH_HPP

#include <cstdint>

namespace discovery {

// Stored in snapshots as a number: the values do not change.
enum class ServiceState : uint32_t {
    Pending = 0, // no poll has finished yet
    Healthy = 1,
    Unhealthy = 2,
};

struct Health {
    ServiceState state = ServiceState::Pending;
    uint32_t fails = 0;  // consecutive failed polls
    uint32_t passes = 0; // consecutive good polls
};

// Feeds one poll outcome; true when h.state changed.  Pending: the first
// outcome decides.  Healthy: failsNeeded consecutive failures make it
// unhealthy.  Unhealthy: passesNeeded consecutive good polls make it healthy.
bool updateHealth(Health &h, bool pollOk, uint32_t failsNeeded,
                  uint32_t passesNeeded);

} // namespace discovery

#endif
