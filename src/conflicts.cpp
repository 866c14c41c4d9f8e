// conflicts.cpp: conflict detection, linear in the number of routes.
#include "conflicts.hpp"

#include "json_escape.hpp"
#include "methods.hpp"
#include "route_template.hpp"

#include <algorithm>
#include <array>
#include <tuple>
#include <unordered_map>

namespace discovery {

namespace {

struct RouteRef {
    uint32_t service;
    uint32_t route;
};

// Routes by shape, each list in roster order then document order.
std::unordered_map<std::string, std::vector<RouteRef>>
groupByShape(const std::vector<Service> &services)
{
    std::unordered_map<std::string, std::vector<RouteRef>> groups;
    Template tpl;

    for (uint32_t s = 0; s < services.size(); s++) {
        const auto &routes = services[s].routeSet.routes;
        for (uint32_t r = 0; r < routes.size(); r++) {
            if (compileTemplate(routes[r].path, tpl)) {
                groups[templateShape(tpl)].push_back({s, r});
            }
        }
    }

    return groups;
}

/*
 * The first route holding a method owns it; a later route of another
 * service loses it.  Tracking the owner per method (rather than comparing
 * pairs) keeps a group of thousands of same-shape routes linear.
 */
void resolveGroup(const std::vector<Service> &services,
                  const std::vector<RouteRef> &group,
                  std::vector<Conflict> &out)
{
    std::array<const RouteRef *, kMethodCount> owner{};

    for (const RouteRef &ref : group) {
        uint32_t methods =
            services[ref.service].routeSet.routes[ref.route].methods;
        size_t first = out.size();

        for (size_t m = 0; m < kMethodCount; m++) {
            if (!(methods & (1u << m))) {
                continue;
            }
            if (owner[m] == nullptr) {
                owner[m] = &ref;
                continue;
            }
            if (owner[m]->service == ref.service) {
                continue;
            }

            // one record per (winner, loser) pair, methods merged
            const RouteRef &win = *owner[m];
            auto same = std::find_if(out.begin() + first, out.end(),
                                     [&](const Conflict &c) {
                                         return c.winnerService == win.service
                                                && c.winnerRoute == win.route;
                                     });
            if (same != out.end()) {
                same->methods |= 1u << m;
            } else {
                out.push_back(
                    {1u << m, win.service, win.route, ref.service, ref.route});
            }
        }
    }
}

} // namespace

std::vector<Conflict> findConflicts(const std::vector<Service> &services)
{
    std::vector<Conflict> conflicts;

    for (const auto &group : groupByShape(services)) {
        if (group.second.size() > 1) {
            resolveGroup(services, group.second, conflicts);
        }
    }

    auto key = [](const Conflict &c) {
        return std::tie(c.loserService, c.loserRoute, c.winnerService,
                        c.winnerRoute);
    };
    std::sort(
        conflicts.begin(), conflicts.end(),
        [&](const Conflict &a, const Conflict &b) { return key(a) < key(b); });

    return conflicts;
}

std::string describeConflict(const Snapshot &snap, const Conflict &c)
{
    const Service &winner = snap.services[c.winnerService];
    const Service &loser = snap.services[c.loserService];

    return "route conflict: " + joinMethods(c.methods, ",") + " "
           + loser.routeSet.routes[c.loserRoute].path + " of "
           + quoted(loser.name) + " is shadowed by "
           + winner.routeSet.routes[c.winnerRoute].path + " of "
           + quoted(winner.name);
}

} // namespace discovery
