// api.hpp: the management API (discovery_api): requests in, JSON answers out.
#ifndef DISCOVERY_API_HPP
#define DISCOVERY_API_HPP

#include "controls.hpp"
#include "router.hpp"
#include "snapshot.hpp"
#include "status_json.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace discovery {

// Writes take bodies up to this size.
constexpr size_t kMaxApiBody = 64 * 1024;

struct ApiRequest {
    std::string_view method; // "HEAD" is answered as "GET"
    std::string_view path;   // below the API's location: "/", "/services"
    std::string_view query;  // the arguments, undecoded
    std::string_view body;
    bool bodyTooLarge = false;
    std::string_view contentType; // of a write
    std::string_view origin;      // the Origin header, empty if none
    std::string_view host;        // the Host header
    bool write = false;           // discovery_api write=on
    bool persistRestart = false;  // discovery_state is set
    std::string_view moduleVersion;
    int64_t now = 0;
};

// What the gateway knows, for the answer.
struct ApiView {
    const Snapshot *table = nullptr; // the published table
    std::vector<ServiceStats> stats;
    Controls controls;              // the zone's, as written last
    const Router *router = nullptr; // this worker's, for /explain
};

struct ApiAnswer {
    int status = 200;
    std::string body;  // JSON
    std::string allow; // of a 405 MethodNotAllowed
    bool controlsChanged = false;
    Controls controls; // the new ones, when changed
    std::string poll;  // POST .../poll: the service to poll first
};

ApiAnswer handleApi(const ApiRequest &req, const ApiView &view);

// Whether the answer at `path` asks the router (/explain): the others can
// be worked out where the worker's router is not.
bool apiUsesRouter(std::string_view path);

// {"error": {"status": N, "code": ..., "text": ...}}
std::string apiError(int status, std::string_view code, std::string_view text);

} // namespace discovery

#endif
