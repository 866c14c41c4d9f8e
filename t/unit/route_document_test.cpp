// route_document_test.cpp: route documents and OpenAPI, friendly and hostile.
#include "discovery_core.h"
#include "error.hpp"
#include "methods.hpp"
#include "route_document.hpp"

#include "captured_log.hpp"

#include <gtest/gtest.h>

#include <random>

namespace discovery {
namespace {

// a route document logs warnings only
struct Captured : CapturedLog {
    Captured() : CapturedLog(DISCOVERY_LOG_WARN) {}
};

RouteSet parse(const std::string &doc, int format = DISCOVERY_FORMAT_AUTO,
               Captured *warnings = nullptr)
{
    discovery_log_t log = warnings ? warnings->sink() : discovery_log_t{};
    RouteDocumentParser parser(format, Log(&log));
    parser.feed(doc.data(), doc.size());
    return parser.finish();
}

// The message of the Error the document raises, "" if it parses.
std::string parseError(const std::string &doc,
                       int format = DISCOVERY_FORMAT_AUTO)
{
    try {
        parse(doc, format);
    } catch (const Error &e) {
        return e.what();
    }
    return "";
}

const char *kFuzzSeed = R"({"status": "ok", "version": "1", "routes": [
    {"path": "/a/{id:int}", "methods": ["GET", "POST"], "tags": ["t"]},
    {"path": "/b/{p:path}", "name": "b", "auth_required": true},
    {"path": "/c", "websocket": true, "x": [1, 2.5, null, {"y": false}]}],
    "paths": {"/d": {"get": {"security": [{}]}}}})";

const Route *find(const RouteSet &set, const std::string &path)
{
    for (const Route &r : set.routes) {
        if (r.path == path) {
            return &r;
        }
    }
    return nullptr;
}

TEST(RouteDocument, ReadsTheReadmeExample)
{
    RouteSet set = parse(R"({"status": "healthy", "service": "chat",
        "version": "1.0", "routes": [{"path": "/chat/intelligent",
        "methods": ["POST"], "name": "intelligent_chat",
        "description": "talks back", "tags": ["chat"],
        "auth_required": true, "websocket": false}]})");

    EXPECT_EQ(set.version, "1.0");
    ASSERT_EQ(set.routes.size(), 1u);
    const Route &r = set.routes[0];
    EXPECT_EQ(r.path, "/chat/intelligent");
    EXPECT_EQ(r.methods, kPost);
    EXPECT_EQ(r.name, "intelligent_chat");
    EXPECT_EQ(r.tags, std::vector<std::string>{"chat"});
    EXPECT_TRUE(r.authRequired);
    EXPECT_FALSE(r.websocket);
}

TEST(RouteDocument, DefaultsAndCaseInsensitiveMethods)
{
    RouteSet set = parse(R"({"routes": [{"path": "/a"},
        {"path": "/b", "methods": ["get", "Delete"], "websocket": true}]})");

    ASSERT_EQ(set.routes.size(), 2u);
    EXPECT_EQ(set.routes[0].methods, kGet);
    EXPECT_FALSE(set.routes[0].authRequired);
    EXPECT_EQ(set.routes[1].methods, kGet | kDelete);
    EXPECT_TRUE(set.routes[1].websocket);
    EXPECT_EQ(set.version, "");
}

