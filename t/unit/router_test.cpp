// router_test.cpp: precedence, methods, states, and the C API end to end.
#include "discovery_core.h"
#include "error.hpp"
#include "methods.hpp"
#include "router.hpp"
#include "snapshot.hpp"
#include "snapshot_update.hpp"
#include "table_check.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <set>

namespace discovery {
namespace {

struct Spec {
    std::string service;
    std::string path;
    uint32_t methods;
};

// A router over services s0, s1, ... in roster order, all healthy unless
// `states` says otherwise.
std::unique_ptr<Router> makeRouter(const std::vector<Spec> &specs,
                                   std::vector<ServiceState> states = {})
{
    Snapshot snap;
    auto serviceIndex = [&](const std::string &name) {
        for (size_t i = 0; i < snap.services.size(); i++) {
            if (snap.services[i].name == name) {
                return i;
            }
        }
        Service s;
        s.name = name;
        s.url = "http://" + name;
        s.upstream = name + "_up";
        s.state = ServiceState::Healthy;
        snap.services.push_back(s);
        return snap.services.size() - 1;
    };

    for (const Spec &spec : specs) {
        Route r;
        r.path = spec.path;
        r.methods = spec.methods;
        r.authRequired = spec.path.find("admin") != std::string::npos;
        snap.services[serviceIndex(spec.service)].routeSet.routes.push_back(r);
    }
    for (size_t i = 0; i < states.size(); i++) {
        serviceIndex("s" + std::to_string(i));
        snap.services[i].state = states[i];
    }

    Bytes blob = encodeSnapshot(snap);
    return Router::build(blob.data(), blob.size());
}

// "service route" of a lookup, or the status name.
std::string lookup(const Router &router, std::string_view path,
                   std::string_view method = "GET", bool websocket = false)
{
    Match m = router.match(method, path, websocket);
    switch (m.status) {
    case MatchStatus::Found:
        return std::string(m.service) + " " + std::string(m.route);
    case MatchStatus::NotAllowed:
        return "405 " + std::string(m.service) + " " + std::string(m.allow);
    case MatchStatus::Unavailable:
        return "503 " + std::string(m.service);
    case MatchStatus::Pending:
        return "pending";
    default:
        return "404";
    }
}


// Each of the nine names has its bit; nothing else has one, however near.
TEST(Methods, EachNameItsBit)
{
    for (size_t i = 0; i < kMethodCount; i++) {
        std::string name(methodName(i));
        EXPECT_EQ(methodBit(name), 1u << i) << name;
        std::string lower = name;
        lower[0] = static_cast<char>(lower[0] + 32);
        EXPECT_EQ(methodBit(lower), 0u) << lower;
        EXPECT_EQ(methodBit(name + "X"), 0u) << name;
        EXPECT_EQ(methodBit(name.substr(0, name.size() - 1)), 0u) << name;
        name.back() = 'X';
        EXPECT_EQ(methodBit(name), 0u) << name;
    }
    for (const char *other : {"", "G", "PROPFIND", "MKCOL", "GETS", "DELETES"}) {
        EXPECT_EQ(methodBit(other), 0u) << other;
    }
}

TEST(Router, LiteralBeatsEveryParameter)
{
    auto r = makeRouter({{"a", "/u/{x:path}", kGet},
                         {"a", "/u/{x}", kGet},
                         {"a", "/u/{x:int}", kGet},
                         {"a", "/u/{x:float}", kGet},
                         {"a", "/u/{x:uuid}", kGet},
                         {"a", "/u/me", kGet}});

    EXPECT_EQ(lookup(*r, "/u/me"), "a /u/me");
    EXPECT_EQ(lookup(*r, "/u/42"), "a /u/{x:int}");
    EXPECT_EQ(lookup(*r, "/u/4.2"), "a /u/{x:float}");
    EXPECT_EQ(lookup(*r, "/u/123e4567-e89b-12d3-a456-426614174000"),
              "a /u/{x:uuid}");
    EXPECT_EQ(lookup(*r, "/u/bob"), "a /u/{x}");
    EXPECT_EQ(lookup(*r, "/u/bob/x"), "a /u/{x:path}");
    EXPECT_EQ(lookup(*r, "/u/"), "a /u/{x:path}");
    // nothing has "/u": "/u/" takes it, and the service redirects
    EXPECT_EQ(lookup(*r, "/u"), "a /u/{x:path}");
}

TEST(Router, TrailingSlashGoesToTheRouteWithoutIt)
{
    auto r = makeRouter({{"a", "/users/{id}", kGet},
                         {"b", "/items/", kPost},
                         {"b", "/exact", kGet},
                         {"a", "/exact/", kGet}});

    // as FastAPI: 307 from /users/1/ to /users/1 and from /items to /items/
    EXPECT_EQ(lookup(*r, "/users/1/"), "a /users/{id}");
    EXPECT_EQ(lookup(*r, "/items", "POST"), "b /items/");
    // the service redirects whatever the method: it is its owner's call
    EXPECT_EQ(lookup(*r, "/items", "GET"), "b /items/");
    // a route that has the path itself wins
    EXPECT_EQ(lookup(*r, "/exact"), "b /exact");
    EXPECT_EQ(lookup(*r, "/exact/"), "a /exact/");
    EXPECT_EQ(lookup(*r, "/exact", "PUT"), "405 b GET, HEAD, OPTIONS");
    EXPECT_EQ(lookup(*r, "/"), "404");
    EXPECT_EQ(lookup(*r, "/users/1//"), "404");
}

TEST(Router, BacktracksToLowerPrecedence)
{
    auto r = makeRouter({{"a", "/a/{n:int}/edit", kGet},
                         {"a", "/a/{name}/view", kGet},
                         {"a", "/a/special/{rest:path}", kGet}});

    EXPECT_EQ(lookup(*r, "/a/1/edit"), "a /a/{n:int}/edit");
    // the int branch exists but has no "view": back up to {name}
    EXPECT_EQ(lookup(*r, "/a/1/view"), "a /a/{name}/view");
    // the literal branch is tried first, then the parameters
    EXPECT_EQ(lookup(*r, "/a/special/view"), "a /a/special/{rest:path}");
    EXPECT_EQ(lookup(*r, "/a/x/edit"), "404");
}

TEST(Router, PrecedenceIsDecidedFromTheLeft)
{
    auto r = makeRouter({{"a", "/{x}/fixed", kGet}, {"a", "/lit/{y}", kGet}});
    EXPECT_EQ(lookup(*r, "/lit/fixed"), "a /lit/{y}");
}

TEST(Router, SlashesMatter)
{
    auto r = makeRouter(
        {{"a", "/users", kGet}, {"b", "/users/", kGet}, {"a", "/", kGet}});

    EXPECT_EQ(lookup(*r, "/users"), "a /users");
    EXPECT_EQ(lookup(*r, "/users/"), "b /users/");
    EXPECT_EQ(lookup(*r, "/"), "a /");
    EXPECT_EQ(lookup(*r, "//users"), "404");
    EXPECT_EQ(lookup(*r, "users"), "404");
    EXPECT_EQ(lookup(*r, ""), "404");
}

TEST(Router, RootPathParameter)
{
    auto r = makeRouter({{"a", "/{all:path}", kGet}});
    EXPECT_EQ(lookup(*r, "/"), "a /{all:path}");
    EXPECT_EQ(lookup(*r, "/x/y/z"), "a /{all:path}");
}

TEST(Router, PathParameterInTheMiddle)
{
    auto r = makeRouter({{"a", "/files/{p:path}/meta", kGet | kPut}});

    EXPECT_EQ(lookup(*r, "/files/a/meta"), "a /files/{p:path}/meta");
    EXPECT_EQ(lookup(*r, "/files/a/b/c/meta"), "a /files/{p:path}/meta");
    // greedy as Starlette's '.*': p is "meta/x/meta"
    EXPECT_EQ(lookup(*r, "/files/meta/x/meta/meta"), "a /files/{p:path}/meta");
    // p may be empty, but the slashes around it are the template's
    EXPECT_EQ(lookup(*r, "/files//meta"), "a /files/{p:path}/meta");
    EXPECT_EQ(lookup(*r, "/files/meta"), "404");
    EXPECT_EQ(lookup(*r, "/files/a/b"), "404");
    EXPECT_EQ(lookup(*r, "/files/a/meta/b"), "404");
    EXPECT_EQ(lookup(*r, "/files"), "404");
    EXPECT_EQ(lookup(*r, "/files/a/meta", "POST"),
              "405 a GET, HEAD, PUT, OPTIONS");
}

TEST(Router, PathParameterComesAfterEveryOtherEdge)
{
    auto r = makeRouter({{"a", "/files/{p:path}/meta", kGet},
                         {"b", "/files/{name}/meta", kGet},
                         {"b", "/files/{n:int}/meta", kGet},
                         {"b", "/files/special/meta", kGet}});

    EXPECT_EQ(lookup(*r, "/files/x/meta"), "b /files/{name}/meta");
    EXPECT_EQ(lookup(*r, "/files/7/meta"), "b /files/{n:int}/meta");
    EXPECT_EQ(lookup(*r, "/files/special/meta"), "b /files/special/meta");
    EXPECT_EQ(lookup(*r, "/files/x/y/meta"), "a /files/{p:path}/meta");
    EXPECT_EQ(lookup(*r, "/files/special/y/meta"), "a /files/{p:path}/meta");
    // {name} takes no empty segment
    EXPECT_EQ(lookup(*r, "/files//meta"), "a /files/{p:path}/meta");
}

TEST(Router, MoreSegmentsAfterThePathParameterFirst)
{
    auto r = makeRouter({{"a", "/d/{p:path}", kGet},
                         {"a", "/d/{p:path}/a", kGet},
                         {"b", "/d/{p:path}/a/b", kGet},
                         {"b", "/d/{p:path}/{n:int}/c/d", kGet}});

    EXPECT_EQ(lookup(*r, "/d/x/a/b"), "b /d/{p:path}/a/b");
    EXPECT_EQ(lookup(*r, "/d/a/b/a"), "a /d/{p:path}/a");
    EXPECT_EQ(lookup(*r, "/d/x/1/c/d"), "b /d/{p:path}/{n:int}/c/d");
    // no room for p, not even empty: it keeps its slash
    EXPECT_EQ(lookup(*r, "/d/1/c/d"), "a /d/{p:path}");
    EXPECT_EQ(lookup(*r, "/d//1/c/d"), "b /d/{p:path}/{n:int}/c/d");
    EXPECT_EQ(lookup(*r, "/d/a/b"), "a /d/{p:path}");
    // the last one keeps its meaning: the rest, even empty
    EXPECT_EQ(lookup(*r, "/d/x/y"), "a /d/{p:path}");
    EXPECT_EQ(lookup(*r, "/d/"), "a /d/{p:path}");
    EXPECT_EQ(lookup(*r, "/d"), "a /d/{p:path}");
}

TEST(Router, EachWalkBelowAPathParameterCounts)
{
    auto r = makeRouter({{"a", "/d/{p:path}", kGet},
                         {"a", "/d/{p:path}/a", kGet},
                         {"a", "/d/{p:path}/a/b", kGet}});
    uint32_t visits = 0;

    // the root, "d", then the {p:path} node for 2, 1 and 0 segments after
    // it; "a" is visited in none, since "y" and "z" are not "a"
    EXPECT_EQ(r->match("GET", "/d/x/y/z", false, &visits).route, "/d/{p:path}");
    EXPECT_EQ(visits, 5u);
    // for 2 segments: the {p:path} node, "a", "b"
    EXPECT_EQ(r->match("GET", "/d/x/a/b", false, &visits).route,
              "/d/{p:path}/a/b");
    EXPECT_EQ(visits, 5u);
    // "/" has room for none: one visit, of the {p:path} node's terminal
    EXPECT_EQ(r->match("GET", "/d/", false, &visits).route, "/d/{p:path}");
    EXPECT_EQ(visits, 3u);
}

TEST(Router, BacktracksBelowThePathParameter)
{
    auto r = makeRouter({{"a", "/{p:path}/{n:int}/x", kGet},
                         {"b", "/{p:path}/{s}/y", kPost},
                         {"c", "/{p:path}/{s}/x", kPost}});

    EXPECT_EQ(lookup(*r, "/q/1/x"), "a /{p:path}/{n:int}/x");
    EXPECT_EQ(lookup(*r, "/q/r/1/y", "POST"), "b /{p:path}/{s}/y");
    // the int route has the path, not the method: the str one takes it
    EXPECT_EQ(lookup(*r, "/q/1/x", "POST"), "c /{p:path}/{s}/x");
    EXPECT_EQ(lookup(*r, "/q/1/x", "PUT"), "405 a GET, HEAD, OPTIONS");
    EXPECT_EQ(lookup(*r, "/1/x"), "404");
}

TEST(Router, TrailingSlashRetryWithAPathParameterInTheMiddle)
{
    auto r = makeRouter(
        {{"a", "/files/{p:path}/meta", kGet}, {"b", "/dirs/{p:path}/", kGet}});

    // as FastAPI's redirect_slashes, which toggles the slash and matches
    EXPECT_EQ(lookup(*r, "/files/a/b/meta/"), "a /files/{p:path}/meta");
    EXPECT_EQ(lookup(*r, "/dirs/a/b"), "b /dirs/{p:path}/");
    EXPECT_EQ(lookup(*r, "/dirs/a/b/"), "b /dirs/{p:path}/");
    // "/dirs/" with a slash toggled is "/dirs", which it does not match
    EXPECT_EQ(lookup(*r, "/dirs/"), "404");
    EXPECT_EQ(lookup(*r, "/dirs//"), "b /dirs/{p:path}/");
}

TEST(Router, EmptySegmentsDoNotMatchParameters)
{
    auto r = makeRouter({{"a", "/a/{x}/b", kGet}});
    EXPECT_EQ(lookup(*r, "/a//b"), "404");
    EXPECT_EQ(lookup(*r, "/a/x/b"), "a /a/{x}/b");
}

TEST(Router, MethodsHeadWebsocket)
{
    auto r = makeRouter({{"a", "/x", kGet | kPost}, {"a", "/ws", kGet}});

    EXPECT_EQ(lookup(*r, "/x", "POST"), "a /x");
    EXPECT_EQ(lookup(*r, "/x", "HEAD"), "a /x");
    EXPECT_EQ(lookup(*r, "/x", "DELETE"), "405 a GET, HEAD, POST, OPTIONS");
    EXPECT_EQ(lookup(*r, "/x", "post"), "405 a GET, HEAD, POST, OPTIONS");
    EXPECT_EQ(lookup(*r, "/x", "BREW"), "405 a GET, HEAD, POST, OPTIONS");
    EXPECT_EQ(lookup(*r, "/ws", "POST", true), "a /ws");
}

// Methods past the nine, numbered by the table check as it keeps routes.
TEST(Router, ExtensionMethods)
{
    Snapshot snap;
    auto route = [](std::string path, uint32_t methods, MethodNames more) {
        Route r;
        r.path = std::move(path);
        r.methods = methods;
        r.extensionMethods = std::move(more);
        return r;
    };
    for (const char *name : {"a", "b"}) {
        Service s;
        s.name = name;
        s.upstream = std::string(name) + "_up";
        s.state = ServiceState::Healthy;
        snap.services.push_back(s);
    }
    snap.services[0].routeSet.routes = {
        route("/dav/{p:path}", kGet, {"MKCOL", "PROPFIND"})};
    snap.services[1].routeSet.routes = {
        route("/dav/x", 0, {"PROPPATCH"}),
        route("/dav/{q:path}", kPut, {"LOCK", "PROPFIND"})};
    checkTable(snap);
    ASSERT_EQ(snap.extensionMethods,
              (MethodNames{"MKCOL", "PROPFIND", "PROPPATCH", "LOCK"}));
    ASSERT_EQ(snap.conflicts.size(), 1u); // PROPFIND on /dav/{path}

    Bytes blob = encodeSnapshot(snap);
    auto r = Router::build(blob.data(), blob.size());

    EXPECT_EQ(lookup(*r, "/dav/a/b", "PROPFIND"), "a /dav/{p:path}");
    EXPECT_EQ(lookup(*r, "/dav/a/b", "MKCOL"), "a /dav/{p:path}");
    EXPECT_EQ(lookup(*r, "/dav/a/b", "LOCK"), "b /dav/{q:path}");
    EXPECT_EQ(lookup(*r, "/dav/x", "PROPPATCH"), "b /dav/x");
    EXPECT_EQ(lookup(*r, "/dav/x", "PROPFIND"), "a /dav/{p:path}");
    // method tokens are case-sensitive; unknown ones are not allowed
    EXPECT_EQ(lookup(*r, "/dav/a", "propfind"),
              "405 a GET, HEAD, PUT, OPTIONS, MKCOL, PROPFIND, LOCK");
    EXPECT_EQ(lookup(*r, "/dav/x", "BREW"), "405 b OPTIONS, PROPPATCH");
    EXPECT_EQ(lookup(*r, "/dav/a", "UNLOCK"),
              "405 a GET, HEAD, PUT, OPTIONS, MKCOL, PROPFIND, LOCK");
}

TEST(Router, HeadOnlyRouteDoesNotServeGet)
{
    auto r = makeRouter({{"a", "/h", kHead}});
    EXPECT_EQ(lookup(*r, "/h", "HEAD"), "a /h");
    EXPECT_EQ(lookup(*r, "/h", "GET"), "405 a HEAD, OPTIONS");
}

TEST(Router, AllowComesFromTheFirstMatchingTerminal)
{
    auto r = makeRouter(
        {{"a", "/i/{n:int}", kPut | kDelete}, {"b", "/i/{s}", kPatch}});

    EXPECT_EQ(lookup(*r, "/i/5", "GET"), "405 a PUT, DELETE, OPTIONS");
    EXPECT_EQ(lookup(*r, "/i/5", "PATCH"), "b /i/{s}");
    EXPECT_EQ(lookup(*r, "/i/x", "GET"), "405 b PATCH, OPTIONS");
}

TEST(Router, OptionsGoesToThePathOwner)
{
    auto r = makeRouter(
        {{"a", "/o/{n:int}", kGet}, {"b", "/o/{s}", kOptions | kPost}});

    // b publishes OPTIONS for the path: b gets it
    EXPECT_EQ(lookup(*r, "/o/1", "OPTIONS"), "b /o/{s}");

    auto r2 = makeRouter({{"a", "/p/{n:int}", kGet}, {"b", "/p/{s}", kPost}});
    // nobody publishes OPTIONS: the highest precedence terminal owns it
    EXPECT_EQ(lookup(*r2, "/p/1", "OPTIONS"), "a /p/{n:int}");
    EXPECT_EQ(lookup(*r2, "/p/x", "OPTIONS"), "b /p/{s}");
    EXPECT_EQ(lookup(*r2, "/q", "OPTIONS"), "404");
}

TEST(Router, ConflictsFirstServiceWinsLoserKeepsTheRest)
{
    auto r = makeRouter(
        {{"a", "/users/{id}", kGet}, {"b", "/users/{user_id}", kGet | kPost}});

    EXPECT_EQ(lookup(*r, "/users/1", "GET"), "a /users/{id}");
    EXPECT_EQ(lookup(*r, "/users/1", "POST"), "b /users/{user_id}");
    EXPECT_EQ(lookup(*r, "/users/1", "PUT"), "405 a GET, HEAD, POST, OPTIONS");
}

TEST(Router, AMatchNamesItsEntry)
{
    // the inline entry and those in the array, a trailing slash taken,
    // a preflight: each found route's entry gives its service and template
    const uint32_t bits[] = {kGet, kPost, kPut, kDelete, kPatch};
    const char *names[] = {"GET", "POST", "PUT", "DELETE", "PATCH"};
    std::vector<Spec> specs;
    for (size_t i = 0; i < 5; i++) {
        specs.push_back({"s" + std::to_string(i), "/x/{id}", bits[i]});
    }
    specs.push_back({"t", "/y/a", kGet});
    specs.push_back({"t", "/z/", kGet});
    auto r = makeRouter(specs);

    struct Ask {
        const char *method;
        const char *path;
    };
    std::vector<Ask> asks = {{"GET", "/y/a"}, {"GET", "/z"},
                             {"OPTIONS", "/x/1"}, {"HEAD", "/x/1"}};
    for (size_t i = 0; i < 5; i++) {
        asks.push_back({names[i], "/x/1"});
    }

    std::set<uint32_t> entries;
    for (const Ask &a : asks) {
        Match m = r->match(a.method, a.path, false);
        ASSERT_EQ(m.status, MatchStatus::Found) << a.method << " " << a.path;
        std::string_view service, route;
        ASSERT_TRUE(r->entryNames(m.entry, service, route)) << a.path;
        EXPECT_EQ(service, m.service) << a.method << " " << a.path;
        EXPECT_EQ(route, m.route) << a.method << " " << a.path;
        entries.insert(m.entry);
    }
    EXPECT_EQ(entries.size(), 7u); // five at /x/{id}, /y/a, /z/
    EXPECT_LE(entries.size(), r->entryCount());

    std::string_view service, route;
    EXPECT_FALSE(r->entryNames(r->entryCount(), service, route));
    EXPECT_EQ(r->match("GET", "/nothing", false).entry, Router::kNoEntry);
    EXPECT_EQ(r->match("BREW", "/x/1", false).entry, Router::kNoEntry);
}

TEST(Router, EveryEntryOfASharedTerminal)
{
    // nine services share one terminal, one method each: the node keeps
    // the first entry inline and the others in the entry array
    const uint32_t bits[] = {kGet,   kHead,    kPost,  kPut,    kDelete,
                             kPatch, kOptions, kTrace, kConnect};
    const char *names[] = {"GET",   "HEAD",    "POST",  "PUT",    "DELETE",
                           "PATCH", "OPTIONS", "TRACE", "CONNECT"};
    std::vector<Spec> specs;
    for (size_t i = 0; i < 9; i++) {
        specs.push_back({"s" + std::to_string(i), "/x/{id}", bits[i]});
    }
    auto r = makeRouter(specs);

    for (size_t i = 1; i < 9; i++) {
        EXPECT_EQ(lookup(*r, "/x/1", names[i]),
                  (i == 1 ? "s0" : "s" + std::to_string(i)) + " /x/{id}")
            << names[i]; // HEAD is served by the GET route first
    }
    EXPECT_EQ(lookup(*r, "/x/1", "GET"), "s0 /x/{id}");
    EXPECT_EQ(lookup(*r, "/x/1", "BREW"),
              "405 s0 GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE, "
              "CONNECT");
}

TEST(Router, LiteralsUnderEveryParameter)
{
    // literal children of parameter nodes, which sit side by side
    auto r = makeRouter({{"a", "/p/{x:int}/z", kGet},
                         {"a", "/p/{x:float}/y", kGet},
                         {"a", "/p/{x:uuid}/z", kGet},
                         {"a", "/p/{x}/z", kGet},
                         {"a", "/p/{x}/y", kGet},
                         {"a", "/p/{x:path}", kGet},
                         {"a", "/p/q/z", kGet}});

    EXPECT_EQ(lookup(*r, "/p/1/z"), "a /p/{x:int}/z");
    EXPECT_EQ(lookup(*r, "/p/1/y"), "a /p/{x:float}/y");
    EXPECT_EQ(lookup(*r, "/p/1.5/z"), "a /p/{x}/z");
    EXPECT_EQ(lookup(*r, "/p/123e4567-e89b-12d3-a456-426614174000/z"),
              "a /p/{x:uuid}/z");
    EXPECT_EQ(lookup(*r, "/p/q/z"), "a /p/q/z");
    EXPECT_EQ(lookup(*r, "/p/q/y"), "a /p/{x}/y");
    EXPECT_EQ(lookup(*r, "/p/1/w"), "a /p/{x:path}");
}

TEST(Router, UnhealthyOwnerIsUnavailable)
{
    auto r = makeRouter({{"s0", "/a", kGet}, {"s1", "/a", kGet | kPost}},
                        {ServiceState::Unhealthy, ServiceState::Healthy});

    // s0 owns GET even while down: no silent failover to a shadowed route
    EXPECT_EQ(lookup(*r, "/a", "GET"), "503 s0");
    EXPECT_EQ(lookup(*r, "/a", "POST"), "s1 /a");
}

TEST(Router, PendingOnlyWhenNothingMatched)
{
    auto r = makeRouter({{"s0", "/a", kGet}},
                        {ServiceState::Healthy, ServiceState::Pending});

    EXPECT_EQ(lookup(*r, "/a"), "s0 /a");
    EXPECT_EQ(lookup(*r, "/a", "POST"), "405 s0 GET, HEAD, OPTIONS");
    EXPECT_EQ(lookup(*r, "/b"), "pending");
    EXPECT_EQ(lookup(*r, "b"), "404");
}

TEST(Router, MatchCarriesUpstreamAndAuth)
{
    auto r = makeRouter({{"a", "/admin/{id}", kGet}, {"a", "/open", kGet}});

    Match m = r->match("GET", "/admin/7", false);
    EXPECT_EQ(m.status, MatchStatus::Found);
    EXPECT_EQ(m.upstream, "a_up");
    EXPECT_TRUE(m.authRequired);
    EXPECT_FALSE(r->match("GET", "/open", false).authRequired);
}

TEST(Router, LiteralsOfEveryLength)
{
    // neighbours differ only in their last byte, across the 16-byte
    // boundary of what the literal table keeps inline
    std::vector<Spec> specs;
    for (size_t n = 1; n <= 40; n++) {
        specs.push_back({"a", "/" + std::string(n - 1, 'k') + "x", kGet});
        specs.push_back({"b", "/" + std::string(n - 1, 'k') + "y", kGet});
    }
    auto r = makeRouter(specs);

    for (size_t n = 1; n <= 40; n++) {
        std::string stem = "/" + std::string(n - 1, 'k');
        EXPECT_EQ(lookup(*r, stem + "x"), "a " + stem + "x");
        EXPECT_EQ(lookup(*r, stem + "y"), "b " + stem + "y");
        EXPECT_EQ(lookup(*r, stem + "z"), "404");
        EXPECT_EQ(lookup(*r, stem + "xk"), "404");
    }
}

TEST(Router, EmptyRouter)
{
    auto r = makeRouter({});
    EXPECT_EQ(lookup(*r, "/"), "404");
    EXPECT_THROW(Router::build(nullptr, 0), Error);
}

TEST(Router, ManyRoutes)
{
    Snapshot snap;
    for (int s = 0; s < 4; s++) {
        Service svc;
        svc.name = "svc" + std::to_string(s);
        svc.state = ServiceState::Healthy;
        for (int i = 0; i < 25000; i++) {
            Route r;
            r.path = "/api/" + svc.name + "/res" + std::to_string(i)
                     + (i % 2 ? "/{id:int}" : "/{id}/items/{item}");
            r.methods = kGet | kPost;
            svc.routeSet.routes.push_back(r);
        }
        snap.services.push_back(svc);
    }
    Bytes blob = encodeSnapshot(snap);

    auto start = std::chrono::steady_clock::now();
    auto router = Router::build(blob.data(), blob.size());
    auto elapsed = std::chrono::steady_clock::now() - start;
    // generous: this build has sanitizers and -O1
    EXPECT_LT(elapsed, std::chrono::seconds(5));

    EXPECT_EQ(lookup(*router, "/api/svc3/res24999/17"),
              "svc3 /api/svc3/res24999/{id:int}");
    EXPECT_EQ(lookup(*router, "/api/svc0/res0/x/items/y"),
              "svc0 /api/svc0/res0/{id}/items/{item}");
    EXPECT_EQ(lookup(*router, "/api/svc1/res1/x"), "404");
    EXPECT_EQ(lookup(*router, "/api/svc1/res1/1", "PUT"),
              "405 svc1 GET, HEAD, POST, OPTIONS");
}

/*
 * A brute-force reference: the route that wins is the matching one with
 * the smallest sequence of segment ranks (literal < int < float < uuid <
 * str < path, and a path with more segments after it before one with
 * fewer), then roster order, then document order.
 */
struct RefRoute {
    std::string service;
    std::string path;
    uint32_t methods;
    std::vector<int> ranks;
    std::vector<std::string> segs;
};

std::vector<std::string> splitPath(const std::string &path)
{
    std::vector<std::string> out;
    size_t start = 1;
    for (;;) {
        size_t slash = path.find('/', start);
        out.push_back(path.substr(start, slash - start));
        if (slash == std::string::npos) {
            return out;
        }
        start = slash + 1;
    }
}

// The rank of a path segment followed by `after` segments.
constexpr int kPathRank = 5;

int pathRank(size_t after)
{
    return kPathRank + 32 - static_cast<int>(after);
}

int rankOf(const std::string &seg)
{
    static const std::pair<const char *, int> ranks[] = {
        {"{p:int}", 1},
        {"{p:float}", 2},
        {"{p:uuid}", 3},
        {"{p}", 4},
    };
    for (const auto &r : ranks) {
        if (seg == r.first) {
            return r.second;
        }
    }
    return 0;
}

bool refMatches(const RefRoute &r, const std::string &path)
{
    auto digits = [](const std::string &x) {
        return !x.empty()
               && x.find_first_not_of("0123456789") == std::string::npos;
    };
    auto isFloat = [&](const std::string &x) {
        size_t dot = x.find('.');
        return dot == std::string::npos
                   ? digits(x)
                   : digits(x.substr(0, dot)) && digits(x.substr(dot + 1));
    };
    auto isUuid = [](const std::string &x) {
        if (x.size() != 36) {
            return false;
        }
        for (size_t i = 0; i < x.size(); i++) {
            bool dash = i == 8 || i == 13 || i == 18 || i == 23;
            if (dash != (x[i] == '-')
                || (!dash
                    && std::string("0123456789abcdef").find(x[i])
                           == std::string::npos)) {
                return false;
            }
        }
        return true;
    };
    std::vector<std::string> segs = splitPath(path);

    // a path parameter takes one segment or more, as many as the others
    // leave: line the segments after it up with the end of the path
    auto param = std::find_if(r.ranks.begin(), r.ranks.end(),
                              [](int rank) { return rank >= kPathRank; });
    if (param != r.ranks.end()) {
        size_t at = param - r.ranks.begin();
        size_t after = r.segs.size() - at - 1;
        if (segs.size() < r.segs.size()) {
            return false;
        }
        std::vector<std::string> lined(segs.begin(), segs.begin() + at);
        lined.push_back("(parameter)");
        lined.insert(lined.end(), segs.end() - after, segs.end());
        segs = lined;
    }

    for (size_t i = 0; i < r.segs.size(); i++) {
        if (r.ranks[i] >= kPathRank) {
            continue;
        }
        if (i >= segs.size()) {
            return false;
        }
        const std::string &s = segs[i];
        bool ok = r.ranks[i] == 0   ? s == r.segs[i]
                  : r.ranks[i] == 1 ? digits(s)
                  : r.ranks[i] == 2 ? isFloat(s)
                  : r.ranks[i] == 3 ? isUuid(s)
                                    : !s.empty();
        if (!ok) {
            return false;
        }
    }
    return segs.size() == r.segs.size();
}

// The routes matching `path`, in the order the router tries them.
std::vector<const RefRoute *> refHits(const std::vector<RefRoute> &routes,
                                      const std::vector<std::string> &roster,
                                      const std::string &path)
{
    std::vector<const RefRoute *> hits;
    for (const RefRoute &r : routes) {
        if (refMatches(r, path)) {
            hits.push_back(&r);
        }
    }
    auto order = [&](const RefRoute *r) {
        return std::find(roster.begin(), roster.end(), r->service)
               - roster.begin();
    };
    std::stable_sort(hits.begin(), hits.end(), [&](auto *a, auto *b) {
        if (a->ranks != b->ranks) {
            return a->ranks < b->ranks;
        }
        return order(a) < order(b);
    });
    return hits;
}

std::string refLookup(const std::vector<RefRoute> &routes,
                      const std::vector<std::string> &roster,
                      const std::string &path, const std::string &method,
                      bool toggled = false)
{
    std::vector<const RefRoute *> hits = refHits(routes, roster, path);

    if (hits.empty()) {
        // a path nothing has goes where it would with its trailing slash
        // toggled, to the route that takes the method or the first one
        if (path.size() > 1 && !toggled) {
            std::string other = path.back() == '/'
                                    ? path.substr(0, path.size() - 1)
                                    : path + "/";
            std::string alt = refLookup(routes, roster, other, method, true);
            if (alt.compare(0, 4, "405 ") == 0) {
                const RefRoute *first = refHits(routes, roster, other)[0];
                return first->service + " " + first->path;
            }
            return alt;
        }
        return "404";
    }

    uint32_t want = methodBit(method);
    if (want == kHead) {
        want |= kGet;
    }
    for (const RefRoute *r : hits) {
        if (r->methods & want) {
            return r->service + " " + r->path;
        }
    }
    if (want == kOptions) {
        return hits[0]->service + " " + hits[0]->path;
    }

    uint32_t allow = kOptions;
    for (const RefRoute *r : hits) {
        if (r->ranks == hits[0]->ranks) {
            allow |= r->methods;
        }
    }
    if (allow & kGet) {
        allow |= kHead;
    }
    return "405 " + hits[0]->service + " " + std::string(allowHeader(allow));
}

TEST(Router, AgreesWithBruteForce)
{
    const char *segments[] = {"a",         "b",        "1",
                              "",          "{p}",      "{p:int}",
                              "{p:float}", "{p:uuid}", "{p:path}"};
    const char *pathSegments[] = {
        "a", "b", "1", "1.5", "", "123e4567-e89b-12d3-a456-426614174000"};
    const char *methods[] = {"GET", "HEAD", "POST", "DELETE", "OPTIONS"};
    std::mt19937 rng(7);

    for (int round = 0; round < 200; round++) {
        std::vector<Spec> specs;
        std::vector<RefRoute> routes;
        int count = 1 + static_cast<int>(rng() % 12);

        for (int i = 0; i < count; i++) {
            RefRoute r;
            r.service = "s" + std::to_string(rng() % 3);
            int len = 1 + static_cast<int>(rng() % 4);
            bool path = false;
            for (int k = 0; k < len; k++) {
                std::string seg = segments[rng() % 9];
                if (seg == "{p:path}" && path) {
                    seg = "{p}"; // one per template
                }
                path |= seg == "{p:path}";
                r.path += "/" + seg;
                r.segs.push_back(seg);
                r.ranks.push_back(seg == "{p:path}" ? pathRank(len - k - 1)
                                                    : rankOf(seg));
            }
            r.methods = (1u << (rng() % 7)) | (rng() % 2 ? uint32_t(kGet) : 0u);
            specs.push_back({r.service, r.path, r.methods});
            routes.push_back(r);
        }

        auto router = makeRouter(specs);
        std::vector<std::string> roster;
        for (const Spec &spec : specs) {
            if (std::find(roster.begin(), roster.end(), spec.service)
                == roster.end()) {
                roster.push_back(spec.service);
            }
        }

        for (int q = 0; q < 50; q++) {
            std::string path;
            int len = 1 + static_cast<int>(rng() % 5);
            for (int k = 0; k < len; k++) {
                path += "/" + std::string(pathSegments[rng() % 6]);
            }
            std::string method = methods[rng() % 5];
            ASSERT_EQ(lookup(*router, path, method),
                      refLookup(routes, roster, path, method))
                << method << " " << path << " (round " << round << ")";
        }
    }
}

/* the C interface, in the order the glue calls it */

std::string text(const char *p, size_t len)
{
    return p != nullptr ? std::string(p, len) : std::string();
}

discovery_buf_t parseRoutes(const std::string &doc)
{
    discovery_error_t err;
    discovery_buf_t out = {nullptr, 0};
    discovery_parser_t *p =
        discovery_parser_create(DISCOVERY_FORMAT_AUTO, nullptr);
    EXPECT_NE(p, nullptr);
    EXPECT_EQ(discovery_parser_feed(p, doc.data(), doc.size(), &err),
              DISCOVERY_OK);
    EXPECT_EQ(discovery_parser_finish(p, &out, &err), DISCOVERY_OK) << err.text;
    discovery_parser_destroy(p);
    return out;
}

TEST(CApi, RoundTrip)
{
    discovery_service_conf_t conf[] = {
        {"users", 5, "http://u/routes", 15, "users_up", 8},
        {"chat", 4, "http://c/openapi.json", 21, "chat_up", 7},
    };
    discovery_error_t err;
    discovery_buf_t t0 = {nullptr, 0};

    ASSERT_EQ(discovery_snapshot_roster(nullptr, 0, conf, 2, 0, 1, &t0, nullptr,
                                        nullptr, &err),
              DISCOVERY_OK);

    discovery_buf_t users = parseRoutes(R"({"status": "ok", "routes": [
        {"path": "/users/{id:int}", "methods": ["GET", "DELETE"],
         "auth_required": true}]})");
    discovery_buf_t chat = parseRoutes(R"({"openapi": "3.1.0", "paths": {
        "/chat/{room}": {"get": {"operationId": "room"}}}})");

    // the glue applies polls with discovery_snapshot_apply_polls, tested in
    // snapshot_test.cpp; here one at a time, through the core
    std::optional<Bytes> t1 =
        applyPoll(t0.data, t0.len,
                  {"users", "http://u/routes", ServiceState::Healthy,
                   users.data, users.len},
                  2, Log());
    ASSERT_TRUE(t1);

    // one service still pending: unknown paths are "not yet", not 404
    discovery_router_t *router =
        discovery_router_create(t1->data(), t1->size(), &err);
    ASSERT_NE(router, nullptr) << err.text;
    discovery_match_t m;
    EXPECT_EQ(discovery_router_match(router, "GET", 3, "/chat/x", 7, 0, &m),
              DISCOVERY_MATCH_PENDING);
    EXPECT_EQ(discovery_router_pending(router), 1);
    discovery_router_destroy(router);

    std::optional<Bytes> t2 =
        applyPoll(t1->data(), t1->size(),
                  {"chat", "http://c/openapi.json", ServiceState::Healthy,
                   chat.data, chat.len},
                  3, Log());
    ASSERT_TRUE(t2);

    router = discovery_router_create(t2->data(), t2->size(), &err);
    ASSERT_NE(router, nullptr) << err.text;
    EXPECT_EQ(discovery_router_pending(router), 0);
    EXPECT_EQ(discovery_router_pending(nullptr), 0);

    EXPECT_EQ(
        discovery_router_match(router, "DELETE", 6, "/users/12", 9, 0, &m),
        DISCOVERY_MATCH_FOUND);
    EXPECT_EQ(m.status, DISCOVERY_MATCH_FOUND);
    EXPECT_EQ(text(m.service, m.service_len), "users");
    EXPECT_EQ(text(m.upstream, m.upstream_len), "users_up");
    EXPECT_EQ(text(m.route, m.route_len), "/users/{id:int}");
    EXPECT_EQ(m.auth_required, 1);
    EXPECT_EQ(m.allow, nullptr);

    EXPECT_EQ(
        discovery_router_match(router, "GET", 3, "/chat/lobby", 11, 1, &m),
        DISCOVERY_MATCH_FOUND);
    EXPECT_EQ(text(m.upstream, m.upstream_len), "chat_up");
    EXPECT_EQ(m.auth_required, 0);

    EXPECT_EQ(discovery_router_match(router, "POST", 4, "/users/12", 9, 0, &m),
              DISCOVERY_MATCH_NOT_ALLOWED);
    EXPECT_EQ(text(m.allow, m.allow_len), "GET, HEAD, DELETE, OPTIONS");
    EXPECT_EQ(text(m.service, m.service_len), "users");

    EXPECT_EQ(discovery_router_match(router, "GET", 3, "/nope", 5, 0, &m),
              DISCOVERY_MATCH_NOT_FOUND);
    EXPECT_EQ(m.service, nullptr);

    discovery_router_destroy(router);

    // the glue's status page over the same table
    discovery_service_stats_t stats[] = {
        {"users", 5, 1795843800, 1795843800, 0, "", 0, 0, 0, 0},
    };
    discovery_buf_t json = {nullptr, 0};
    ASSERT_EQ(discovery_status_render(t2->data(), t2->size(), stats, 1, "", 0,
                                      "1.0", nullptr, 0, &json, &err),
              DISCOVERY_OK);
    std::string page = text(reinterpret_cast<char *>(json.data), json.len);
    EXPECT_NE(page.find("\"generation\":3"), std::string::npos) << page;
    EXPECT_NE(page.find("\"last_check\":\"2026-11-28T05:30:00Z\""),
              std::string::npos)
        << page;

    for (discovery_buf_t *b : {&t0, &users, &chat, &json}) {
        discovery_buf_free(b);
    }
}

