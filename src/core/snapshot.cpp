// snapshot.cpp: the binary encodings of snapshots and route sets.
#include "snapshot.hpp"

#include "controls.hpp"
#include "error.hpp"
#include "methods.hpp"
#include "route_template.hpp"

#include <algorithm>
#include <cstring>
#include <tuple>
#include <string_view>

/*
 * Both blobs share one 32-byte header, little-endian:
 *
 *   0  magic "NGXD" (snapshot) or "NGXR" (route set)
 *   4  u32 format version (5; 2 to 4 are read too)
 *   8  u64 total length, header included
 *  16  u64 generation (0 for route sets)
 *  24  u32 checksum of the whole blob with this field read as zero:
 *          wordChecksum() from version 4, FNV-1a before
 *  28  u32 of a snapshot: the rules of checkTable() its findings were made
 *          by (Snapshot::checkedBy), 0 if unknown; of a route set, zero
 *
 * The body is varints and length-prefixed strings:
 *
 *   snapshot:  flags extension-methods{name}
 *              services{name url upstream state routeset}
 *              conflicts{methods winner route loser route}
 *              overlaps{methods service route shadowed-service route}
 *              rejections{service route reason}
 *              controls u32(length of controls)      (version 5)
 *   routeset:  version
 *              routes{path methods extension-methods{name} flags name
 *                     tags{tag}}
 *              rejected{path methods extension-methods{name} reason}
 *              omitted
 *
 * where {x} is a varint count followed by that many x.  Version 2 had no
 * extension-methods lists; version 3 differs from 4 only by its checksum,
 * FNV-1a, which reads a byte at a time: a fifth of a restart's time at
 * 1,000,000 routes.  Version 5 adds the controls: the management API's
 * bytes (controls.hpp), followed by their length so that they can be read
 * from the end without decoding the rest.  A route's flags: auth_required
 * 1, websocket 2, gRPC 4, and for a gRPC route client streaming 8, server
 * streaming 16.
 */

