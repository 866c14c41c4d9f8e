// router_bench.cpp: Google Benchmark of the C++ core, through the C API the
// nginx glue uses (discovery_core.h), polls applied with the core's
// applyPoll (what discovery_snapshot_apply_polls runs), on the same route
// sets as run.sh's HTTP benchmark (bench/gen.py's scheme, rebuilt here so
// the binary needs no data files).
//
//   Lookup/N          discovery_router_match over N routes, one realistic
//                     path per route, shuffled, walked round-robin
//   RouterBuild/N     discovery_router_create from the snapshot (what a
//                     worker does when the table's generation changes)
//   Parse/N           a route document of N routes through the parser
//   Decode/N/M        decodeSnapshot of the N-route table, M=0 as a file's
//                     bytes, M=1 as the zone's (Provenance::Made: what a
//                     publication does first)
//   ApplyUnchanged/N  applyPoll of a small service whose routes did not
//                     change, while the table holds N routes of another:
//                     the per-poll cost under discovery churn
//   SnapshotBytes/... zone bytes per route: the snapshot's (bytes_per_route),
//                     its router image's, both (zone_bytes_per_route)
//   LookupPatched/N   Lookup in an image patched 20 times, 1% of the
//                     routes removed and 1% added each time
//   TableChange/N     one service's document of 25,000 routes, of N/25,000
//                     services (gen.py table N), gains a route: each stage
//                     of its publication in the thread's CPU time (ms per
//                     change, counters), the stages as the publisher runs
//                     them (ngx_http_discovery_publish.c): parse, copy the
//                     zone's table out, apply (decode, the route set,
//                     check, encode), the router image (lay out, write it
//                     into a block of the zone, touched before), copy the
//                     table into the zone; apply_total is applyPolls
//                     itself, timed apart, which the parts should add up
//                     to; check_whole the whole table's check (checkTable)
//                     where check is the changed service's; image_update
//                     and image_update_write the same image made from the
//                     previous one (Router::update), total_incremental the
//                     publication with them in place of image_layout and
//                     image_write
//   MetricsAssign/N   the same change with `discovery_metrics` on: the
//                     route slots assigned for the new table (tableRoutes,
//                     then assignRoutes into a zone-like buffer holding
//                     the previous table's slots), in thread CPU time
//
// Every lookup path is checked to be FOUND before timing starts.

#include "discovery_core.h"
#include "controls.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "router.hpp"
#include "snapshot_update.hpp"
#include "table_check.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace {

const char kUrl[] = "http://127.0.0.1:1";

[[noreturn]] void die(const char *what, const discovery_error_t &err)
{
    std::fprintf(stderr, "router_bench: %s: %s\n", what, err.text);
    std::exit(1);
}

// One poll of service `name` at kUrl, healthy, with `routes`: the new
// snapshot, or none (empty) when routing would not change; exits on an
// error.
std::vector<unsigned char> apply(const std::vector<unsigned char> &old,
                                 const char *name,
                                 const std::vector<unsigned char> &routes,
                                 uint64_t generation)
{
    try {
        std::optional<std::vector<unsigned char>> next =
            discovery::applyPoll(old.data(), old.size(),
                                 {name, kUrl, discovery::ServiceState::Healthy,
                                  routes.data(), routes.size()},
                                 generation, discovery::Log());
        return next ? std::move(*next) : std::vector<unsigned char>();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "router_bench: apply %s: %s\n", name, e.what());
        std::exit(1);
    }
}

// Route I of gen.py's scheme: template and one request path for it.
void route(size_t i, std::string &tpl, std::string &path)
{
    std::string k = "/svc" + std::to_string(i / 50);
    std::string n = std::to_string(i);
    size_t kind = i % 10;

    if (kind < 5) {
        tpl = path = k + "/resource" + n;
    } else if (kind < 8) {
        char id[16];
        std::snprintf(id, sizeof(id), "a%05zx", (i * 7919) % 0xfffff);
        tpl = k + "/items" + n + "/{item_id}";
        path = k + "/items" + n + "/" + id;
    } else {
        tpl = k + "/users" + n + "/{user_id:int}/posts";
        path = k + "/users" + n + "/"
               + std::to_string((i * 104729) % 1000000) + "/posts";
    }
}

