// router.cpp: trie construction and the depth-first lookup.
#include "router.hpp"

#include "controls.hpp"
#include "error.hpp"
#include "methods.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <unordered_map>

namespace discovery {

namespace {

// Precedence order of the typed parameter slots.
constexpr SegmentKind kSlotKinds[] = {
    SegmentKind::Int, SegmentKind::Float, SegmentKind::Uuid,
    SegmentKind::Str, SegmentKind::Path,
};

uint64_t load64(const char *p)
{
    uint64_t v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

uint64_t load32(const char *p)
{
    uint32_t v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

/*
 * The first min(n, 16) bytes of p, zero-padded, in a few fixed-size loads
 * (possibly overlapping) rather than a call to memcpy: this runs once per
 * path segment of every lookup.
 */
void loadHead(const char *p, size_t n, uint64_t head[2])
{
    if (n >= 16) {
        head[0] = load64(p);
        head[1] = load64(p + 8);
    } else if (n > 8) {
        head[0] = load64(p);
        head[1] = load64(p + n - 8) >> (8 * (16 - n));
    } else if (n == 8) {
        head[0] = load64(p);
    } else if (n >= 4) {
        head[0] = load32(p) | (load32(p + n - 4) << (8 * (n - 4)));
    } else if (n > 0) {
        auto byte = [p](size_t i) {
            return static_cast<uint64_t>(static_cast<unsigned char>(p[i]))
                   << (8 * i);
        };
        head[0] = byte(0) | byte(n / 2) | byte(n - 1);
    }
}

// A request path "/segment/more" cut after its first segment.
struct Split {
    std::string_view segment;
    std::string_view after; // empty, or "/" and more
};

// `path` starts with '/'.  Plain pointers: this runs per segment and level.
Split splitSegment(std::string_view path)
{
    const char *begin = path.data() + 1;
    const char *end = path.data() + path.size();
    auto *slash =
        static_cast<const char *>(std::memchr(begin, '/', end - begin));

    if (slash == nullptr) {
        slash = end;
    }

    return {{begin, static_cast<size_t>(slash - begin)},
            {slash, static_cast<size_t>(end - slash)}};
}

uint64_t mix(uint64_t h, uint64_t v, uint64_t k)
{
    return (h ^ (h >> 32) ^ v) * k;
}

constexpr uint64_t kRootShape = 0x2545f4914f6cdd1dull;

// The parameter slot a lookup speculates on for a segment: the first in
// precedence order that takes it.  Never kPathSlot's, which the walk
// reaches only after the others.
template <size_t N>
size_t likelySlot(const SegmentKind (&kinds)[N], std::string_view segment)
{
    size_t slot = 0;

    while (slot + 2 < N && !segmentMatches(kinds[slot], segment)) {
        slot++;
    }
    return slot; // kStrSlot takes any segment but ""
}

} // namespace

// Inlined, as find() is: they run at each level of every lookup, where
// a call's saving and restoring of registers cost a tenth of the walk.
__attribute__((always_inline)) inline Router::Key
Router::Key::literal(uint32_t parent, uint64_t parentShape,
                     std::string_view text)
{
    Key key;
    const char *p = text.data();
    size_t n = text.size();

    key.text = text;
    key.parent = parent;
    key.length = static_cast<uint32_t>(n);
    loadHead(p, n, key.head);

    uint64_t h = mix(parentShape ^ n, key.head[0], 0x9e3779b97f4a7c15ull);
    h = mix(h, key.head[1], 0xff51afd7ed558ccdull);

    if (n > kHeadBytes) {
        size_t i = kHeadBytes;
        for (; i + 8 <= n; i += 8) {
            h = mix(h, load64(p + i), 0xc4ceb9fe1a85ec53ull);
        }
        if (i < n) {
            h = mix(h, load64(p + n - 8), 0xc4ceb9fe1a85ec53ull);
        }
    }

    key.shape = h ^ (h >> 29);
    return key;
}

Router::Key Router::Key::param(uint32_t parent, uint64_t parentShape,
                               size_t slot)
{
    Key key;
    uint64_t h = mix(parentShape, slot + 1, 0xd6e8feb86659fd93ull);

    key.parent = parent;
    key.length = kParamEdge + static_cast<uint32_t>(slot);
    key.shape = h ^ (h >> 29);
    return key;
}

/*
 * The trie as routes are added, with plain ids in creation order (a parent
 * before its children); freeze() then lays it out for lookups.
 */
struct Router::Draft {
    struct Node {
        uint32_t parent = kNone;
        uint64_t shape = kRootShape;
        std::string_view text; // of a literal edge from the parent
        bool literal = false;
        uint8_t slot = 0; // of a parameter edge from the parent
        uint32_t literals = 0;
        uint32_t params[kSlotCount] = {kNone, kNone, kNone, kNone, kNone};
        uint32_t firstEntry = 0;
        uint32_t entryCount = 0;
        uint32_t suffixDepths = 0; // of a {x:path} node, as Router::Node's
    };

    // The literal children, by Key: open addressing, at most half full.
    struct Slot {
        uint32_t hash = 0;
        uint32_t id = kNone;
    };

    Draft() : nodes(1), slots(64) {} // the root: the empty prefix

    void add(const Route &route, uint32_t service, uint32_t methods);
    void addOverride(const Snapshot &snapshot, const Override &o);
    uint32_t child(uint32_t node, const Segment &seg);
    uint32_t findLiteral(const Key &key) const;
    void insertLiteral(uint32_t hash, uint32_t id);
    void placeEntries(std::vector<Entry> &entries);

    std::vector<Node> nodes;
    std::vector<Slot> slots;
    size_t literalCount = 0;
    std::vector<std::pair<uint32_t, Entry>> pending;
    // entries of disabling and pinning overrides, also in pending for
    // their shape's terminal (and its Allow header)
    std::vector<Entry> disables;
    std::vector<Entry> pins;
    std::string strings; // the image's: route templates, then the rest
    // the routes of overrides, which nodes' texts view as they do the
    // snapshot's
    std::deque<Route> overrideRoutes;
};

void Router::Draft::add(const Route &route, uint32_t service, uint32_t methods)
{
    Template tpl;

    if (!compileTemplate(route.path, tpl)) {
        return; // the decoder has checked it already
    }

    uint32_t node = 0;
    for (size_t i = 0; i < tpl.segments.size(); i++) {
        node = child(node, tpl.segments[i]);
        if (tpl.segments[i].kind == SegmentKind::Path) {
            nodes[node].suffixDepths |= 1u << (tpl.segments.size() - i - 1);
        }
    }

    Text text{static_cast<uint32_t>(strings.size()),
              static_cast<uint32_t>(route.path.size())};
    strings.append(route.path);
    pending.push_back({node, Entry{text, service, route.authRequired,
                                   route.protocol == Protocol::Grpc,
                                   static_cast<uint32_t>(route.streaming),
                                   methods, methods}});
}

/*
 * A disabling override's entry belongs to the service after the roster's;
 * a pinned or added route to its service, with the flags and, for "*",
 * the methods of the service's own route of that shape if it has one.
 */
void Router::Draft::addOverride(const Snapshot &snapshot, const Override &o)
{
    auto count = static_cast<uint32_t>(snapshot.services.size());
    uint32_t all =
        kAllMethods
        | (((1u << snapshot.extensionMethods.size()) - 1) << kMethodCount);
    Route &route = overrideRoutes.emplace_back();
    route.path = o.path;

    if (o.action == OverrideAction::Disable) {
        uint32_t mask = overrideMask(o, snapshot.extensionMethods, all);
        if (mask != 0) {
            size_t before = pending.size();
            add(route, count, mask);
            if (pending.size() > before) {
                disables.push_back(pending.back().second);
            }
        }
        return;
    }

    Template want;
    if (!compileTemplate(o.path, want)) {
        return;
    }
    std::string shape = templateShape(want);

    for (uint32_t s = 0; s < count; s++) {
        const Service &service = snapshot.services[s];
        if (service.name != o.service) {
            continue;
        }
        uint32_t mask = overrideMask(o, snapshot.extensionMethods, 0);
        for (const Route &own : service.routeSet.routes) {
            Template tpl;
            if (compileTemplate(own.path, tpl) && templateShape(tpl) == shape) {
                route.authRequired = own.authRequired;
                route.protocol = own.protocol;
                route.streaming = own.streaming;
                if (mask == 0) {
                    mask = methodMask(own, snapshot.extensionMethods);
                }
                break;
            }
        }
        if (mask == 0 && overrideMask(o, snapshot.extensionMethods, 1) != 0) {
            mask = kAllMethods; // "*" of a route the service lacks
        }
        if (mask != 0) {
            size_t before = pending.size();
            add(route, s, mask);
            if (o.action == OverrideAction::Pin && pending.size() > before) {
                pins.push_back(pending.back().second);
            }
        }
        return;
    }
}

uint32_t Router::Draft::child(uint32_t node, const Segment &seg)
{
    auto id = static_cast<uint32_t>(nodes.size());
    Node next;

    next.parent = node;

    if (seg.kind == SegmentKind::Literal) {
        Key key = Key::literal(node, nodes[node].shape, seg.text);
        uint32_t found = findLiteral(key);
        if (found != kNone) {
            return found;
        }
        insertLiteral(static_cast<uint32_t>(key.shape), id);
        next.shape = key.shape;
        next.text = seg.text;
        next.literal = true;
        nodes[node].literals++;
        nodes.push_back(next);
        return id;
    }

    size_t slot =
        std::find(std::begin(kSlotKinds), std::end(kSlotKinds), seg.kind)
        - std::begin(kSlotKinds);
    uint32_t &param = nodes[node].params[slot];

    if (param != kNone) {
        return param;
    }

    param = id;
    next.shape = Key::param(node, nodes[node].shape, slot).shape;
    next.slot = static_cast<uint8_t>(slot);
    nodes.push_back(next); // invalidates `param`, set before
    return id;
}

uint32_t Router::Draft::findLiteral(const Key &key) const
{
    size_t mask = slots.size() - 1;
    auto hash = static_cast<uint32_t>(key.shape);

    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const Slot &slot = slots[i];
        if (slot.id == kNone) {
            return kNone;
        }
        if (slot.hash == hash && nodes[slot.id].parent == key.parent
            && nodes[slot.id].text == key.text) {
            return slot.id;
        }
    }
}

void Router::Draft::insertLiteral(uint32_t hash, uint32_t id)
{
    if ((literalCount + 1) * 2 > slots.size()) {
        std::vector<Slot> old = std::move(slots);
        slots.assign(old.size() * 2, Slot());
        literalCount = 0; // counted again as they go back in
        for (const Slot &slot : old) {
            if (slot.id != kNone) {
                insertLiteral(slot.hash, slot.id);
            }
        }
    }

    size_t mask = slots.size() - 1;
    size_t i = hash & mask;

    while (slots[i].id != kNone) {
        i = (i + 1) & mask;
    }
    slots[i] = {hash, id};
    literalCount++;
}

/*
 * Groups entries by terminal, keeping roster order, and resolves conflicts
 * the way checkTable() reports them: the first entry holding a method
 * keeps it, later ones lose it, and are kept with none once they have
 * nothing left (update() may give them back).  A route with no methods
 * of the table's has no entry.
 */
void Router::Draft::placeEntries(std::vector<Entry> &entries)
{
    std::stable_sort(
        pending.begin(), pending.end(),
        [](const auto &a, const auto &b) { return a.first < b.first; });

    entries.reserve(pending.size());

    for (size_t i = 0; i < pending.size();) {
        uint32_t id = pending[i].first;
        Node &node = nodes[id];
        uint32_t claimed = 0;

        node.firstEntry = static_cast<uint32_t>(entries.size());

        for (; i < pending.size() && pending[i].first == id; i++) {
            Entry entry = pending[i].second;
            entry.methods &= ~claimed;
            claimed |= entry.declared;
            if (entry.declared != 0) {
                entries.push_back(entry);
            }
        }

        node.entryCount =
            static_cast<uint32_t>(entries.size()) - node.firstEntry;
    }
}

/*
 * What Image::write puts together: each part at its offset in the header,
 * nodes first (aligned to a cache line), strings last.
 */
struct Router::Image::Parts {
    Header header;
    std::vector<Node> nodes;
    std::vector<Entry> entries;
    std::vector<ImageService> services;
    std::vector<Text> extensionMethods;
    std::vector<ExtensionAllow> extensionAllows;
    std::vector<Entry> overrides; // disables first, then pins
    std::string tails;
    std::string strings;

