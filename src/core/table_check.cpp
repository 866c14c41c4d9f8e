// table_check.cpp: conflicts, overlaps and rejections, on a trie of shapes.
#include "table_check.hpp"

#include "json_escape.hpp"
#include "methods.hpp"
#include "route_template.hpp"

#include <algorithm>
#include <array>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

namespace discovery {

namespace {

constexpr uint32_t kNone = UINT32_MAX;

// Parameter slots in the router's precedence order; Path comes last.
constexpr SegmentKind kSlotKinds[] = {
    SegmentKind::Int, SegmentKind::Float, SegmentKind::Uuid,
    SegmentKind::Str, SegmentKind::Path,
};
constexpr size_t kSlots = 5;
constexpr size_t kPathSlot = 4;

size_t slotOf(SegmentKind kind)
{
    return static_cast<size_t>(
        std::find(std::begin(kSlotKinds), std::end(kSlotKinds), kind)
        - std::begin(kSlotKinds));
}

/*
 * A request segment, as far as the lookup's work goes, is one of these:
 * the set of typed parameters that take it.  Literal children are kept by
 * the same classes.
 */
enum SegmentClass { kEmpty, kIntLike, kFloatLike, kUuidLike, kOther, kClasses };

// The parameter slots (bits) that take a segment of each class.
constexpr unsigned kTakenBy[kClasses] = {
    0,                     // "": none
    1u << 0 | 1u << 1 | 1u << 3, // "42": int, float, str
    1u << 1 | 1u << 3,     // "4.2": float, str
    1u << 2 | 1u << 3,     // a uuid: uuid, str
    1u << 3,               // anything else: str
};

SegmentClass classify(std::string_view segment)
{
    if (segment.empty()) {
        return kEmpty;
    }
    if (segmentMatches(SegmentKind::Int, segment)) {
        return kIntLike;
    }
    if (segmentMatches(SegmentKind::Float, segment)) {
        return kFloatLike;
    }
    if (segmentMatches(SegmentKind::Uuid, segment)) {
        return kUuidLike;
    }
    return kOther;
}

// Whether some request segment satisfies both converters (not Path).
bool kindsMeet(size_t a, size_t b)
{
    for (unsigned taken : kTakenBy) {
        if ((taken >> a & 1) && (taken >> b & 1)) {
            return true;
        }
    }
    return false;
}

// Whether some request segment satisfies both (neither a {x:path}).
bool segmentsMeet(const Segment &a, const Segment &b)
{
    if (a.kind == SegmentKind::Literal && b.kind == SegmentKind::Literal) {
        return a.text == b.text;
    }
    if (a.kind == SegmentKind::Literal) {
        return segmentMatches(b.kind, a.text);
    }
    if (b.kind == SegmentKind::Literal) {
        return segmentMatches(a.kind, b.text);
    }
    return kindsMeet(slotOf(a.kind), slotOf(b.kind));
}

size_t pathIndex(const std::vector<Segment> &shape)
{
    for (size_t i = 0; i < shape.size(); i++) {
        if (shape[i].kind == SegmentKind::Path) {
            return i;
        }
    }
    return shape.size();
}

/*
 * Whether some request path matches both shapes.  A {x:path} takes one
 * request segment or more, whatever they hold, so the fixed segments before
 * it face the other shape's from the start and those after it the other's
 * from the end.  Where both have one, a long enough request puts the fixed
 * segments of each that face nothing fixed in the other's parameter.
 */
bool shapesMeet(const std::vector<Segment> &a, const std::vector<Segment> &b)
{
    size_t pa = pathIndex(a);
    size_t pb = pathIndex(b);
    size_t heads = std::min(pa, pb);
    size_t tails = 0;

    if (pa == a.size() && pb == b.size()) {
        if (a.size() != b.size()) {
            return false;
        }
    } else if (pa == a.size() || pb == b.size()) {
        // the fixed one: at least one segment for the other's parameter
        const auto &fixed = pa == a.size() ? a : b;
        const auto &other = pa == a.size() ? b : a;
        if (fixed.size() < other.size()) {
            return false;
        }
        tails = other.size() - pathIndex(other) - 1;
    } else {
        tails = std::min(a.size() - pa - 1, b.size() - pb - 1);
    }

    for (size_t i = 0; i < heads; i++) {
        if (!segmentsMeet(a[i], b[i])) {
            return false;
        }
    }
    for (size_t j = 1; j <= tails; j++) {
        if (!segmentsMeet(a[a.size() - j], b[b.size() - j])) {
            return false;
        }
    }
    return true;
}

// Costs grow exponentially in hostile tables: kept saturated, not wrapped.
uint64_t addCost(uint64_t a, uint64_t b)
{
    constexpr uint64_t kMax = uint64_t{1} << 62;
    return a + b > kMax ? kMax : a + b;
}

uint64_t timesCost(uint64_t n, uint64_t cost)
{
    constexpr uint64_t kMax = uint64_t{1} << 62;
    return n != 0 && cost > kMax / n ? kMax : n * cost;
}

// GET routes serve HEAD as well
uint32_t served(uint32_t methods)
{
    return (methods & kGet) ? methods | kHead : methods;
}

struct RouteRef {
    uint32_t service = kNone;
    uint32_t route = kNone;

