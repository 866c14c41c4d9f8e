// registry.hpp: etcd's v3 JSON gateway as the registry sees it: the
// requests it sends, the answers and watch stream it reads, and the
// service documents under PREFIX/services/, validated.
#ifndef DISCOVERY_REGISTRY_HPP
#define DISCOVERY_REGISTRY_HPP

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace discovery {

std::string encodeBase64(std::string_view in);
// Throws Error on a character or a length base64 does not have.
std::string decodeBase64(std::string_view in);

// The document formats a service may name, as discovery_service's format=.
enum class RegistryFormat { Auto = 0, Routes = 1, OpenApi = 2, Grpc = 3 };

/*
 * PREFIX/services/NAME: the options of discovery_service as a JSON object,
 * with the same defaults, meanings and limits.  Times are nginx's ("10s",
 * "500ms", "1m") or a number of seconds.
 */
struct RegistryService {
    std::string name;
    std::string url;
    uint64_t intervalMs = 30000;
    uint64_t timeoutMs = 5000;
    uint32_t fails = 1;
    uint32_t passes = 1;
    std::string uri; // empty: the default, /health?include_routes=true
    RegistryFormat format = RegistryFormat::Auto;
    bool grpcInternal = false;
    std::vector<std::string> prefixes;
    std::string upstream;

    bool operator==(const RegistryService &o) const;
};

// A service name as discovery_service takes it, [A-Za-z0-9_.-]{1,64}, but
// "." and "..", which the management API's paths cannot name.
bool validServiceName(std::string_view name);

// Throws Error with a message that names the field and the value.
RegistryService parseRegistryService(std::string_view name,
                                     std::string_view json);

// An nginx time: "30s", "500ms", "1m", "1h", or digits (seconds).
bool parseNginxTime(std::string_view s, uint64_t &ms);

struct KeyValue {
    std::string key;
    std::string value;
    int64_t modRevision = 0;
    int64_t lease = 0; // the lease the key is bound to, 0: none
    // the key's creation; the same on every member, made anew when the
    // key is deleted and put again
    int64_t createRevision = 0;
    // read without its value, too large for an answer (RangeRead)
    bool oversized = false;
};

struct RangeAnswer {
    int64_t revision = 0; // the store's, from the header
    std::vector<KeyValue> kvs;
    bool more = false;
};

// POST /v3/kv/range's answer; an {"error": ...} answer throws its message.
RangeAnswer parseRangeAnswer(std::string_view body);

// Whether an answer is etcd's refusal of a read at a compacted revision.
bool compactedAnswer(std::string_view body);

// An answer to a range read (a page), at most: the watcher's buffer.
constexpr size_t kMaxRangeAnswer = 16 * 1024 * 1024;

/*
 * The read of the whole prefix (at start and after a compaction), in
 * pages that each fit kMaxRangeAnswer whatever the values' sizes: one
 * read without a limit answered the whole prefix, PREFIX/routes/'s
 * values included, more than that in a large share=on fleet.  Three
 * key ranges in turn: the prefix before routes/ (overrides/, pollers/),
 * the prefix after it (services/), then routes/ (share=on only: a
 * gateway that polls every service itself has no use for the others'
 * routes); each page `limit` keys, the next from the last key + "\0",
 * every page after the first at the first's revision, so that the whole
 * is one snapshot.
 */
class RangeRead {
public:
    // A key and its value in an answer, at most, with etcd's default
    // request size (1.5 MiB for both): base64, the other fields.
    static constexpr size_t kMaxKeyValue = 2 * 1024 * 1024 + 512;
    // The first page of each range: 7 keys, which fit whatever they are.
    static constexpr int64_t kFirstLimit =
        (kMaxRangeAnswer - 4096) / kMaxKeyValue;
    static constexpr int64_t kMaxLimit = 4096;

    RangeRead(std::string_view prefix, bool shared);

    // Forgets the pages read and begins again, at the current revision.
    void begin();
    // The body of /v3/kv/range for the next page.
    std::string request() const;
    // Takes the next page, `bytes` long; returns true when the read is
    // whole: result() holds it.  A page that does not follow throws.
    bool add(RangeAnswer page, size_t bytes);
    // The next page's answer was larger than kMaxRangeAnswer: half the
    // keys; when it was one key, that key alone without its value (its
    // KeyValue is `oversized`); false when even that was too large.
    bool smaller();
    // The key the last page read without its value, then none ("").
    std::string takeOversized();
    // Every page's keys, at the read's revision; the read ends.
    RangeAnswer result();

    // the revision read at, 0 before the first page
    int64_t revision() const { return revision_; }
    int64_t limit() const { return limit_; }
    size_t pages() const { return pages_; }

private:
    std::vector<std::pair<std::string, std::string>> ranges_;
    size_t range_ = 0;
    std::string key_; // the next page's first
    int64_t revision_ = 0;
    int64_t limit_ = kFirstLimit;
    size_t pages_ = 0;
    bool keysOnly_ = false;
    std::string oversized_;
    std::vector<KeyValue> kvs_;
};

struct WatchEvent {
    bool put = true; // else a DELETE
    KeyValue kv;
};

struct WatchMessage {
    int64_t revision = 0;
    bool created = false;
    bool canceled = false;
    bool fragment = false; // a part of a response, more to come
    int64_t compactRevision = 0;
    std::string cancelReason;
    std::vector<WatchEvent> events;
};

// One message of the /v3/watch stream; an {"error": ...} one throws.
WatchMessage parseWatchMessage(std::string_view json);

// The token of /v3/auth/authenticate's answer; an error throws.
std::string parseAuthAnswer(std::string_view body);

// etcd's reason in an error answer ({"error": ..., "message": ...}), as
// "etcd: \"reason\"", or empty when the body is not one.
std::string errorAnswer(std::string_view body);

// Request bodies: a range read of [key, end) (a limit or a revision of 0:
// none; the keys without their values), the watch of the prefix (its
// large responses in fragments).
std::string rangeRequest(std::string_view key, std::string_view end,
                         int64_t limit, int64_t revision,
                         bool keysOnly = false);
std::string watchRequest(std::string_view prefix, int64_t startRevision);
std::string authRequest(std::string_view user, std::string_view password);

/*
 * The management API's overrides, written over a revision of them only
 * (modRevision, 0: no key): a txn comparing the key's mod_revision, so
 * that a write made from an older view, such as a reload's old worker's
 * still in flight, cannot undo a newer one.  Where the compare fails the
 * txn reads the key, keys only, for the revision to write over next.
 */
std::string overridesRequest(std::string_view key, std::string_view value,
                             int64_t modRevision);

// That txn's answer: true when written; else `current` is the key's
// mod_revision as the txn found it (0: no key).  An error answer throws.
bool parseOverridesAnswer(std::string_view body, int64_t &current);

/*
 * share=on: a gateway's lease (/v3/lease/grant, /v3/lease/keepalive), its
 * claim of a service's polls (a txn creating PREFIX/pollers/NAME with the
 * lease, only where no such key is) and its writes of the service's
 * routes to PREFIX/routes/NAME (a txn that writes only while that claim
 * is the lease's).
 */
std::string leaseGrantRequest(int64_t ttl);
std::string leaseKeepAliveRequest(int64_t lease);
std::string claimRequest(std::string_view pollersKey, int64_t lease);
std::string routesRequest(std::string_view pollersKey,
                          std::string_view routesKey, int64_t lease,
                          std::string_view value);

// The txn that gives up a claim (a service this gateway no longer has):
// PREFIX/pollers/NAME and PREFIX/routes/NAME deleted while the claim is
// the lease's.
std::string releaseRequest(std::string_view pollersKey,
                           std::string_view routesKey, int64_t lease);

/*
 * The check of the member a silent watch is on: a read of the one key
 * PREFIX, counted only, and linearizable (etcd's default): a member
 * answers it only when it runs, has a leader and a quorum behind it.
 */
std::string checkRequest(std::string_view prefix);

// A grant's, a keepalive's or a time to live's answer: the lease and its
// TTL (whole seconds).  A keepalive's TTL is 0 for a lease etcd no longer
// has; a time to live's is -1 then, and 0 for one with under a second
// left.  An error answer throws.
void parseLeaseAnswer(std::string_view body, int64_t &lease, int64_t &ttl);

// A txn's answer: whether its comparison held.  An error answer throws.
bool parseTxnAnswer(std::string_view body);

/*
 * What PREFIX/routes/NAME holds: the service's state, the URL polled and
 * its routes as a route document, {"state": "healthy", "url":
 * "http://10.0.0.7:8001", "version": "1.0", "routes": [...]},
 * which the route document parser reads again (it ignores "state").  One
 * per service of the snapshot, name and value, in the roster's order (the
 * configuration's); an empty value for a service not polled yet.
 */
std::vector<std::pair<std::string, std::string>>
shareValues(const unsigned char *snapshot, size_t len);

// The state a PREFIX/routes/NAME value names; throws Error when it is not
// such a value, or one whose "url" is not `url` (another service of the
// same name: a value without one is taken).
int shareState(std::string_view value, std::string_view url);

/*
 * Splits the watch stream, which the gateway sends as JSON objects one
 * after another (a newline between them), into whole messages.
 */
class WatchStream {
public:
    void feed(std::string_view data) { buffer_.append(data); }
    // The next whole message, or false when more is needed.
    bool next(std::string &message);
    size_t pending() const { return buffer_.size() - begin_; }
    void clear() { *this = WatchStream(); }

private:
    // Scanned where the last call stopped, so that a message that comes
    // a byte at a time costs its length, not its length squared; what was
    // taken is dropped once it is most of the buffer.
    std::string buffer_;
    size_t begin_ = 0; // of the message being scanned, or of what is left
    size_t scan_ = 0;
    size_t depth_ = 0;
    bool started_ = false;
    bool inString_ = false;
    bool escaped_ = false;
};

/*
 * What the registry holds under PREFIX/services/: each key's document and
 * what it said, a valid service or why not, at the revision last read.
 */
class RegistryTable {
public:
    // shared: share=on, PREFIX/pollers/ and PREFIX/routes/ are kept (below)
    RegistryTable(std::string prefix, bool shared);

    struct Entry {
        std::string document;
        int64_t modRevision = 0;
        int64_t createRevision = 0; // the serving order: see servingJson()
        bool valid = false;
        RegistryService service; // when valid
        std::string error;       // when not
        bool oversized = false;  // read without its value
    };

    // What is read and watched: the whole prefix (services and overrides).
    const std::string &prefix() const { return prefix_; }
    const std::string &servicesPrefix() const { return servicesPrefix_; }
    // PREFIX/overrides/controls: the management API's overrides, as the
    // core encodes them (see controls.hpp); empty when there is no key.
    const std::string &overridesKey() const { return overridesKey_; }
    const std::string &overrides() const { return overrides_; }
    bool hasOverrides() const { return hasOverrides_; }
    // Counts the changes of the overrides key.
    uint64_t overridesVersion() const { return overridesVersion_; }
    // The key's mod_revision as last read or watched; 0: no key.
    int64_t overridesRevision() const { return overridesRevision_; }
    int64_t revision() const { return revision_; }
    const std::map<std::string, Entry> &entries() const { return entries_; }
    // Counts changes of what is served: a caller republishes on a change.
    uint64_t version() const { return version_; }

    // share=on: PREFIX/pollers/NAME's lease (-1: a key bound to none) and
    // PREFIX/routes/NAME's value and lease, by service name;
    // shareVersion() counts their changes.  With share=off, those keys
    // are passed by: these stay empty.
    struct SharedRoutes {
        std::string value;
        int64_t lease = 0;
        bool operator==(const SharedRoutes &o) const
        {
            return value == o.value && lease == o.lease;
        }
        bool operator!=(const SharedRoutes &o) const { return !(*this == o); }
    };
    const std::map<std::string, int64_t> &pollers() const { return pollers_; }
    const std::map<std::string, SharedRoutes> &routes() const
    {
        return routes_;
    }
    uint64_t shareVersion() const { return shareVersion_; }
    // The services `lease` claims that are not among `names` ("NAME\0"...).
    std::vector<std::string> orphans(int64_t lease,
                                     std::string_view names) const;
    // The services this gateway has ("NAME\0"...): their claims' leases
    // are the ones it looks at.
    void setConfigured(std::string_view names);
    // The least lease above `after` that claims one of those services,
    // but for `own` (0: none): the others' leases in turn, each once.
    int64_t claimantAfter(int64_t own, int64_t after) const;
    std::string pollersKey(std::string_view name) const
    {
        return prefix_ + "pollers/" + std::string(name);
    }
    std::string routesKey(std::string_view name) const
    {
        return prefix_ + "routes/" + std::string(name);
    }

    void load(const RangeAnswer &answer);
    // Applies a message's events; returns whether any entry changed.  The
    // revision moves to its events' and to a progress notification's.  A
    // fragment's last revision waits for the fragment that ends it.
    bool apply(const WatchMessage &message);
    // The entries as a JSON array for the status page.
    std::string statusJson() const;
    // The valid services' documents, {"NAME": "DOCUMENT", ...} in the
    // order they registered (their keys' creation, then by name): what the
    // gateway's configuration takes in, in that order (see
    // servingServices), so that of two services claiming one route the
    // one registered first keeps it, as nginx.conf's first service does.
    std::string servingJson() const;

private:
    bool put(const KeyValue &kv);
    bool erase(const std::string &key);

    bool setOverrides(const std::string &value, bool present,
                      int64_t modRevision);
    // a key under pollers/ or routes/: true when it was one
    bool putShared(const KeyValue &kv);
    bool eraseShared(const std::string &key);

    std::string prefix_;
    bool shared_;
    std::string servicesPrefix_;
    std::string overridesKey_;
    std::string overrides_;
    bool hasOverrides_ = false;
    uint64_t overridesVersion_ = 0;
    int64_t overridesRevision_ = 0;
    int64_t revision_ = 0;
    uint64_t version_ = 0;
    std::map<std::string, Entry> entries_; // by service name
    std::map<std::string, int64_t> pollers_;
    std::vector<std::string> configured_;
    std::map<std::string, SharedRoutes> routes_;
    uint64_t shareVersion_ = 0;
    std::vector<WatchEvent> held_; // of a revision a fragment began
};

// The services of a servingJson(), each validated again; a malformed
// whole throws, an invalid service is left out.
std::vector<RegistryService> servingServices(std::string_view json);

// A service as discovery_service's arguments after NAME: URL, options.
std::vector<std::string> directiveArgs(const RegistryService &s);

// The end of a prefix range: the prefix with its last byte incremented.
std::string prefixRangeEnd(std::string_view prefix);

} // namespace discovery

#endif
