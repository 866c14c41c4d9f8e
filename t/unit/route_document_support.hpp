// route_document_support.hpp: parsing helpers for the route-document tests.
#ifndef DISCOVERY_ROUTE_DOCUMENT_SUPPORT_HPP
#define DISCOVERY_ROUTE_DOCUMENT_SUPPORT_HPP

#include "error.hpp"
#include "route_document.hpp"

#include "captured_log.hpp"

#include <string>
#include <vector>

namespace discovery {

// a route document logs warnings only
struct Captured : CapturedLog {
    Captured() : CapturedLog(LogLevel::Warn) {}
};

inline RouteSet parse(const std::string &doc,
                      DocumentFormat format = DocumentFormat::Auto,
                      Captured *warnings = nullptr)
{
    RouteDocumentParser parser(format, warnings ? warnings->log() : Log());
    parser.feed(doc.data(), doc.size());
    return parser.finish();
}

// The message of the Error the document raises, "" if it parses.
inline std::string parseError(const std::string &doc,
                              DocumentFormat format = DocumentFormat::Auto)
{
    try {
        parse(doc, format);
    } catch (const Error &e) {
        return e.what();
    }
    return "";
}

// The reasons of a set's rejected entries, in order.
inline std::vector<std::string> reasons(const RouteSet &set)
{
    std::vector<std::string> out;
    for (const RejectedRoute &r : set.rejected) {
        out.push_back(r.reason);
    }
    return out;
}

inline const Route *find(const RouteSet &set, const std::string &path)
{
    for (const Route &r : set.routes) {
        if (r.path == path) {
            return &r;
        }
    }
    return nullptr;
}

} // namespace discovery

#endif
