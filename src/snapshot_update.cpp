// snapshot_update.cpp: roster and poll updates, logging new conflicts once.
#include "snapshot_update.hpp"

#include "conflicts.hpp"
#include "error.hpp"

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

// Recomputes conflicts and warns about those `old` did not have, compared
// by text since indices shift when the roster changes.
Bytes seal(Snapshot &next, const Snapshot &old, uint64_t generation,
           const Log &log)
{
    std::unordered_set<std::string> known;

    for (const Conflict &c : old.conflicts) {
        known.insert(describeConflict(old, c));
    }

    next.generation = generation;
    next.conflicts = findConflicts(next.services);

    for (const Conflict &c : next.conflicts) {
        std::string msg = describeConflict(next, c);
        if (known.count(msg) == 0) {
            log.warn(msg);
        }
    }

    return encodeSnapshot(next);
}

} // namespace

Bytes applyRoster(const unsigned char *old, size_t oldLen,
                  const std::vector<ServiceConf> &services, uint64_t generation,
                  const Log &log)
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
