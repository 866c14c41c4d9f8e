// router.hpp: the worker-local matcher, a trie of path segments.
#ifndef DISCOVERY_ROUTER_HPP
#define DISCOVERY_ROUTER_HPP

#include "huge_pages.hpp"
#include "route_template.hpp"
#include "snapshot.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace discovery {

enum class MatchStatus {
    Found = 0,
    NotFound = 1,    // 404
    NotAllowed = 2,  // 405, allow set
    Unavailable = 3, // 503, the owner is unhealthy
    Pending = 4,     // 503, no match while a service is pending
};

// Views into the router (or static storage): no allocation per lookup.
struct Match {
    MatchStatus status = MatchStatus::NotFound;
    std::string_view service;
    std::string_view upstream;
    std::string_view route;
    std::string_view allow;
    bool authRequired = false;
    uint32_t serviceIndex = 0; // in the roster, where service is set
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
 */
class Router {
public:
    // Throws Error on a malformed snapshot.
    static std::unique_ptr<Router> build(const unsigned char *snapshot,
                                         size_t len);

    explicit Router(Snapshot snapshot);

    Router(const Router &) = delete;
    Router &operator=(const Router &) = delete;

    // *visits, if given, receives the trie nodes the lookup visited: at
    // most twice kLookupVisitLimit in a table that checkTable() made (a
    // path nothing has is tried again with its trailing slash toggled).
    Match match(std::string_view method, std::string_view path,
                bool websocket, uint32_t *visits = nullptr) const;

    uint64_t generation() const { return snapshot_.generation; }

    // A service of the table has not been polled yet.
    bool anyPending() const { return anyPending_; }

    // The roster, in the order of Match::serviceIndex.
    const std::vector<Service> &services() const { return snapshot_.services; }

private:
    static constexpr uint32_t kNone = UINT32_MAX;
    static constexpr uint32_t kRootParent = UINT32_MAX - 1;
    static constexpr size_t kHeadBytes = 16;
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

    struct Entry {
        std::string_view route;
        uint32_t service : 31;
        uint32_t authRequired : 1;
        uint32_t methods; // after conflict resolution, never 0
    };

    // Node::length of a parameter edge: kParamEdge + its ParamSlot.
    static constexpr uint32_t kParamEdge = UINT32_MAX - kSlotCount;

    /*
     * nodes_[0, mask_] is the table of every node, keyed by (parent,
     * edge); the root's parent is kRootParent.  A slot is free while its
     * parent is kNone.
     */
    struct alignas(64) Node {
        // A literal edge's text: longer than its zero-padded head, the
        // rest is in tails_.  Zero for a parameter edge.
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

        uint32_t firstEntry = 0; // in entries_, `entry` included
        uint8_t params = 0;      // a bit per ParamSlot that has a child
        uint8_t entryCount = 0;  // at most one entry per method
        bool hasLiterals = false;
        Entry entry{}; // entries_[firstEntry] when entryCount > 0
    };
    static_assert(sizeof(Node) == 64, "a node is one cache line");

    /*
     * An edge to look up, equal to a node's when parent, length and text
     * are.  `shape` hashes the child's template prefix ("/a/{int}/b"); its
     * low bits pick the slot where probing starts.
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

    struct Search {
        uint32_t want = 0;
        uint32_t visits = 0;
        const Node *firstTerminal = nullptr;
        const Entry *found = nullptr;
    };

    // Longer paths get no trailing-slash retry: it copies the path.
    static constexpr size_t kMaxSlashRetry = 2048;

    static void countVisits(const Search &s, uint32_t *visits)
    {
        if (visits != nullptr) {
            *visits = s.visits;
        }
    }

    void freeze(Draft &draft);
    uint32_t place(const Key &key);
    uint32_t find(const Key &key) const;
    bool edgeEquals(const Node &node, const Key &key) const;

    void prefetch(uint64_t shape, std::string_view rest) const;
    bool search(uint32_t id, uint64_t shape, std::string_view rest,
                Search &s) const;
    bool searchParams(uint32_t id, uint64_t shape, std::string_view rest,
                      Search &s) const;
    bool searchSuffixes(uint32_t id, uint64_t shape, std::string_view rest,
                        Search &s) const;
    bool visitTerminal(const Node &node, Search &s) const;
    Match answer(const Entry &entry) const;
    uint32_t allowed(const Node &node) const;
    Match notAllowed(const Node &node) const;

    Snapshot snapshot_; // owns every string the trie views
    std::vector<Node, HugePageAllocator<Node>> nodes_;
    size_t mask_ = 0; // of the table, nodes_[0, mask_]
    uint32_t root_ = 0;
    bool prefetch_ = false; // the table is larger than the caches
    std::vector<Entry> entries_;
    std::string tails_; // the bytes of long literals past their head
    bool anyPending_ = false;
    // the Allow headers that name extension methods, by mask
    std::unordered_map<uint32_t, std::string> extensionAllows_;
};

} // namespace discovery

#endif
