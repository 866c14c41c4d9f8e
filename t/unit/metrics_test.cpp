// metrics_test.cpp: route slots (keys, assignment, carry-over, release,
// room), counting, and the text and OpenMetrics exposition.
#include "controls.hpp"
#include "discovery_core.h"
#include "methods.hpp"
#include "metrics.hpp"
#include "snapshot.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <vector>

namespace discovery {
namespace {

/*
 * A zone's worth of memory for slots: a bump allocator over one buffer,
 * offsets from its start, with a budget; released slots are kept apart
 * (as the module's grace time does) and can be checked for.
 */
struct Zone {
    explicit Zone(uint64_t capacity, size_t budget = 1 << 20)
        : bytes(metricsIndexSize(capacity) + budget + 64), budget(budget)
    {
        index = reinterpret_cast<MetricsIndex *>(bytes.data());
        metricsIndexInit(*index, capacity, kDefaultBucketsMs,
                         kDefaultBucketCount);
        next = (metricsIndexSize(capacity) + 63) & ~size_t(63);
        memory.alloc = [this](size_t size) -> uint64_t {
            if (used + size > this->budget) {
                return 0;
            }
            uint64_t at = next;
            next += (size + 7) & ~size_t(7);
            used += size;
            return at;
        };
        memory.release = [this](uint64_t offset, size_t size) {
            EXPECT_GE(size, sizeof(MetricsRoute));
            released.insert(offset);
        };
    }

    unsigned char *base() { return bytes.data(); }

    const MetricsRoute *find(std::string_view service, std::string_view route)
    {
        return findRoute(*index, base(), routeKey(service, route), service,
                         route);
    }

