// route_template.hpp: FastAPI/Starlette path templates, compiled to segments.
#ifndef DISCOVERY_ROUTE_TEMPLATE_HPP
#define DISCOVERY_ROUTE_TEMPLATE_HPP

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace discovery {

// Declaration order is not precedence: see Router for that.
enum class SegmentKind : uint8_t { Literal, Str, Int, Float, Uuid, Path };

struct Segment {
    SegmentKind kind;
    std::string_view text; // literal text or parameter name
};

/*
 * A template holds at most one {x:path} segment, anywhere.  As Starlette's
 * '.*' between the slashes around it, it takes all the text between the
 * segments before it and those after it, slashes included, possibly none.
 * The segments after it are fixed in number: at most this many, since the
 * router keeps a bit per suffix length.
 */
constexpr size_t kMaxSegmentsAfterPath = 31;

// Views into the compiled path string, which must outlive it.
struct Template {
    std::vector<Segment> segments;
};

// False (with *reason if given) unless `path` is a valid template.
bool compileTemplate(std::string_view path, Template &out,
                     std::string *reason = nullptr);

// The template with parameter names erased: "/users/{str}".  Two routes
// with the same shape match the same requests.
std::string templateShape(const Template &tpl);

// Whether a request segment satisfies a converter (not Literal or Path).
bool segmentMatches(SegmentKind kind, std::string_view segment);

/*
 * Whether the template takes a request path (normalized, no query), as
 * the router's walk would: segment by segment, a {x:path} taking what lies
 * between the segments before it and the fixed number after it.
 */
bool templateMatches(const Template &tpl, std::string_view path);

// The same for a template's text, without allocating: for the router's
// pins, tried on every request while there are any.  False for a text
// that is not a template.
bool templateTextMatches(std::string_view tpl, std::string_view path);

} // namespace discovery

#endif
