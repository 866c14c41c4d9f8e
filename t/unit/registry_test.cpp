// registry_test.cpp: etcd's JSON gateway as the registry reads it, and the
// validation of the service documents under PREFIX/services/.
#include "discovery_core.h"
#include "error.hpp"
#include "registry.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace discovery {
namespace {

std::string b64(std::string_view s)
{
    return encodeBase64(s);
}

std::string kv(const std::string &key, const std::string &value, int rev)
{
    return "{\"key\":\"" + b64(key) + "\",\"create_revision\":\""
           + std::to_string(rev) + "\",\"mod_revision\":\""
           + std::to_string(rev) + "\",\"version\":\"1\",\"value\":\""
           + b64(value) + "\"}";
}

std::string header(int rev)
{
    return "{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":\""
           + std::to_string(rev) + "\",\"raft_term\":\"3\"}";
}

std::string errorOf(std::string_view name, std::string_view doc)
{
    try {
        parseRegistryService(name, doc);
    } catch (const Error &e) {
        return e.what();
    }
    return "";
}

TEST(Base64, RoundTripsEveryLength)
{
    std::string s;
    for (int i = 0; i < 20; i++) {
        EXPECT_EQ(decodeBase64(encodeBase64(s)), s);
        s += char(i * 37);
    }
    EXPECT_EQ(encodeBase64("foo"), "Zm9v");
    EXPECT_EQ(encodeBase64("fo"), "Zm8=");
    EXPECT_EQ(decodeBase64("Zm8"), "fo");
    EXPECT_THROW(decodeBase64("Zm9v!"), Error);
    EXPECT_THROW(decodeBase64("Z"), Error);
}

TEST(RegistryService, OnlyUrlIsRequiredAndDefaultsAreTheDirectives)
{
    RegistryService s =
        parseRegistryService("chat", R"({"url":"http://127.0.0.1:8001/"})");
    EXPECT_EQ(s.url, "http://127.0.0.1:8001");
    EXPECT_EQ(s.intervalMs, 30000u);
    EXPECT_EQ(s.timeoutMs, 5000u);
    EXPECT_EQ(s.fails, 1u);
    EXPECT_EQ(s.passes, 1u);
    EXPECT_EQ(s.format, RegistryFormat::Auto);
    EXPECT_TRUE(s.uri.empty());
}

TEST(RegistryService, EveryOption)
{
    RegistryService s = parseRegistryService(
        "users", R"({"url":"https://users.internal:8443","interval":"10s",
                     "timeout":"500ms","fails":3,"passes":2,"uri":"/h",
                     "format":"openapi","prefix":["/users","/admin"],
                     "upstream":"users_pool"})");
    EXPECT_EQ(s.intervalMs, 10000u);
    EXPECT_EQ(s.timeoutMs, 500u);
    EXPECT_EQ(s.fails, 3u);
    EXPECT_EQ(s.passes, 2u);
    EXPECT_EQ(s.uri, "/h");
    EXPECT_EQ(s.format, RegistryFormat::OpenApi);
    EXPECT_EQ(s.prefixes, (std::vector<std::string>{"/users", "/admin"}));
    EXPECT_EQ(s.upstream, "users_pool");

    s = parseRegistryService("g", R"({"url":"grpc://10.0.0.1:50051",
                                      "interval":2})");
    EXPECT_EQ(s.format, RegistryFormat::Grpc);
    EXPECT_EQ(s.intervalMs, 2000u);
}

