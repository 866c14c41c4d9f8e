// openapi_reader_test.cpp: OpenAPI documents, {"paths": {...}}: operations,
// security, info.version, and what is skipped.
#include "discovery_core.h"
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

} // namespace
} // namespace discovery
