// table_check_test.cpp: overlaps, discovery_overlap deny and the lookup bound.
#include "methods.hpp"
#include "route_template.hpp"
#include "router.hpp"
#include "snapshot.hpp"
#include "snapshot_update.hpp"
#include "table_check.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <tuple>

namespace discovery {
namespace {

// Services s0, s1... in roster order, each with routes {path, methods}.
Snapshot table(
    const std::vector<std::vector<std::pair<std::string, uint32_t>>> &services,
    bool deny = false)
{
    Snapshot snap;
    snap.denyOverlaps = deny;

    for (size_t i = 0; i < services.size(); i++) {
        Service s;
        s.name = "s" + std::to_string(i);
        s.url = "http://" + s.name;
        s.upstream = s.name;
        s.state = ServiceState::Healthy;
        for (const auto &[path, methods] : services[i]) {
            Route r;
            r.path = path;
            r.methods = methods;
            s.routeSet.routes.push_back(r);
        }
        snap.services.push_back(s);
    }

    checkTable(snap);
    return snap;
}

std::vector<std::string> overlaps(const Snapshot &snap)
{
    std::vector<std::string> out;
    for (const Overlap &o : snap.overlaps) {
        out.push_back(describeOverlap(snap, o));
    }
    return out;
}

std::vector<std::string> rejections(const Snapshot &snap)
{
    std::vector<std::string> out;
    for (const Rejection &r : snap.rejections) {
        out.push_back(describeRejection(snap, r));
    }
    return out;
}

constexpr uint32_t kAll = kAllMethods;

TEST(TableCheck, ShadowingIsListedInBothDirections)
{
    Snapshot snap = table({{{"/users/{id}", kAll}},
                           {{"/users/1", kGet | kPut}, {"/{p:path}", kGet}}});

    // s0's route publishes OPTIONS: the lookup goes on to it from s1's
    // /users/1, which does not
    EXPECT_EQ(overlaps(snap),
              (std::vector<std::string>{
                  "route overlap: OPTIONS /users/{id} of \"s0\" shadows "
                  "/users/1 of \"s1\"",
                  "route overlap: GET,HEAD,OPTIONS /users/{id} of \"s0\" "
                  "shadows /{p:path} of \"s1\"",
                  "route overlap: GET,HEAD,PUT /users/1 of \"s1\" shadows "
                  "/users/{id} of \"s0\""}));
    EXPECT_TRUE(snap.rejections.empty());
}

TEST(TableCheck, PrecedenceDecidesWhoShadowsWhom)
{
    // int before float before str; uuid and int never meet
    Snapshot snap = table({{{"/x/{a:float}", kGet}, {"/y/{a:int}", kGet}},
                           {{"/x/{b:int}", kGet}, {"/y/{u:uuid}", kGet},
                            {"/x/{s}", kGet}}});

    EXPECT_EQ(overlaps(snap),
              (std::vector<std::string>{
                  "route overlap: GET,HEAD,OPTIONS /x/{a:float} of \"s0\" "
                  "shadows /x/{s} of \"s1\"",
                  "route overlap: GET,HEAD,OPTIONS /x/{b:int} of \"s1\" "
                  "shadows /x/{a:float} of \"s0\""}));
}

TEST(TableCheck, PrecedenceIsDecidedFromTheLeft)
{
    // /a/{x}/c: a literal second segment wins whatever follows
    Snapshot snap = table({{{"/a/{x}/c", kGet}}, {{"/a/b/{y}", kGet}}});

    EXPECT_EQ(overlaps(snap),
              (std::vector<std::string>{
                  "route overlap: GET,HEAD,OPTIONS /a/b/{y} of \"s1\" shadows "
                  "/a/{x}/c of \"s0\""}));

    // different lengths never meet, and neither do other literals
    snap = table({{{"/a/{x}", kGet}, {"/b/c", kGet}},
                  {{"/a/b/c", kGet}, {"/b/d", kGet}}});
    EXPECT_TRUE(snap.overlaps.empty());
}

TEST(TableCheck, NoOverlapWithoutCommonMethodsOrWithinOneService)
{
    Snapshot snap = table({{{"/users/{id}", kPost}, {"/users/me", kGet}},
                           {{"/users/me", kDelete}}});
    EXPECT_TRUE(snap.overlaps.empty());

    // HEAD is served by GET routes
    snap = table({{{"/users/{id}", kHead}}, {{"/users/me", kGet}}});
    EXPECT_EQ(overlaps(snap),
              (std::vector<std::string>{
                  "route overlap: HEAD,OPTIONS /users/me of \"s1\" shadows "
                  "/users/{id} of \"s0\""}));
}

TEST(TableCheck, TheSameShapeIsAConflictNotAnOverlap)
{
    Snapshot snap = table({{{"/users/{id}", kGet}}, {{"/users/{n}", kGet}}});

    EXPECT_TRUE(snap.overlaps.empty());
    ASSERT_EQ(snap.conflicts.size(), 1u);
    EXPECT_EQ(describeConflict(snap, snap.conflicts[0]),
              "route conflict: GET /users/{n} of \"s1\" is shadowed by "
              "/users/{id} of \"s0\"");
}

TEST(TableCheck, PathParameterSiblingsTakeWhatNothingElseDoes)
{
    Snapshot snap = table({{{"/files/{p:path}", kGet}},
                           {{"/files/readme", kGet}, {"/files/{p:path}", kPost}}});

    EXPECT_EQ(overlaps(snap),
              (std::vector<std::string>{
                  "route overlap: GET,HEAD,OPTIONS /files/readme of \"s1\" "
                  "shadows /files/{p:path} of \"s0\""}));
}

TEST(TableCheck, PathParameterInTheMiddle)
{
    // the same shape: a conflict
    Snapshot snap = table(
        {{{"/files/{a:path}/meta", kGet}}, {{"/files/{b:path}/meta", kGet}}});
    EXPECT_TRUE(snap.overlaps.empty());
    ASSERT_EQ(snap.conflicts.size(), 1u);
    EXPECT_EQ(describeConflict(snap, snap.conflicts[0]),
              "route conflict: GET /files/{b:path}/meta of \"s1\" is "
              "shadowed by /files/{a:path}/meta of \"s0\"");

    // {x} takes /files/a/meta, not /files/a/b/meta
    snap = table({{{"/files/{p:path}/meta", kGet}},
                  {{"/files/{x}/meta", kGet},
                   {"/files/{x}", kGet},
                   {"/files/{x}/{n:int}", kGet}}});
    EXPECT_EQ(overlaps(snap),
              (std::vector<std::string>{
                  "route overlap: GET,HEAD,OPTIONS /files/{x}/meta of \"s1\" "
                  "shadows /files/{p:path}/meta of \"s0\""}));

    // fixed segments after the parameter face the end of the path
    snap = table({{{"/files/{p:path}/{n:int}/raw", kGet}},
                  {{"/files/a/7/raw", kGet},
                   {"/files/a/x/raw", kGet},
                   {"/files/1/2/3/raw", kGet},
                   {"/files/7/raw", kGet}}});
    EXPECT_EQ(overlaps(snap),
              (std::vector<std::string>{
                  "route overlap: GET,HEAD,OPTIONS /files/a/7/raw of \"s1\" "
                  "shadows /files/{p:path}/{n:int}/raw of \"s0\"",
                  "route overlap: GET,HEAD,OPTIONS /files/1/2/3/raw of \"s1\" "
                  "shadows /files/{p:path}/{n:int}/raw of \"s0\""}));
}

TEST(TableCheck, MoreSegmentsAfterThePathParameterComeFirst)
{
    Snapshot snap =
        table({{{"/{p:path}", kGet}, {"/f/{p:path}", kGet}},
               {{"/f/{q:path}/meta", kGet}, {"/{q:path}/x/{n:int}", kGet}}});

    EXPECT_EQ(overlaps(snap),
              (std::vector<std::string>{
                  "route overlap: GET,HEAD,OPTIONS /f/{p:path} of \"s0\" "
                  "shadows /{q:path}/x/{n:int} of \"s1\"",
                  "route overlap: GET,HEAD,OPTIONS /f/{q:path}/meta of \"s1\" "
                  "shadows /{p:path} of \"s0\"",
                  "route overlap: GET,HEAD,OPTIONS /f/{q:path}/meta of \"s1\" "
                  "shadows /f/{p:path} of \"s0\"",
                  "route overlap: GET,HEAD,OPTIONS /{q:path}/x/{n:int} of "
                  "\"s1\" shadows /{p:path} of \"s0\""}));

    // a catch-all still shadows no one, and deny keeps it last
    snap = table({{{"/f/{q:path}/meta", kGet}}, {{"/{p:path}", kGet}}}, true);
    EXPECT_TRUE(snap.rejections.empty());
    snap = table({{{"/f/{p:path}", kGet}}, {{"/f/{q:path}/meta", kGet}}}, true);
    EXPECT_EQ(rejections(snap),
              (std::vector<std::string>{
                  "route \"/f/{q:path}/meta\" of \"s1\" rejected: shadows "
                  "s0 /f/{p:path}"}));
}

/*
 * Every overlap checkTable() lists, and only those, compared with what a
 * brute force finds over every request path of up to 5 segments: for each,
 * the routes that match it, in the router's order (checked against the
 * router itself).  Templates of up to 3 segments need no longer request
 * to meet.
 */
struct BruteRoute {
    uint32_t service;
    uint32_t route;
    Template tpl;
    std::vector<int> order; // ranks from the left
};

bool bruteMatches(const Template &tpl, const std::vector<std::string> &segs)
{
    size_t n = tpl.segments.size();
    size_t at = n; // the {x:path}
    for (size_t i = 0; i < n; i++) {
        if (tpl.segments[i].kind == SegmentKind::Path) {
            at = i;
        }
    }
    if (at == n ? segs.size() != n : segs.size() < n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (i == at) {
            continue;
        }
        // segments after the parameter line up with the end of the path
        const std::string &s = i < at ? segs[i] : segs[segs.size() - (n - i)];
        const Segment &seg = tpl.segments[i];
        if (seg.kind == SegmentKind::Literal ? s != seg.text
                                             : !segmentMatches(seg.kind, s)) {
            return false;
        }
    }
    return true;
}

TEST(TableCheck, OverlapsAgreeWithBruteForce)
{
    const char *segments[] = {"a",         "1",   "",        "{i:int}",
                              "{f:float}", "{s}", "{p:path}"};
    const char *requestSegments[] = {"a", "1", "1.5", "x", ""};
    std::vector<std::vector<std::string>> requests{{}};
    for (size_t len = 1, from = 0; len <= 5; len++) {
        size_t to = requests.size();
        for (size_t i = from; i < to; i++) {
            for (const char *seg : requestSegments) {
                requests.push_back(requests[i]);
                requests.back().push_back(seg);
            }
        }
        from = to;
    }
    requests.erase(requests.begin());

    std::mt19937 rng(11);

    for (int round = 0; round < 100; round++) {
        std::vector<std::vector<std::pair<std::string, uint32_t>>> services(3);
        for (auto &routes : services) {
            for (size_t r = rng() % 4; r > 0; r--) {
                std::string path;
                for (size_t k = 1 + rng() % 3; k > 0; k--) {
                    std::string seg = segments[rng() % 7];
                    if (seg == "{p:path}"
                        && path.find("{p:path}") != std::string::npos) {
                        seg = "{s}";
                    }
                    path += "/" + seg;
                }
                routes.push_back({path, kGet});
            }
        }
        Snapshot snap = table(services);
        ASSERT_TRUE(snap.rejections.empty());

        // the routes that kept GET: the first of each shape
        std::vector<BruteRoute> routed;
        std::vector<std::string> shapes;
        for (uint32_t s = 0; s < snap.services.size(); s++) {
            const auto &routes = snap.services[s].routeSet.routes;
            for (uint32_t r = 0; r < routes.size(); r++) {
                BruteRoute b{s, r, {}, {}};
                ASSERT_TRUE(compileTemplate(routes[r].path, b.tpl));
                std::string shape = templateShape(b.tpl);
                if (std::find(shapes.begin(), shapes.end(), shape)
                    != shapes.end()) {
                    continue;
                }
                shapes.push_back(shape);
                size_t n = b.tpl.segments.size();
                for (size_t i = 0; i < n; i++) {
                    static const int ranks[] = {0, 4, 1, 2, 3, 5};
                    auto kind = static_cast<int>(b.tpl.segments[i].kind);
                    // more segments after a path parameter: earlier
                    int after = static_cast<int>(n - i - 1);
                    b.order.push_back(ranks[kind] == 5 ? 5 + 32 - after
                                                       : ranks[kind]);
                }
                routed.push_back(std::move(b));
            }
        }

        Bytes blob = encodeSnapshot(snap);
        auto router = Router::build(blob.data(), blob.size());
        std::set<std::tuple<uint32_t, uint32_t, uint32_t, uint32_t>> want;

        for (const auto &segs : requests) {
            std::vector<const BruteRoute *> hits;
            for (const BruteRoute &b : routed) {
                if (bruteMatches(b.tpl, segs)) {
                    hits.push_back(&b);
                }
            }
            if (hits.empty()) {
                continue;
            }
            std::sort(hits.begin(), hits.end(),
                      [](const BruteRoute *x, const BruteRoute *y) {
                          return x->order < y->order;
                      });

            std::string path;
            for (const std::string &seg : segs) {
                path += "/" + seg;
            }
            const BruteRoute &first = *hits[0];
            ASSERT_EQ(
                router->match("GET", path, false).route,
                snap.services[first.service].routeSet.routes[first.route].path)
                << path << " (round " << round << ")";

            for (size_t i = 0; i < hits.size(); i++) {
                for (size_t j = i + 1; j < hits.size(); j++) {
                    if (hits[i]->service != hits[j]->service) {
                        want.insert({hits[i]->service, hits[i]->route,
                                     hits[j]->service, hits[j]->route});
                    }
                }
            }
        }

        std::set<std::tuple<uint32_t, uint32_t, uint32_t, uint32_t>> got;
        for (const Overlap &o : snap.overlaps) {
            got.insert(
                {o.service, o.route, o.shadowedService, o.shadowedRoute});
        }
        std::string table;
        for (const auto &routes : services) {
            table += "|";
            for (const auto &route : routes) {
                table += " " + route.first;
            }
        }
        ASSERT_EQ(got, want) << table << " (round " << round << ")";
    }
}

// (service, route, service, route): route `by` and route `from`
using RoutePair = std::tuple<uint32_t, uint32_t, uint32_t, uint32_t>;

// "/a of s1 takes from /b of s0"
std::string pairText(const Snapshot &snap, const RoutePair &pair)
{
    auto [s, r, t, r2] = pair;
    return snap.services[s].routeSet.routes[r].path + " of s"
           + std::to_string(s) + " takes from "
           + snap.services[t].routeSet.routes[r2].path + " of s"
           + std::to_string(t);
}

/*
 * What the router does with `snap`'s routes (the rejected ones left out):
 * route `by` takes method m from route `from` of another shape when a
 * request for m, to a path both templates match, goes to from's route in
 * the table without by's and to by's in the table.  Of the same shape, by
 * takes the OPTIONS requests that go to from's route, which does not
 * publish OPTIONS, when by's does not either (the rest is a conflict's
 * business).  Paths of up to 3 segments of "7", "8" and "x", for GET,
 * HEAD, POST and OPTIONS.
 */
std::map<RoutePair, uint32_t> requestsMoved(const Snapshot &snap)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "OPTIONS"};
    static const uint32_t bits[] = {kGet, kHead, kPost, kOptions};

