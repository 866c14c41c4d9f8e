// router.hpp: the matcher, a trie of path segments laid out as one image.
#ifndef DISCOVERY_ROUTER_HPP
#define DISCOVERY_ROUTER_HPP

#include "huge_pages.hpp"
#include "route_template.hpp"
#include "snapshot.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace discovery {

enum class MatchStatus {
    Found = 0,
    NotFound = 1,    // 404
    NotAllowed = 2,  // 405, allow set
    Unavailable = 3, // 503, the owner is unhealthy
    Pending = 4,     // 503, no match while a service is pending
    Drained = 5,     // 503, the owner is drained (management API)
    Disabled = 6,    // 404, an override disables the route
};

// Views into the router (or static storage): no allocation per lookup.
struct Match {
    MatchStatus status = MatchStatus::NotFound;
    std::string_view service;
    std::string_view upstream;
    std::string_view route;
    std::string_view allow;
    bool authRequired = false;
    Protocol protocol = Protocol::Http; // of the route found
    Streaming streaming = Streaming::Unary;
    uint32_t serviceIndex = 0; // in the roster, where service is set
    // the route's entry in the image (Router::entryNames), where the walk
    // found it; kNoEntry for an override's or none
    uint32_t entry = UINT32_MAX;
};

/*
 * One node per distinct template prefix shape, so routes of different
 * services with the same shape share a terminal, where entries sit in
 * roster order with conflicts already resolved.  A lookup walks the trie
 * depth-first in precedence order (literal, int, float, uuid, str, path)
 * and backtracks; each node is visited at most once per walk, and
 * checkTable() keeps the nodes one lookup can reach under
 * kLookupVisitLimit.  Routes the snapshot rejects are left out.
 *
 * A {x:path} node's subtree holds the segments that follow the parameter
 * in its routes, fixed in number: for each such number the node's routes
 * have, the deepest first, the walk goes on below it with that many
 * segments from the end of the path, the parameter taking what lies
 * before them.
 *
 * The layout is for a cold cache (100,000 routes do not fit in it): every
 * node but the root sits in one open-addressing table, one cache line
 * each, holding the edge that leads to it, what the walk needs to go on,
 * and its terminal's first entry.  A node's slot is picked by a hash of
 * its template prefix ("/a/{int}/b"), which a lookup computes from the path
 * without reading a node: in a large table it prefetches the slots of the
 * levels ahead, so their cache misses overlap instead of following one
 * another.
 *
 * All of it is one image: a header, then arrays and strings addressed by
 * offsets from the image's start, with no pointer in it.  Built once per
 * table (Router::image), it can sit anywhere, in nginx's shared zone
 * where every worker reads the same copy, or in a worker's own memory; a
 * Router is a view of one, made in constant time.
 */
class Router {
    struct Edit;

public:
    // The bytes of a table's router, laid out but not yet placed.
    class Image {
    public:
        size_t size() const { return size_; }
        // writes the image to dst: size() bytes, aligned to kImageAlign
        void write(unsigned char *dst) const;

    private:
        friend class Router;
        struct Parts;
        std::shared_ptr<const Parts> parts_;
        // or update()'s changes to the previous image, which write() reads
        std::shared_ptr<const Edit> edit_;
        size_t size_ = 0;
    };

    static constexpr size_t kImageAlign = 64;

    // Throws Error on a malformed snapshot.
    static Image image(const unsigned char *snapshot, size_t len);
    static Image image(const Snapshot &snapshot);

    /*
     * What a table was before a change, where the change could have made
     * it differ (applyPolls fills it in): enough, with the table after it
     * and the image of the table before, to make the new image from the
     * old one.
     */
    struct TableBefore {
        uint64_t generation = 0;
        // the route sets the change replaced, as they were, by service
        std::vector<std::pair<uint32_t, RouteSet>> routeSets;
        std::vector<Rejection> rejections;
        MethodNames extensionMethods;
        Bytes controls;
    };