namespace discovery {

namespace {

constexpr size_t kHeaderSize = 32;
constexpr size_t kChecksumOffset = 24;
constexpr size_t kCheckedByOffset = 28;
constexpr uint32_t kFormatVersion = 5;
constexpr uint32_t kLastFnvFormatVersion = 3;
constexpr uint32_t kWordChecksumFormatVersion = 4; // the first
constexpr uint32_t kControlsFormatVersion = 5;      // the first
constexpr uint32_t kOldestFormatVersion = 2;
constexpr char kSnapshotMagic[] = "NGXD";
constexpr char kRouteSetMagic[] = "NGXR";

constexpr uint8_t kFlagAuth = 1;
constexpr uint8_t kFlagWebsocket = 2;
constexpr uint8_t kFlagGrpc = 4;
constexpr uint8_t kFlagClientStreaming = 8; // of a gRPC route
constexpr uint8_t kFlagServerStreaming = 16;
constexpr uint8_t kRouteFlags = kFlagAuth | kFlagWebsocket | kFlagGrpc
                                | kFlagClientStreaming | kFlagServerStreaming;

constexpr uint8_t kFlagDenyOverlaps = 1; // of a snapshot

constexpr size_t kMaxReasonLen = 1024;

// Bounds for strings the route limits do not cover.
constexpr size_t kMaxServiceStringLen = 65536;
constexpr size_t kMaxServices = 65536;

uint32_t fnv1a(uint32_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

uint32_t fnvChecksum(const unsigned char *p, size_t len)
{
    static const unsigned char zero[4] = {0, 0, 0, 0};
    uint32_t h = 2166136261u;

    h = fnv1a(h, p, kChecksumOffset);
    h = fnv1a(h, zero, sizeof(zero));
    return fnv1a(h, p + kHeaderSize - 4, len - (kHeaderSize - 4));
}

constexpr uint64_t kPrime1 = 0x9e3779b185ebca87ull;
constexpr uint64_t kPrime2 = 0xc2b2ae3d27d4eb4full;
constexpr uint64_t kPrime3 = 0x165667b19e3779f9ull;

uint64_t rotl(uint64_t v, unsigned n)
{
    return (v << n) | (v >> (64 - n));
}

uint64_t word(const unsigned char *p)
{
    uint64_t v;

    std::memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

// One word into one lane: the rotation carries high bits down, which a
// multiplication alone never does.
uint64_t mixWord(uint64_t lane, uint64_t w)
{
    return rotl(lane + w * kPrime2, 31) * kPrime1;
}

/*
 * The checksum of version 4: 8-byte words into four independent lanes, so
 * that a core takes several words per cycle, the way xxHash does.  It
 * finds damage, not tampering: the decoder checks every byte it reads.
 */
// The four lanes' words from q to end, then the mixing of the result.
uint64_t wordLanes(uint64_t a, uint64_t b, uint64_t c, uint64_t d,
                   const unsigned char *q, const unsigned char *end,
                   size_t len)
{
    for (; end - q >= 32; q += 32) {
        a = mixWord(a, word(q));
        b = mixWord(b, word(q + 8));
        c = mixWord(c, word(q + 16));
        d = mixWord(d, word(q + 24));
    }

    uint64_t h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18) + len;

    for (; end - q >= 8; q += 8) {
        h = rotl(h ^ mixWord(0, word(q)), 27) * kPrime1 + kPrime3;
    }
    for (; q < end; q++) {
        h = rotl(h ^ (*q * kPrime3), 11) * kPrime1;
    }

    h ^= h >> 33;
    h *= kPrime2;
    h ^= h >> 29;
    h *= kPrime3;
    h ^= h >> 32;
    return h;
}

uint32_t wordChecksum(const unsigned char *p, size_t len)
{
    unsigned char head[kHeaderSize];

    std::memcpy(head, p, kHeaderSize);
    std::memset(head + kChecksumOffset, 0, 4);

    return static_cast<uint32_t>(
        wordLanes(mixWord(kPrime1 + kPrime2, word(head)),
                  mixWord(kPrime2, word(head + 8)), mixWord(0, word(head + 16)),
                  mixWord(0 - kPrime1, word(head + 24)), p + kHeaderSize,
                  p + len, len));
}

// The checksum a blob of this format version carries.
uint32_t blobChecksum(const unsigned char *p, size_t len, uint32_t version)
{
    return version <= kLastFnvFormatVersion ? fnvChecksum(p, len)
                                            : wordChecksum(p, len);
}

uint64_t loadLe(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v |= static_cast<uint64_t>(p[i]) << (8 * i);
    }
    return v;
}

void storeLe(unsigned char *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = static_cast<unsigned char>(v >> (8 * i));
    }
}

/*
 * Appends to a buffer that grows by doubling, written through a pointer:
 * a table is a few bytes per field and hundreds of thousands of fields,
 * and a capacity check per byte was most of encoding it.
 */
class Writer {
public:
    Writer() : bytes_(256, 0), size_(kHeaderSize) {}

    void varint(uint64_t v)
    {
        unsigned char *p = room(10);
        size_t n = 0;
        while (v >= 0x80) {
            p[n++] = static_cast<unsigned char>(v | 0x80);
            v >>= 7;
        }
        p[n++] = static_cast<unsigned char>(v);
        size_ -= 10 - n;
    }

    void byte(uint8_t v) { *room(1) = v; }

    void raw(const Bytes &b)
    {
        if (!b.empty()) {
            std::memcpy(room(b.size()), b.data(), b.size());
        }
    }

    void le32(uint32_t v) { storeLe(room(4), v, 4); }

    void string(std::string_view s)
    {
        varint(s.size());
        if (!s.empty()) {
            std::memcpy(room(s.size()), s.data(), s.size());
        }
    }

    // Fills in the header and hands the blob over.
    Bytes seal(const char *magic, uint64_t generation, uint32_t checkedBy = 0)
    {
        bytes_.resize(size_);

        unsigned char *h = bytes_.data();

        std::memcpy(h, magic, 4);
        storeLe(h + 4, kFormatVersion, 4);
        storeLe(h + 8, bytes_.size(), 8);
        storeLe(h + 16, generation, 8);
        storeLe(h + kCheckedByOffset, checkedBy, 4);
        storeLe(h + kChecksumOffset,
                blobChecksum(h, bytes_.size(), kFormatVersion), 4);
        return std::move(bytes_);
    }

private:
    // n more bytes at the end, to be written
    unsigned char *room(size_t n)
    {
        if (n > bytes_.size() - size_) {
            bytes_.resize(std::max(bytes_.size() * 2, size_ + n));
        }
        unsigned char *p = bytes_.data() + size_;
        size_ += n;
        return p;
    }

