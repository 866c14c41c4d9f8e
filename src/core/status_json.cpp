// status_json.cpp: renders a snapshot and poll statistics for the status page.
#include "status_json.hpp"

#include "controls.hpp"
#include "grpc_reflection.hpp"
#include "json_escape.hpp"
#include "json_writer.hpp"
#include "methods.hpp"

#include <cstdio>
#include <ctime>
#include <unordered_map>

namespace discovery {

const char *stateName(ServiceState state)
{
    switch (state) {
    case ServiceState::Healthy:
        return "healthy";
    case ServiceState::Unhealthy:
        return "unhealthy";
    default:
        return "pending";
    }
}

// Bits past the nine name extension[bit - kMethodCount].
void writeMethods(JsonWriter &w, uint32_t mask, const MethodNames &extension)
{
    w.beginArray();
    for (size_t i = 0; i < kMethodBits; i++) {
        if (!(mask & (1u << i))) {
            continue;
        }
        if (i < kMethodCount) {
            w.string(methodName(i));
        } else if (i - kMethodCount < extension.size()) {
            w.string(extension[i - kMethodCount]);
        }
    }
    w.endArray();
}

// A route's own methods: the nine it has, then its extension methods.
void writeRouteMethods(JsonWriter &w, uint32_t methods, const MethodNames &own)
{
    uint32_t all = ((1u << own.size()) - 1) << kMethodCount;
    writeMethods(w, methods | all, own);
}

void writeTime(JsonWriter &w, int64_t t)
{
    std::string iso = t == 0 ? std::string() : formatTime(t);
    w.stringOrNull(iso);
}

void writeRoute(JsonWriter &w, const Route &r)
{
    w.beginObject();
    w.key("path");
    w.string(r.path);
    w.key("methods");
    writeRouteMethods(w, r.methods, r.extensionMethods);
    w.key("name");
    w.stringOrNull(r.name);
    w.key("tags");
    w.beginArray();
    for (const std::string &tag : r.tags) {
        w.string(tag);
    }
    w.endArray();
    w.key("auth_required");
    w.boolean(r.authRequired);
    w.key("websocket");
    w.boolean(r.websocket);
    w.key("protocol");
    w.string(r.protocol == Protocol::Grpc ? "grpc" : "http");
    if (r.protocol == Protocol::Grpc) {
        w.key("streaming");
        w.string(streamingName(r.streaming));
    }
    w.endObject();
}

// A published route that is not routed, and why.
static void writeRejected(JsonWriter &w, std::string_view path,
                          uint32_t methods, const MethodNames &extension,
                          std::string_view reason)
{
    w.beginObject();
    w.key("path");
    w.string(path);
    w.key("methods");
    writeRouteMethods(w, methods, extension);
    w.key("reason");
    w.string(reason);
    w.endObject();
}

/*
 * `rejected` lists what the parser turned away (outside the prefixes) and
 * what the table does not route (shadowing under discovery_overlap deny,
 * the lookup bound); rejected_routes counts them.
 */
void writeService(JsonWriter &w, const Snapshot &snap, uint32_t index,
                  const ServiceStats &st, bool drained)
{
    const Service &s = snap.services[index];
    std::vector<const Rejection *> dropped;

    for (const Rejection &j : snap.rejections) {
        if (j.service == index) {
            dropped.push_back(&j);
        }
    }

    w.beginObject();
    w.key("name");
    w.string(s.name);
    w.key("url");
    w.string(s.url);
    w.key("upstream");
    w.string(s.upstream);
    w.key("state");
    w.string(stateName(s.state));
    w.key("drained");
    w.boolean(drained);
    w.key("origin");
    w.string(st.registry ? "registry" : "file");
    if (st.poller) {
        // share=on: who polls it for the fleet, by the claim's lease
        char hex[17];
        std::snprintf(hex, sizeof(hex), "%llx",
                      static_cast<unsigned long long>(st.pollerLease));
        w.key("poller");
        w.beginObject();
        w.key("self");
        w.boolean(st.poller == 1);
        w.key("lease");
        w.stringOrNull(st.pollerLease > 0 ? hex : "");
        w.endObject();
    }
    w.key("version");
    w.stringOrNull(s.routeSet.version);
    w.key("last_check");
    writeTime(w, st.lastCheck);
    w.key("last_success");
    writeTime(w, st.lastSuccess);
    w.key("failures");
    w.number(st.failures);
    w.key("rejected_routes");
    w.number(s.routeSet.rejected.size() + s.routeSet.rejectedOmitted
             + dropped.size());
    w.key("last_error");
    w.stringOrNull(st.lastError);
    w.key("routes");
    w.beginArray();
    for (const Route &r : s.routeSet.routes) {
        writeRoute(w, r);
    }
    w.endArray();
    w.key("rejected");
    w.beginArray();
    for (const RejectedRoute &r : s.routeSet.rejected) {
        writeRejected(w, r.path, r.methods, r.extensionMethods, r.reason);
    }
    for (const Rejection *j : dropped) {
        const Route &r = s.routeSet.routes[j->route];
        writeRejected(w, r.path, r.methods, r.extensionMethods, j->reason);
    }
    w.endArray();
    w.endObject();
}

void writeOverride(JsonWriter &w, const Override &o)
{
    w.beginObject();
    w.key("id");
    w.string(o.id);
    w.key("action");
    w.string(actionName(o.action));
    w.key("path");
    w.string(o.path);
    w.key("methods");
    w.beginArray();
    for (const std::string &m : o.methods) {
        w.string(m);
    }
    w.endArray();
    w.key("service");
    w.stringOrNull(o.service);
    w.key("reason");
    w.string(o.reason);
    w.key("created");
    writeTime(w, o.created);
    w.key("expires");
    writeTime(w, o.expires);
    w.endObject();
}

void writeOverlap(JsonWriter &w, const Snapshot &snap, const Overlap &o)
{
    const Service &by = snap.services[o.service];
    const Service &of = snap.services[o.shadowedService];

    w.beginObject();
    w.key("service");
    w.string(by.name);
    w.key("route");
    w.string(by.routeSet.routes[o.route].path);
    w.key("methods");
    writeMethods(w, o.methods, snap.extensionMethods);
    w.key("shadows");
    w.beginObject();
    w.key("service");
    w.string(of.name);
    w.key("route");
    w.string(of.routeSet.routes[o.shadowedRoute].path);
    w.endObject();
    w.endObject();
}

void writeConflict(JsonWriter &w, const Snapshot &snap, const Conflict &c)
{
    const Service &loser = snap.services[c.loserService];
    const Service &winner = snap.services[c.winnerService];

    w.beginObject();
    w.key("methods");
    writeMethods(w, c.methods, snap.extensionMethods);
    w.key("path");
    w.string(loser.routeSet.routes[c.loserRoute].path);
    w.key("service");
    w.string(loser.name);
    w.key("shadowed_by");
    w.string(winner.name);
    w.key("winner_path");
    w.string(winner.routeSet.routes[c.winnerRoute].path);
    w.endObject();
}

std::string formatTime(int64_t unixTime)
{
    auto t = static_cast<time_t>(unixTime);
    struct tm tm;
    char buf[64];

    if (t != unixTime || gmtime_r(&t, &tm) == nullptr) {
        return std::string();
    }

    int n =
        std::snprintf(buf, sizeof(buf), "%04lld-%02d-%02dT%02d:%02d:%02dZ",
                      static_cast<long long>(tm.tm_year) + 1900, tm.tm_mon + 1,
                      tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);

    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::string renderStatus(const Snapshot &snap,
                         const std::vector<ServiceStats> &stats,
                         std::string_view tableError,
                         std::string_view moduleVersion,
                         std::string_view registry)
{
    std::unordered_map<std::string_view, const ServiceStats *> byName;
    const ServiceStats none;
    JsonWriter w;
    Controls controls =
        decodeControls(snap.controls.data(), snap.controls.size());

    for (const ServiceStats &st : stats) {
        byName.emplace(st.name, &st); // the first entry for a name wins
    }

    w.beginObject();
    w.key("module_version");
    w.stringOrNull(moduleVersion);
    w.key("generation");
    w.number(snap.generation);
    w.key("table_error");
    w.stringOrNull(tableError);

    // before the services: a page read from its end ends as it did
    w.key("overrides");
    w.beginArray();
    for (const Override &o : controls.overrides) {
        writeOverride(w, o);
    }
    w.endArray();

    w.key("services");
    w.beginArray();
    for (uint32_t i = 0; i < snap.services.size(); i++) {
        auto it = byName.find(snap.services[i].name);
        writeService(w, snap, i, it != byName.end() ? *it->second : none,
                     controls.isDrained(snap.services[i].name));
    }
    w.endArray();

    w.key("conflicts");
    w.beginArray();
    for (const Conflict &c : snap.conflicts) {
        writeConflict(w, snap, c);
    }
    w.endArray();

    w.key("overlaps");
    w.beginArray();
    for (const Overlap &o : snap.overlaps) {
        writeOverlap(w, snap, o);
    }
    w.endArray();

    if (!registry.empty()) {
        w.key("registry");
        w.rawValue(registry);
    }

    w.endObject();
    return w.take();
}

} // namespace discovery
