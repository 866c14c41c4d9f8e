// fuzz_common.hpp: helpers shared by the libFuzzer targets in fuzz/*.cpp.
#ifndef DISCOVERY_FUZZ_COMMON_HPP
#define DISCOVERY_FUZZ_COMMON_HPP

#include "discovery_core.h"
#include "log.hpp"
#include "route_template.hpp"
#include "snapshot.hpp"

#include <yajl/yajl_tree.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace fuzz {

// A failed property: print it and abort, which libFuzzer reports as a crash.
[[noreturn]] inline void fail(const char *what, std::string_view detail = {})
{
    std::fprintf(stderr, "fuzz property violated: %s: %.*s\n", what,
                 static_cast<int>(detail.size()), detail.data());
    std::abort();
}

inline void check(bool ok, const char *what, std::string_view detail = {})
{
    if (!ok) {
        fail(what, detail);
    }
}

// A log handler that reads every byte, so ASan sees a bad message.
inline void logHandler(void *data, int level, const char *msg, size_t len)
{
    auto *sum = static_cast<size_t *>(data);
    check(level >= DISCOVERY_LOG_ERR && level <= DISCOVERY_LOG_DEBUG,
          "log level");
    for (size_t i = 0; i < len; i++) {
        *sum += static_cast<unsigned char>(msg[i]);
    }
}

struct Log {
    size_t sum = 0;
    discovery_log_t raw{&logHandler, &sum}; // for the C interface
    discovery::Log core() { return {&logHandler, &sum}; }
};

// Error texts are NUL-terminated within the buffer.
inline void checkError(const discovery_error_t &err)
{
    check(std::memchr(err.text, '\0', sizeof(err.text)) != nullptr,
          "error text not terminated");
}

// Well-formed UTF-8 (Unicode table 3-7: no overlongs, surrogates or code
// points above U+10FFFF), written independently of src/core/json_escape.cpp.
inline bool strictUtf8(std::string_view s)
{
    for (size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        uint32_t cp;
        size_t n;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            cp = c & 0x1f;
            n = 2;
        } else if ((c & 0xf0) == 0xe0) {
            cp = c & 0x0f;
            n = 3;
        } else if ((c & 0xf8) == 0xf0) {
            cp = c & 0x07;
            n = 4;
        } else {
            return false;
        }
        if (i + n > s.size()) {
            return false;
        }
        for (size_t k = 1; k < n; k++) {
            auto b = static_cast<unsigned char>(s[i + k]);
            if ((b & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (b & 0x3f);
        }
        static const uint32_t minimum[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < minimum[n] || cp > 0x10ffff
            || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += n;
    }
    return true;
}

// Status pages must be valid JSON, and valid UTF-8.
inline void checkJson(const discovery_buf_t &buf)
{
    std::string text(reinterpret_cast<const char *>(buf.data), buf.len);
    if (!strictUtf8(text)) {
        fail("status page is not valid UTF-8", text.substr(0, 512));
    }
    char errbuf[256];
    yajl_val v = yajl_tree_parse(text.c_str(), errbuf, sizeof(errbuf));

    if (v == nullptr || text.size() != std::strlen(text.c_str())) {
        fail("status page is not valid JSON", text.substr(0, 512));
    }
    check(YAJL_IS_OBJECT(v), "status page is not an object");
    yajl_tree_free(v);
}

// discovery_json_escape: measuring agrees with writing, and the result
// quoted is one JSON string of valid UTF-8 without raw control bytes.
inline void checkEscape(const unsigned char *src, size_t len)
{
    size_t need = discovery_json_escape(nullptr, src, len);
    std::vector<unsigned char> out(need + 1, 0xaa);
    size_t wrote = discovery_json_escape(out.data(), src, len);

    check(wrote == need, "json_escape measures and writes differently");
    check(out[need] == 0xaa, "json_escape wrote past its measure");

    std::string_view text(reinterpret_cast<const char *>(out.data()), need);
    check(strictUtf8(text), "json_escape output is not valid UTF-8");
    for (unsigned char c : text) {
        check(c >= 0x20, "json_escape left a control byte");
    }

    std::string doc = "[\"" + std::string(text) + "\"]";
    char errbuf[128];
    yajl_val v = yajl_tree_parse(doc.c_str(), errbuf, sizeof(errbuf));
    if (v == nullptr || !YAJL_IS_ARRAY(v) || v->u.array.len != 1
        || !YAJL_IS_STRING(v->u.array.values[0])) {
        fail("json_escape output is not a JSON string", doc.substr(0, 512));
    }
    yajl_tree_free(v);
}

// FNV-1a, to derive choices from an input.
inline uint32_t fnv1a(uint32_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

// Makes the header's length and checksum agree with the bytes, so the
// decoder reads past the header.  Blobs shorter than the header are left.
inline void fixHeader(std::vector<unsigned char> &blob)
{
    if (blob.size() < 32) {
        return;
    }
    for (size_t i = 0; i < 8; i++) {
        blob[8 + i] = static_cast<unsigned char>(blob.size() >> (8 * i));
    }
    discovery::sealBlob(blob.data(), blob.size());
}

// Splits `s` at '\n'.
inline std::vector<std::string_view> lines(std::string_view s)
{
    std::vector<std::string_view> out;

    for (;;) {
        size_t nl = s.find('\n');
        out.push_back(s.substr(0, nl));
        if (nl == std::string_view::npos) {
            return out;
        }
        s = s.substr(nl + 1);
    }
}

/*
 * Whether `path` matches `tpl`, the way Starlette's regex for it does
 * (`^/files/(?P<p>.*)/meta$`), written independently of the router's
 * split: each segment's pattern after its '/', a {x:path} as '.*', greedy,
 * its longest text tried first.  Literals and the other converters take
 * no '/'.  (Python's '.' stops at a newline and '$' matches before a final
 * one: not modelled, the gateway refuses such paths before routing.)
 */
inline bool referenceMatchFrom(const discovery::Template &tpl, size_t i,
                               std::string_view path)
{
    if (i == tpl.segments.size()) {
        return path.empty();
    }
    if (path.empty() || path[0] != '/') {
        return false;
    }

    const discovery::Segment &seg = tpl.segments[i];
    std::string_view rest = path.substr(1);

    if (seg.kind == discovery::SegmentKind::Path) {
        for (size_t n = rest.size() + 1; n-- > 0;) {
            if (referenceMatchFrom(tpl, i + 1, rest.substr(n))) {
                return true;
            }
        }
        return false;
    }

    std::string_view text = rest.substr(0, rest.find('/'));
    bool ok = seg.kind == discovery::SegmentKind::Literal
                  ? text == seg.text
                  : discovery::segmentMatches(seg.kind, text);
    return ok && referenceMatchFrom(tpl, i + 1, rest.substr(text.size()));
}

inline bool referenceMatch(const discovery::Template &tpl,
                           std::string_view path)
{
    return referenceMatchFrom(tpl, 0, path);
}

} // namespace fuzz

#endif
