// route_document.cpp: fuzzes the route-document parser through the C API.
//
// The input is the document.  For each format it is parsed twice, whole and
// in 1-3 pieces cut where a hash of the input says: both must agree.  An
// accepted route set must then go into a snapshot (roster, then the core's
// applyPoll to two services so every route conflicts), build a router, match
// each route's template filled with sample values, and render as a valid
// status page.
// The raw input also goes through discovery_json_escape.
#include "discovery_core.h"
#include "fuzz_common.hpp"
#include "log.hpp"
#include "route_template.hpp"
#include "snapshot.hpp"
#include "snapshot_update.hpp"

#include <exception>
#include <optional>
#include <string>
#include <string_view>

namespace {

struct Parsed {
    int rc = DISCOVERY_ERROR;
    std::string routes; // the route-set blob when rc is OK
};

Parsed parse(int format, const char *data, size_t size, const size_t *cuts,
             size_t ncuts)
{
    fuzz::Log log;
    discovery_error_t err;
    Parsed out;
    discovery_parser_t *p = discovery_parser_create(format, &log.raw);

    if (p == nullptr) {
        fuzz::fail("parser_create returned NULL");
    }

    size_t at = 0;
    int rc = DISCOVERY_OK;
    for (size_t i = 0; i <= ncuts && rc == DISCOVERY_OK; i++) {
        size_t end = i < ncuts ? cuts[i] : size;
        rc = discovery_parser_feed(p, data + at, end - at, &err);
        fuzz::checkError(err);
        at = end;
    }

    if (rc == DISCOVERY_OK) {
        discovery_buf_t buf = {nullptr, 0};
        rc = discovery_parser_finish(p, &buf, &err);
        fuzz::checkError(err);
        if (rc == DISCOVERY_OK) {
            out.routes.assign(reinterpret_cast<char *>(buf.data), buf.len);
            discovery_buf_free(&buf);
        }
    }

    fuzz::check(rc == DISCOVERY_OK || rc == DISCOVERY_ERROR,
                "unexpected parser return code");
    out.rc = rc;
    discovery_parser_destroy(p);
    return out;
}

// A request path the template matches: each parameter given a sample value.
std::string concretePath(const discovery::Template &tpl)
{
    std::string path;

    for (const discovery::Segment &seg : tpl.segments) {
        path += '/';
        switch (seg.kind) {
        case discovery::SegmentKind::Literal:
            path += seg.text;
            break;
        case discovery::SegmentKind::Int:
            path += "42";
            break;
        case discovery::SegmentKind::Float:
            path += "4.2";
            break;
        case discovery::SegmentKind::Uuid:
            path += "123e4567-e89b-12d3-a456-426614174000";
            break;
        case discovery::SegmentKind::Str:
            path += "x";
            break;
        case discovery::SegmentKind::Path:
            path += "a/b";
            break;
        }
    }

    return path;
}

void useRoutes(const std::string &blob)
{
    fuzz::Log log;
    discovery_error_t err;
    const discovery_service_conf_t confs[] = {
        {"a", 1, "http://a/r", 10, "a_up", 4},
        {"b", 1, "http://b/r", 10, "b_up", 4},
    };
    discovery_buf_t roster = {nullptr, 0};

    int rc = discovery_snapshot_roster(nullptr, 0, confs, 2, 0, 1, &roster,
                                       nullptr, &log.raw, &err);
    fuzz::check(rc == DISCOVERY_OK, "roster failed", err.text);

    auto routes = reinterpret_cast<const unsigned char *>(blob.data());
    discovery::Log core = log.core();
    std::optional<discovery::Bytes> one, two;
    try {
        // whatever the parser accepts, a snapshot must take
        one = discovery::applyPoll(
            roster.data, roster.len,
            {"a", "http://a/r", discovery::ServiceState::Healthy, routes, blob.size()},
            2, core);
        fuzz::check(one.has_value(), "apply of parsed routes changed nothing");
        two = discovery::applyPoll(
            one->data(), one->size(),
            {"b", "http://b/r", discovery::ServiceState::Unhealthy, routes, blob.size()},
            3, core);
        fuzz::check(two.has_value(), "second apply changed nothing");
    } catch (const std::exception &e) {
        fuzz::fail("apply of parsed routes failed", e.what());
    }

    uint64_t generation = 0;
    rc = discovery_snapshot_check(two->data(), two->size(), &generation, &err);
    fuzz::check(rc == DISCOVERY_OK && generation == 3, "check failed",
                err.text);

    discovery_router_t *router =
        discovery_router_create(two->data(), two->size(), &err);
    fuzz::check(router != nullptr, "router_create failed", err.text);

    discovery::RouteSet set = discovery::decodeRouteSet(routes, blob.size());
    discovery_match_t m;
    size_t tried = 0;

    for (const discovery::Route &r : set.routes) {
        if (tried++ == 16) {
            break;
        }

        discovery::Template tpl;
        fuzz::check(discovery::compileTemplate(r.path, tpl),
                    "parsed route with an invalid template", r.path);

        std::string path = concretePath(tpl);
        int status = discovery_router_match(router, "GET", 3, path.data(),
                                            path.size(), 0, &m);
        fuzz::check(status == m.status, "match status mismatch");
        // some route matches the path: only 404 is impossible
        fuzz::check(status != DISCOVERY_MATCH_NOT_FOUND
                        && status != DISCOVERY_MATCH_PENDING,
                    "a route's own path is not found", path);
        // service a is first and healthy: it owns everything it published
        if (status == DISCOVERY_MATCH_FOUND) {
            fuzz::check(m.service_len == 1 && m.service[0] == 'a',
                        "found in the wrong service", path);
        }

        discovery_router_match(router, "OPTIONS", 7, path.data(),
                               path.size(), 0, &m);
        discovery_router_match(router, "HEAD", 4, path.data(), path.size(),
                               1, &m);
        discovery_router_match(router, "GET", 3, r.path.data(),
                               r.path.size(), 0, &m);
    }
    discovery_router_match(router, "GET", 3, "/", 1, 0, &m);
    discovery_router_destroy(router);

    const discovery_service_stats_t stats[] = {
        {"a", 1, 1700000000, 1700000000, 0, "", 0, 0},
        {"b", 1, 1700000000, 0, 3, "status \"down\"", 13, 1},
    };
    discovery_buf_t page = {nullptr, 0};
    rc = discovery_status_render(two->data(), two->size(), stats, 2, nullptr, 0,
                                 "1.0", nullptr, 0, &page, &err);
    fuzz::check(rc == DISCOVERY_OK, "status_render failed", err.text);
    fuzz::checkJson(page);

    discovery_buf_free(&page);
    discovery_buf_free(&roster);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    auto text = reinterpret_cast<const char *>(data);
    uint32_t h = fuzz::fnv1a(2166136261u, data, size);

    // the bytes as a string for the status page or a log line
    fuzz::checkEscape(data, size);

    for (int format : {DISCOVERY_FORMAT_AUTO, DISCOVERY_FORMAT_ROUTES,
                       DISCOVERY_FORMAT_OPENAPI}) {
        // 1-3 pieces, possibly empty, at hash-chosen offsets
        size_t cuts[2];
        size_t ncuts = (h >> (format * 2)) % 3;
        for (size_t i = 0; i < ncuts; i++) {
            h = h * 16777619u + 0x9e3779b9u;
            cuts[i] = size == 0 ? 0 : (h >> 8) % (size + 1);
        }
        if (ncuts == 2 && cuts[0] > cuts[1]) {
            std::swap(cuts[0], cuts[1]);
        }

        Parsed whole = parse(format, text, size, nullptr, 0);
        Parsed pieces = parse(format, text, size, cuts, ncuts);

        fuzz::check(whole.rc == pieces.rc && whole.routes == pieces.routes,
                    "result depends on how the body is cut");

        if (whole.rc == DISCOVERY_OK) {
            useRoutes(whole.routes);
        }
    }

    return 0;
}