    std::vector<std::vector<std::string>> requests{{}};
    for (size_t len = 1, from = 0; len <= 3; len++) {
        size_t to = requests.size();
        for (size_t i = from; i < to; i++) {
            for (const char *seg : {"7", "8", "x"}) {
                requests.push_back(requests[i]);
                requests.back().push_back(seg);
            }
        }
        from = to;
    }
    requests.erase(requests.begin());

    auto tplOf = [&](uint32_t s, uint32_t r) {
        Template tpl;
        EXPECT_TRUE(
            compileTemplate(snap.services[s].routeSet.routes[r].path, tpl));
        return tpl;
    };
    auto indexOf = [&](uint32_t s, std::string_view path) {
        const auto &routes = snap.services[s].routeSet.routes;
        auto it = std::find_if(routes.begin(), routes.end(),
                               [&](const Route &r) { return r.path == path; });
        EXPECT_TRUE(it != routes.end()) << path;
        return static_cast<uint32_t>(it - routes.begin());
    };

    // the routes the table leaves out match nothing in the one without by
    Snapshot live = snap;
    live.denyOverlaps = false;
    for (const Rejection &r : snap.rejections) {
        live.services[r.service].routeSet.routes[r.route].path = "/unused";
    }

    Bytes blob = encodeSnapshot(snap);
    auto full = Router::build(blob.data(), blob.size());
    std::map<RoutePair, uint32_t> moved;

