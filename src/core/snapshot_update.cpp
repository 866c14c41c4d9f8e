// snapshot_update.cpp: roster and poll updates, logging new conflicts once.
#include "snapshot_update.hpp"

#include "error.hpp"
#include "json_escape.hpp"
#include "methods.hpp"
#include "router.hpp"
#include "table_check.hpp"

#include <ctime>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace discovery {

namespace {

Service *findService(Snapshot &snap, std::string_view name,
                     std::string_view url)
{
    for (Service &s : snap.services) {
        if (s.name == name && s.url == url) {
            return &s;
        }
    }
    return nullptr;
}

// At most this many new findings are logged per table; the status page
// lists them all.
constexpr size_t kMaxLoggedFindings = 20;

/*
 * Numbers routes by their service's name and their path, the same numbers
 * in two snapshots: findings are compared by these, since indices shift
 * when the roster changes, and overlaps can be as many as the routes of
 * one service times those of another (describing each in text took ten
 * times as long as finding them).  Only the routes of findings are
 * numbered: a table without findings costs nothing.  The numbers view the
 * snapshots' strings, which must outlive them.
 */
class RouteIds {
public:
    uint32_t id(const Snapshot &snap, uint32_t service, uint32_t route)
    {
        const Service &s = snap.services[service];
        auto key =
            std::make_pair(std::string_view(s.name),
                           std::string_view(s.routeSet.routes[route].path));
        return known_.try_emplace(key, uint32_t(known_.size())).first->second;
    }

private:
    struct Hash {
        size_t
        operator()(const std::pair<std::string_view, std::string_view> &k) const
        {
            std::hash<std::string_view> h;
            return h(k.first) * 31 + h(k.second);
        }
    };

