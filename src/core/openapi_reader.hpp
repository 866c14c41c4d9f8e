// openapi_reader.hpp: the OpenAPI grammar of a route document.
#ifndef DISCOVERY_OPENAPI_READER_HPP
#define DISCOVERY_OPENAPI_READER_HPP

#include "document_reader.hpp"

#include <memory>

namespace discovery {

/*
 * Reads an OpenAPI 3.x document's "paths" (each path's operations, their
 * operationId, tags and security), the document's "security" and
 * "info.version"; the operations and paths it turns away go to
 * `rejected`, which must outlive it.  `forced` (format=openapi): a
 * "paths" that is not an object fails at once, not only when finish()
 * takes this grammar's result.
 */
std::unique_ptr<Grammar>
makeOpenApiReader(bool forced, RejectedRoutes &rejected, const Log &log);

} // namespace discovery

#endif
