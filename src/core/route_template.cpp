// route_template.cpp: template compilation and converter matching.
#include "route_template.hpp"

#include <algorithm>

namespace discovery {

namespace {

constexpr size_t kTypicalSegments = 8;

bool isIdentStart(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

bool isIdentChar(char c)
{
    return isIdentStart(c) || (c >= '0' && c <= '9');
}

bool isDigit(char c)
{
    return c >= '0' && c <= '9';
}

bool isLowerHex(char c)
{
    return isDigit(c) || (c >= 'a' && c <= 'f');
}

bool isIdentifier(std::string_view s)
{
    if (s.empty() || !isIdentStart(s[0])) {
        return false;
    }

    for (char c : s) {
        if (!isIdentChar(c)) {
            return false;
        }
    }

    return true;
}

// Bytes a normalized request path cannot contain, so a literal with them
// could never match: controls, space, and the query/fragment delimiters.
bool isLiteralByte(unsigned char c)
{
    return c > 0x20 && c != 0x7f && c != '?' && c != '#' && c != '{'
           && c != '}';
}

bool converterKind(std::string_view name, SegmentKind *kind)
{
    static const struct {
        std::string_view name;
        SegmentKind kind;
    } converters[] = {
        {"str", SegmentKind::Str},     {"int", SegmentKind::Int},
        {"float", SegmentKind::Float}, {"uuid", SegmentKind::Uuid},
        {"path", SegmentKind::Path},
    };

    for (const auto &c : converters) {
        if (c.name == name) {
            *kind = c.kind;
            return true;
        }
    }

    return false;
}

bool compileSegment(std::string_view text, Segment *seg)
{
    if (text.empty() || text.front() != '{') {
        for (unsigned char c : text) {
            if (!isLiteralByte(c)) {
                return false;
            }
        }
        *seg = {SegmentKind::Literal, text};
        return true;
    }

    // a parameter is the whole segment: "x{a}" and "{a}.{b}" are invalid
    if (text.size() < 3 || text.back() != '}') {
        return false;
    }

    std::string_view inner = text.substr(1, text.size() - 2);
    size_t colon = inner.find(':');
    std::string_view name = inner.substr(0, colon);
    SegmentKind kind = SegmentKind::Str;

    if (colon != std::string_view::npos
        && !converterKind(inner.substr(colon + 1), &kind)) {
        return false;
    }

    if (!isIdentifier(name)) {
        return false;
    }

    *seg = {kind, name};
    return true;
}

bool isUuid(std::string_view s)
{
    if (s.size() != 36) {
        return false;
    }

    for (size_t i = 0; i < s.size(); i++) {
        bool dash = (i == 8 || i == 13 || i == 18 || i == 23);
        if (dash ? s[i] != '-' : !isLowerHex(s[i])) {
            return false;
        }
    }

    return true;
}

size_t skipDigits(std::string_view s, size_t i)
{
    while (i < s.size() && isDigit(s[i])) {
        i++;
    }
    return i;
}

bool isFloat(std::string_view s)
{
    size_t i = skipDigits(s, 0);

    if (i == 0) {
        return false;
    }

    if (i == s.size()) {
        return true;
    }

    if (s[i] != '.') {
        return false;
    }

    size_t j = skipDigits(s, i + 1);
    return j > i + 1 && j == s.size();
}

} // namespace

bool compileTemplate(std::string_view path, Template &out, std::string *reason)
{
    auto fail = [reason](const char *why) {
        if (reason != nullptr) {
            *reason = why;
        }
        return false;
    };

    out.segments.clear();

    if (path.empty() || path.front() != '/') {
        return fail("does not start with \"/\"");
    }

    // one allocation for most templates rather than one per doubling: a
    // table's build compiles every template, 1,000,000 in a large one
    out.segments.reserve(kTypicalSegments);

    std::string_view rest = path.substr(1);
    size_t pathAt = std::string_view::npos; // the {x:path} segment's index

    for (;;) {
        size_t slash = rest.find('/');
        Segment seg;

        if (!compileSegment(rest.substr(0, slash), &seg)) {
            return fail("invalid segment");
        }

        if (seg.kind == SegmentKind::Path) {
            if (pathAt != std::string_view::npos) {
                return fail("more than one {:path} segment");
            }
            pathAt = out.segments.size();
        }

        out.segments.push_back(seg);

        if (slash == std::string_view::npos) {
            break;
        }

        rest = rest.substr(slash + 1);
    }

    static_assert(kMaxSegmentsAfterPath == 31, "the reason below says 31");
    if (pathAt != std::string_view::npos
        && out.segments.size() - pathAt - 1 > kMaxSegmentsAfterPath) {
        return fail("more than 31 segments after {:path}");
    }

    return true;
}

std::string templateShape(const Template &tpl)
{
    static const char *const kinds[] = {
        "", "{str}", "{int}", "{float}", "{uuid}", "{path}",
    };
    std::string shape;

    for (const Segment &seg : tpl.segments) {
        shape += '/';
        if (seg.kind == SegmentKind::Literal) {
            shape += seg.text; // literals never contain braces
        } else {
            shape += kinds[static_cast<int>(seg.kind)];
        }
    }

    return shape;
}

bool segmentMatches(SegmentKind kind, std::string_view segment)
{
    switch (kind) {
    case SegmentKind::Str:
        return !segment.empty();
    case SegmentKind::Int:
        return !segment.empty() && skipDigits(segment, 0) == segment.size();
    case SegmentKind::Float:
        return isFloat(segment);
    case SegmentKind::Uuid:
        return isUuid(segment);
    default:
        return false;
    }
}

bool templateMatches(const Template &tpl, std::string_view path)
{
    if (path.empty() || path.front() != '/') {
        return false;
    }

    std::vector<std::string_view> parts;
    std::string_view rest = path.substr(1);
    for (;;) {
        size_t slash = rest.find('/');
        parts.push_back(rest.substr(0, slash));
        if (slash == std::string_view::npos) {
            break;
        }
        rest = rest.substr(slash + 1);
    }

    const std::vector<Segment> &segs = tpl.segments;
    size_t pathAt = segs.size();
    for (size_t i = 0; i < segs.size(); i++) {
        if (segs[i].kind == SegmentKind::Path) {
            pathAt = i;
        }
    }

    size_t after = pathAt < segs.size() ? segs.size() - pathAt - 1 : 0;
    if (pathAt < segs.size() ? parts.size() < segs.size()
                             : parts.size() != segs.size()) {
        return false;
    }

    auto one = [](const Segment &seg, std::string_view part) {
        return seg.kind == SegmentKind::Literal
                   ? seg.text == part
                   : segmentMatches(seg.kind, part);
    };

    for (size_t i = 0; i < segs.size() && i < pathAt; i++) {
        if (!one(segs[i], parts[i])) {
            return false;
        }
    }
    for (size_t i = 0; i < after; i++) {
        if (!one(segs[segs.size() - 1 - i], parts[parts.size() - 1 - i])) {
            return false;
        }
    }
    return true;
}

namespace {

// The segment of `text` (no leading '/') up to the next '/', and the rest.
std::string_view nextPart(std::string_view &text)
{
    size_t slash = text.find('/');
    std::string_view part = text.substr(0, slash);
    text = slash == std::string_view::npos ? std::string_view()
                                           : text.substr(slash + 1);
    return part;
}

} // namespace

bool templateTextMatches(std::string_view tpl, std::string_view path)
{
    if (tpl.empty() || tpl.front() != '/' || path.empty()
        || path.front() != '/') {
        return false;
    }

    size_t segments = 1 + std::count(tpl.begin() + 1, tpl.end(), '/');
    size_t parts = 1 + std::count(path.begin() + 1, path.end(), '/');
    size_t pathAt = segments; // none
    Segment seg;

    std::string_view t = tpl.substr(1);
    for (size_t i = 0; i < segments; i++) {
        if (!compileSegment(nextPart(t), &seg)) {
            return false;
        }
        if (seg.kind == SegmentKind::Path) {
            if (pathAt != segments) {
                return false;
            }
            pathAt = i;
        }
    }

    if (pathAt == segments ? parts != segments : parts < segments) {
        return false;
    }

    t = tpl.substr(1);
    std::string_view p = path.substr(1);
    for (size_t i = 0; i < segments; i++) {
        compileSegment(nextPart(t), &seg);
        if (i == pathAt) {
            // one part or more: all but those of the segments after it
            for (size_t n = parts - segments + 1; n > 0; n--) {
                nextPart(p);
            }
            continue;
        }
        std::string_view part = nextPart(p);
        if (seg.kind == SegmentKind::Literal ? seg.text != part
                                             : !segmentMatches(seg.kind, part)) {
            return false;
        }
    }

    return true;
}

} // namespace discovery
