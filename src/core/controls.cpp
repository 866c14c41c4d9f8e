// controls.cpp: overrides and drained services, and their flat encoding.
#include "controls.hpp"

#include "error.hpp"
#include "route_template.hpp"

#include <algorithm>
#include <tuple>

/*
 * The encoding, kept in the zone and inside the snapshot (the state file):
 *
 *   "NGXC" u8 version (1) varint next-id
 *   overrides{id action path methods{name} service reason created expires}
 *   drained{name}
 *
 * strings are a varint length and the bytes, {x} a varint count and as
 * many x.  Times are unix seconds, as varints.
 */

namespace discovery {

namespace {

constexpr unsigned char kMagic[] = {'N', 'G', 'X', 'C'};
constexpr uint8_t kVersion = 1;

class ControlsWriter {
public:
    void varint(uint64_t v)
    {
        while (v >= 0x80) {
            bytes_.push_back(static_cast<unsigned char>(v | 0x80));
            v >>= 7;
        }
        bytes_.push_back(static_cast<unsigned char>(v));
    }

    void byte(uint8_t b) { bytes_.push_back(b); }

    void string(std::string_view s)
    {
        varint(s.size());
        bytes_.insert(bytes_.end(), s.begin(), s.end());
    }

    Bytes take() { return std::move(bytes_); }

private:
    Bytes bytes_;
};

class ControlsReader {
public:
    ControlsReader(const unsigned char *p, size_t len) : p_(p), end_(p + len) {}

    [[noreturn]] static void fail(const char *why)
    {
        throw Error(std::string("corrupt controls: ") + why);
    }

    uint8_t byte()
    {
        if (p_ == end_) {
            fail("truncated");
        }
        return *p_++;
    }

    uint64_t varint()
    {
        uint64_t v = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
            uint8_t b = byte();
            v |= static_cast<uint64_t>(b & 0x7f) << shift;
            if (!(b & 0x80)) {
                return v;
            }
        }
        fail("varint overflow");
    }

    size_t count(size_t max)
    {
        uint64_t n = varint();
        if (n > max || n > static_cast<size_t>(end_ - p_)) {
            fail("bad count");
        }
        return static_cast<size_t>(n);
    }

    std::string string(size_t max)
    {
        size_t n = count(max);
        std::string s(reinterpret_cast<const char *>(p_), n);
        p_ += n;
        return s;
    }

    bool atEnd() const { return p_ == end_; }

private:
    const unsigned char *p_;
    const unsigned char *end_;
};

} // namespace

bool operator==(const Override &a, const Override &b)
{
    return std::tie(a.id, a.action, a.path, a.methods, a.service, a.reason,
                    a.created, a.expires)
           == std::tie(b.id, b.action, b.path, b.methods, b.service, b.reason,
                       b.created, b.expires);
}

bool operator==(const Controls &a, const Controls &b)
{
    return a.nextId == b.nextId && a.overrides == b.overrides
           && a.drained == b.drained;
}

bool Controls::isDrained(std::string_view service) const
{
    return std::binary_search(drained.begin(), drained.end(), service);
}

void Controls::setDrained(std::string_view service, bool on)
{
    auto it = std::lower_bound(drained.begin(), drained.end(), service);
    bool there = it != drained.end() && *it == service;

    if (on && !there) {
        drained.insert(it, std::string(service));
    } else if (!on && there) {
        drained.erase(it);
    }
}

int64_t Controls::nextExpiry() const
{
    int64_t next = 0;
    for (const Override &o : overrides) {
        if (o.expires != 0 && (next == 0 || o.expires < next)) {
            next = o.expires;
        }
    }
    return next;
}

bool Controls::expire(int64_t now)
{
    size_t before = overrides.size();
    overrides.erase(std::remove_if(overrides.begin(), overrides.end(),
                                   [now](const Override &o) {
                                       return o.expires != 0
                                              && o.expires <= now;
                                   }),
                    overrides.end());
    return overrides.size() != before;
}

const char *actionName(OverrideAction action)
{
    switch (action) {
    case OverrideAction::Pin:
        return "pin";
    case OverrideAction::Add:
        return "add";
    default:
        return "disable";
    }
}

Bytes encodeControls(const Controls &c)
{
    if (c.overrides.empty() && c.drained.empty() && c.nextId == 1) {
        return Bytes();
    }

    ControlsWriter w;
    for (unsigned char m : kMagic) {
        w.byte(m);
    }
    w.byte(kVersion);
    w.varint(c.nextId);
    w.varint(c.overrides.size());
    for (const Override &o : c.overrides) {
        w.string(o.id);
        w.byte(static_cast<uint8_t>(o.action));
        w.string(o.path);
        w.varint(o.methods.size());
        for (const std::string &m : o.methods) {
            w.string(m);
        }
        w.string(o.service);
        w.string(o.reason);
        w.varint(static_cast<uint64_t>(o.created));
        w.varint(static_cast<uint64_t>(o.expires));
    }
    w.varint(c.drained.size());
    for (const std::string &name : c.drained) {
        w.string(name);
    }
    return w.take();
}

Controls decodeControls(const unsigned char *data, size_t len)
{
    Controls c;

    if (len == 0) {
        return c;
    }

    ControlsReader r(data, len);
    for (unsigned char m : kMagic) {
        if (r.byte() != m) {
            r.fail("bad magic");
        }
    }
    if (r.byte() != kVersion) {
        r.fail("unsupported version");
    }

    c.nextId = r.varint();
    size_t n = r.count(kMaxOverrides);
    c.overrides.reserve(n);
    for (size_t i = 0; i < n; i++) {
        Override o;
        o.id = r.string(64);
        uint8_t action = r.byte();
        if (action > static_cast<uint8_t>(OverrideAction::Add)) {
            r.fail("unknown action");
        }
        o.action = static_cast<OverrideAction>(action);
        o.path = r.string(kMaxPathLen);
        Template tpl;
        if (!compileTemplate(o.path, tpl)) {
            r.fail("invalid template");
        }
        size_t m = r.count(kMaxOverrideMethods);
        for (size_t j = 0; j < m; j++) {
            o.methods.push_back(r.string(kMaxMethodLen));
        }
        o.service = r.string(kMaxNameLen * 4);
        o.reason = r.string(kMaxReasonTextLen);
        o.created = static_cast<int64_t>(r.varint());
        o.expires = static_cast<int64_t>(r.varint());
        c.overrides.push_back(std::move(o));
    }

    size_t d = r.count(65536);
    for (size_t i = 0; i < d; i++) {
        c.drained.push_back(r.string(65536));
    }
    if (!std::is_sorted(c.drained.begin(), c.drained.end())) {
        r.fail("drained services out of order");
    }
    if (!r.atEnd()) {
        r.fail("trailing bytes");
    }
    return c;
}

bool overrideTakes(const Override &o, std::string_view method)
{
    for (const std::string &m : o.methods) {
        if (m == "*" || m == method) {
            return true;
        }
    }
    // HEAD is served by GET routes
    return method == "HEAD" && overrideTakes(o, "GET");
}

uint32_t overrideMask(const Override &o, const MethodNames &extension,
                      uint32_t all)
{
    uint32_t mask = 0;

    for (const std::string &m : o.methods) {
        if (m == "*") {
            return all;
        }
        mask |= methodBit(m, extension);
    }
    return mask;
}

} // namespace discovery
