// router.cpp: trie construction and the depth-first lookup.
#include "router.hpp"

#include "methods.hpp"

#include <algorithm>
#include <cstring>

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

} // namespace

Router::LiteralTable::Key::Key(uint32_t parent, std::string_view text)
    : text(text), parent(parent)
{
    const char *p = text.data();
    size_t n = text.size();

    loadHead(p, n, head);

    uint64_t h =
        (head[0] ^ (uint64_t(parent) << 32 | n)) * 0x9e3779b97f4a7c15ull;
    h = (h ^ (h >> 32) ^ head[1]) * 0xff51afd7ed558ccdull;

    if (n > 16) {
        size_t i = 16;
        for (; i + 8 <= n; i += 8) {
            h = (h ^ (h >> 32) ^ load64(p + i)) * 0xc4ceb9fe1a85ec53ull;
        }
        if (i < n) {
            h = (h ^ (h >> 32) ^ load64(p + n - 8)) * 0xc4ceb9fe1a85ec53ull;
        }
    }

    hash = static_cast<uint32_t>(h ^ (h >> 29));
}

bool Router::LiteralTable::equal(size_t i, const Key &key) const
{
    const Slot &slot = slots_[i];

    return slot.hash == key.hash && slot.parent == key.parent
           && slot.length == key.text.size() && slot.head[0] == key.head[0]
           && slot.head[1] == key.head[1]
           && (slot.length <= 16
               || std::memcmp(texts_[i] + 16, key.text.data() + 16,
                              slot.length - 16)
                      == 0);
}

uint32_t Router::LiteralTable::find(uint32_t parent,
                                    std::string_view text) const
{
    if (slots_.empty()) {
        return kNone;
    }

    Key key(parent, text);
    size_t mask = slots_.size() - 1;

    for (size_t i = key.hash & mask;; i = (i + 1) & mask) {
        if (slots_[i].child == kNone) {
            return kNone;
        }
        if (equal(i, key)) {
            return slots_[i].child;
        }
    }
}

void Router::LiteralTable::insert(uint32_t parent, std::string_view text,
                                  uint32_t child)
{
    // at most half full, so probes stay short and always end
    if ((used_ + 1) * 2 > slots_.size()) {
        grow();
    }

    Key key(parent, text);
    Slot slot;

    slot.head[0] = key.head[0];
    slot.head[1] = key.head[1];
    slot.parent = parent;
    slot.child = child;
    slot.hash = key.hash;
    slot.length = static_cast<uint32_t>(text.size());

    place(slot, text.data());
    used_++;
}

void Router::LiteralTable::place(const Slot &slot, const char *text)
{
    size_t mask = slots_.size() - 1;
    size_t i = slot.hash & mask;

    while (slots_[i].child != kNone) {
        i = (i + 1) & mask;
    }

    slots_[i] = slot;
    texts_[i] = text;
}

void Router::LiteralTable::grow()
{
    std::vector<Slot> oldSlots = std::move(slots_);
    std::vector<const char *> oldTexts = std::move(texts_);
    size_t size = oldSlots.empty() ? 64 : oldSlots.size() * 2;

    slots_.assign(size, Slot());
    texts_.assign(size, nullptr);

    for (size_t i = 0; i < oldSlots.size(); i++) {
        if (oldSlots[i].child != kNone) {
            place(oldSlots[i], oldTexts[i]);
        }
    }
}

std::unique_ptr<Router> Router::build(const unsigned char *snapshot, size_t len)
{
    return std::make_unique<Router>(decodeSnapshot(snapshot, len));
}

Router::Router(Snapshot snapshot) : snapshot_(std::move(snapshot))
{
    std::vector<std::pair<uint32_t, Entry>> pending;

    nodes_.emplace_back(); // the root: the empty prefix

    for (uint32_t s = 0; s < snapshot_.services.size(); s++) {
        const Service &service = snapshot_.services[s];

        anyPending_ |= service.state == DISCOVERY_STATE_PENDING;
        for (const Route &route : service.routeSet.routes) {
            addRoute(route, s, pending);
        }
    }

    placeEntries(pending);
}

void Router::addRoute(const Route &route, uint32_t service,
                      std::vector<std::pair<uint32_t, Entry>> &pending)
{
    Template tpl;

    if (!compileTemplate(route.path, tpl)) {
        return; // the decoder has checked it already
    }

    uint32_t node = 0;
    for (const Segment &seg : tpl.segments) {
        node = child(node, seg);
    }

    pending.push_back(
        {node, Entry{route.methods, service, route.path, route.authRequired}});
}

