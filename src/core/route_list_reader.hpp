// route_list_reader.hpp: the route list grammar of a route document.
#ifndef DISCOVERY_ROUTE_LIST_READER_HPP
#define DISCOVERY_ROUTE_LIST_READER_HPP

#include "document_reader.hpp"

#include <memory>

namespace discovery {

/*
 * Reads the top-level "routes": [{"path": ..., "methods": [...], "name",
 * "tags", "auth_required", "websocket"}, ...]; the entries it turns away
 * go to `rejected`, which must outlive it.
 */
std::unique_ptr<Grammar> makeRouteListReader(RejectedRoutes &rejected);

} // namespace discovery

#endif