    for (uint32_t s = 0; s < snap.services.size(); s++) {
        for (uint32_t r = 0; r < snap.services[s].routeSet.routes.size(); r++) {
            const std::string &path = snap.services[s].routeSet.routes[r].path;
            auto routerWith = [&](auto change) {
                Snapshot changed = live;
                change(changed.services[s].routeSet.routes[r]);
                checkTable(changed);
                Bytes image = encodeSnapshot(changed);
                return Router::build(image.data(), image.size());
            };
            auto rest = routerWith([](Route &by) { by.path = "/unused"; });
            // by in its place, without OPTIONS (PUT: no request tries it)
            auto plain = routerWith([](Route &by) {
                by.methods = (by.methods & ~kOptions) | kPut;
            });
            Template by = tplOf(s, r);

            for (const auto &segs : requests) {
                std::string target;
                for (const std::string &seg : segs) {
                    target += "/" + seg;
                }
                for (size_t m = 0; m < 4; m++) {
                    Match a = full->match(methods[m], target, false);
                    Match b = rest->match(methods[m], target, false);
                    if (a.status != MatchStatus::Found || a.serviceIndex != s
                        || a.route != path || b.status != MatchStatus::Found
                        || b.serviceIndex == s) {
                        continue;
                    }
                    uint32_t t = b.serviceIndex;
                    uint32_t r2 = indexOf(t, b.route);
                    Template from = tplOf(t, r2);
                    // not where a trailing slash led
                    if (bruteMatches(by, segs) && bruteMatches(from, segs)
                        && templateShape(by) != templateShape(from)) {
                        moved[{s, r, t, r2}] |= bits[m];
                    }
                }

                Match a = full->match("OPTIONS", target, false);
                Match c = plain->match("OPTIONS", target, false);
                if (a.status != MatchStatus::Found || a.serviceIndex != s
                    || a.route != path || c.status != MatchStatus::Found
                    || c.serviceIndex == s || !bruteMatches(by, segs)) {
                    continue;
                }
                uint32_t t = c.serviceIndex;
                uint32_t r2 = indexOf(t, c.route);
                if (templateShape(tplOf(t, r2)) == templateShape(by)
                    && !(snap.services[t].routeSet.routes[r2].methods
                         & kOptions)) {
                    moved[{s, r, t, r2}] |= kOptions;
                }
            }
        }
    }
    return moved;
}

/*
 * An overlap's methods, checked against the router: the requests one
 * route takes from another's (requestsMoved), on random tables of routes
 * that publish GET, POST and OPTIONS.  Every such request is in the overlap
 * listed for the pair; with one route in each of two services, the
 * overlaps are exactly those requests (with more, a third route can take a
 * request first: overlaps are listed by pair).  With deny, no route of the
 * table takes a request from a route of an earlier service, and with two
 * routes the later is rejected exactly when it would take some.
 */
