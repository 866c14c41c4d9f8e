// snapshot_update.cpp: roster and poll updates, logging new conflicts once.
#include "snapshot_update.hpp"

#include "error.hpp"
#include "json_escape.hpp"
#include "methods.hpp"
#include "table_check.hpp"

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
 * Numbers each route of a snapshot by its service's name and its path,
 * the same numbers for two snapshots: findings are compared by these,
 * since indices shift when the roster changes, and overlaps can be as
 * many as the routes of one service times those of another (describing
 * each in text took ten times as long as finding them).
 */
class RouteIds {
public:
    // ids[service][route] for `snap`
    std::vector<std::vector<uint32_t>> of(const Snapshot &snap)
    {
        std::vector<std::vector<uint32_t>> ids(snap.services.size());

        for (size_t s = 0; s < snap.services.size(); s++) {
            const Service &service = snap.services[s];
            for (const Route &r : service.routeSet.routes) {
                auto key = std::make_pair(std::string_view(service.name),
                                          std::string_view(r.path));
                ids[s].push_back(
                    known_.try_emplace(key, uint32_t(known_.size()))
                        .first->second);
            }
        }

        return ids;
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

using RouteIdTable = std::vector<std::vector<uint32_t>>;

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
std::string findingKey(const Conflict &c, const Snapshot &snap,
                       const RouteIdTable &ids)
{
    return methodsKey(c.methods, snap) + ' '
           + std::to_string(ids[c.winnerService][c.winnerRoute]) + ' '
           + std::to_string(ids[c.loserService][c.loserRoute]);
}

std::string findingKey(const Overlap &o, const Snapshot &snap,
                       const RouteIdTable &ids)
{
    return methodsKey(o.methods, snap) + ' '
           + std::to_string(ids[o.service][o.route]) + ' '
           + std::to_string(ids[o.shadowedService][o.shadowedRoute]);
}

std::string findingKey(const Rejection &r, const Snapshot &,
                       const RouteIdTable &ids)
{
    return std::to_string(ids[r.service][r.route]) + ' ' + r.reason;
}

/*
 * Logs each finding of `next` that `old` did not have, the first
 * kMaxLoggedFindings in full.
 */
template <typename T, typename F>
void warnNew(const Snapshot &old, const std::vector<T> &before,
             const RouteIdTable &oldIds, const Snapshot &next,
             const std::vector<T> &now, const RouteIdTable &nextIds,
             F describe, const char *what, const Log &log)
{
    std::unordered_set<std::string> known;
    size_t logged = 0, more = 0;

    known.reserve(before.size());
    for (const T &item : before) {
        known.insert(findingKey(item, old, oldIds));
    }

    for (const T &item : now) {
        if (known.count(findingKey(item, next, nextIds)) != 0) {
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

/*
 * The same for what the parsers turned away, which is no route of the
 * table and so has no id: at most kMaxRejected lines per service, kept as
 * text.
 */
std::vector<std::string> turnedAway(const Snapshot &snap)
{
    std::vector<std::string> lines;

    for (const Service &s : snap.services) {
        for (const RejectedRoute &r : s.routeSet.rejected) {
            lines.push_back("route " + quoted(r.path) + " of "
                            + quoted(s.name) + " rejected: " + r.reason);
        }
        if (s.routeSet.rejectedOmitted != 0) {
            lines.push_back(std::to_string(s.routeSet.rejectedOmitted)
                            + " more routes of " + quoted(s.name)
                            + " rejected");
        }
    }
    return lines;
}

void warnNewTurnedAway(const Snapshot &old, const Snapshot &next,
                       const Log &log)
{
    std::vector<std::string> before = turnedAway(old);
    std::unordered_set<std::string> known(before.begin(), before.end());
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

// Checks the table again and warns about what `old` did not have.
Bytes seal(Snapshot &next, const Snapshot &old, uint64_t generation,
           const Log &log)
{
    next.generation = generation;
    checkTable(next);

    RouteIds routeIds;
    RouteIdTable oldIds = routeIds.of(old);
    RouteIdTable nextIds = routeIds.of(next);

    warnNew(old, old.conflicts, oldIds, next, next.conflicts, nextIds,
            describeConflict, "route conflicts", log);
    warnNew(old, old.overlaps, oldIds, next, next.overlaps, nextIds,
            describeOverlap, "route overlaps", log);
    warnNew(old, old.rejections, oldIds, next, next.rejections, nextIds,
            describeRejection, "rejected routes", log);
    warnNewTurnedAway(old, next, log);

    return encodeSnapshot(next);
}

} // namespace

Bytes applyRoster(const unsigned char *old, size_t oldLen,
                  const std::vector<ServiceConf> &services, bool denyOverlaps,
                  uint64_t generation, const Log &log)
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

    Snapshot next;
    next.denyOverlaps = denyOverlaps;
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

    return seal(next, prev, generation, log);
}

std::optional<Bytes> applyPoll(const unsigned char *old, size_t oldLen,
                               const PollResult &poll, uint64_t generation,
                               const Log &log)
{
    return applyPolls(old, oldLen, {poll}, generation, log);
}

std::optional<Bytes> applyPolls(const unsigned char *old, size_t oldLen,
                                const std::vector<PollResult> &polls,
                                uint64_t generation, const Log &log)
{
    for (const PollResult &poll : polls) {
        if (poll.state > ServiceState::Unhealthy) {
            throw Error("invalid service state");
        }
    }

    const Snapshot prev = decodeSnapshot(old, oldLen);
    Snapshot next = prev;
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
            RouteSet set = decodeRouteSet(poll.routes, poll.routesLen);
            if (!(set == s->routeSet)) {
                s->routeSet = std::move(set);
                changed = true;
            }
        }
    }

    if (!changed) {
        return std::nullopt;
    }

    return seal(next, prev, generation, log);
}

} // namespace discovery
