// metrics.hpp: discovery_metrics' counters: a slot per route in shared
// memory, found by a key of its service and template, and their exposition.
#ifndef DISCOVERY_METRICS_HPP
#define DISCOVERY_METRICS_HPP

#include "snapshot.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace discovery {

struct Controls; // controls.hpp

// 1xx to 5xx
constexpr size_t kStatusClasses = 5;
constexpr size_t kMaxBuckets = 32;

// request_duration_seconds' bounds when buckets= is not given, in ms
extern const uint32_t kDefaultBucketsMs[];
constexpr size_t kDefaultBucketCount = 11;

// gateway_responses_total{reason}, in this order
enum class GatewayReason : uint8_t {
    NotFound = 0,
    MethodNotAllowed,
    Unavailable,
    Pending,
    Noncanonical,
    Disabled,
    Count
};

// metrics_overflow_total{reason}, in this order: why a request was not
// counted by its route
enum class OverflowReason : uint8_t {
    NoSlot = 0,   // the zone had no room for the route's slot
    RouteRemoved, // a table change removed the route before it ended
    Unknown,      // a status outside 100-599, a decision not known
    Count
};

// polls_total{result}, in this order
enum class PollOutcome : uint8_t {
    Success = 0,
    NotModified,
    Failure,
    Rejected,
    Count
};

/*
 * Everything below lives in shared memory, written by several processes:
 * plain structs, no pointers (offsets from a base the caller gives), and
 * counters changed only with atomic adds.
 *
 * A route's slot: its header, then its counters (requests by method
 * column and status class, the histogram's buckets with +Inf last, the
 * sum of durations in ms), then its service name and template.
 */
struct MetricsRoute {
    uint64_t key = 0;     // routeKey(service, route)
    uint64_t seen = 0;    // the newest table assigned that has the route
    uint32_t columns = 0; // the nine's bits with a column; "other" last
    uint16_t columnCount = 0;
    uint16_t bucketCount = 0; // bounds; +Inf is one more
    uint16_t serviceLen = 0;
    uint16_t routeLen = 0;
    uint32_t reserved = 0;

    uint64_t *counters() { return reinterpret_cast<uint64_t *>(this + 1); }
    const uint64_t *counters() const
    {
        return reinterpret_cast<const uint64_t *>(this + 1);
    }
    size_t counterCount() const
    {
        return columnCount * kStatusClasses + bucketCount + 2;
    }
    std::string_view service() const
    {
        return {reinterpret_cast<const char *>(counters() + counterCount()),
                serviceLen};
    }
    std::string_view route() const
    {
        return {reinterpret_cast<const char *>(counters() + counterCount())
                    + serviceLen,
                routeLen};
    }
};
static_assert(sizeof(MetricsRoute) == 32, "a slot's header");

// An index entry: key 0 is empty, 1 a route removed.
struct MetricsEntry {
    uint64_t key = 0;
    uint64_t route = 0; // offset of its MetricsRoute from the base
};

constexpr uint64_t kEmptyKey = 0;
constexpr uint64_t kRemovedKey = 1;

/*
 * The index: open addressing, linear probing, a power of two of entries,
 * at most three quarters live.  One process at a time changes it (the
 * caller's lock); requests read it without any, and check that the slot
 * they found still has their key.
 */
struct MetricsIndex {
    uint64_t capacity = 0;
    uint64_t live = 0;
    uint64_t generation = 0; // of the last table assigned
    uint64_t seed = 0;       // of routeKey(): keys no service can aim at
    uint32_t bucketCount = 0;
    uint32_t reserved = 0;
    uint32_t bucketsMs[kMaxBuckets] = {};

    MetricsEntry *entries()
    {
        return reinterpret_cast<MetricsEntry *>(this + 1);
    }
    const MetricsEntry *entries() const
    {
        return reinterpret_cast<const MetricsEntry *>(this + 1);
    }
};

// Bytes of an index of `capacity` entries (a power of two).
size_t metricsIndexSize(uint64_t capacity);
void metricsIndexInit(MetricsIndex &index, uint64_t capacity,
                      const uint32_t *bucketsMs, size_t bucketCount);

/*
 * A route's key, seeded by its index's seed: an unseeded key is a function
 * a service can invert, to publish a route of another service's key.  Two
 * routes may still share one: a slot is its route's by its names.
 */
uint64_t routeKey(std::string_view service, std::string_view route,
                  uint64_t seed = 0);

// The nine's methods with a column of their own: those published, and HEAD
// with GET (HEAD goes wherever GET goes).
uint32_t routeColumns(uint32_t methods);

// The column of a method bit (0: an extension method) in a slot.
size_t methodColumn(uint32_t columns, uint32_t bit);

// 0 for 1xx ... 4 for 5xx; kStatusClasses for anything else.
size_t statusClass(unsigned status);

// The slot of that key and those names, or nullptr.
const MetricsRoute *findRoute(const MetricsIndex &index,
                              const unsigned char *base, uint64_t key,
                              std::string_view service, std::string_view route);