TEST(TableCheck, OverlapMethodsAreTheRequestsTheRouterMoves)
{
    const char *segments[] = {"7", "x", "{i:int}", "{s}", "{p:path}"};
    const uint32_t publishable[] = {kGet, kPost, kOptions};
    constexpr uint32_t kTried = kGet | kHead | kPost | kOptions;

    std::mt19937 rng(5);
    size_t moved = 0, options = 0, rejected = 0;

    for (int round = 0; round < 300; round++) {
        bool two = round % 2 == 0; // two services, one route each
        std::vector<std::vector<std::pair<std::string, uint32_t>>> services(
            two ? 2 : 2 + rng() % 2);
        for (auto &routes : services) {
            for (size_t r = two ? 1 : 1 + rng() % 2; r > 0; r--) {
                std::string path;
                for (size_t k = 1 + rng() % 2; k > 0; k--) {
                    std::string seg = segments[rng() % 5];
                    if (seg == "{p:path}"
                        && path.find("{p:path}") != std::string::npos) {
                        seg = "{s}";
                    }
                    path += "/" + seg;
                }
                uint32_t published = 0;
                while (published == 0) {
                    for (uint32_t bit : publishable) {
                        published |= rng() % 2 ? bit : 0;
                    }
                }
                if (std::none_of(routes.begin(), routes.end(),
                                 [&](const auto &route) {
                                     return route.first == path;
                                 })) {
                    routes.push_back({path, published});
                }
            }
        }
        std::string text;
        for (const auto &routes : services) {
            text += " |";
            for (const auto &[path, published] : routes) {
                text += " " + path + " " + joinMethods(published, ",");
            }
        }

        Snapshot snap = table(services);
        ASSERT_TRUE(snap.rejections.empty()) << text;

        std::map<RoutePair, uint32_t> listed;
        for (const Overlap &o : snap.overlaps) {
            listed[{o.service, o.route, o.shadowedService, o.shadowedRoute}] =
                o.methods & kTried;
        }
        std::map<RoutePair, uint32_t> want = requestsMoved(snap);

        for (const auto &[pair, methods] : want) {
            std::string which = " (" + pairText(snap, pair) + ": "
                                + joinMethods(methods, ",") + ")";
            auto it = listed.find(pair);
            ASSERT_TRUE(it != listed.end()) << text << which;
            EXPECT_EQ(methods & ~it->second, 0u) << text << which;
            moved++;
            options += (methods & kOptions) != 0;
        }
        if (two) {
            EXPECT_EQ(listed, want) << text;
        }

        Snapshot denied = table(services, true);
        for (const auto &[pair, methods] : requestsMoved(denied)) {
            EXPECT_GT(std::get<2>(pair), std::get<0>(pair))
                << text << " (" << pairText(denied, pair) << ": "
                << joinMethods(methods, ",") << ")";
        }
        if (two) {
            bool takes = want.count({1, 0, 0, 0}) != 0;
            EXPECT_EQ(denied.rejections.size(), takes ? 1u : 0u) << text;
            rejected += takes;
        }
    }

    // the tables had what the test is about
    EXPECT_GT(moved, 100u);
    EXPECT_GT(options, 50u);
    EXPECT_GT(rejected, 20u);
}

TEST(TableCheck, DenyRejectsWhatShadowsAnEarlierService)
{
    Snapshot snap = table({{{"/users/{id}", kAll}},
                           {{"/users/1", kGet | kPut}, {"/{p:path}", kGet}}},
                          true);

    EXPECT_EQ(rejections(snap),
              (std::vector<std::string>{
                  "route \"/users/1\" of \"s1\" rejected: shadows s0 "
                  "/users/{id}"}));

    // what an earlier service shadows is its own business
    EXPECT_EQ(overlaps(snap),
              (std::vector<std::string>{
                  "route overlap: GET,HEAD,OPTIONS /users/{id} of \"s0\" "
                  "shadows /{p:path} of \"s1\""}));

    Bytes blob = encodeSnapshot(snap);
    auto router = Router::build(blob.data(), blob.size());
    EXPECT_EQ(router->match("PUT", "/users/1", false).service, "s0");
    EXPECT_EQ(router->match("GET", "/about", false).service, "s1");
}

TEST(TableCheck, ARejectedRouteClaimsNothing)
{
    // s1's route shadows s0's for GET and is rejected: the POST it would
    // have held goes to s2, whose route has the same shape (and takes no
    // preflights: s0's route publishes OPTIONS)
    Snapshot snap = table({{{"/a/{y}", kGet | kOptions}},
                           {{"/a/{x:int}", kGet | kPost}},
                           {{"/a/{z:int}", kPost}}},
                          true);

    EXPECT_EQ(rejections(snap),
              (std::vector<std::string>{
                  "route \"/a/{x:int}\" of \"s1\" rejected: shadows s0 "
                  "/a/{y}"}));
    EXPECT_TRUE(snap.conflicts.empty());

    Bytes blob = encodeSnapshot(snap);
    auto router = Router::build(blob.data(), blob.size());
    EXPECT_EQ(router->match("POST", "/a/5", false).service, "s2");
    EXPECT_EQ(router->match("GET", "/a/5", false).service, "s0");
    EXPECT_EQ(router->match("OPTIONS", "/a/5", false).service, "s0");
}

TEST(TableCheck, DenyDoesNotRejectSameShapeConflicts)
{
    Snapshot snap = table({{{"/users/{id}", kGet}}, {{"/users/{n}", kGet}}},
                          true);

    EXPECT_TRUE(snap.rejections.empty());
    EXPECT_EQ(snap.conflicts.size(), 1u);
}

// Where the router sends a request: "s1 /users/7", "405 s0 GET, HEAD, OPTIONS".
std::string routed(const Snapshot &snap, const char *method, const char *path)
{
    Bytes blob = encodeSnapshot(snap);
    auto router = Router::build(blob.data(), blob.size());
    Match m = router->match(method, path, false); // views into the router

    switch (m.status) {
    case MatchStatus::Found:
        return std::string(m.service) + " " + std::string(m.route);
    case MatchStatus::NotAllowed:
        return "405 " + std::string(m.service) + " " + std::string(m.allow);
    default:
        return "no route";
    }
}

/*
 * A later service's literal beside an earlier service's typed route, with
 * other methods: the lookup goes on past the literal for GET, which the
 * literal does not serve, but an OPTIONS request no route publishes is the
 * first route's of the first shape that matches: the literal's.
 */
