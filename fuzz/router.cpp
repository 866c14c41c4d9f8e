// router.cpp: fuzzes the trie router against a brute-force reference.
//
// A small table (1-3 services, a few routes each, templates built from a
// pool of literal and parameter segments or raw fuzz bytes) goes through
// the snapshot encoder and discovery_router_image, whose image is read
// from a copy of it with discovery_router_open; fuzz-derived methods
// and paths are then matched, and each answer compared with the reference:
// every route whose template matches, grouped by shape, shapes taken in
// precedence order (literal, int, float, uuid, str, path, from the left;
// of two {x:path} at one place, the one with more segments after it
// first), entries in roster order with earlier services keeping their
// methods (compared by name, extension methods such as PROPFIND included).
// Templates hold a {x:path} anywhere, matched as Starlette does.
// A path nothing has goes where it would with its trailing slash toggled.
// Routes the table check rejects take no part.  Two more properties hold
// for every lookup: it visits at most twice kLookupVisitLimit trie nodes
// (one walk each for the path and the toggled path; some
// inputs add a service publishing every mix of literal and typed segments
// over several levels, some of them below a {x:path} with every number of
// levels after it, which would take thousands without the bound), and
// each route of another service that matched the path with the method but
// lost to the answer is listed as shadowed by it (and, under
// discovery_overlap deny, never belongs to an earlier service).
#include "discovery_core.h"
#include "fuzz_common.hpp"
#include "methods.hpp"
#include "route_template.hpp"
#include "router.hpp"
#include "snapshot.hpp"
#include "table_check.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace {

using discovery::SegmentKind;

const char *const kTemplateSegments[] = {
    "users", "files", "a", "b", "", "42", "{id}", "{id:int}", "{x:float}",
    "{u:uuid}", "{s:str}", "{p:path}", "{name}",
};

const char *const kPathSegments[] = {
    "users", "files", "a", "b", "", "42", "4.2", "-1", "x", "{id}", "1",
    "123e4567-e89b-12d3-a456-426614174000", "0",
};

const char *const kMethods[] = {
    "GET",     "HEAD",  "POST",     "PUT",      "DELETE", "PATCH",
    "OPTIONS", "TRACE", "CONNECT",  "get",      "",       "PROPFIND",
    "MKCOL",   "PURGE", "propfind", "X-1.a!",
};

// Extension methods routes publish, by bit of a fuzzed byte.
const char *const kExtensionMethods[] = {"MKCOL", "PROPFIND", "PURGE",
                                         "X-1.A!"};

using Names = std::set<std::string>;

// The names of a route's methods.
Names methodNames(const discovery::Route &r)
{
    Names out(r.extensionMethods.begin(), r.extensionMethods.end());
    for (size_t i = 0; i < discovery::kMethodCount; i++) {
        if (r.methods & (1u << i)) {
            out.insert(std::string(discovery::methodName(i)));
        }
    }
    return out;
}

bool intersects(const Names &a, const Names &b)
{
    return std::any_of(a.begin(), a.end(),
                       [&](const std::string &m) { return b.count(m); });
}

template <size_t N>
std::string pick(FuzzedDataProvider &in, const char *const (&pool)[N])
{
    size_t i = in.ConsumeIntegralInRange<size_t>(0, N);
    return i < N ? std::string(pool[i]) : in.ConsumeRandomLengthString(12);
}

// Segment i's place in the precedence order: a {x:path} after all the
// others, and the more segments follow it the earlier.
int rank(const discovery::Template &tpl, size_t i)
{
    switch (tpl.segments[i].kind) {
    case SegmentKind::Literal: return 0;
    case SegmentKind::Int: return 1;
    case SegmentKind::Float: return 2;
    case SegmentKind::Uuid: return 3;
    case SegmentKind::Str: return 4;
    case SegmentKind::Path:
        return 5 + 32 - static_cast<int>(tpl.segments.size() - i - 1);
    }
    return 100;
}

struct RefEntry {
    Names methods;
    uint32_t service;
    uint32_t index; // in the service's routes
    std::string route;
    bool auth;
};

// Segments of the lattice service: any mix of them at every level.
const char *const kLatticeSegments[] = {
    "1", "x", "{i:int}", "{f:float}", "{u:uuid}", "{s:str}",
};

// Every template of `depth` segments drawn from `pool`.
void lattice(const std::vector<std::string> &pool, size_t depth,
             std::string prefix, std::vector<std::string> &out)
{
    if (depth == 0) {
        out.push_back(prefix);
        return;
    }
    for (const std::string &seg : pool) {
        lattice(pool, depth - 1, prefix + "/" + seg, out);
    }
}

struct Shape {
    discovery::Template tpl; // of the first route of this shape
    std::vector<int> ranks;
    std::vector<RefEntry> entries;
};

struct Expected {
    int status;
    std::string service, upstream, route, allow;
    bool auth = false;
    const RefEntry *winner = nullptr; // the entry that took the method
    std::vector<const RefEntry *> losers; // later ones that had it too
};