// An image answers the same wherever it is copied, and a view of it is
// all a worker needs: nothing of it points at the memory it was built in.
TEST(Router, AnImageIsReadWhereverItLies)
{
    Snapshot snap;
    for (const char *name : {"a", "b"}) {
        Service s;
        s.name = name;
        s.url = std::string("http://") + name;
        s.upstream = std::string(name) + "_up";
        s.state = ServiceState::Healthy;
        snap.services.push_back(s);
    }
    snap.services[1].state = ServiceState::Unhealthy;
    Route dav;
    dav.path = "/dav/{p:path}";
    dav.methods = kGet;
    dav.extensionMethods = {"PROPFIND"};
    Route user;
    user.path = "/users/{id:int}/a-literal-longer-than-sixteen-bytes";
    user.methods = kGet | kPost;
    user.authRequired = true;
    snap.services[0].routeSet.routes = {dav, user};
    Route other;
    other.path = "/b/{x}";
    other.methods = kDelete;
    snap.services[1].routeSet.routes = {other};
    snap.generation = 7;
    checkTable(snap);

    Bytes blob = encodeSnapshot(snap);
    auto built = Router::build(blob.data(), blob.size());

    Router::Image image = Router::image(blob.data(), blob.size());
    ASSERT_EQ(image.size() % Router::kImageAlign, 0u);

    struct alignas(Router::kImageAlign) Line {
        unsigned char bytes[Router::kImageAlign];
    };
    std::vector<Line> first(image.size() / sizeof(Line));
    std::vector<Line> second(first.size());
    image.write(first.front().bytes);
    std::memcpy(second.data(), first.data(), image.size());
    std::memset(first.data(), 0xa5, image.size()); // the old place is gone

    auto view = Router::view(second.front().bytes, image.size());

    const char *const requests[][2] = {
        {"GET", "/dav/a/b"},
        {"PROPFIND", "/dav/x"},
        {"PUT", "/dav/x"},
        {"POST", "/users/1/a-literal-longer-than-"
                 "sixteen-bytes"},
        {"GET", "/users/x/a"},
        {"DELETE", "/b/1"},
        {"GET", "/b/1"},
        {"OPTIONS", "/b/1"},
        {"GET", "/nowhere"},
    };
    for (const auto &req : requests) {
        EXPECT_EQ(lookup(*view, req[1], req[0]), lookup(*built, req[1], req[0]))
            << req[0] << " " << req[1];
    }
    EXPECT_EQ(lookup(*view, "/dav/x", "PUT"),
              "405 a GET, HEAD, OPTIONS, PROPFIND");
    EXPECT_EQ(view->match("DELETE", "/b/1", false).status,
              MatchStatus::Unavailable);
    EXPECT_TRUE(view->match("POST",
                            "/users/1/a-literal-longer-than-sixteen-"
                            "bytes",
                            false)
                    .authRequired);
    EXPECT_EQ(view->generation(), 7u);
    ASSERT_EQ(view->serviceCount(), 2u);
    EXPECT_EQ(view->service(1).name, "b");
    EXPECT_EQ(view->service(1).url, "http://b");
    EXPECT_EQ(view->service(1).upstream, "b_up");
    EXPECT_EQ(view->service(1).state, ServiceState::Unhealthy);
}