    bool operator==(const RouteRef &o) const
    {
        return service == o.service && route == o.route;
    }
};

/*
 * A route's methods, and whether it answers its shape's preflights.  An
 * OPTIONS request goes to the first route of its path that publishes
 * OPTIONS, and when none does to the first route that matches the path (as
 * its CORS preflight): the first of the first shape the lookup reaches.
 * Of a shape's routes, the one that publishes OPTIONS answers them
 * (conflicts leave one at most), else the first.
 */
struct Claim {
    uint32_t methods;
    bool preflights;
};

/*
 * The methods of the requests route `from` matches that go to route `by`
 * instead, on a path both match.  With by first on it (by shadows from),
 * those both serve: a method by lacks goes on to from.  And OPTIONS, where
 * from answers its shape's preflights without publishing OPTIONS and by
 * answers its own: with by first on the path, or with from first when by
 * publishes OPTIONS, which the lookup goes on to find.  A method from does
 * not serve is not taken from it: without by the gateway answers 405
 * itself.  As for every method, by and from are a pair: a third route may
 * come first on the paths they share.
 */
uint32_t takenFrom(Claim by, Claim from, bool byFirst)
{
    uint32_t methods = byFirst ? served(by.methods) & served(from.methods) : 0;

    if (from.preflights && !(from.methods & kOptions) && by.preflights
        && (byFirst || (by.methods & kOptions))) {
        methods |= kOptions;
    }
    return methods;
}

/*
 * The shapes of the routed templates, one node per template prefix, as the
 * router builds them.  Each node knows the most nodes a lookup can visit
 * from it (`cost`), so that a route's effect on the bound is known before
 * it is added, in time proportional to its length.
 */
class ShapeTrie {
public:
    struct Terminal {
        RouteRef ref;
        uint32_t methods; // routed, after conflicts
        uint32_t node;    // of its shape
    };

    ShapeTrie() : nodes_(1) {}

    // Room for n nodes and some literal edges, so that adding them moves
    // little.
    void reserve(size_t nodes, size_t literals);

    // Nodes are numbered 0 (the root) to size() - 1.
    size_t size() const { return nodes_.size(); }

    // The bound on a lookup's visits, were `tpl` added.
    uint64_t costWith(const Template &tpl) const;

    // The node of `tpl`, created with its ancestors as needed.
    uint32_t add(const Template &tpl);

    // The node of `tpl`, or kNone.
    uint32_t find(const Template &tpl) const;

    void addTerminal(const Terminal &t)
    {
        nodes_[t.node].terminals.push_back(t);
    }

    // The routes of `node` (kNone: none), in roster order.
    const std::vector<Terminal> &terminals(uint32_t node) const
    {
        static const std::vector<Terminal> none;
        return node == kNone ? none : nodes_[node].terminals;
    }

    uint64_t cost() const { return nodes_[0].cost; }

    /*
     * Calls found(terminal) for routes that `tpl` shadows: on some request
     * path both match, the lookup reaches tpl's node first.  Stops when
     * found returns false.
     */
    template <typename F>
    void shadowed(const Template &tpl, F &&found) const;

    /*
     * Calls found(terminal) for routes that shadow `tpl`: on some request
     * path both match, the lookup reaches their node first.  Stops when
     * found returns false.
     */
    template <typename F>
    void shadowing(const Template &tpl, F &&found) const;

private:
    struct Node {
        std::array<uint32_t, kSlots> params{kNone, kNone, kNone, kNone,
                                            kNone};
        // the children by literal edge, a list (found by literals_)
        uint32_t firstLiteral = kNone;
        uint32_t nextLiteral = kNone; // the next child of the parent
        std::vector<Terminal> terminals;
        uint64_t cost = 1;
        // of the costliest literal child in each class
        std::array<uint64_t, kClasses> literalCost{};
        // of a {x:path} node: bit d for routes with d segments after it
        uint32_t suffixDepths = 0;
        uint32_t parent = kNone;
        uint32_t depth = 0;                     // segments of its prefix
        Segment edge{SegmentKind::Literal, {}}; // from the parent
    };

    // What one child's new cost makes of its parent's.
    struct Change {
        const Segment *edge = nullptr;
        uint64_t cost = 0;
        uint32_t suffixDepths = 0; // of a {x:path} child
    };

    uint64_t nodeCost(const Node &node, Change change) const;
    uint32_t child(uint32_t node, const Segment &seg) const;
    void shapeOf(uint32_t node, std::vector<Segment> &shape) const;

    template <typename F>
    bool walk(uint32_t node, const Template &tpl, size_t i, bool ahead,
              F &found) const;
    template <typename F>
    bool collectMeeting(uint32_t node, const Template &tpl, size_t maxDepth,
                        F &found) const;

    /*
     * The literal edges of every node in one open-addressed table: a map
     * per node cost two allocations for each node with literal children,
     * which most are.
     */
    struct LiteralEdge {
        uint32_t parent = kNone; // kNone: a free slot
        uint32_t child = kNone;
        std::string_view text;
    };

    // The first slot to look at, of a table of 1 << bits.
    static size_t edgeSlot(uint32_t parent, std::string_view text,
                           unsigned bits)
    {
        uint64_t h = (std::hash<std::string_view>()(text) + parent)
                     * 0x9e3779b97f4a7c15ull;
        return static_cast<size_t>(h >> (64 - bits));
    }