TEST(RouteDocument, StatusValues)
{
    for (const char *ok : {"healthy", "OK", "Pass", "up"}) {
        std::string doc =
            std::string(R"({"status": ")") + ok + R"(", "routes": []})";
        EXPECT_EQ(parseError(doc), "") << ok;
    }

    EXPECT_EQ(parseError(R"({"status": "degraded", "routes": []})"),
              "status \"degraded\"");
    EXPECT_EQ(parseError(R"({"status": 1})"), "\"status\" is not a string");
    EXPECT_EQ(parseError(R"({"status": null})"), "\"status\" is not a string");
}

TEST(RouteDocument, VersionNumberIsText)
{
    EXPECT_EQ(parse(R"({"version": 2.5, "routes": []})").version, "2.5");
    EXPECT_EQ(parse(R"({"version": 12345678901234567890123})").version,
              "12345678901234567890123");
}

TEST(RouteDocument, MissingRoutesIsEmpty)
{
    EXPECT_TRUE(parse(R"({"status": "up"})").routes.empty());
    EXPECT_TRUE(parse("{}").routes.empty());
}

TEST(RouteDocument, DocumentMustBeAnObject)
{
    EXPECT_EQ(parseError("[]"), "the document is not a JSON object");
    EXPECT_EQ(parseError("\"x\""), "the document is not a JSON object");
    EXPECT_EQ(parseError(R"({"routes": {}})"), "\"routes\" is not an array");
    EXPECT_EQ(parseError(R"({"routes": null})"), "\"routes\" is not an array");
}

TEST(RouteDocument, UnknownMembersAreSkippedAtAnyDepth)
{
    RouteSet set = parse(R"({"meta": {"a": [1, {"routes": [{"path": "/x"}]}]},
        "routes": [{"path": "/a", "extra": {"path": "/nested",
        "methods": [[["GET"]]]}, "description": {"long": [true, null]}}],
        "trailer": [[[[]]]]})");

    ASSERT_EQ(set.routes.size(), 1u);
    EXPECT_EQ(set.routes[0].path, "/a");
    EXPECT_EQ(set.routes[0].methods, kGet);
}

// The reasons of a set's rejected entries, in order.
std::vector<std::string> reasons(const RouteSet &set)
{
    std::vector<std::string> out;
    for (const RejectedRoute &r : set.rejected) {
        out.push_back(r.reason);
    }
    return out;
}

TEST(RouteDocument, MalformedEntriesAreSkippedAndListed)
{
    Captured warnings;
    RouteSet set = parse(R"({"routes": [
        {"path": "/ok"},
        42,
        {"methods": ["GET"]},
        {"path": "/a/{b"},
        {"path": 7},
        {"path": "/m", "methods": "GET"},
        {"path": "/n", "name": ["x"]},
        {"path": "/t", "tags": [1]},
        {"path": "/u", "auth_required": "yes"},
        {"path": "/v", "methods": ["GET", "BR EW"]},
        {"path": "/w", "methods": []},
        {"path": "/also-ok", "methods": ["PUT"]}
    ]})",
                         DISCOVERY_FORMAT_ROUTES, &warnings);

    ASSERT_EQ(set.routes.size(), 2u);
    EXPECT_EQ(set.routes[0].path, "/ok");
    EXPECT_EQ(set.routes[1].path, "/also-ok");

    // listed with the set, for the table to warn about once and show
    std::vector<std::string> expected = {
        "route #1: not an object",
        "route #2: no \"path\"",
        "route #3: invalid template \"/a/{b\"",
        "route #4: \"path\" is not a string",
        "route #5: \"methods\" is not an array",
        "route #6: \"name\" is not a string",
        "route #7: tag is not a string",
        "route #8: \"auth_required\" is not a boolean",
        "route #9: invalid method \"BR EW\"",
        "route #10: no method",
    };
    EXPECT_EQ(reasons(set), expected);
    ASSERT_EQ(set.rejected.size(), expected.size());
    EXPECT_EQ(set.rejected[2].path, "/a/{b");
    EXPECT_EQ(set.rejected[1].methods, kGet);
    EXPECT_EQ(set.rejected[8].methods, kGet);
    EXPECT_TRUE(warnings.lines.empty());
}

TEST(RouteDocument, RejectedEntriesPastTheLimitAreCounted)
{
    std::string doc = R"({"routes": [)";
    for (size_t i = 0; i < kMaxRejected + 5; i++) {
        doc += R"({"path": 1},)";
    }
    doc += R"({"path": "/ok"}]})";

    RouteSet set = parse(doc, DISCOVERY_FORMAT_AUTO);
    EXPECT_EQ(set.routes.size(), 1u);
    EXPECT_EQ(set.rejected.size(), kMaxRejected);
    EXPECT_EQ(set.rejectedOmitted, 5u);

    Bytes blob = encodeRouteSet(set);
    EXPECT_TRUE(decodeRouteSet(blob.data(), blob.size()) == set);
}