    void freeze(Draft &draft);
    uint32_t place(const Key &key);
    Text keep(std::string_view s);
    void layout();
};

Router::Text Router::Image::Parts::keep(std::string_view s)
{
    Text t{static_cast<uint32_t>(strings.size()),
           static_cast<uint32_t>(s.size())};
    strings.append(s);
    return t;
}

Router::Image Router::image(const unsigned char *snapshot, size_t len)
{
    return image(decodeSnapshot(snapshot, len));
}

Router::Image Router::image(const Snapshot &snapshot)
{
    auto parts = std::make_shared<Image::Parts>();
    Draft draft;
    auto rejected = snapshot.rejections.begin(); // by service, route
    bool anyPending = false;
    Controls controls =
        decodeControls(snapshot.controls.data(), snapshot.controls.size());

    // disabling and pinning overrides come first: their entries win
    for (const Override &o : controls.overrides) {
        if (o.action != OverrideAction::Add) {
            draft.addOverride(snapshot, o);
        }
    }

    for (uint32_t s = 0; s < snapshot.services.size(); s++) {
        const Service &service = snapshot.services[s];

        anyPending |= service.state == ServiceState::Pending;
        for (uint32_t r = 0; r < service.routeSet.routes.size(); r++) {
            if (rejected != snapshot.rejections.end() && rejected->service == s
                && rejected->route == r) {
                ++rejected;
                continue;
            }
            const Route &route = service.routeSet.routes[r];
            draft.add(route, s, methodMask(route, snapshot.extensionMethods));
        }
    }

    // added routes last: a route a service publishes takes precedence
    for (const Override &o : controls.overrides) {
        if (o.action == OverrideAction::Add) {
            draft.addOverride(snapshot, o);
        }
    }

    draft.placeEntries(parts->entries);
    parts->overrides = std::move(draft.disables);
    parts->overrides.insert(parts->overrides.end(), draft.pins.begin(),
                            draft.pins.end());
    parts->strings = std::move(draft.strings);
    parts->freeze(draft);

    for (const Service &service : snapshot.services) {
        ImageService out;
        out.name = parts->keep(service.name);
        out.url = parts->keep(service.url);
        out.upstream = parts->keep(service.upstream);
        out.state = static_cast<uint32_t>(service.state)
                    | (controls.isDrained(service.name) ? kDrained : 0);
        parts->services.push_back(out);
    }

    ImageService disabled; // of the disabling overrides' entries
    disabled.state = kDisabledRoute;
    parts->services.push_back(disabled);

    for (const std::string &name : snapshot.extensionMethods) {
        parts->extensionMethods.push_back(parts->keep(name));
    }

    // the Allow headers that name extension methods, one per mask
    std::vector<uint32_t> masks;
    for (const Node &node : parts->nodes) {
        if (node.parent == kNone || node.entryCount == 0) {
            continue;
        }
        uint32_t allow = kOptions;
        for (uint32_t i = 0; i < node.entryCount; i++) {
            allow |= parts->entries[node.firstEntry + i].methods;
        }
        if (allow & ~kAllMethods) {
            masks.push_back(allow & kGet ? allow | kHead : allow);
        }
    }
    std::sort(masks.begin(), masks.end());
    masks.erase(std::unique(masks.begin(), masks.end()), masks.end());
    for (uint32_t mask : masks) {
        parts->extensionAllows.push_back(
            {mask,
             parts->keep(joinMethods(mask, ", ", snapshot.extensionMethods))});
    }

    parts->header.generation = snapshot.generation;
    parts->header.anyPending = anyPending;
    parts->layout();

    Image image;
    image.size_ = parts->header.size;
    image.parts_ = std::move(parts);
    return image;
}

/*
 * The offset of each part, after the header and in the order write() puts
 * them.  Entries, tails and strings get room to grow by an eighth, and a
 * little more, so that update() can add to them in place; the table of
 * nodes has its own (update() fills it to three quarters).  A small zone
 * (t/140-reload-zone.t) has no room for more.
 */
void Router::Image::Parts::layout()
{
    auto room = [](size_t used, size_t least) {
        return used + used / 8 + least;
    };
    size_t entriesRoom = room(entries.size(), 16);
    size_t tailsRoom = room(tails.size(), 64);
    size_t stringsRoom = room(strings.size(), 256);

    uint64_t at = sizeof(Header);
    auto next = [&at](size_t bytes, size_t align) {
        at = (at + align - 1) / align * align;
        uint64_t offset = at;
        at += bytes;
        if (at > UINT32_MAX) {
            throw Error("the table's router would take over 4 GiB");
        }
        return static_cast<uint32_t>(offset);
    };

    header.magic = kMagic;
    header.nodes = next(nodes.size() * sizeof(Node), kImageAlign);
    header.entries = next(entriesRoom * sizeof(Entry), alignof(Entry));
    header.services =
        next(services.size() * sizeof(ImageService), alignof(ImageService));
    header.serviceCount = static_cast<uint32_t>(services.size() - 1);
    header.extensionMethods =
        next(extensionMethods.size() * sizeof(Text), alignof(Text));
    header.extensionMethodCount =
        static_cast<uint32_t>(extensionMethods.size());
    header.extensionAllows =
        next(extensionAllows.size() * sizeof(ExtensionAllow),
             alignof(ExtensionAllow));
    header.extensionAllowCount = static_cast<uint32_t>(extensionAllows.size());
    header.overrides = next(overrides.size() * sizeof(Entry), alignof(Entry));
    header.overrideCount = static_cast<uint32_t>(overrides.size());
    header.tails = next(tailsRoom, 1);
    header.strings = next(stringsRoom, 1);
    header.entriesUsed = static_cast<uint32_t>(entries.size());
    header.entriesRoom = static_cast<uint32_t>(entriesRoom);
    header.tailsUsed = static_cast<uint32_t>(tails.size());
    header.tailsRoom = static_cast<uint32_t>(tailsRoom);
    header.stringsUsed = static_cast<uint32_t>(strings.size());
    header.stringsRoom = static_cast<uint32_t>(stringsRoom);
    header.size = (at + kImageAlign - 1) / kImageAlign * kImageAlign;
}

void Router::Image::write(unsigned char *dst) const
{
    if (edit_ != nullptr) {
        writeEdit(*edit_, dst);
        return;
    }

    const Parts &p = *parts_;
    const Header &h = p.header;
    auto copy = [dst](uint32_t offset, const void *src, size_t bytes) {
        if (bytes > 0) {
            std::memcpy(dst + offset, src, bytes);
        }
    };

    std::memset(dst, 0, h.size);
    copy(0, &h, sizeof(h));
    copy(h.nodes, p.nodes.data(), p.nodes.size() * sizeof(Node));
    copy(h.entries, p.entries.data(), p.entries.size() * sizeof(Entry));
    copy(h.services, p.services.data(),
         p.services.size() * sizeof(ImageService));
    copy(h.extensionMethods, p.extensionMethods.data(),
         p.extensionMethods.size() * sizeof(Text));
    copy(h.extensionAllows, p.extensionAllows.data(),
         p.extensionAllows.size() * sizeof(ExtensionAllow));
    copy(h.overrides, p.overrides.data(), p.overrides.size() * sizeof(Entry));
    copy(h.tails, p.tails.data(), p.tails.size());
    copy(h.strings, p.strings.data(), p.strings.size());
}

namespace {

// Why update() builds the whole image: thrown inside it, caught there.
struct WholeBuild {
    const char *why;
};

// What a route is to the image: equal keys make equal entries.
struct RouteKey {
    std::string_view path;
    uint32_t declared = 0;
    uint32_t flags = 0; // authRequired, grpc, streaming: as Entry's bits