    Bytes bytes_;  // written up to size_
    size_t size_;
};

// Every read is bounds-checked; the first violation throws.
class Reader {
public:
    Reader(const unsigned char *p, const unsigned char *end, const char *what,
           uint32_t version, Provenance from)
        : version(version), from(from), p_(p), end_(end), what_(what)
    {
    }

    const uint32_t version; // of the blob's format
    const Provenance from;

    [[noreturn]] void fail(const char *why) const
    {
        throw Error(std::string("corrupt ") + what_ + ": " + why);
    }

    uint64_t varint()
    {
        uint64_t v = 0;

        for (unsigned shift = 0; shift < 64; shift += 7) {
            if (p_ == end_) {
                fail("truncated");
            }
            unsigned char b = *p_++;
            if (shift == 63 && b > 1) {
                fail("varint overflow");
            }
            v |= static_cast<uint64_t>(b & 0x7f) << shift;
            if (!(b & 0x80)) {
                return v;
            }
        }

        fail("varint overflow");
    }

    uint64_t bounded(uint64_t max, const char *why)
    {
        uint64_t v = varint();
        if (v > max) {
            fail(why);
        }
        return v;
    }

    // A count of items of at least `minSize` bytes each: a lying count
    // cannot make us reserve more than the blob could hold.
    size_t count(size_t max, size_t minSize, const char *why)
    {
        uint64_t n = bounded(max, why);
        if (n > remaining() / minSize) {
            fail("truncated");
        }
        return static_cast<size_t>(n);
    }

    uint8_t byte()
    {
        if (p_ == end_) {
            fail("truncated");
        }
        return *p_++;
    }

    std::string string(size_t max, const char *why)
    {
        uint64_t n = bounded(max, why);
        if (n > remaining()) {
            fail("truncated");
        }
        std::string s(reinterpret_cast<const char *>(p_),
                      static_cast<size_t>(n));
        p_ += n;
        return s;
    }

    size_t remaining() const { return static_cast<size_t>(end_ - p_); }

    Bytes raw(size_t n)
    {
        if (n > remaining()) {
            fail("truncated");
        }
        Bytes b(p_, p_ + n);
        p_ += n;
        return b;
    }