    // Which way update() made its image, and what it touched.
    struct UpdateInfo {
        bool incremental = false;
        const char *fallback = ""; // why the whole image was built
        size_t routesRemoved = 0;
        size_t routesAdded = 0;
        size_t terminals = 0; // whose entries were resolved again
        size_t nodesAdded = 0;
        size_t nodesRemoved = 0; // made tombstones
    };

    /*
     * The image of `next`, made from `prev`, the image of the table
     * `before` describes, which is only read, and read again by the
     * Image's write() (keep it as it is until then): what changed (routes
     * added and removed, terminals resolved again, service states) is
     * worked out in time proportional to the change, and write() puts it
     * over a copy of `prev`.  Anything it does not handle (the image out of
     * room, not of that table, overrides, extension methods, a service's routes
     * reordered) makes it build the whole image as image() does, and say
     * why in *info.  Either way the image answers every lookup as
     * image(next)'s would.  Throws Error as image() does.
     */
    static Image update(const unsigned char *prev, size_t prevLen,
                        const TableBefore &before, const Snapshot &next,
                        UpdateInfo *info = nullptr);

    /*
     * An image's own account of itself checked against its contents:
     * empty when they agree, else what does not (for tests and fuzzers).
     */
    static std::string audit(const unsigned char *image, size_t len);

    // A router with an image of its own.  Throws Error as image() does.
    static std::unique_ptr<Router> build(const unsigned char *snapshot,
                                         size_t len);
    static std::unique_ptr<Router> build(const Snapshot &snapshot);

    /*
     * A view of an image written by Image::write, which must stay as it is
     * while the view is used.  Throws Error when `len` bytes at `image`
     * are not the start of one (its header is checked, not its contents:
     * they are trusted as their writer's).
     */
    static std::unique_ptr<Router> view(const unsigned char *image, size_t len);

    // Gives an image Image::write wrote, which view() accepts, the
    // generation of its table resealed (see adoptRoster): in place.
    static void setGeneration(unsigned char *image, size_t len,
                              uint64_t generation);

    Router(const Router &) = delete;
    Router &operator=(const Router &) = delete;

    // *visits, if given, receives the trie nodes the lookup visited: at
    // most twice kLookupVisitLimit in a table that checkTable() made (a
    // path nothing has is tried again with its trailing slash toggled).
    Match match(std::string_view method, std::string_view path, bool websocket,
                uint32_t *visits = nullptr) const;

    uint64_t generation() const { return header_->generation; }

    // Nodes of the table of nodes, the root included (not tombstones).
    size_t nodeCount() const { return header_->nodeCount; }

    // A service of the table has not been polled yet.
    bool anyPending() const { return header_->anyPending != 0; }

    // The roster, in the order of Match::serviceIndex.
    struct ServiceView {
        std::string_view name;
        std::string_view url;
        std::string_view upstream;
        ServiceState state = ServiceState::Pending;
        bool drained = false;
    };

    size_t serviceCount() const { return header_->serviceCount; }
    ServiceView service(size_t index) const;

    /*
     * The entries a Match's `entry` indexes, and the names of each: its
     * service's and its template, as a match of it gives them; false for
     * an index out of range or an entry of no service of the roster.
     */
    static constexpr uint32_t kNoEntry = UINT32_MAX;
    size_t entryCount() const { return header_->entriesUsed; }
    bool entryNames(size_t index, std::string_view &service,
                    std::string_view &route) const;

    // Whether the roster's strings lie within the image: view() checks the
    // header only, and an image read from a file may be forged.
    bool rosterWithinImage() const;

private:
    static constexpr uint32_t kNone = UINT32_MAX;
    static constexpr uint32_t kRootParent = UINT32_MAX - 1;
    static constexpr size_t kHeadBytes = 16;

    /*
     * The slot where probing for a key of this shape starts, in a table
     * of `capacity` slots: any size, not only a power of two, which
     * would leave up to two thirds of a large table empty.
     */
    static size_t firstSlot(uint64_t shape, size_t capacity)
    {
        return static_cast<size_t>(((shape >> 32) * capacity) >> 32);
    }