    std::vector<unsigned char> bytes;
    size_t budget;
    size_t used = 0;
    size_t next = 0;
    MetricsIndex *index = nullptr;
    MetricsMemory memory;
    std::set<uint64_t> released;
};

// A RouteKey's names are views: the tests' own stay here, for good.
std::string_view kept(std::string text)
{
    static std::deque<std::string> texts;
    return texts.emplace_back(std::move(text));
}

RouteKey key(const std::string &service, const std::string &route,
             uint32_t methods)
{
    return {routeKey(service, route), routeColumns(methods), kept(service),
            kept(route)};
}

uint64_t requests(const MetricsRoute *r, uint32_t methodBit, size_t cls)
{
    return r->counters()[methodColumn(r->columns, methodBit) * kStatusClasses
                         + cls];
}

TEST(MetricsTest, KeysAreNeverTheEmptyOrRemovedMarks)
{
    std::set<uint64_t> keys;
    for (int i = 0; i < 10000; i++) {
        uint64_t k = routeKey("svc", "/r/" + std::to_string(i));
        EXPECT_GT(k, kRemovedKey);
        keys.insert(k);
    }
    EXPECT_EQ(keys.size(), 10000u);
    // the service and the route are told apart, not only concatenated
    EXPECT_NE(routeKey("ab", "/c"), routeKey("a", "b/c"));
}

/*
 * A key is what it always was, whatever the names' lengths: the zone's
 * slots, found by their keys, keep their counts when a reload brings a
 * newer build of the module.  The definition, byte by byte.
 */
TEST(MetricsTest, KeysAreTheSameAcrossBuilds)
{
    auto mix = [](uint64_t h, uint64_t word) {
        h = (h ^ word) * 0x9e3779b97f4a7c15ull;
        return h ^ (h >> 29);
    };
    auto bytes = [&](uint64_t h, const std::string &s) {
        size_t i = 0;
        for (; i + 8 <= s.size(); i += 8) {
            uint64_t w = 0;
            for (size_t b = 0; b < 8; b++) {
                w |= uint64_t(static_cast<unsigned char>(s[i + b])) << (8 * b);
            }
            h = mix(h, w);
        }
        uint64_t w = 0;
        for (size_t shift = 0; i < s.size(); i++, shift += 8) {
            w |= uint64_t(static_cast<unsigned char>(s[i])) << shift;
        }
        return mix(h, w ^ (uint64_t(s.size()) << 56));
    };

    std::string all = "/users/{user_id:int}/posts/\xff\x80{rest:path}";
    for (size_t n = 0; n <= all.size(); n++) {
        for (size_t m = 0; m <= 17; m++) {
            std::string route = all.substr(0, n), service = all.substr(0, m);
            uint64_t h = bytes(bytes(0x243f6a8885a308d3ull ^ 42, service), route);
            EXPECT_EQ(routeKey(service, route, 42), h < 2 ? h + 2 : h)
                << service << " " << route;
        }
    }
}

TEST(MetricsTest, ColumnsAreTheRoutesMethodsHeadWithGetThenOther)
{
    uint32_t columns = routeColumns(kGet | kPost | (1u << kMethodCount));
    EXPECT_EQ(columns, kGet | kHead | kPost); // the extension method: other
    EXPECT_EQ(methodColumn(columns, kGet), 0u);
    EXPECT_EQ(methodColumn(columns, kHead), 1u);
    EXPECT_EQ(methodColumn(columns, kPost), 2u);
    EXPECT_EQ(methodColumn(columns, kDelete), 3u); // not published: other
    EXPECT_EQ(methodColumn(columns, 0), 3u);       // PROPFIND: other
    EXPECT_EQ(statusClass(101), 0u);
    EXPECT_EQ(statusClass(204), 1u);
    EXPECT_EQ(statusClass(499), 3u);
    EXPECT_EQ(statusClass(599), 4u);
    EXPECT_EQ(statusClass(0), kStatusClasses);
    EXPECT_EQ(statusClass(600), kStatusClasses);
}

TEST(MetricsTest, EachRouteGetsASlotSizedForItsMethods)
{
    Zone zone(64);
    std::vector<RouteKey> routes = {key("users", "/users/{id}", kGet),
                                    key("users", "/users", kGet | kPost),
                                    key("chat", "/chat", kPost)};
    AssignResult r =
        assignRoutes(*zone.index, zone.base(), routes, 1, zone.memory);
    EXPECT_EQ(r.added, 3u);
    EXPECT_EQ(r.unassigned, 0u);

    const MetricsRoute *get = zone.find("users", "/users/{id}");
    const MetricsRoute *chat = zone.find("chat", "/chat");
    ASSERT_NE(get, nullptr);
    ASSERT_NE(chat, nullptr);
    EXPECT_EQ(get->columnCount, 3);  // GET, HEAD, other
    EXPECT_EQ(chat->columnCount, 2); // POST, other
    EXPECT_EQ(get->service(), "users");
    EXPECT_EQ(get->route(), "/users/{id}");
    EXPECT_LT(routeSlotSize(routes[2], kDefaultBucketCount),
              routeSlotSize(routes[1], kDefaultBucketCount));
    EXPECT_EQ(zone.find("users", "/nope"), nullptr);
}

TEST(MetricsTest, CountsGoToTheMethodClassAndBucket)
{
    Zone zone(64);
    assignRoutes(*zone.index, zone.base(), {key("s", "/a", kGet)}, 1,
                 zone.memory);
    auto *r = const_cast<MetricsRoute *>(zone.find("s", "/a"));
    ASSERT_NE(r, nullptr);

    EXPECT_TRUE(countRequest(*zone.index, *r, kGet, 200, 3));
    EXPECT_TRUE(countRequest(*zone.index, *r, kGet, 503, 7));
    EXPECT_TRUE(countRequest(*zone.index, *r, kHead, 200, 20000));
    EXPECT_TRUE(countRequest(*zone.index, *r, kOptions, 204, 5));
    EXPECT_FALSE(countRequest(*zone.index, *r, kGet, 0, 1));

    EXPECT_EQ(requests(r, kGet, 1), 1u);
    EXPECT_EQ(requests(r, kGet, 4), 1u);
    EXPECT_EQ(requests(r, kHead, 1), 1u);
    EXPECT_EQ(requests(r, kOptions, 1), 1u); // in "other"
    const uint64_t *hist = r->counters() + r->columnCount * kStatusClasses;
    EXPECT_EQ(hist[0], 2u);                   // 3 ms and 5 ms: <= 5 ms
    EXPECT_EQ(hist[1], 1u);                   // 7 ms: <= 10 ms
    EXPECT_EQ(hist[kDefaultBucketCount], 1u); // 20 s: +Inf
    EXPECT_EQ(hist[kDefaultBucketCount + 1], 3u + 7 + 20000 + 5);
}

TEST(MetricsTest, ASurvivingRouteKeepsItsSlotAndCounts)
{
    Zone zone(64);
    assignRoutes(*zone.index, zone.base(),
                 {key("s", "/a", kGet), key("s", "/b", kGet)}, 1, zone.memory);
    auto *a = const_cast<MetricsRoute *>(zone.find("s", "/a"));
    countRequest(*zone.index, *a, kGet, 200, 1);

    AssignResult r = assignRoutes(*zone.index, zone.base(),
                                  {key("s", "/a", kGet), key("s", "/c", kGet)},
                                  2, zone.memory);
    EXPECT_EQ(r.kept, 1u);
    EXPECT_EQ(r.added, 1u);
    EXPECT_EQ(r.removed, 1u);
    EXPECT_EQ(zone.find("s", "/a"), a);
    EXPECT_EQ(requests(zone.find("s", "/a"), kGet, 1), 1u);
    EXPECT_EQ(zone.find("s", "/b"), nullptr);
    EXPECT_EQ(zone.released.size(), 1u);
    EXPECT_NE(zone.find("s", "/c"), nullptr);
}

TEST(MetricsTest, NewMethodsMakeANewSlotThatKeepsTheCountsOfTheOldOnes)
{
    Zone zone(64);
    assignRoutes(*zone.index, zone.base(), {key("s", "/a", kGet)}, 1,
                 zone.memory);
    auto *a = const_cast<MetricsRoute *>(zone.find("s", "/a"));
    countRequest(*zone.index, *a, kGet, 200, 1);
    countRequest(*zone.index, *a, kPut, 200, 1); // other, for now

    assignRoutes(*zone.index, zone.base(), {key("s", "/a", kGet | kPost)}, 2,
                 zone.memory);
    const MetricsRoute *b = zone.find("s", "/a");
    ASSERT_NE(b, nullptr);
    EXPECT_NE(b, a);
    EXPECT_EQ(b->columnCount, 4);
    EXPECT_EQ(requests(b, kGet, 1), 1u);
    EXPECT_EQ(requests(b, kPut, 1), 1u);
    EXPECT_EQ(requests(b, kPost, 1), 0u);
    EXPECT_EQ(zone.released.size(), 1u);
}

TEST(MetricsTest, AHintNamesTheSlotWhileTheRouteKeepsIt)
{
    Zone zone(64);
    assignRoutes(*zone.index, zone.base(),
                 {key("s", "/a", kGet), key("s", "/b", kGet)}, 1, zone.memory);
    auto *a = const_cast<MetricsRoute *>(zone.find("s", "/a"));

    uint64_t ha = routeHint(*zone.index, zone.base(), "s", "/a");
    uint64_t hb = routeHint(*zone.index, zone.base(), "s", "/b");
    ASSERT_NE(ha, 0u);
    ASSERT_NE(hb, 0u);
    EXPECT_EQ(hintedRoute(*zone.index, zone.base(), ha), a);
    EXPECT_EQ(routeHint(*zone.index, zone.base(), "s", "/c"), 0u);
    EXPECT_EQ(hintedRoute(*zone.index, zone.base(), 0), nullptr);

    // a slot another route took since: its key is not the hint's
    a->key ^= 1;
    EXPECT_EQ(hintedRoute(*zone.index, zone.base(), ha), nullptr);
    a->key ^= 1;

    // a table without /b: its hint no longer counts, /a's still does
    assignRoutes(*zone.index, zone.base(), {key("s", "/a", kGet)}, 2,
                 zone.memory);
    EXPECT_EQ(hintedRoute(*zone.index, zone.base(), hb), nullptr);
    EXPECT_EQ(hintedRoute(*zone.index, zone.base(), ha), a);

    // the older table assigned again (the newer one was never installed):
    // /b has a new slot, and the hint of the one let go is not it
    assignRoutes(*zone.index, zone.base(),
                 {key("s", "/a", kGet), key("s", "/b", kGet)}, 1, zone.memory);
    EXPECT_EQ(hintedRoute(*zone.index, zone.base(), hb), nullptr);
    ASSERT_NE(zone.find("s", "/b"), nullptr);
    EXPECT_EQ(hintedRoute(*zone.index, zone.base(),
                          routeHint(*zone.index, zone.base(), "s", "/b")),
              zone.find("s", "/b"));

    // new methods, a new slot: the old one's hint is not it, even were
    // the older generation assigned again
    assignRoutes(*zone.index, zone.base(), {key("s", "/a", kGet | kPost)}, 3,
                 zone.memory);
    EXPECT_EQ(hintedRoute(*zone.index, zone.base(), ha), nullptr);
    uint64_t fresh = routeHint(*zone.index, zone.base(), "s", "/a");
    EXPECT_EQ(hintedRoute(*zone.index, zone.base(), fresh), zone.find("s", "/a"));
    EXPECT_NE(zone.find("s", "/a"), a);
    zone.index->generation = 1;
    EXPECT_EQ(hintedRoute(*zone.index, zone.base(), ha), nullptr);

    // a reload with other buckets clears every slot: no hint names one
    clearRoutes(*zone.index, zone.base(), zone.memory);
    EXPECT_EQ(hintedRoute(*zone.index, zone.base(), fresh), nullptr);
}

TEST(MetricsTest, AnOlderTableAssignedLateRemovesNothingNewer)
{
    Zone zone(64);
    assignRoutes(*zone.index, zone.base(), {key("s", "/new", kGet)}, 5,
                 zone.memory);
    // a publication that failed left generation 4 in use
    assignRoutes(*zone.index, zone.base(), {key("s", "/old", kGet)}, 4,
                 zone.memory);
    EXPECT_NE(zone.find("s", "/new"), nullptr);
    EXPECT_NE(zone.find("s", "/old"), nullptr);
    EXPECT_EQ(zone.index->generation, 4u);
}

TEST(MetricsTest, WithoutRoomRoutesAreUnassignedNotLost)
{
    Zone full(8); // at most 6 live
    std::vector<RouteKey> routes;
    for (int i = 0; i < 10; i++) {
        routes.push_back(key("s", "/r/" + std::to_string(i), kGet));
    }
    AssignResult r =
        assignRoutes(*full.index, full.base(), routes, 1, full.memory);
    EXPECT_EQ(r.added, 6u);
    EXPECT_EQ(r.unassigned, 4u);
    EXPECT_EQ(full.find("s", "/r/9"), nullptr);

    Zone small(64, 2 * routeSlotSize(routes[0], kDefaultBucketCount));
    r = assignRoutes(*small.index, small.base(), routes, 1, small.memory);
    EXPECT_EQ(r.added, 2u);
    EXPECT_EQ(r.unassigned, 8u);
}

/*
 * A table that replaces most routes of a full index: the routes it
 * removes make room for those it adds, in the same assignment, rather
 * than leave them counted as overflow until some later table.
 */
TEST(MetricsTest, ATableReplacingTheRoutesOfAFullIndexAssignsThemAll)
{
    Zone zone(8); // at most 6 live
    std::vector<RouteKey> a, b;
    for (int i = 0; i < 6; i++) {
        a.push_back(key("s", "/a/" + std::to_string(i), kGet));
        b.push_back(key("s", "/b/" + std::to_string(i), kGet));
    }
    AssignResult r = assignRoutes(*zone.index, zone.base(), a, 1, zone.memory);
    EXPECT_EQ(r.added, 6u);

    r = assignRoutes(*zone.index, zone.base(), b, 2, zone.memory);
    EXPECT_EQ(r.removed, 6u);
    EXPECT_EQ(r.added, 6u);
    EXPECT_EQ(r.unassigned, 0u);
    for (const RouteKey &k : b) {
        EXPECT_NE(zone.find(k.service, k.route), nullptr) << k.route;
    }
    EXPECT_EQ(zone.index->live, 6u);
}

TEST(MetricsTest, RemovedEntriesAreProbedPastAndReused)
{
    Zone zone(16);
    std::vector<RouteKey> all;
    for (int i = 0; i < 12; i++) {
        all.push_back(key("s", "/r/" + std::to_string(i), kGet));
    }
    for (uint64_t g = 1; g <= 50; g++) {
        // a different half each time: removals everywhere in the index
        std::vector<RouteKey> some;
        for (size_t i = 0; i < all.size(); i++) {
            if ((i + g) % 2 == 0) {
                some.push_back(all[i]);
            }
        }
        AssignResult r =
            assignRoutes(*zone.index, zone.base(), some, g, zone.memory);
        EXPECT_EQ(r.unassigned, 0u) << g;
        for (const RouteKey &k : some) {
            EXPECT_NE(zone.find(k.service, k.route), nullptr) << g;
        }
        EXPECT_EQ(zone.index->live, some.size());
    }
}

/*
 * Keys are 64 bits of a hash a service can aim at (a route of its own
 * whose key is another service's): two routes of one key are still two
 * slots, each found only by its own service and template.
 */
TEST(MetricsTest, TwoRoutesOfOneKeyKeepTheirOwnSlotsAndCounts)
{
    Zone zone(64);
    RouteKey victim = key("victim", "/v/{id:int}", kGet);
    RouteKey evil = key("evil", "/e", kGet);
    evil.key = victim.key;

    AssignResult r =
        assignRoutes(*zone.index, zone.base(), {victim, evil}, 1, zone.memory);
    EXPECT_EQ(r.added, 2u);
    EXPECT_EQ(r.unassigned, 0u);
    EXPECT_TRUE(zone.released.empty());

    auto *v = const_cast<MetricsRoute *>(findRoute(
        *zone.index, zone.base(), victim.key, "victim", "/v/{id:int}"));
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->service(), "victim");
    countRequest(*zone.index, *v, kGet, 500, 1);
    const MetricsRoute *e =
        findRoute(*zone.index, zone.base(), victim.key, "evil", "/e");
    ASSERT_NE(e, nullptr);
    EXPECT_NE(e, v);
    EXPECT_EQ(requests(e, kGet, 4), 0u);

