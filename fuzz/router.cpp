// router.cpp: fuzzes the trie router against a brute-force reference.
//
// A small table (1-3 services, a few routes each, templates built from a
// pool of literal and parameter segments or raw fuzz bytes) goes through
// the snapshot encoder and discovery_router_create; fuzz-derived methods
// and paths are then matched, and each answer compared with the reference:
// every route whose template matches, grouped by shape, shapes taken in
// precedence order (literal, int, float, uuid, str, path, from the left),
// entries in roster order with earlier services keeping their methods.
#include "conflicts.hpp"
#include "discovery_core.h"
#include "fuzz_common.hpp"
#include "methods.hpp"
#include "route_template.hpp"
#include "snapshot.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace {

using discovery::SegmentKind;

const char *const kTemplateSegments[] = {
    "users", "files", "a", "b", "", "42", "{id}", "{id:int}", "{x:float}",
    "{u:uuid}", "{s:str}", "{p:path}", "{name}",
};

const char *const kPathSegments[] = {
    "users", "files", "a", "b", "", "42", "4.2", "-1", "x", "{id}",
    "123e4567-e89b-12d3-a456-426614174000", "0",
};

const char *const kMethods[] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
    "CONNECT", "get", "",
};

template <size_t N>
std::string pick(FuzzedDataProvider &in, const char *const (&pool)[N])
{
    size_t i = in.ConsumeIntegralInRange<size_t>(0, N);
    return i < N ? std::string(pool[i]) : in.ConsumeRandomLengthString(12);
}

int rank(SegmentKind k)
{
    switch (k) {
    case SegmentKind::Literal: return 0;
    case SegmentKind::Int: return 1;
    case SegmentKind::Float: return 2;
    case SegmentKind::Uuid: return 3;
    case SegmentKind::Str: return 4;
    case SegmentKind::Path: return 5;
    }
    return 6;
}

struct RefEntry {
    uint32_t methods;
    uint32_t service;
    std::string route;
    bool auth;
};

struct Shape {
    discovery::Template tpl; // of the first route of this shape
    std::vector<int> ranks;
    std::vector<RefEntry> entries;
};

struct Expected {
    int status;
    std::string service, upstream, route, allow;
    bool auth = false;
};

Expected reference(const discovery::Snapshot &snap,
                   const std::vector<Shape> &shapes, const std::string &method,
                   const std::string &path, bool websocket)
{
    uint32_t want = websocket ? discovery::kGet : discovery::methodBit(method);
    if (want == discovery::kHead) {
        want |= discovery::kGet;
    }

    Expected x;
    x.status = DISCOVERY_MATCH_NOT_FOUND;
    if (path.empty() || path[0] != '/') {
        return x; // not a request path: 404, whatever is pending
    }

    std::vector<const Shape *> matching;
    for (const Shape &s : shapes) {
        if (!s.entries.empty() && fuzz::referenceMatch(s.tpl, path)) {
            matching.push_back(&s);
        }
    }
    std::stable_sort(matching.begin(), matching.end(),
                     [](const Shape *a, const Shape *b) {
                         return a->ranks < b->ranks;
                     });

    auto answer = [&](const RefEntry &e) {
        const discovery::Service &svc = snap.services[e.service];
        Expected found;
        found.status = svc.state == DISCOVERY_STATE_UNHEALTHY
                           ? DISCOVERY_MATCH_UNAVAILABLE
                           : DISCOVERY_MATCH_FOUND;
        found.service = svc.name;
        found.upstream = svc.upstream;
        found.route = e.route;
        found.auth = e.auth;
        return found;
    };

    for (const Shape *s : matching) {
        for (const RefEntry &e : s->entries) {
            if (e.methods & want) {
                return answer(e);
            }
        }
    }

    if (!matching.empty()) {
        const Shape &first = *matching[0];
        if (want == discovery::kOptions) {
            return answer(first.entries[0]);
        }
        uint32_t allow = discovery::kOptions;
        for (const RefEntry &e : first.entries) {
            allow |= e.methods;
        }
        if (allow & discovery::kGet) {
            allow |= discovery::kHead;
        }
        const discovery::Service &owner =
            snap.services[first.entries[0].service];
        x.status = DISCOVERY_MATCH_NOT_ALLOWED;
        x.service = owner.name;
        x.upstream = owner.upstream;
        x.allow = std::string(discovery::allowHeader(allow));
        return x;
    }

    for (const discovery::Service &svc : snap.services) {
        if (svc.state == DISCOVERY_STATE_PENDING) {
            x.status = DISCOVERY_MATCH_PENDING;
        }
    }
    return x;
}