    static size_t nextSlot(size_t i, size_t capacity)
    {
        return i + 1 == capacity ? 0 : i + 1;
    }
    // Lookups prefetch in a table larger than this.  Measured: at 10,000
    // routes (a 2 MiB table, in L3) prefetching cost more than it saved.
    static constexpr size_t kCachedBytes = 4 << 20;

    // Parameter children, in precedence order.
    enum ParamSlot {
        kIntSlot,
        kFloatSlot,
        kUuidSlot,
        kStrSlot,
        kPathSlot,
        kSlotCount
    };

    // Bytes of the image's strings area.
    struct Text {
        uint32_t offset = 0;
        uint32_t length = 0;
    };

    /*
     * A route at its terminal.  Every route of a terminal is kept, in
     * roster order, those that lost all their methods to earlier ones
     * too: so that update() can resolve a terminal again alone.
     */
    struct Entry {
        Text route;
        uint32_t service : 28; // kMaxServices fits
        uint32_t authRequired : 1;
        uint32_t grpc : 1;
        uint32_t streaming : 2; // a gRPC route's Streaming
        uint32_t methods;       // after conflict resolution, maybe 0
        uint32_t declared;      // the route's own, never 0
    };

    // Node::length of a parameter edge: kParamEdge + its ParamSlot.
    static constexpr uint32_t kParamEdge = UINT32_MAX - kSlotCount;

    /*
     * The table of every node, keyed by (parent, edge); the root's parent
     * is kRootParent.  A slot is free while its parent is kNone; a node
     * update() removed is a tombstone (parent kTombstone) that lookups
     * probe past and update() may take again.  No node ever moves.
     */
    static constexpr uint32_t kTombstone = UINT32_MAX - 2;
    struct alignas(64) Node {
        // A literal edge's text: longer than its zero-padded head, the
        // rest is in the tails.  Zero for a parameter edge.
        uint64_t head[2] = {0, 0};
        uint32_t parent = kNone;
        uint32_t length = 0; // of a literal edge, or kParamEdge + slot
        union {
            uint32_t tail = 0; // of a literal edge
            // of a {x:path} node: bit d set when a route below has d
            // segments after its {x:path} (bit 0: the parameter is last)
            uint32_t suffixDepths;
        };
        static_assert(kMaxSegmentsAfterPath < 32, "a bit per suffix length");

        uint32_t firstEntry = 0; // in the entries, `entry` included
        uint32_t entryCount = 0; // the first has methods, later ones maybe not
        uint32_t literals = 0;   // literal children
        uint8_t params = 0;      // a bit per ParamSlot that has a child
        Entry entry{};           // entries[firstEntry] when entryCount > 0
    };
    static_assert(sizeof(Node) == 64, "a node is one cache line");

    /*
     * state: a ServiceState, kDrained added for a drained service.  The
     * entries of disabling overrides belong to one more service, after
     * the roster's, of state kDisabledRoute.
     */
    struct ImageService {
        Text name;
        Text url;
        Text upstream;
        uint32_t state = 0;
    };
    static constexpr uint32_t kDrained = 0x100;
    static constexpr uint32_t kDisabledRoute = 0x200;
    static MatchStatus unusualStatus(uint32_t state);

    // An Allow header naming extension methods, for its method mask.
    struct ExtensionAllow {
        uint32_t mask = 0;
        Text text;
    };