    uint32_t literalChild(uint32_t parent, std::string_view text) const;
    void addLiteral(uint32_t parent, std::string_view text, uint32_t child);
    void growLiterals(size_t n);

    std::vector<Node> nodes_;
    std::vector<LiteralEdge> literals_; // 1 << literalBits_, half full at most
    unsigned literalBits_ = 0;
    size_t literalCount_ = 0;
    mutable std::vector<Segment> shape_; // collectMeeting()'s, reused
    mutable std::vector<uint32_t> line_; // costWith()'s and add()'s
};

void ShapeTrie::reserve(size_t nodes, size_t literals)
{
    nodes_.reserve(nodes);
    growLiterals(literals);
}

// Room for n literal edges or more, at most half the slots taken.
void ShapeTrie::growLiterals(size_t n)
{
    unsigned bits = 4;
    while ((size_t{1} << bits) < 2 * n) {
        bits++;
    }
    if ((size_t{1} << bits) <= literals_.size()) {
        return;
    }

    std::vector<LiteralEdge> old(size_t{1} << bits);
    old.swap(literals_);
    literalBits_ = bits;
    literalCount_ = 0;
    for (const LiteralEdge &e : old) {
        if (e.parent != kNone) {
            addLiteral(e.parent, e.text, e.child);
        }
    }
}

uint32_t ShapeTrie::literalChild(uint32_t parent, std::string_view text) const
{
    if (literals_.empty()) {
        return kNone;
    }

    size_t mask = literals_.size() - 1;

    for (size_t i = edgeSlot(parent, text, literalBits_);;
         i = (i + 1) & mask) {
        const LiteralEdge &e = literals_[i];
        if (e.parent == kNone) {
            return kNone;
        }
        if (e.parent == parent && e.text == text) {
            return e.child;
        }
    }
}

void ShapeTrie::addLiteral(uint32_t parent, std::string_view text,
                           uint32_t child)
{
    if (2 * (literalCount_ + 1) > literals_.size()) {
        growLiterals(literalCount_ + 1);
    }

    size_t mask = literals_.size() - 1;
    size_t i = edgeSlot(parent, text, literalBits_);

    while (literals_[i].parent != kNone) {
        i = (i + 1) & mask;
    }
    literals_[i] = {parent, child, text};
    literalCount_++;
}

uint32_t ShapeTrie::child(uint32_t node, const Segment &seg) const
{
    if (seg.kind != SegmentKind::Literal) {
        return nodes_[node].params[slotOf(seg.kind)];
    }
    return literalChild(node, seg.text);
}

void ShapeTrie::shapeOf(uint32_t node, std::vector<Segment> &shape) const
{
    shape.resize(nodes_[node].depth);
    for (; node != 0; node = nodes_[node].parent) {
        shape[nodes_[node].depth - 1] = nodes_[node].edge;
    }
}

/*
 * The router's search(): one visit for the node; with more path to match,
 * the literal child that takes the next segment, every typed parameter
 * that takes it, and the {x:path} child's walks, one per suffix length of
 * its routes (a leaf's is one visit).  The costliest request segment is
 * that of some class.
 */
uint64_t ShapeTrie::nodeCost(const Node &node, Change change) const
{
    std::array<uint64_t, kClasses> literal = node.literalCost;
    std::array<uint64_t, kSlots> param{};
    uint32_t suffixDepths = 0;

    for (size_t slot = 0; slot < kSlots; slot++) {
        if (node.params[slot] != kNone) {
            param[slot] = nodes_[node.params[slot]].cost;
        }
    }
    if (node.params[kPathSlot] != kNone) {
        suffixDepths = nodes_[node.params[kPathSlot]].suffixDepths;
    }

    if (change.edge != nullptr) {
        if (change.edge->kind == SegmentKind::Literal) {
            uint64_t &c = literal[classify(change.edge->text)];
            c = std::max(c, change.cost);
        } else {
            param[slotOf(change.edge->kind)] = change.cost;
        }
        if (change.edge->kind == SegmentKind::Path) {
            suffixDepths = change.suffixDepths;
        }
    }

    uint64_t worst = 0;

    for (size_t c = 0; c < kClasses; c++) {
        uint64_t sum = literal[c];
        for (size_t slot = 0; slot < kPathSlot; slot++) {
            if (kTakenBy[c] >> slot & 1) {
                sum = addCost(sum, param[slot]);
            }
        }
        worst = std::max(worst, sum);
    }

    // a walk below a {x:path} child per suffix length, each within the
    // child's cost (more than a walk with few segments left can reach)
    uint64_t path =
        timesCost(__builtin_popcount(suffixDepths), param[kPathSlot]);

    return addCost(1, addCost(path, worst));
}

uint64_t ShapeTrie::costWith(const Template &tpl) const
{
    const size_t depth = tpl.segments.size();
    std::vector<uint32_t> &line = line_; // existing nodes
    line.assign(depth + 1, kNone);
    line[0] = 0;

    for (size_t i = 0; i < depth && line[i] != kNone; i++) {
        line[i + 1] = child(line[i], tpl.segments[i]);
    }

    // from the template's node up: each level with its child's new cost
    static const Node kNew;
    uint64_t cost = 1;

    for (size_t i = depth; i-- > 0;) {
        const Node &parent = line[i] != kNone ? nodes_[line[i]] : kNew;
        Change change{&tpl.segments[i], cost};
        if (tpl.segments[i].kind == SegmentKind::Path) {
            change.suffixDepths = 1u << (depth - i - 1);
            if (line[i + 1] != kNone) {
                change.suffixDepths |= nodes_[line[i + 1]].suffixDepths;
            }
        }
        cost = nodeCost(parent, change);
    }

    return depth == 0 ? nodes_[0].cost : cost;
}

uint32_t ShapeTrie::find(const Template &tpl) const
{
    uint32_t node = 0;

    for (const Segment &seg : tpl.segments) {
        node = child(node, seg);
        if (node == kNone) {
            break;
        }
    }

    return node;
}

uint32_t ShapeTrie::add(const Template &tpl)
{
    std::vector<uint32_t> &line = line_;
    line.assign(1, 0);

    for (const Segment &seg : tpl.segments) {
        uint32_t next = child(line.back(), seg);

        if (next == kNone) {
            next = static_cast<uint32_t>(nodes_.size());
            nodes_.emplace_back(); // invalidates references into nodes_
            Node &parent = nodes_[line.back()];
            if (seg.kind == SegmentKind::Literal) {
                addLiteral(line.back(), seg.text, next);
                nodes_[next].nextLiteral = parent.firstLiteral;
                parent.firstLiteral = next;
            } else {
                parent.params[slotOf(seg.kind)] = next;
            }
            nodes_[next].parent = line.back();
            nodes_[next].depth = static_cast<uint32_t>(line.size());
            nodes_[next].edge = seg;
        }
        if (seg.kind == SegmentKind::Path) {
            size_t after = tpl.segments.size() - line.size();
            nodes_[next].suffixDepths |= 1u << after;
        }
        line.push_back(next);
    }

    // costs only grow as routes are added: a max per class stays right
    for (size_t i = line.size() - 1; i-- > 0;) {
        Node &parent = nodes_[line[i]];
        const Segment &seg = tpl.segments[i];
        uint64_t childCost = nodes_[line[i + 1]].cost;

        if (seg.kind == SegmentKind::Literal) {
            uint64_t &c = parent.literalCost[classify(seg.text)];
            c = std::max(c, childCost);
        }
        parent.cost = nodeCost(parent, {});
    }

    return line.back();
}

template <typename F>
void ShapeTrie::shadowed(const Template &tpl, F &&found) const
{
    walk(0, tpl, 0, false, found);
}

/*
 * Two routes of different shapes that meet come in the same order on every
 * path both match (the edges where their templates part decide it): those
 * that shadow tpl are the routes that meet it, less those it shadows and
 * those of its own shape.  A walk that starts `ahead` meets them all.
 */
template <typename F>
void ShapeTrie::shadowing(const Template &tpl, F &&found) const
{
    auto key = [](const RouteRef &ref) {
        return uint64_t{ref.service} << 32 | ref.route;
    };
    std::unordered_set<uint64_t> after;
    uint32_t own = find(tpl);

    shadowed(tpl, [&](const Terminal &t) {
        after.insert(key(t.ref));
        return true;
    });

    auto before = [&](const Terminal &t) {
        return t.node == own || after.count(key(t.ref)) != 0 || found(t);
    };
    walk(0, tpl, 0, true, before);
}

/*
 * Below `node`, the routes whose templates meet tpl's segments from i on.
 * `ahead`: at an earlier segment tpl's edge came first in the lookup's
 * order (a literal before a parameter, int before str...), so every route
 * met from here is shadowed.  Edges that come before tpl's lead to routes
 * that shadow tpl instead, and are left alone.  Past a {x:path}, on either
 * side, segments no longer face each other one to one: the routes below
 * are compared with tpl whole (collectMeeting).  False once found says stop.
 */
template <typename F>
bool ShapeTrie::walk(uint32_t node, const Template &tpl, size_t i, bool ahead,
                     F &found) const
{
    const Node &n = nodes_[node];

    if (i == tpl.segments.size()) {
        if (!ahead) {
            return true; // the same shape: a conflict, not an overlap
        }
        for (const Terminal &t : n.terminals) {
            if (!found(t)) {
                return false;
            }
        }
        return true;
    }

    const Segment &seg = tpl.segments[i];
    uint32_t path = n.params[kPathSlot];

    if (seg.kind == SegmentKind::Path) {
        if (ahead) {
            return collectMeeting(node, tpl, SIZE_MAX, found);
        }
        // tpl's {x:path} comes after every other edge here.  Below it the
        // lookup walks the routes with more segments after the parameter
        // first, then those with as many, tpl's among them, then those with
        // fewer: tpl shadows the last
        return path == kNone
               || (walk(path, tpl, i + 1, false, found)
                   && collectMeeting(path, tpl, tpl.segments.size() - 1,
                                     found));
    }

    if (seg.kind == SegmentKind::Literal) {
        uint32_t lit = literalChild(node, seg.text);
        if (lit != kNone && !walk(lit, tpl, i + 1, ahead, found)) {
            return false;
        }
        for (size_t slot = 0; slot < kPathSlot; slot++) {
            if (n.params[slot] != kNone
                && segmentMatches(kSlotKinds[slot], seg.text)
                && !walk(n.params[slot], tpl, i + 1, true, found)) {
                return false;
            }
        }
    } else {
        size_t mine = slotOf(seg.kind);

        // literals come before any parameter
        if (ahead) {
            for (uint32_t lit = n.firstLiteral; lit != kNone;
                 lit = nodes_[lit].nextLiteral) {
                if (segmentMatches(seg.kind, nodes_[lit].edge.text)
                    && !walk(lit, tpl, i + 1, true, found)) {
                    return false;
                }
            }
        }
        for (size_t slot = 0; slot < kPathSlot; slot++) {
            if (n.params[slot] == kNone || !kindsMeet(mine, slot)) {
                continue;
            }
            if (slot == mine || slot > mine || ahead) {
                if (!walk(n.params[slot], tpl, i + 1,
                          ahead || slot != mine, found)) {
                    return false;
                }
            }
        }
    }

    // a {x:path} sibling comes after everything else
    return path == kNone || collectMeeting(path, tpl, SIZE_MAX, found);
}

/*
 * Every route at or below `node`, of at most maxDepth segments, that some
 * request matches along with tpl.  For where a {x:path} puts segments out
 * of step with tpl's: the shapes are compared whole.
 */
template <typename F>
bool ShapeTrie::collectMeeting(uint32_t node, const Template &tpl,
                               size_t maxDepth, F &found) const
{
    const Node &n = nodes_[node];

    if (n.depth > maxDepth) {
        return true;
    }

    if (!n.terminals.empty()) {
        shapeOf(node, shape_);
        if (shapesMeet(tpl.segments, shape_)) {
            for (const Terminal &t : n.terminals) {
                if (!found(t)) {
                    return false;
                }
            }
        }
    }

    for (uint32_t lit = n.firstLiteral; lit != kNone;
         lit = nodes_[lit].nextLiteral) {
        if (!collectMeeting(lit, tpl, maxDepth, found)) {
            return false;
        }
    }
    for (uint32_t p : n.params) {
        if (p != kNone && !collectMeeting(p, tpl, maxDepth, found)) {
            return false;
        }
    }
    return true;
}

/*
 * The route holding each method of one shape (service kNone: free).  Few
 * routes have extension methods: their slots exist only where one does,
 * which keeps a large table's map small.
 */
class Owners {
public:
    const RouteRef &operator[](size_t bit) const
    {
        static const RouteRef none;
        return bit < kMethodCount ? nine_[bit]
               : bit - kMethodCount < extension_.size()
                   ? extension_[bit - kMethodCount]
                   : none;
    }