    // the next table keeps both, and the victim's counts
    r = assignRoutes(*zone.index, zone.base(), {evil, victim}, 2, zone.memory);
    EXPECT_EQ(r.kept, 2u);
    EXPECT_EQ(r.added, 0u);
    EXPECT_TRUE(zone.released.empty());
    EXPECT_EQ(findRoute(*zone.index, zone.base(), victim.key, "victim",
                        "/v/{id:int}"),
              v);
    EXPECT_EQ(requests(v, kGet, 4), 1u);
    EXPECT_EQ(findRoute(*zone.index, zone.base(), victim.key, "victim", "/e"),
              nullptr);
}

/*
 * The key is seeded per index: what a service would publish to aim at a
 * key of one gateway's index misses another's.
 */
TEST(MetricsTest, KeysDependOnTheIndexSeed)
{
    EXPECT_EQ(routeKey("s", "/a", 7), routeKey("s", "/a", 7));
    EXPECT_NE(routeKey("s", "/a", 7), routeKey("s", "/a", 8));
    EXPECT_EQ(routeKey("s", "/a"), routeKey("s", "/a", 0));

    alignas(8) unsigned char a[4096], b[4096];
    auto *ia = discovery_metrics_index_init(a, 16, kDefaultBucketsMs, 1);
    auto *ib = discovery_metrics_index_init(b, 16, kDefaultBucketsMs, 1);
    ASSERT_NE(ia, nullptr);
    ASSERT_NE(ib, nullptr);
    EXPECT_NE(reinterpret_cast<MetricsIndex *>(a)->seed,
              reinterpret_cast<MetricsIndex *>(b)->seed);
}

TEST(MetricsTest, TableRoutesAreTheRoutedOnesAndTheOverrides)
{
    Snapshot snap;
    snap.generation = 9;
    Service users;
    users.name = "users";
    users.state = ServiceState::Healthy;
    Route a;
    a.path = "/users/{id}";
    a.methods = kGet;
    Route b;
    b.path = "/users";
    b.methods = kPost;
    Route same;
    same.path = "/users/{id}";
    same.methods = kDelete;
    Route shadowing;
    shadowing.path = "/x";
    shadowing.methods = kGet;
    users.routeSet.routes = {a, b, same, shadowing};
    users.routeSet.rejected.push_back({"/bad", kGet, {}, "outside prefix"});
    snap.services.push_back(users);
    snap.rejections.push_back({0, 3, "lookup too costly"});

    Controls controls;
    Override pin;
    pin.id = "o1";
    pin.action = OverrideAction::Pin;
    pin.path = "/pinned/{x}";
    pin.service = "users";
    pin.methods = {"*"};
    Override disable;
    disable.id = "o2";
    disable.action = OverrideAction::Disable;
    disable.path = "/off";
    disable.methods = {"*"};
    controls.overrides = {pin, disable};
    snap.controls = encodeControls(controls);

    TableFigures figures;
    Controls decoded = decodeControls(snap.controls.data(), snap.controls.size());
    std::vector<RouteKey> keys = tableRoutes(snap, decoded, figures);
    std::map<std::string, uint32_t> got;
    for (const RouteKey &k : keys) {
        got[std::string(k.service) + " " + std::string(k.route)] = k.columns;
    }
    std::map<std::string, uint32_t> want = {
        {"users /users/{id}", kGet | kHead | kDelete},
        {"users /users", kPost},
        {"users /pinned/{x}", kAllMethods},
    };
    EXPECT_EQ(got, want);
    EXPECT_EQ(figures.generation, 9u);
    EXPECT_EQ(figures.routes, 3u);
    ASSERT_EQ(figures.services.size(), 1u);
    EXPECT_EQ(figures.services[0].routes, 3u);
    EXPECT_EQ(figures.services[0].rejected, 2u);
}

/*
 * At scale: each template twice in a service (its methods merged), the
 * same templates in every service (apart), and pins of routes the services
 * have (merged too); the table finding duplicates probes past many others.
 */
TEST(MetricsTest, TableRoutesMergeDuplicatesAmongManyRoutes)
{
    Snapshot snap;
    Controls controls;
    for (int s = 0; s < 3; s++) {
        Service service;
        service.name = "s" + std::to_string(s);
        service.state = ServiceState::Healthy;
        for (int i = 0; i < 2000; i++) {
            Route r;
            r.path = "/r/" + std::to_string(i % 1000) + "/{id}";
            r.methods = i < 1000 ? kGet : kPost;
            service.routeSet.routes.push_back(r);
        }
        snap.services.push_back(service);

        Override pin;
        pin.id = "o" + std::to_string(s);
        pin.action = OverrideAction::Pin;
        pin.path = "/r/7/{id}";
        pin.service = service.name;
        pin.methods = {"*"};
        controls.overrides.push_back(pin);
    }
    snap.controls = encodeControls(controls);

    TableFigures figures;
    Controls decoded = decodeControls(snap.controls.data(), snap.controls.size());
    std::vector<RouteKey> keys = tableRoutes(snap, decoded, figures);
    ASSERT_EQ(keys.size(), 3000u);
    std::set<std::string> names;
    for (const RouteKey &k : keys) {
        std::string name = std::string(k.service) + " " + std::string(k.route);
        EXPECT_TRUE(names.insert(name).second) << name;
        EXPECT_EQ(k.key, routeKey(k.service, k.route));
        EXPECT_EQ(k.columns, k.route == "/r/7/{id}"
                                 ? routeColumns(kAllMethods)
                                 : (kGet | kHead | kPost))
            << name;
    }
    EXPECT_EQ(figures.routes, 6000u);
}

TEST(MetricsTest, LabelValuesAreEscaped)
{
    std::string out;
    appendLabelValue(out, "a\\b\"c\nd\te");
    EXPECT_EQ(out, "a\\\\b\\\"c\\nd\te");
}

MetricsView viewOf(Zone &zone, bool openMetrics)
{
    MetricsView v;
    v.index = zone.index;
    v.base = zone.base();
    v.openMetrics = openMetrics;
    v.gateway[size_t(GatewayReason::NotFound)] = 4;
    v.overflow[size_t(OverflowReason::NoSlot)] = 2;
    v.overflow[size_t(OverflowReason::RouteRemoved)] = 7;
    v.generation = 3;
    v.tableRoutes = 1;
    ServiceFigures s;
    s.name = "we\"ird\n\\";
    s.state = uint32_t(ServiceState::Healthy);
    s.polls[size_t(PollOutcome::Failure)] = 5;
    static const uint64_t pollBuckets[kDefaultBucketCount + 1] = {0, 0, 0, 0,
                                                                  0, 0, 0, 1};
    s.pollBuckets = pollBuckets;
    s.pollMs = 900;
    v.services.push_back(s);
    return v;
}

TEST(MetricsTest, TheTextFormatHasTotalCountersAndEscapedLabels)
{
    Zone zone(64);
    assignRoutes(*zone.index, zone.base(),
                 {key("s", "/q\"\\\n", kGet), key("s", "/idle", kGet)}, 1,
                 zone.memory);
    auto *r = const_cast<MetricsRoute *>(zone.find("s", "/q\"\\\n"));
    countRequest(*zone.index, *r, kGet, 200, 30);
    countRequest(*zone.index, *r, kGet, 200, 1500);

    std::string text = renderMetrics(viewOf(zone, false));
    EXPECT_NE(text.find("# TYPE nginx_discovery_requests_total counter\n"),
              std::string::npos);
    EXPECT_NE(text.find("nginx_discovery_requests_total{service=\"s\",route="
                        "\"/q\\\"\\\\\\n\",method=\"GET\",code=\"2xx\"} 2\n"),
              std::string::npos)
        << text;
    // a route that counted nothing shows no series
    EXPECT_EQ(text.find("/idle"), std::string::npos);
    EXPECT_NE(text.find("le=\"0.025\"} 0\n"), std::string::npos);
    EXPECT_NE(text.find("le=\"0.05\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("le=\"2.5\"} 2\n"), std::string::npos);
    EXPECT_NE(text.find("le=\"+Inf\"} 2\n"), std::string::npos);
    EXPECT_NE(text.find("_sum{service=\"s\",route=\"/q\\\"\\\\\\n\"} 1.53\n"),
              std::string::npos);
    EXPECT_NE(text.find("nginx_discovery_polls_total{service=\"we\\\"ird\\n"
                        "\\\\\",result=\"failure\"} 5\n"),
              std::string::npos);
    EXPECT_NE(text.find("nginx_discovery_gateway_responses_total{reason=\""
                        "not_found\"} 4\n"),
              std::string::npos);
    // one series per reason, those that counted nothing too: an alert on
    // one of them has a series to watch from the start
    EXPECT_NE(text.find("# TYPE nginx_discovery_metrics_overflow_total "
                        "counter\n"
                        "nginx_discovery_metrics_overflow_total{reason=\""
                        "no_slot\"} 2\n"
                        "nginx_discovery_metrics_overflow_total{reason=\""
                        "route_removed\"} 7\n"
                        "nginx_discovery_metrics_overflow_total{reason=\""
                        "unknown\"} 0\n"),
              std::string::npos)
        << text;
    EXPECT_EQ(text.find("# EOF"), std::string::npos);
}

TEST(MetricsTest, OpenMetricsNamesCounterFamiliesWithoutTotalAndEnds)
{
    Zone zone(64);
    std::string text = renderMetrics(viewOf(zone, true));
    EXPECT_NE(text.find("# TYPE nginx_discovery_polls counter\n"
                        "nginx_discovery_polls_total{"),
              std::string::npos);
    EXPECT_NE(text.find("# TYPE nginx_discovery_metrics_overflow counter\n"
                        "nginx_discovery_metrics_overflow_total{reason=\""
                        "no_slot\"} 2\n"
                        "nginx_discovery_metrics_overflow_total{reason=\""
                        "route_removed\"} 7\n"),
              std::string::npos);
    EXPECT_NE(text.find("le=\"1.0\"} 1\n"), std::string::npos); // a float
    EXPECT_NE(text.find("le=\"0.5\"} 0\n"), std::string::npos);
    EXPECT_EQ(text.substr(text.size() - 6), "# EOF\n");
    EXPECT_EQ(text.find("_total counter"), std::string::npos);
}

TEST(MetricsTest, BucketsParseAsIncreasingWholeMilliseconds)
{
    std::vector<uint32_t> ms;
    std::string error;
    EXPECT_TRUE(parseBuckets("0.005,0.5,1,2.5,60", ms, error));
    EXPECT_EQ(ms, (std::vector<uint32_t>{5, 500, 1000, 2500, 60000}));
    EXPECT_TRUE(parseBuckets(".25,1.000", ms, error));
    EXPECT_EQ(ms, (std::vector<uint32_t>{250, 1000}));

    for (const char *bad : {"", "0", "0.0001", "1s", "1,,2", "2,1", "1,1", "-1",
                            "1e3", "0.1,", "99999999"}) {
        EXPECT_FALSE(parseBuckets(bad, ms, error)) << bad;
        EXPECT_FALSE(error.empty()) << bad;
    }
    std::string many;
    for (int i = 1; i <= 33; i++) {
        many += (i > 1 ? "," : "") + std::to_string(i);
    }
    EXPECT_FALSE(parseBuckets(many, ms, error));
    EXPECT_EQ(error, "more than 32 bounds");

    // a bound is kept in 32 bits of ms: one over them would wrap around
    // ("1,4294968" was 1000 then 704 ms, an le that goes down)
    EXPECT_TRUE(parseBuckets("1,4294967", ms, error));
    EXPECT_EQ(ms.back(), 4294967000u);
    for (const char *bad : {"1,4294968", "9999999", "4294967.296"}) {
        EXPECT_FALSE(parseBuckets(bad, ms, error)) << bad;
        EXPECT_EQ(error, "a bound of more than 4294967 s") << bad;
    }
}

TEST(MetricsTest, AcceptPicksOpenMetricsOnlyWhenPreferred)
{
    EXPECT_TRUE(acceptsOpenMetrics(
        "application/openmetrics-text;version=1.0.0,application/"
        "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;"
        "q=0.5,*/*;q=0.1"));
    EXPECT_TRUE(acceptsOpenMetrics("Application/OpenMetrics-Text"));
    EXPECT_FALSE(acceptsOpenMetrics(""));
    EXPECT_FALSE(acceptsOpenMetrics("*/*"));
    EXPECT_FALSE(
        acceptsOpenMetrics("text/plain, application/openmetrics-text;q=0.5"));
    EXPECT_FALSE(acceptsOpenMetrics("application/openmetrics-text;q=0"));
}

// the bridge's allocator of slots, over a test zone's memory
discovery_metrics_memory_t zoneMemory(Zone &zone)
{
    discovery_metrics_memory_t memory;
    memory.alloc = [](void *data, size_t size) {
        return static_cast<Zone *>(data)->memory.alloc(size);
    };
    memory.release = [](void *data, uint64_t offset, size_t size) {
        static_cast<Zone *>(data)->memory.release(offset, size);
    };
    memory.data = &zone;
    return memory;
}

TEST(MetricsTest, TheBridgeCountsAndRendersAZonesSlots)
{
    Zone zone(64);
    Snapshot snap;
    snap.generation = 2;
    Service s;
    s.name = "users";
    s.state = ServiceState::Healthy;
    Route r;
    r.path = "/u/{id}";
    r.methods = kGet;
    s.routeSet.routes.push_back(r);
    snap.services.push_back(s);
    Bytes blob = encodeSnapshot(snap);
    discovery_metrics_memory_t memory = zoneMemory(zone);

    auto *index = reinterpret_cast<discovery_metrics_index_t *>(zone.index);
    discovery_metrics_assigned_t a;
    discovery_error_t err;
    ASSERT_EQ(discovery_metrics_assign(index, zone.base(), blob.data(),
                                       blob.size(), nullptr, &memory, &a,
                                       &err),
              DISCOVERY_OK)
        << err.text;
    EXPECT_EQ(a.added, 1u);
    EXPECT_EQ(a.routes, 1u);
    ASSERT_EQ(a.n, 1u);
    EXPECT_EQ(std::string(a.services[0].name, a.services[0].name_len), "users");
    discovery_metrics_assigned_free(&a);
    EXPECT_EQ(discovery_metrics_index_generation(index), 2u);

    EXPECT_EQ(discovery_metrics_count(index, zone.base(), "users", 5, "/u/{id}",
                                      7, DISCOVERY_METHOD_GET, 200, 4),
              1);
    EXPECT_EQ(discovery_metrics_count(index, zone.base(), "users", 5, "/v", 2,
                                      DISCOVERY_METHOD_GET, 200, 4),
              0);
    // no class to count a status outside 100-599 in, slot or not
    EXPECT_EQ(discovery_metrics_count(index, zone.base(), "users", 5, "/u/{id}",
                                      7, DISCOVERY_METHOD_GET, 999, 4),
              -1);
    EXPECT_EQ(discovery_metrics_count(index, zone.base(), "users", 5, "/v", 2,
                                      DISCOVERY_METHOD_GET, 99, 4),
              -1);

    discovery_metrics_view_t view{};
    view.index = index;
    view.base = zone.base();
    discovery_buf_t out{};
    ASSERT_EQ(discovery_metrics_render(&view, &out, &err), DISCOVERY_OK);
    std::string text(reinterpret_cast<char *>(out.data), out.len);
    discovery_buf_free(&out);
    EXPECT_NE(text.find("route=\"/u/{id}\",method=\"GET\",code=\"2xx\"} 1\n"),
              std::string::npos)
        << text;

    uint32_t ms[DISCOVERY_METRICS_MAX_BUCKETS];
    size_t n = 0;
    EXPECT_EQ(discovery_metrics_parse_buckets("0.1,1", 5, ms, &n, &err),
              DISCOVERY_OK);
    EXPECT_EQ(n, 2u);
    EXPECT_EQ(discovery_metrics_parse_buckets("1,0.1", 5, ms, &n, &err),
              DISCOVERY_ERROR);
    EXPECT_STREQ(err.text, "bounds must increase");
}

/*
 * A publication hands the metrics the table apply_polls made, as the core
 * held it, rather than the encoded table to decode again: the slots are
 * the same, and counted into as the encoded table's.
 */
TEST(MetricsTest, TheTableApplyPollsMadeIsAssignedWithoutDecoding)
{
    discovery_service_conf_t conf[] = {{"users", 5, "http://u", 8, "up", 2}};
    discovery_buf_t table = {nullptr, 0};
    discovery_buf_t next = {nullptr, 0};
    discovery_error_t err;
    ASSERT_EQ(discovery_snapshot_roster(nullptr, 0, conf, 1, 0, 1, &table,
                                        nullptr, nullptr, &err),
              DISCOVERY_OK);

    RouteSet set;
    Route r;
    r.path = "/u/{id}";
    r.methods = kGet;
    set.routes.push_back(r);
    r.path = "/v";
    r.methods = kGet | kPost;
    set.routes.push_back(r);
    Bytes routes = encodeRouteSet(set);
    discovery_poll_t poll = {"users", 5, "http://u", 8,
                             DISCOVERY_STATE_HEALTHY, routes.data(),
                             routes.size()};
    discovery_table_t *decoded = nullptr;
    ASSERT_EQ(discovery_snapshot_apply_polls(table.data, table.len, &poll, 1,
                                             2, &next, nullptr, nullptr, 0,
                                             &decoded, nullptr, &err),
              DISCOVERY_OK)
        << err.text;
    ASSERT_NE(decoded, nullptr);

    Zone given(64), decodedAgain(64);
    discovery_metrics_assigned_t a[2];
    Zone *zones[2] = {&given, &decodedAgain};
    for (int i = 0; i < 2; i++) {
        discovery_metrics_memory_t memory = zoneMemory(*zones[i]);
        auto *index =
            reinterpret_cast<discovery_metrics_index_t *>(zones[i]->index);
        // given the table decoded, the encoded one is not read at all
        ASSERT_EQ(discovery_metrics_assign(
                      index, zones[i]->base(), i == 0 ? nullptr : next.data,
                      i == 0 ? 0 : next.len, i == 0 ? decoded : nullptr,
                      &memory, &a[i], &err),
                  DISCOVERY_OK)
            << err.text;
        EXPECT_EQ(discovery_metrics_count(index, zones[i]->base(), "users", 5,
                                          "/v", 2, DISCOVERY_METHOD_POST, 201,
                                          3),
                  1);
        EXPECT_EQ(discovery_metrics_index_generation(index), 2u);
    }
    discovery_table_free(decoded);

    EXPECT_EQ(a[0].generation, 2u);
    EXPECT_EQ(a[0].routes, 2u);
    EXPECT_EQ(a[0].added, 2u);
    EXPECT_EQ(a[0].unassigned, 0u);
    ASSERT_EQ(a[0].n, 1u);
    EXPECT_EQ(std::string(a[0].services[0].name, a[0].services[0].name_len),
              "users");
    EXPECT_EQ(a[0].services[0].routes, 2u);
    for (const discovery_metrics_assigned_t *x : {&a[0], &a[1]}) {
        EXPECT_EQ(x->generation, a[1].generation);
        EXPECT_EQ(x->routes, a[1].routes);
        EXPECT_EQ(x->added, a[1].added);
        EXPECT_EQ(x->n, a[1].n);
    }
    discovery_metrics_assigned_free(&a[0]);
    discovery_metrics_assigned_free(&a[1]);

    discovery_metrics_view_t view{};
    view.index = reinterpret_cast<discovery_metrics_index_t *>(given.index);
    view.base = given.base();
    discovery_buf_t out{};
    ASSERT_EQ(discovery_metrics_render(&view, &out, &err), DISCOVERY_OK);
    std::string text(reinterpret_cast<char *>(out.data), out.len);
    discovery_buf_free(&out);
    EXPECT_NE(text.find("{service=\"users\",route=\"/v\",method=\"POST\","
                        "code=\"2xx\"} 1\n"),
              std::string::npos)
        << text;

    discovery_buf_free(&table);
    discovery_buf_free(&next);
}

} // namespace
} // namespace discovery