    // The image's first bytes; every offset is from the image's start.
    struct alignas(kImageAlign) Header {
        uint64_t magic = 0;
        uint64_t size = 0; // of the whole image
        uint64_t generation = 0;
        uint32_t nodes = 0;    // capacity of them
        uint32_t capacity = 0; // slots of the table of nodes
        uint32_t root = 0;
        uint32_t entries = 0;
        uint32_t tails = 0;
        uint32_t strings = 0;
        uint32_t services = 0;
        uint32_t serviceCount = 0;
        uint32_t extensionMethods = 0; // Texts
        uint32_t extensionMethodCount = 0;
        uint32_t extensionAllows = 0; // sorted by mask
        uint32_t extensionAllowCount = 0;
        // Entries of the disabling, then the pinning overrides: tried
        // before the walk, on their templates, whatever precedence says
        uint32_t overrides = 0;
        uint32_t overrideCount = 0;
        uint8_t anyPending = 0;
        uint8_t prefetch = 0; // the table is larger than the caches
        // what update() may still use: nodes in the table (the root
        // included) and tombstones; entries, tails' and strings' bytes
        // used of the room laid out for each
        uint32_t nodeCount = 0;
        uint32_t tombstones = 0;
        uint32_t entriesUsed = 0;
        uint32_t entriesRoom = 0;
        uint32_t tailsUsed = 0;
        uint32_t tailsRoom = 0;
        uint32_t stringsUsed = 0;
        uint32_t stringsRoom = 0;
    };
    static_assert(sizeof(Header) % kImageAlign == 0, "nodes start aligned");

    static constexpr uint64_t kMagic = 0x3530524554554f52ull; // "ROUTER05"

    /*
     * An edge to look up, equal to a node's when parent, length and text
     * are.  `shape` hashes the child's template prefix ("/a/{int}/b"); its
     * high bits pick the slot where probing starts (firstSlot).
     */
    struct Key {
        static Key literal(uint32_t parent, uint64_t parentShape,
                           std::string_view text);
        static Key param(uint32_t parent, uint64_t parentShape, size_t slot);

        std::string_view text;
        uint64_t head[2] = {0, 0};
        uint64_t shape = 0;
        uint32_t parent = kNone;
        uint32_t length = 0;
    };

    struct Draft;
    struct Line {
        alignas(kImageAlign) unsigned char bytes[kImageAlign];
    };

    struct Search {
        uint32_t want = 0;
        uint32_t visits = 0;
        const Node *firstTerminal = nullptr;
        const Entry *found = nullptr;
        uint32_t foundIndex = kNoEntry; // of found in the entries
    };

    // Longer paths get no trailing-slash retry: it copies the path.
    static constexpr size_t kMaxSlashRetry = 2048;

    static void countVisits(const Search &s, uint32_t *visits)
    {
        if (visits != nullptr) {
            *visits = s.visits;
        }
    }

    explicit Router(const unsigned char *image);

    static void writeEdit(const Edit &edit, unsigned char *dst);
    static Image patch(const unsigned char *prev, size_t prevLen,
                       const TableBefore &before, const Snapshot &next,
                       UpdateInfo &info);

    template <class T>
    const T *at(uint32_t offset) const
    {
        return reinterpret_cast<const T *>(base_ + offset);
    }

    std::string_view text(Text t) const
    {
        return {reinterpret_cast<const char *>(strings_) + t.offset, t.length};
    }

    uint32_t find(const Key &key) const;
    bool edgeEquals(const Node &node, const Key &key) const;
    uint32_t wanted(std::string_view method) const;

    void prefetch(uint64_t shape, std::string_view rest) const;
    bool search(uint32_t id, uint64_t shape, std::string_view rest,
                Search &s) const;
    bool searchParams(uint32_t id, uint64_t shape, std::string_view rest,
                      Search &s) const;
    bool searchSuffixes(uint32_t id, uint64_t shape, std::string_view rest,
                        Search &s) const;
    bool visitTerminal(const Node &node, Search &s) const;
    Match answer(const Entry &entry, uint32_t index = kNoEntry) const;
    uint32_t allowed(const Node &node) const;
    Match notAllowed(const Node &node) const;

    // an image of its own, for build(); empty for a view
    std::vector<Line, HugePageAllocator<Line>> own_;

    // the image, and what every lookup reads of its header
    const unsigned char *base_ = nullptr;
    const Header *header_ = nullptr;
    const Node *nodes_ = nullptr;
    size_t capacity_ = 0;
    uint32_t root_ = 0;
    bool prefetch_ = false;
    const Entry *entries_ = nullptr;
    const Entry *overrides_ = nullptr;
    const char *tails_ = nullptr;
    const unsigned char *strings_ = nullptr;
    const ImageService *services_ = nullptr;
};

} // namespace discovery

#endif
