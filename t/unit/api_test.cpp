// api_test.cpp: the management API's core: controls, their place in the
// snapshot and the router, and the answers of every endpoint.
#include "api.hpp"
#include "controls.hpp"
#include "discovery_core.h"
#include "error.hpp"
#include "route_template.hpp"
#include "router.hpp"
#include "snapshot.hpp"
#include "written_image.hpp"

#include <gtest/gtest.h>
#include <yajl/yajl_tree.h>

#include <memory>

namespace discovery {
namespace {

using Tree = std::unique_ptr<yajl_val_s, decltype(&yajl_tree_free)>;

Tree parse(const std::string &json)
{
    char err[256];
    Tree t(yajl_tree_parse(json.c_str(), err, sizeof(err)), yajl_tree_free);
    EXPECT_NE(t.get(), nullptr) << err << ": " << json;
    return t;
}

std::string str(yajl_val v, std::vector<const char *> path)
{
    path.push_back(nullptr);
    yajl_val at = yajl_tree_get(v, path.data(), yajl_t_any);
    if (at == nullptr) {
        return "(none)";
    }
    if (YAJL_IS_STRING(at)) {
        return YAJL_GET_STRING(at);
    }
    if (YAJL_IS_NULL(at)) {
        return "null";
    }
    if (YAJL_IS_TRUE(at)) {
        return "true";
    }
    if (YAJL_IS_FALSE(at)) {
        return "false";
    }
    if (YAJL_IS_NUMBER(at)) {
        return YAJL_GET_NUMBER(at);
    }
    return "(composite)";
}

yajl_val member(yajl_val v, const char *key)
{
    const char *path[] = {key, nullptr};
    return yajl_tree_get(v, path, yajl_t_array);
}

Route route(const std::string &path, uint32_t methods)
{
    Route r;
    r.path = path;
    r.methods = methods;
    return r;
}

// users: /users/{id:int} GET PUT, /shared/{id} GET; billing: /shared/{id}
// GET (a conflict loser), /users/{name} GET
Snapshot table(const Controls &controls = Controls())
{
    Snapshot snap;
    Service users;
    users.name = "users";
    users.url = "http://users";
    users.upstream = "users_up";
    users.state = ServiceState::Healthy;
    users.routeSet.routes = {route("/users/{id:int}", kGet | kPut),
                             route("/shared/{id}", kGet)};
    Service billing;
    billing.name = "billing";
    billing.url = "http://billing";
    billing.upstream = "billing_up";
    billing.state = ServiceState::Healthy;
    billing.routeSet.routes = {route("/shared/{id}", kGet),
                               route("/users/{name}", kGet)};
    RejectedRoute outside;
    outside.path = "/admin/{x}";
    outside.methods = kGet;
    outside.reason = "outside prefix";
    billing.routeSet.rejected.push_back(outside);
    snap.services = {users, billing};
    snap.conflicts.push_back({kGet, 0, 1, 1, 0});
    snap.generation = 7;
    snap.controls = encodeControls(controls);
    return snap;
}

Override make(OverrideAction action, const std::string &path,
              std::vector<std::string> methods, const std::string &service,
              const std::string &id = "o1")
{
    Override o;
    o.id = id;
    o.action = action;
    o.path = path;
    o.methods = std::move(methods);
    o.service = service;
    return o;
}

std::unique_ptr<Router> routerOf(const Snapshot &snap)
{
    Bytes blob = encodeSnapshot(snap);
    return Router::build(blob.data(), blob.size());
}

std::string lookup(const Router &r, std::string_view method,
                   std::string_view path)
{
    Match m = r.match(method, path, false);
    switch (m.status) {
    case MatchStatus::Found:
        return std::string(m.service) + " " + std::string(m.route);
    case MatchStatus::Disabled:
        return "disabled " + std::string(m.route);
    case MatchStatus::Drained:
        return "drained " + std::string(m.service);
    case MatchStatus::NotAllowed:
        return "405 " + std::string(m.allow);
    default:
        return std::to_string(static_cast<int>(m.status));
    }
}

struct Api {
    Snapshot snap = table();
    std::unique_ptr<Router> router = routerOf(snap);
    ApiView view;
    ApiRequest req;