TEST(TableCheck, ALiteralWithOtherMethodsTakesThePreflights)
{
    Snapshot snap = table({{{"/users/{id:int}", kGet}}, {{"/users/7", kPost}}});

    EXPECT_EQ(routed(snap, "GET", "/users/7"), "s0 /users/{id:int}");
    EXPECT_EQ(routed(snap, "HEAD", "/users/7"), "s0 /users/{id:int}");
    EXPECT_EQ(routed(snap, "POST", "/users/7"), "s1 /users/7");
    EXPECT_EQ(routed(snap, "OPTIONS", "/users/7"), "s1 /users/7");
    EXPECT_EQ(routed(snap, "OPTIONS", "/users/8"), "s0 /users/{id:int}");
    // a method neither publishes: the 405 of the first route that matches
    EXPECT_EQ(routed(snap, "PUT", "/users/7"), "405 s1 POST, OPTIONS");

    EXPECT_TRUE(snap.rejections.empty());
    EXPECT_EQ(overlaps(snap),
              (std::vector<std::string>{
                  "route overlap: OPTIONS /users/7 of \"s1\" shadows "
                  "/users/{id:int} of \"s0\""}));
}

TEST(TableCheck, DenyRejectsALiteralThatWouldTakeThePreflights)
{
    Snapshot snap =
        table({{{"/users/{id:int}", kGet}}, {{"/users/7", kPost}}}, true);

    EXPECT_EQ(rejections(snap),
              (std::vector<std::string>{
                  "route \"/users/7\" of \"s1\" rejected: shadows s0 "
                  "/users/{id:int}"}));
    EXPECT_TRUE(snap.overlaps.empty());

    EXPECT_EQ(routed(snap, "GET", "/users/7"), "s0 /users/{id:int}");
    EXPECT_EQ(routed(snap, "OPTIONS", "/users/7"), "s0 /users/{id:int}");
    EXPECT_EQ(routed(snap, "POST", "/users/7"), "405 s0 GET, HEAD, OPTIONS");
}

/*
 * A route that publishes OPTIONS takes the preflights of the routes the
 * lookup meets before it that do not: it goes on until it finds OPTIONS.
 */
TEST(TableCheck, ARouteThatPublishesOptionsTakesThePreflightsOfThoseBefore)
{
    // s1 takes nothing of s0's, but s0 takes s1's preflights, as an
    // earlier service may
    Snapshot snap = table(
        {{{"/users/{id:int}", kGet | kOptions}}, {{"/users/7", kPost}}}, true);

    EXPECT_TRUE(snap.rejections.empty());
    EXPECT_EQ(overlaps(snap),
              (std::vector<std::string>{
                  "route overlap: OPTIONS /users/{id:int} of \"s0\" shadows "
                  "/users/7 of \"s1\""}));
    EXPECT_EQ(routed(snap, "OPTIONS", "/users/7"), "s0 /users/{id:int}");
    EXPECT_EQ(routed(snap, "POST", "/users/7"), "s1 /users/7");

    // a later service's: rejected
    snap = table(
        {{{"/users/7", kPost}}, {{"/users/{id:int}", kGet | kOptions}}}, true);
    EXPECT_EQ(rejections(snap),
              (std::vector<std::string>{
                  "route \"/users/{id:int}\" of \"s1\" rejected: shadows s0 "
                  "/users/7"}));
    EXPECT_EQ(routed(snap, "OPTIONS", "/users/7"), "s0 /users/7");

    // a catch-all for preflights comes after every route, and takes the
    // preflights of all that do not publish OPTIONS
    snap = table({{{"/users/{id:int}", kGet}, {"/cors", kGet | kOptions}},
                  {{"/{p:path}", kOptions}}});
    EXPECT_EQ(overlaps(snap),
              (std::vector<std::string>{
                  "route overlap: OPTIONS /cors of \"s0\" shadows /{p:path} "
                  "of \"s1\"",
                  "route overlap: OPTIONS /{p:path} of \"s1\" shadows "
                  "/users/{id:int} of \"s0\""}));
    EXPECT_EQ(routed(snap, "OPTIONS", "/users/7"), "s1 /{p:path}");
    EXPECT_EQ(routed(snap, "OPTIONS", "/cors"), "s0 /cors");
    snap =
        table({{{"/users/{id:int}", kGet}}, {{"/{p:path}", kOptions}}}, true);
    EXPECT_EQ(rejections(snap),
              (std::vector<std::string>{
                  "route \"/{p:path}\" of \"s1\" rejected: shadows s0 "
                  "/users/{id:int}"}));

    // where both publish OPTIONS, the first on the path takes them
    snap = table({{{"/users/{id:int}", kGet | kOptions}},
                  {{"/users/7", kPost | kOptions}}});
    EXPECT_EQ(overlaps(snap),
              (std::vector<std::string>{
                  "route overlap: OPTIONS /users/7 of \"s1\" shadows "
                  "/users/{id:int} of \"s0\""}));
    EXPECT_EQ(routed(snap, "OPTIONS", "/users/7"), "s1 /users/7");

    // a literal that publishes only OPTIONS
    snap = table({{{"/users/{id:int}", kGet}}, {{"/users/7", kOptions}}}, true);
    EXPECT_EQ(rejections(snap),
              (std::vector<std::string>{
                  "route \"/users/7\" of \"s1\" rejected: shadows s0 "
                  "/users/{id:int}"}));
}

/*
 * The preflights of a shape are its first route's, or the one route's of
 * the shape that publishes OPTIONS: a later route of the same shape takes
 * none from the routes it shadows.
 */
TEST(TableCheck, ThePreflightsOfAShapeAreItsFirstRoutes)
{
    Snapshot snap = table({{{"/users/{id:int}", kGet}, {"/users/7", kPut}},
                           {{"/users/7", kPost}}},
                          true);

    EXPECT_TRUE(snap.rejections.empty());
    EXPECT_TRUE(snap.overlaps.empty());
    EXPECT_EQ(routed(snap, "OPTIONS", "/users/7"), "s0 /users/7");
    EXPECT_EQ(routed(snap, "POST", "/users/7"), "s1 /users/7");
    EXPECT_EQ(routed(snap, "GET", "/users/7"), "s0 /users/{id:int}");

    // s1 leads the shape and takes s0's preflights; s2 takes nothing
    snap = table({{{"/users/{id:int}", kGet}},
                  {{"/users/7", kPut}},
                  {{"/users/7", kPost}}});
    EXPECT_EQ(overlaps(snap),
              (std::vector<std::string>{
                  "route overlap: OPTIONS /users/7 of \"s1\" shadows "
                  "/users/{id:int} of \"s0\""}));
    EXPECT_EQ(routed(snap, "OPTIONS", "/users/7"), "s1 /users/7");

    // unless s2 publishes OPTIONS: then it takes them, and s1 none
    snap = table({{{"/users/{id:int}", kGet}},
                  {{"/users/7", kPut}},
                  {{"/users/7", kPost | kOptions}}});
    EXPECT_EQ(overlaps(snap),
              (std::vector<std::string>{
                  "route overlap: OPTIONS /users/7 of \"s2\" shadows "
                  "/users/{id:int} of \"s0\"",
                  "route overlap: OPTIONS /users/7 of \"s2\" shadows "
                  "/users/7 of \"s1\""}));
    EXPECT_EQ(routed(snap, "OPTIONS", "/users/7"), "s2 /users/7");
}

