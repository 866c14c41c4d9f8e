// methods.hpp: the HTTP methods a route can publish, as bits of a mask.
#ifndef DISCOVERY_METHODS_HPP
#define DISCOVERY_METHODS_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace discovery {

// Bit order is the order of an Allow header and of every list we print.
enum MethodBit : uint32_t {
    kGet = 1u << 0,
    kHead = 1u << 1,
    kPost = 1u << 2,
    kPut = 1u << 3,
    kDelete = 1u << 4,
    kPatch = 1u << 5,
    kOptions = 1u << 6,
    kTrace = 1u << 7,
    kConnect = 1u << 8,
};

constexpr size_t kMethodCount = 9;
constexpr uint32_t kAllMethods = (1u << kMethodCount) - 1;

/*
 * Any other method (WebDAV's PROPFIND, a custom PURGE) is an extension
 * method: a route lists those by name, and a table numbers the ones its
 * routes use from bit kMethodCount up, so a mask covers both kinds.
 */
constexpr size_t kMaxMethodLen = 32;
constexpr size_t kMaxRouteExtensionMethods = 16;
constexpr size_t kMaxExtensionMethods = 22; // in one table
constexpr size_t kMethodBits = kMethodCount + kMaxExtensionMethods;

using MethodNames = std::vector<std::string>;

// The bit of an exact, uppercase method token; 0 if unknown.
uint32_t methodBit(std::string_view token);

// The same, for route documents where "post" means POST.
uint32_t methodBitIgnoreCase(std::string_view name);

std::string_view methodName(size_t index);

// Whether `name` is an RFC 9110 method token of at most kMaxMethodLen bytes.
bool isMethodToken(std::string_view name);

// The bit of `token` in a table whose extension methods are `extension`;
// 0 if the table has no such method.
uint32_t methodBit(std::string_view token, const MethodNames &extension);

// "GET, POST": the methods of `mask` in bit order, joined by `separator`;
// bits past the nine name extension[bit - kMethodCount].
std::string joinMethods(uint32_t mask, std::string_view separator,
                        const MethodNames &extension = {});

// The Allow header value for `mask`; lives as long as the process.
std::string_view allowHeader(uint32_t mask);

} // namespace discovery

#endif