    Api()
    {
        view.table = &snap;
        view.router = router.get();
        req.write = true;
        req.now = 1000;
        req.host = "gw:8080";
        req.contentType = "application/json";
        req.moduleVersion = "1.0";
    }

    ApiAnswer call(std::string_view method, std::string_view path,
                   std::string_view query = {}, std::string_view body = {})
    {
        req.method = method;
        req.path = path;
        req.query = query;
        req.body = body;
        return handleApi(req, view);
    }

    std::string code(std::string_view method, std::string_view path,
                     std::string_view body = {})
    {
        ApiAnswer a = call(method, path, {}, body);
        Tree t = parse(a.body);
        return std::to_string(a.status) + " " + str(t.get(), {"error", "code"});
    }

    // applies a write's controls as the glue does
    void keep(const ApiAnswer &a)
    {
        ASSERT_TRUE(a.controlsChanged);
        view.controls = a.controls;
        snap.controls = encodeControls(a.controls);
        router = routerOf(snap);
        view.router = router.get();
    }
};

TEST(Controls, EncodeDecode)
{
    Controls c;
    EXPECT_TRUE(encodeControls(c).empty());
    EXPECT_EQ(decodeControls(nullptr, 0), c);

    c.nextId = 5;
    c.overrides.push_back(make(OverrideAction::Pin, "/a/{x}", {"GET"}, "s"));
    c.overrides.back().reason = "why \"not\"";
    c.overrides.back().created = 100;
    c.overrides.back().expires = 200;
    c.setDrained("b", true);
    c.setDrained("a", true);
    c.setDrained("a", true);
    EXPECT_EQ(c.drained, (std::vector<std::string>{"a", "b"}));

    Bytes b = encodeControls(c);
    EXPECT_EQ(decodeControls(b.data(), b.size()), c);

    for (size_t cut = 1; cut < b.size(); cut++) {
        EXPECT_THROW(decodeControls(b.data(), cut), Error) << cut;
    }
    Bytes bad = b;
    bad[0] = 'X';
    EXPECT_THROW(decodeControls(bad.data(), bad.size()), Error);
}

TEST(Controls, Expiry)
{
    Controls c;
    c.overrides.push_back(make(OverrideAction::Disable, "/a", {"*"}, "", "o1"));
    c.overrides.push_back(make(OverrideAction::Disable, "/b", {"*"}, "", "o2"));
    c.overrides[0].expires = 50;
    c.overrides[1].expires = 80;
    EXPECT_EQ(c.nextExpiry(), 50);
    EXPECT_FALSE(c.expire(49));
    EXPECT_TRUE(c.expire(50));
    ASSERT_EQ(c.overrides.size(), 1u);
    EXPECT_EQ(c.overrides[0].id, "o2");
    EXPECT_EQ(c.nextExpiry(), 80);
}

TEST(Controls, SnapshotKeepsThemAtItsEnd)
{
    Controls c;
    c.setDrained("billing", true);
    Snapshot snap = table(c);
    Bytes blob = encodeSnapshot(snap);

    EXPECT_EQ(decodeSnapshot(blob.data(), blob.size()).controls, snap.controls);
    auto tail = snapshotControls(blob.data(), blob.size());
    EXPECT_EQ(Bytes(tail.first, tail.first + tail.second), snap.controls);

    // replaced where they lie, the rest as it was
    Controls other;
    other.overrides.push_back(make(OverrideAction::Disable, "/x", {"*"}, ""));
    Bytes replaced =
        replaceControls(blob.data(), blob.size(), encodeControls(other), 9);
    Snapshot back = decodeSnapshot(replaced.data(), replaced.size());
    EXPECT_EQ(back.generation, 9u);
    EXPECT_EQ(decodeControls(back.controls.data(), back.controls.size()),
              other);
    EXPECT_EQ(back.services.size(), 2u);
    EXPECT_EQ(back.conflicts.size(), 1u);
    Bytes none = replaceControls(replaced.data(), replaced.size(), Bytes(), 10);
    EXPECT_TRUE(decodeSnapshot(none.data(), none.size()).controls.empty());
}

TEST(Controls, CApiSetControls)
{
    Bytes blob = encodeSnapshot(table());
    Controls c;
    c.overrides.push_back(
        make(OverrideAction::Disable, "/users/{id:int}", {"PUT"}, ""));
    Bytes enc = encodeControls(c);
    discovery_buf_t out = {nullptr, 0};
    discovery_image_t *laid = nullptr;
    discovery_error_t err;

    ASSERT_EQ(discovery_snapshot_set_controls(blob.data(), blob.size(),
                                              enc.data(), enc.size(), 8, &out,
                                              &laid, nullptr, 0, &err),
              DISCOVERY_OK)
        << err.text;
    discovery_buf_t image = writtenImage(laid);
    ASSERT_NE(image.data, nullptr);

    discovery_router_t *r = discovery_router_open(image.data, image.len, &err);
    ASSERT_NE(r, nullptr) << err.text;
    discovery_match_t m;
    EXPECT_EQ(discovery_router_match(r, "PUT", 3, "/users/7", 8, 0, &m),
              DISCOVERY_MATCH_DISABLED);
    EXPECT_EQ(discovery_router_match(r, "GET", 3, "/users/7", 8, 0, &m),
              DISCOVERY_MATCH_FOUND);
    discovery_router_destroy(r);

    // the same ones again: nothing to do
    discovery_buf_t again = {nullptr, 0};
    EXPECT_EQ(discovery_snapshot_set_controls(out.data, out.len, enc.data(),
                                              enc.size(), 9, &again, nullptr,
                                              nullptr, 0, &err),
              DISCOVERY_UNCHANGED);

    discovery_buf_t restored = {nullptr, 0};
    int64_t next = -1;
    ASSERT_EQ(
        discovery_snapshot_controls(out.data, out.len, &restored, &next, &err),
        DISCOVERY_OK);
    EXPECT_EQ(Bytes(restored.data, restored.data + restored.len), enc);
    EXPECT_EQ(next, 0);

    discovery_buf_free(&restored);
    discovery_buf_free(&out);
    discovery_buf_free(&image);
}

TEST(Controls, CApiSetControlsFromTheOldImage)
{
    // a drain made from the table's image, then an override, which the
    // image is built whole for: each answers as its table says
    Bytes blob = encodeSnapshot(table());
    Router::Image built = Router::image(blob.data(), blob.size());
    std::vector<unsigned char> room(built.size() + Router::kImageAlign);
    auto *old = reinterpret_cast<unsigned char *>(
        (reinterpret_cast<uintptr_t>(room.data()) + Router::kImageAlign - 1)
        / Router::kImageAlign * Router::kImageAlign);
    built.write(old);

    Controls c;
    c.setDrained("users", true);
    Bytes drained = encodeControls(c);
    discovery_buf_t out = {nullptr, 0};
    discovery_image_t *laid = nullptr;
    discovery_error_t err;
    ASSERT_EQ(discovery_snapshot_set_controls(
                  blob.data(), blob.size(), drained.data(), drained.size(), 8,
                  &out, &laid, old, built.size(), &err),
              DISCOVERY_OK)
        << err.text;
    discovery_buf_t image = writtenImage(laid);
    ASSERT_NE(image.data, nullptr);
    EXPECT_EQ(image.len, built.size());

    discovery_router_t *r = discovery_router_open(image.data, image.len, &err);
    ASSERT_NE(r, nullptr) << err.text;
    discovery_match_t m;
    EXPECT_EQ(discovery_router_match(r, "GET", 3, "/users/7", 8, 0, &m),
              DISCOVERY_MATCH_DRAINED);
    discovery_router_destroy(r);

    c.overrides.push_back(
        make(OverrideAction::Disable, "/users/{id:int}", {"GET"}, ""));
    Bytes disabled = encodeControls(c);
    discovery_buf_t out2 = {nullptr, 0};
    laid = nullptr;
    ASSERT_EQ(discovery_snapshot_set_controls(
                  out.data, out.len, disabled.data(), disabled.size(), 9,
                  &out2, &laid, image.data, image.len, &err),
              DISCOVERY_OK)
        << err.text;
    discovery_buf_t image2 = writtenImage(laid);
    ASSERT_NE(image2.data, nullptr);
    r = discovery_router_open(image2.data, image2.len, &err);
    ASSERT_NE(r, nullptr) << err.text;
    EXPECT_EQ(discovery_router_match(r, "GET", 3, "/users/7", 8, 0, &m),
              DISCOVERY_MATCH_DISABLED);
    discovery_router_destroy(r);

    discovery_buf_free(&out);
    discovery_buf_free(&image);
    discovery_buf_free(&out2);
    discovery_buf_free(&image2);
}

TEST(Controls, TemplateMatches)
{
    // both matchers, which must agree
    auto matches = [](const char *tpl, const char *path) {
        Template t;
        EXPECT_TRUE(compileTemplate(tpl, t)) << tpl;
        bool compiled = templateMatches(t, path);
        EXPECT_EQ(templateTextMatches(tpl, path), compiled) << tpl << " " << path;
        return compiled;
    };
    EXPECT_TRUE(matches("/users/{id:int}", "/users/7"));
    EXPECT_FALSE(matches("/users/{id:int}", "/users/x"));
    EXPECT_FALSE(matches("/users/{id}", "/users/"));
    EXPECT_TRUE(matches("/users/", "/users/"));
    EXPECT_TRUE(matches("/files/{p:path}", "/files/a/b"));
    EXPECT_TRUE(matches("/files/{p:path}", "/files/"));
    EXPECT_FALSE(matches("/files/{p:path}", "/files"));
    EXPECT_TRUE(matches("/b/{p:path}/meta", "/b/x/y/meta"));
    EXPECT_FALSE(matches("/b/{p:path}/meta", "/b/meta"));
    EXPECT_TRUE(matches("/", "/"));

    // every template against every path, of the kinds the router has
    const char *templates[] = {
        "/",           "/a",           "/a/",          "/a/b",
        "/{x}",        "/a/{x}",       "/a/{x:int}",   "/a/{x:float}",
        "/a/{x:uuid}", "/a/{p:path}",  "/{p:path}",    "/a/{p:path}/z",
        "/{p:path}/y/z", "/a/{x}/{y:int}", "/a/{x}/",
    };
    const char *paths[] = {
        "/", "/a", "/a/", "/a/b", "/a/7", "/a/7.5", "/a/b/c", "/a/b/z",
        "/a//z", "/x/y/z", "/a/b/y/z", "/a/x/7",
        "/a/123e4567-e89b-12d3-a456-426614174000", "//", "/a/b/c/d/z",
    };
    for (const char *tpl : templates) {
        for (const char *path : paths) {
            matches(tpl, path);
        }
    }
    EXPECT_FALSE(templateTextMatches("/a/{x", "/a/b"));
    EXPECT_FALSE(templateTextMatches("/{p:path}/{q:path}", "/a/b"));
    EXPECT_FALSE(templateTextMatches("a", "/a"));
}

TEST(RouterOverrides, DisablePinAddDrain)
{
    Controls c;
    c.overrides.push_back(
        make(OverrideAction::Disable, "/users/{x:int}", {"PUT"}, "", "o1"));
    c.overrides.push_back(
        make(OverrideAction::Pin, "/shared/{x}", {"*"}, "billing", "o2"));
    c.overrides.push_back(
        make(OverrideAction::Add, "/legacy/{id}", {"GET"}, "billing", "o3"));
    // a route the service publishes is not replaced by an added one
    c.overrides.push_back(
        make(OverrideAction::Add, "/users/{n:int}", {"GET"}, "billing", "o4"));
    auto r = routerOf(table(c));

    EXPECT_EQ(lookup(*r, "PUT", "/users/7"), "disabled /users/{x:int}");
    EXPECT_EQ(lookup(*r, "GET", "/users/7"), "users /users/{id:int}");
    EXPECT_EQ(lookup(*r, "GET", "/shared/1"), "billing /shared/{x}");
    EXPECT_EQ(lookup(*r, "HEAD", "/shared/1"), "billing /shared/{x}");
    EXPECT_EQ(lookup(*r, "GET", "/legacy/1"), "billing /legacy/{id}");
    EXPECT_EQ(lookup(*r, "POST", "/legacy/1"), "405 GET, HEAD, OPTIONS");

    c.setDrained("billing", true);
    r = routerOf(table(c));
    EXPECT_EQ(lookup(*r, "GET", "/users/bob"), "drained billing");
    EXPECT_EQ(lookup(*r, "GET", "/legacy/1"), "drained billing");
    EXPECT_EQ(lookup(*r, "GET", "/users/7"), "users /users/{id:int}");
    EXPECT_TRUE(r->service(1).drained);
    EXPECT_EQ(r->service(1).state, ServiceState::Healthy);
    EXPECT_EQ(r->serviceCount(), 2u);

    // a pin goes before precedence: billing's plain /users/{name} takes
    // what users' typed /users/{id:int} took, for the pin's methods
    Controls pinned;
    pinned.overrides.push_back(
        make(OverrideAction::Pin, "/users/{name}", {"*"}, "billing", "o5"));
    r = routerOf(table(pinned));
    EXPECT_EQ(lookup(*r, "GET", "/users/7"), "billing /users/{name}");
    EXPECT_EQ(lookup(*r, "HEAD", "/users/7"), "billing /users/{name}");
    EXPECT_EQ(lookup(*r, "PUT", "/users/7"), "users /users/{id:int}");
    EXPECT_EQ(lookup(*r, "GET", "/users/7/x"), "1");
    EXPECT_EQ(lookup(*routerOf(table()), "GET", "/users/7"),
              "users /users/{id:int}");

    // a disable too, and it goes before a pin of the same paths
    Controls disabled = pinned;
    disabled.overrides.push_back(
        make(OverrideAction::Disable, "/users/{who}", {"GET"}, "", "o6"));
    r = routerOf(table(disabled));
    EXPECT_EQ(lookup(*r, "GET", "/users/7"), "disabled /users/{who}");
    EXPECT_EQ(lookup(*r, "PUT", "/users/7"), "users /users/{id:int}");

    // an override of a service the roster lacks changes nothing
    Controls gone;
    gone.overrides.push_back(
        make(OverrideAction::Pin, "/shared/{x}", {"*"}, "nobody"));
    r = routerOf(table(gone));
    EXPECT_EQ(lookup(*r, "GET", "/shared/1"), "users /shared/{id}");
}

TEST(Api, Root)
{
    Api api;
    ApiAnswer a = api.call("GET", "/");
    EXPECT_EQ(a.status, 200);
    EXPECT_EQ(a.body, "{\"api_version\":1,\"module_version\":\"1.0\","
                      "\"write\":true,\"overrides_persist\":\"reload\","
                      "\"generation\":7}");
    api.req.persistRestart = true;
    api.req.write = false;
    Tree t = parse(api.call("HEAD", "").body);
    EXPECT_EQ(str(t.get(), {"overrides_persist"}), "restart");
    EXPECT_EQ(str(t.get(), {"write"}), "false");
}

TEST(Api, Services)
{
    Api api;
    api.view.controls.setDrained("billing", true);
    Tree t = parse(api.call("GET", "/services").body);
    yajl_val list = member(t.get(), "services");
    ASSERT_NE(list, nullptr);
    ASSERT_EQ(list->u.array.len, 2u);
    EXPECT_EQ(str(list->u.array.values[1], {"name"}), "billing");
    EXPECT_EQ(str(list->u.array.values[1], {"drained"}), "true");
    EXPECT_EQ(str(list->u.array.values[0], {"drained"}), "false");

    Tree one = parse(api.call("GET", "/services/users/").body);
    EXPECT_EQ(str(one.get(), {"state"}), "healthy");
    EXPECT_EQ(api.code("GET", "/services/nope"), "404 ServiceNotFound");
    EXPECT_EQ(api.code("GET", "/services/a%20b"), "404 ServiceNotFound");
}

TEST(Api, RoutesAndFilters)
{
    Api api;
    auto paths = [&api](std::string_view query) {
        Tree t = parse(api.call("GET", "/routes", query).body);
        yajl_val list = member(t.get(), "routes");
        std::string out;
        for (size_t i = 0; list && i < list->u.array.len; i++) {
            out += (out.empty() ? "" : " ")
                   + str(list->u.array.values[i], {"service"}) + ":"
                   + str(list->u.array.values[i], {"path"});
        }
        return out;
    };
    EXPECT_EQ(paths(""), "users:/users/{id:int} users:/shared/{id} "
                         "billing:/shared/{id} billing:/users/{name}");
    EXPECT_EQ(paths("service=billing"),
              "billing:/shared/{id} billing:/users/{name}");
    EXPECT_EQ(paths("path=%2Fusers%2F7&method=PUT"), "users:/users/{id:int}");
    EXPECT_EQ(paths("path=/users/bob"), "billing:/users/{name}");
    EXPECT_EQ(paths("method=HEAD&service=users"),
              "users:/users/{id:int} users:/shared/{id}");

    api.keep(api.call("POST", "/overrides", {},
                      R"({"action": "add", "path": "/legacy",
                          "methods": ["GET"], "service": "billing"})"));
    api.keep(api.call("POST", "/overrides", {},
                      R"({"action": "pin", "path": "/shared/{x}",
                          "service": "billing"})"));
    EXPECT_EQ(paths("path=/legacy"), "billing:/legacy");
    Tree t = parse(api.call("GET", "/routes", "path=/shared/1").body);
    yajl_val list = member(t.get(), "routes");
    ASSERT_EQ(list->u.array.len, 2u);
    EXPECT_EQ(str(list->u.array.values[0], {"override", "action"}), "pin");
    EXPECT_EQ(str(list->u.array.values[0], {"override", "id"}), "o2");
}

TEST(Api, ExplainNamesWinnerAndLosers)
{
    Api api;
    Tree t =
        parse(api.call("GET", "/explain", "method=GET&path=/shared/1").body);
    EXPECT_EQ(str(t.get(), {"status"}), "200");
    EXPECT_EQ(str(t.get(), {"service"}), "users");
    EXPECT_EQ(str(t.get(), {"upstream"}), "users_up");
    yajl_val list = member(t.get(), "candidates");
    ASSERT_EQ(list->u.array.len, 2u);
    EXPECT_EQ(str(list->u.array.values[0], {"result"}), "won");
    EXPECT_EQ(str(list->u.array.values[1], {"why"}),
              "conflict loser: users publishes the same route first");

    t = parse(api.call("GET", "/explain", "method=GET&path=/admin/1").body);
    list = member(t.get(), "candidates");
    ASSERT_EQ(list->u.array.len, 1u);
    EXPECT_EQ(str(t.get(), {"status"}), "404");
    EXPECT_EQ(str(list->u.array.values[0], {"why"}),
              "rejected when polled: outside prefix");

    t = parse(api.call("GET", "/explain", "method=GET&path=/users/bob").body);
    EXPECT_EQ(str(t.get(), {"service"}), "billing");

    EXPECT_EQ(api.code("GET", "/explain"), "400 BadRequest");
    api.view.router = nullptr;
    t = parse(api.call("GET", "/explain", "method=GET&path=/users/1").body);
    EXPECT_EQ(str(t.get(), {"status"}), "503");
}

TEST(Api, ExplainOverridesAndDrain)
{
    Api api;
    api.keep(api.call("POST", "/overrides", {},
                      R"({"action": "disable", "path": "/users/{i:int}"})"));
    Tree t =
        parse(api.call("GET", "/explain", "method=GET&path=/users/3").body);
    EXPECT_EQ(str(t.get(), {"status"}), "404");
    EXPECT_EQ(str(t.get(), {"service"}), "null");
    yajl_val list = member(t.get(), "candidates");
    ASSERT_EQ(list->u.array.len, 3u);
    EXPECT_EQ(str(list->u.array.values[0], {"why"}), "disabled by override o1");
    EXPECT_EQ(str(list->u.array.values[0], {"result"}), "won");
    EXPECT_EQ(str(list->u.array.values[1], {"why"}), "disabled by override o1");
    // billing's /users/{name} takes /users/3 too: the disable goes first
    EXPECT_EQ(str(list->u.array.values[2], {"why"}),
              "disabled by override o1, which goes before precedence");

    api.keep(api.call("PATCH", "/services/billing", {}, R"({"drain": true})"));
    t = parse(api.call("GET", "/explain", "method=GET&path=/users/bob").body);
    EXPECT_EQ(str(t.get(), {"status"}), "503");
    EXPECT_NE(str(t.get(), {"reason"}).find("drained"), std::string::npos);
}

TEST(Api, ExplainPinToAServiceNoLongerConfigured)
{
    // kept in the state file while the service left the configuration
    Controls c;
    c.nextId = 2;
    c.overrides.push_back(
        make(OverrideAction::Pin, "/users/{i:int}", {"*"}, "gone"));
    Api api;
    api.snap = table(c);
    api.router = routerOf(api.snap);
    api.view.router = api.router.get();
    api.view.controls = c;

    Tree t =
        parse(api.call("GET", "/explain", "method=GET&path=/users/3").body);
    EXPECT_EQ(str(t.get(), {"service"}), "users");
    yajl_val list = member(t.get(), "candidates");
    std::string why;
    for (size_t i = 0; i < list->u.array.len; i++) {
        if (str(list->u.array.values[i], {"service"}) == "gone") {
            why = str(list->u.array.values[i], {"why"});
        }
    }
    EXPECT_EQ(why, "override o1 pins it to gone, which does not publish "
                   "this route");
}

TEST(Api, Writes)
{
    Api api;
    ApiAnswer a = api.call("POST", "/overrides", {},
                           R"({"action": "disable", "path": "/a/{x}",
                               "methods": ["get", "PROPFIND"],
                               "reason": "r", "expires": 60})");
    EXPECT_EQ(a.status, 201);
    Tree t = parse(a.body);
    EXPECT_EQ(str(t.get(), {"id"}), "o1");
    EXPECT_EQ(str(t.get(), {"service"}), "null");
    EXPECT_EQ(str(t.get(), {"created"}), "1970-01-01T00:16:40Z");
    EXPECT_EQ(str(t.get(), {"expires"}), "1970-01-01T00:17:40Z");
    ASSERT_EQ(a.controls.overrides.size(), 1u);
    EXPECT_EQ(a.controls.overrides[0].methods,
              (std::vector<std::string>{"GET", "PROPFIND"}));
    EXPECT_EQ(a.controls.nextExpiry(), 1060);
    api.keep(a);

