// snapshot_update.cpp: roster and poll updates, logging new conflicts once.
#include "snapshot_update.hpp"

#include "table_check.hpp"
#include "error.hpp"
#include "json_escape.hpp"

#include <unordered_set>

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
 * Logs each line of `now` that `before` did not have, compared by text
 * since indices shift when the roster changes.
 */
void warnNew(const std::vector<std::string> &before,
             const std::vector<std::string> &now, const char *what,
             const Log &log)
{
    std::unordered_set<std::string_view> known(before.begin(), before.end());
    size_t logged = 0, more = 0;

    for (const std::string &line : now) {
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
        log.warn(std::to_string(more) + " more new " + what
                 + ", listed on the status page");
    }
}

template <typename T, typename F>
std::vector<std::string> describeAll(const Snapshot &snap,
                                     const std::vector<T> &items, F describe)
{
    std::vector<std::string> lines;
    lines.reserve(items.size());
    for (const T &item : items) {
        lines.push_back(describe(snap, item));
    }
    return lines;
}

// What the parsers turned away, as rejections are described.
std::vector<std::string> describeTurnedAway(const Snapshot &snap)
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

// Checks the table again and warns about what `old` did not have.
Bytes seal(Snapshot &next, const Snapshot &old, uint64_t generation,
           const Log &log)
{
    next.generation = generation;
    checkTable(next);

    warnNew(describeAll(old, old.conflicts, describeConflict),
            describeAll(next, next.conflicts, describeConflict),
            "route conflicts", log);
    warnNew(describeAll(old, old.overlaps, describeOverlap),
            describeAll(next, next.overlaps, describeOverlap),
            "route overlaps", log);
    warnNew(describeAll(old, old.rejections, describeRejection),
            describeAll(next, next.rejections, describeRejection),
            "rejected routes", log);
    warnNew(describeTurnedAway(old), describeTurnedAway(next),
            "rejected route entries", log);

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
        if (poll.state > DISCOVERY_STATE_UNHEALTHY) {
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