    bool operator==(const RouteKey &o) const
    {
        return path == o.path && declared == o.declared && flags == o.flags;
    }
};

struct RouteKeyHash {
    size_t operator()(const RouteKey &k) const
    {
        return std::hash<std::string_view>()(k.path)
               ^ (k.declared * 0x9e3779b97f4a7c15ull) ^ (k.flags << 7);
    }
};

uint32_t routeFlags(const Route &route)
{
    return (route.authRequired ? 1u : 0u)
           | (route.protocol == Protocol::Grpc ? 2u : 0u)
           | (static_cast<uint32_t>(route.streaming) << 2);
}

// A service's routes in one table, and the indices of those it rejects.
struct ServiceRoutes {
    const RouteSet *set = nullptr;
    std::vector<uint32_t> rejected; // sorted
};

// The rejected routes' indices of each service, from a sorted list.
std::vector<std::vector<uint32_t>>
rejectedByService(const std::vector<Rejection> &rejections, size_t services)
{
    std::vector<std::vector<uint32_t>> by(services);

    for (const Rejection &r : rejections) {
        if (r.service >= services) {
            throw WholeBuild{"a rejection of no service"};
        }
        by[r.service].push_back(r.route);
    }
    return by;
}

} // namespace

/*
 * The changes update() makes to an image, over the previous image, which
 * is only read: the nodes written, entries written, what is appended to
 * the tails and strings, and the header and service states, which
 * Image::write() puts over a copy of the previous image.  Any shortage of
 * room throws WholeBuild.
 */
struct Router::Edit {
    const unsigned char *prev = nullptr;
    Header h;
    const Node *nodes = nullptr;
    const Entry *entries = nullptr;
    const char *tails = nullptr;
    const char *strings = nullptr;
    size_t capacity = 0;
    uint32_t tailsFrom = 0; // the previous image's tails used
    uint32_t stringsFrom = 0;
    std::unordered_map<uint32_t, Node> written; // by slot
    std::vector<std::pair<uint32_t, Entry>> entryWrites;
    std::string tailsAdded;
    std::string stringsAdded;
    std::vector<uint32_t> states; // of the services
    UpdateInfo *info = nullptr;

    Edit(const unsigned char *image, UpdateInfo *updateInfo)
        : prev(image), info(updateInfo)
    {
        std::memcpy(&h, image, sizeof(h));
        nodes = reinterpret_cast<const Node *>(prev + h.nodes);
        entries = reinterpret_cast<const Entry *>(prev + h.entries);
        tails = reinterpret_cast<const char *>(prev + h.tails);
        strings = reinterpret_cast<const char *>(prev + h.strings);
        capacity = h.capacity;
        tailsFrom = h.tailsUsed;
        stringsFrom = h.stringsUsed;
    }

    const Node &node(uint32_t i) const
    {
        auto found = written.find(i);
        return found != written.end() ? found->second : nodes[i];
    }

    Node &change(uint32_t i)
    {
        return written.try_emplace(i, nodes[i]).first->second;
    }

    // the previous image's strings: what update() reads of them
    std::string_view text(Text t) const
    {
        return {strings + t.offset, t.length};
    }

    bool equals(const Node &n, const Key &key) const
    {
        if (n.parent != key.parent || n.length != key.length
            || n.head[0] != key.head[0] || n.head[1] != key.head[1]) {
            return false;
        }
        if (key.text.size() <= kHeadBytes) {
            return true;
        }
        const char *tail = n.tail >= tailsFrom
                               ? tailsAdded.data() + (n.tail - tailsFrom)
                               : tails + n.tail;
        return std::memcmp(tail, key.text.data() + kHeadBytes,
                           key.text.size() - kHeadBytes)
               == 0;
    }