    a = api.call("POST", "/overrides", {},
                 R"({"action": "pin", "path": "/b", "service": "users"})");
    EXPECT_EQ(str(parse(a.body).get(), {"id"}), "o2");
    api.keep(a);

    t = parse(api.call("GET", "/overrides").body);
    EXPECT_EQ(str(t.get(), {"overrides_persist"}), "reload");

    a = api.call("DELETE", "/overrides/o1");
    EXPECT_EQ(a.body, "{\"deleted\":\"o1\"}");
    api.keep(a);
    EXPECT_EQ(api.code("DELETE", "/overrides/o1"), "404 OverrideNotFound");

    a = api.call("PATCH", "/services/users", {}, R"({"drain": true})");
    EXPECT_EQ(str(parse(a.body).get(), {"drained"}), "true");
    EXPECT_TRUE(a.controls.isDrained("users"));
    a = api.call("POST", "/services/users/poll");
    EXPECT_EQ(a.poll, "users");
    EXPECT_FALSE(a.controlsChanged);
}

TEST(Api, Errors)
{
    Api api;
    EXPECT_EQ(api.code("GET", "/nope"), "404 NotFound");
    // a sibling of the location ("/apiservices" of "/api") is not in it
    EXPECT_EQ(api.code("GET", "services"), "404 NotFound");
    EXPECT_EQ(
        api.code("POST", "overrides", R"({"action": "disable", "path": "/a"})"),
        "404 NotFound");
    ApiAnswer a = api.call("PUT", "/overrides");
    EXPECT_EQ(a.status, 405);
    EXPECT_EQ(a.allow, "GET, HEAD, POST");
    EXPECT_EQ(api.code("GET", "/services/users/poll"), "405 MethodNotAllowed");

    const char *ok = R"({"action": "disable", "path": "/a"})";
    api.req.contentType = "text/plain";
    EXPECT_EQ(api.code("POST", "/overrides", ok), "415 UnsupportedMediaType");
    api.req.contentType = "Application/JSON; charset=utf-8";
    api.req.origin = "https://evil.example";
    EXPECT_EQ(api.code("POST", "/overrides", ok), "403 CrossOrigin");
    api.req.origin = "http://gw:8080";
    EXPECT_EQ(api.call("POST", "/overrides", {}, ok).status, 201);
    api.req.host = "gw";
    api.req.origin = "https://gw:443";
    EXPECT_EQ(api.call("POST", "/overrides", {}, ok).status, 201);
    api.req.origin = {};
    api.req.bodyTooLarge = true;
    EXPECT_EQ(api.code("POST", "/overrides", ok), "400 BodyTooLarge");
    api.req.bodyTooLarge = false;

    const std::pair<const char *, const char *> bad[] = {
        {"{", "400 MalformedJson"},
        {"[]", "400 MalformedJson"},
        {"{\"action\": \"disable\", \"path\": \"/\xc0\"}", "400 MalformedJson"},
        {R"({"action": 1, "path": "/a"})", "400 UnknownAction"},
        {R"({"action": "disable", "path": "/a/{"})", "400 BadTemplate"},
        {R"({"action": "disable", "path": 5})", "400 BadTemplate"},
        {R"({"action": "add", "path": "/a", "service": "x"})",
         "400 UnknownService"},
        {R"({"action": "add", "path": "/a", "methods": ["*", "*"]})",
         "400 BadMethods"},
        {R"({"action": "add", "path": "/a"})", "400 BadField"},
        {R"({"action": "disable", "path": "/a", "expires": 1.5})",
         "400 BadField"},
        {R"({"action": "disable", "path": "/a", "reason": 3})", "400 BadField"},
    };
    for (const auto &b : bad) {
        EXPECT_EQ(api.code("POST", "/overrides", b.first), b.second) << b.first;
    }

    // a NUL, escaped or raw, would have cut the path short: "/a" disabled
    EXPECT_EQ(api.code("POST", "/overrides",
                       R"({"action": "disable", "path": "/a\u0000b"})"),
              "400 MalformedJson");
    EXPECT_EQ(
        api.code("POST", "/overrides",
                 R"({"action": "disable", "path": "/a", "reason": "x\u0000"})"),
        "400 MalformedJson");
    EXPECT_EQ(api.code("POST", "/overrides",
                       std::string_view("{\"action\": \"disable\", "
                                        "\"path\": \"/a\"}\0junk",
                                        40)),
              "400 MalformedJson");
    EXPECT_EQ(api.code("PATCH", "/services/users",
                       R"({"drain": true, "x\u0000": 1})"),
              "400 MalformedJson");
    // an escaped backslash before "u0000" is text, not a NUL
    EXPECT_EQ(
        api.call("POST", "/overrides", {},
                 R"({"action": "disable", "path": "/a", "reason": "\\u0000"})")
            .status,
        201);

    api.req.write = false;
    EXPECT_EQ(api.code("POST", "/overrides", ok), "405 MethodDisabled");
    EXPECT_EQ(api.code("DELETE", "/overrides/o1"), "405 MethodDisabled");
    EXPECT_EQ(api.call("GET", "/overrides").status, 200);
}

TEST(Api, CApi)
{
    Bytes blob = encodeSnapshot(table());
    discovery_api_request_t req = {};
    req.method = "POST";
    req.method_len = 4;
    req.path = "/overrides";
    req.path_len = 10;
    const char body[] = R"({"action": "disable", "path": "/a", "expires": 5})";
    req.body = body;
    req.body_len = sizeof(body) - 1;
    req.content_type = "application/json";
    req.content_type_len = 16;
    req.write = 1;
    req.module_version = "x";
    req.now = 10;
    discovery_api_view_t view = {};
    view.snapshot = blob.data();
    view.snapshot_len = blob.size();
    discovery_api_answer_t a;
    discovery_error_t err;

    ASSERT_EQ(discovery_api_handle(&req, &view, &a, &err), DISCOVERY_OK)
        << err.text;
    EXPECT_EQ(a.status, 201);
    EXPECT_EQ(a.controls_changed, 1);
    EXPECT_EQ(a.next_expiry, 15);

    discovery_buf_t left = {nullptr, 0};
    int64_t next = -1;
    EXPECT_EQ(discovery_controls_expire(a.controls.data, a.controls.len, 14,
                                        &left, &next, &err),
              DISCOVERY_UNCHANGED);
    EXPECT_EQ(next, 15);
    EXPECT_EQ(discovery_controls_expire(a.controls.data, a.controls.len, 15,
                                        &left, &next, &err),
              DISCOVERY_OK);
    EXPECT_EQ(next, 0);
    EXPECT_EQ(decodeControls(left.data, left.len).overrides.size(), 0u);

    discovery_buf_free(&left);
    discovery_buf_free(&a.body);
    discovery_buf_free(&a.controls);
    discovery_buf_free(&a.poll);

    // a damaged table is an error, not an exception
    view.snapshot_len = 10;
    EXPECT_EQ(discovery_api_handle(&req, &view, &a, &err), DISCOVERY_ERROR);
}

} // namespace
} // namespace discovery
