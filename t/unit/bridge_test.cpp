// bridge_test.cpp: what discovery_core.h promises the glue, whatever the
// core behind it does.
#include "discovery_core.h"

#include <gtest/gtest.h>

#include <utility>

namespace {

// A bridge function that could throw would let an exception into nginx's
// C frames: the compiler checks each one is noexcept.
template <typename R, typename... A>
constexpr bool isNoexcept(R (*)(A...) noexcept)
{
    return true;
}

template <typename R, typename... A>
constexpr bool isNoexcept(R (*)(A...))
{
    return false;
}

static_assert(isNoexcept(discovery_buf_free));
static_assert(isNoexcept(discovery_health_update));
static_assert(isNoexcept(discovery_parser_create));
static_assert(isNoexcept(discovery_parser_destroy));
static_assert(isNoexcept(discovery_parser_feed));
static_assert(isNoexcept(discovery_parser_add_prefix));
static_assert(isNoexcept(discovery_parser_finish));
static_assert(isNoexcept(discovery_snapshot_roster));
static_assert(isNoexcept(discovery_snapshot_apply_polls));
static_assert(isNoexcept(discovery_snapshot_states));
static_assert(isNoexcept(discovery_snapshot_check));
static_assert(isNoexcept(discovery_router_create));
static_assert(isNoexcept(discovery_router_destroy));
static_assert(isNoexcept(discovery_router_match));
static_assert(isNoexcept(discovery_path_is_canonical));
static_assert(isNoexcept(discovery_path_canonicalize));
static_assert(isNoexcept(discovery_status_render));
static_assert(isNoexcept(discovery_json_escape));

// The null arguments the C side may pass answer, never crash or throw.
TEST(Bridge, NullArgumentsAnswer)
{
    discovery_error_t err;

    discovery_buf_free(nullptr);
    discovery_parser_destroy(nullptr);
    discovery_router_destroy(nullptr);
    EXPECT_EQ(discovery_health_update(nullptr, 1, 1, 1), 0);
    EXPECT_EQ(discovery_json_escape(nullptr, nullptr, 5), 0u);

    EXPECT_EQ(discovery_parser_feed(nullptr, "{}", 2, &err), DISCOVERY_ERROR);
    EXPECT_STREQ(err.text, "no parser");
    EXPECT_EQ(discovery_snapshot_roster(nullptr, 0, nullptr, 0, 0, 1, nullptr,
                                        nullptr, &err),
              DISCOVERY_ERROR);
    EXPECT_STREQ(err.text, "no output buffer");
    EXPECT_EQ(discovery_router_match(nullptr, "GET", 3, "/", 1, 0, nullptr),
              DISCOVERY_MATCH_NOT_FOUND);
}

} // namespace