    uint32_t find(const Key &key) const
    {
        for (size_t i = firstSlot(key.shape, capacity);;
             i = nextSlot(i, capacity)) {
            const Node &n = node(static_cast<uint32_t>(i));
            if (n.parent == kNone) {
                return kNone;
            }
            if (equals(n, key)) {
                return static_cast<uint32_t>(i);
            }
        }
    }

    // A new node for a key find() did not find: in the first tombstone or
    // free slot of its probe sequence, the table at most 3/4 taken.
    uint32_t place(const Key &key)
    {
        size_t i = firstSlot(key.shape, capacity);

        for (;; i = nextSlot(i, capacity)) {
            uint32_t parent = node(static_cast<uint32_t>(i)).parent;
            if (parent == kNone || parent == kTombstone) {
                break;
            }
        }

        if (node(static_cast<uint32_t>(i)).parent == kTombstone) {
            h.tombstones--;
        } else if ((uint64_t(h.nodeCount) + h.tombstones + 1) * 4
                   > uint64_t(capacity) * 3) {
            throw WholeBuild{"the table of nodes is three quarters full"};
        }

        Node &n = change(static_cast<uint32_t>(i));
        n = Node();
        n.head[0] = key.head[0];
        n.head[1] = key.head[1];
        n.parent = key.parent;
        n.length = key.length;
        if (key.text.size() > kHeadBytes) {
            size_t more = key.text.size() - kHeadBytes;
            if (more > h.tailsRoom - h.tailsUsed) {
                throw WholeBuild{"no room left for edges' text"};
            }
            n.tail = h.tailsUsed;
            tailsAdded.append(key.text.substr(kHeadBytes));
            h.tailsUsed += static_cast<uint32_t>(more);
        }
        h.nodeCount++;
        info->nodesAdded++;
        return static_cast<uint32_t>(i);
    }

    // The terminal of a template: kNone if missing and not `create`d.
    uint32_t terminal(const Template &tpl, bool create)
    {
        uint32_t id = h.root;
        uint64_t shape = kRootShape;

        for (size_t i = 0; i < tpl.segments.size(); i++) {
            const Segment &seg = tpl.segments[i];
            Key key;

            if (seg.kind == SegmentKind::Literal) {
                key = Key::literal(id, shape, seg.text);
                uint32_t found = node(id).literals != 0 ? find(key) : kNone;
                if (found == kNone) {
                    if (!create) {
                        return kNone;
                    }
                    change(id).literals++;
                    found = place(key);
                }
                id = found;
            } else {
                size_t slot = std::find(std::begin(kSlotKinds),
                                        std::end(kSlotKinds), seg.kind)
                              - std::begin(kSlotKinds);
                key = Key::param(id, shape, slot);
                uint32_t found = kNone;
                if (node(id).params & (1u << slot)) {
                    found = find(key);
                    if (found == kNone) {
                        throw WholeBuild{"a parameter child is missing"};
                    }
                } else if (!create) {
                    return kNone;
                } else {
                    change(id).params |= 1u << slot;
                    found = place(key);
                }
                id = found;
                if (seg.kind == SegmentKind::Path && create) {
                    // a bit no route needs any more is left: it costs a
                    // lookup a probe, never an answer
                    change(id).suffixDepths |= 1u
                                               << (tpl.segments.size() - i - 1);
                }
            }
            shape = key.shape;
        }
        return id;
    }

    Text keep(std::string_view s)
    {
        if (s.size() > h.stringsRoom - h.stringsUsed) {
            throw WholeBuild{"no room left for strings"};
        }
        Text t{h.stringsUsed, static_cast<uint32_t>(s.size())};
        stringsAdded.append(s);
        h.stringsUsed += t.length;
        return t;
    }

    // A terminal's entries, in roster order, resolved as placeEntries().
    void setEntries(uint32_t id, std::vector<Entry> &list)
    {
        Node &n = change(id);
        auto count = static_cast<uint32_t>(list.size());
        uint32_t claimed = 0;

        for (Entry &e : list) {
            e.methods = e.declared & ~claimed;
            claimed |= e.declared;
        }

        if (count > n.entryCount) {
            if (count > h.entriesRoom - h.entriesUsed) {
                throw WholeBuild{"no room left for entries"};
            }
            n.firstEntry = h.entriesUsed;
            h.entriesUsed += count;
        }
        for (uint32_t k = 0; k < count; k++) {
            entryWrites.emplace_back(n.firstEntry + k, list[k]);
        }
        if (count > 0) {
            n.entry = list.front();
        } else {
            n.firstEntry = 0;
            n.entry = Entry();
        }
        n.entryCount = count;
    }

    // A node left with no entries and no children becomes a tombstone,
    // and so may its parent then.
    void prune(uint32_t id)
    {
        while (id != h.root) {
            const Node &n = node(id);
            if (n.parent == kTombstone || n.entryCount != 0 || n.literals != 0
                || n.params != 0) {
                return;
            }
            uint32_t parent = n.parent;
            uint32_t length = n.length;

            if (length >= kParamEdge) {
                change(parent).params &= ~(1u << (length - kParamEdge));
            } else {
                change(parent).literals--;
            }
            Node &gone = change(id);
            gone = Node();
            gone.parent = kTombstone;
            h.nodeCount--;
            h.tombstones++;
            info->nodesRemoved++;
            id = parent;
        }
    }

