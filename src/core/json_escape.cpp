// json_escape.cpp: escaping for the status page, error texts and log lines.
#include "json_escape.hpp"

#include <cstdint>
#include <cstring>

namespace discovery {

namespace {

// Writes when it has a buffer, counts always: one code path for both.
class Sink {
public:
    explicit Sink(unsigned char *dst) : dst_(dst) {}

    void put(const char *s, size_t n)
    {
        if (dst_ != nullptr) {
            std::memcpy(dst_ + len_, s, n);
        }
        len_ += n;
    }

    size_t length() const { return len_; }

private:
    unsigned char *dst_;
    size_t len_ = 0;
};

/*
 * The length of the well-formed UTF-8 sequence at s (Unicode table 3-7),
 * or 0 with *bad set to the length of its maximal ill-formed prefix, so
 * that each broken sequence becomes a single U+FFFD.
 */
size_t wellFormedLength(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;
    size_t need;

    if (c < 0x80) {
        return 1;
    }

    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
    } else if (c == 0xe0) {
        need = 2;
        lo = 0xa0; // overlong
    } else if (c == 0xed) {
        need = 2;
        hi = 0x9f; // surrogates
    } else if (c >= 0xe1 && c <= 0xef) {
        need = 2;
    } else if (c == 0xf0) {
        need = 3;
        lo = 0x90; // overlong
    } else if (c >= 0xf1 && c <= 0xf3) {
        need = 3;
    } else if (c == 0xf4) {
        need = 3;
        hi = 0x8f; // above U+10FFFF
    } else {
        *bad = 1;
        return 0;
    }

    for (size_t i = 1; i <= need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xbf;
    }

    return need + 1;
}

void escapeControl(Sink &sink, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";

    switch (c) {
    case '\n':
        sink.put("\\n", 2);
        return;
    case '\r':
        sink.put("\\r", 2);
        return;
    case '\t':
        sink.put("\\t", 2);
        return;
    case '\b':
        sink.put("\\b", 2);
        return;
    case '\f':
        sink.put("\\f", 2);
        return;
    default:
        char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
        sink.put(u, sizeof(u));
    }
}

} // namespace

size_t escapeJson(unsigned char *dst, const unsigned char *src, size_t len)
{
    Sink sink(dst);
    size_t i = 0;

    while (i < len) {
        unsigned char c = src[i];

        if (c == '"' || c == '\\') {
            char e[2] = {'\\', static_cast<char>(c)};
            sink.put(e, 2);
            i++;
            continue;
        }

        if (c < 0x20) {
            escapeControl(sink, c);
            i++;
            continue;
        }

        size_t bad = 0;
        size_t n = wellFormedLength(src + i, len - i, &bad);

        if (n == 0) {
            sink.put("\\ufffd", 6);
            i += bad;
            continue;
        }

        sink.put(reinterpret_cast<const char *>(src + i), n);
        i += n;
    }

    return sink.length();
}

bool isValidUtf8(std::string_view s)
{
    auto p = reinterpret_cast<const unsigned char *>(s.data());
    size_t i = 0;
    size_t bad;

    while (i < s.size()) {
        // ASCII, the usual text, 8 bytes at a time
        uint64_t w;
        if (i + 8 <= s.size()
            && (std::memcpy(&w, p + i, 8), (w & 0x8080808080808080ull) == 0)) {
            i += 8;
            continue;
        }
        size_t n = wellFormedLength(p + i, s.size() - i, &bad);
        if (n == 0) {
            return false;
        }
        i += n;
    }

    return true;
}

void appendJsonString(std::string &out, std::string_view s)
{
    auto src = reinterpret_cast<const unsigned char *>(s.data());
    size_t start = out.size();
    size_t n = escapeJson(nullptr, src, s.size());

    out.resize(start + n + 2);
    out[start] = '"';
    escapeJson(reinterpret_cast<unsigned char *>(&out[start + 1]), src,
               s.size());
    out[start + n + 1] = '"';
}

std::string quoted(std::string_view s, size_t max)
{
    std::string out;

    appendJsonString(out, s.substr(0, max));
    if (s.size() > max) {
        out += "...";
    }

    return out;
}

} // namespace discovery
