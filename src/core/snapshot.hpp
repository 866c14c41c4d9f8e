// snapshot.hpp: the route table model and its flat, checksummed encodings.
#ifndef DISCOVERY_SNAPSHOT_HPP
#define DISCOVERY_SNAPSHOT_HPP

#include "health.hpp"
#include "methods.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace discovery {

// Bounds on what one service may publish; the decoder enforces them too.
constexpr size_t kMaxPathLen = 1024;
constexpr size_t kMaxNameLen = 256;
constexpr size_t kMaxTagLen = 128;
constexpr size_t kMaxTags = 32;
constexpr size_t kMaxRoutes = 100000;
constexpr size_t kMaxVersionLen = 256;
constexpr size_t kMaxRejected = 100; // listed; more are only counted

using Bytes = std::vector<unsigned char>;

// How a route's requests are proxied: HTTP, or a gRPC method (POST).
enum class Protocol : uint8_t { Http = 0, Grpc = 1 };

// A gRPC method's streaming kind: a bit for each side that streams.
enum class Streaming : uint8_t { Unary = 0, Client = 1, Server = 2, Bidi = 3 };

// An empty name or version means "none" (null on the status page).
struct Route {
    std::string path; // a valid template
    uint32_t methods = 0; // of the nine
    MethodNames extensionMethods; // the others: sorted, uppercase
    bool authRequired = false;
    bool websocket = false;
    Protocol protocol = Protocol::Http;
    Streaming streaming = Streaming::Unary; // of a gRPC route
    std::string name;
    std::vector<std::string> tags;
};

bool operator==(const Route &a, const Route &b);

// A route entry the service published and the parser turned away.
struct RejectedRoute {
    std::string path; // as published, possibly not a valid template
    uint32_t methods = 0;
    MethodNames extensionMethods;
    std::string reason; // "outside prefix"
};

bool operator==(const RejectedRoute &a, const RejectedRoute &b);

struct RouteSet {
    std::string version;
    std::vector<Route> routes;
    std::vector<RejectedRoute> rejected;
    size_t rejectedOmitted = 0; // past kMaxRejected
};

bool operator==(const RouteSet &a, const RouteSet &b);

struct Service {
    std::string name;
    std::string url;
    std::string upstream;
    ServiceState state = ServiceState::Pending;
    RouteSet routeSet;
};

/*
 * In the findings below, a mask's bits past the nine are the snapshot's
 * extensionMethods.  `methods` of routes[loserRoute] of
 * services[loserService] are shadowed by routes[winnerRoute] of the earlier
 * services[winnerService].
 */
struct Conflict {
    uint32_t methods = 0;
    uint32_t winnerService = 0;
    uint32_t winnerRoute = 0;
    uint32_t loserService = 0;
    uint32_t loserRoute = 0;
};

// routes[route] of services[service] is published but not routed.
struct Rejection {
    uint32_t service = 0;
    uint32_t route = 0;
    std::string reason; // "shadows users /users/{id}"
};

// For `methods`, some requests that routes[shadowedRoute] of
// services[shadowedService] matches go to routes[route] of services[service].
struct Overlap {
    uint32_t methods = 0;
    uint32_t service = 0;
    uint32_t route = 0;
    uint32_t shadowedService = 0;
    uint32_t shadowedRoute = 0;
};

/*
 * The rules of checkTable(): a table whose findings were made by others (an
 * older module's state file) is checked again.  Raise it whenever a change
 * of checkTable() can change a table's findings.
 */
constexpr uint32_t kCheckRules = 1;

struct Snapshot {
    uint64_t generation = 0;
    uint32_t checkedBy = 0;        // kCheckRules once checkTable() ran, else 0
    bool denyOverlaps = false;     // discovery_overlap deny
    std::vector<Service> services; // roster order
    // what checkTable() found, each sorted by service then route, and the
    // extension methods of the routes it kept, numbered from kMethodCount
    MethodNames extensionMethods;
    std::vector<Conflict> conflicts;
    std::vector<Overlap> overlaps;
    std::vector<Rejection> rejections;
    // the management API's overrides and drained services, encoded
    // (controls.hpp); empty: none
    Bytes controls;
};

// The bits of `route`'s methods in a table whose extension methods are
// `table`; a method the table lacks has none.
uint32_t methodMask(const Route &route, const MethodNames &table);

/*
 * Where the bytes to decode come from.  File: anywhere (a state file, a
 * test): everything is checked.  Made: this core encoded them from route
 * sets it checked (the zone's table, a poll's route set in the process
 * that parsed it), and the checksum holds: each template is not compiled
 * again, a third of a large table's decoding.  The bounds, counts and
 * indices are checked either way.
 */
enum class Provenance { File, Made };

// Route sets travel from the parser to discovery_snapshot_apply_polls.
Bytes encodeRouteSet(const RouteSet &set);
RouteSet decodeRouteSet(const unsigned char *data, size_t len,
                        Provenance from = Provenance::File);

Bytes encodeSnapshot(const Snapshot &snap);

// Throws Error for anything but a well-formed snapshot: the bytes may come
// from a damaged state file.
Snapshot decodeSnapshot(const unsigned char *data, size_t len,
                        Provenance from = Provenance::File);

// The snapshot blob as it is but for its generation (and format 3 made 4,
// the same but for the checksum).  Throws Error as decodeSnapshot() does
// on a corrupt header.
Bytes resealSnapshot(const unsigned char *data, size_t len,
                     uint64_t generation);
void resealSnapshotInPlace(unsigned char *data, size_t len,
                           uint64_t generation);

/*
 * The controls bytes of a snapshot that checkSnapshot() accepted, read
 * where they lie at its end (a view into `data`): no decoding.
 */
std::pair<const unsigned char *, size_t>
snapshotControls(const unsigned char *data, size_t len);

// The snapshot with other controls and this generation, the rest as it is.
Bytes replaceControls(const unsigned char *data, size_t len,
                      const Bytes &controls, uint64_t generation);

// Header and checksum only; returns the generation.
uint64_t checkSnapshot(const unsigned char *data, size_t len);

// A snapshot's header, and its policy, without decoding the rest.
struct SnapshotHead {
    uint64_t generation = 0;
    uint32_t checkedBy = 0;
    uint32_t checksum = 0; // as in the header
    bool denyOverlaps = false;
};

// Checks as checkSnapshot() does.
SnapshotHead snapshotHead(const unsigned char *data, size_t len);

// The checksum of snapshots (format 4 on), for any bytes: finds damage.
uint64_t wordHash(const unsigned char *p, size_t len);

/*
 * Makes the checksum field of a blob's header agree with its `len` bytes,
 * by the checksum of the format version it names: for tests and fuzzers
 * that forge blobs.  Shorter than a header: left as is.
 */
void sealBlob(unsigned char *data, size_t len);

} // namespace discovery

#endif
