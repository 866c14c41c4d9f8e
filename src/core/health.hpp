// health.hpp: the per-service health state machine (discovery_health_t).
#ifndef DISCOVERY_HEALTH_HPP
#define DISCOVERY_HEALTH_HPP

#include "discovery_core.h"

#include <cstdint>

namespace discovery {

// Feeds one poll outcome; true when h.state changed.
bool updateHealth(discovery_health_t &h, bool pollOk, uint32_t failsNeeded,
                  uint32_t passesNeeded);

} // namespace discovery

#endif