TEST(RegistryService, InvalidValuesAreRejectedWithAClearReason)
{
    EXPECT_EQ(errorOf("a", R"({"interval":"5s"})"),
              "service \"a\": no \"url\"");
    EXPECT_EQ(errorOf("a", R"({"url":"ftp://x"})"),
              "service \"a\": invalid URL \"ftp://x\", it must start with "
              "\"http://\", \"https://\", \"grpc://\" or \"grpcs://\"");
    EXPECT_EQ(errorOf("a", R"({"url":"http://x","interval":"500ms"})"),
              "service \"a\": invalid interval \"500ms\", the minimum is 1s");
    EXPECT_EQ(errorOf("a", R"({"url":"http://x","timeout":"soon"})"),
              "service \"a\": invalid timeout \"soon\"");
    EXPECT_EQ(errorOf("a", R"({"url":"http://x","fails":0})"),
              "service \"a\": invalid fails, it must be a number from 1 to "
              "1000");
    EXPECT_EQ(errorOf("a", R"({"url":"http://x","uri":"health"})"),
              "service \"a\": invalid uri \"health\", it must start with "
              "\"/\"");
    EXPECT_EQ(errorOf("a", R"({"url":"http://x","prefix":["users"]})"),
              "service \"a\": invalid prefix \"users\", it must start with "
              "\"/\"");
    EXPECT_EQ(errorOf("a", R"({"url":"http://x","format":"xml"})"),
              "service \"a\": invalid format \"xml\", it must be \"auto\", "
              "\"routes\", \"openapi\" or \"grpc\"");
    EXPECT_EQ(errorOf("a", R"({"url":"http://x","colour":"red"})"),
              "service \"a\": unknown option \"colour\"");
    EXPECT_EQ(errorOf("a", R"({"url":"http://u:p@x"})"),
              "service \"a\": a registry service's URL cannot hold "
              "credentials");
    EXPECT_EQ(errorOf("a", R"({"url":"http://x:99999"})"),
              "service \"a\": invalid port in URL \"http://x:99999\"");
    EXPECT_EQ(errorOf("a", R"({"url":"grpc://x/path"})"),
              "service \"a\": the gRPC URL \"grpc://x/path\" cannot have a "
              "path");
    EXPECT_EQ(errorOf("a", R"({"url":"http://x","format":"grpc"})"),
              "service \"a\": format \"grpc\" needs a grpc:// or grpcs:// "
              "URL");
    EXPECT_EQ(errorOf("a", R"({"url":"http://x?y"})"),
              "service \"a\": invalid URL \"http://x?y\"");
    EXPECT_EQ(errorOf("a", "[1]"),
              "service \"a\": the document is not a JSON object");
    EXPECT_NE(errorOf("a", "{\"url\":").find("is not valid JSON"),
              std::string::npos);
    EXPECT_EQ(errorOf("bad/name", R"({"url":"http://x"})"),
              "invalid service name \"bad/name\"");
}

/*
 * What discovery_service's own handler refuses must be refused here, with
 * the reason on the status page: a document the core took and nginx did
 * not was listed as valid, left out of every reload with an [emerg] in the
 * master's log naming nginx.conf, and never said why.
 */
TEST(RegistryService, RefusesUrlsNginxCannotTake)
{
    EXPECT_EQ(errorOf("a", R"({"url":"http://[zz]:80"})"),
              "service \"a\": invalid IPv6 address in URL "
              "\"http://[zz]:80\"");
    EXPECT_EQ(errorOf("a", R"({"url":"http://[127.0.0.1]:80"})"),
              "service \"a\": invalid IPv6 address in URL "
              "\"http://[127.0.0.1]:80\"");
    EXPECT_EQ(errorOf("a", R"({"url":"http://[fe80::1%eth0]:80"})"),
              "service \"a\": invalid IPv6 address in URL "
              "\"http://[fe80::1%eth0]:80\"");
    EXPECT_EQ(errorOf("a", R"({"url":"http://[]:80"})"),
              "service \"a\": invalid IPv6 address in URL "
              "\"http://[]:80\"");
    // nginx reads "unix:" as a socket's path: "80" here, upstream "80:0"
    EXPECT_EQ(errorOf("a", R"({"url":"http://unix:80"})"),
              "service \"a\": invalid URL \"http://unix:80\", a host nginx "
              "reads as a unix socket");
    EXPECT_EQ(errorOf("a", R"({"url":"grpc://UNIX:80"})"),
              "service \"a\": invalid URL \"grpc://UNIX:80\", a host nginx "
              "reads as a unix socket");

    EXPECT_EQ(errorOf("a", R"({"url":"http://[::1]:80"})"), "");
    EXPECT_EQ(errorOf("a", R"({"url":"http://[::1]"})"), "");
    EXPECT_EQ(errorOf("a", R"({"url":"http://[::ffff:127.0.0.1]:80/x"})"), "");
    EXPECT_EQ(errorOf("a", R"({"url":"http://unixbox:80"})"), "");
}

// The management API names a service in its path, where nginx resolves
// "." and ".." (escaped or not) before it looks: such a service could be
// neither polled nor drained there.
TEST(RegistryService, RefusesNamesThatArePathDotSegments)
{
    EXPECT_EQ(errorOf(".", R"({"url":"http://x"})"),
              "invalid service name \".\"");
    EXPECT_EQ(errorOf("..", R"({"url":"http://x"})"),
              "invalid service name \"..\"");
    EXPECT_EQ(errorOf("...", R"({"url":"http://x"})"), "");
    EXPECT_EQ(errorOf(".a", R"({"url":"http://x"})"), "");
}

TEST(Range, ReadsKeysValuesAndTheRevision)
{
    std::string body = "{\"header\":" + header(12) + ",\"kvs\":["
                       + kv("/p/services/a", "{}", 5) + "],\"count\":\"1\"}";
    RangeAnswer a = parseRangeAnswer(body);
    EXPECT_EQ(a.revision, 12);
    ASSERT_EQ(a.kvs.size(), 1u);
    EXPECT_EQ(a.kvs[0].key, "/p/services/a");
    EXPECT_EQ(a.kvs[0].value, "{}");
    EXPECT_EQ(a.kvs[0].modRevision, 5);

    // an empty range has no kvs at all
    a = parseRangeAnswer("{\"header\":" + header(3) + "}");
    EXPECT_EQ(a.revision, 3);
    EXPECT_TRUE(a.kvs.empty());

    EXPECT_THROW(parseRangeAnswer(R"({"error":{"grpc_code":14,
        "message":"etcdserver: no leader"}})"),
                 Error);
    try {
        parseRangeAnswer(
            R"({"code":16,"message":"etcdserver: invalid auth token"})");
        FAIL();
    } catch (const Error &e) {
        EXPECT_STREQ(e.what(), "etcd: \"etcdserver: invalid auth token\"");
    }
}

TEST(Requests, PrefixRangesAndStartRevision)
{
    EXPECT_EQ(prefixRangeEnd("/p/services/"), "/p/services0");
    EXPECT_EQ(rangeRequest("/p/", "/p0", 0, 0), "{\"key\":\"" + b64("/p/")
                                                    + "\",\"range_end\":\""
                                                    + b64("/p0") + "\"}");
    EXPECT_EQ(rangeRequest("/p/a", "/p0", 7, 12),
              "{\"key\":\"" + b64("/p/a") + "\",\"range_end\":\"" + b64("/p0")
                  + "\",\"limit\":\"7\",\"revision\":\"12\"}");
    EXPECT_EQ(watchRequest("/p/", 13),
              "{\"create_request\":{\"key\":\"" + b64("/p/")
                  + "\",\"range_end\":\"" + b64("/p0")
                  + "\",\"start_revision\":\"13\",\"fragment\":true}}");
    EXPECT_EQ(authRequest("root", "pw\""),
              R"({"name":"root","password":"pw\""})");
    EXPECT_EQ(
        parseAuthAnswer("{\"header\":" + header(1) + ",\"token\":\"abc.12\"}"),
        "abc.12");
    EXPECT_THROW(
        parseAuthAnswer(
            R"({"error":"etcdserver: authentication failed, invalid user ID or password","code":3})"),
        Error);
}

TEST(WatchStream, SplitsMessagesAcrossChunks)
{
    WatchStream s;
    std::string m;
    std::string one = R"({"result":{"header":{"revision":"2"},"x":"}{\""}})";
    std::string two = R"({"result":{"header":{"revision":"3"}}})";
    std::string all = one + "\n" + two + "\n";

    for (char c : all.substr(0, 10)) {
        s.feed(std::string(1, c));
    }
    EXPECT_FALSE(s.next(m));
    s.feed(all.substr(10));
    ASSERT_TRUE(s.next(m));
    EXPECT_EQ(m, one);
    ASSERT_TRUE(s.next(m));
    EXPECT_EQ(m, two);
    EXPECT_FALSE(s.next(m));
    EXPECT_EQ(s.pending(), 0u);

    s.feed("garbage");
    EXPECT_THROW(s.next(m), Error);
}

TEST(Watch, CreatedEventsDeletesCompactionAndErrors)
{
    WatchMessage m = parseWatchMessage("{\"result\":{\"header\":" + header(7)
                                       + ",\"created\":true}}");
    EXPECT_TRUE(m.created);
    EXPECT_EQ(m.revision, 7);

    m = parseWatchMessage(
        "{\"result\":{\"header\":" + header(9)
        + ",\"events\":[{\"kv\":" + kv("/p/services/a", "{}", 8)
        + "},{\"type\":\"DELETE\",\"kv\":{\"key\":\"" + b64("/p/services/b")
        + "\",\"mod_revision\":\"9\"}}]}}");
    ASSERT_EQ(m.events.size(), 2u);
    EXPECT_TRUE(m.events[0].put);
    EXPECT_FALSE(m.events[1].put);
    EXPECT_EQ(m.events[1].kv.key, "/p/services/b");

    m = parseWatchMessage("{\"result\":{\"header\":" + header(20)
                          + ",\"canceled\":true,\"compact_revision\":\"15\","
                            "\"cancel_reason\":\"mvcc: required revision has "
                            "been compacted\"}}");
    EXPECT_TRUE(m.canceled);
    EXPECT_EQ(m.compactRevision, 15);

    EXPECT_THROW(parseWatchMessage(R"({"error":{"grpc_code":14,"http_code":503,
        "message":"etcdserver: no leader","http_status":"Service Unavailable"}})"),
                 Error);
}

TEST(RegistryTable, LoadsAppliesAndCountsRealChangesOnly)
{
    RegistryTable t("/p/", true);
    RangeAnswer a;
    a.revision = 10;
    a.kvs = {{"/p/services/a", R"({"url":"http://a"})", 4},
             {"/p/services/b", R"({"url":"nope"})", 5},
             {"/p/routes/a", "ignored", 6}};
    t.load(a);
    EXPECT_EQ(t.revision(), 10);
    ASSERT_EQ(t.entries().size(), 2u);
    EXPECT_TRUE(t.entries().at("a").valid);
    EXPECT_FALSE(t.entries().at("b").valid);
    EXPECT_NE(t.entries().at("b").error.find("invalid URL"), std::string::npos);
    uint64_t v = t.version();

    // the same again (a resync): no change
    t.load(a);
    EXPECT_EQ(t.version(), v);

    WatchMessage m;
    m.revision = 12;
    m.events.push_back({true, {"/p/services/c", R"({"url":"http://c"})", 11}});
    m.events.push_back({false, {"/p/services/b", "", 12}});
    EXPECT_TRUE(t.apply(m));
    EXPECT_EQ(t.revision(), 12);
    EXPECT_EQ(t.version(), v + 1);
    EXPECT_EQ(t.entries().count("b"), 0u);
    EXPECT_EQ(t.entries().count("c"), 1u);

    // an invalid new value replaces the old one whole, never half of it
    m.events = {
        {true, {"/p/services/a", R"({"url":"http://a2","fails":0})", 13}}};
    m.revision = 13;
    EXPECT_TRUE(t.apply(m));
    EXPECT_FALSE(t.entries().at("a").valid);

    // the creation's header is the store's revision: events before it
    // may still come, and a watch made again must not skip them
    WatchMessage c;
    c.created = true;
    c.revision = 50;
    EXPECT_FALSE(t.apply(c));
    EXPECT_EQ(t.revision(), 13);

    // progress only
    WatchMessage p;
    p.revision = 20;
    EXPECT_FALSE(t.apply(p));
    EXPECT_EQ(t.revision(), 20);

    // a resync after a compaction drops what is gone
    a.revision = 30;
    a.kvs = {{"/p/services/c", R"({"url":"http://c"})", 11}};
    t.load(a);
    EXPECT_EQ(t.entries().size(), 1u);
    EXPECT_EQ(t.revision(), 30);
}

TEST(RegistryBridge, WatchStreamThroughTheCInterface)
{
    discovery_registry_t *r = discovery_registry_create("/p/", 3, 1);
    ASSERT_NE(r, nullptr);
    discovery_error_t err;
    int what;

    // the read's three ranges: before routes/, services/, routes/
    std::string empty = "{\"header\":" + header(4) + "}";
    std::string range = "{\"header\":" + header(4) + ",\"kvs\":["
                        + kv("/p/services/a", R"({"url":"http://a"})", 3)
                        + "]}";
    size_t pages = 9;
    for (const std::string *page : {&empty, &range, &empty}) {
        ASSERT_EQ(discovery_registry_load(
                      r, reinterpret_cast<const unsigned char *>(page->data()),
                      page->size(), &pages, &err),
                  DISCOVERY_OK)
            << err.text;
    }
    EXPECT_EQ(pages, 3u);
    EXPECT_EQ(discovery_registry_revision(r), 4);

    discovery_buf_t body{nullptr, 0};
    ASSERT_EQ(discovery_registry_watch_request(r, &body, &err), DISCOVERY_OK);
    EXPECT_NE(std::string(reinterpret_cast<char *>(body.data), body.len)
                  .find("\"start_revision\":\"5\""),
              std::string::npos);
    discovery_buf_free(&body);

    std::string stream =
        "{\"result\":{\"header\":" + header(4) + ",\"created\":true}}\n"
        + "{\"result\":{\"header\":" + header(6) + ",\"canceled\":true,"
        + "\"compact_revision\":\"5\"}}\n{\"error\":{\"message\":\"x\"}}";
    ASSERT_EQ(discovery_registry_watch_feed(
                  r, reinterpret_cast<const unsigned char *>(stream.data()),
                  stream.size(), &err),
              DISCOVERY_OK);
    ASSERT_EQ(discovery_registry_watch_next(r, &what, &err), DISCOVERY_OK);
    EXPECT_EQ(what, DISCOVERY_WATCH_CREATED);
    ASSERT_EQ(discovery_registry_watch_next(r, &what, &err), DISCOVERY_OK);
    EXPECT_EQ(what, DISCOVERY_WATCH_COMPACTED);
    EXPECT_EQ(discovery_registry_watch_next(r, &what, &err), DISCOVERY_ERROR);
    EXPECT_STREQ(err.text, "etcd: \"x\"");
    ASSERT_EQ(discovery_registry_watch_next(r, &what, &err), DISCOVERY_OK);
    EXPECT_EQ(what, DISCOVERY_WATCH_MORE);

    size_t valid;
    EXPECT_EQ(discovery_registry_count(r, &valid), 1u);
    EXPECT_EQ(valid, 1u);

    ASSERT_EQ(discovery_registry_status(r, &body, &err), DISCOVERY_OK);
    EXPECT_EQ(
        std::string(reinterpret_cast<char *>(body.data), body.len),
        R"([{"name":"a","mod_revision":3,"valid":true,"url":"http://a"}])");
    discovery_buf_free(&body);

    discovery_registry_destroy(r);
}

TEST(RegistryTable, TracksTheOverridesKeyApartFromTheServices)
{
    RegistryTable t("/p/", true);
    RangeAnswer a;
    a.revision = 2;
    a.kvs = {{"/p/overrides/controls", std::string("\x01\0\x02", 3), 2}};
    t.load(a);
    EXPECT_EQ(t.overrides(), std::string("\x01\0\x02", 3));
    EXPECT_TRUE(t.hasOverrides());
    EXPECT_TRUE(t.entries().empty());
    uint64_t v = t.overridesVersion();

    t.load(a);
    EXPECT_EQ(t.overridesVersion(), v);

    WatchMessage m;
    m.events = {{false, {"/p/overrides/controls", "", 3}}};
    EXPECT_FALSE(t.apply(m));
    EXPECT_EQ(t.overrides(), "");
    EXPECT_FALSE(t.hasOverrides());
    EXPECT_EQ(t.overridesVersion(), v + 1);

    // an empty value is a key all the same: every override was deleted
    m.events = {{true, {"/p/overrides/controls", "", 4}}};
    t.apply(m);
    EXPECT_TRUE(t.hasOverrides());
    EXPECT_EQ(t.overridesVersion(), v + 2);

    // written only over the revision last seen: a txn comparing it, which
    // reads the key's revision, keys only, where it is another
    std::string k = b64("/p/overrides/controls");
    EXPECT_EQ(overridesRequest("/p/overrides/controls", "ab", 4),
              "{\"compare\":[{\"key\":\"" + k
                  + "\",\"result\":\"EQUAL\",\"target\":\"MOD\","
                    "\"mod_revision\":\"4\"}],\"success\":[{\"request_put\":"
                    "{\"key\":\"" + k
                  + "\",\"value\":\"YWI=\",\"lease\":\"0\"}}],"
                    "\"failure\":[{\"request_range\":{\"key\":\"" + k
                  + "\",\"keys_only\":true}}]}");
}

// What such a txn's answer says: written, or the revision it found.
TEST(Requests, TheOverridesAnswerSaysWhereTheKeyIs)
{
    std::string h = "\"header\":{\"revision\":\"9\"}";
    int64_t found = -1;
    EXPECT_TRUE(parseOverridesAnswer("{" + h + ",\"succeeded\":true}", found));

    std::string kv = "{\"key\":\"" + b64("/p/overrides/controls")
                     + "\",\"create_revision\":\"3\",\"mod_revision\":\"8\"}";
    EXPECT_FALSE(parseOverridesAnswer(
        "{" + h + ",\"responses\":[{\"response_range\":{" + h
            + ",\"kvs\":[" + kv + "],\"count\":\"1\"}}]}",
        found));
    EXPECT_EQ(found, 8);

    // no key: etcd leaves out "kvs" and "count"
    EXPECT_FALSE(parseOverridesAnswer(
        "{" + h + ",\"responses\":[{\"response_range\":{" + h + "}}]}", found));
    EXPECT_EQ(found, 0);

    for (const std::string &bad :
         {std::string("not json"), std::string("{}"), "{" + h + "}",
          "{" + h + ",\"responses\":[]}",
          "{" + h + ",\"responses\":[{\"response_put\":{}}]}",
          "{" + h + ",\"responses\":[{\"response_range\":{\"kvs\":[" + kv
              + "," + kv + "]}}]}",
          std::string("{\"error\":\"etcdserver: too many requests\","
                      "\"code\":14}")}) {
        EXPECT_THROW(parseOverridesAnswer(bad, found), Error) << bad;
    }
}

/*
 * The overrides' revision, which their write compares: as read, as each
 * event brings it (the same value written again too), 0 once deleted.
 */
TEST(RegistryTable, KnowsTheRevisionOfTheOverrides)
{
    RegistryTable t("/p/", false);
    EXPECT_EQ(t.overridesRevision(), 0);

    RangeAnswer a;
    a.revision = 9;
    a.kvs = {{"/p/overrides/controls", "x", 7}};
    t.load(a);
    EXPECT_EQ(t.overridesRevision(), 7);

    WatchMessage m;
    m.events = {{true, {"/p/overrides/controls", "x", 10}}};
    t.apply(m);
    EXPECT_EQ(t.overridesRevision(), 10);

    m.events = {{false, {"/p/overrides/controls", "", 11}}};
    t.apply(m);
    EXPECT_EQ(t.overridesRevision(), 0);

    m.events = {{true, {"/p/overrides/controls", "y", 12}}};
    t.apply(m);
    EXPECT_EQ(t.overridesRevision(), 12);

    a.revision = 14;
    a.kvs.clear();
    t.load(a);
    EXPECT_EQ(t.overridesRevision(), 0);

    // the body the C side sends compares it
    a.kvs = {{"/p/overrides/controls", "z", 13}};
    t.load(a);
    EXPECT_NE(overridesRequest(t.overridesKey(), "w", t.overridesRevision())
                  .find("\"mod_revision\":\"13\""),
              std::string::npos);
}

TEST(Requests, TheCheckOfAMemberIsALinearizableCountOfOneKey)
{
    // no range_end: one key; no "serializable": the leader is asked
    EXPECT_EQ(checkRequest("/p/"),
              "{\"key\":\"" + b64("/p/") + "\",\"count_only\":true}");

    discovery_registry_t *r = discovery_registry_create("/fleet/", 7, 1);
    ASSERT_NE(r, nullptr);
    discovery_error_t err;
    discovery_buf_t body{nullptr, 0};
    ASSERT_EQ(discovery_registry_check_request(r, &body, &err), DISCOVERY_OK);
    EXPECT_EQ(std::string(reinterpret_cast<char *>(body.data), body.len),
              checkRequest("/fleet/"));
    discovery_buf_free(&body);
    discovery_registry_destroy(r);
}

/*
 * The configuration takes the registry's services in the serving order,
 * and of two services that claim one route the first keeps it: that order
 * must be the order they registered in (etcd's create_revision, the same
 * on every gateway), not their names', or a service registered later
 * under a name that sorts first takes a running service's routes.
 */
TEST(RegistryServing, InTheOrderTheServicesRegistered)
{
    // a key as etcd sends it, created at one revision, last written at another
    auto key = [](const std::string &name, int created, int modified) {
        std::string json = "{\"key\":\"" + b64("/p/services/" + name)
                           + "\",\"create_revision\":\""
                           + std::to_string(created) + "\",\"mod_revision\":\""
                           + std::to_string(modified) + "\",\"value\":\""
                           + b64("{\"url\":\"http://" + name + "\"}") + "\"}";
        return parseRangeAnswer("{\"header\":" + header(30) + ",\"kvs\":["
                                + json + "]}")
            .kvs[0];
    };
    auto order = [](const RegistryTable &t) {
        std::string names;
        for (const RegistryService &s : servingServices(t.servingJson())) {
            names += s.name + " ";
        }
        return names;
    };

    // "a-evil" registered after "pay"; "m" first, and written since
    RegistryTable t("/p/", true);
    RangeAnswer a;
    a.revision = 20;
    a.kvs = {key("a-evil", 9, 12), key("m", 2, 15), key("pay", 5, 5)};
    t.load(a);
    EXPECT_EQ(order(t), "m pay a-evil ");

    // "m" deleted and made again while the gateway was away: a resync shows
    // the same document with a new create_revision, and it goes last
    uint64_t v = t.version();
    a.kvs[1] = key("m", 18, 18);
    t.load(a);
    EXPECT_EQ(t.version(), v + 1);
    EXPECT_EQ(order(t), "pay a-evil m ");

    // and through the watch
    WatchMessage m;
    m.revision = 22;
    m.events.push_back({false, {"/p/services/pay", "", 21}});
    m.events.push_back({true, key("pay", 22, 22)});
    EXPECT_TRUE(t.apply(m));
    EXPECT_EQ(order(t), "a-evil m pay ");
}

TEST(RegistryServing, TheValidServicesAsDirectiveArguments)
{
    RegistryTable t("/p/", true);
    RangeAnswer a;
    a.revision = 3;
    a.kvs = {{"/p/services/b", R"({"url":"http://b","uri":"/h","prefix":["/x"],
                                   "interval":"2s","upstream":"pool"})",
              1},
             {"/p/services/a", R"({"url":"grpc://a:50051"})", 2},
             {"/p/services/c", R"({"url":"nope"})", 3}};
    t.load(a);
    std::string serving = t.servingJson();
    EXPECT_EQ(serving.find("\"c\""), std::string::npos);

    std::vector<RegistryService> services = servingServices(serving);
    ASSERT_EQ(services.size(), 2u);
    EXPECT_EQ(services[0].name, "a");
    EXPECT_EQ(directiveArgs(services[0]),
              (std::vector<std::string>{"grpc://a:50051", "interval=30000ms",
                                        "timeout=5000ms", "fails=1", "passes=1",
                                        "format=grpc"}));
    EXPECT_EQ(directiveArgs(services[1]),
              (std::vector<std::string>{"http://b", "interval=2000ms",
                                        "timeout=5000ms", "fails=1", "passes=1",
                                        "uri=/h", "format=auto", "prefix=/x",
                                        "upstream=pool"}));

    discovery_buf_t out{nullptr, 0};
    discovery_error_t err;
    ASSERT_EQ(discovery_registry_args(
                  reinterpret_cast<const unsigned char *>(serving.data()),
                  serving.size(), &out, &err),
              DISCOVERY_OK);
    std::string flat(reinterpret_cast<char *>(out.data), out.len);
    EXPECT_EQ(flat.substr(0, 16), std::string("a\0grpc://a:50051", 16));
    EXPECT_EQ(flat.substr(flat.size() - 2), std::string("\0\0", 2));
    discovery_buf_free(&out);

    EXPECT_THROW(servingServices("[1]"), Error);
}

// A hostile etcd or registrant: a document nested a million deep is refused
// before it is parsed (yajl frees a tree recursively: that one overflowed
// the worker's stack and killed it).
TEST(RegistryAttack, DeepJsonIsRefusedNotParsed)
{
    std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
    std::string doc = R"({"url":"http://x","prefix":)" + deep + "}";

    EXPECT_EQ(errorOf("a", doc),
              "service \"a\": the document is not valid JSON: nested deeper "
              "than 64");
    EXPECT_EQ(errorOf("a", R"({"url":"http://x","prefix":[["\"]]]]"]]})"),
              "service \"a\": \"prefix\" must be a string");

    std::string range = R"({"header":)" + header(3) + R"(,"x":)" + deep + "}";
    EXPECT_THROW(parseRangeAnswer(range), Error);
    EXPECT_THROW(parseWatchMessage(R"({"result":)" + deep + "}"), Error);
}

// Every byte the gateway would put on a request line or in a log is checked:
// a uri with CRLF or a space was taken, and every poll then failed.
TEST(RegistryAttack, ControlBytesAndSpacesInOptionsAreRefused)
{
    EXPECT_EQ(errorOf("a", R"({"url":"http://x","uri":"/h\r\nX-A: b"})"),
              "service \"a\": invalid uri \"/h\\r\\nX-A: b\"");
    EXPECT_EQ(errorOf("a", R"({"url":"http://x","uri":"/h x"})"),
              "service \"a\": invalid uri \"/h x\"");
    EXPECT_EQ(errorOf("a", R"({"url":"http://x","prefix":["/a b"]})"),
              "service \"a\": invalid prefix \"/a b\"");
    EXPECT_EQ(errorOf("a", R"({"url":"http://x","prefix":"/a\u007f"})"),
              "service \"a\": invalid prefix \"/a\x7f\"");
    EXPECT_EQ(errorOf("a", R"({"url":"http://x","upstream":"p\tq"})"),
              "service \"a\": invalid upstream \"p\\tq\"");
    EXPECT_EQ(errorOf("a", R"({"url":"http://x","uri":"/h?a=b&c"})"), "");
}

// A watch message that comes a byte at a time is scanned once, not once per
// byte: a 1 MB message took minutes of the worker's event loop.
TEST(RegistryAttack, AWatchMessageFedByteByByteIsScannedOnce)
{
    std::string big = R"({"result":{"header":{"revision":"2"},"x":")"
                      + std::string(1 << 20, 'a') + "\"}}\n";
    WatchStream s;
    std::string m;
    size_t found = 0;

    auto start = std::chrono::steady_clock::now();
    for (int round = 0; round < 2; round++) {
        for (char c : big) {
            s.feed(std::string_view(&c, 1));
            while (s.next(m)) {
                found++;
                EXPECT_EQ(m.size(), big.size() - 1);
            }
        }
    }
    auto took = std::chrono::steady_clock::now() - start;

    EXPECT_EQ(found, 2u);
    EXPECT_EQ(s.pending(), 0u);
    EXPECT_LT(
        std::chrono::duration_cast<std::chrono::milliseconds>(took).count(),
        3000);
}

} // namespace
} // namespace discovery