// typical: what the FastAPI helper publishes (name, description, tags,
// auth); else the bare {path, methods} of the HTTP benchmark.
std::string document(size_t n, bool typical)
{
    std::string doc = "{\"status\":\"healthy\",\"service\":\"api\","
                      "\"version\":\"1.0\",\"routes\":[";
    std::string tpl, path;

    for (size_t i = 0; i < n; i++) {
        route(i, tpl, path);
        if (i) {
            doc += ',';
        }
        doc += "{\"path\":\"" + tpl + "\",\"methods\":[\"GET\"]";
        if (typical) {
            doc += ",\"name\":\"get_resource_" + std::to_string(i)
                   + "\",\"description\":\"Returns the resource.\","
                     "\"tags\":[\"svc" + std::to_string(i / 50)
                   + "\"],\"auth_required\":" + (i % 2 ? "true" : "false");
        }
        doc += '}';
    }

    return doc + "]}";
}

std::vector<unsigned char> parse(const std::string &doc)
{
    discovery_error_t err;
    discovery_buf_t routes{};
    discovery_parser_t *p = discovery_parser_create(DISCOVERY_FORMAT_ROUTES,
                                                    nullptr);

    if (p == nullptr) {
        std::fprintf(stderr, "router_bench: out of memory\n");
        std::exit(1);
    }
    if (discovery_parser_feed(p, doc.data(), doc.size(), &err) != DISCOVERY_OK
        || discovery_parser_finish(p, &routes, &err) != DISCOVERY_OK) {
        die("parse", err);
    }
    discovery_parser_destroy(p);

    std::vector<unsigned char> v(routes.data, routes.data + routes.len);
    discovery_buf_free(&routes);
    return v;
}

// The request paths sit in one contiguous buffer, walked in order, as a
// request's URI sits in nginx's (hot) header buffer: the harness should
// not add a cache miss per lookup of its own.
struct Path {
    const char *data;
    size_t len;
};

struct Table {
    std::vector<unsigned char> snapshot;
    std::string pathBytes;
    std::vector<Path> paths;
    size_t routes = 0;
};

// The snapshot the zone would hold: service "api" (healthy, N routes) and,
// with `small`, a second service "small" of 10 routes, polled in
// ApplyUnchanged.
Table table(size_t n, bool typical, bool small = false)
{
    discovery_error_t err;
    discovery_buf_t roster{};
    discovery_service_conf_t conf[2] = {
        {"api", 3, kUrl, sizeof(kUrl) - 1, "api", 3},
        {"small", 5, kUrl, sizeof(kUrl) - 1, "small", 5},
    };

    if (discovery_snapshot_roster(nullptr, 0, conf, small ? 2 : 1, 0, 1, &roster,
                                  nullptr, nullptr, &err) != DISCOVERY_OK) {
        die("roster", err);
    }

    std::vector<unsigned char> pending(roster.data, roster.data + roster.len);
    discovery_buf_free(&roster);

    Table t;
    t.snapshot = apply(pending, "api", parse(document(n, typical)), 2);
    t.routes = n;
    if (t.snapshot.empty()) {
        std::fprintf(stderr, "router_bench: apply api changed nothing\n");
        std::exit(1);
    }

    std::string tpl, path;
    std::vector<std::string> shuffled;
    for (size_t i = 0; i < n; i++) {
        route(i, tpl, path);
        shuffled.push_back(path);
    }
    std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(42));

    std::vector<size_t> offsets;
    for (const std::string &p : shuffled) {
        offsets.push_back(t.pathBytes.size());
        t.pathBytes += p;
    }
    for (size_t i = 0; i < n; i++) {
        t.paths.push_back({t.pathBytes.data() + offsets[i],
                           shuffled[i].size()});
    }
    return t;
}

// Tables are built once per size and shared by the benchmarks.
const Table &cached(size_t n)
{
    static std::map<size_t, Table> tables;
    auto it = tables.find(n);
    if (it == tables.end()) {
        it = tables.emplace(n, table(n, false)).first;
    }
    return it->second;
}

struct RouterDeleter {
    void operator()(discovery_router_t *r) const { discovery_router_destroy(r); }
};
using RouterPtr = std::unique_ptr<discovery_router_t, RouterDeleter>;