    void expectEnd() const
    {
        if (p_ != end_) {
            fail("trailing bytes");
        }
    }

private:
    const unsigned char *p_;
    const unsigned char *end_;
    const char *what_;
};

// Validates the header and returns the generation.  *checkedBy, if given
// (a snapshot), receives that field, which must be zero otherwise.
uint64_t openBlob(const unsigned char *data, size_t len, const char *magic,
                  const char *what, uint32_t *version = nullptr,
                  uint32_t *checkedBy = nullptr)
{
    auto fail = [what](const char *why) {
        throw Error(std::string("corrupt ") + what + ": " + why);
    };

    if (data == nullptr || len < kHeaderSize) {
        fail("too short");
    }
    if (std::memcmp(data, magic, 4) != 0) {
        fail("bad magic");
    }
    auto format = static_cast<uint32_t>(loadLe(data + 4, 4));
    if (format < kOldestFormatVersion || format > kFormatVersion) {
        fail("unsupported format version");
    }
    if (version != nullptr) {
        *version = format;
    }
    if (loadLe(data + 8, 8) != len) {
        fail("length mismatch");
    }
    if (checkedBy != nullptr) {
        *checkedBy = static_cast<uint32_t>(loadLe(data + kCheckedByOffset, 4));
    } else if (loadLe(data + kCheckedByOffset, 4) != 0) {
        fail("bad reserved field");
    }
    if (loadLe(data + kChecksumOffset, 4) != blobChecksum(data, len, format)) {
        fail("checksum mismatch");
    }

    return loadLe(data + 16, 8);
}

void writeMethodNames(Writer &w, const MethodNames &names)
{
    w.varint(names.size());
    for (const std::string &name : names) {
        w.string(name);
    }
}

// Extension method tokens, uppercase and unique; a route's are sorted.
MethodNames readMethodNames(Reader &r, size_t max, bool sorted)
{
    MethodNames names;

    if (r.version < 3) {
        return names;
    }

    size_t n = r.count(max, 2, "too many extension methods");
    names.reserve(n);
    for (size_t i = 0; i < n; i++) {
        std::string name = r.string(kMaxMethodLen, "method too long");

        if (!isMethodToken(name) || methodBit(name) != 0
            || std::any_of(name.begin(), name.end(),
                           [](char c) { return c >= 'a' && c <= 'z'; })) {
            r.fail("invalid extension method");
        }
        if (sorted ? !names.empty() && !(names.back() < name)
                   : std::find(names.begin(), names.end(), name)
                         != names.end()) {
            r.fail("extension methods out of order");
        }
        names.push_back(std::move(name));
    }

    return names;
}

void writeRouteSet(Writer &w, const RouteSet &set)
{
    w.string(set.version);
    w.varint(set.routes.size());

    for (const Route &r : set.routes) {
        w.string(r.path);
        w.varint(r.methods);
        writeMethodNames(w, r.extensionMethods);
        auto streaming = static_cast<uint8_t>(r.streaming);
        w.byte((r.authRequired ? kFlagAuth : 0)
               | (r.websocket ? kFlagWebsocket : 0)
               | (r.protocol == Protocol::Grpc ? kFlagGrpc : 0)
               | ((streaming & 1) ? kFlagClientStreaming : 0)
               | ((streaming & 2) ? kFlagServerStreaming : 0));
        w.string(r.name);
        w.varint(r.tags.size());
        for (const std::string &tag : r.tags) {
            w.string(tag);
        }
    }

    w.varint(set.rejected.size());
    for (const RejectedRoute &r : set.rejected) {
        w.string(r.path);
        w.varint(r.methods);
        writeMethodNames(w, r.extensionMethods);
        w.string(r.reason);
    }
    w.varint(set.rejectedOmitted);
}

// tpl: the caller's, so that its segments are allocated once per route set
Route readRoute(Reader &r, Template &tpl)
{
    Route route;

    route.path = r.string(kMaxPathLen, "path too long");
    if (r.from == Provenance::File && !compileTemplate(route.path, tpl)) {
        r.fail("invalid template");
    }

    route.methods =
        static_cast<uint32_t>(r.bounded(kAllMethods, "invalid methods"));
    route.extensionMethods =
        readMethodNames(r, kMaxRouteExtensionMethods, true);
    if (route.methods == 0 && route.extensionMethods.empty()) {
        r.fail("route without methods");
    }

    uint8_t flags = r.byte();
    if ((flags & ~kRouteFlags)
        || (!(flags & kFlagGrpc)
            && (flags & (kFlagClientStreaming | kFlagServerStreaming)))) {
        r.fail("invalid route flags");
    }
    route.authRequired = flags & kFlagAuth;
    route.websocket = flags & kFlagWebsocket;
    route.protocol = (flags & kFlagGrpc) ? Protocol::Grpc : Protocol::Http;
    route.streaming =
        static_cast<Streaming>(((flags & kFlagClientStreaming) ? 1 : 0)
                               | ((flags & kFlagServerStreaming) ? 2 : 0));

    route.name = r.string(kMaxNameLen, "name too long");

    size_t tags = r.count(kMaxTags, 1, "too many tags");
    route.tags.reserve(tags);
    for (size_t i = 0; i < tags; i++) {
        route.tags.push_back(r.string(kMaxTagLen, "tag too long"));
    }

    return route;
}

RouteSet readRouteSet(Reader &r)
{
    RouteSet set;

    set.version = r.string(kMaxVersionLen, "version too long");

    // a route takes at least 5 bytes: path, methods, flags, name, tags
    size_t n = r.count(kMaxRoutes, 5, "too many routes");
    set.routes.reserve(n);
    Template tpl;
    for (size_t i = 0; i < n; i++) {
        set.routes.push_back(readRoute(r, tpl));
    }

    // a rejected route takes at least 3 bytes
    n = r.count(kMaxRejected, 3, "too many rejected routes");
    set.rejected.reserve(n);
    for (size_t i = 0; i < n; i++) {
        RejectedRoute rejected;
        rejected.path = r.string(kMaxPathLen, "path too long");
        rejected.methods =
            static_cast<uint32_t>(r.bounded(kAllMethods, "invalid methods"));
        rejected.extensionMethods =
            readMethodNames(r, kMaxRouteExtensionMethods, true);
        rejected.reason = r.string(kMaxReasonLen, "reason too long");
        set.rejected.push_back(std::move(rejected));
    }
    set.rejectedOmitted = r.bounded(SIZE_MAX, "invalid count");

    return set;
}

Service readService(Reader &r)
{
    Service s;

    s.name = r.string(kMaxServiceStringLen, "service name too long");
    s.url = r.string(kMaxServiceStringLen, "service url too long");
    s.upstream = r.string(kMaxServiceStringLen, "upstream too long");
    s.state = static_cast<ServiceState>(r.bounded(
        static_cast<uint64_t>(ServiceState::Unhealthy), "invalid state"));
    s.routeSet = readRouteSet(r);
    return s;
}

// A method mask of a finding: the nine and the table's extension methods.
uint32_t readMask(Reader &r, const Snapshot &snap)
{
    uint64_t all = (uint64_t(1) << (kMethodCount
                                    + snap.extensionMethods.size()))
                   - 1;
    return static_cast<uint32_t>(r.bounded(all, "bad methods"));
}

uint32_t readIndex(Reader &r, size_t size, const char *why)
{
    uint64_t v = r.varint();
    if (v >= size) {
        r.fail(why);
    }
    return static_cast<uint32_t>(v);
}

Conflict readConflict(Reader &r, const Snapshot &snap)
{
    const std::vector<Service> &services = snap.services;
    Conflict c;

    c.methods = readMask(r, snap);
    c.winnerService = readIndex(r, services.size(), "bad conflict service");
    c.winnerRoute =
        readIndex(r, services[c.winnerService].routeSet.routes.size(),
                  "bad conflict route");
    c.loserService = readIndex(r, services.size(), "bad conflict service");
    c.loserRoute = readIndex(r, services[c.loserService].routeSet.routes.size(),
                             "bad conflict route");

    if (c.methods == 0 || c.winnerService >= c.loserService) {
        r.fail("invalid conflict");
    }

    return c;
}

Overlap readOverlap(Reader &r, const Snapshot &snap)
{
    const std::vector<Service> &services = snap.services;
    Overlap o;

    o.methods = readMask(r, snap);
    o.service = readIndex(r, services.size(), "bad overlap service");
    o.route = readIndex(r, services[o.service].routeSet.routes.size(),
                        "bad overlap route");
    o.shadowedService = readIndex(r, services.size(), "bad overlap service");
    o.shadowedRoute =
        readIndex(r, services[o.shadowedService].routeSet.routes.size(),
                  "bad overlap route");

    if (o.methods == 0 || o.service == o.shadowedService) {
        r.fail("invalid overlap");
    }

    return o;
}

Rejection readRejection(Reader &r, const std::vector<Service> &services)
{
    Rejection j;

    j.service = readIndex(r, services.size(), "bad rejection service");
    j.route = readIndex(r, services[j.service].routeSet.routes.size(),
                        "bad rejection route");
    j.reason = r.string(kMaxReasonLen, "reason too long");
    return j;
}

} // namespace