/*
 * A route that publishes OPTIONS in the shape of another service's route
 * that does not takes its preflights: no conflict, the other route never
 * claimed OPTIONS, but it answered them as its shape's first.
 */
TEST(TableCheck, OptionsInTheShapeOfAnotherServicesRouteTakesItsPreflights)
{
    Snapshot snap =
        table({{{"/users/{id}", kGet}}, {{"/users/{n}", kOptions}}});

    EXPECT_TRUE(snap.conflicts.empty());
    EXPECT_EQ(overlaps(snap),
              (std::vector<std::string>{
                  "route overlap: OPTIONS /users/{n} of \"s1\" shadows "
                  "/users/{id} of \"s0\""}));
    EXPECT_EQ(routed(snap, "OPTIONS", "/users/x"), "s1 /users/{n}");

    snap = table({{{"/users/{id}", kGet}}, {{"/users/{n}", kOptions}}}, true);
    EXPECT_EQ(rejections(snap),
              (std::vector<std::string>{
                  "route \"/users/{n}\" of \"s1\" rejected: shadows s0 "
                  "/users/{id}"}));
    EXPECT_EQ(routed(snap, "OPTIONS", "/users/x"), "s0 /users/{id}");

    // the first route of the shape publishing OPTIONS keeps what it had
    snap = table({{{"/users/{id}", kGet | kOptions}}, {{"/users/{n}", kPost}}},
                 true);
    EXPECT_TRUE(snap.rejections.empty());
    EXPECT_TRUE(snap.overlaps.empty());
    EXPECT_EQ(routed(snap, "OPTIONS", "/users/x"), "s0 /users/{id}");
    EXPECT_EQ(routed(snap, "POST", "/users/x"), "s1 /users/{n}");
}

// Every mix of `segments` over `depth` levels.
std::vector<std::string> lattice(const std::vector<std::string> &segments,
                                 size_t depth)
{
    std::vector<std::string> paths{""};
    for (size_t d = 0; d < depth; d++) {
        std::vector<std::string> next;
        for (const std::string &p : paths) {
            for (const std::string &s : segments) {
                next.push_back(p + "/" + s);
            }
        }
        paths.swap(next);
    }
    return paths;
}

TEST(TableCheck, CostlyRoutesAreRejectedAndLookupsStayBounded)
{
    std::vector<std::pair<std::string, uint32_t>> routes;
    for (const std::string &p :
         lattice({"1", "{i:int}", "{f:float}", "{s:str}"}, 7)) {
        routes.push_back({p, kPost});
    }

    Snapshot snap = table({{{"/small/{id:int}", kGet}}, routes});

    ASSERT_FALSE(snap.rejections.empty());
    EXPECT_LT(snap.rejections.size(), routes.size());
    EXPECT_NE(rejections(snap)[0].find("lookup too costly: a request could "
                                       "visit "),
              std::string::npos);
    EXPECT_NE(rejections(snap)[0].find(" trie nodes, the limit is 256"),
              std::string::npos);

    Bytes blob = encodeSnapshot(snap);
    auto router = Router::build(blob.data(), blob.size());
    std::mt19937 rng(7);
    const char *segments[] = {"1", "2", "1.5", "x", ""};
    uint32_t most = 0;

    for (int i = 0; i < 20000; i++) {
        std::string path;
        size_t depth = rng() % 9;
        for (size_t d = 0; d < depth; d++) {
            path += "/";
            path += segments[rng() % 5];
        }
        if (path.empty()) {
            path = "/";
        }
        uint32_t visits = 0;
        router->match("GET", path, false, &visits);
        most = std::max(most, visits);
        // two walks at most: the path, and it with its trailing slash
        // toggled when nothing has it
        EXPECT_LE(visits, 2 * kLookupVisitLimit) << path;
    }

    // the worst paths come near the bound: it is what limits them
    EXPECT_GT(most, kLookupVisitLimit);
    EXPECT_EQ(router->match("GET", "/small/3", false).route,
              "/small/{id:int}");
}

TEST(TableCheck, WalksBelowAPathParameterCountTowardsTheBound)
{
    // below one {x:path}, routes with 1 to 5 segments after it, every mix
    // of literal and typed ones: a lookup walks the subtree once per length
    std::vector<std::pair<std::string, uint32_t>> routes;
    for (size_t depth = 1; depth <= 5; depth++) {
        for (const std::string &p :
             lattice({"1", "{i:int}", "{f:float}", "{s:str}"}, depth)) {
            routes.push_back({"/m/{p:path}" + p, kPost});
        }
    }

    Snapshot snap = table({{{"/small/{id:int}", kGet}}, routes});

    ASSERT_FALSE(snap.rejections.empty());
    EXPECT_LT(snap.rejections.size(), routes.size());
    EXPECT_NE(rejections(snap)[0].find("lookup too costly"), std::string::npos);

    Bytes blob = encodeSnapshot(snap);
    auto router = Router::build(blob.data(), blob.size());
    std::mt19937 rng(7);
    const char *segments[] = {"1", "2", "1.5", "x", ""};
    uint32_t most = 0;

    for (int i = 0; i < 20000; i++) {
        std::string path = "/m";
        size_t depth = rng() % 9;
        for (size_t d = 0; d < depth; d++) {
            path += "/";
            path += segments[rng() % 5];
        }
        uint32_t visits = 0;
        router->match("GET", path, false, &visits);
        most = std::max(most, visits);
        EXPECT_LE(visits, 2 * kLookupVisitLimit) << path;
    }

    EXPECT_GT(most, kLookupVisitLimit / 2);
    EXPECT_EQ(router->match("GET", "/small/3", false).route, "/small/{id:int}");
}

TEST(TableCheck, OrdinaryTablesAreFarFromTheBound)
{
    std::vector<std::pair<std::string, uint32_t>> routes;
    for (int i = 0; i < 2000; i++) {
        std::string r = "/r" + std::to_string(i);
        routes.push_back({r, kGet});
        routes.push_back({r + "/{id:int}", kGet | kPut});
        routes.push_back({r + "/{id}/items/{item}", kGet});
        routes.push_back({r + "/{id}/items/special", kPost});
    }

    Snapshot snap = table({routes, {{"/{p:path}", kGet}}});
    EXPECT_TRUE(snap.rejections.empty());
}

