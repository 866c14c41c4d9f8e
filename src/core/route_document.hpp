// route_document.hpp: streaming parser for route documents and OpenAPI.
#ifndef DISCOVERY_ROUTE_DOCUMENT_HPP
#define DISCOVERY_ROUTE_DOCUMENT_HPP

#include "log.hpp"
#include "snapshot.hpp"

#include <cstddef>
#include <memory>

namespace discovery {

// Deeper documents fail: nothing we read is nested more than a few levels.
constexpr size_t kMaxDepth = 64;

// discovery_service's format=: which grammar a document is read with.
enum class DocumentFormat {
    Auto = 0, // both read it; its shape at the end decides
    Routes = 1,
    OpenApi = 2,
};

/*
 * Fed the body in pieces as it arrives (yajl's SAX interface, so nothing
 * recurses on the document's nesting); keeps only the routes it accepts.
 * A malformed route entry is skipped with one WARN; a malformed document
 * throws Error from feed() or finish().
 */
class RouteDocumentParser {
public:
    RouteDocumentParser(DocumentFormat format, const Log &log);
    ~RouteDocumentParser();

    RouteDocumentParser(const RouteDocumentParser &) = delete;
    RouteDocumentParser &operator=(const RouteDocumentParser &) = delete;

    void feed(const char *data, size_t len);
    RouteSet finish();

private:
    class Reader;
    std::unique_ptr<Reader> reader_;
};

} // namespace discovery

#endif
