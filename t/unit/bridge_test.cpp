// bridge_test.cpp: what discovery_core.h promises the glue, whatever the
// core behind it does.
#include "discovery_core.h"

#include <gtest/gtest.h>

#include <string>

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
static_assert(isNoexcept(discovery_image_size));
static_assert(isNoexcept(discovery_image_write));
static_assert(isNoexcept(discovery_image_free));
static_assert(isNoexcept(discovery_snapshot_states));
static_assert(isNoexcept(discovery_snapshot_check));
static_assert(isNoexcept(discovery_router_image));
static_assert(isNoexcept(discovery_router_open));
static_assert(isNoexcept(discovery_router_create));
static_assert(isNoexcept(discovery_router_destroy));
static_assert(isNoexcept(discovery_router_match));
static_assert(isNoexcept(discovery_router_roster));
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
                                        nullptr, nullptr, &err),
              DISCOVERY_ERROR);
    EXPECT_STREQ(err.text, "no output buffer");
    EXPECT_EQ(discovery_router_match(nullptr, "GET", 3, "/", 1, 0, nullptr),
              DISCOVERY_MATCH_NOT_FOUND);
}

std::string text(const char *p, size_t len)
{
    return p != nullptr ? std::string(p, len) : std::string();
}

// The glue maps a match's service_index to its configuration by the
// router's roster: the table's order, whatever the configuration's is.
TEST(Bridge, RouterRosterInTableOrder)
{
    discovery_service_conf_t conf[] = {
        {"users", 5, "http://u:8001", 13, "users_up", 8},
        {"chat", 4, "http://c:8002", 13, "127.0.0.1:8002", 14},
        {"billing", 7, "https://b", 9, "billing", 7},
    };
    discovery_error_t err;
    discovery_buf_t table = {nullptr, 0};

    ASSERT_EQ(discovery_snapshot_roster(nullptr, 0, conf, 3, 0, 1, &table,
                                        nullptr, nullptr, &err),
              DISCOVERY_OK)
        << err.text;

    discovery_router_t *router =
        discovery_router_create(table.data, table.len, &err);
    ASSERT_NE(router, nullptr) << err.text;

    size_t n = 0;
    ASSERT_EQ(discovery_router_roster(router, nullptr, 0, &n, &err),
              DISCOVERY_OK)
        << err.text;
    ASSERT_EQ(n, 3u);

    discovery_service_conf_t roster[3] = {};
    ASSERT_EQ(discovery_router_roster(router, roster, 3, &n, &err),
              DISCOVERY_OK);
    for (size_t i = 0; i < 3; i++) {
        EXPECT_EQ(text(roster[i].name, roster[i].name_len),
                  text(conf[i].name, conf[i].name_len));
        EXPECT_EQ(text(roster[i].url, roster[i].url_len),
                  text(conf[i].url, conf[i].url_len));
        EXPECT_EQ(text(roster[i].upstream, roster[i].upstream_len),
                  text(conf[i].upstream, conf[i].upstream_len));
    }

    // fewer than there are: only those are written, n tells the rest
    discovery_service_conf_t one[2] = {};
    ASSERT_EQ(discovery_router_roster(router, one, 1, &n, &err), DISCOVERY_OK);
    EXPECT_EQ(n, 3u);
    EXPECT_EQ(text(one[0].name, one[0].name_len), "users");
    EXPECT_EQ(one[1].name, nullptr);

    EXPECT_EQ(discovery_router_roster(nullptr, roster, 3, &n, &err),
              DISCOVERY_ERROR);
    EXPECT_STREQ(err.text, "no router");
    EXPECT_EQ(discovery_router_roster(router, nullptr, 3, &n, &err),
              DISCOVERY_ERROR);

    discovery_router_destroy(router);
    discovery_buf_free(&table);
}

} // namespace
