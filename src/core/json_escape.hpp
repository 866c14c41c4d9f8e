// json_escape.hpp: JSON string escaping that always yields valid UTF-8.
#ifndef DISCOVERY_JSON_ESCAPE_HPP
#define DISCOVERY_JSON_ESCAPE_HPP

#include <cstddef>
#include <string>
#include <string_view>

namespace discovery {

// The inside of a JSON string for `src`; dst NULL only measures.
size_t escapeJson(unsigned char *dst, const unsigned char *src, size_t len);

// Whether `s` is well-formed UTF-8 (no overlongs, surrogates, truncation).
bool isValidUtf8(std::string_view s);

// Appends `s` as a quoted JSON string.
void appendJsonString(std::string &out, std::string_view s);

// `s` quoted and escaped for a log line, cut after `max` bytes ("...").
std::string quoted(std::string_view s, size_t max = 128);

} // namespace discovery

#endif
