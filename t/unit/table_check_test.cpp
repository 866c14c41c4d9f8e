// table_check_test.cpp: overlaps, discovery_overlap deny and the lookup bound.
#include "methods.hpp"
#include "router.hpp"
#include "snapshot.hpp"
#include "table_check.hpp"

#include <gtest/gtest.h>

#include <algorithm>
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

    EXPECT_EQ(overlaps(snap),
              (std::vector<std::string>{
                  "route overlap: GET,HEAD /users/{id} of \"s0\" shadows "
                  "/{p:path} of \"s1\"",
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
                  "route overlap: GET,HEAD /x/{a:float} of \"s0\" shadows "
                  "/x/{s} of \"s1\"",
                  "route overlap: GET,HEAD /x/{b:int} of \"s1\" shadows "
                  "/x/{a:float} of \"s0\""}));
}

TEST(TableCheck, PrecedenceIsDecidedFromTheLeft)
{
    // /a/{x}/c: a literal second segment wins whatever follows
    Snapshot snap = table({{{"/a/{x}/c", kGet}}, {{"/a/b/{y}", kGet}}});

    EXPECT_EQ(overlaps(snap),
              (std::vector<std::string>{
                  "route overlap: GET,HEAD /a/b/{y} of \"s1\" shadows "
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
                  "route overlap: HEAD /users/me of \"s1\" shadows "
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
                  "route overlap: GET,HEAD /files/readme of \"s1\" shadows "
                  "/files/{p:path} of \"s0\""}));
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
                  "route overlap: GET,HEAD /files/{x}/meta of \"s1\" shadows "
                  "/files/{p:path}/meta of \"s0\""}));

    // fixed segments after the parameter face the end of the path
    snap = table({{{"/files/{p:path}/{n:int}/raw", kGet}},
                  {{"/files/a/7/raw", kGet},
                   {"/files/a/x/raw", kGet},
                   {"/files/1/2/3/raw", kGet},
                   {"/files/7/raw", kGet}}});
    EXPECT_EQ(overlaps(snap),
              (std::vector<std::string>{
                  "route overlap: GET,HEAD /files/a/7/raw of \"s1\" shadows "
                  "/files/{p:path}/{n:int}/raw of \"s0\"",
                  "route overlap: GET,HEAD /files/1/2/3/raw of \"s1\" "
                  "shadows /files/{p:path}/{n:int}/raw of \"s0\""}));
}

TEST(TableCheck, MoreSegmentsAfterThePathParameterComeFirst)
{
    Snapshot snap =
        table({{{"/{p:path}", kGet}, {"/f/{p:path}", kGet}},
               {{"/f/{q:path}/meta", kGet}, {"/{q:path}/x/{n:int}", kGet}}});

    EXPECT_EQ(overlaps(snap),
              (std::vector<std::string>{
                  "route overlap: GET,HEAD /f/{p:path} of \"s0\" shadows "
                  "/{q:path}/x/{n:int} of \"s1\"",
                  "route overlap: GET,HEAD /f/{q:path}/meta of \"s1\" "
                  "shadows /{p:path} of \"s0\"",
                  "route overlap: GET,HEAD /f/{q:path}/meta of \"s1\" "
                  "shadows /f/{p:path} of \"s0\"",
                  "route overlap: GET,HEAD /{q:path}/x/{n:int} of \"s1\" "
                  "shadows /{p:path} of \"s0\""}));

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
                  "route overlap: GET,HEAD /users/{id} of \"s0\" shadows "
                  "/{p:path} of \"s1\""}));

    Bytes blob = encodeSnapshot(snap);
    auto router = Router::build(blob.data(), blob.size());
    EXPECT_EQ(router->match("PUT", "/users/1", false).service, "s0");
    EXPECT_EQ(router->match("GET", "/about", false).service, "s1");
}

TEST(TableCheck, ARejectedRouteClaimsNothing)
{
    // s1's route shadows s0's for GET and is rejected: the POST it would
    // have held goes to s2, whose route has the same shape
    Snapshot snap = table({{{"/a/{y}", kGet}},
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
}

TEST(TableCheck, DenyDoesNotRejectSameShapeConflicts)
{
    Snapshot snap = table({{{"/users/{id}", kGet}}, {{"/users/{n}", kGet}}},
                          true);

    EXPECT_TRUE(snap.rejections.empty());
    EXPECT_EQ(snap.conflicts.size(), 1u);
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

} // namespace
} // namespace discovery
