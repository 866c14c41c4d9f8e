// conflicts.hpp: which routes of later services are shadowed by earlier ones.
#ifndef DISCOVERY_CONFLICTS_HPP
#define DISCOVERY_CONFLICTS_HPP

#include "snapshot.hpp"

#include <string>
#include <vector>

namespace discovery {

/*
 * Routes of different services with the same shape and common methods:
 * the service first in the roster keeps those methods.  Sorted by loser,
 * then winner.  Duplicates within one service are not conflicts.
 */
std::vector<Conflict> findConflicts(const std::vector<Service> &services);

// `route conflict: GET /users/{user_id} of "b" is shadowed by ...`
std::string describeConflict(const Snapshot &snap, const Conflict &c);

} // namespace discovery

#endif
