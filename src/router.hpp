// router.hpp: the worker-local matcher, a trie of path segments.
#ifndef DISCOVERY_ROUTER_HPP
#define DISCOVERY_ROUTER_HPP

#include "discovery_core.h"
#include "route_template.hpp"
#include "snapshot.hpp"

#include <cstdint>
#include <memory>
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

    // Parameter children, in precedence order.
    enum ParamSlot {
        kIntSlot,
        kFloatSlot,
        kUuidSlot,
        kStrSlot,
        kPathSlot,
        kSlotCount
    };

    struct Node {
        uint32_t params[kSlotCount] = {kNone, kNone, kNone, kNone, kNone};
        uint32_t firstEntry = 0;
        uint32_t entryCount = 0;
        bool hasLiterals = false;
    };

    struct Entry {
        uint32_t methods; // after conflict resolution, never 0
        uint32_t service;
        std::string_view route;
        bool authRequired;
    };

    // Open addressing over (parent node, segment text): one flat table for
    // the whole trie instead of a map per node.  A slot keeps the first 16
    // bytes of its text, so most probes never touch the text itself.
    class LiteralTable {
    public:
        uint32_t find(uint32_t parent, std::string_view text) const;
        void insert(uint32_t parent, std::string_view text, uint32_t child);

    private:
        struct Key {
            Key(uint32_t parent, std::string_view text);

            std::string_view text;
            uint64_t head[2] = {0, 0}; // zero-padded first 16 bytes
            uint32_t parent;
            uint32_t hash;
        };

        struct Slot {
            uint64_t head[2] = {0, 0};
            uint32_t parent = kNone;
            uint32_t child = kNone;
            uint32_t hash = 0;
            uint32_t length = 0;
        };

        bool equal(size_t i, const Key &key) const;
        void place(const Slot &slot, const char *text);
        void grow();

        std::vector<Slot> slots_;
        std::vector<const char *> texts_; // beside slots_, for long texts
        size_t used_ = 0;
    };

    struct Search {
        uint32_t want = 0;
        const Node *firstTerminal = nullptr;
        const Entry *found = nullptr;
    };

    void addRoute(const Route &route, uint32_t service,
                  std::vector<std::pair<uint32_t, Entry>> &pending);
    uint32_t child(uint32_t node, const Segment &seg);
    void placeEntries(std::vector<std::pair<uint32_t, Entry>> &pending);

    bool search(uint32_t node, std::string_view rest, Search &s) const;
    bool visitTerminal(const Node &node, Search &s) const;
    Match answer(const Entry &entry) const;
    Match notAllowed(const Node &node) const;

    Snapshot snapshot_; // owns every string the trie views
    std::vector<Node> nodes_;
    std::vector<Entry> entries_;
    LiteralTable literals_;
    bool anyPending_ = false;
};

} // namespace discovery

#endif
