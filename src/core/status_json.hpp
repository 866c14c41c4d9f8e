// status_json.hpp: the status page, everything the gateway knows as JSON.
#ifndef DISCOVERY_STATUS_JSON_HPP
#define DISCOVERY_STATUS_JSON_HPP

#include "snapshot.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace discovery {

// Poll statistics the glue keeps outside the snapshot, matched by name.
struct ServiceStats {
    std::string_view name;
    int64_t lastCheck = 0; // unix time, 0: never
    int64_t lastSuccess = 0;
    uint32_t failures = 0;
    std::string_view lastError; // empty: none
    bool registry = false;      // "origin": the registry, else nginx.conf
    // share=on: "poller", 0: none (not shared), 1: this gateway polls it,
    // 2: another does; and the lease of the claim (0: none)
    int poller = 0;
    int64_t pollerLease = 0;
};

// tableError: why the newest table is not published; empty: it is.
// moduleVersion: the module's own, "module_version" (null when empty).
// registry: the registry's object, JSON rendered elsewhere, the page's
// last member "registry"; empty: none.
std::string renderStatus(const Snapshot &snap,
                         const std::vector<ServiceStats> &stats,
                         std::string_view tableError = {},
                         std::string_view moduleVersion = {},
                         std::string_view registry = {});

class JsonWriter;
struct Override;

// Parts of the page the management API shows too.
const char *stateName(ServiceState state);
void writeService(JsonWriter &w, const Snapshot &snap, uint32_t index,
                  const ServiceStats &st, bool drained);
void writeRoute(JsonWriter &w, const Route &r);
void writeConflict(JsonWriter &w, const Snapshot &snap, const Conflict &c);
void writeOverlap(JsonWriter &w, const Snapshot &snap, const Overlap &o);
void writeOverride(JsonWriter &w, const Override &o);
void writeMethods(JsonWriter &w, uint32_t mask, const MethodNames &extension);
void writeRouteMethods(JsonWriter &w, uint32_t methods, const MethodNames &own);
void writeTime(JsonWriter &w, int64_t t);

// "2026-11-28T05:30:00Z"; empty when the time cannot be represented.
std::string formatTime(int64_t unixTime);

} // namespace discovery

#endif