uint32_t Router::child(uint32_t node, const Segment &seg)
{
    auto id = static_cast<uint32_t>(nodes_.size());

    if (seg.kind == SegmentKind::Literal) {
        uint32_t found = literals_.find(node, seg.text);
        if (found != kNone) {
            return found;
        }
        literals_.insert(node, seg.text, id);
        nodes_[node].hasLiterals = true;
        nodes_.emplace_back();
        return id;
    }

    size_t slot =
        std::find(std::begin(kSlotKinds), std::end(kSlotKinds), seg.kind)
        - std::begin(kSlotKinds);
    uint32_t &param = nodes_[node].params[slot];

    if (param != kNone) {
        return param;
    }

    param = id;
    nodes_.emplace_back(); // invalidates `param`, set before
    return id;
}

/*
 * Groups entries by terminal, keeping roster order, and resolves conflicts
 * the way findConflicts() reports them: the first entry holding a method
 * keeps it, later ones lose it and vanish once they have nothing left.
 */
void Router::placeEntries(std::vector<std::pair<uint32_t, Entry>> &pending)
{
    std::stable_sort(
        pending.begin(), pending.end(),
        [](const auto &a, const auto &b) { return a.first < b.first; });

    entries_.reserve(pending.size());

    for (size_t i = 0; i < pending.size();) {
        uint32_t id = pending[i].first;
        Node &node = nodes_[id];
        uint32_t claimed = 0;

        node.firstEntry = static_cast<uint32_t>(entries_.size());

        for (; i < pending.size() && pending[i].first == id; i++) {
            Entry entry = pending[i].second;
            entry.methods &= ~claimed;
            claimed |= pending[i].second.methods;
            if (entry.methods != 0) {
                entries_.push_back(entry);
            }
        }

        node.entryCount =
            static_cast<uint32_t>(entries_.size()) - node.firstEntry;
    }
}

Match Router::match(std::string_view method, std::string_view path,
                    bool websocket) const
{
    if (path.empty() || path.front() != '/') {
        return Match();
    }

    Search s;
    s.want = websocket ? kGet : methodBit(method);
    if (s.want == kHead) {
        s.want |= kGet; // HEAD is served by GET routes
    }

    if (search(0, path, s)) {
        return answer(*s.found);
    }

    if (s.firstTerminal != nullptr) {
        // CORS preflight goes to the owner of the path
        if (s.want == kOptions) {
            return answer(entries_[s.firstTerminal->firstEntry]);
        }
        return notAllowed(*s.firstTerminal);
    }

    Match m;
    m.status = anyPending_ ? MatchStatus::Pending : MatchStatus::NotFound;
    return m;
}

/*
 * `rest` is what follows the node's prefix: empty, or "/" and more.  True
 * once an entry allows the method; terminals that match the path but not
 * the method are remembered in s.firstTerminal.
 */
bool Router::search(uint32_t id, std::string_view rest, Search &s) const
{
    const Node &node = nodes_[id];

    if (rest.empty()) {
        return visitTerminal(node, s);
    }

    std::string_view tail = rest.substr(1);
    size_t slash = tail.find('/');
    std::string_view segment = tail.substr(0, slash);
    std::string_view after = slash == std::string_view::npos
                                 ? std::string_view()
                                 : tail.substr(slash);

    if (node.hasLiterals) {
        uint32_t next = literals_.find(id, segment);
        if (next != kNone && search(next, after, s)) {
            return true;
        }
    }

    for (size_t slot = 0; slot < kPathSlot; slot++) {
        uint32_t next = node.params[slot];
        if (next != kNone && segmentMatches(kSlotKinds[slot], segment)
            && search(next, after, s)) {
            return true;
        }
    }

    // {x:path} takes the rest, slashes included, even when empty
    uint32_t next = node.params[kPathSlot];
    return next != kNone && visitTerminal(nodes_[next], s);
}

bool Router::visitTerminal(const Node &node, Search &s) const
{
    if (node.entryCount == 0) {
        return false;
    }

    if (s.firstTerminal == nullptr) {
        s.firstTerminal = &node;
    }

    const Entry *entry = &entries_[node.firstEntry];
    const Entry *end = entry + node.entryCount;

    for (; entry != end; entry++) {
        if (entry->methods & s.want) {
            s.found = entry;
            return true;
        }
    }

    return false;
}

Match Router::answer(const Entry &entry) const
{
    const Service &service = snapshot_.services[entry.service];
    Match m;

    m.status = service.state == DISCOVERY_STATE_UNHEALTHY
                   ? MatchStatus::Unavailable
                   : MatchStatus::Found;
    m.service = service.name;
    m.upstream = service.upstream;
    m.route = entry.route;
    m.authRequired = entry.authRequired;
    return m;
}

Match Router::notAllowed(const Node &node) const
{
    const Entry *entry = &entries_[node.firstEntry];
    const Service &owner = snapshot_.services[entry->service];
    uint32_t allow = kOptions;

    for (uint32_t i = 0; i < node.entryCount; i++) {
        allow |= entry[i].methods;
    }
    if (allow & kGet) {
        allow |= kHead;
    }

    Match m;
    m.status = MatchStatus::NotAllowed;
    m.service = owner.name;
    m.upstream = owner.upstream;
    m.allow = allowHeader(allow);
    return m;
}

} // namespace discovery