std::string view(const char *p, size_t n)
{
    return p != nullptr ? std::string(p, n) : std::string();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzedDataProvider in(data, size);
    discovery::Snapshot snap;
    std::map<std::string, size_t> byShape;
    std::vector<Shape> shapes;

    snap.generation = 7;
    size_t nservices = in.ConsumeIntegralInRange<size_t>(1, 3);
    for (size_t s = 0; s < nservices; s++) {
        discovery::Service svc;
        svc.name = "s" + std::to_string(s);
        svc.url = "http://" + svc.name + "/routes";
        svc.upstream = svc.name + "_up";
        svc.state = in.ConsumeIntegralInRange<uint32_t>(0, 2);

        size_t nroutes = in.ConsumeIntegralInRange<size_t>(0, 6);
        for (size_t r = 0; r < nroutes; r++) {
            discovery::Route route;
            size_t nsegs = in.ConsumeIntegralInRange<size_t>(1, 4);
            for (size_t i = 0; i < nsegs; i++) {
                route.path += '/' + pick(in, kTemplateSegments);
            }
            route.methods = in.ConsumeIntegral<uint16_t>()
                            & discovery::kAllMethods;
            if (route.methods == 0) {
                route.methods = discovery::kGet;
            }
            route.authRequired = in.ConsumeBool();

            discovery::Template tpl;
            if (route.path.size() > discovery::kMaxPathLen
                || !discovery::compileTemplate(route.path, tpl)) {
                continue;
            }
            svc.routeSet.routes.push_back(route);
        }
        snap.services.push_back(std::move(svc));
    }
    snap.conflicts = discovery::findConflicts(snap.services);

    // the reference's table: shapes, entries in roster order, resolved
    for (uint32_t s = 0; s < snap.services.size(); s++) {
        for (const discovery::Route &r : snap.services[s].routeSet.routes) {
            discovery::Template tpl;
            discovery::compileTemplate(r.path, tpl);
            std::string key = discovery::templateShape(tpl);
            auto it = byShape.find(key);
            if (it == byShape.end()) {
                it = byShape.emplace(key, shapes.size()).first;
                Shape shape;
                shape.tpl = tpl; // views into r.path, which stays put
                for (const discovery::Segment &seg : tpl.segments) {
                    shape.ranks.push_back(rank(seg.kind));
                }
                shapes.push_back(std::move(shape));
            }
            shapes[it->second].entries.push_back(
                {r.methods, s, r.path, r.authRequired});
        }
    }
    for (Shape &shape : shapes) {
        uint32_t claimed = 0;
        std::vector<RefEntry> kept;
        for (RefEntry e : shape.entries) {
            uint32_t all = e.methods;
            e.methods &= ~claimed;
            claimed |= all;
            if (e.methods != 0) {
                kept.push_back(e);
            }
        }
        shape.entries = std::move(kept);
    }

    discovery::Bytes blob = discovery::encodeSnapshot(snap);
    discovery_error_t err;
    discovery_router_t *router = discovery_router_create(blob.data(),
                                                         blob.size(), &err);
    fuzz::check(router != nullptr, "router_create failed", err.text);

    while (in.remaining_bytes() > 0) {
        std::string method = pick(in, kMethods);
        bool websocket = in.ConsumeBool();
        std::string path;
        if (in.ConsumeIntegralInRange<int>(0, 7) == 0) {
            path = in.ConsumeRandomLengthString(32);
        } else {
            size_t nsegs = in.ConsumeIntegralInRange<size_t>(0, 5);
            for (size_t i = 0; i < nsegs; i++) {
                path += '/' + pick(in, kPathSegments);
            }
        }

        discovery_match_t m;
        int status = discovery_router_match(router, method.data(),
                                            method.size(), path.data(),
                                            path.size(), websocket, &m);
        Expected x = reference(snap, shapes, method, path, websocket);

        std::string got = std::to_string(status) + " "
                          + view(m.service, m.service_len) + " "
                          + view(m.upstream, m.upstream_len) + " ["
                          + view(m.route, m.route_len) + "] ["
                          + view(m.allow, m.allow_len) + "] "
                          + std::to_string(m.auth_required);
        std::string want = std::to_string(x.status) + " " + x.service + " "
                           + x.upstream + " [" + x.route + "] [" + x.allow
                           + "] " + std::to_string(x.auth ? 1 : 0);
        if (got != want || status != m.status) {
            fuzz::fail("router and reference disagree",
                       method + " " + path + ": got " + got + ", want "
                           + want);
        }
    }

    discovery_router_destroy(router);
    return 0;
}
