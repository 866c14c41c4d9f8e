// request_path.cpp: dot segments and repeated slashes in raw request paths.
#include "request_path.hpp"

#include <cstring>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <vector>

namespace discovery {

namespace {

// "%2F" or "%2f" at p
bool isEncodedSlash(std::string_view s, size_t p)
{
    return p + 2 < s.size() && s[p] == '%' && s[p + 1] == '2'
           && (s[p + 2] == 'F' || s[p + 2] == 'f');
}

// "%2E" or "%2e" at p
bool isEncodedDot(std::string_view s, size_t p)
{
    return p + 2 < s.size() && s[p] == '%' && s[p + 1] == '2'
           && (s[p + 2] == 'E' || s[p + 2] == 'e');
}

/*
 * Calls `segment(text, last)` for each segment of a path that starts with a
 * separator, in order; the text is raw, separators excluded.
 */
template <typename F>
void forEachSegment(std::string_view raw, F &&segment)
{
    size_t start = 0;

    // the leading '/' (or "%2F") opens the first segment
    if (isEncodedSlash(raw, 0)) {
        start = 3;
    } else if (!raw.empty() && raw[0] == '/') {
        start = 1;
    }

    for (size_t p = start;; p++) {
        if (p == raw.size()) {
            segment(raw.substr(start), true);
            return;
        }
        if (raw[p] == '/') {
            segment(raw.substr(start, p - start), false);
            start = p + 1;
        } else if (isEncodedSlash(raw, p)) {
            segment(raw.substr(start, p - start), false);
            start = p + 3;
            p += 2;
        }
    }
}

// What a URI may hold as it is (RFC 3986: unreserved, sub-delims, ':',
// '@', '/' and '%' of the escapes the path already has).
bool isUriByte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9')
           || (c != '\0' && std::strchr("-._~!$&'()*+,;=:@/%", c) != nullptr);
}

// 1 for ".", 2 for "..", 0 otherwise, dots literal or encoded
int dotSegment(std::string_view seg)
{
    int dots = 0;

    for (size_t p = 0; p < seg.size(); dots++) {
        if (seg[p] == '.') {
            p++;
        } else if (isEncodedDot(seg, p)) {
            p += 3;
        } else {
            return 0;
        }
    }

    return dots <= 2 ? dots : 0;
}

} // namespace

int hexValue(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

bool hasCanonicalForm(std::string_view raw)
{
    for (size_t p = raw.find('%');
         p != std::string_view::npos && p + 2 < raw.size();
         p = raw.find('%', p + 1)) {
        int hi = hexValue(raw[p + 1]);
        int lo = hexValue(raw[p + 2]);

        if (hi >= 0 && lo >= 0 && (hi < 2 || (hi == 7 && lo == 0xf))) {
            return false;
        }
    }

    return true;
}

namespace {

constexpr uint64_t kOnes = 0x0101010101010101ull;
constexpr uint64_t kLow7 = 0x7f7f7f7f7f7f7f7full;

// 0x80 in each byte of w that is c, 0 in the others (exact: no carries)
uint64_t bytesEqual(uint64_t w, char c)
{
    uint64_t t = w ^ (kOnes * static_cast<unsigned char>(c));
    return ~(((t & kLow7) + kLow7) | t | kLow7);
}

// Whether eight bytes hold a '.', '%' or '#', or two '/' in a row.
bool wordIsPlain(uint64_t w)
{
    uint64_t slashes = bytesEqual(w, '/');
    return (bytesEqual(w, '.') | bytesEqual(w, '%') | bytesEqual(w, '#')
            | (slashes & (slashes >> 8)))
           == 0;
}

#ifdef __SSE2__
// A bit per byte of 16 (the first lowest): whether it is one of '.', '%'
// and '#', and whether it is '/'.
struct Marks {
    unsigned special;
    unsigned slashes;
};

Marks marks16(const char *p)
{
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
    __m128i any = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('.')),
                     _mm_cmpeq_epi8(v, _mm_set1_epi8('%'))),
        _mm_cmpeq_epi8(v, _mm_set1_epi8('#')));
    return {static_cast<unsigned>(_mm_movemask_epi8(any)),
            static_cast<unsigned>(
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('/'))))};
}
#endif

/*
 * No '.', '%' or '#' and no "//": the paths of nearly every request, told
 * sixteen or eight bytes at a time, as this runs for every routed request
 * (byte by byte where neither applies).  "//" across two blocks is a '/'
 * last in one and first in the next; the last block, which overlaps the
 * one before, has the bytes where they meet.
 */
bool isPlainPath(std::string_view raw)
{
    const char *p = raw.data();
    size_t n = raw.size();

#ifdef __SSE2__
    if (n >= 16) {
        unsigned lastSlash = 0;
        size_t i = 0;
        for (; i + 16 <= n; i += 16) {
            Marks m = marks16(p + i);
            if (m.special != 0 || (m.slashes & (m.slashes >> 1)) != 0
                || (lastSlash & m.slashes & 1) != 0) {
                return false;
            }
            lastSlash = m.slashes >> 15;
        }
        if (i < n) {
            Marks m = marks16(p + n - 16);
            return m.special == 0 && (m.slashes & (m.slashes >> 1)) == 0;
        }
        return true;
    }
#endif

    /*
     * Eight to fifteen bytes: two words, which overlap, so that each two
     * bytes in a row lie in one of them.
     */
    if (n >= 8 && n < 16) {
        uint64_t first, last;
        std::memcpy(&first, p, 8);
        std::memcpy(&last, p + n - 8, 8);
        return wordIsPlain(first) && wordIsPlain(last);
    }

    char prev = '\0';
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '.' || c == '%' || c == '#' || (c == '/' && prev == '/')) {
            return false;
        }
        prev = c;
    }
    return true;
}

} // namespace

bool isCanonicalPath(std::string_view raw)
{
    static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
                  "a word's first byte is its lowest");

    if (isPlainPath(raw)) {
        return true;
    }

    // nginx ends $uri at '#', the service keeps what follows
    bool canonical =
        raw.find('#') == std::string_view::npos && hasCanonicalForm(raw);

    forEachSegment(raw, [&](std::string_view seg, bool last) {
        if ((seg.empty() && !last) || dotSegment(seg) != 0) {
            canonical = false;
        }
    });

    return canonical;
}

std::string canonicalPath(std::string_view raw)
{
    std::vector<std::string_view> kept;
    bool trailingSlash = false;

    raw = raw.substr(0, raw.find('#'));

    forEachSegment(raw, [&](std::string_view seg, bool last) {
        int dots = dotSegment(seg);

        if (dots == 2 && !kept.empty()) {
            kept.pop_back();
        }

        // "/a/.." and "/a/." end in a directory, as "/a/" does
        if (last) {
            trailingSlash = seg.empty() || dots != 0;
        }

        if (!seg.empty() && dots == 0) {
            kept.push_back(seg);
        }
    });

    static const char hex[] = "0123456789ABCDEF";
    std::string out;

    for (std::string_view seg : kept) {
        out += '/';
        for (unsigned char c : seg) {
            if (isUriByte(c)) {
                out += static_cast<char>(c);
            } else {
                out += '%';
                out += hex[c >> 4];
                out += hex[c & 0xf];
            }
        }
    }

    if (out.empty() || trailingSlash) {
        out += '/';
    }

    return out;
}

} // namespace discovery
