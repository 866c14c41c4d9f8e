// router.hpp: the worker-local matcher, a trie of path segments.
#ifndef DISCOVERY_ROUTER_HPP
#define DISCOVERY_ROUTER_HPP

#include "discovery_core.h"
#include "huge_pages.hpp"
#include "route_template.hpp"
#include "snapshot.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace discovery {

enum class MatchStatus {
    Found = DISCOVERY_MATCH_FOUND,
    NotFound = DISCOVERY_MATCH_NOT_FOUND,
    NotAllowed = DISCOVERY_MATCH_NOT_ALLOWED,
    Unavailable = DISCOVERY_MATCH_UNAVAILABLE,
    Pending = DISCOVERY_MATCH_PENDING,
};

// Views into the router (or static storage): no allocation per lookup.
struct Match {
    MatchStatus status = MatchStatus::NotFound;
    std::string_view service;
    std::string_view upstream;
    std::string_view route;
    std::string_view allow;
    bool authRequired = false;
};

/*
 * One node per distinct template prefix shape, so routes of different
 * services with the same shape share a terminal, where entries sit in
 * roster order with conflicts already resolved.  A lookup walks the trie
 * depth-first in precedence order (literal, int, float, uuid, str, path)
 * and backtracks; each node is visited at most once.
 *
 * The layout is for a cold cache (100,000 routes do not fit in it): a node
 * is one cache line, holding the edge that leads to it, what the walk needs
 * to go on, and its terminal's first entry, so a step down the trie costs
 * one cache miss and a match on a terminal none more.
 */
class Router {
public:
    // Throws Error on a malformed snapshot.
    static std::unique_ptr<Router> build(const unsigned char *snapshot,
                                         size_t len);

    explicit Router(Snapshot snapshot);

    Router(const Router &) = delete;
    Router &operator=(const Router &) = delete;

    Match match(std::string_view method, std::string_view path,
                bool websocket) const;

    uint64_t generation() const { return snapshot_.generation; }

private:
    static constexpr uint32_t kNone = UINT32_MAX;
    static constexpr size_t kHeadBytes = 16;

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
        uint32_t service;
        uint16_t methods; // after conflict resolution, never 0
        bool authRequired;
    };

    /*
     * nodes_[0, mask_] is an open-addressing table of the nodes reached by
     * a literal edge, keyed by (parent, literal text); the root and the
     * nodes reached by a parameter edge follow it, the parameter children
     * of a node side by side in precedence order.
     */
    struct alignas(64) Node {
        // The literal edge from the parent (table nodes only).  A literal
        // longer than its zero-padded head has the rest in tails_.
        uint64_t head[2] = {0, 0};
        uint32_t parent = kNone; // kNone: a free slot of the table
        uint32_t length = 0;
        uint32_t tail = 0;

        uint32_t firstParam = kNone;
        uint32_t firstEntry = 0; // in entries_, `entry` included
        uint8_t params = 0;      // a bit per ParamSlot that has a child
        uint8_t entryCount = 0;  // at most one entry per method
        bool hasLiterals = false;
        Entry entry{}; // entries_[firstEntry] when entryCount > 0
    };
    static_assert(sizeof(Node) == 64, "a node is one cache line");

    // A literal edge: equal when parent and text are.
    struct Key {
        Key(uint32_t parent, std::string_view text);

        std::string_view text;
        uint64_t head[2] = {0, 0}; // zero-padded first kHeadBytes
        uint32_t parent;
        uint32_t hash;
    };

    struct Draft;

    struct Search {
        uint32_t want = 0;
        const Node *firstTerminal = nullptr;
        const Entry *found = nullptr;
    };

    void freeze(Draft &draft);
    uint32_t placeLiteral(const Key &key);
    uint32_t findLiteral(const Key &key) const;
    bool literalEquals(const Node &node, const Key &key) const;
    uint32_t paramChild(const Node &node, size_t slot) const;

    bool search(uint32_t node, std::string_view rest, Search &s) const;
    bool searchParams(const Node &node, std::string_view rest, Search &s) const;
    bool visitTerminal(const Node &node, Search &s) const;
    Match answer(const Entry &entry) const;
    Match notAllowed(const Node &node) const;

    Snapshot snapshot_; // owns every string the trie views
    std::vector<Node, HugePageAllocator<Node>> nodes_;
    size_t mask_ = 0; // of the literal table, nodes_[0, mask_]
    uint32_t root_ = 0;
    std::vector<Entry> entries_;
    std::string tails_; // the bytes of long literals past their head
    bool anyPending_ = false;
};

} // namespace discovery

#endif