bool operator==(const Route &a, const Route &b)
{
    return a.path == b.path && a.methods == b.methods
           && a.extensionMethods == b.extensionMethods
           && a.authRequired == b.authRequired && a.websocket == b.websocket
           && a.protocol == b.protocol && a.streaming == b.streaming
           && a.name == b.name && a.tags == b.tags;
}

bool operator==(const RejectedRoute &a, const RejectedRoute &b)
{
    return a.path == b.path && a.methods == b.methods
           && a.extensionMethods == b.extensionMethods && a.reason == b.reason;
}

bool operator==(const RouteSet &a, const RouteSet &b)
{
    return a.version == b.version && a.routes == b.routes
           && a.rejected == b.rejected
           && a.rejectedOmitted == b.rejectedOmitted;
}

uint32_t methodMask(const Route &route, const MethodNames &table)
{
    uint32_t mask = route.methods;

    for (const std::string &name : route.extensionMethods) {
        mask |= methodBit(name, table);
    }
    return mask;
}

Bytes encodeRouteSet(const RouteSet &set)
{
    Writer w;

    writeRouteSet(w, set);
    return w.seal(kRouteSetMagic, 0);
}

RouteSet decodeRouteSet(const unsigned char *data, size_t len, Provenance from)
{
    uint32_t version;
    openBlob(data, len, kRouteSetMagic, "route set", &version);

    Reader r(data + kHeaderSize, data + len, "route set", version, from);
    RouteSet set = readRouteSet(r);

    r.expectEnd();
    return set;
}