// Any RFC 9110 token is a method: WebDAV's, a cache's PURGE, a custom one.
TEST(RouteDocument, ExtensionMethodsAreRouted)
{
    Captured warnings;
    RouteSet set = parse(R"({"routes": [
        {"path": "/a", "methods": ["GET", "PROPFIND", "mkcol", "X-Y.z!"]},
        {"path": "/a", "methods": ["propfind", "PURGE", "post"]}
    ]})",
                         DISCOVERY_FORMAT_AUTO, &warnings);

    ASSERT_EQ(set.routes.size(), 1u);
    EXPECT_EQ(set.routes[0].methods, kGet | kPost);
    // upper-cased as Starlette does, sorted, merged with the duplicate
    EXPECT_EQ(set.routes[0].extensionMethods,
              (MethodNames{"MKCOL", "PROPFIND", "PURGE", "X-Y.Z!"}));
    EXPECT_TRUE(set.rejected.empty());
    EXPECT_TRUE(warnings.lines.empty());

    Bytes blob = encodeRouteSet(set);
    EXPECT_TRUE(decodeRouteSet(blob.data(), blob.size()) == set);
}

TEST(RouteDocument, InvalidMethodSkipsTheEntry)
{
    std::string many;
    for (size_t i = 0; i <= kMaxRouteExtensionMethods; i++) {
        many += (i ? ",\"M" : "\"M") + std::to_string(i) + "\"";
    }

    RouteSet set = parse(R"({"routes": [
        {"path": "/a", "methods": ["GET", "GE T"]},
        {"path": "/b", "methods": [""]},
        {"path": "/c", "methods": [")"
                             + std::string(kMaxMethodLen + 1, 'A') + R"("]},
        {"path": "/d", "methods": ["M\u00e9"]},
        {"path": "/e", "methods": ["A:B"]},
        {"path": "/f", "methods": [)"
                             + many + R"(]},
        {"path": "/g", "methods": [")"
                             + std::string(kMaxMethodLen, 'A') + R"("]}
    ]})",
                         DISCOVERY_FORMAT_AUTO);

    ASSERT_EQ(set.routes.size(), 1u);
    EXPECT_EQ(set.routes[0].path, "/g");
    std::vector<std::string> expected = {
        "route #0: invalid method \"GE T\"",
        "route #1: invalid method \"\"",
        "route #2: invalid method \"" + std::string(kMaxMethodLen, 'A')
            + "\"...",
        "route #3: invalid method \"M\xc3\xa9\"",
        "route #4: invalid method \"A:B\"",
        "route #5: more than 16 extension methods",
    };
    EXPECT_EQ(reasons(set), expected);
}

TEST(RouteDocument, EntryBounds)
{
    std::string longPath = "/" + std::string(1024, 'a');
    std::string maxPath = "/" + std::string(1023, 'a');
    std::string tags33;
    for (int i = 0; i < 33; i++) {
        tags33 += (i ? ",\"t" : "\"t") + std::to_string(i) + "\"";
    }

    Captured warnings;
    RouteSet set = parse(R"({"routes": [{"path": ")" + longPath + R"("},
        {"path": ")" + maxPath
                             + R"("},
        {"path": "/n", "name": ")"
                             + std::string(257, 'n') + R"("},
        {"path": "/t", "tags": ["x", ")"
                             + std::string(129, 't') + R"("]},
        {"path": "/many", "tags": [)"
                             + tags33 + R"(]},
        {"path": "/dup", "tags": ["a", "a", "a"]}]})",
                         DISCOVERY_FORMAT_AUTO, &warnings);

    ASSERT_EQ(set.routes.size(), 2u);
    EXPECT_EQ(set.routes[0].path, maxPath);
    EXPECT_EQ(set.routes[1].tags, std::vector<std::string>{"a"});
    EXPECT_EQ(reasons(set), (std::vector<std::string>{
                                "route #0: path longer than 1024 bytes",
                                "route #2: name longer than 256 bytes",
                                "route #3: tag longer than 128 bytes",
                                "route #4: more than 32 tags"}));
    EXPECT_TRUE(warnings.lines.empty());
}