    std::unordered_map<std::pair<std::string_view, std::string_view>, uint32_t,
                       Hash>
        known_;
};

// Extension methods by name: two tables may number them differently.
std::string methodsKey(uint32_t mask, const Snapshot &snap)
{
    std::string key = std::to_string(mask & kAllMethods);

    if (mask & ~kAllMethods) {
        key += joinMethods(mask & ~kAllMethods, ",", snap.extensionMethods);
    }
    return key;
}

// A finding's identity: its methods and routes by RouteIds, and a reason.
std::string findingKey(const Conflict &c, const Snapshot &snap, RouteIds &ids)
{
    return methodsKey(c.methods, snap) + ' '
           + std::to_string(ids.id(snap, c.winnerService, c.winnerRoute)) + ' '
           + std::to_string(ids.id(snap, c.loserService, c.loserRoute));
}

std::string findingKey(const Overlap &o, const Snapshot &snap, RouteIds &ids)
{
    return methodsKey(o.methods, snap) + ' '
           + std::to_string(ids.id(snap, o.service, o.route)) + ' '
           + std::to_string(ids.id(snap, o.shadowedService, o.shadowedRoute));
}

std::string findingKey(const Rejection &r, const Snapshot &snap, RouteIds &ids)
{
    return std::to_string(ids.id(snap, r.service, r.route)) + ' ' + r.reason;
}

using Keys = std::unordered_set<std::string>;

template <typename T>
Keys keysOf(const std::vector<T> &findings, const Snapshot &snap, RouteIds &ids)
{
    Keys keys;

    keys.reserve(findings.size());
    for (const T &item : findings) {
        keys.insert(findingKey(item, snap, ids));
    }
    return keys;
}

/*
 * What the parsers turned away, which is no route of the table and so has
 * no id: at most kMaxRejected lines per service, kept as text.
 */
std::vector<std::string> turnedAway(const Snapshot &snap)
{
    std::vector<std::string> lines;

    for (const Service &s : snap.services) {
        for (const RejectedRoute &r : s.routeSet.rejected) {
            lines.push_back("route " + quoted(r.path) + " of " + quoted(s.name)
                            + " rejected: " + r.reason);
        }
        if (s.routeSet.rejectedOmitted != 0) {
            lines.push_back(std::to_string(s.routeSet.rejectedOmitted)
                            + " more routes of " + quoted(s.name)
                            + " rejected");
        }
    }
    return lines;
}

// What a table had before a change, to warn about only what is new.
struct Known {
    Keys conflicts;
    Keys overlaps;
    Keys rejections;
    Keys turnedAway;
};

Known remember(const Snapshot &snap, RouteIds &ids)
{
    Known known;
    std::vector<std::string> lines = turnedAway(snap);

    known.conflicts = keysOf(snap.conflicts, snap, ids);
    known.overlaps = keysOf(snap.overlaps, snap, ids);
    known.rejections = keysOf(snap.rejections, snap, ids);
    known.turnedAway.insert(lines.begin(), lines.end());
    return known;
}

/*
 * Logs each finding of `next` that `known` does not have, the first
 * kMaxLoggedFindings in full.
 */
template <typename T, typename F>
void warnNew(const Keys &known, const Snapshot &next, const std::vector<T> &now,
             RouteIds &ids, F describe, const char *what, const Log &log)
{
    size_t logged = 0, more = 0;

    for (const T &item : now) {
        if (known.count(findingKey(item, next, ids)) != 0) {
            continue;
        }
        if (logged < kMaxLoggedFindings) {
            log.warn(describe(next, item));
            logged++;
        } else {
            more++;
        }
    }

    if (more != 0) {
        log.warn(std::to_string(more) + " more new " + what
                 + ", listed on the status page");
    }
}

void warnNewTurnedAway(const Keys &known, const Snapshot &next, const Log &log)
{
    size_t logged = 0, more = 0;

    for (const std::string &line : turnedAway(next)) {
        if (known.count(line) != 0) {
            continue;
        }
        if (logged < kMaxLoggedFindings) {
            log.warn(line);
            logged++;
        } else {
            more++;
        }
    }

    if (more != 0) {
        log.warn(std::to_string(more)
                 + " more new rejected route entries, listed on the status "
                   "page");
    }
}

/*
 * Checks the table again, only where `changed` route sets could change
 * its findings if given, and warns about what it did not have before
 * (`known`, its ids numbered by `ids`); *sealed, if given, receives it.
 */
Bytes seal(Snapshot &next, const Known &known, RouteIds &ids,
           uint64_t generation, const Log &log, Snapshot *sealed,
           const std::vector<ChangedService> *changed = nullptr,
           ApplyTimes *times = nullptr)
{
    ApplyTimes ignored;
    ApplyTimes &took = times != nullptr ? *times : ignored;
    double t0 = threadCpuMs();

    next.generation = generation;
    if (changed != nullptr) {
        took.checkedWhole =
            !checkTableChanged(next, *changed, &took.checkedRoutes);
    } else {
        checkTable(next);
        took.checkedWhole = true;
    }
    double t1 = threadCpuMs();

    warnNew(known.conflicts, next, next.conflicts, ids, describeConflict,
            "route conflicts", log);
    warnNew(known.overlaps, next, next.overlaps, ids, describeOverlap,
            "route overlaps", log);
    warnNew(known.rejections, next, next.rejections, ids, describeRejection,
            "rejected routes", log);
    warnNewTurnedAway(known.turnedAway, next, log);
    double t2 = threadCpuMs();

    Bytes bytes = encodeSnapshot(next);
    double t3 = threadCpuMs();

    took.check = t1 - t0;
    took.warn = t2 - t1;
    took.encode = t3 - t2;

    if (sealed != nullptr) {
        *sealed = std::move(next);
    }
    return bytes;
}

// Whether `services`, in order, and the policy are those of `snap`.
bool sameRoster(const Snapshot &snap, const std::vector<ServiceConf> &services,
                bool denyOverlaps)
{
    if (snap.denyOverlaps != denyOverlaps
        || snap.services.size() != services.size()) {
        return false;
    }
    for (size_t i = 0; i < services.size(); i++) {
        const Service &s = snap.services[i];
        if (s.name != services[i].name || s.url != services[i].url
            || s.upstream != services[i].upstream) {
            return false;
        }
    }
    return true;
}

} // namespace

double threadCpuMs()
{
    timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3
           + static_cast<double>(ts.tv_nsec) / 1e6;
}

Bytes applyRoster(const unsigned char *old, size_t oldLen,
                  const std::vector<ServiceConf> &services, bool denyOverlaps,
                  uint64_t generation, const Log &log, Snapshot *sealed)
{
    Snapshot prev;

    if (old != nullptr) {
        try {
            prev = decodeSnapshot(old, oldLen);
        } catch (const Error &e) {
            log.warn(std::string("previous routing table discarded: ")
                     + e.what());
        }
    }

    if (old != nullptr && prev.checkedBy == kCheckRules
        && sameRoster(prev, services, denyOverlaps)) {
        Bytes bytes = resealSnapshot(old, oldLen, generation);
        prev.generation = generation;
        if (sealed != nullptr) {
            *sealed = std::move(prev);
        }
        return bytes;
    }

    RouteIds ids; // views prev's strings, which stay where they are
    Known known = remember(prev, ids);

    Snapshot next;
    next.denyOverlaps = denyOverlaps;
    next.controls = prev.controls; // the operator's, whatever the roster
    next.services.reserve(services.size());

    for (const ServiceConf &conf : services) {
        Service s;
        s.name = conf.name;
        s.url = conf.url;
        s.upstream = conf.upstream;

        if (const Service *kept = findService(prev, conf.name, conf.url)) {
            s.state = kept->state;
            s.routeSet = kept->routeSet;
        }

        next.services.push_back(std::move(s));
    }

    return seal(next, known, ids, generation, log, sealed);
}

