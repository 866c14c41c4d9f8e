// table_check_test.cpp: overlaps, discovery_overlap deny and the lookup bound.
#include "methods.hpp"
#include "router.hpp"
#include "snapshot.hpp"
#include "table_check.hpp"

#include <gtest/gtest.h>

#include <random>

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
        s.state = DISCOVERY_STATE_HEALTHY;
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
