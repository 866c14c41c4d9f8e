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
};

// tableError: why the newest table is not published; empty: it is.
// moduleVersion: the module's own, "module_version" (null when empty).
std::string renderStatus(const Snapshot &snap,
                         const std::vector<ServiceStats> &stats,
                         std::string_view tableError = {},
                         std::string_view moduleVersion = {});

// "2026-11-28T05:30:00Z"; empty when the time cannot be represented.
std::string formatTime(int64_t unixTime);

} // namespace discovery

#endif