RouterPtr router(const Table &t)
{
    discovery_error_t err;
    RouterPtr r(discovery_router_create(t.snapshot.data(), t.snapshot.size(),
                                        &err));
    if (!r) {
        die("router", err);
    }
    return r;
}

void Lookup(benchmark::State &state)
{
    const Table &t = cached(static_cast<size_t>(state.range(0)));
    RouterPtr r = router(t);
    discovery_match_t m;

    for (const Path &p : t.paths) {
        if (discovery_router_match(r.get(), "GET", 3, p.data, p.len, 0, &m)
            != DISCOVERY_MATCH_FOUND) {
            std::fprintf(stderr, "router_bench: %.*s not found\n",
                         static_cast<int>(p.len), p.data);
            std::exit(1);
        }
    }

    size_t i = 0, n = t.paths.size();
    for (auto _ : state) {
        const Path &p = t.paths[i];
        benchmark::DoNotOptimize(discovery_router_match(
            r.get(), "GET", 3, p.data, p.len, 0, &m));
        benchmark::DoNotOptimize(m);
        if (++i == n) {
            i = 0;
        }
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

/*
 * Lookup in an image patched 20 times (Router::update): each time the
 * document of "api" loses a window of 1% of its routes, the previous
 * window back, and gains 1% new ones, so that the table of nodes has
 * tombstones and is fuller than a fresh image's.  The same paths as
 * Lookup, those the last table has.
 */
struct Patched {
    std::shared_ptr<unsigned char> image;
    size_t len = 0;
    double whole = 0; // changes the image was built whole for
};

// room for an image of `size` bytes, at the alignment images need
std::shared_ptr<unsigned char> aligned(size_t size)
{
    return std::shared_ptr<unsigned char>(
        static_cast<unsigned char *>(
            std::aligned_alloc(discovery::Router::kImageAlign, size)),
        [](unsigned char *p) { std::free(p); });
}

Patched patchedImage(const Table &t)
{
    size_t n = t.routes, w = std::max<size_t>(1, n / 100);
    std::vector<unsigned char> table = t.snapshot;
    discovery::Router::Image first = discovery::Router::image(
        discovery::decodeSnapshot(table.data(), table.size()));
    size_t len = first.size();
    std::shared_ptr<unsigned char> image = aligned(len);
    first.write(image.get());
    double whole = 0;

    for (size_t round = 0; round < 20; round++) {
        std::string doc = "{\"routes\":[";
        std::string tpl, path;
        size_t from = round * w % n;
        bool any = false;
        auto add = [&](size_t i) {
            route(i, tpl, path);
            doc += any ? "," : "";
            doc += "{\"path\":\"" + tpl + "\",\"methods\":[\"GET\"]}";
            any = true;
        };
        for (size_t i = 0; i < n; i++) {
            if (i < from || i >= from + w) {
                add(i);
            }
        }
        for (size_t i = 0; i < w; i++) {
            add(n + round * w + i);
        }
        std::vector<unsigned char> routes = parse(doc + "]}");
        discovery::Snapshot sealed;
        discovery::Router::TableBefore before;
        auto next = discovery::applyPolls(
            table.data(), table.size(),
            {{"api", kUrl, discovery::ServiceState::Healthy, routes.data(),
              routes.size()}},
            3 + round, discovery::Log(), &sealed, nullptr, &before);
        discovery::Router::UpdateInfo info;
        discovery::Router::Image patched =
            discovery::Router::update(image.get(), len, before, sealed, &info);
        whole += info.incremental ? 0 : 1;
        std::shared_ptr<unsigned char> written = aligned(patched.size());
        patched.write(written.get());
        image = std::move(written);
        len = patched.size();
        table = std::move(*next);
    }
    return {image, len, whole};
}

// Patched once per size: Google Benchmark runs the function several times.
void LookupPatched(benchmark::State &state)
{
    const Table &t = cached(static_cast<size_t>(state.range(0)));
    static std::map<size_t, Patched> images;
    auto it = images.find(t.routes);
    if (it == images.end()) {
        it = images.emplace(t.routes, patchedImage(t)).first;
    }
    const Patched &patched = it->second;

    discovery_error_t err;
    RouterPtr r(discovery_router_open(patched.image.get(), patched.len, &err));
    if (!r) {
        die("router", err);
    }
    discovery_match_t m;
    std::vector<Path> paths;
    for (const Path &p : t.paths) {
        if (discovery_router_match(r.get(), "GET", 3, p.data, p.len, 0, &m)
            == DISCOVERY_MATCH_FOUND) {
            paths.push_back(p);
        }
    }

    size_t i = 0, count = paths.size();
    for (auto _ : state) {
        const Path &p = paths[i];
        benchmark::DoNotOptimize(discovery_router_match(
            r.get(), "GET", 3, p.data, p.len, 0, &m));
        benchmark::DoNotOptimize(m);
        if (++i == count) {
            i = 0;
        }
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
    state.counters["built_whole"] = patched.whole;
    state.counters["paths"] = static_cast<double>(count);
}

void RouterBuild(benchmark::State &state)
{
    const Table &t = cached(static_cast<size_t>(state.range(0)));

    for (auto _ : state) {
        RouterPtr r = router(t);
        benchmark::DoNotOptimize(r.get());
    }
}

void Parse(benchmark::State &state)
{
    std::string doc = document(static_cast<size_t>(state.range(0)), false);

    for (auto _ : state) {
        benchmark::DoNotOptimize(parse(doc));
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()
                                                 * doc.size()));
}

void Decode(benchmark::State &state)
{
    const Table &t = cached(static_cast<size_t>(state.range(0)));
    auto from = state.range(1) ? discovery::Provenance::Made
                               : discovery::Provenance::File;

    for (auto _ : state) {
        benchmark::DoNotOptimize(discovery::decodeSnapshot(
            t.snapshot.data(), t.snapshot.size(), from));
    }
}

void ApplyUnchanged(benchmark::State &state)
{
    Table t = table(static_cast<size_t>(state.range(0)), false, true);
    std::vector<unsigned char> small = parse(document(10, false));

    // make "small" healthy with its routes once; then every poll is unchanged
    std::vector<unsigned char> snap = apply(t.snapshot, "small", small, 3);
    if (snap.empty()) {
        std::fprintf(stderr, "router_bench: apply small changed nothing\n");
        std::exit(1);
    }

    for (auto _ : state) {
        if (!apply(snap, "small", small, 4).empty()) {
            std::fprintf(stderr, "router_bench: apply changed the table\n");
            std::exit(1);
        }
    }
}

// range(1): 1 typical (FastAPI helper) routes, 0 bare {path, methods}
void SnapshotBytes(benchmark::State &state)
{
    auto n = static_cast<size_t>(state.range(0));
    Table t = table(n, state.range(1) != 0);

    for (auto _ : state) {
        benchmark::DoNotOptimize(t.snapshot.data());
    }
    discovery_buf_t image = {nullptr, 0};
    discovery_error_t err;
    if (discovery_router_image(t.snapshot.data(), t.snapshot.size(), &image,
                               &err)
        != DISCOVERY_OK) {
        die("router image", err);
    }
    auto routes = static_cast<double>(n);
    state.counters["snapshot_bytes"] = static_cast<double>(t.snapshot.size());
    state.counters["bytes_per_route"] =
        static_cast<double>(t.snapshot.size()) / routes;
    state.counters["image_bytes_per_route"] =
        static_cast<double>(image.len) / routes;
    state.counters["zone_bytes_per_route"] =
        static_cast<double>(t.snapshot.size() + image.len) / routes;
    discovery_buf_free(&image);
}

// The thread's CPU time in ms: the host is shared, wall clock lies.
double threadMs()
{
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3
           + static_cast<double>(ts.tv_nsec) / 1e6;
}

constexpr size_t kServiceRoutes = 25000;

// gen.py table N K's document of service s: routes s*N/K to (s+1)*N/K,
// and `extra` more (the churn's added routes) of indices past N.
std::string tableDocument(size_t n, size_t k, size_t s, size_t extra)
{
    std::string doc = "{\"status\":\"healthy\",\"service\":\"t"
                      + std::to_string(s)
                      + "\",\"version\":\"1\","
                        "\"routes\":[";
    std::string tpl, path;
    bool first = true;

    auto add = [&](size_t i) {
        route(i, tpl, path);
        doc += first ? "" : ",";
        doc += "{\"path\":\"" + tpl + "\",\"methods\":[\"GET\"]}";
        first = false;
    };
    for (size_t i = s * n / k; i < (s + 1) * n / k; i++) {
        add(i);
    }
    for (size_t j = 0; j < extra; j++) {
        add(n + j);
    }
    return doc + "]}";
}

// the zone's table of n routes in n / kServiceRoutes services, t0, t1, ...,
// every one healthy with its routes: one publication; names are the services'
std::vector<unsigned char> healthyTable(size_t n, std::vector<std::string> &names)
{
    size_t k = n / kServiceRoutes;
    std::vector<discovery_service_conf_t> conf;

    for (size_t s = 0; s < k; s++) {
        names.push_back("t" + std::to_string(s));
    }
    for (size_t s = 0; s < k; s++) {
        conf.push_back({names[s].data(), names[s].size(), kUrl,
                        sizeof(kUrl) - 1, names[s].data(), names[s].size()});
    }

    discovery_error_t err;
    discovery_buf_t roster{};
    if (discovery_snapshot_roster(nullptr, 0, conf.data(), k, 0, 1, &roster,
                                  nullptr, nullptr, &err)
        != DISCOVERY_OK) {
        die("roster", err);
    }

    std::vector<std::vector<unsigned char>> docs;
    std::vector<discovery::PollResult> polls;
    for (size_t s = 0; s < k; s++) {
        docs.push_back(parse(tableDocument(n, k, s, 0)));
    }
    for (size_t s = 0; s < k; s++) {
        polls.push_back({names[s], kUrl, discovery::ServiceState::Healthy,
                         docs[s].data(), docs[s].size()});
    }
    std::vector<unsigned char> zone = *discovery::applyPolls(
        roster.data, roster.len, polls, 2, discovery::Log());
    discovery_buf_free(&roster);
    return zone;
}

void TableChange(benchmark::State &state)
{
    auto n = static_cast<size_t>(state.range(0));
    std::vector<std::string> names;
    std::vector<unsigned char> zone = healthyTable(n, names);

    std::map<std::string, double> ms;
    std::vector<unsigned char> base(zone.size() + (1 << 20));

    // the zone's image, which the incremental stage starts from
    discovery::Router::Image first = discovery::Router::image(
        discovery::decodeSnapshot(zone.data(), zone.size()));
    /*
     * Blocks of the zone, touched before: the publisher copies the table
     * into one and writes the new image into another while the old image
     * stays in a third (and the whole build's, to compare, in a fourth).
     */
    size_t room = first.size() + (8 << 20);
    std::shared_ptr<unsigned char> zoneImage0 = aligned(room);
    std::shared_ptr<unsigned char> zoneImage1 = aligned(room);
    std::shared_ptr<unsigned char> wholeImage = aligned(room);
    std::vector<unsigned char> zoneTable(zone.size() + (1 << 20));
    std::memset(zoneImage1.get(), 0, room);
    std::memset(wholeImage.get(), 0, room);
    size_t zoneImage0Len = first.size();
    first.write(zoneImage0.get());
    first = discovery::Router::Image();
    size_t extra = 0;
    uint64_t generation = 3;

    for (auto _ : state) {
        std::string doc = tableDocument(n, n / kServiceRoutes, 0, ++extra);
        double t0 = threadMs();
        std::vector<unsigned char> routes = parse(doc);
        double t1 = threadMs();
        std::memcpy(base.data(), zone.data(), zone.size());
        double t2 = threadMs();

        discovery::Snapshot snap = discovery::decodeSnapshot(
            zone.data(), zone.size(), discovery::Provenance::Made);
        double t3 = threadMs();
        discovery::Router::TableBefore was;
        was.generation = snap.generation;
        was.rejections = snap.rejections;
        was.extensionMethods = snap.extensionMethods;
        was.controls = snap.controls;
        double t3b = threadMs();
        discovery::RouteSet before = std::move(snap.services[0].routeSet);
        snap.services[0].routeSet = discovery::decodeRouteSet(
            routes.data(), routes.size(), discovery::Provenance::Made);
        double t4 = threadMs();
        if (!discovery::checkTableChanged(snap, {{0, &before}})) {
            std::fprintf(stderr, "router_bench: the whole table checked\n");
            std::exit(1);
        }
        double t5 = threadMs();
        snap.generation = generation;
        discovery::Bytes table = discovery::encodeSnapshot(snap);
        double t6 = threadMs();
        discovery::Router::Image image = discovery::Router::image(snap);
        double t7 = threadMs();
        if (image.size() > room || table.size() > zoneTable.size()) {
            std::fprintf(stderr, "router_bench: the zone's blocks are small\n");
            std::exit(1);
        }
        image.write(wholeImage.get());
        double t8 = threadMs();
        double t9 = threadMs();
        std::memcpy(zoneTable.data(), table.data(), table.size());
        double t10 = threadMs();

        // the same image made from the zone's
        was.routeSets.emplace_back(0, std::move(before));
        discovery::Router::UpdateInfo info;
        double t14 = threadMs();
        discovery::Router::Image patched = discovery::Router::update(
            zoneImage0.get(), zoneImage0Len, was, snap, &info);
        double t15 = threadMs();
        std::shared_ptr<unsigned char> next = zoneImage1;
        patched.write(next.get());
        double t16 = threadMs();
        if (!info.incremental) {
            std::fprintf(stderr,
                         "router_bench: the image was built whole: %s\n",
                         info.fallback);
            std::exit(1);
        }
        {
            // it answers as the whole build's, for a sample of routes
            auto a = discovery::Router::view(next.get(), patched.size());
            auto b = discovery::Router::view(wholeImage.get(), image.size());
            std::string tpl, path;
            for (size_t i = 0; i < n; i += n / 1000) {
                route(i, tpl, path);
                discovery::Match x = a->match("GET", path, false);
                discovery::Match y = b->match("GET", path, false);
                if (x.status != y.status || x.route != y.route
                    || x.service != y.service) {
                    std::fprintf(stderr,
                                 "router_bench: the patched image "
                                 "answers %s otherwise\n",
                                 path.c_str());
                    std::exit(1);
                }
            }
        }
        if (patched.size() > room) {
            std::fprintf(stderr, "router_bench: the zone's blocks are small\n");
            std::exit(1);
        }
        zoneImage1 = std::move(zoneImage0);
        zoneImage0 = std::move(next);
        zoneImage0Len = patched.size();

        discovery::PollResult poll{names[0], kUrl,
                                   discovery::ServiceState::Healthy,
                                   routes.data(), routes.size()};
        double t11 = threadMs();
        std::optional<discovery::Bytes> applied = discovery::applyPolls(
            zone.data(), zone.size(), {poll}, generation, discovery::Log());
        double t12 = threadMs();

        discovery::Snapshot whole =
            discovery::decodeSnapshot(zone.data(), zone.size());
        whole.services[0].routeSet =
            discovery::decodeRouteSet(routes.data(), routes.size());
        whole.generation = generation;
        double t13 = threadMs();
        discovery::checkTable(whole);
        ms["check_whole"] += threadMs() - t13;

        if (!applied || *applied != table
            || discovery::encodeSnapshot(whole) != table) {
            std::fprintf(stderr, "router_bench: the stages' table is not "
                                 "applyPolls'\n");
            std::exit(1);
        }

        ms["parse"] += t1 - t0;
        ms["copy_out"] += t2 - t1;
        ms["decode"] += t3 - t2;
        ms["route_set"] += t4 - t3;
        ms["check"] += t5 - t4;
        ms["encode"] += t6 - t5;
        ms["image_layout"] += t7 - t6;
        ms["image_write"] += t8 - t7;
        ms["copy_in"] += t10 - t9;
        ms["total"] += (t8 - t0) + (t10 - t9) - (t3b - t3);
        ms["image_update"] += t15 - t14;
        ms["image_update_write"] += t16 - t15;
        ms["total_incremental"] +=
            (t6 - t0) - (t3b - t3) + (t16 - t14) + (t10 - t9);
        ms["apply_total"] += t12 - t11;

        zone = std::move(table);
        generation++;
    }

    for (const auto &[stage, total] : ms) {
        state.counters[stage + "_ms"] =
            total / static_cast<double>(state.iterations());
    }
    state.counters["zone_table_mb"] = static_cast<double>(zone.size()) / 1e6;
}

void MetricsAssign(benchmark::State &state)
{
    auto n = static_cast<size_t>(state.range(0));
    std::vector<std::string> names;
    std::vector<unsigned char> zone = healthyTable(n, names);

    // the index and the slots in one buffer, as in the zone; a released
    // slot is not reused, as the module keeps it for a grace time
    uint64_t capacity = 1;
    while (capacity < n * 2) {
        capacity <<= 1;
    }
    size_t indexBytes = (discovery::metricsIndexSize(capacity) + 63) & ~size_t(63);
    std::vector<unsigned char> bytes(indexBytes + n * 1024);
    auto *index = reinterpret_cast<discovery::MetricsIndex *>(bytes.data());
    discovery::metricsIndexInit(*index, capacity, discovery::kDefaultBucketsMs,
                                discovery::kDefaultBucketCount);
    size_t next = indexBytes;
    discovery::MetricsMemory memory;
    memory.alloc = [&](size_t size) -> uint64_t {
        if (next + size > bytes.size()) {
            return 0;
        }
        uint64_t at = next;
        next += (size + 7) & ~size_t(7);
        return at;
    };
    memory.release = [](uint64_t, size_t) {};

    auto assign = [&](const discovery::Snapshot &snap,
                      std::map<std::string, double> *ms) {
        discovery::TableFigures figures;
        double t0 = threadMs();
        discovery::Controls controls = discovery::decodeControls(
            snap.controls.data(), snap.controls.size());
        std::vector<discovery::RouteKey> keys =
            discovery::tableRoutes(snap, controls, figures, 0);
        double t1 = threadMs();
        discovery::AssignResult r = discovery::assignRoutes(
            *index, bytes.data(), keys, snap.generation, memory);
        double t2 = threadMs();
        if (r.unassigned != 0 || r.kept + r.added != figures.routes) {
            std::fprintf(stderr, "router_bench: routes without a slot\n");
            std::exit(1);
        }
        if (ms != nullptr) {
            (*ms)["keys"] += t1 - t0;
            (*ms)["assign"] += t2 - t1;
            (*ms)["total"] += t2 - t0;
        }
    };
    assign(discovery::decodeSnapshot(zone.data(), zone.size(),
                                     discovery::Provenance::Made),
           nullptr);

    std::map<std::string, double> ms;
    size_t extra = 0;
    uint64_t generation = 3;
    for (auto _ : state) {
        std::vector<unsigned char> routes =
            parse(tableDocument(n, n / kServiceRoutes, 0, ++extra));
        discovery::PollResult poll{names[0], kUrl,
                                   discovery::ServiceState::Healthy,
                                   routes.data(), routes.size()};
        zone = *discovery::applyPolls(zone.data(), zone.size(), {poll},
                                      generation++, discovery::Log());
        assign(discovery::decodeSnapshot(zone.data(), zone.size(),
                                         discovery::Provenance::Made),
               &ms);
    }
    for (const auto &[stage, total] : ms) {
        state.counters[stage + "_ms"] =
            total / static_cast<double>(state.iterations());
    }
}

} // namespace

BENCHMARK(Lookup)->Arg(10)->Arg(10000)->Arg(100000);
BENCHMARK(LookupPatched)->Arg(10000)->Arg(100000);
BENCHMARK(RouterBuild)->Arg(10000)->Arg(100000)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(Parse)->Arg(100000)->Unit(benchmark::kMillisecond);
BENCHMARK(Decode)->Args({100000, 0})->Args({100000, 1})->Unit(benchmark::kMillisecond);
BENCHMARK(ApplyUnchanged)->Arg(100)->Arg(10000)->Arg(100000)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(SnapshotBytes)->Args({10000, 0})->Args({10000, 1})->Args({100000, 0})
    ->Iterations(1);
BENCHMARK(TableChange)
    ->Arg(100000)
    ->Arg(1000000)
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(MetricsAssign)
    ->Arg(100000)
    ->Iterations(5)
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
