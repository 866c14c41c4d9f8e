// route_template_test.cpp: template compilation, shapes and converters.
#include "route_template.hpp"

#include <gtest/gtest.h>

namespace discovery {
namespace {

std::vector<SegmentKind> kinds(const Template &tpl)
{
    std::vector<SegmentKind> out;
    for (const Segment &s : tpl.segments) {
        out.push_back(s.kind);
    }
    return out;
}

std::string shapeOf(const std::string &path)
{
    Template tpl;
    EXPECT_TRUE(compileTemplate(path, tpl)) << path;
    return templateShape(tpl);
}

TEST(RouteTemplate, CompilesLiteralsAndParameters)
{
    Template tpl;
    std::string path = "/users/{id:int}/files/{rest:path}";

    ASSERT_TRUE(compileTemplate(path, tpl));
    EXPECT_EQ(kinds(tpl), (std::vector<SegmentKind>{
                              SegmentKind::Literal, SegmentKind::Int,
                              SegmentKind::Literal, SegmentKind::Path}));
    EXPECT_EQ(tpl.segments[0].text, "users");
    EXPECT_EQ(tpl.segments[1].text, "id");
    EXPECT_EQ(tpl.segments[3].text, "rest");
}

TEST(RouteTemplate, PlainParameterIsStr)
{
    Template tpl;
    ASSERT_TRUE(compileTemplate("/{user_id}", tpl));
    EXPECT_EQ(kinds(tpl), std::vector<SegmentKind>{SegmentKind::Str});
}

TEST(RouteTemplate, AllConverters)
{
    Template tpl;
    ASSERT_TRUE(
        compileTemplate("/{a:str}/{b:int}/{c:float}/{d:uuid}/{e:path}", tpl));
    EXPECT_EQ(kinds(tpl),
              (std::vector<SegmentKind>{SegmentKind::Str, SegmentKind::Int,
                                        SegmentKind::Float, SegmentKind::Uuid,
                                        SegmentKind::Path}));
}

TEST(RouteTemplate, RejectsInvalid)
{
    const char *invalid[] = {
        "",       "users",  "/a/{b",      "/a/b}",     "/{a}.{b}",
        "/x{a}",  "/{a}x",  "/{a:bogus}", "/{}",       "/{:int}",
        "/{1a}",  "/{a-b}", "/{a:int:x}", "/{a:Path}", "/{p:paths}",
        "/a b",   "/a?x=1", "/a#frag",    "/a\tb",     "/{a}}",
        "/{{a}}", "/{a:}",  "/{ a}",
    };

    for (const char *path : invalid) {
        Template tpl;
        std::string reason;
        EXPECT_FALSE(compileTemplate(path, tpl, &reason)) << path;
        EXPECT_FALSE(reason.empty()) << path;
    }
}

TEST(RouteTemplate, PathParameterAnywhere)
{
    Template tpl;

    ASSERT_TRUE(compileTemplate("/files/{p:path}/meta", tpl));
    EXPECT_EQ(kinds(tpl),
              (std::vector<SegmentKind>{SegmentKind::Literal, SegmentKind::Path,
                                        SegmentKind::Literal}));
    EXPECT_EQ(tpl.segments[1].text, "p");

    ASSERT_TRUE(compileTemplate("/{p:path}/{id:int}/", tpl));
    EXPECT_EQ(kinds(tpl),
              (std::vector<SegmentKind>{SegmentKind::Path, SegmentKind::Int,
                                        SegmentKind::Literal}));
    EXPECT_EQ(templateShape(tpl), "/{path}/{int}/");
}

TEST(RouteTemplate, OnePathParameterPerTemplate)
{
    Template tpl;
    std::string reason;

    EXPECT_FALSE(compileTemplate("/a/{p:path}/b/{q:path}", tpl, &reason));
    EXPECT_EQ(reason, "more than one {:path} segment");
    EXPECT_FALSE(compileTemplate("/{p:path}/{p:path}", tpl, &reason));
    EXPECT_EQ(reason, "more than one {:path} segment");
}

TEST(RouteTemplate, AtMost31SegmentsAfterPathParameter)
{
    std::string path = "/x/{p:path}";
    for (size_t i = 0; i < kMaxSegmentsAfterPath; i++) {
        path += "/s";
    }
    Template tpl;
    std::string reason;

    EXPECT_TRUE(compileTemplate(path, tpl, &reason)) << reason;
    EXPECT_EQ(tpl.segments.size(), kMaxSegmentsAfterPath + 2);
    EXPECT_FALSE(compileTemplate(path + "/s", tpl, &reason));
    EXPECT_EQ(reason, "more than 31 segments after {:path}");
    // no such limit before it
    std::string before;
    for (size_t i = 0; i < 40; i++) {
        before += "/s";
    }
    EXPECT_TRUE(compileTemplate(before + path, tpl));
}

TEST(RouteTemplate, RejectsNulInLiteral)
{
    Template tpl;
    EXPECT_FALSE(compileTemplate(std::string("/a\0b", 4), tpl));
}

TEST(RouteTemplate, EmptySegmentsAreLiterals)
{
    Template tpl;

    ASSERT_TRUE(compileTemplate("/", tpl));
    ASSERT_EQ(tpl.segments.size(), 1u);
    EXPECT_EQ(tpl.segments[0].kind, SegmentKind::Literal);
    EXPECT_EQ(tpl.segments[0].text, "");

    EXPECT_NE(shapeOf("/users/"), shapeOf("/users"));
    EXPECT_NE(shapeOf("//a"), shapeOf("/a"));
}

TEST(RouteTemplate, ShapeIgnoresParameterNames)
{
    EXPECT_EQ(shapeOf("/users/{id}"), shapeOf("/users/{user_id}"));
    EXPECT_EQ(shapeOf("/users/{id}"), shapeOf("/users/{x:str}"));
    EXPECT_NE(shapeOf("/users/{id}"), shapeOf("/users/{id:int}"));
    EXPECT_NE(shapeOf("/users/{id:int}"), shapeOf("/users/{id:float}"));
    EXPECT_NE(shapeOf("/a/{p:path}"), shapeOf("/a/{p}"));
}

TEST(RouteTemplate, ShapeKeepsLiteralText)
{
    // a literal that looks like a converter name must not alias one
    EXPECT_NE(shapeOf("/str"), shapeOf("/{x}"));
    EXPECT_NE(shapeOf("/a/b"), shapeOf("/a/c"));
}

TEST(RouteTemplate, IntConverter)
{
    EXPECT_TRUE(segmentMatches(SegmentKind::Int, "0"));
    EXPECT_TRUE(segmentMatches(SegmentKind::Int, "12345678901234567890"));
    EXPECT_FALSE(segmentMatches(SegmentKind::Int, ""));
    EXPECT_FALSE(segmentMatches(SegmentKind::Int, "-1"));
    EXPECT_FALSE(segmentMatches(SegmentKind::Int, "1.0"));
    EXPECT_FALSE(segmentMatches(SegmentKind::Int, "12a"));
}

TEST(RouteTemplate, FloatConverter)
{
    EXPECT_TRUE(segmentMatches(SegmentKind::Float, "1"));
    EXPECT_TRUE(segmentMatches(SegmentKind::Float, "1.5"));
    EXPECT_TRUE(segmentMatches(SegmentKind::Float, "10.25"));
    EXPECT_FALSE(segmentMatches(SegmentKind::Float, "1."));
    EXPECT_FALSE(segmentMatches(SegmentKind::Float, ".5"));
    EXPECT_FALSE(segmentMatches(SegmentKind::Float, "1.2.3"));
    EXPECT_FALSE(segmentMatches(SegmentKind::Float, "1e5"));
    EXPECT_FALSE(segmentMatches(SegmentKind::Float, ""));
}

TEST(RouteTemplate, UuidConverter)
{
    EXPECT_TRUE(segmentMatches(SegmentKind::Uuid,
                               "123e4567-e89b-12d3-a456-426614174000"));
    EXPECT_FALSE(segmentMatches(SegmentKind::Uuid,
                                "123E4567-E89B-12D3-A456-426614174000"));
    EXPECT_FALSE(segmentMatches(SegmentKind::Uuid,
                                "123e4567e89b-12d3-a456-426614174000-"));
    EXPECT_FALSE(segmentMatches(SegmentKind::Uuid,
                                "123e4567-e89b-12d3-a456-42661417400"));
    EXPECT_FALSE(segmentMatches(SegmentKind::Uuid,
                                "123e4567-e89b-12d3-a456-42661417400g"));
}

TEST(RouteTemplate, StrConverter)
{
    EXPECT_TRUE(segmentMatches(SegmentKind::Str, "x"));
    EXPECT_FALSE(segmentMatches(SegmentKind::Str, ""));
    EXPECT_FALSE(segmentMatches(SegmentKind::Literal, "x"));
    EXPECT_FALSE(segmentMatches(SegmentKind::Path, "x"));
}

} // namespace
} // namespace discovery
