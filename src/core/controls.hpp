// controls.hpp: what operators set through the management API: overrides
// of routes and drained services, kept with the table.
#ifndef DISCOVERY_CONTROLS_HPP
#define DISCOVERY_CONTROLS_HPP

#include "methods.hpp"
#include "snapshot.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace discovery {

enum class OverrideAction : uint8_t { Disable = 0, Pin = 1, Add = 2 };

// Bounds on what one API request may set.
constexpr size_t kMaxOverrides = 1000;
constexpr size_t kMaxReasonTextLen = 1024;
constexpr size_t kMaxOverrideMethods = 16;

/*
 * disable: requests the template matches answer 404 "Endpoint disabled";
 * pin: they go to `service` whatever the conflict order says; add: the
 * template is routed to `service`, which does not publish it.
 */
struct Override {
    std::string id;
    OverrideAction action = OverrideAction::Disable;
    std::string path;                 // a valid template
    std::vector<std::string> methods; // uppercase tokens, or {"*"}
    std::string service;              // empty: none (disable only)
    std::string reason;
    int64_t created = 0; // unix time
    int64_t expires = 0; // unix time, 0: never
};

bool operator==(const Override &a, const Override &b);

struct Controls {
    uint64_t nextId = 1;
    std::vector<Override> overrides;
    std::vector<std::string> drained; // service names, sorted, unique

    bool isDrained(std::string_view service) const;
    void setDrained(std::string_view service, bool drained);
    // the earliest expiry, 0 if none
    int64_t nextExpiry() const;
    // drops the overrides expired at `now`; true if any
    bool expire(int64_t now);
};

bool operator==(const Controls &a, const Controls &b);

const char *actionName(OverrideAction action);

// Empty controls encode to no bytes, and no bytes decode to them.
Bytes encodeControls(const Controls &controls);
// Throws Error unless the bytes are controls encodeControls() wrote.
Controls decodeControls(const unsigned char *data, size_t len);

// Whether an override's methods take `method` ("*" takes every one).
bool overrideTakes(const Override &o, std::string_view method);

// The override's methods as a mask of a table whose extension methods are
// `extension`; "*" is `all`.
uint32_t overrideMask(const Override &o, const MethodNames &extension,
                      uint32_t all);

} // namespace discovery

#endif
