// ownership_test.cpp: prefix= keeps a service inside its own paths.
#include "discovery_core.h"
#include "ownership.hpp"

#include "captured_log.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace discovery;

TEST(Ownership, PrefixCoversItsSubtreeOnly)
{
    PathPrefixes p;
    p.add("/chat/");
    p.add("/rooms");

    EXPECT_TRUE(p.covers("/chat"));
    EXPECT_TRUE(p.covers("/chat/{id}"));
    EXPECT_TRUE(p.covers("/rooms/a/b"));
    EXPECT_FALSE(p.covers("/chatty"));
    EXPECT_FALSE(p.covers("/users/{id}"));
    EXPECT_FALSE(p.covers("/"));
}

TEST(Ownership, NoPrefixCoversEverything)
{
    PathPrefixes p;
    EXPECT_TRUE(p.covers("/anything"));

    p.add("/");
    EXPECT_TRUE(p.covers("/anything"));
}

TEST(Ownership, ParserRejectsRoutesOutsideThePrefixes)
{
    CapturedLog warnings;
    discovery_log_t log = {CapturedLog::handler, &warnings};
    discovery_error_t err;
    discovery_parser_t *p = discovery_parser_create(DISCOVERY_FORMAT_AUTO,
                                                    &log);
    ASSERT_NE(p, nullptr);

    ASSERT_EQ(discovery_parser_add_prefix(p, "/chat", 5, &err), DISCOVERY_OK);
    EXPECT_EQ(discovery_parser_add_prefix(p, "chat", 4, &err), DISCOVERY_ERROR);

    std::string doc = R"({"routes": [{"path": "/chat/{id}"},
        {"path": "/users/{id}"}, {"path": "/chatty"}]})";
    ASSERT_EQ(discovery_parser_feed(p, doc.data(), doc.size(), &err),
              DISCOVERY_OK);

    discovery_buf_t routes;
    ASSERT_EQ(discovery_parser_finish(p, &routes, &err), DISCOVERY_OK);

    RouteSet set = decodeRouteSet(routes.data, routes.len);
    ASSERT_EQ(set.routes.size(), 1u);
    EXPECT_EQ(set.routes[0].path, "/chat/{id}");
    ASSERT_EQ(set.rejected.size(), 2u);
    EXPECT_EQ(set.rejected[0].path, "/users/{id}");
    EXPECT_EQ(set.rejected[0].methods, 1u); // GET
    EXPECT_EQ(set.rejected[0].reason, "outside prefix");
    EXPECT_EQ(set.rejected[1].path, "/chatty");

    EXPECT_TRUE(warnings.lines.empty()); // the table warns, once

    discovery_buf_free(&routes);
    discovery_parser_destroy(p);
}