TEST(RouteDocument, DuplicateRoutesMergeMethods)
{
    RouteSet set = parse(R"({"routes": [
        {"path": "/a", "methods": ["GET"], "tags": ["x"]},
        {"path": "/b"},
        {"path": "/a", "methods": ["POST"], "name": "late", "tags": ["y", "x"]},
        {"path": "/a", "methods": ["DELETE"], "auth_required": true}]})");

    // auth_required is per method: the DELETE stays a route of its own
    ASSERT_EQ(set.routes.size(), 3u);
    const Route &a = set.routes[0];
    EXPECT_EQ(a.path, "/a");
    EXPECT_EQ(a.methods, kGet | kPost);
    EXPECT_EQ(a.name, "late");
    EXPECT_FALSE(a.authRequired);
    EXPECT_EQ(a.tags, (std::vector<std::string>{"x", "y"}));

    const Route &secured = set.routes[2];
    EXPECT_EQ(secured.path, "/a");
    EXPECT_EQ(secured.methods, kDelete);
    EXPECT_TRUE(secured.authRequired);
}

TEST(RouteDocument, TruncatedJsonFailsAtFinish)
{
    std::string doc = R"({"routes": [{"path": "/a"})";
    RouteDocumentParser parser(DISCOVERY_FORMAT_AUTO, Log());

    EXPECT_NO_THROW(parser.feed(doc.data(), doc.size()));
    try {
        parser.finish();
        FAIL() << "truncated document accepted";
    } catch (const Error &e) {
        std::string msg = e.what();
        EXPECT_EQ(msg.rfind("invalid JSON at byte 26: ", 0), 0u) << msg;
        EXPECT_EQ(msg.find('\n'), std::string::npos);
    }
}

TEST(RouteDocument, EmptyBodyFails)
{
    EXPECT_NE(parseError(""), "");
}

TEST(RouteDocument, SyntaxErrorNamesTheByte)
{
    std::string msg = parseError(R"({"routes": [}]})");
    EXPECT_EQ(msg.rfind("invalid JSON at byte ", 0), 0u) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
}

TEST(RouteDocument, TrailingGarbageFails)
{
    EXPECT_NE(parseError(R"({"routes": []} {})"), "");
    EXPECT_NE(parseError(R"({"routes": []}x)"), "");
}

TEST(RouteDocument, InvalidUtf8Fails)
{
    std::string msg = parseError("{\"routes\": [{\"path\": \"/a\xff\"}]}");
    EXPECT_EQ(msg.rfind("invalid JSON at byte ", 0), 0u) << msg;

    // yajl lets overlongs and surrogates through; we do not, even in
    // members we ignore, nor in keys
    const std::string utf8 = "invalid JSON: invalid UTF-8 in a string";
    EXPECT_EQ(parseError("{\"x\": \"\xc0\xaf\"}"), utf8);
    EXPECT_EQ(parseError("{\"x\": \"\xed\xa0\x80\"}"), utf8);
    EXPECT_EQ(parseError("{\"\xf4\x90\x80\x80\": 1}"), utf8);
}

TEST(RouteDocument, RawNulFailsEscapedNulIsData)
{
    std::string rawNul =
        std::string("{\"routes\": [{\"path\": \"/a") + '\0' + "\"}]}";
    EXPECT_NE(parseError(rawNul), "");

    Captured warnings;
    RouteSet set = parse(R"({"routes": [{"path": "/a", "name": "x\u0000y"},
        {"path": "/b\u0000"}]})",
                         DISCOVERY_FORMAT_AUTO, &warnings);
    ASSERT_EQ(set.routes.size(), 1u);
    EXPECT_EQ(set.routes[0].name, std::string("x\0y", 3));
    EXPECT_EQ(reasons(set), std::vector<std::string>{
                                "route #1: invalid template \"/b\\u0000\""});
}