// Counts a request; false when it could not be (no such status class).
bool countRequest(const MetricsIndex &index, MetricsRoute &route,
                  uint32_t methodBit, unsigned status, uint64_t ms);

/*
 * A route's hint: where its slot is, found once per table rather than per
 * request (a hash of its names, a probe of the index, a comparison of the
 * names).  The slot's offset from base in 8-byte units in the low half,
 * the low half of its key in the high one; 0: none (no slot, or an offset
 * that does not fit).
 */
uint64_t routeHint(const MetricsIndex &index, const unsigned char *base,
                   std::string_view service, std::string_view route);

/*
 * The slot a hint names, if it is still that route's and the route is in
 * the newest table assigned; else nullptr, and the caller finds the slot
 * by the route's names (findRoute), as for a route with no hint.
 */
MetricsRoute *hintedRoute(const MetricsIndex &index, unsigned char *base,
                          uint64_t hint);

/*
 * Asks the cache for the lines a hint's slot is counted in, without
 * waiting for them or reading them: the access phase calls it, and the
 * log phase, a backend's round trip later, finds them there.
 */
void prefetchRoute(const unsigned char *base, uint64_t hint);

// A route of a table, with what its slot needs: its names are views into
// the snapshot and controls it was found in.
struct RouteKey {
    uint64_t key = 0;
    uint32_t columns = 0;
    std::string_view service;
    std::string_view route;
};

// What assignment tells of a table, for the exposition.
struct TableFigures {
    uint64_t generation = 0;
    uint64_t routes = 0;
    uint64_t conflicts = 0;
    uint64_t overlaps = 0;
    struct Service {
        std::string name;
        uint64_t routes = 0;
        uint64_t rejected = 0;
    };
    std::vector<Service> services;
};

/*
 * The routes of a snapshot that requests can be counted for: those it
 * routes, and those its overrides pin or add (disabled ones are the
 * gateway's own answers; `controls` are the snapshot's, decoded).  Each
 * route once; the keys point into `snap` and `controls`.
 */
std::vector<RouteKey> tableRoutes(const Snapshot &snap,
                                  const Controls &controls,
                                  TableFigures &figures, uint64_t seed = 0);

// Shared memory for a slot of `size` bytes, an offset from the base (0:
// none), and back.
struct MetricsMemory {
    std::function<uint64_t(size_t)> alloc;
    // a slot no longer in the index, of that size
    std::function<void(uint64_t, size_t)> release;
};

struct AssignResult {
    uint64_t kept = 0;
    uint64_t added = 0;
    uint64_t removed = 0;
    uint64_t unassigned = 0; // no room: their requests are overflow
};

/*
 * Gives every route of a table generation a slot: the one its key has,
 * or a new one; then removes from the index the slots no route of that
 * generation or a newer one has (release() gets them: requests may still
 * count into them for a moment, so they must stay counters a while).
 */
AssignResult assignRoutes(MetricsIndex &index, unsigned char *base,
                          const std::vector<RouteKey> &routes,
                          uint64_t generation, const MetricsMemory &memory);

// Removes every slot (a change of buckets).
void clearRoutes(MetricsIndex &index, unsigned char *base,
                 const MetricsMemory &memory);

size_t routeSlotSize(const RouteKey &route, size_t bucketCount);
size_t routeSlotSize(const MetricsRoute &route);

/* The exposition: everything but the route slots, read from the zone. */
struct ServiceFigures {
    std::string_view name;
    uint32_t state = 0; // ServiceState
    int64_t lastSuccess = 0;
    uint64_t polls[size_t(PollOutcome::Count)] = {};
    const uint64_t *pollBuckets = nullptr; // kDefaultBucketCount + 1
    uint64_t pollMs = 0;
    uint64_t routes = 0;
    uint64_t rejected = 0;
};

struct MetricsView {
    const MetricsIndex *index = nullptr; // nullptr: none
    const unsigned char *base = nullptr;
    std::vector<ServiceFigures> services;
    uint64_t gateway[size_t(GatewayReason::Count)] = {};
    uint64_t overflow[size_t(OverflowReason::Count)] = {};
    uint64_t generation = 0;
    uint64_t tableRoutes = 0;
    uint64_t conflicts = 0;
    uint64_t overlaps = 0;
    uint64_t zoneUsed = 0;
    uint64_t zoneSize = 0;
    bool openMetrics = false;
};

std::string renderMetrics(const MetricsView &view);

// A label value: backslash, double quote and newline escaped.
void appendLabelValue(std::string &out, std::string_view value);

/*
 * "0.005,0.01,0.5": bounds in seconds, increasing, of at least 1 ms and in
 * whole milliseconds (durations are measured in them); false and why.
 */
bool parseBuckets(std::string_view text, std::vector<uint32_t> &ms,
                  std::string &error);

// Whether an Accept header asks for OpenMetrics.
bool acceptsOpenMetrics(std::string_view accept);

} // namespace discovery

#endif
