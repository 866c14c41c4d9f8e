// table_check.hpp: which published routes the table routes, and what it says
// about the others: conflicts, overlaps, rejections.
#ifndef DISCOVERY_TABLE_CHECK_HPP
#define DISCOVERY_TABLE_CHECK_HPP

#include "snapshot.hpp"

#include <string>
#include <vector>

namespace discovery {

/*
 * The most trie nodes one lookup may visit, whatever the services publish.
 * A route that would let some request path make a lookup visit more is
 * rejected: a document mixing literal, {int}, {float} and {str} segments at
 * every level would otherwise make each failing lookup walk thousands of
 * nodes, for every service behind the gateway.  Real APIs stay far below
 * (a lookup in the benchmark's tables visits a few dozen at most).
 */
constexpr uint64_t kLookupVisitLimit = 256;

/*
 * Fills snap.conflicts, snap.overlaps and snap.rejections from its services,
 * taken in roster order, each service's routes in document order:
 *  - a route whose shape and method an earlier route of another service
 *    has loses that method (a conflict); within one service the first
 *    route keeps it silently;
 *  - with snap.denyOverlaps, a route that shadows a route of an earlier
 *    service (takes some of the requests it matches: of the methods both
 *    publish, or the CORS preflights of one without OPTIONS) is rejected;
 *  - a route that would raise the lookup bound over kLookupVisitLimit is
 *    rejected;
 *  - every pair of routes of different services where one takes requests
 *    the other matches is an overlap.
 * Rejected routes take no part in routing and claim nothing.
 */
void checkTable(Snapshot &snap);

// A service whose route set was `before` when the table was checked.
struct ChangedService {
    uint32_t service;
    const RouteSet *before;
};

/*
 * checkTable() of a table that it checked before, since when the route
 * sets of `changed` (one service may be named more than once) and nothing
 * else of the roster's routes changed, in time proportional to the routes
 * that share a first segment with a route that changed (came, went or
 * moved), and a pass over the others.
 * The findings are checkTable()'s, which it runs where it cannot tell
 * them otherwise (a parameter as a route's first segment, extension
 * methods, a table not checked by these rules): returns false then.
 * *checked, if given, receives how many routes it checked again.
 */
bool checkTableChanged(Snapshot &snap,
                       const std::vector<ChangedService> &changed,
                       size_t *checked = nullptr);

// `route conflict: GET /users/{user_id} of "b" is shadowed by ...`
std::string describeConflict(const Snapshot &snap, const Conflict &c);

// `route overlap: GET /users/{id} of "users" shadows /{p:path} of "web"`
std::string describeOverlap(const Snapshot &snap, const Overlap &o);

// `route "/x" of "web" rejected: shadows users /users/{id}`
std::string describeRejection(const Snapshot &snap, const Rejection &r);

} // namespace discovery

#endif
