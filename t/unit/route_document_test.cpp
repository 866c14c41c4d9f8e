// route_document_test.cpp: the reader's skeleton: JSON, depth, UTF-8, status,
// version and the choice of format.
#include "discovery_core.h"
#include "error.hpp"
#include "methods.hpp"
#include "route_document.hpp"
#include "route_document_support.hpp"

#include <gtest/gtest.h>

#include <random>

namespace discovery {
namespace {

const char *kFuzzSeed = R"({"status": "ok", "version": "1", "routes": [
    {"path": "/a/{id:int}", "methods": ["GET", "POST"], "tags": ["t"]},
    {"path": "/b/{p:path}", "name": "b", "auth_required": true},
    {"path": "/c", "websocket": true, "x": [1, 2.5, null, {"y": false}]}],
    "paths": {"/d": {"get": {"security": [{}]}}}})";

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

TEST(RouteDocument, TruncatedJsonFailsAtFinish)
{
    std::string doc = R"({"routes": [{"path": "/a"})";
    RouteDocumentParser parser(DocumentFormat::Auto, Log());

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
                         DocumentFormat::Auto, &warnings);
    ASSERT_EQ(set.routes.size(), 1u);
    EXPECT_EQ(set.routes[0].name, std::string("x\0y", 3));
    EXPECT_EQ(reasons(set), std::vector<std::string>{
                                "route #1: invalid template \"/b\\u0000\": invalid segment"});
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
    RouteDocumentParser parser(DocumentFormat::Auto, Log());

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
        RouteDocumentParser parser(DocumentFormat::Auto, Log());
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
    RouteDocumentParser parser(DocumentFormat::Auto, Log());
    std::string bad = "[";
    std::string good = "{}";

    EXPECT_THROW(parser.feed(bad.data(), bad.size()), Error);
    EXPECT_THROW(parser.feed(good.data(), good.size()), Error);
    EXPECT_THROW(parser.finish(), Error);
}

/* format=auto decides at the end; a forced format reads only its shape */

TEST(RouteDocument, RoutesMemberWinsInAuto)
{
    RouteSet set = parse(R"({"paths": {"/p": {"get": {}}},
        "routes": [{"path": "/r"}]})");
    ASSERT_EQ(set.routes.size(), 1u);
    EXPECT_EQ(set.routes[0].path, "/r");
}

// Only the chosen grammar's rejected entries are listed.
TEST(RouteDocument, RejectedEntriesComeFromTheShapeRead)
{
    std::string doc = R"({"paths": {"/p/{x": {"get": {}}},
        "routes": [{"path": "/r"}, {"path": "/r/{y"}]})";

    EXPECT_EQ(reasons(parse(doc)),
              (std::vector<std::string>{
                  "route #1: invalid template \"/r/{y\": invalid segment"}));
    EXPECT_EQ(reasons(parse(R"({"paths": {"/p/{x": {"get": {}}},
                               "routes": 1})",
                            DocumentFormat::OpenApi)),
              (std::vector<std::string>{
                  "path #0: invalid template \"/p/{x\": invalid segment"}));
}

TEST(RouteDocument, ForcedFormatsIgnoreTheOtherShape)
{
    std::string doc = R"({"paths": {"/p": {"get": {}}},
        "routes": [{"path": "/r"}]})";

    RouteSet routes = parse(doc, DocumentFormat::Routes);
    ASSERT_EQ(routes.routes.size(), 1u);
    EXPECT_EQ(routes.routes[0].path, "/r");

    RouteSet openApi = parse(doc, DocumentFormat::OpenApi);
    ASSERT_EQ(openApi.routes.size(), 1u);
    EXPECT_EQ(openApi.routes[0].path, "/p");
}

/* the C interface, as the glue uses it */

TEST(ParserApi, FeedFinishAndFree)
{
    Captured warnings;
    discovery_log_t log = {CapturedLog::handler, &warnings};
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
