// request_path_test.cpp: which raw paths are canonical, and their canonical form.
#include "discovery_core.h"
#include "request_path.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace discovery {
namespace {

TEST(RequestPath, PlainPathsAreCanonical)
{
    for (const char *raw :
         {"/", "/users/1", "/users/", "/a/b/c/", "/a.b/c..d/.e/f.",
          "/...", "/a/...", "/%41/%c3%a9", "/a/%31", "/a%2Fb", "/a/%252e%252e",
          "/a/%2e%2e%2e", "/a/%2ex", "/a/.%2", "/a/%2", "/a\\..\\b",
          "/a/%5c..%5cb", "/a/%c0%ae%c0%ae/b", "/a/%zz"}) {
        EXPECT_TRUE(isCanonicalPath(raw)) << raw;
    }
}

TEST(RequestPath, DotSegmentsInEveryEncoding)
{
    for (const char *raw :
         {"/a/./b", "/a/../b", "/a/%2e%2e/b", "/a/%2E%2E/b", "/a/.%2e/b",
          "/a/%2e./b", "/a/%2e/b", "/a/..", "/a/.", "/..", "/.", "/a/..%2fb",
          "/a/b#frag", "/users/abc#/avatar",
          "/a/%2f../b", "/a%2f..%2fb", "/a/..%2Fb", "/a%2F%2e%2E%2Fb",
          "/static/%2e%2e/users/abc"}) {
        EXPECT_FALSE(isCanonicalPath(raw)) << raw;
    }
}

TEST(RequestPath, RepeatedSlashes)
{
    for (const char *raw :
         {"//users/1", "/users//1", "/users/1//", "/a/%2F/b", "/a%2F%2Fb",
          "/a%2f/b", "%2F%2Fa"}) {
        EXPECT_FALSE(isCanonicalPath(raw)) << raw;
    }
}

/*
 * The common case is told eight bytes at a time: a '#', a dot segment or a
 * "//" found at every place in paths of every length up to 40, whatever
 * words it falls in, and "//" across two words.
 */
TEST(RequestPath, EveryPlaceInAWord)
{
    for (size_t len = 2; len <= 40; len++) {
        std::string plain(len, 'a');
        for (size_t i = 0; i < len; i += 3) {
            plain[i] = '/';
        }
        EXPECT_TRUE(isCanonicalPath(plain)) << plain;

        for (size_t at = 1; at < len; at++) {
            std::string s = plain;
            s[at] = '#';
            EXPECT_FALSE(isCanonicalPath(s)) << s;

            s = plain;
            s[at] = '/';
            s[at - 1] = '/';
            EXPECT_FALSE(isCanonicalPath(s)) << s;

            s = plain;
            if (s[at - 1] == '/' && (at + 1 == len || s[at + 1] == '/')) {
                s[at] = '.';
                EXPECT_FALSE(isCanonicalPath(s)) << s;
            }
        }
    }
}

/*
 * Python's '$' also matches before a final newline: Starlette runs its
 * "/a/b" route for "/a/b%0A", which nginx routes as the segment "b\n".
 * A decoded control character has no canonical form to redirect to.
 */
TEST(RequestPath, EncodedControlCharacters)
{
    for (const char *raw :
         {"/a/b%0A", "/a/b%0a", "/users/me%0A", "/a/b%0D", "/a%09b", "/a/%1F",
          "/a/%1f/b", "/a/%7F", "/a/%00"}) {
        EXPECT_FALSE(isCanonicalPath(raw)) << raw;
        EXPECT_FALSE(hasCanonicalForm(raw)) << raw;
        EXPECT_EQ(discovery_path_is_canonical(raw, std::strlen(raw)), -1)
            << raw;
    }

    for (const char *raw : {"/a/b%20", "/a/%2A", "/a/%3F", "/a/%80", "/a/%0"}) {
        EXPECT_TRUE(isCanonicalPath(raw)) << raw;
        EXPECT_TRUE(hasCanonicalForm(raw)) << raw;
    }

    EXPECT_TRUE(hasCanonicalForm("/a/../b"));
    EXPECT_EQ(discovery_path_is_canonical("/a/../b", 7), 0);
}

TEST(RequestPath, CanonicalForm)
{
    const struct {
        const char *raw;
        const char *canonical;
    } cases[] = {
        {"/a/./b", "/a/b"},
        {"/a/../b", "/b"},
        {"/static/%2e%2e/users/abc", "/users/abc"},
        {"/chat/../users/1", "/users/1"},
        {"//users//1", "/users/1"},
        {"/users/1//", "/users/1/"},
        {"/a/..", "/"},
        {"/a/b/..", "/a/"},
        {"/a/.", "/a/"},
        {"/..", "/"},
        {"/../../x", "/x"},
        {"/a%2F..%2Fb", "/b"},
        {"/a/%2E%2e/%41/./c", "/%41/c"},
        {"/users/1", "/users/1"},
        {"/a/b#/../c", "/a/b"},
        {"/a/%2e%2e/%ff", "/%ff"},
        {"/a/../\xff\x01\"<x>", "/%FF%01%22%3Cx%3E"},
        {"/a/..//evil.example", "/evil.example"},
    };

    for (const auto &c : cases) {
        EXPECT_EQ(canonicalPath(c.raw), c.canonical) << c.raw;
        EXPECT_LE(canonicalPath(c.raw).size(),
                  3 * std::string(c.raw).size())
            << c.raw;
    }
}

TEST(RequestPath, CApi)
{
    std::string raw = "/a/%2e%2e/b/";
    std::string out(3 * raw.size() + 1, '\0');

    EXPECT_EQ(discovery_path_is_canonical("/a/b", 4), 1);
    EXPECT_EQ(discovery_path_is_canonical(raw.data(), raw.size()), 0);

    size_t n = discovery_path_canonicalize(raw.data(), raw.size(), &out[0]);
    EXPECT_EQ(out.substr(0, n), "/b/");
}

} // namespace
} // namespace discovery