    void set(size_t bit, RouteRef ref)
    {
        if (bit < kMethodCount) {
            nine_[bit] = ref;
            return;
        }
        if (bit - kMethodCount >= extension_.size()) {
            extension_.resize(bit - kMethodCount + 1);
        }
        extension_[bit - kMethodCount] = ref;
    }

private:
    std::array<RouteRef, kMethodCount> nine_;
    std::vector<RouteRef> extension_;
};

const Route &routeOf(const Snapshot &snap, uint32_t service, uint32_t route)
{
    return snap.services[service].routeSet.routes[route];
}

std::string routeText(const Snapshot &snap, uint32_t service, uint32_t route)
{
    return routeOf(snap, service, route).path + " of "
           + quoted(snap.services[service].name);
}

// Of a route with `methods` in a shape of `routes` (itself among them, or
// to be added after them).
bool answersPreflights(const std::vector<ShapeTrie::Terminal> &routes,
                       RouteRef self, uint32_t methods)
{
    return (methods & kOptions)
           || ((routes.empty() || routes.front().ref == self)
               && std::none_of(routes.begin(), routes.end(),
                               [](const ShapeTrie::Terminal &t) {
                                   return (t.methods & kOptions) != 0;
                               }));
}

/*
 * Calls found(route, methods) for the routes of the trie that route `self`
 * takes requests from, with their methods: self has `methods` at the shape
 * of tpl, `node` (kNone: a new one), among its routes or to be added after
 * them.  The routes it shadows and those that shadow it (takenFrom), and
 * where self publishes OPTIONS, its shape's first route, whose preflights
 * it answers.  Stops when found returns false.
 */
template <typename F>
void forEachTaken(const ShapeTrie &trie, const Template &tpl, uint32_t node,
                  RouteRef self, uint32_t methods, F &&found)
{
    const std::vector<ShapeTrie::Terminal> &shape = trie.terminals(node);
    Claim mine{methods, answersPreflights(shape, self, methods)};
    bool more = true;

    auto takes = [&](bool first) {
        return [&, first](const ShapeTrie::Terminal &t) {
            Claim theirs{t.methods, answersPreflights(trie.terminals(t.node),
                                                      t.ref, t.methods)};
            uint32_t taken = takenFrom(mine, theirs, first);
            more = taken == 0 || found(t, taken);
            return more;
        };
    };

    trie.shadowed(tpl, takes(true));
    if (!more || !(methods & kOptions)) {
        return;
    }
    trie.shadowing(tpl, takes(false));
    if (more && !shape.empty() && !(shape.front().ref == self)) {
        found(shape.front(), kOptions); // which does not publish OPTIONS
    }
}

/*
 * Fills the findings of the routes `only` names (only[s]: route indices of
 * service s, ascending; nullptr: every route), in roster and document
 * order, as though the table had no other routes; sorts nothing.
 */
void checkRoutes(Snapshot &snap, const std::vector<std::vector<uint32_t>> *only)
{
    std::vector<Owners> owners;  // of the shapes that have routes
    std::vector<uint32_t> ownersOf; // by shape node: index in owners
    std::vector<ShapeTrie::Terminal> routed; // each routed route, kept methods
    ShapeTrie trie;
    Template tpl;
    size_t total = 0;

    for (uint32_t s = 0; s < snap.services.size(); s++) {
        total += only != nullptr ? (*only)[s].size()
                                 : snap.services[s].routeSet.routes.size();
    }
    // most templates share their first segments: about two nodes a route
    trie.reserve(2 * total + 1, total);
    routed.reserve(total);

    MethodNames &extension = snap.extensionMethods;

    snap.conflicts.clear();
    snap.overlaps.clear();
    snap.rejections.clear();
    extension.clear();

    for (uint32_t s = 0; s < snap.services.size(); s++) {
        const auto &routes = snap.services[s].routeSet.routes;
        size_t count = only != nullptr ? (*only)[s].size() : routes.size();

        for (size_t i = 0; i < count; i++) {
            auto r = only != nullptr ? (*only)[s][i] : uint32_t(i);

            if (!compileTemplate(routes[r].path, tpl)) {
                continue; // the decoder has checked it already
            }

            // extension methods new to the table get the next free bits
            uint32_t kept = routes[r].methods;
            MethodNames added;
            std::string reason;

            for (const std::string &name : routes[r].extensionMethods) {
                uint32_t bit = methodBit(name, extension);
                size_t index = extension.size() + added.size();

                if (bit == 0 && index < kMaxExtensionMethods) {
                    bit = 1u << (kMethodCount + index);
                    added.push_back(name);
                } else if (bit == 0 && reason.empty()) {
                    reason = "method " + name + ": the table has "
                             + std::to_string(kMaxExtensionMethods)
                             + " extension methods already";
                }
                kept |= bit;
            }

            // the methods earlier routes of this shape hold are lost
            uint32_t node = trie.find(tpl);
            std::vector<Conflict> lost;

            if (node != kNone && node < ownersOf.size()
                && ownersOf[node] != kNone) {
                const Owners &held = owners[ownersOf[node]];

                for (size_t m = 0; m < kMethodBits; m++) {
                    const RouteRef &owner = held[m];
                    if (!(kept & (1u << m)) || owner.service == kNone) {
                        continue;
                    }
                    kept &= ~(1u << m);
                    if (owner.service == s) {
                        continue; // a duplicate within one service
                    }
                    auto same = std::find_if(
                        lost.begin(), lost.end(), [&](const Conflict &c) {
                            return c.winnerService == owner.service
                                   && c.winnerRoute == owner.route;
                        });
                    if (same != lost.end()) {
                        same->methods |= 1u << m;
                    } else {
                        lost.push_back(
                            {1u << m, owner.service, owner.route, s, r});
                    }
                }
            }

            if (reason.empty() && snap.denyOverlaps && kept != 0) {
                // the trie holds the routes before this one
                auto shadows = [&](const ShapeTrie::Terminal &t, uint32_t) {
                    if (t.ref.service == s) {
                        return true;
                    }
                    const Route &other =
                        routeOf(snap, t.ref.service, t.ref.route);
                    reason = "shadows " + snap.services[t.ref.service].name
                             + " " + other.path;
                    return false;
                };
                forEachTaken(trie, tpl, node, {s, r}, kept, shadows);
            }

            if (reason.empty()) {
                uint64_t cost = trie.costWith(tpl);
                if (cost > kLookupVisitLimit) {
                    reason = "lookup too costly: a request could visit "
                             + std::to_string(cost)
                             + " trie nodes, the limit is "
                             + std::to_string(kLookupVisitLimit);
                }
            }

            if (!reason.empty()) {
                snap.rejections.push_back({s, r, std::move(reason)});
                continue;
            }

            extension.insert(extension.end(), added.begin(), added.end());
            node = trie.add(tpl);
            snap.conflicts.insert(snap.conflicts.end(), lost.begin(),
                                  lost.end());

            if (kept == 0) {
                continue; // in the router's trie, with no entry
            }

            if (node >= ownersOf.size()) {
                ownersOf.resize(trie.size(), kNone);
            }
            if (ownersOf[node] == kNone) {
                ownersOf[node] = static_cast<uint32_t>(owners.size());
                owners.emplace_back();
            }
            Owners &held = owners[ownersOf[node]];
            for (size_t m = 0; m < kMethodBits; m++) {
                if (kept & (1u << m)) {
                    held.set(m, {s, r});
                }
            }

            trie.addTerminal({{s, r}, kept, node});
            routed.push_back({{s, r}, kept, node});
        }
    }

    for (const ShapeTrie::Terminal &route : routed) {
        const RouteRef &ref = route.ref;

        compileTemplate(routeOf(snap, ref.service, ref.route).path, tpl);

        forEachTaken(trie, tpl, route.node, ref, route.methods,
                     [&](const ShapeTrie::Terminal &t, uint32_t methods) {
                         if (t.ref.service != ref.service) {
                             snap.overlaps.push_back({methods, ref.service,
                                                      ref.route, t.ref.service,
                                                      t.ref.route});
                         }
                         return true;
                     });
    }
}

// The order checkTable() gives its findings.
void sortFindings(Snapshot &snap)
{
    auto conflictKey = [](const Conflict &c) {
        return std::tie(c.loserService, c.loserRoute, c.winnerService,
                        c.winnerRoute);
    };
    std::sort(snap.conflicts.begin(), snap.conflicts.end(),
              [&](const Conflict &a, const Conflict &b) {
                  return conflictKey(a) < conflictKey(b);
              });

    auto overlapKey = [](const Overlap &o) {
        return std::tie(o.service, o.route, o.shadowedService, o.shadowedRoute,
                        o.methods);
    };
    std::sort(snap.overlaps.begin(), snap.overlaps.end(),
              [&](const Overlap &a, const Overlap &b) {
                  return overlapKey(a) < overlapKey(b);
              });

    // found in roster and document order, one per route
    std::sort(snap.rejections.begin(), snap.rejections.end(),
              [](const Rejection &a, const Rejection &b) {
                  return std::tie(a.service, a.route)
                         < std::tie(b.service, b.route);
              });
}

/*
 * A route's first segment, as the template has it.  Routes whose first
 * segments differ, both literal, never meet: they are in different
 * subtrees of the trie's root, and with no parameter at the root, a
 * lookup goes down one of them only.
 */
std::string_view firstSegment(std::string_view path)
{
    if (path.empty()) {
        return path;
    }
    path.remove_prefix(1);
    return path.substr(0, path.find('/'));
}

// A route the split by first segments cannot take: the root's parameters
// meet every subtree, and extension methods are numbered table-wide.
bool splitsBadly(const Route &route)
{
    std::string_view first = firstSegment(route.path);
    return (!first.empty() && first.front() == '{')
           || !route.extensionMethods.empty();
}

/*
 * The routes of a changed service that are the same as before (template,
 * methods) and in the same order: each old route's index now, or kNone
 * for those that went, changed or moved.  A route that moved is taken as
 * gone and come again, which keeps the order of the others as it was.
 */
std::vector<uint32_t> sameRoutes(const std::vector<Route> &before,
                                 const std::vector<Route> &now)
{
    std::vector<uint32_t> nowOf(before.size(), kNone);
    auto same = [](const Route &a, const Route &b) {
        return a.path == b.path && a.methods == b.methods
               && a.extensionMethods == b.extensionMethods;
    };

    // most changes add or remove a few routes in one place: the routes
    // before and after it are matched in a walk, the rest by their paths
    uint32_t head = 0, tail = 0;
    while (head < before.size() && head < now.size()
           && same(before[head], now[head])) {
        nowOf[head] = head;
        head++;
    }
    while (tail < before.size() - head && tail < now.size() - head
           && same(before[before.size() - 1 - tail],
                   now[now.size() - 1 - tail])) {
        nowOf[before.size() - 1 - tail] = uint32_t(now.size() - 1 - tail);
        tail++;
    }

    // each path's old routes, last first, to be taken from the back
    std::unordered_map<std::string_view, std::vector<uint32_t>> byPath;
    for (uint32_t i = uint32_t(before.size() - tail); i-- > head;) {
        byPath[before[i].path].push_back(i);
    }

    uint32_t next = head; // the first old index a match may take
    for (uint32_t j = head; j < now.size() - tail; j++) {
        auto it = byPath.find(now[j].path);
        if (it == byPath.end()) {
            continue;
        }
        std::vector<uint32_t> &olds = it->second;
        while (!olds.empty() && olds.back() < next) {
            olds.pop_back();
        }
        if (olds.empty()) {
            continue;
        }
        if (same(before[olds.back()], now[j])) {
            nowOf[olds.back()] = j;
            next = olds.back() + 1;
            olds.pop_back();
        }
    }
    return nowOf;
}

} // namespace

void checkTable(Snapshot &snap)
{
    checkRoutes(snap, nullptr);
    snap.checkedBy = kCheckRules;
    sortFindings(snap);
}

/*
 * Only the routes that share a first segment with a route that changed
 * (came, went, or moved within its service's document) are checked
 * again.  The findings of the others are what they were, their changed
 * services' route indices renumbered: conflicts, overlaps and rejections
 * for deny are between routes that some request matches both, which share
 * their first segment when it is literal; and the lookup bound of a route
 * is its subtree's cost plus one (the root's cost is one more than its
 * costliest literal child's when it has no parameter child), which no
 * other subtree changes.  Routes of other subtrees come and go in roster
 * and document order all the same, so each subtree's routes are judged
 * as in the whole table.  A service named twice is taken as changed
 * throughout, as its route sets in between are not known.
 */
bool checkTableChanged(Snapshot &snap,
                       const std::vector<ChangedService> &changed,
                       size_t *checked)
{
    if (checked != nullptr) { // all of them, unless checked in part
        *checked = 0;
        for (const Service &service : snap.services) {
            *checked += service.routeSet.routes.size();
        }
    }

    if (snap.checkedBy != kCheckRules || !snap.extensionMethods.empty()) {
        checkTable(snap);
        return false;
    }

    std::unordered_set<std::string_view> firsts;
    // by service: nowOf[] of sameRoutes() for a changed one, named once
    std::vector<std::vector<uint32_t>> renumber(snap.services.size());
    std::vector<uint8_t> named(snap.services.size(), 0);

    for (const ChangedService &c : changed) {
        if (c.service >= snap.services.size()) {
            checkTable(snap);
            return false;
        }
        named[c.service] = named[c.service] < 2 ? named[c.service] + 1 : 2;
    }

    auto changes = [&](const Route &route) {
        if (splitsBadly(route)) {
            return false;
        }
        firsts.insert(firstSegment(route.path));
        return true;
    };

    for (const ChangedService &c : changed) {
        const std::vector<Route> &before = c.before->routes;
        const std::vector<Route> &now = snap.services[c.service].routeSet.routes;
        std::vector<uint32_t> nowOf;
        std::vector<bool> stays(now.size(), false);

        if (named[c.service] == 1) {
            nowOf = sameRoutes(before, now);
        } else {
            nowOf.assign(before.size(), kNone);
        }
        for (uint32_t i = 0; i < before.size(); i++) {
            if (nowOf[i] != kNone) {
                stays[nowOf[i]] = true;
            } else if (!changes(before[i])) {
                checkTable(snap);
                return false;
            }
        }
        for (uint32_t j = 0; j < now.size(); j++) {
            if (!stays[j] && !changes(now[j])) {
                checkTable(snap);
                return false;
            }
        }
        if (named[c.service] == 1) {
            renumber[c.service] = std::move(nowOf);
        }
    }

    // every route is asked: a few segments are compared faster than hashed
    std::vector<std::string_view> few(firsts.begin(), firsts.end());
    auto again = [&](std::string_view path) {
        std::string_view first = firstSegment(path);
        if (few.size() > 8) {
            return firsts.count(first) != 0;
        }
        return std::find(few.begin(), few.end(), first) != few.end();
    };
    std::vector<std::vector<uint32_t>> only(snap.services.size());

    for (uint32_t s = 0; s < snap.services.size(); s++) {
        const auto &routes = snap.services[s].routeSet.routes;

        for (uint32_t r = 0; r < routes.size(); r++) {
            if (splitsBadly(routes[r])) {
                checkTable(snap);
                return false;
            }
            if (again(routes[r].path)) {
                only[s].push_back(r);
            }
        }
    }

    /*
     * A finding names routes by their index when it was found: a changed
     * service's route keeps its finding under its index now, unless it is
     * checked again (or went).  kNone: checked again.
     */
    auto kept = [&](uint32_t s, uint32_t r) {
        if (named[s] > 1) {
            return kNone;
        }
        if (named[s] == 1) {
            r = renumber[s][r];
            if (r == kNone) {
                return kNone;
            }
        }
        return again(routeOf(snap, s, r).path) ? kNone : r;
    };
    std::vector<Conflict> conflicts;
    std::vector<Overlap> overlaps;
    std::vector<Rejection> rejections;

    for (Conflict &c : snap.conflicts) {
        uint32_t winner = kept(c.winnerService, c.winnerRoute);
        uint32_t loser = kept(c.loserService, c.loserRoute);
        if (winner != kNone && loser != kNone) {
            c.winnerRoute = winner;
            c.loserRoute = loser;
            conflicts.push_back(std::move(c));
        }
    }
    for (Overlap &o : snap.overlaps) {
        uint32_t route = kept(o.service, o.route);
        uint32_t shadowed = kept(o.shadowedService, o.shadowedRoute);
        if (route != kNone && shadowed != kNone) {
            o.route = route;
            o.shadowedRoute = shadowed;
            overlaps.push_back(std::move(o));
        }
    }
    for (Rejection &j : snap.rejections) {
        uint32_t route = kept(j.service, j.route);
        if (route != kNone) {
            j.route = route;
            rejections.push_back(std::move(j));
        }
    }

    checkRoutes(snap, &only);

    if (checked != nullptr) {
        *checked = 0;
        for (const std::vector<uint32_t> &routes : only) {
            *checked += routes.size();
        }
    }

    auto append = [](auto &to, auto &from) {
        to.insert(to.end(), std::make_move_iterator(from.begin()),
                  std::make_move_iterator(from.end()));
    };
    append(snap.conflicts, conflicts);
    append(snap.overlaps, overlaps);
    append(snap.rejections, rejections);
    sortFindings(snap);
    return true;
}

std::string describeConflict(const Snapshot &snap, const Conflict &c)
{
    return "route conflict: "
           + joinMethods(c.methods, ",", snap.extensionMethods) + " "
           + routeText(snap, c.loserService, c.loserRoute)
           + " is shadowed by "
           + routeText(snap, c.winnerService, c.winnerRoute);
}

std::string describeOverlap(const Snapshot &snap, const Overlap &o)
{
    return "route overlap: "
           + joinMethods(o.methods, ",", snap.extensionMethods) + " "
           + routeText(snap, o.service, o.route) + " shadows "
           + routeText(snap, o.shadowedService, o.shadowedRoute);
}

std::string describeRejection(const Snapshot &snap, const Rejection &r)
{
    return "route " + quoted(routeOf(snap, r.service, r.route).path) + " of "
           + quoted(snap.services[r.service].name) + " rejected: " + r.reason;
}

} // namespace discovery