TEST(RouteDocument, DeepNestingFailsWithoutRecursion)
{
    std::string deep = "{\"x\": " + std::string(100000, '[');
    std::string msg = parseError(deep);
    EXPECT_EQ(msg, "JSON nested deeper than 64 levels");

    // exactly at the limit is fine: the object itself is level 1
    std::string ok =
        "{\"x\": " + std::string(63, '[') + std::string(63, ']') + "}";
    EXPECT_EQ(parseError(ok), "");
    std::string over =
        "{\"x\": " + std::string(64, '[') + std::string(64, ']') + "}";
    EXPECT_NE(parseError(over), "");
}

TEST(RouteDocument, HugeIgnoredStringIsFine)
{
    std::string doc = R"({"description": ")" + std::string(8 << 20, 'd')
                      + R"(", "routes": [{"path": "/a"}]})";
    EXPECT_EQ(parse(doc).routes.size(), 1u);
}

TEST(RouteDocument, FeedingByteByByteEqualsOneChunk)
{
    std::string doc = R"({"version": "3", "routes": [{"path": "/u/{id:int}",
        "methods": ["GET", "PUT"], "name": "user", "tags": ["a", "b"]},
        {"path": "/v/\u00e9t\u00e9"}]})";
    RouteDocumentParser parser(DISCOVERY_FORMAT_AUTO, Log());

    for (char c : doc) {
        parser.feed(&c, 1);
    }
    RouteSet bytewise = parser.finish();

    EXPECT_TRUE(bytewise == parse(doc));
    ASSERT_EQ(bytewise.routes.size(), 2u);
    EXPECT_EQ(bytewise.routes[1].path, "/v/\xc3\xa9t\xc3\xa9");
}

TEST(RouteDocument, MutatedDocumentsNeverCrash)
{
    // whatever the bytes, the parser either accepts or throws Error
    std::string doc = kFuzzSeed;
    std::mt19937 rng(99);
    int rejected = 0;

    for (int round = 0; round < 3000; round++) {
        std::string bad = doc;
        for (int e = 0; e < 1 + static_cast<int>(rng() % 3); e++) {
            bad[rng() % bad.size()] = static_cast<char>(rng());
        }
        RouteDocumentParser parser(DISCOVERY_FORMAT_AUTO, Log());
        try {
            size_t split = rng() % bad.size();
            parser.feed(bad.data(), split);
            parser.feed(bad.data() + split, bad.size() - split);
            RouteSet set = parser.finish();
            EXPECT_LE(set.routes.size(), 3u);
        } catch (const Error &) {
            rejected++;
        }
    }
    EXPECT_GT(rejected, 0);
}

TEST(RouteDocument, ErrorIsSticky)
{
    RouteDocumentParser parser(DISCOVERY_FORMAT_AUTO, Log());
    std::string bad = "[";
    std::string good = "{}";

    EXPECT_THROW(parser.feed(bad.data(), bad.size()), Error);
    EXPECT_THROW(parser.feed(good.data(), good.size()), Error);
    EXPECT_THROW(parser.finish(), Error);
}

TEST(RouteDocument, TooManyRoutes)
{
    std::string doc = "{\"routes\": [";
    for (size_t i = 0; i <= 100000; i++) {
        doc += i ? ",0" : "0";
    }
    doc += "]}";
    EXPECT_EQ(parseError(doc), "too many routes");
}

/* OpenAPI */

const char *kOpenApi = R"({
  "openapi": "3.1.0",
  "info": {"title": "users", "version": "2.0.1"},
  "paths": {
    "/users/{id}": {
      "parameters": [{"name": "id", "in": "path"}],
      "summary": "a user",
      "get": {"operationId": "get_user", "tags": ["users"],
              "responses": {"200": {"description": "ok"}}},
      "delete": {"operationId": "delete_user", "tags": ["admin", "users"],
                 "security": [{"bearer": []}]}
    },
    "/public": {"get": {"security": []}},
    "/anonymous-ok": {"get": {"security": [{}]}},
    "/inherits": {"post": {"operationId": "make"}},
    "/empty": {"parameters": []},
    "/bad/{x": {"get": {}}
  },
  "security": [{"apiKey": []}]
})";

