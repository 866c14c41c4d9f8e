// route_list_reader_test.cpp: route lists, {"routes": [...]}, friendly and
// hostile.
#include "methods.hpp"
#include "route_document_support.hpp"
#include "snapshot.hpp"

#include <gtest/gtest.h>

namespace discovery {
namespace {

TEST(RouteList, ReadsTheReadmeExample)
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

TEST(RouteList, DefaultsAndCaseInsensitiveMethods)
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

TEST(RouteList, RoutesMustBeAnArray)
{
    EXPECT_EQ(parseError(R"({"routes": {}})"), "\"routes\" is not an array");
    EXPECT_EQ(parseError(R"({"routes": null})"), "\"routes\" is not an array");
}

TEST(RouteList, MalformedEntriesAreSkippedAndListed)
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
                         DocumentFormat::Routes, &warnings);

    ASSERT_EQ(set.routes.size(), 2u);
    EXPECT_EQ(set.routes[0].path, "/ok");
    EXPECT_EQ(set.routes[1].path, "/also-ok");

    // listed with the set, for the table to warn about once and show
    std::vector<std::string> expected = {
        "route #1: not an object",
        "route #2: no \"path\"",
        "route #3: invalid template \"/a/{b\": invalid segment",
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

// The status page says what is wrong with a template, not only that it is.
TEST(RouteList, InvalidTemplateSaysWhy)
{
    RouteSet set = parse(R"({"routes": [
        {"path": "/p/{x:path}/q/{y:path}"},
        {"path": "p"}
    ]})",
                         DocumentFormat::Routes);

    EXPECT_EQ(reasons(set),
              (std::vector<std::string>{
                  "route #0: invalid template \"/p/{x:path}/q/{y:path}\": "
                  "more than one {:path} segment",
                  "route #1: invalid template \"p\": does not start with "
                  "\"/\""}));
}

// Duplicates merge, but not past the bound on extension methods: the
// entry that would is turned away whole, and listed.
TEST(RouteList, MergedDuplicatesKeepTheExtensionMethodBound)
{
    auto list = [](char prefix) {
        std::string out;
        for (char c = 'A'; c < 'A' + 16; c++) {
            out += std::string(out.empty() ? "" : ",") + "\"" + prefix + c
                   + "\"";
        }
        return out;
    };
    RouteSet set = parse(R"({"routes": [
        {"path": "/m", "methods": [)" + list('A') + R"(]},
        {"path": "/m", "methods": ["GET", )" + list('B') + R"(]},
        {"path": "/m", "methods": ["POST", "AC"]}
    ]})",
                         DocumentFormat::Routes);

    ASSERT_EQ(set.routes.size(), 1u);
    EXPECT_EQ(set.routes[0].methods, kPost);
    EXPECT_EQ(set.routes[0].extensionMethods.size(), 16u);
    ASSERT_EQ(set.rejected.size(), 1u);
    EXPECT_EQ(set.rejected[0].reason,
              "more than 16 extension methods on one path");
    EXPECT_EQ(set.rejected[0].methods, kGet);
}

TEST(RouteList, RejectedEntriesPastTheLimitAreCounted)
{
    std::string doc = R"({"routes": [)";
    for (size_t i = 0; i < kMaxRejected + 5; i++) {
        doc += R"({"path": 1},)";
    }
    doc += R"({"path": "/ok"}]})";

    RouteSet set = parse(doc, DocumentFormat::Auto);
    EXPECT_EQ(set.routes.size(), 1u);
    EXPECT_EQ(set.rejected.size(), kMaxRejected);
    EXPECT_EQ(set.rejectedOmitted, 5u);

    Bytes blob = encodeRouteSet(set);
    EXPECT_TRUE(decodeRouteSet(blob.data(), blob.size()) == set);
}

// Any RFC 9110 token is a method: WebDAV's, a cache's PURGE, a custom one.
TEST(RouteList, ExtensionMethodsAreRouted)
{
    Captured warnings;
    RouteSet set = parse(R"({"routes": [
        {"path": "/a", "methods": ["GET", "PROPFIND", "mkcol", "X-Y.z!"]},
        {"path": "/a", "methods": ["propfind", "PURGE", "post"]}
    ]})",
                         DocumentFormat::Auto, &warnings);

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

TEST(RouteList, InvalidMethodSkipsTheEntry)
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
                         DocumentFormat::Auto);

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

TEST(RouteList, EntryBounds)
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
                         DocumentFormat::Auto, &warnings);

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

TEST(RouteList, DuplicateRoutesMergeMethods)
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

// The routes after duplicates keep their order, each moved over those
// merged before it.
TEST(RouteList, DuplicatesMergedKeepTheOrderOfTheRest)
{
    RouteSet set = parse(R"({"routes": [
        {"path": "/a", "methods": ["GET"]},
        {"path": "/b", "methods": ["GET"]},
        {"path": "/a", "methods": ["PUT"]},
        {"path": "/c", "methods": ["GET"], "name": "c"},
        {"path": "/b", "methods": ["POST"]},
        {"path": "/b", "methods": ["PATCH"]},
        {"path": "/d", "methods": ["GET"], "tags": ["t"]}]})");

    ASSERT_EQ(set.routes.size(), 4u);
    EXPECT_EQ(set.routes[0].path, "/a");
    EXPECT_EQ(set.routes[0].methods, kGet | kPut);
    EXPECT_EQ(set.routes[1].path, "/b");
    EXPECT_EQ(set.routes[1].methods, kGet | kPost | kPatch);
    EXPECT_EQ(set.routes[2].path, "/c");
    EXPECT_EQ(set.routes[2].name, "c");
    EXPECT_EQ(set.routes[3].path, "/d");
    EXPECT_EQ(set.routes[3].tags, (std::vector<std::string>{"t"}));
}

TEST(RouteList, TooManyRoutes)
{
    std::string doc = "{\"routes\": [";
    for (size_t i = 0; i <= 100000; i++) {
        doc += i ? ",0" : "0";
    }
    doc += "]}";
    EXPECT_EQ(parseError(doc), "too many routes");
}

} // namespace
} // namespace discovery
