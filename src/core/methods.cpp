// methods.cpp: method names, parsing and the precomputed Allow headers.
#include "methods.hpp"

#include <array>
#include <cctype>

namespace discovery {

namespace {

constexpr std::array<std::string_view, kMethodCount> kNames = {
    "GET",   "HEAD",    "POST",  "PUT",     "DELETE",
    "PATCH", "OPTIONS", "TRACE", "CONNECT",
};

bool equalsIgnoreCase(std::string_view a, std::string_view upper)
{
    if (a.size() != upper.size()) {
        return false;
    }

    for (size_t i = 0; i < a.size(); i++) {
        if (std::toupper(static_cast<unsigned char>(a[i])) != upper[i]) {
            return false;
        }
    }

    return true;
}

} // namespace

/*
 * By length, then the names of that length: each a compare of a constant
 * length, which the compiler makes a load or two, for every request.
 */
uint32_t methodBit(std::string_view token)
{
    uint32_t bit = 0;

    switch (token.size()) {
    case 3:
        bit = token == "GET" ? kGet : token == "PUT" ? kPut : bit;
        break;
    case 4:
        bit = token == "HEAD" ? kHead : token == "POST" ? kPost : bit;
        break;
    case 5:
        bit = token == "PATCH" ? kPatch : token == "TRACE" ? kTrace : bit;
        break;
    case 6:
        bit = token == "DELETE" ? kDelete : bit;
        break;
    case 7:
        bit = token == "OPTIONS" ? kOptions
              : token == "CONNECT" ? kConnect
                                   : bit;
        break;
    }

    return bit;
}

uint32_t methodBitIgnoreCase(std::string_view name)
{
    for (size_t i = 0; i < kMethodCount; i++) {
        if (equalsIgnoreCase(name, kNames[i])) {
            return 1u << i;
        }
    }

    return 0;
}

std::string_view methodName(size_t index)
{
    return index < kMethodCount ? kNames[index] : std::string_view();
}

bool isMethodToken(std::string_view name)
{
    if (name.empty() || name.size() > kMaxMethodLen) {
        return false;
    }

    for (char c : name) {
        bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                     || (c >= '0' && c <= '9');
        if (!alnum
            && std::string_view("!#$%&'*+-.^_`|~").find(c)
                   == std::string_view::npos) {
            return false;
        }
    }

    return true;
}

uint32_t methodBit(std::string_view token, const MethodNames &extension)
{
    uint32_t bit = methodBit(token);

    for (size_t i = 0; bit == 0 && i < extension.size(); i++) {
        if (extension[i] == token) {
            bit = 1u << (kMethodCount + i);
        }
    }

    return bit;
}

std::string joinMethods(uint32_t mask, std::string_view separator,
                        const MethodNames &extension)
{
    std::string out;

    for (size_t i = 0; i < kMethodBits; i++) {
        if (!(mask & (1u << i))) {
            continue;
        }

        std::string_view name =
            i < kMethodCount ? kNames[i]
            : i - kMethodCount < extension.size()
                ? std::string_view(extension[i - kMethodCount])
                : std::string_view();

        if (!name.empty()) {
            if (!out.empty()) {
                out += separator;
            }
            out += name;
        }
    }

    return out;
}

std::string_view allowHeader(uint32_t mask)
{
    // every possible mask, built once, so a 405 costs no allocation
    static const auto table = [] {
        std::array<std::string, kAllMethods + 1> all;
        for (uint32_t m = 0; m <= kAllMethods; m++) {
            all[m] = joinMethods(m, ", ");
        }
        return all;
    }();

    return table[mask & kAllMethods];
}

} // namespace discovery