Bytes encodeSnapshot(const Snapshot &snap)
{
    Writer w;

    w.byte(snap.denyOverlaps ? kFlagDenyOverlaps : 0);
    writeMethodNames(w, snap.extensionMethods);
    w.varint(snap.services.size());
    for (const Service &s : snap.services) {
        w.string(s.name);
        w.string(s.url);
        w.string(s.upstream);
        w.varint(static_cast<uint64_t>(s.state));
        writeRouteSet(w, s.routeSet);
    }

    w.varint(snap.conflicts.size());
    for (const Conflict &c : snap.conflicts) {
        w.varint(c.methods);
        w.varint(c.winnerService);
        w.varint(c.winnerRoute);
        w.varint(c.loserService);
        w.varint(c.loserRoute);
    }

    w.varint(snap.overlaps.size());
    for (const Overlap &o : snap.overlaps) {
        w.varint(o.methods);
        w.varint(o.service);
        w.varint(o.route);
        w.varint(o.shadowedService);
        w.varint(o.shadowedRoute);
    }

    w.varint(snap.rejections.size());
    for (const Rejection &j : snap.rejections) {
        w.varint(j.service);
        w.varint(j.route);
        w.string(j.reason);
    }

    w.raw(snap.controls);
    w.le32(static_cast<uint32_t>(snap.controls.size()));

    return w.seal(kSnapshotMagic, snap.generation, snap.checkedBy);
}

Bytes resealSnapshot(const unsigned char *data, size_t len, uint64_t generation)
{
    checkSnapshot(data, len);

    Bytes bytes(data, data + len);
    resealSnapshotInPlace(bytes.data(), bytes.size(), generation);
    return bytes;
}

void resealSnapshotInPlace(unsigned char *data, size_t len,
                           uint64_t generation)
{
    checkSnapshot(data, len);

    // format 3 is 4 with the older checksum; format 2 stays as it is
    auto format = static_cast<uint32_t>(loadLe(data + 4, 4));
    if (format == kLastFnvFormatVersion) {
        format = kWordChecksumFormatVersion;
    }
    storeLe(data + 4, format, 4);
    storeLe(data + 16, generation, 8);
    storeLe(data + kChecksumOffset, blobChecksum(data, len, format), 4);
}