TEST(Router, AViewChecksTheImageHeader)
{
    Bytes blob = encodeSnapshot(Snapshot());
    Router::Image image = Router::image(blob.data(), blob.size());

    struct alignas(Router::kImageAlign) Line {
        unsigned char bytes[Router::kImageAlign];
    };
    std::vector<Line> lines(image.size() / sizeof(Line) + 1);
    unsigned char *p = lines.front().bytes;
    image.write(p);

    EXPECT_NO_THROW(Router::view(p, image.size()));
    EXPECT_THROW(Router::view(p, image.size() - 1), Error); // cut short
    EXPECT_THROW(Router::view(nullptr, image.size()), Error);
    EXPECT_THROW(Router::view(p, 16), Error);

    std::memmove(p + 8, p, image.size()); // not aligned
    EXPECT_THROW(Router::view(p + 8, image.size()), Error);

    std::memset(p, 0, image.size()); // no magic
    EXPECT_THROW(Router::view(p, image.size()), Error);
}

TEST(CApi, RouterOverAnImage)
{
    Snapshot snap;
    Service s;
    s.name = "users";
    s.upstream = "users_up";
    s.state = ServiceState::Healthy;
    Route r;
    r.path = "/users/{id:int}";
    r.methods = kGet;
    s.routeSet.routes = {r};
    snap.services = {s};
    Bytes blob = encodeSnapshot(snap);

    discovery_error_t err;
    discovery_buf_t image = {nullptr, 0};
    ASSERT_EQ(discovery_router_image(blob.data(), blob.size(), &image, &err),
              DISCOVERY_OK)
        << err.text;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(image.data)
                  % DISCOVERY_ROUTER_IMAGE_ALIGN,
              0u);

    discovery_router_t *router =
        discovery_router_open(image.data, image.len, &err);
    ASSERT_NE(router, nullptr) << err.text;

    discovery_match_t m;
    EXPECT_EQ(discovery_router_match(router, "GET", 3, "/users/5", 8, 0, &m),
              DISCOVERY_MATCH_FOUND);
    EXPECT_EQ(std::string(m.upstream, m.upstream_len), "users_up");
    discovery_router_destroy(router);

    // not an image: a snapshot
    EXPECT_EQ(discovery_router_open(blob.data(), blob.size(), &err), nullptr);
    EXPECT_STRNE(err.text, "");
    EXPECT_EQ(discovery_router_image(blob.data(), 10, &image, &err),
              DISCOVERY_ERROR);

    discovery_buf_free(&image);
}

TEST(CApi, RouterRejectsCorruptSnapshots)
{
    discovery_error_t err;
    unsigned char junk[40] = {'N', 'G', 'X', 'D'};

    EXPECT_EQ(discovery_router_create(junk, sizeof(junk), &err), nullptr);
    EXPECT_STRNE(err.text, "");
    EXPECT_EQ(discovery_router_create(nullptr, 0, nullptr), nullptr);

    discovery_match_t m;
    EXPECT_EQ(discovery_router_match(nullptr, "GET", 3, "/", 1, 0, &m),
              DISCOVERY_MATCH_NOT_FOUND);
}

} // namespace
} // namespace discovery
