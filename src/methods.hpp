// methods.hpp: the HTTP methods a route can publish, as bits of a mask.
#ifndef DISCOVERY_METHODS_HPP
#define DISCOVERY_METHODS_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

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

// The bit of an exact, uppercase method token; 0 if unknown.
uint32_t methodBit(std::string_view token);

// The same, for route documents where "post" means POST.
uint32_t methodBitIgnoreCase(std::string_view name);

std::string_view methodName(size_t index);

// "GET, POST": the methods of `mask` in bit order, joined by `separator`.
std::string joinMethods(uint32_t mask, std::string_view separator);

// The Allow header value for `mask`; lives as long as the process.
std::string_view allowHeader(uint32_t mask);

} // namespace discovery

#endif