Snapshot decodeSnapshot(const unsigned char *data, size_t len, Provenance from)
{
    Snapshot snap;

    uint32_t version;
    snap.generation = openBlob(data, len, kSnapshotMagic, "snapshot", &version,
                               &snap.checkedBy);

    Reader r(data + kHeaderSize, data + len, "snapshot", version, from);

    uint8_t flags = r.byte();
    if (flags & ~kFlagDenyOverlaps) {
        r.fail("invalid snapshot flags");
    }
    snap.denyOverlaps = flags & kFlagDenyOverlaps;
    snap.extensionMethods = readMethodNames(r, kMaxExtensionMethods, false);

    // a service takes at least 7 bytes, a conflict or an overlap 5
    size_t services = r.count(kMaxServices, 7, "too many services");
    snap.services.reserve(services);
    for (size_t i = 0; i < services; i++) {
        snap.services.push_back(readService(r));
    }

    size_t conflicts = r.count(SIZE_MAX, 5, "too many conflicts");
    snap.conflicts.reserve(conflicts);
    for (size_t i = 0; i < conflicts; i++) {
        snap.conflicts.push_back(readConflict(r, snap));
    }

    size_t overlaps = r.count(SIZE_MAX, 5, "too many overlaps");
    snap.overlaps.reserve(overlaps);
    for (size_t i = 0; i < overlaps; i++) {
        snap.overlaps.push_back(readOverlap(r, snap));
    }

    // a rejection takes at least 3 bytes
    size_t rejections = r.count(SIZE_MAX, 3, "too many rejections");
    snap.rejections.reserve(rejections);
    for (size_t i = 0; i < rejections; i++) {
        snap.rejections.push_back(readRejection(r, snap.services));

        // the router walks them alongside the routes
        if (i > 0 && !(std::tie(snap.rejections[i - 1].service,
                                snap.rejections[i - 1].route)
                       < std::tie(snap.rejections[i].service,
                                  snap.rejections[i].route))) {
            r.fail("rejections out of order");
        }
    }

    if (r.version >= kControlsFormatVersion) {
        if (r.remaining() < 4) {
            r.fail("truncated");
        }
        snap.controls = r.raw(r.remaining() - 4);
        Bytes n = r.raw(4);
        if (loadLe(n.data(), 4) != snap.controls.size()) {
            r.fail("bad controls length");
        }
        try {
            (void) decodeControls(snap.controls.data(), snap.controls.size());
        } catch (const Error &e) {
            r.fail(e.what());
        }
    }

    r.expectEnd();
    return snap;
}

std::pair<const unsigned char *, size_t>
snapshotControls(const unsigned char *data, size_t len)
{
    if (len < kHeaderSize + 4
        || loadLe(data + 4, 4) < kControlsFormatVersion) {
        return {nullptr, 0};
    }
    auto n = static_cast<size_t>(loadLe(data + len - 4, 4));
    if (n > len - kHeaderSize - 4) {
        throw Error("corrupt snapshot: bad controls length");
    }
    return {data + len - 4 - n, n};
}

Bytes replaceControls(const unsigned char *data, size_t len,
                      const Bytes &controls, uint64_t generation)
{
    uint32_t checkedBy;
    uint32_t version;

    openBlob(data, len, kSnapshotMagic, "snapshot", &version, &checkedBy);

    if (version < kControlsFormatVersion) {
        Snapshot snap = decodeSnapshot(data, len);
        snap.controls = controls;
        snap.generation = generation;
        return encodeSnapshot(snap);
    }

    auto old = snapshotControls(data, len);
    size_t keep = static_cast<size_t>(old.first - data);
    Bytes bytes(data, data + keep);

    bytes.insert(bytes.end(), controls.begin(), controls.end());
    for (size_t i = 0; i < 4; i++) {
        bytes.push_back(static_cast<unsigned char>(controls.size() >> (8 * i)));
    }
    storeLe(bytes.data() + 8, bytes.size(), 8);
    storeLe(bytes.data() + 16, generation, 8);
    storeLe(bytes.data() + kChecksumOffset,
            blobChecksum(bytes.data(), bytes.size(), version), 4);
    return bytes;
}

uint64_t checkSnapshot(const unsigned char *data, size_t len)
{
    uint32_t checkedBy;

    return openBlob(data, len, kSnapshotMagic, "snapshot", nullptr,
                    &checkedBy);
}

SnapshotHead snapshotHead(const unsigned char *data, size_t len)
{
    SnapshotHead head;

    head.generation = openBlob(data, len, kSnapshotMagic, "snapshot", nullptr,
                               &head.checkedBy);
    head.checksum = static_cast<uint32_t>(loadLe(data + kChecksumOffset, 4));
    if (len == kHeaderSize) {
        throw Error("corrupt snapshot: truncated");
    }
    head.denyOverlaps = (data[kHeaderSize] & kFlagDenyOverlaps) != 0;
    return head;
}

uint64_t wordHash(const unsigned char *p, size_t len)
{
    return wordLanes(kPrime1 + kPrime2, kPrime2, 0, 0 - kPrime1, p, p + len,
                     len);
}

void sealBlob(unsigned char *data, size_t len)
{
    if (len < kHeaderSize) {
        return;
    }

    auto format = static_cast<uint32_t>(loadLe(data + 4, 4));
    storeLe(data + kChecksumOffset, blobChecksum(data, len, format), 4);
}

} // namespace discovery
