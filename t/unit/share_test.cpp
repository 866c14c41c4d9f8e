// share_test.cpp: share=on in the core: the claims and routes the registry
// tracks, the requests that make them, and the routes' values, which the
// route document parser must read back as the very routes written.
#include "discovery_core.h"
#include "error.hpp"
#include "registry.hpp"
#include "route_document_support.hpp"
#include "snapshot.hpp"
#include "status_json.hpp"

#include <gtest/gtest.h>

namespace discovery {
namespace {

std::string stateError(std::string_view value,
                       std::string_view url = "http://u")
{
    try {
        shareState(value, url);
    } catch (const Error &e) {
        return e.what();
    }
    return "";
}

TEST(Share, TheTableTracksClaimsAndRoutesApartFromTheServices)
{
    RegistryTable t("/p/", true);
    RangeAnswer a;
    a.revision = 10;
    a.kvs = {{"/p/services/a", R"({"url":"http://a"})", 4, 0},
             {"/p/pollers/a", "7", 5, 7},
             {"/p/pollers/b", "planted", 6, 0},
             {"/p/routes/a", R"({"state":"healthy","routes":[]})", 6, 7}};
    t.load(a);
    EXPECT_EQ(t.entries().size(), 1u);
    EXPECT_EQ(t.pollers().at("a"), 7);
    // a key bound to no lease is told apart from no key
    EXPECT_EQ(t.pollers().at("b"), -1);
    EXPECT_EQ(t.routes().at("a").value, R"({"state":"healthy","routes":[]})");
    EXPECT_EQ(t.routes().at("a").lease, 7);
    uint64_t v = t.shareVersion();
    uint64_t services = t.version();

    t.load(a);
    EXPECT_EQ(t.shareVersion(), v);

    WatchMessage m;
    m.revision = 12;
    m.events.push_back({false, {"/p/pollers/a", "", 11, 0}});
    m.events.push_back({true, {"/p/pollers/a", "9", 12, 9}});
    EXPECT_FALSE(t.apply(m)); // no service changed
    EXPECT_EQ(t.version(), services);
    EXPECT_EQ(t.pollers().at("a"), 9);
    EXPECT_GT(t.shareVersion(), v);

    m.events = {{false, {"/p/routes/a", "", 13, 0}}};
    m.revision = 13;
    t.apply(m);
    EXPECT_EQ(t.routes().count("a"), 0u);

    // the bridge's view of it
    discovery_registry_t *r = discovery_registry_create("/p/", 3, 1);
    ASSERT_NE(r, nullptr);
    std::string body = "{\"header\":{\"revision\":\"3\"},\"kvs\":[{\"key\":\""
                       + encodeBase64("/p/pollers/x") + "\",\"value\":\""
                       + encodeBase64("1f")
                       + "\",\"lease\":\"31\",\"mod_revision\":\"3\"}]}";
    discovery_error_t err;
    // pollers/ is in the read's first range, services/ and routes/ empty
    std::string empty = "{\"header\":{\"revision\":\"3\"}}";
    size_t pages = 0;
    for (const std::string *page : {&body, &empty, &empty}) {
        ASSERT_EQ(discovery_registry_load(
                      r, reinterpret_cast<const unsigned char *>(page->data()),
                      page->size(), &pages, &err),
                  DISCOVERY_OK)
            << err.text;
    }
    ASSERT_EQ(pages, 3u);
    EXPECT_EQ(discovery_registry_poller(r, "x", 1), 31);
    EXPECT_EQ(discovery_registry_poller(r, "y", 1), 0);
    const unsigned char *value;
    size_t len;
    int64_t lease;
    EXPECT_EQ(discovery_registry_routes(r, "x", 1, &value, &len, &lease), 0);
    discovery_registry_destroy(r);
}

TEST(Share, ClaimAndRoutesAreTxnsBoundToTheLease)
{
    std::string claim = claimRequest("/p/pollers/a", 255);
    EXPECT_EQ(claim, "{\"compare\":[{\"key\":\"" + encodeBase64("/p/pollers/a")
                         + "\",\"result\":\"EQUAL\",\"target\":\"CREATE\","
                           "\"create_revision\":\"0\"}],\"success\":[{"
                           "\"request_put\":{\"key\":\""
                         + encodeBase64("/p/pollers/a") + "\",\"value\":\""
                         + encodeBase64("ff") + "\",\"lease\":\"255\"}}]}");

    std::string routes = routesRequest("/p/pollers/a", "/p/routes/a", 255, "V");
    EXPECT_NE(routes.find("\"target\":\"LEASE\",\"lease\":\"255\""),
              std::string::npos);
    EXPECT_NE(routes.find("\"key\":\"" + encodeBase64("/p/routes/a")
                          + "\",\"value\":\"" + encodeBase64("V")
                          + "\",\"lease\":\"255\""),
              std::string::npos);

    EXPECT_EQ(leaseGrantRequest(3), "{\"TTL\":\"3\"}");
    EXPECT_EQ(leaseKeepAliveRequest(42), "{\"ID\":\"42\"}");

    int64_t lease = 0, ttl = 0;
    parseLeaseAnswer(R"({"header":{},"ID":"42","TTL":"3"})", lease, ttl);
    EXPECT_EQ(lease, 42);
    EXPECT_EQ(ttl, 3);
    // a keepalive of a lease etcd no longer has: no TTL
    parseLeaseAnswer(R"({"result":{"header":{},"ID":"42"}})", lease, ttl);
    EXPECT_EQ(ttl, 0);
    EXPECT_THROW(parseLeaseAnswer(R"({"header":{}})", lease, ttl), Error);
    EXPECT_THROW(parseLeaseAnswer(R"({"error":"etcdserver: no leader",)"
                                  R"("code":14})",
                                  lease, ttl),
                 Error);

    EXPECT_TRUE(parseTxnAnswer(R"({"header":{},"succeeded":true})"));
    EXPECT_FALSE(parseTxnAnswer(R"({"header":{}})"));
    EXPECT_THROW(parseTxnAnswer("[1]"), Error);
}

TEST(Share, ClaimsOfServicesNoLongerConfiguredAreGivenUp)
{
    RegistryTable t("/p/", true);
    RangeAnswer a;
    a.revision = 3;
    a.kvs = {{"/p/pollers/kept", "ff", 1, 255},
             {"/p/pollers/gone", "ff", 2, 255},
             {"/p/pollers/theirs", "1", 3, 1}};
    t.load(a);
    std::string names("kept\0other\0", 11);
    EXPECT_EQ(t.orphans(255, names), std::vector<std::string>{"gone"});
    EXPECT_EQ(t.orphans(1, names), std::vector<std::string>{"theirs"});

    std::string release =
        releaseRequest("/p/pollers/gone", "/p/routes/gone", 255);
    EXPECT_NE(release.find("\"target\":\"LEASE\",\"lease\":\"255\""),
              std::string::npos);
    EXPECT_NE(release.find("{\"request_delete_range\":{\"key\":\""
                           + encodeBase64("/p/routes/gone") + "\"}}"),
              std::string::npos);
}

TEST(Share, TheOthersLeasesAreLookedAtInTurnEachOnce)
{
    RegistryTable t("/p/", true);
    RangeAnswer a;
    a.revision = 3;
    a.kvs = {{"/p/pollers/a", "", 1, 300},
             {"/p/pollers/b", "", 2, 100},
             {"/p/pollers/c", "", 3, 255},
             {"/p/pollers/d", "", 4, 100},
             {"/p/pollers/theirs", "", 4, 500},
             {"/p/pollers/planted", "", 5, 0}};
    t.load(a);

    // none before the gateway says which services it has
    EXPECT_EQ(t.claimantAfter(255, 0), 0);
    // theirs is not this gateway's service: its claimant is not looked at
    t.setConfigured(std::string("a\0b\0c\0d\0planted\0gone\0", 21));

    std::vector<int64_t> seen;
    for (int64_t l = t.claimantAfter(255, 0); l != 0;
         l = t.claimantAfter(255, l)) {
        seen.push_back(l);
    }
    EXPECT_EQ(seen, (std::vector<int64_t>{100, 300}));
    EXPECT_EQ(t.claimantAfter(0, 0), 100);
    EXPECT_EQ(t.claimantAfter(0, 300), 0);
    EXPECT_EQ(RegistryTable("/p/", true).claimantAfter(0, 0), 0);

    // etcd's time to live: whole seconds, none under one, -1 once gone
    int64_t lease = 0, ttl = 0;
    parseLeaseAnswer(R"({"header":{},"ID":"100","TTL":"2","grantedTTL":"3"})",
                     lease, ttl);
    EXPECT_EQ(ttl, 2);
    parseLeaseAnswer(R"({"header":{},"ID":"100","grantedTTL":"3"})", lease,
                     ttl);
    EXPECT_EQ(ttl, 0);
    parseLeaseAnswer(R"({"header":{},"ID":"100","TTL":"-1"})", lease, ttl);
    EXPECT_EQ(ttl, -1);
    EXPECT_THROW(parseLeaseAnswer(R"({"ID":"100","TTL":"-0"})", lease, ttl),
                 Error);
    EXPECT_THROW(parseLeaseAnswer(R"({"ID":"-100","TTL":"3"})", lease, ttl),
                 Error);
}

TEST(Share, AValueIsReadBackAsTheRoutesWritten)
{
    Snapshot snap;
    Service s;
    s.name = "users";
    s.url = "http://u";
    s.state = ServiceState::Healthy;
    s.routeSet.version = "2.1";
    Route r;
    r.path = "/users/{id:int}";
    r.methods = kGet | kHead | kPut;
    r.extensionMethods = {"PURGE"};
    r.authRequired = true;
    r.name = "user";
    r.tags = {"a", "b"};
    s.routeSet.routes.push_back(r);
    Route ws;
    ws.path = "/users/live";
    ws.methods = kGet;
    ws.websocket = true;
    s.routeSet.routes.push_back(ws);
    Route g;
    g.path = "/pkg.Users/Watch";
    g.methods = kPost;
    g.protocol = Protocol::Grpc;
    g.streaming = Streaming::Server;
    s.routeSet.routes.push_back(g);
    snap.services.push_back(s);

    Service down;
    down.name = "down";
    down.url = "http://d";
    down.state = ServiceState::Unhealthy;
    snap.services.push_back(down);

    Service pending;
    pending.name = "new";
    pending.url = "http://n";
    snap.services.push_back(pending);

    Bytes blob = encodeSnapshot(snap);
    auto values = shareValues(blob.data(), blob.size());

    // in the roster's order; nothing for a service not polled yet
    ASSERT_EQ(values.size(), 3u);
    EXPECT_EQ(values[0].first, "users");
    EXPECT_EQ(values[1].first, "down");
    EXPECT_EQ(values[2].first, "new");
    EXPECT_EQ(values[2].second, "");
    EXPECT_EQ(shareState(values[0].second, "http://u"),
              int(ServiceState::Healthy));
    EXPECT_EQ(shareState(values[1].second, "http://d"),
              int(ServiceState::Unhealthy));
    EXPECT_EQ(values[1].second,
              R"({"state":"unhealthy","url":"http://d","routes":[]})");

    RouteSet back = parse(values[0].second, DocumentFormat::Routes);
    EXPECT_EQ(back, s.routeSet);

    // the same table, the same bytes: an unchanged poll is no write
    Bytes again = encodeSnapshot(snap);
    EXPECT_EQ(shareValues(again.data(), again.size()), values);
}

TEST(ShareAttack, ValuesThatAreNotOursAreRefusedWhole)
{
    EXPECT_NE(stateError("not json"), "");
    EXPECT_NE(stateError("[]"), "");
    EXPECT_NE(stateError(R"({"routes":[]})").find("\"state\""),
              std::string::npos);
    EXPECT_NE(stateError(R"({"state":"pending","routes":[]})"), "");
    EXPECT_NE(stateError(R"({"state":1})"), "");
    EXPECT_NE(stateError(std::string(100000, '[')).find("deeper"),
              std::string::npos);
    EXPECT_EQ(stateError(R"({"state":"healthy"})"), "");

    // the same name, another service: the URL polled says so
    EXPECT_EQ(stateError(R"({"state":"healthy","url":"http://u"})"), "");
    EXPECT_NE(stateError(R"({"state":"healthy","url":"http://v"})")
                  .find("of the service at \"http://v\", not of this "
                        "gateway's at \"http://u\""),
              std::string::npos);
    EXPECT_NE(stateError(R"({"state":"healthy","url":7})").find("no URL"),
              std::string::npos);
}

TEST(Share, TheStatusPageSaysWhoPollsEachService)
{
    Snapshot snap;
    Service a;
    a.name = "a";
    a.url = "http://a";
    snap.services.push_back(a);
    Service b = a;
    b.name = "b";
    snap.services.push_back(b);
    Service c = a;
    c.name = "c";
    snap.services.push_back(c);

    std::vector<ServiceStats> stats(3);
    stats[0].name = "a";
    stats[0].poller = 1;
    stats[0].pollerLease = 255;
    stats[1].name = "b";
    stats[1].poller = 2;
    stats[1].pollerLease = 4096;
    stats[2].name = "c"; // share=off: no "poller"

    std::string page = renderStatus(snap, stats);
    EXPECT_NE(page.find("\"poller\":{\"self\":true,\"lease\":\"ff\"}"),
              std::string::npos);
    EXPECT_NE(page.find("\"poller\":{\"self\":false,\"lease\":\"1000\"}"),
              std::string::npos);
    EXPECT_EQ(page.find("\"poller\"", page.find("\"name\":\"c\"")),
              std::string::npos);
}

} // namespace
} // namespace discovery