TEST(OpenApi, AutoDetectsAndReadsOperations)
{
    Captured warnings;
    RouteSet set = parse(kOpenApi, DISCOVERY_FORMAT_AUTO, &warnings);

    EXPECT_EQ(set.version, "2.0.1");
    ASSERT_EQ(set.routes.size(), 4u);

    const Route *user = find(set, "/users/{id}");
    ASSERT_NE(user, nullptr);
    EXPECT_EQ(user->methods, kGet | kDelete);
    EXPECT_EQ(user->name, "get_user");
    EXPECT_EQ(user->tags, (std::vector<std::string>{"users", "admin"}));
    // get inherits the document's security, delete has its own
    EXPECT_TRUE(user->authRequired);

    ASSERT_NE(find(set, "/public"), nullptr);
    EXPECT_FALSE(find(set, "/public")->authRequired);
    ASSERT_NE(find(set, "/anonymous-ok"), nullptr);
    EXPECT_FALSE(find(set, "/anonymous-ok")->authRequired);
    ASSERT_NE(find(set, "/inherits"), nullptr);
    EXPECT_TRUE(find(set, "/inherits")->authRequired);
    EXPECT_EQ(find(set, "/inherits")->methods, kPost);
    EXPECT_EQ(find(set, "/empty"), nullptr);

    EXPECT_EQ(reasons(set), std::vector<std::string>{
                                "path #5: invalid template \"/bad/{x\""});
    EXPECT_TRUE(warnings.lines.empty());
}

TEST(OpenApi, NoDocumentSecurityMeansNoAuth)
{
    RouteSet set = parse(R"({"paths": {"/a": {"get": {}},
        "/b": {"get": {"security": [{"oauth": ["read"]}, {}]}}}})");

    ASSERT_EQ(set.routes.size(), 2u);
    EXPECT_FALSE(find(set, "/a")->authRequired);
    EXPECT_TRUE(find(set, "/b")->authRequired);
}

TEST(OpenApi, AuthRequiredIsPerOperation)
{
    RouteSet set = parse(R"({"openapi": "3.0.0", "paths": {
        "/invoices": {"get": {"operationId": "list"},
                      "post": {"operationId": "create",
                               "security": [{"bearer": []}]},
                      "put": {}}}})");

    ASSERT_EQ(set.routes.size(), 2u);
    EXPECT_EQ(set.routes[0].path, "/invoices");
    EXPECT_EQ(set.routes[0].methods, kPost);
    EXPECT_TRUE(set.routes[0].authRequired);
    EXPECT_EQ(set.routes[1].methods, kGet | kPut);
    EXPECT_FALSE(set.routes[1].authRequired);
}

TEST(OpenApi, EmptyDocumentSecurityMeansNoAuth)
{
    RouteSet set = parse(R"({"openapi": "3.0.0",
        "paths": {"/a": {"get": {}}}, "security": [{}]})");
    ASSERT_EQ(set.routes.size(), 1u);
    EXPECT_FALSE(set.routes[0].authRequired);
}

TEST(OpenApi, RoutesMemberWinsInAuto)
{
    RouteSet set = parse(R"({"paths": {"/p": {"get": {}}},
        "routes": [{"path": "/r"}]})");
    ASSERT_EQ(set.routes.size(), 1u);
    EXPECT_EQ(set.routes[0].path, "/r");
}

TEST(OpenApi, ForcedFormatsIgnoreTheOtherShape)
{
    std::string doc = R"({"paths": {"/p": {"get": {}}},
        "routes": [{"path": "/r"}]})";

    RouteSet routes = parse(doc, DISCOVERY_FORMAT_ROUTES);
    ASSERT_EQ(routes.routes.size(), 1u);
    EXPECT_EQ(routes.routes[0].path, "/r");

    RouteSet openApi = parse(doc, DISCOVERY_FORMAT_OPENAPI);
    ASSERT_EQ(openApi.routes.size(), 1u);
    EXPECT_EQ(openApi.routes[0].path, "/p");
}

