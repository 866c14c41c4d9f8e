// status_json_test.cpp: the status page and JSON escaping, checked by yajl.
#include "discovery_core.h"
#include "json_escape.hpp"
#include "methods.hpp"
#include "snapshot.hpp"
#include "status_json.hpp"

#include <gtest/gtest.h>
#include <yajl/yajl_tree.h>

#include <memory>

namespace discovery {
namespace {

// Status pages are shallow: yajl_tree's recursive free is fine here.
using Tree = std::unique_ptr<yajl_val_s, decltype(&yajl_tree_free)>;

Tree parseJson(const std::string &json)
{
    char err[256] = "";
    yajl_val v = yajl_tree_parse(json.c_str(), err, sizeof(err));
    EXPECT_NE(v, nullptr) << err << "\n" << json;
    return Tree(v, &yajl_tree_free);
}

yajl_val at(yajl_val v, std::vector<const char *> path)
{
    path.push_back(nullptr);
    return yajl_tree_get(v, path.data(), yajl_t_any);
}

std::string str(yajl_val v)
{
    return YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : "<not a string>";
}

std::string escape(const std::string &s)
{
    auto src = reinterpret_cast<const unsigned char *>(s.data());
    size_t n = discovery_json_escape(nullptr, src, s.size());
    std::string out(n, '\0');
    size_t written = discovery_json_escape(
        reinterpret_cast<unsigned char *>(&out[0]), src, s.size());
    EXPECT_EQ(written, n);
    return out;
}

TEST(JsonEscape, QuotesBackslashesControls)
{
    EXPECT_EQ(escape("a\"b\\c"), "a\\\"b\\\\c");
    EXPECT_EQ(escape("\n\r\t\b\f"), "\\n\\r\\t\\b\\f");
    EXPECT_EQ(escape(std::string("\0\x01\x1f", 3)), "\\u0000\\u0001\\u001f");
    EXPECT_EQ(escape("\x7f"), "\x7f");
    EXPECT_EQ(escape("/plain/ascii"), "/plain/ascii");
}

TEST(JsonEscape, KeepsValidUtf8)
{
    std::string s = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf";
    EXPECT_EQ(escape(s), s);
}

TEST(JsonEscape, ReplacesInvalidUtf8)
{
    const std::string r = "\\ufffd";

    EXPECT_EQ(escape("\xff"), r);
    EXPECT_EQ(escape("\x80"), r);
    EXPECT_EQ(escape("\xc0\xaf"), r + r);                 // overlong '/'
    EXPECT_EQ(escape("\xe0\x80\xaf"), r + r + r);         // overlong, 3 bytes
    EXPECT_EQ(escape("\xed\xa0\x80"), r + r + r);         // surrogate D800
    EXPECT_EQ(escape("\xf4\x90\x80\x80"), r + r + r + r); // > U+10FFFF
    EXPECT_EQ(escape("\xe2\x82"), r);        // truncated at the end
    EXPECT_EQ(escape("\xe2\x82x"), r + "x"); // truncated mid-string
    EXPECT_EQ(escape("a\xf0\x9f\x98"), "a" + r);
    EXPECT_TRUE(isValidUtf8("\xe2\x82\xac"));
    EXPECT_FALSE(isValidUtf8("\xe2\x82"));

    // a bad sequence at every place among ASCII read 8 bytes at a time
    for (const std::string bad : {"\xff", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82"}) {
        for (size_t at = 0; at <= 17; at++) {
            std::string s = std::string(at, 'a') + bad + std::string(9, 'b');
            EXPECT_FALSE(isValidUtf8(s)) << at;
            EXPECT_TRUE(isValidUtf8(std::string(at, 'a') + "\xe2\x82\xac"
                                    + std::string(9, 'b')))
                << at;
        }
    }
}

TEST(JsonEscape, EveryByteYieldsValidJson)
{
    std::string all;
    for (int i = 0; i < 256; i++) {
        all += static_cast<char>(i);
    }
    all += all; // with every pair boundary

    std::string json = "[\"" + escape(all) + "\"]";
    Tree tree = parseJson(json);
    ASSERT_TRUE(tree);
    EXPECT_TRUE(YAJL_IS_ARRAY(tree.get()));
}

TEST(JsonEscape, NullSource)
{
    EXPECT_EQ(discovery_json_escape(nullptr, nullptr, 0), 0u);
}

Snapshot hostileSnapshot()
{
    Snapshot snap;
    snap.generation = 9;

    Service a;
    a.name = "a\"\\\n\x01\xff";
    a.url = "http://a/\xc0\xaf";
    a.upstream = "up_a";
    a.state = ServiceState::Healthy;
    a.routeSet.version = "v\xed\xa0\x80";
    Route r;
    r.path = "/users/{id}";
    r.methods = kGet | kDelete;
    r.extensionMethods = {"LOCK", "PROPFIND"};
    r.name = "get\"user";
    r.tags = {"t\t1", "\xe2\x82"};
    r.authRequired = true;
    a.routeSet.routes.push_back(r);

    Service b;
    b.name = "b";
    b.url = "http://b";
    b.upstream = "up_b";
    b.state = ServiceState::Unhealthy;
    Route loser;
    loser.path = "/users/{user_id}";
    loser.methods = kGet | kPost;
    loser.extensionMethods = {"PROPFIND"};
    loser.websocket = true;
    b.routeSet.routes.push_back(loser);

    Service c;
    c.name = "c";

    snap.services = {a, b, c};
    snap.extensionMethods = {"LOCK", "PROPFIND"};
    snap.conflicts.push_back({kGet | 1u << (kMethodCount + 1), 0, 0, 1, 0});
    return snap;
}

TEST(StatusJson, RendersEverythingAsValidJson)
{
    Snapshot snap = hostileSnapshot();
    std::vector<ServiceStats> stats(2);
    stats[0].name = "b";
    stats[0].lastCheck = 1795843800;
    stats[0].lastSuccess = 0;
    stats[0].failures = 4;
    stats[0].lastError = "connect() failed\n\"refused\"\xff";
    stats[1].name = "nobody";

    std::string json = renderStatus(snap, stats);
    Tree tree = parseJson(json);
    ASSERT_TRUE(tree);
    yajl_val root = tree.get();

    EXPECT_EQ(YAJL_GET_INTEGER(at(root, {"generation"})), 9);
    yajl_val services = at(root, {"services"});
    ASSERT_TRUE(YAJL_IS_ARRAY(services));
    ASSERT_EQ(YAJL_GET_ARRAY(services)->len, 3u);

    yajl_val a = YAJL_GET_ARRAY(services)->values[0];
    EXPECT_EQ(str(at(a, {"name"})), "a\"\\\n\x01\xef\xbf\xbd");
    EXPECT_EQ(str(at(a, {"state"})), "healthy");
    EXPECT_TRUE(YAJL_IS_NULL(at(a, {"last_check"})));
    EXPECT_EQ(YAJL_GET_INTEGER(at(a, {"failures"})), 0);
    EXPECT_TRUE(YAJL_IS_NULL(at(a, {"last_error"})));

    yajl_val route = YAJL_GET_ARRAY(at(a, {"routes"}))->values[0];
    EXPECT_EQ(str(at(route, {"path"})), "/users/{id}");
    EXPECT_EQ(str(at(route, {"name"})), "get\"user");
    EXPECT_TRUE(YAJL_IS_TRUE(at(route, {"auth_required"})));
    EXPECT_TRUE(YAJL_IS_FALSE(at(route, {"websocket"})));
    yajl_val methods = at(route, {"methods"});
    ASSERT_EQ(YAJL_GET_ARRAY(methods)->len, 4u);
    EXPECT_EQ(str(YAJL_GET_ARRAY(methods)->values[0]), "GET");
    EXPECT_EQ(str(YAJL_GET_ARRAY(methods)->values[1]), "DELETE");
    EXPECT_EQ(str(YAJL_GET_ARRAY(methods)->values[2]), "LOCK");
    EXPECT_EQ(str(YAJL_GET_ARRAY(methods)->values[3]), "PROPFIND");

    yajl_val b = YAJL_GET_ARRAY(services)->values[1];
    EXPECT_EQ(str(at(b, {"state"})), "unhealthy");
    EXPECT_TRUE(YAJL_IS_NULL(at(b, {"version"})));
    EXPECT_EQ(str(at(b, {"last_check"})), "2026-11-28T05:30:00Z");
    EXPECT_TRUE(YAJL_IS_NULL(at(b, {"last_success"})));
    EXPECT_EQ(YAJL_GET_INTEGER(at(b, {"failures"})), 4);
    EXPECT_EQ(str(at(b, {"last_error"})),
              "connect() failed\n\"refused\"\xef\xbf\xbd");
    yajl_val bRoute = YAJL_GET_ARRAY(at(b, {"routes"}))->values[0];
    EXPECT_TRUE(YAJL_IS_NULL(at(bRoute, {"name"})));
    EXPECT_TRUE(YAJL_IS_TRUE(at(bRoute, {"websocket"})));

    yajl_val c = YAJL_GET_ARRAY(services)->values[2];
    EXPECT_EQ(str(at(c, {"state"})), "pending");
    EXPECT_EQ(YAJL_GET_ARRAY(at(c, {"routes"}))->len, 0u);

    yajl_val conflicts = at(root, {"conflicts"});
    ASSERT_EQ(YAJL_GET_ARRAY(conflicts)->len, 1u);
    yajl_val conflict = YAJL_GET_ARRAY(conflicts)->values[0];
    EXPECT_EQ(str(at(conflict, {"path"})), "/users/{user_id}");
    EXPECT_EQ(str(at(conflict, {"service"})), "b");
    EXPECT_EQ(str(at(conflict, {"shadowed_by"})), "a\"\\\n\x01\xef\xbf\xbd");
    EXPECT_EQ(str(at(conflict, {"winner_path"})), "/users/{id}");
    yajl_val cm = at(conflict, {"methods"});
    ASSERT_EQ(YAJL_GET_ARRAY(cm)->len, 2u);
    EXPECT_EQ(str(YAJL_GET_ARRAY(cm)->values[0]), "GET");
    EXPECT_EQ(str(YAJL_GET_ARRAY(cm)->values[1]), "PROPFIND");
}

TEST(StatusJson, EmptyTable)
{
    std::string json = renderStatus(Snapshot(), {});
    EXPECT_EQ(json, "{\"module_version\":null,\"generation\":0,"
                    "\"table_error\":null,"
                    "\"overrides\":[],"
                    "\"services\":[],\"conflicts\":[],\"overlaps\":[]}");
}

TEST(StatusJson, TableError)
{
    std::string json = renderStatus(Snapshot(), {}, "zone \"d\" is full");
    EXPECT_EQ(json, "{\"module_version\":null,\"generation\":0,\"table_error\":"
                    "\"zone \\\"d\\\" is full\",\"overrides\":[],"
                    "\"services\":[],\"conflicts\":[],\"overlaps\":[]}");
}

TEST(StatusJson, ModuleVersion)
{
    std::string json = renderStatus(Snapshot(), {}, {}, "0.1.0~rc1\"");
    EXPECT_EQ(json.rfind("{\"module_version\":\"0.1.0~rc1\\\"\",", 0), 0u)
        << json;
}

TEST(StatusJson, RegistryIsTheLastMember)
{
    EXPECT_EQ(renderStatus(Snapshot(), {}).find("registry"),
              std::string::npos);

    std::string json =
        renderStatus(Snapshot(), {}, {}, {}, R"({"state":"up","revision":7})");
    Tree tree = parseJson(json);
    ASSERT_TRUE(tree) << json;
    EXPECT_EQ(str(at(tree.get(), {"registry", "state"})), "up");
    std::string last = R"("registry":{"state":"up","revision":7}})";
    ASSERT_GE(json.size(), last.size());
    EXPECT_EQ(json.substr(json.size() - last.size()), last) << json;
}

TEST(StatusJson, Times)
{
    EXPECT_EQ(formatTime(0), "1970-01-01T00:00:00Z");
    EXPECT_EQ(formatTime(1795843800), "2026-11-28T05:30:00Z");
    // absurd times still render as some string, never as broken JSON
    std::string json = "[\"" + formatTime(INT64_MAX) + "\", \""
                       + formatTime(INT64_MIN) + "\"]";
    EXPECT_TRUE(parseJson(json));
}

TEST(StatusJson, CApi)
{
    Bytes blob = encodeSnapshot(hostileSnapshot());
    discovery_service_stats_t stats[] = {
        {"a\"\\\n\x01\xff", 6, 1795843800, 1795843800, 0, nullptr, 0, 0, 0, 0},
    };
    discovery_buf_t out = {nullptr, 0};
    discovery_error_t err;

    ASSERT_EQ(
        discovery_status_render(blob.data(), blob.size(), stats, 1, "", 0,
                                "0.1.0", nullptr, 0, &out, &err),
        DISCOVERY_OK);
    std::string json(reinterpret_cast<char *>(out.data), out.len);
    Tree tree = parseJson(json);
    ASSERT_TRUE(tree);
    EXPECT_EQ(str(at(tree.get(), {"module_version"})), "0.1.0");
    yajl_val a = YAJL_GET_ARRAY(at(tree.get(), {"services"}))->values[0];
    EXPECT_EQ(str(at(a, {"last_success"})), "2026-11-28T05:30:00Z");
    discovery_buf_free(&out);

    EXPECT_EQ(
        discovery_status_render(blob.data(), blob.size(), stats, 1, "", 0,
                                nullptr, nullptr, 0, &out, &err),
        DISCOVERY_ERROR);
    EXPECT_STREQ(err.text, "no module version");
    EXPECT_EQ(out.data, nullptr);

    blob[blob.size() / 2] ^= 0x40;
    EXPECT_EQ(
        discovery_status_render(blob.data(), blob.size(), stats, 1, "", 0,
                                "0.1.0", nullptr, 0, &out, &err),
        DISCOVERY_ERROR);
    EXPECT_STREQ(err.text, "corrupt snapshot: checksum mismatch");
    EXPECT_EQ(out.data, nullptr);
}

} // namespace
} // namespace discovery
