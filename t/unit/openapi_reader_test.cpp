// openapi_reader_test.cpp: OpenAPI documents, {"paths": {...}}: operations,
// security, info.version, and what is skipped.
#include "methods.hpp"
#include "route_document_support.hpp"

#include <gtest/gtest.h>

namespace discovery {
namespace {

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
    RouteSet set = parse(kOpenApi, DocumentFormat::Auto, &warnings);

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
                                "path #5: invalid template \"/bad/{x\": invalid segment"});
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

TEST(OpenApi, PathsMustBeAnObject)
{
    EXPECT_EQ(parseError(R"({"openapi": "3.0.0", "paths": []})"),
              "\"paths\" is not an object");
    EXPECT_EQ(parseError(R"({"paths": 1})", DocumentFormat::OpenApi),
              "\"paths\" is not an object");
    // not OpenAPI after all: a stray "paths" does not matter
    EXPECT_EQ(parseError(R"({"paths": 1, "routes": []})"), "");
}

TEST(OpenApi, MalformedOperationIsSkipped)
{
    Captured warnings;
    RouteSet set = parse(R"({"paths": {"/a": {
        "get": {"operationId": 5}, "post": {"operationId": "ok"}}}})",
                         DocumentFormat::Auto, &warnings);

    ASSERT_EQ(set.routes.size(), 1u);
    EXPECT_EQ(set.routes[0].methods, kPost);
    EXPECT_EQ(set.routes[0].name, "ok");
    EXPECT_EQ(reasons(set),
              std::vector<std::string>{"path #0 operation GET: "
                                       "\"operationId\" is not a string"});
    EXPECT_EQ(set.rejected[0].path, "/a");
    EXPECT_EQ(set.rejected[0].methods, kGet);
}

TEST(OpenApi, UppercaseOperationKeysAreNotOperations)
{
    RouteSet set = parse(R"({"paths": {"/a": {"GET": {}}}})");
    EXPECT_TRUE(set.routes.empty());
}

TEST(OpenApi, InfoVersionWinsOverTheTopLevelOne)
{
    EXPECT_EQ(parse(R"({"openapi": "3.0.0", "version": "1",
        "info": {"version": "2"}, "paths": {}})")
                  .version,
              "2");
    EXPECT_EQ(parse(R"({"openapi": "3.0.0", "info": {"title": "x"},
        "version": "1"})")
                  .version,
              "1");

    // one too long is warned about and ignored
    Captured warnings;
    EXPECT_EQ(
        parse(R"({"openapi": "3.0.0", "version": "1", "info": {"version": ")"
                  + std::string(257, 'v') + R"("}})",
              DocumentFormat::Auto, &warnings)
            .version,
        "1");
    EXPECT_EQ(warnings.lines, std::vector<std::string>{
                                  "version longer than 256 bytes ignored"});

    // a route list's version is its own, whatever "info" says
    EXPECT_EQ(parse(R"({"version": "1", "info": {"version": "2"},
        "routes": []})")
                  .version,
              "1");
}

TEST(OpenApi, MalformedPathsAndOperationsAreListed)
{
    Captured warnings;
    RouteSet set = parse(R"({"openapi": "3.0.0", "paths": {
        "/)" + std::string(1024, 'l')
                             + R"(": {"get": {}},
        "/x": 5,
        "/y": {"get": {"operationId": ")"
                             + std::string(257, 'n') + R"("}},
        "/z": {"put": {"tags": "a"}},
        "/w": {"post": {"tags": [1]}},
        "/v": {"patch": {"security": {}}},
        "/u": {"get": {}, "head": {"tags": ["t", ")"
                             + std::string(129, 't') + R"("]}},
        "/ok": {"get": {"operationId": null, "tags": null, "security": null}}
    }})",
                         DocumentFormat::Auto, &warnings);

    ASSERT_EQ(set.routes.size(), 2u);
    EXPECT_EQ(set.routes[0].path, "/u");
    EXPECT_EQ(set.routes[0].methods, kGet);
    EXPECT_EQ(set.routes[1].path, "/ok");
    EXPECT_EQ(set.routes[1].methods, kGet);
    EXPECT_EQ(
        reasons(set),
        (std::vector<std::string>{
            "path #0: path longer than 1024 bytes", "path #1: not an object",
            "path #2 operation GET: operationId longer than 256 bytes",
            "path #3 operation PUT: \"tags\" is not an array",
            "path #4 operation POST: tag is not a string",
            "path #5 operation PATCH: \"security\" is not an array",
            "path #6 operation HEAD: tag longer than 128 bytes"}));
    ASSERT_EQ(set.rejected.size(), 7u);
    EXPECT_EQ(set.rejected[0].methods, kGet);
    EXPECT_EQ(set.rejected[3].path, "/z");
    EXPECT_EQ(set.rejected[3].methods, kPut);
    EXPECT_TRUE(warnings.lines.empty());
}

TEST(OpenApi, TooManyPaths)
{
    std::string doc = "{\"paths\": {";
    for (size_t i = 0; i <= 100000; i++) {
        doc += (i ? ",\"/" : "\"/") + std::to_string(i) + "\": {}";
    }
    doc += "}}";
    EXPECT_EQ(parseError(doc), "too many routes");
}

} // namespace
} // namespace discovery