bool adoptRoster(unsigned char *old, size_t oldLen, unsigned char *image,
                 size_t imageLen, const std::vector<ServiceConf> &services,
                 bool denyOverlaps, uint64_t generation)
{
    SnapshotHead head = snapshotHead(old, oldLen);
    std::unique_ptr<Router> router = Router::view(image, imageLen);

    if (head.checkedBy != kCheckRules || head.denyOverlaps != denyOverlaps
        || router->generation() != head.generation
        || router->serviceCount() != services.size()
        || !router->rosterWithinImage()) {
        return false;
    }

    for (size_t i = 0; i < services.size(); i++) {
        Router::ServiceView s = router->service(i);
        if (s.name != services[i].name || s.url != services[i].url
            || s.upstream != services[i].upstream) {
            return false;
        }
    }

    resealSnapshotInPlace(old, oldLen, generation);
    Router::setGeneration(image, imageLen, generation);
    return true;
}

std::optional<Bytes> applyPoll(const unsigned char *old, size_t oldLen,
                               const PollResult &poll, uint64_t generation,
                               const Log &log)
{
    return applyPolls(old, oldLen, {poll}, generation, log);
}

std::optional<Bytes> applyPolls(const unsigned char *old, size_t oldLen,
                                const std::vector<PollResult> &polls,
                                uint64_t generation, const Log &log,
                                Snapshot *sealed, ApplyTimes *times,
                                Router::TableBefore *before)
{
    double t0 = threadCpuMs();

    for (const PollResult &poll : polls) {
        if (poll.state > ServiceState::Unhealthy) {
            throw Error("invalid service state");
        }
    }

    /*
     * The table is changed in place, not copied: what the warnings compare
     * with is remembered first, and the route sets replaced are kept (a
     * vector's elements stay where they are when it moves) for the ids
     * that view their strings.  The table is the zone's, and the route
     * sets the parser's, both made by this core: see Provenance.
     */
    Snapshot next = decodeSnapshot(old, oldLen, Provenance::Made);
    if (before != nullptr) {
        *before = Router::TableBefore();
        before->generation = next.generation;
        before->rejections = next.rejections;
        before->extensionMethods = next.extensionMethods;
        before->controls = next.controls;
    }
    RouteIds ids;
    Known known = remember(next, ids);
    std::vector<RouteSet> replaced;
    std::vector<uint32_t> replacedOf; // their services
    bool changed = false;

    for (const PollResult &poll : polls) {
        Service *s = findService(next, poll.name, poll.url);

        if (s == nullptr) {
            continue; // a poll begun before a reload
        }

        if (s->state != poll.state) {
            s->state = poll.state;
            changed = true;
        }

        if (poll.routes != nullptr) {
            RouteSet set = decodeRouteSet(poll.routes, poll.routesLen,
                                          Provenance::Made);
            if (!(set == s->routeSet)) {
                replaced.push_back(std::move(s->routeSet));
                replacedOf.push_back(
                    static_cast<uint32_t>(s - next.services.data()));
                s->routeSet = std::move(set);
                changed = true;
            }
        }
    }

    if (!changed) {
        return std::nullopt;
    }

    std::vector<ChangedService> sets;
    for (size_t i = 0; i < replaced.size(); i++) {
        sets.push_back({replacedOf[i], &replaced[i]});
    }
    if (times != nullptr) {
        times->decode = threadCpuMs() - t0;
    }
    Bytes bytes = seal(next, known, ids, generation, log, sealed, &sets, times);

    if (before != nullptr) {
        // the first set replaced of a service is the one the table had
        for (size_t i = 0; i < replaced.size(); i++) {
            before->routeSets.emplace_back(replacedOf[i],
                                           std::move(replaced[i]));
        }
    }
    return bytes;
}

} // namespace discovery