    // The new image: the previous one's bytes, these changes over them.
    void write(unsigned char *dst) const
    {
        std::memcpy(dst, prev, h.size);
        std::memcpy(dst, &h, sizeof(h));
        for (const auto &[i, n] : written) {
            std::memcpy(dst + h.nodes + size_t(i) * sizeof(Node), &n,
                        sizeof(Node));
        }
        for (const auto &[i, e] : entryWrites) {
            std::memcpy(dst + h.entries + size_t(i) * sizeof(Entry), &e,
                        sizeof(Entry));
        }
        std::memcpy(dst + h.tails + tailsFrom, tailsAdded.data(),
                    tailsAdded.size());
        std::memcpy(dst + h.strings + stringsFrom, stringsAdded.data(),
                    stringsAdded.size());
        for (size_t s = 0; s < states.size(); s++) {
            std::memcpy(dst + h.services + s * sizeof(ImageService)
                            + offsetof(ImageService, state),
                        &states[s], sizeof(uint32_t));
        }
    }
};

void Router::writeEdit(const Edit &edit, unsigned char *dst)
{
    edit.write(dst);
}

Router::Image Router::update(const unsigned char *prev, size_t prevLen,
                             const TableBefore &before, const Snapshot &next,
                             UpdateInfo *info)
{
    UpdateInfo local;
    UpdateInfo &out = info != nullptr ? *info : local;
    out = UpdateInfo();

    try {
        return patch(prev, prevLen, before, next, out);
    } catch (const WholeBuild &whole) {
        out = UpdateInfo();
        out.fallback = whole.why;
    }
    return image(next);
}

Router::Image Router::patch(const unsigned char *prev, size_t prevLen,
                            const TableBefore &before, const Snapshot &next,
                            UpdateInfo &info)
{
    std::unique_ptr<Router> old;
    try {
        old = view(prev, prevLen);
    } catch (const Error &) {
        throw WholeBuild{"no previous image"};
    }

    const Header &ph = *old->header_;
    size_t count = next.services.size();

    if (ph.generation != before.generation) {
        throw WholeBuild{"the previous image is of another table"};
    }
    if (ph.nodeCount == 0 || ph.overrideCount != 0
        || ph.extensionMethodCount != 0 || !before.extensionMethods.empty()
        || !next.extensionMethods.empty()) {
        throw WholeBuild{"overrides or extension methods"};
    }
    if (ph.serviceCount != count) {
        throw WholeBuild{"the roster changed"};
    }
    for (size_t s = 0; s < count; s++) {
        ServiceView v = old->service(s);
        const Service &service = next.services[s];
        if (v.name != service.name || v.url != service.url
            || v.upstream != service.upstream) {
            throw WholeBuild{"the roster changed"};
        }
    }

    Controls controls =
        decodeControls(next.controls.data(), next.controls.size());
    if (!controls.overrides.empty()
        || !decodeControls(before.controls.data(), before.controls.size())
                .overrides.empty()) {
        throw WholeBuild{"overrides or extension methods"};
    }

    // which services' routes are to be compared, and with what
    std::vector<ServiceRoutes> was(count);
    std::vector<std::vector<uint32_t>> rejectedNow =
        rejectedByService(next.rejections, count);
    std::vector<std::vector<uint32_t>> rejectedBefore =
        rejectedByService(before.rejections, count);
    std::vector<uint32_t> diffed;

    for (const auto &[s, set] : before.routeSets) {
        if (s >= count) {
            throw WholeBuild{"a route set of no service"};
        }
        if (was[s].set == nullptr) { // the first is the table's
            was[s].set = &set;
            diffed.push_back(s);
        }
    }
    for (uint32_t s = 0; s < count; s++) {
        if (was[s].set == nullptr && rejectedNow[s] != rejectedBefore[s]) {
            was[s].set = &next.services[s].routeSet;
            diffed.push_back(s);
        }
        was[s].rejected = std::move(rejectedBefore[s]);
    }
    std::sort(diffed.begin(), diffed.end());

    auto edit = std::make_shared<Edit>(prev, &info);

    /*
     * Each service's routes before and after, keyed by what the image
     * holds of them: a key whose count changed is a route removed or
     * added, and its terminal is touched.
     */
    struct Group {
        uint32_t before = 0; // routes of the key in the table before
        uint32_t after = 0;  // and now: the first, and the next of each
        uint32_t firstAfter = kNone;
        uint32_t lastAfter = kNone;
        uint32_t paired = kNone; // the route now the next one before is
    };
    using Groups = std::unordered_map<RouteKey, Group, RouteKeyHash>;
    std::vector<Groups> groups(diffed.size());
    std::vector<std::vector<uint32_t>> nextAfter(diffed.size());
    struct Touch {
        uint32_t terminal;
        uint32_t diffed; // index in `diffed`
        RouteKey key;
    };
    std::vector<Touch> touched;

    for (size_t d = 0; d < diffed.size(); d++) {
        uint32_t s = diffed[d];
        const RouteSet &then = *was[s].set;
        const RouteSet &now = next.services[s].routeSet;
        Groups &g = groups[d];

        auto accepted = [](const RouteSet &set,
                           const std::vector<uint32_t> &rejected, auto &&each) {
            auto skip = rejected.begin();
            for (uint32_t r = 0; r < set.routes.size(); r++) {
                if (skip != rejected.end() && *skip == r) {
                    ++skip;
                    continue;
                }
                const Route &route = set.routes[r];
                uint32_t declared = methodMask(route, {});
                if (declared != 0) {
                    each(RouteKey{route.path, declared, routeFlags(route)}, r);
                }
            }
        };

        std::vector<uint32_t> &chain = nextAfter[d];
        std::vector<Group *> olds; // each route before's group
        chain.assign(now.routes.size(), kNone);
        olds.reserve(then.routes.size());
        g.reserve(now.routes.size() + 16);
        accepted(now, rejectedNow[s],
                 [&g, &chain](const RouteKey &k, uint32_t r) {
                     Group &group = g[k];
                     if (group.after++ == 0) {
                         group.firstAfter = group.paired = r;
                     } else {
                         chain[group.lastAfter] = r;
                     }
                     group.lastAfter = r;
                 });
        accepted(then, was[s].rejected,
                 [&g, &olds](const RouteKey &k, uint32_t) {
                     Group &group = g[k];
                     group.before++;
                     olds.push_back(&group);
                 });

        // the routes kept must keep their order: each terminal's entries
        // of the service are in it
        uint32_t last = 0;
        bool first = true;
        for (Group *group : olds) {
            if (group->paired != kNone) {
                uint32_t r = group->paired;
                group->paired = chain[r];
                if (!first && r < last) {
                    throw WholeBuild{"a service's routes reordered"};
                }
                last = r;
                first = false;
            }
        }

        for (const auto &[key, group] : g) {
            if (group.before == group.after) {
                continue;
            }
            bool adds = group.after > group.before;
            Template tpl;
            if (!compileTemplate(key.path, tpl)) {
                throw WholeBuild{"a route's template does not compile"};
            }
            uint32_t t = edit->terminal(tpl, adds);
            if (t == kNone) {
                throw WholeBuild{"the previous image lacks a route"};
            }
            if (adds) {
                info.routesAdded += group.after - group.before;
            } else {
                info.routesRemoved += group.before - group.after;
            }
            touched.push_back({t, static_cast<uint32_t>(d), key});
        }
    }

    std::sort(touched.begin(), touched.end(),
              [](const Touch &a, const Touch &b) {
                  return a.terminal != b.terminal ? a.terminal < b.terminal
                                                  : a.diffed < b.diffed;
              });

    // each touched terminal's entries: the others' as they were, the
    // diffed services' gathered again in their routes' order
    std::vector<uint32_t> terminals;
    for (size_t i = 0; i < touched.size();) {
        uint32_t t = touched[i].terminal;
        const Node &node = edit->node(t);
        std::vector<Entry> list;
        std::vector<uint32_t> services; // diffed here, ascending

        for (size_t j = i; j < touched.size() && touched[j].terminal == t;
             j++) {
            if (services.empty()
                || services.back() != diffed[touched[j].diffed]) {
                services.push_back(diffed[touched[j].diffed]);
            }
        }

        for (uint32_t e = 0; e < node.entryCount; e++) {
            const Entry &entry = edit->entries[node.firstEntry + e];
            if (!std::binary_search(services.begin(), services.end(),
                                    uint32_t(entry.service))) {
                list.push_back(entry);
            }
        }

        for (; i < touched.size() && touched[i].terminal == t;) {
            uint32_t d = touched[i].diffed;
            uint32_t s = diffed[d];
            const Groups &g = groups[d];
            // the keys of the service here, and a text for each
            std::vector<std::pair<RouteKey, Text>> keys;
            auto have = [&keys](const RouteKey &k) {
                for (const auto &kt : keys) {
                    if (kt.first == k) {
                        return true;
                    }
                }
                return false;
            };

            for (uint32_t e = 0; e < node.entryCount; e++) {
                const Entry &entry = edit->entries[node.firstEntry + e];
                if (entry.service != s) {
                    continue;
                }
                RouteKey k{edit->text(entry.route), entry.declared,
                           static_cast<uint32_t>(entry.authRequired
                                                 | (entry.grpc << 1)
                                                 | (entry.streaming << 2))};
                if (!have(k)) {
                    keys.push_back({k, entry.route});
                }
            }
            for (; i < touched.size() && touched[i].terminal == t
                   && touched[i].diffed == d;
                 i++) {
                if (!have(touched[i].key)) {
                    keys.push_back({touched[i].key, Text{0, UINT32_MAX}});
                }
            }

            std::vector<std::pair<uint32_t, size_t>> routes; // index, key
            for (size_t k = 0; k < keys.size(); k++) {
                auto found = g.find(keys[k].first);
                if (found == g.end()) {
                    throw WholeBuild{"the previous image is of another table"};
                }
                for (uint32_t r = found->second.firstAfter; r != kNone;
                     r = nextAfter[d][r]) {
                    routes.push_back({r, k});
                }
            }
            std::sort(routes.begin(), routes.end());

            for (const auto &[r, k] : routes) {
                auto &[key, text] = keys[k];
                if (text.length == UINT32_MAX) {
                    text = edit->keep(key.path);
                }
                Entry entry{
                    text,           s, key.flags & 1, (key.flags >> 1) & 1,
                    key.flags >> 2, 0, key.declared};
                list.push_back(entry);
            }
        }

        std::stable_sort(list.begin(), list.end(),
                         [](const Entry &a, const Entry &b) {
                             return a.service < b.service;
                         });
        edit->setEntries(t, list);
        terminals.push_back(t);
    }
    info.terminals = terminals.size();

    for (uint32_t t : terminals) {
        edit->prune(t);
    }

    bool anyPending = false;
    for (size_t s = 0; s < count; s++) {
        const Service &service = next.services[s];
        anyPending |= service.state == ServiceState::Pending;
        edit->states.push_back(
            static_cast<uint32_t>(service.state)
            | (controls.isDrained(service.name) ? kDrained : 0));
    }
    edit->h.anyPending = anyPending;
    edit->h.generation = next.generation;
    edit->info = nullptr;

    info.incremental = true;
    Image image;
    image.size_ = ph.size;
    image.edit_ = std::move(edit);
    return image;
}

std::string Router::audit(const unsigned char *image, size_t len)
{
    std::unique_ptr<Router> r;
    try {
        r = view(image, len);
    } catch (const Error &e) {
        return e.what();
    }

    const Header &h = *r->header_;
    const Node *nodes = r->nodes_;
    size_t capacity = h.capacity;
    uint32_t live = 0;
    uint32_t tombstones = 0;
    std::vector<uint32_t> literals(capacity, 0);
    std::vector<uint8_t> params(capacity, 0);
    auto at = [](const char *what, size_t i) {
        return std::string(what) + " at node " + std::to_string(i);
    };

    if (h.entriesUsed > h.entriesRoom || h.tailsUsed > h.tailsRoom
        || h.stringsUsed > h.stringsRoom
        || uint64_t(h.entries) + uint64_t(h.entriesRoom) * sizeof(Entry)
               > h.size
        || uint64_t(h.tails) + h.tailsRoom > h.size
        || uint64_t(h.strings) + h.stringsRoom > h.size) {
        return "room past the image's end";
    }
    if (nodes[h.root].parent != kRootParent) {
        return "the root is not one";
    }

    for (size_t i = 0; i < capacity; i++) {
        const Node &node = nodes[i];
        if (node.parent == kNone) {
            continue;
        }
        if (node.parent == kTombstone) {
            tombstones++;
            continue;
        }
        live++;
        if (i == h.root) {
            continue;
        }
        if (node.parent >= capacity || nodes[node.parent].parent == kNone
            || nodes[node.parent].parent == kTombstone) {
            return at("a parent that is no node", i);
        }
        if (node.length >= kParamEdge) {
            params[node.parent] |= 1u << (node.length - kParamEdge);
        } else {
            literals[node.parent]++;
            if (node.length > kHeadBytes
                && uint64_t(node.tail) + node.length - kHeadBytes
                       > h.tailsUsed) {
                return at("an edge's text past the tails used", i);
            }
        }
    }
    if (live != h.nodeCount || tombstones != h.tombstones) {
        return "nodes counted " + std::to_string(h.nodeCount) + " and "
               + std::to_string(h.tombstones) + " tombstones, "
               + std::to_string(live) + " and " + std::to_string(tombstones)
               + " found";
    }

    // each node's shape, from its parent's: the root's first
    std::vector<uint64_t> shapes(capacity, 0);
    std::vector<bool> shaped(capacity, false);
    std::vector<uint32_t> chain;
    shapes[h.root] = kRootShape;
    shaped[h.root] = true;

    for (size_t i = 0; i < capacity; i++) {
        const Node &node = nodes[i];
        if (node.parent == kNone || node.parent == kTombstone) {
            continue;
        }
        if (i != h.root) {
            if (node.literals != literals[i] || node.params != params[i]) {
                return at("children miscounted", i);
            }
            if (node.entryCount == 0 && node.literals == 0
                && node.params == 0) {
                return at("a node with nothing in or below it", i);
            }
        }
        if (node.entryCount > 0) {
            if (uint64_t(node.firstEntry) + node.entryCount > h.entriesUsed) {
                return at("entries past those used", i);
            }
            const Entry *e = r->entries_ + node.firstEntry;
            if (std::memcmp(&node.entry, e, sizeof(Entry)) != 0) {
                return at("a first entry unlike the node's copy", i);
            }
            uint32_t claimed = 0;
            for (uint32_t k = 0; k < node.entryCount; k++) {
                if (e[k].declared == 0
                    || e[k].methods != (e[k].declared & ~claimed)
                    || e[k].service > h.serviceCount
                    || uint64_t(e[k].route.offset) + e[k].route.length
                           > h.stringsUsed
                    || (k > 0 && h.overrideCount == 0
                        && e[k].service < e[k - 1].service)) {
                    return at("an entry not resolved in roster order", i);
                }
                claimed |= e[k].declared;
            }
        }

        // found where a lookup looks for it
        chain.clear();
        for (uint32_t c = static_cast<uint32_t>(i); !shaped[c];
             c = nodes[c].parent) {
            chain.push_back(c);
        }
        for (auto c = chain.rbegin(); c != chain.rend(); ++c) {
            const Node &n = nodes[*c];
            uint64_t parentShape = shapes[n.parent];
            Key key;
            std::string text;
            if (n.length >= kParamEdge) {
                key = Key::param(n.parent, parentShape, n.length - kParamEdge);
            } else {
                text.assign(reinterpret_cast<const char *>(n.head),
                            std::min<size_t>(n.length, kHeadBytes));
                if (n.length > kHeadBytes) {
                    text.append(r->tails_ + n.tail, n.length - kHeadBytes);
                }
                key = Key::literal(n.parent, parentShape, text);
            }
            if (r->find(key) != *c) {
                return at("a node not found by its key", *c);
            }
            shapes[*c] = key.shape;
            shaped[*c] = true;
        }
    }
    return "";
}

std::unique_ptr<Router> Router::build(const unsigned char *snapshot, size_t len)
{
    return build(decodeSnapshot(snapshot, len));
}

std::unique_ptr<Router> Router::build(const Snapshot &snapshot)
{
    Image image = Router::image(snapshot);
    std::vector<Line, HugePageAllocator<Line>> own(image.size() / sizeof(Line));

    image.write(own.front().bytes);

    std::unique_ptr<Router> router(new Router(own.front().bytes));
    router->own_ = std::move(own); // the vector's block does not move
    return router;
}

std::unique_ptr<Router> Router::view(const unsigned char *image, size_t len)
{
    Header h;

    if (image == nullptr || len < sizeof(Header)
        || reinterpret_cast<uintptr_t>(image) % kImageAlign != 0) {
        throw Error("not a router image");
    }
    std::memcpy(&h, image, sizeof(h));

    uint64_t nodes = h.capacity;
    auto within = [&h](uint64_t offset, uint64_t count, size_t size) {
        return offset <= h.size && count <= (h.size - offset) / size;
    };
    if (h.magic != kMagic || h.size > len || nodes == 0
        || h.nodes % kImageAlign != 0 || h.root >= nodes
        || !within(h.nodes, nodes, sizeof(Node))
        || !within(h.services, uint64_t(h.serviceCount) + 1,
                   sizeof(ImageService))
        || !within(h.extensionMethods, h.extensionMethodCount, sizeof(Text))
        || !within(h.extensionAllows, h.extensionAllowCount,
                   sizeof(ExtensionAllow))
        || !within(h.overrides, h.overrideCount, sizeof(Entry))
        || h.entries > h.size || h.tails > h.size || h.strings > h.size) {
        throw Error("not a router image");
    }

    return std::unique_ptr<Router>(new Router(image));
}

void Router::setGeneration(unsigned char *image, size_t len,
                           uint64_t generation)
{
    (void)view(image, len);
    std::memcpy(image + offsetof(Header, generation), &generation,
                sizeof(generation));
}

Router::Router(const unsigned char *image)
    : base_(image), header_(reinterpret_cast<const Header *>(image))
{
    nodes_ = at<Node>(header_->nodes);
    capacity_ = header_->capacity;
    root_ = header_->root;
    prefetch_ = header_->prefetch != 0;
    entries_ = at<Entry>(header_->entries);
    overrides_ = at<Entry>(header_->overrides);
    tails_ = at<char>(header_->tails);
    strings_ = base_ + header_->strings;
    services_ = at<ImageService>(header_->services);
}

Router::ServiceView Router::service(size_t index) const
{
    const ImageService &s = services_[index];
    ServiceView v;

    v.name = text(s.name);
    v.url = text(s.url);
    v.upstream = text(s.upstream);
    v.state = static_cast<ServiceState>(s.state & 0xff);
    v.drained = (s.state & kDrained) != 0;
    return v;
}

bool Router::rosterWithinImage() const
{
    uint64_t room = header_->size - header_->strings;
    auto within = [room](Text t) {
        return t.offset <= room && t.length <= room - t.offset;
    };

    for (size_t i = 0; i < header_->serviceCount; i++) {
        const ImageService &s = services_[i];
        if (!within(s.name) || !within(s.url) || !within(s.upstream)) {
            return false;
        }
    }
    return true;
}

/*
 * Lays the draft out in the table of nodes, the root included: two thirds
 * full, so probes stay short and always end.  (Sized to a power of two,
 * the table was a third to two thirds full: the image of 1,000,000 routes
 * took 313 MB, 210 MB now.  The price is a fuller table at sizes a power
 * of two fitted loosely: about 20 ns more per lookup at 10,000 routes.)
 * Draft nodes come parent first, so a parent's final id is known before
 * its children are keyed with it.
 */
void Router::Image::Parts::freeze(Draft &draft)
{
    size_t count = draft.nodes.size();
    size_t capacity = std::max<size_t>(8, count + count / 2 + 1);

    header.capacity = static_cast<uint32_t>(capacity);
    header.nodeCount = static_cast<uint32_t>(count);
    nodes.resize(capacity);
    header.prefetch = capacity * sizeof(Node) > kCachedBytes;

    // the root has no edge: a parent no node has marks it
    Key root = Key::param(kRootParent, kRootShape, 0);
    root.shape = kRootShape;

    std::vector<uint32_t> ids(count, kNone);
    ids[0] = header.root = place(root);

    for (size_t d = 0; d < count; d++) {
        const Draft::Node &from = draft.nodes[d];

        if (d != 0) {
            const Draft::Node &parent = draft.nodes[from.parent];
            uint32_t at = ids[from.parent];
            ids[d] =
                place(from.literal ? Key::literal(at, parent.shape, from.text)
                                   : Key::param(at, parent.shape, from.slot));
        }

        Node &node = nodes[ids[d]];
        for (size_t slot = 0; slot < kSlotCount; slot++) {
            if (from.params[slot] != kNone) {
                node.params |= 1u << slot;
            }
        }
        node.literals = from.literals;
        if (!from.literal && from.slot == kPathSlot) {
            node.suffixDepths = from.suffixDepths;
        }
        node.firstEntry = from.firstEntry;
        node.entryCount = from.entryCount;
        if (from.entryCount > 0) {
            node.entry = entries[from.firstEntry];
        }
    }
}

uint32_t Router::Image::Parts::place(const Key &key)
{
    size_t capacity = header.capacity;
    size_t i = firstSlot(key.shape, capacity);

    while (nodes[i].parent != kNone) {
        i = nextSlot(i, capacity);
    }

    Node &node = nodes[i];
    node.head[0] = key.head[0];
    node.head[1] = key.head[1];
    node.parent = key.parent;
    node.length = key.length;
    if (key.text.size() > kHeadBytes) {
        node.tail = static_cast<uint32_t>(tails.size());
        tails.append(key.text.substr(kHeadBytes));
    }
    return static_cast<uint32_t>(i);
}

bool Router::edgeEquals(const Node &node, const Key &key) const
{
    return node.parent == key.parent && node.length == key.length
           && node.head[0] == key.head[0] && node.head[1] == key.head[1]
           && (key.text.size() <= kHeadBytes
               || std::memcmp(tails_ + node.tail, key.text.data() + kHeadBytes,
                              key.text.size() - kHeadBytes)
                      == 0);
}

__attribute__((always_inline)) inline uint32_t
Router::find(const Key &key) const
{
    for (size_t i = firstSlot(key.shape, capacity_);;
         i = nextSlot(i, capacity_)) {
        const Node &node = nodes_[i];
        if (node.parent == kNone) {
            return kNone;
        }
        if (edgeEquals(node, key)) {
            return static_cast<uint32_t>(i);
        }
    }
}

Match Router::match(std::string_view method, std::string_view path,
                    bool websocket, uint32_t *visits) const
{
    if (path.empty() || path.front() != '/') {
        return Match();
    }

    Search s;
    s.want = websocket ? kGet : methodBit(method);
    if (s.want == 0) {
        s.want = wanted(method);
    }
    if (s.want == kHead) {
        s.want |= kGet; // HEAD is served by GET routes
    }

    /*
     * What a disabling or pinning override's template matches is disabled
     * or goes to its service whatever precedence says: they are tried
     * before the walk, disables first.  The API's: a handful at most, and
     * none in most tables.
     */
    for (uint32_t i = 0; i < header_->overrideCount; i++) {
        const Entry &o = overrides_[i];
        if ((o.methods & s.want) != 0
            && templateTextMatches(text(o.route), path)) {
            countVisits(s, visits);
            return answer(o);
        }
    }

    if (prefetch_) {
        prefetch(kRootShape, path);
    }

    bool found = search(root_, kRootShape, path, s);

    if (found) {
        countVisits(s, visits);
        return answer(*s.found, s.foundIndex);
    }

    if (s.firstTerminal != nullptr) {
        countVisits(s, visits);
        // CORS preflight goes to the owner of the path
        if (s.want == kOptions) {
            return answer(s.firstTerminal->entry, s.firstTerminal->firstEntry);
        }
        return notAllowed(*s.firstTerminal);
    }

    /*
     * Nothing has the path: a route that differs from it by a trailing
     * slash takes it, so that its service answers its own redirect, as
     * FastAPI does (307 from /users/1/ to /users/1 and back).
     */
    char buf[kMaxSlashRetry + 1];
    std::string_view other;

    if (path.size() > 1 && path.back() == '/') {
        other = path.substr(0, path.size() - 1);
    } else if (path.size() > 1 && path.size() < kMaxSlashRetry) {
        std::memcpy(buf, path.data(), path.size());
        buf[path.size()] = '/';
        other = std::string_view(buf, path.size() + 1);
    }

    if (!other.empty()) {
        Search t;
        t.want = s.want;
        t.visits = s.visits;
        bool took = search(root_, kRootShape, other, t);
        countVisits(t, visits);

        if (took) {
            return answer(*t.found, t.foundIndex);
        }
        if (t.firstTerminal != nullptr) {
            return answer(t.firstTerminal->entry, t.firstTerminal->firstEntry);
        }
    } else {
        countVisits(s, visits);
    }

    Match m;
    m.status =
        header_->anyPending ? MatchStatus::Pending : MatchStatus::NotFound;
    return m;
}

/*
 * Starts loading the table slots the walk will probe below a node of shape
 * `shape` for the next segments of `rest`: each segment as a literal edge,
 * and as the parameter edge that would take it if the literal one is not
 * there.  Where the path follows those edges the walk finds its nodes in
 * cache, their misses overlapping rather than one per level.
 */
void Router::prefetch(uint64_t shape, std::string_view rest) const
{
    constexpr int kLevels = 6;

    for (int level = 0; level < kLevels && !rest.empty(); level++) {
        Split split = splitSegment(rest);
        Key key = Key::literal(kNone, shape, split.segment);
        size_t slot = likelySlot(kSlotKinds, split.segment);

        __builtin_prefetch(&nodes_[firstSlot(key.shape, capacity_)]);
        __builtin_prefetch(&nodes_[firstSlot(
            Key::param(kNone, shape, slot).shape, capacity_)]);
        shape = key.shape;
        rest = split.after;
    }
}

/*
 * `rest` is what follows the prefix of node `id`, whose shape is `shape`:
 * empty, or "/" and more.  True once an entry allows the method; terminals
 * that match the path but not the method are remembered in s.firstTerminal.
 */
bool Router::search(uint32_t id, uint64_t shape, std::string_view rest,
                    Search &s) const
{
    /*
     * Down a literal edge from a node with no parameter child, nothing is
     * left to try here if the walk below fails: the loop goes on there
     * rather than a call, so that a path of literal segments costs no
     * call per level.
     */
    for (;;) {
        const Node &node = nodes_[id];

        s.visits++;

        if (rest.empty()) {
            return visitTerminal(node, s);
        }

        if (node.literals != 0) {
            Split split = splitSegment(rest);
            Key key = Key::literal(id, shape, split.segment);
            uint32_t next = find(key);

            if (next != kNone) {
                if (node.params == 0) {
                    id = next;
                    shape = key.shape;
                    rest = split.after;
                    continue;
                }
                if (search(next, key.shape, split.after, s)) {
                    return true;
                }
            }
        }

        return node.params != 0 && searchParams(id, shape, rest, s);
    }
}

// The parameter children of node `id`, which has some, for a non-empty rest.
bool Router::searchParams(uint32_t id, uint64_t shape, std::string_view rest,
                          Search &s) const
{
    unsigned params = nodes_[id].params;
    Split split = splitSegment(rest);

    for (size_t slot = 0; slot < kPathSlot; slot++) {
        if (!(params & (1u << slot))
            || !segmentMatches(kSlotKinds[slot], split.segment)) {
            continue;
        }

        Key key = Key::param(id, shape, slot);

        if (prefetch_) {
            prefetch(key.shape, split.after); // the levels past this one
        }
        if (search(find(key), key.shape, split.after, s)) {
            return true;
        }
    }

    if (!(params & (1u << kPathSlot))) {
        return false;
    }

    Key key = Key::param(id, shape, kPathSlot);
    uint32_t path = find(key);

    // {x:path} last, the usual case: it takes the rest, even when empty
    if (nodes_[path].suffixDepths == 1) {
        s.visits++;
        return visitTerminal(nodes_[path], s);
    }
    return searchSuffixes(path, key.shape, rest, s);
}

/*
 * Below {x:path} node `id`, whose parameter starts at `rest` ("/" and
 * more): for each number of segments its routes have after the parameter,
 * the deepest first, the walk with that many segments from the end of the
 * path.  The parameter takes what lies between, slashes included, possibly
 * nothing, but not the slash it starts with: for each route, which has one
 * suffix length, the split Starlette's greedy '.*' makes.
 */
bool Router::searchSuffixes(uint32_t id, uint64_t shape, std::string_view rest,
                            Search &s) const
{
    uint32_t depths = nodes_[id].suffixDepths; // never 0
    size_t deepest = 31 - __builtin_clz(depths);
    size_t depth = 0;
    size_t start = rest.size(); // of the suffix `depth` segments long

    // from the end, up to the deepest suffix there is room for
    while (depth < deepest) {
        size_t slash = rest.rfind('/', start - 1);
        if (slash == 0 || slash == std::string_view::npos) {
            break; // the slash before the parameter
        }
        start = slash;
        depth++;
    }

    for (;; depth--) {
        if (depths & (1u << depth)) {
            std::string_view suffix = rest.substr(start);
            if (prefetch_) {
                prefetch(shape, suffix);
            }
            if (search(id, shape, suffix, s)) {
                return true;
            }
        }
        if (depth == 0) {
            return false;
        }
        start = std::min(rest.find('/', start + 1), rest.size());
    }
}

bool Router::visitTerminal(const Node &node, Search &s) const
{
    if (node.entryCount == 0) {
        return false;
    }

    if (s.firstTerminal == nullptr) {
        s.firstTerminal = &node;
    }

    // the first entry is in the node's own cache line: usually the only one
    if (node.entry.methods & s.want) {
        s.found = &node.entry;
        s.foundIndex = node.firstEntry;
        return true;
    }

    const Entry *entry = &entries_[node.firstEntry] + 1;
    const Entry *end = &entries_[node.firstEntry] + node.entryCount;

    for (; entry != end; entry++) {
        if (entry->methods & s.want) {
            s.found = entry;
            s.foundIndex = static_cast<uint32_t>(entry - entries_);
            return true;
        }
    }

    return false;
}

Match Router::answer(const Entry &entry, uint32_t index) const
{
    const ImageService &service = services_[entry.service];
    Match m;

    m.entry = index;
    m.status = service.state <= static_cast<uint32_t>(ServiceState::Healthy)
                   ? MatchStatus::Found
                   : unusualStatus(service.state);
    m.service = text(service.name);
    m.serviceIndex = entry.service;
    m.upstream = text(service.upstream);
    m.route = text(entry.route);
    m.authRequired = entry.authRequired;
    m.protocol = entry.grpc ? Protocol::Grpc : Protocol::Http;
    m.streaming = static_cast<Streaming>(entry.streaming);
    return m;
}

bool Router::entryNames(size_t index, std::string_view &service,
                        std::string_view &route) const
{
    if (index >= header_->entriesUsed) {
        return false;
    }
    const Entry &e = entries_[index];
    if (e.service >= header_->serviceCount) {
        return false;
    }
    service = text(services_[e.service].name);
    route = text(e.route);
    return true;
}

// An owner neither healthy nor pending: unhealthy, drained, or disabling.
MatchStatus Router::unusualStatus(uint32_t state)
{
    if (state & kDisabledRoute) {
        return MatchStatus::Disabled;
    }
    if (state & kDrained) {
        return MatchStatus::Drained;
    }
    if (state == static_cast<uint32_t>(ServiceState::Unhealthy)) {
        return MatchStatus::Unavailable;
    }
    return MatchStatus::Found;
}

// The methods of a terminal's Allow header.
uint32_t Router::allowed(const Node &node) const
{
    const Entry *entry = &entries_[node.firstEntry];
    uint32_t allow = kOptions;

    for (uint32_t i = 0; i < node.entryCount; i++) {
        allow |= entry[i].methods;
    }
    if (allow & kGet) {
        allow |= kHead;
    }
    return allow;
}

Match Router::notAllowed(const Node &node) const
{
    const Entry *entry = &entries_[node.firstEntry];
    const ImageService &owner = services_[entry->service];
    uint32_t allow = allowed(node);

    Match m;
    m.status = MatchStatus::NotAllowed;
    m.service = text(owner.name);
    m.serviceIndex = entry->service;
    m.upstream = text(owner.upstream);

    if (!(allow & ~kAllMethods)) {
        m.allow = allowHeader(allow);
        return m;
    }

    // image() wrote one for each such mask a terminal has
    const ExtensionAllow *first = at<ExtensionAllow>(header_->extensionAllows);
    const ExtensionAllow *last = first + header_->extensionAllowCount;
    const ExtensionAllow *found = std::lower_bound(
        first, last, allow,
        [](const ExtensionAllow &a, uint32_t mask) { return a.mask < mask; });

    if (found != last && found->mask == allow) {
        m.allow = text(found->text);
    }
    return m;
}

// The bit of an extension method in the table; 0 if it has none such.
uint32_t Router::wanted(std::string_view method) const
{
    const Text *names = at<Text>(header_->extensionMethods);

    for (uint32_t i = 0; i < header_->extensionMethodCount; i++) {
        if (text(names[i]) == method) {
            return 1u << (kMethodCount + i);
        }
    }
    return 0;
}

} // namespace discovery