/*
 * Extension methods are numbered in roster order as routes are kept; a
 * route that would need more than the table has room for is rejected, and
 * the names it would have added are not taken.
 */
TEST(TableCheck, ExtensionMethodsAreNumberedUpToTheLimit)
{
    auto names = [](size_t from, size_t to) {
        MethodNames out;
        for (size_t i = from; i < to; i++) {
            out.push_back("M" + std::string(1, char('A' + i)));
        }
        return out;
    };
    Snapshot snap;
    for (size_t i = 0; i < 2; i++) {
        Service s;
        s.name = "s" + std::to_string(i);
        snap.services.push_back(s);
    }
    auto add = [&](size_t service, std::string path, MethodNames methods) {
        Route r;
        r.path = std::move(path);
        r.extensionMethods = std::move(methods);
        snap.services[service].routeSet.routes.push_back(r);
    };
    add(0, "/dav", names(0, 16));
    add(1, "/dav", {"MA", "MQ"});          // MA conflicts, MQ is new
    add(1, "/more", names(10, 24));        // 7 new: two too many
    add(1, "/last", names(17, 22));        // 5 new: /more took none

    checkTable(snap);

    EXPECT_EQ(snap.extensionMethods.size(), 22u);
    EXPECT_EQ(snap.extensionMethods[16], "MQ");
    EXPECT_EQ(rejections(snap),
              (std::vector<std::string>{
                  "route \"/more\" of \"s1\" rejected: method MW: the table "
                  "has 22 extension methods already"}));
    ASSERT_EQ(snap.conflicts.size(), 1u);
    EXPECT_EQ(describeConflict(snap, snap.conflicts[0]),
              "route conflict: MA /dav of \"s1\" is shadowed by /dav of "
              "\"s0\"");

    Bytes blob = encodeSnapshot(snap);
    Snapshot back = decodeSnapshot(blob.data(), blob.size());
    EXPECT_EQ(back.extensionMethods, snap.extensionMethods);
    EXPECT_EQ(back.conflicts[0].methods, snap.conflicts[0].methods);
}

Route routeOf(const std::string &path, uint32_t methods)
{
    Route r;
    r.path = path;
    r.methods = methods;
    return r;
}

// Every finding of a table, its fields in order, to compare two tables'.
std::vector<std::string> findings(const Snapshot &snap)
{
    std::vector<std::string> out;
    for (const Conflict &c : snap.conflicts) {
        out.push_back("c " + std::to_string(c.methods) + " "
                      + std::to_string(c.winnerService) + "."
                      + std::to_string(c.winnerRoute) + " "
                      + std::to_string(c.loserService) + "."
                      + std::to_string(c.loserRoute));
    }
    for (const Overlap &o : snap.overlaps) {
        out.push_back("o " + std::to_string(o.methods) + " "
                      + std::to_string(o.service) + "."
                      + std::to_string(o.route) + " "
                      + std::to_string(o.shadowedService) + "."
                      + std::to_string(o.shadowedRoute));
    }
    for (const Rejection &r : snap.rejections) {
        out.push_back("r " + std::to_string(r.service) + "."
                      + std::to_string(r.route) + " " + r.reason);
    }
    for (const std::string &m : snap.extensionMethods) {
        out.push_back("m " + m);
    }
    out.push_back("checked " + std::to_string(snap.checkedBy));
    return out;
}

/*
 * checkTableChanged() of `before` (checked) whose services `changed` now
 * have the route sets of `after`, against checkTable() of `after`: the
 * same findings.  Returns whether it checked only part of the table.
 */
bool checksAsTheWholeTable(const Snapshot &before, const Snapshot &after,
                           const std::vector<uint32_t> &changed)
{
    Snapshot part = before;
    std::vector<ChangedService> sets;
    for (uint32_t s : changed) {
        part.services[s].routeSet = after.services[s].routeSet;
        sets.push_back({s, &before.services[s].routeSet});
    }
    Snapshot whole = part;
    checkTable(whole);
    bool partly = checkTableChanged(part, sets);
    EXPECT_EQ(findings(part), findings(whole));

    // and applyPolls(), which checks in part, makes the whole table's bytes
    Bytes old = encodeSnapshot(before);
    std::vector<Bytes> sent;
    std::vector<PollResult> polls;
    for (uint32_t s : changed) {
        sent.push_back(encodeRouteSet(after.services[s].routeSet));
    }
    for (size_t i = 0; i < changed.size(); i++) {
        const Service &s = before.services[changed[i]];
        polls.push_back(
            {s.name, s.url, s.state, sent[i].data(), sent[i].size()});
    }
    std::optional<Bytes> applied =
        applyPolls(old.data(), old.size(), polls, 7, Log());
    whole.generation = 7;
    if (applied) {
        EXPECT_EQ(*applied, encodeSnapshot(whole));
    } else {
        EXPECT_EQ(findings(before), findings(whole));
    }
    return partly;
}

// A random template: first segments from a few literals (rarely a
// parameter), then up to three segments of every kind.
std::string randomPath(std::mt19937 &rng)
{
    static const char *const firsts[] = {"a",   "b", "c", "42",
                                         "1.5", "",  "a", "b"};
    static const char *const rest[] = {
        "x",         "y",        "1",
        "2.5",       "{id}",     "{n:int}",
        "{f:float}", "{u:uuid}", "{s:str}",
        "{p:path}",  "",         "3fa85f64-5717-4562-b3fc-2c963f66afa6"};
    std::string path = "/";

    if (rng() % 40 == 0) {
        path += rng() % 2 ? "{root}" : "{all:path}";
    } else {
        path += firsts[rng() % 8];
    }
    for (size_t d = rng() % 4; d > 0; d--) {
        path += "/";
        path += rest[rng() % 12];
    }
    return path;
}

std::vector<Route> randomRoutes(std::mt19937 &rng)
{
    static const uint32_t methods[] = {
        kGet,        kPost,       kPut,   kOptions, kGet | kOptions,
        kGet | kPut, kAllMethods, kDelete};
    std::vector<Route> routes(rng() % 9);
    Template tpl;

    for (Route &r : routes) {
        do {
            r.path = randomPath(rng);
        } while (!compileTemplate(r.path, tpl));
        r.methods = methods[rng() % 8];
        if (rng() % 60 == 0) {
            r.extensionMethods = {"PURGE"};
        }
    }
    return routes;
}

