// request_path.hpp: whether a raw request path means what it says.
#ifndef DISCOVERY_REQUEST_PATH_HPP
#define DISCOVERY_REQUEST_PATH_HPP

#include <string>
#include <string_view>

namespace discovery {

/*
 * A raw request path (as on the request line, before '?') is canonical
 * when no normalization would change it: no segment is "." or ".." (dots
 * literal or percent-encoded, any case), no segment but the last is empty
 * ("//"), it has no '#' (nginx's $uri ends there, a service's path
 * does not) and no escaped control character (see hasCanonicalForm).
 * "%2F" separates segments here as '/' does, since nginx and Starlette
 * both decode it to '/' before they look at the path.  Other escapes
 * ("%41", "%C3%A9") decode to the same segments whatever their spelling
 * and do not make a path non-canonical.
 */
bool isCanonicalPath(std::string_view raw);

/*
 * False for a path with an escaped control character ("%00" to "%1F",
 * "%7F"): no form of it means the same to nginx and to the service.
 * Python's '$' matches before a final newline, so Starlette runs its
 * "/users/me" route for "/users/me%0A", which nginx routes as the segment
 * "me\n"; and "{rest:path}" ('.*') stops at a newline.
 */
bool hasCanonicalForm(std::string_view raw);

/*
 * The path a user agent should have sent, for a Location header: what
 * precedes '#', dot segments removed as RFC 3986 section 5.2.4 says, empty
 * segments but the last dropped, "%2F" separators written '/', bytes a URI
 * cannot hold percent-encoded, the rest as it was.  At most three times as
 * long as `raw`; "/" at least.
 */
std::string canonicalPath(std::string_view raw);

// The value of a hexadecimal digit, either case, or -1.
int hexValue(char c);

} // namespace discovery

#endif
