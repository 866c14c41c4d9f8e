// samples.hpp: a valid snapshot and route set for the snapshot target and
// its seed tool (fuzz/tools/snapshot_seeds.cpp).
#ifndef DISCOVERY_FUZZ_SAMPLES_HPP
#define DISCOVERY_FUZZ_SAMPLES_HPP

#include "table_check.hpp"
#include "methods.hpp"
#include "snapshot.hpp"

#include <string>
#include <vector>

namespace fuzz {

inline discovery::Route sampleRoute(const std::string &path, uint32_t methods,
                                    const std::string &name = "",
                                    std::vector<std::string> tags = {},
                                    bool auth = false, bool ws = false)
{
    discovery::Route r;
    r.path = path;
    r.methods = methods;
    r.name = name;
    r.tags = std::move(tags);
    r.authRequired = auth;
    r.websocket = ws;
    return r;
}

inline discovery::Service sampleService(const std::string &name,
                                        discovery::ServiceState state,
                                        std::vector<discovery::Route> routes)
{
    discovery::Service s;
    s.name = name;
    s.url = "http://" + name + ":8000/health?include_routes=true";
    s.upstream = name + "_backend";
    s.state = state;
    s.routeSet.version = "1.0";
    s.routeSet.routes = std::move(routes);
    return s;
}

// Every segment kind, a websocket route, tags, names and two conflicts.
inline discovery::Snapshot sampleSnapshot()
{
    using namespace discovery;
    Snapshot snap;

    snap.generation = 42;
    snap.services.push_back(sampleService(
        "users", discovery::ServiceState::Healthy,
        {sampleRoute("/users", kGet | kPost, "list_users", {"users"}),
         sampleRoute("/users/{user_id:int}", kGet | kPut | kDelete,
                     "get_user", {"users", "admin"}, true),
         sampleRoute("/users/me", kGet, "me", {}, true),
         sampleRoute("/ws/{room}", kGet, "", {}, false, true)}));
    snap.services.push_back(sampleService(
        "files", discovery::ServiceState::Unhealthy,
        {sampleRoute("/files/{p:path}", kGet | kHead, "file"),
         sampleRoute("/users/{id:int}", kGet | kPatch, "shadowed"),
         sampleRoute("/prices/{x:float}", kGet),
         sampleRoute("/items/{u:uuid}", kDelete)}));
    snap.services.push_back(sampleService("late", discovery::ServiceState::Pending,
                                          {}));
    snap.services.back().routeSet.version.clear();
    snap.services.push_back(sampleService(
        "chat", discovery::ServiceState::Healthy,
        {sampleRoute("/users", kPost, "shadowed_too", {"\xc3\xa9t\xc3\xa9"}),
         sampleRoute("/", kGet | kOptions)}));
    checkTable(snap);
    return snap;
}

inline discovery::RouteSet sampleRouteSet()
{
    discovery::RouteSet set = sampleSnapshot().services[0].routeSet;
    set.version = "2.0";
    set.routes.push_back(sampleRoute("/extra/{n:int}", discovery::kPost));
    return set;
}

} // namespace fuzz

#endif