TEST(TableCheck, ChangedServicesCheckAsTheWholeTable)
{
    std::mt19937 rng(14);
    int partly = 0, tables = 3000;

    for (int t = 0; t < tables; t++) {
        Snapshot before;
        before.denyOverlaps = rng() % 3 == 0;
        for (size_t i = 1 + rng() % 5; i > 0; i--) {
            Service s;
            s.name = "s" + std::to_string(before.services.size());
            s.routeSet.routes = randomRoutes(rng);
            before.services.push_back(s);
        }
        checkTable(before);

        Snapshot after = before;
        std::vector<uint32_t> changed;
        for (size_t i = 1 + rng() % 2; i > 0; i--) {
            auto s = static_cast<uint32_t>(rng() % after.services.size());
            std::vector<Route> &routes = after.services[s].routeSet.routes;
            switch (rng() % 3) {
            case 0: { // a route more, anywhere
                Route added = routeOf(randomPath(rng), kPost | kOptions);
                Template tpl;
                if (compileTemplate(added.path, tpl)) {
                    routes.insert(routes.begin() + rng() % (routes.size() + 1),
                                  added);
                }
                break;
            }
            case 1: // a route less
                if (!routes.empty()) {
                    routes.erase(routes.begin() + rng() % routes.size());
                }
                break;
            default:
                routes = randomRoutes(rng);
            }
            changed.push_back(s);
        }
        partly += checksAsTheWholeTable(before, after, changed);
    }

    // most tables are checked in part, the rest whole
    EXPECT_GT(partly, tables / 2);
    EXPECT_LT(partly, tables);
}

TEST(TableCheck, ChangedServicesKeepTheLookupBoundOfTheirSubtree)
{
    // two costly subtrees, each rejecting routes for the bound
    auto costly = [](const char *first) {
        std::vector<Route> routes;
        for (const std::string &p :
             lattice({"1", "{i:int}", "{f:float}", "{s:str}"}, 6)) {
            routes.push_back(routeOf(std::string("/") + first + p, kPost));
        }
        return routes;
    };
    Snapshot before;
    for (const char *name : {"a", "b", "c"}) {
        Service s;
        s.name = name;
        s.routeSet.routes = costly(name);
        before.services.push_back(s);
    }
    before.services[2].routeSet.routes.resize(10);
    checkTable(before);

    Snapshot after = before;
    std::vector<Route> &a = after.services[0].routeSet.routes;
    std::reverse(a.begin(), a.end());
    a.resize(a.size() / 2);

    EXPECT_TRUE(checksAsTheWholeTable(before, after, {0}));
    checkTable(after);
    EXPECT_TRUE(checksAsTheWholeTable(after, before, {0}));

    size_t costlyIn[3] = {};
    for (const Rejection &r : before.rejections) {
        costlyIn[r.service]++;
    }
    EXPECT_GT(costlyIn[0], 0u);
    EXPECT_GT(costlyIn[1], 0u);
}

TEST(TableCheck, ChangedServicesFindWhatTheySharedAFirstSegmentWith)
{
    Snapshot before;
    for (int i = 0; i < 3; i++) {
        Service s;
        s.name = "s" + std::to_string(i);
        before.services.push_back(s);
    }
    before.services[0].routeSet.routes = {routeOf("/users/{id}", kAllMethods),
                                          routeOf("/orders/1", kGet)};
    before.services[1].routeSet.routes = {routeOf("/users/1", kGet | kPut),
                                          routeOf("/items/{n:int}", kGet)};
    before.services[2].routeSet.routes = {routeOf("/items/{s}", kGet),
                                          routeOf("/orders/1", kGet)};
    checkTable(before);
    ASSERT_FALSE(before.overlaps.empty());
    ASSERT_FALSE(before.conflicts.empty());

    // s1 gives up /users and moves /items: s0's overlaps with it go, the
    // conflict of /orders/1 between s0 and s2 stays
    Snapshot after = before;
    after.services[1].routeSet.routes = {routeOf("/items/{n:int}", kGet),
                                         routeOf("/orders/{o}", kGet)};
    EXPECT_TRUE(checksAsTheWholeTable(before, after, {1}));
    checkTable(after);
    EXPECT_TRUE(checksAsTheWholeTable(after, before, {1}));

    // a root parameter meets every subtree: the whole table is checked
    after.services[1].routeSet.routes.push_back(routeOf("/{any:path}", kGet));
    EXPECT_FALSE(checksAsTheWholeTable(before, after, {1}));
}

TEST(TableCheck, AChangedRouteChecksOnlyItsOwnSubtree)
{
    // a large service whose routes of /a conflict with and overlap
    // another's, and one route more at the start of its document: only
    // the new route's subtree is checked again, and the findings of /a
    // follow their routes to their new indices
    Snapshot before;
    for (const char *name : {"big", "other"}) {
        Service s;
        s.name = name;
        before.services.push_back(s);
    }
    std::vector<Route> &big = before.services[0].routeSet.routes;
    for (int i = 0; i < 1000; i++) {
        big.push_back(routeOf("/a/" + std::to_string(i), kGet));
    }
    big.push_back(routeOf("/a/{id}", kGet | kPut));
    big.push_back(routeOf("/c/1", kGet));
    before.services[1].routeSet.routes = {routeOf("/a/7", kGet | kPost),
                                          routeOf("/b/1", kGet),
                                          routeOf("/c/{n:int}", kDelete)};
    checkTable(before);
    ASSERT_EQ(before.conflicts.size(), 1u);
    ASSERT_FALSE(before.overlaps.empty());

    Snapshot after = before;
    std::vector<Route> &now = after.services[0].routeSet.routes;
    now.insert(now.begin(), routeOf("/b/{id}", kGet));

    Snapshot part = after;
    size_t checked = 0;
    EXPECT_TRUE(checkTableChanged(part, {{0, &before.services[0].routeSet}},
                                  &checked));
    EXPECT_EQ(checked, 2u); // /b/{id}, and the other's /b/1
    Snapshot whole = after;
    checkTable(whole);
    EXPECT_EQ(findings(part), findings(whole));
    EXPECT_EQ(part.conflicts.at(0).winnerRoute, 8u); // /a/7, one further

    // the new route moved to the end: the rest keep their order
    Snapshot moved = whole;
    std::vector<Route> &last = moved.services[0].routeSet.routes;
    std::rotate(last.begin(), last.begin() + 1, last.end());
    EXPECT_TRUE(checkTableChanged(moved, {{0, &whole.services[0].routeSet}},
                                  &checked));
    EXPECT_EQ(checked, 2u); // /b/{id} and /b/1 again
    Snapshot movedWhole = moved;
    checkTable(movedWhole);
    EXPECT_EQ(findings(moved), findings(movedWhole));

    // the second poll of the same service in one publication: as before
    EXPECT_TRUE(checksAsTheWholeTable(before, after, {0, 0}));
}

} // namespace
} // namespace discovery