// The shapes with entries whose template matches `path`, in rank order.
std::vector<const Shape *> matchingShapes(const std::vector<Shape> &shapes,
                                          const std::string &path)
{
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
    return matching;
}

// An Allow header: the nine in their order, then the extension methods
// in the order routes the table kept first named them.
std::string allowHeader(const Names &allow, const std::vector<std::string> &order)
{
    std::string out;
    auto add = [&](const std::string &m) {
        if (allow.count(m)) {
            out += (out.empty() ? "" : ", ") + m;
        }
    };
    for (size_t i = 0; i < discovery::kMethodCount; i++) {
        add(std::string(discovery::methodName(i)));
    }
    for (const std::string &m : order) {
        add(m);
    }
    return out;
}

Expected reference(const discovery::Snapshot &snap,
                   const std::vector<Shape> &shapes,
                   const std::vector<std::string> &extensionOrder,
                   const std::string &method, const std::string &path,
                   bool websocket, bool toggled = false)
{
    Names want = {websocket ? std::string("GET") : method};
    if (method == "HEAD" && !websocket) {
        want.insert("GET");
    }

    Expected x;
    x.status = DISCOVERY_MATCH_NOT_FOUND;
    if (path.empty() || path[0] != '/') {
        return x; // not a request path: 404, whatever is pending
    }

    std::vector<const Shape *> matching = matchingShapes(shapes, path);

    auto answer = [&](const RefEntry &e) {
        const discovery::Service &svc = snap.services[e.service];
        Expected found;
        found.status = svc.state == discovery::ServiceState::Unhealthy
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
            if (intersects(e.methods, want)) {
                Expected found = answer(e);
                found.winner = &e;
                for (const Shape *later : matching) {
                    if (later->ranks == s->ranks) {
                        continue; // same shape: a conflict, not an overlap
                    }
                    for (const RefEntry &l : later->entries) {
                        if (intersects(l.methods, want)
                            && l.service != e.service) {
                            found.losers.push_back(&l);
                        }
                    }
                }
                return found;
            }
        }
    }

    if (!matching.empty()) {
        const Shape &first = *matching[0];
        if (!websocket && method == "OPTIONS") {
            return answer(first.entries[0]);
        }
        Names allow = {"OPTIONS"};
        for (const RefEntry &e : first.entries) {
            allow.insert(e.methods.begin(), e.methods.end());
        }
        if (allow.count("GET")) {
            allow.insert("HEAD");
        }
        const discovery::Service &owner =
            snap.services[first.entries[0].service];
        x.status = DISCOVERY_MATCH_NOT_ALLOWED;
        x.service = owner.name;
        x.upstream = owner.upstream;
        x.allow = allowHeader(allow, extensionOrder);
        return x;
    }

    // a path nothing has goes to the route that has it with its trailing
    // slash toggled: the one taking the method, or the first
    if (!toggled && path.size() > 1) {
        std::string other = path.back() == '/'
                                ? path.substr(0, path.size() - 1)
                                : path + "/";
        Expected alt = reference(snap, shapes, extensionOrder, method, other,
                                 websocket, true);
        if (alt.status == DISCOVERY_MATCH_NOT_ALLOWED) {
            alt = answer(matchingShapes(shapes, other)[0]->entries[0]);
        }
        if (alt.status != DISCOVERY_MATCH_NOT_FOUND
            && alt.status != DISCOVERY_MATCH_PENDING) {
            alt.losers.clear();
            return alt;
        }
    }

    for (const discovery::Service &svc : snap.services) {
        if (svc.state == discovery::ServiceState::Pending) {
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
    snap.denyOverlaps = in.ConsumeBool();

    // now and then a service whose routes would make lookups costly
    if (in.ConsumeIntegralInRange<int>(0, 7) == 0) {
        std::vector<std::string> pool;
        for (const char *seg : kLatticeSegments) {
            if (in.ConsumeBool()) {
                pool.push_back(seg);
            }
        }
        size_t depth = in.ConsumeIntegralInRange<size_t>(2, 6);
        // below a {x:path}: every depth up to `depth`, a walk each
        bool belowPath = in.ConsumeBool();
        std::vector<std::string> paths;
        while (!pool.empty() && std::pow(pool.size(), depth) > 1024) {
            depth--;
        }
        for (size_t d = belowPath ? 1 : depth; !pool.empty() && d <= depth;
             d++) {
            lattice(pool, d, belowPath ? "/{p:path}" : "", paths);
        }

        discovery::Service svc;
        svc.name = "lattice";
        svc.url = "http://lattice/routes";
        svc.upstream = "lattice_up";
        svc.state = discovery::ServiceState::Healthy;
        for (const std::string &path : paths) {
            discovery::Route route;
            route.path = path;
            route.methods = discovery::kPost;
            svc.routeSet.routes.push_back(route);
        }
        snap.services.push_back(std::move(svc));
    }

    size_t nservices = in.ConsumeIntegralInRange<size_t>(1, 3);
    for (size_t s = 0; s < nservices; s++) {
        discovery::Service svc;
        svc.name = "s" + std::to_string(s);
        svc.url = "http://" + svc.name + "/routes";
        svc.upstream = svc.name + "_up";
        svc.state = static_cast<discovery::ServiceState>(
            in.ConsumeIntegralInRange<uint32_t>(0, 2));

        size_t nroutes = in.ConsumeIntegralInRange<size_t>(0, 6);
        for (size_t r = 0; r < nroutes; r++) {
            discovery::Route route;
            size_t nsegs = in.ConsumeIntegralInRange<size_t>(1, 4);
            for (size_t i = 0; i < nsegs; i++) {
                route.path += '/' + pick(in, kTemplateSegments);
            }
            route.methods = in.ConsumeIntegral<uint16_t>()
                            & discovery::kAllMethods;
            uint8_t more = in.ConsumeIntegralInRange<uint8_t>(0, 15);
            for (size_t i = 0; i < 4; i++) {
                if (more & (1u << i)) {
                    route.extensionMethods.push_back(kExtensionMethods[i]);
                }
            }
            if (route.methods == 0 && route.extensionMethods.empty()) {
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
    discovery::checkTable(snap);

    // the reference's table: shapes, entries in roster order, resolved
    std::vector<std::string> extensionOrder;
    auto rejected = snap.rejections.begin();
    for (uint32_t s = 0; s < snap.services.size(); s++) {
        const auto &routes = snap.services[s].routeSet.routes;
        for (uint32_t index = 0; index < routes.size(); index++) {
            const discovery::Route &r = routes[index];
            if (rejected != snap.rejections.end() && rejected->service == s
                && rejected->route == index) {
                ++rejected;
                continue;
            }
            discovery::Template tpl;
            discovery::compileTemplate(r.path, tpl);
            std::string key = discovery::templateShape(tpl);
            auto it = byShape.find(key);
            if (it == byShape.end()) {
                it = byShape.emplace(key, shapes.size()).first;
                Shape shape;
                shape.tpl = tpl; // views into r.path, which stays put
                for (size_t i = 0; i < tpl.segments.size(); i++) {
                    shape.ranks.push_back(rank(tpl, i));
                }
                shapes.push_back(std::move(shape));
            }
            shapes[it->second].entries.push_back(
                {methodNames(r), s, index, r.path, r.authRequired});
            for (const std::string &m : r.extensionMethods) {
                if (std::find(extensionOrder.begin(), extensionOrder.end(), m)
                    == extensionOrder.end()) {
                    extensionOrder.push_back(m);
                }
            }
        }
    }
    for (Shape &shape : shapes) {
        std::vector<RefEntry> kept;
        Names claimed;
        for (RefEntry e : shape.entries) {
            Names left;
            for (const std::string &m : e.methods) {
                if (!claimed.insert(m).second) {
                    continue;
                }
                left.insert(m);
            }
            e.methods = std::move(left);
            if (!e.methods.empty()) {
                kept.push_back(e);
            }
        }
        shape.entries = std::move(kept);
    }

    // as a worker reads a table: its router image, copied elsewhere (the
    // zone), the one built freed, and a view of the copy
    discovery::Bytes blob = discovery::encodeSnapshot(snap);
    discovery_error_t err;
    discovery_buf_t built = {nullptr, 0};
    fuzz::check(discovery_router_image(blob.data(), blob.size(), &built, &err)
                    == DISCOVERY_OK,
                "router_image failed", err.text);
    auto *image = static_cast<unsigned char *>(
        std::aligned_alloc(DISCOVERY_ROUTER_IMAGE_ALIGN, built.len));
    fuzz::check(image != nullptr, "out of memory", "");
    std::memcpy(image, built.data, built.len);
    size_t imageLen = built.len;
    discovery_buf_free(&built);
    discovery_router_t *router = discovery_router_open(image, imageLen, &err);
    fuzz::check(router != nullptr, "router_open failed", err.text);
    auto counting = discovery::Router::build(blob.data(), blob.size());

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
        Expected x =
            reference(snap, shapes, extensionOrder, method, path, websocket);

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

        uint32_t visits = 0;
        counting->match(method, path, websocket, &visits);
        // two walks at most: the path, then, if nothing has it, the path
        // with its trailing slash toggled
        fuzz::check(visits <= 2 * discovery::kLookupVisitLimit,
                    "a lookup visited more nodes than the bound",
                    path + ": " + std::to_string(visits));

        for (const RefEntry *lost : x.losers) {
            const RefEntry &win = *x.winner;
            bool listed = std::any_of(
                snap.overlaps.begin(), snap.overlaps.end(),
                [&](const discovery::Overlap &o) {
                    return o.service == win.service && o.route == win.index
                           && o.shadowedService == lost->service
                           && o.shadowedRoute == lost->index;
                });
            fuzz::check(listed, "a shadowed route is not listed",
                        method + " " + path + ": " + win.route + " of s"
                            + std::to_string(win.service) + " over "
                            + lost->route);
            fuzz::check(!snap.denyOverlaps || win.service < lost->service,
                        "discovery_overlap deny let a later service shadow",
                        method + " " + path);
        }
    }

    discovery_router_destroy(router);
    std::free(image);
    return 0;
}
