// snapshot_update.hpp: new snapshots from a reload (roster) or a poll (apply).
#ifndef DISCOVERY_SNAPSHOT_UPDATE_HPP
#define DISCOVERY_SNAPSHOT_UPDATE_HPP

#include "log.hpp"
#include "router.hpp"
#include "snapshot.hpp"

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace discovery {

struct ServiceConf {
    std::string_view name;
    std::string_view url;
    std::string_view upstream;
};

/*
 * A snapshot of `services`, each keeping state and routes from the service
 * of `old` with the same name and url, checked under the discovery_overlap
 * policy given.  A damaged `old` is logged and treated as empty: a reload
 * must not fail over a stale state file.  `old` checked by these rules,
 * of the same roster and policy, is taken as it is, with the generation
 * given: nothing would change but the time spent (seconds at 1,000,000
 * routes).  *sealed, if given, receives the snapshot.
 */
Bytes applyRoster(const unsigned char *old, size_t oldLen,
                  const std::vector<ServiceConf> &services, bool denyOverlaps,
                  uint64_t generation, const Log &log,
                  Snapshot *sealed = nullptr);

/*
 * A start from the state file with the router image saved beside it: when
 * applyRoster() would take `old` as it is, reseals it in place at
 * `generation`, gives `image`, the router image of `old`, that generation
 * in place, and returns true: nothing is decoded or built.  Otherwise
 * false, both left as they are: applyRoster() makes the table.
 */
bool adoptRoster(unsigned char *old, size_t oldLen, unsigned char *image,
                 size_t imageLen, const std::vector<ServiceConf> &services,
                 bool denyOverlaps, uint64_t generation);

struct PollResult {
    std::string_view name;
    std::string_view url;
    ServiceState state = ServiceState::Pending;
    const unsigned char *routes = nullptr; // NULL: routes unchanged
    size_t routesLen = 0;
};

// The snapshot after one poll, or nothing when routing would not change.
std::optional<Bytes> applyPoll(const unsigned char *old, size_t oldLen,
                               const PollResult &poll, uint64_t generation,
                               const Log &log);

// What applying polls took, in ms of the thread's CPU time.
struct ApplyTimes {
    double decode = 0; // the table, what it found, the new route sets
    double check = 0;  // checkTableChanged()
    bool checkedWhole = false;
    size_t checkedRoutes = 0; // routes checked again, when not whole
    double warn = 0; // telling new findings from old ones
    double encode = 0;
};

// The calling thread's CPU time in ms: stages are timed by it, since the
// host may be shared and the thread runs at a low priority.
double threadCpuMs();

/*
 * The snapshot after several polls, applied in order, or nothing when
 * routing would not change: the table is decoded, checked
 * (checkTableChanged: only where the changed route sets could change its
 * findings) and encoded once for all of them.  A poll of a service that
 * `old` does not have at that url (begun before a reload) is skipped.
 * *sealed, if given, receives the new table as encoded; *times what each
 * stage took; *before what the table was where it changed, for
 * Router::update() to make the new table's image from the old one's.
 * `old` and the polls' route sets are decoded as Provenance::Made: the
 * zone's table and the parser's route sets, not a file's bytes.
 */
std::optional<Bytes> applyPolls(const unsigned char *old, size_t oldLen,
                                const std::vector<PollResult> &polls,
                                uint64_t generation, const Log &log,
                                Snapshot *sealed = nullptr,
                                ApplyTimes *times = nullptr,
                                Router::TableBefore *before = nullptr);

} // namespace discovery

#endif