TEST(OpenApi, PathsMustBeAnObject)
{
    EXPECT_EQ(parseError(R"({"openapi": "3.0.0", "paths": []})"),
              "\"paths\" is not an object");
    EXPECT_EQ(parseError(R"({"paths": 1})", DISCOVERY_FORMAT_OPENAPI),
              "\"paths\" is not an object");
    // not OpenAPI after all: a stray "paths" does not matter
    EXPECT_EQ(parseError(R"({"paths": 1, "routes": []})"), "");
}

TEST(OpenApi, MalformedOperationIsSkipped)
{
    Captured warnings;
    RouteSet set = parse(R"({"paths": {"/a": {
        "get": {"operationId": 5}, "post": {"operationId": "ok"}}}})",
                         DISCOVERY_FORMAT_AUTO, &warnings);

    ASSERT_EQ(set.routes.size(), 1u);
    EXPECT_EQ(set.routes[0].methods, kPost);
    EXPECT_EQ(set.routes[0].name, "ok");
    EXPECT_EQ(reasons(set), std::vector<std::string>{
                                "path #0 operation GET: "
                                "\"operationId\" is not a string"});
    EXPECT_EQ(set.rejected[0].path, "/a");
    EXPECT_EQ(set.rejected[0].methods, kGet);
}

TEST(OpenApi, UppercaseOperationKeysAreNotOperations)
{
    RouteSet set = parse(R"({"paths": {"/a": {"GET": {}}}})");
    EXPECT_TRUE(set.routes.empty());
}

/* the C interface, as the glue uses it */

TEST(ParserApi, FeedFinishAndFree)
{
    Captured warnings;
    discovery_log_t log = warnings.sink();
    discovery_parser_t *p =
        discovery_parser_create(DISCOVERY_FORMAT_AUTO, &log);
    ASSERT_NE(p, nullptr);

    std::string doc = R"({"routes": [{"path": "/a"}, {"path": 1}]})";
    discovery_error_t err;
    discovery_buf_t routes = {nullptr, 0};

    EXPECT_EQ(discovery_parser_feed(p, doc.data(), 10, &err), DISCOVERY_OK);
    EXPECT_EQ(discovery_parser_feed(p, doc.data() + 10, doc.size() - 10, &err),
              DISCOVERY_OK);
    EXPECT_EQ(discovery_parser_finish(p, &routes, &err), DISCOVERY_OK);
    EXPECT_STREQ(err.text, "");
    ASSERT_NE(routes.data, nullptr);

    RouteSet set = decodeRouteSet(routes.data, routes.len);
    ASSERT_EQ(set.routes.size(), 1u);
    EXPECT_EQ(set.routes[0].path, "/a");
    EXPECT_EQ(set.rejected.size(), 1u);

    discovery_buf_free(&routes);
    EXPECT_EQ(routes.data, nullptr);
    discovery_parser_destroy(p);
}

TEST(ParserApi, ErrorsCarryText)
{
    discovery_parser_t *p =
        discovery_parser_create(DISCOVERY_FORMAT_AUTO, nullptr);
    ASSERT_NE(p, nullptr);

    discovery_error_t err;
    discovery_buf_t routes = {nullptr, 0};
    std::string doc = R"({"status": "down"})";

    EXPECT_EQ(discovery_parser_feed(p, doc.data(), doc.size(), &err),
              DISCOVERY_OK);
    EXPECT_EQ(discovery_parser_finish(p, &routes, &err), DISCOVERY_ERROR);
    EXPECT_STREQ(err.text, "status \"down\"");
    EXPECT_EQ(routes.data, nullptr);
    discovery_parser_destroy(p);

    // null-safe everywhere
    EXPECT_EQ(discovery_parser_feed(nullptr, "x", 1, nullptr), DISCOVERY_ERROR);
    EXPECT_EQ(discovery_parser_finish(nullptr, &routes, &err), DISCOVERY_ERROR);
    EXPECT_STREQ(err.text, "no parser");
    discovery_parser_destroy(nullptr);
}

} // namespace
} // namespace discovery
