// metrics.cpp: route slots in shared memory, their assignment per table,
// and the Prometheus and OpenMetrics exposition of every counter.
#include "metrics.hpp"

#include "controls.hpp"
#include "methods.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace discovery {

const uint32_t kDefaultBucketsMs[kDefaultBucketCount] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

namespace {

template <class T>
T load(const T &v)
{
    return __atomic_load_n(&v, __ATOMIC_ACQUIRE);
}

template <class T>
void store(T &v, T value)
{
    __atomic_store_n(&v, value, __ATOMIC_RELEASE);
}

void add(uint64_t &v, uint64_t n)
{
    __atomic_fetch_add(&v, n, __ATOMIC_RELAXED);
}

uint64_t mix(uint64_t h, uint64_t word)
{
    h = (h ^ word) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

uint64_t hashBytes(uint64_t h, std::string_view s)
{
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
        uint64_t w;
        std::memcpy(&w, s.data() + i, 8);
        h = mix(h, w);
    }
    /*
     * The last bytes as a little-endian word, zero above them: the end of
     * the last eight bytes shifted down when there are eight, else one by
     * one (memcpy of a variable length is a call).
     */
    uint64_t w = 0;
    size_t rest = s.size() - i;
    if (rest != 0 && s.size() >= 8) {
        std::memcpy(&w, s.data() + s.size() - 8, 8);
        w >>= 64 - 8 * rest;
    } else {
        for (size_t shift = 0; i < s.size(); i++, shift += 8) {
            w |= uint64_t(static_cast<unsigned char>(s[i])) << shift;
        }
    }
    return mix(h, w ^ (uint64_t(s.size()) << 56));
}

/*
 * Bits set in a mask of the nine methods: the core is built for any
 * x86-64, where __builtin_popcount is a call to libgcc on the request path.
 */
struct BitCounts {
    uint8_t n[1u << kMethodCount];
    constexpr BitCounts() : n()
    {
        for (uint32_t v = 0; v < (1u << kMethodCount); v++) {
            n[v] = static_cast<uint8_t>((v & 1) + n[v >> 1]);
        }
    }
};

constexpr BitCounts kBitCounts;

size_t bitCount(uint32_t methods)
{
    return kBitCounts.n[methods & kAllMethods];
}

MetricsRoute *routeAt(unsigned char *base, uint64_t offset)
{
    return reinterpret_cast<MetricsRoute *>(base + offset);
}

const MetricsRoute *routeAt(const unsigned char *base, uint64_t offset)
{
    return reinterpret_cast<const MetricsRoute *>(base + offset);
}

/*
 * A key sits within this many entries of its first: a lookup for a route
 * that has no slot stops there, however many removed entries the index
 * has gathered, rather than walk it all.
 */
constexpr uint64_t kMaxProbe = 64;

// Whether a slot is that route's: keys alone may be shared.
bool named(const MetricsRoute &r, std::string_view service,
           std::string_view route)
{
    return r.service() == service && r.route() == route;
}

// The entry holding the route, or where it would go: the first removed
// one passed, else the empty one that ends the probe; nullptr if none is
// near.
MetricsEntry *probe(MetricsIndex &index, unsigned char *base,
                    const RouteKey &rk, bool &found)
{
    uint64_t key = rk.key;
    MetricsEntry *entries = index.entries();
    MetricsEntry *removed = nullptr;
    uint64_t mask = index.capacity - 1;
    uint64_t limit = std::min(index.capacity, kMaxProbe);
    found = false;

    for (uint64_t n = 0, i = key & mask; n < limit; n++, i = (i + 1) & mask) {
        uint64_t k = entries[i].key;
        if (k == key
            && named(*routeAt(base, entries[i].route), rk.service, rk.route)) {
            found = true;
            return &entries[i];
        }
        if (k == kRemovedKey && removed == nullptr) {
            removed = &entries[i];
        }
        if (k == kEmptyKey) {
            return removed != nullptr ? removed : &entries[i];
        }
    }
    return removed;
}

void initRoute(MetricsRoute *r, const RouteKey &rk, size_t bucketCount,
               uint64_t generation)
{
    size_t columns = bitCount(rk.columns) + 1;
    size_t counters = columns * kStatusClasses + bucketCount + 2;

    std::memset(static_cast<void *>(r), 0,
                sizeof(MetricsRoute) + counters * sizeof(uint64_t));
    r->key = rk.key;
    r->seen = generation;
    r->columns = rk.columns;
    r->columnCount = static_cast<uint16_t>(columns);
    r->bucketCount = static_cast<uint16_t>(bucketCount);
    r->serviceLen = static_cast<uint16_t>(rk.service.size());
    r->routeLen = static_cast<uint16_t>(rk.route.size());
    char *text = reinterpret_cast<char *>(r->counters() + counters);
    std::memcpy(text, rk.service.data(), rk.service.size());
    std::memcpy(text + rk.service.size(), rk.route.data(), rk.route.size());
}

// A slot whose methods changed keeps the counts of those it still has.
void carryCounts(const MetricsRoute &from, MetricsRoute &to)
{
    const uint64_t *src = from.counters();
    uint64_t *dst = to.counters();
    size_t other = to.columnCount - 1;

    for (size_t bit = 0; bit < kMethodCount; bit++) {
        uint32_t b = 1u << bit;
        if (!(from.columns & b)) {
            continue;
        }
        size_t to_col = methodColumn(to.columns, b);
        size_t from_col = methodColumn(from.columns, b);
        for (size_t c = 0; c < kStatusClasses; c++) {
            dst[to_col * kStatusClasses + c] +=
                load(src[from_col * kStatusClasses + c]);
        }
    }
    for (size_t c = 0; c < kStatusClasses; c++) {
        dst[other * kStatusClasses + c] +=
            load(src[(from.columnCount - 1) * kStatusClasses + c]);
    }
    if (from.bucketCount == to.bucketCount) {
        const uint64_t *hs = src + from.columnCount * kStatusClasses;
        uint64_t *hd = dst + to.columnCount * kStatusClasses;
        for (size_t i = 0; i < size_t(from.bucketCount) + 2; i++) {
            hd[i] = load(hs[i]);
        }
    }
}

} // namespace

size_t metricsIndexSize(uint64_t capacity)
{
    return sizeof(MetricsIndex) + capacity * sizeof(MetricsEntry);
}

void metricsIndexInit(MetricsIndex &index, uint64_t capacity,
                      const uint32_t *bucketsMs, size_t bucketCount)
{
    std::memset(static_cast<void *>(&index), 0, metricsIndexSize(capacity));
    index.capacity = capacity;
    index.bucketCount = static_cast<uint32_t>(bucketCount);
    std::memcpy(index.bucketsMs, bucketsMs, bucketCount * sizeof(uint32_t));
}

uint64_t routeKey(std::string_view service, std::string_view route,
                  uint64_t seed)
{
    uint64_t h = hashBytes(0x243f6a8885a308d3ull ^ seed, service);
    h = hashBytes(h, route);
    return h < 2 ? h + 2 : h;
}

uint32_t routeColumns(uint32_t methods)
{
    methods &= kAllMethods;
    return (methods & kGet) ? methods | kHead : methods;
}

size_t methodColumn(uint32_t columns, uint32_t bit)
{
    if (!(columns & bit) || bit == 0) {
        return bitCount(columns); // "other"
    }
    return bitCount(columns & (bit - 1));
}

size_t statusClass(unsigned status)
{
    if (status < 100 || status > 599) {
        return kStatusClasses;
    }
    return status / 100 - 1;
}

const MetricsRoute *findRoute(const MetricsIndex &index,
                              const unsigned char *base, uint64_t key,
                              std::string_view service, std::string_view route)
{
    const MetricsEntry *entries = index.entries();
    uint64_t mask = index.capacity - 1;
    uint64_t limit = std::min(index.capacity, kMaxProbe);

    for (uint64_t n = 0, i = key & mask; n < limit; n++, i = (i + 1) & mask) {
        uint64_t k = load(entries[i].key);
        if (k == key) {
            const MetricsRoute *r = routeAt(base, load(entries[i].route));
            // the entry may have been given to another route meanwhile,
            // and another route may have this key: on to the next
            if (load(r->key) == key && r->service() == service
                && r->route() == route) {
                return r;
            }
        }
        if (k == kEmptyKey) {
            return nullptr;
        }
    }
    return nullptr;
}

bool countRequest(const MetricsIndex &index, MetricsRoute &route,
                  uint32_t methodBit, unsigned status, uint64_t ms)
{
    size_t cls = statusClass(status);
    if (cls >= kStatusClasses) {
        return false;
    }

    uint64_t *c = route.counters();
    add(c[methodColumn(route.columns, methodBit) * kStatusClasses + cls], 1);

    size_t n = std::min<size_t>(route.bucketCount, index.bucketCount);
    size_t b = 0;
    while (b < n && ms > index.bucketsMs[b]) {
        b++;
    }
    if (b == n) {
        b = route.bucketCount; // +Inf
    }
    uint64_t *hist = c + route.columnCount * kStatusClasses;
    add(hist[b], 1);
    add(hist[route.bucketCount + 1], ms);
    return true;
}

uint64_t routeHint(const MetricsIndex &index, const unsigned char *base,
                   std::string_view service, std::string_view route)
{
    const MetricsRoute *r =
        findRoute(index, base, routeKey(service, route, index.seed), service,
                  route);
    if (r == nullptr) {
        return 0;
    }
    auto offset = static_cast<uint64_t>(
        reinterpret_cast<const unsigned char *>(r) - base);
    if (offset % 8 != 0 || offset / 8 > UINT32_MAX) {
        return 0;
    }
    return (load(r->key) << 32) | (offset / 8);
}

MetricsRoute *hintedRoute(const MetricsIndex &index, unsigned char *base,
                          uint64_t hint)
{
    uint64_t offset = (hint & UINT32_MAX) * 8;
    if (offset == 0) {
        return nullptr;
    }
    /*
     * A slot let go has its key inverted at once (releaseRoute), and is
     * reused only after a grace: the key says the slot is still this
     * route's, `seen` that no newer table dropped it.  Either way the
     * caller goes on by the route's names, which tells a removed route
     * from one with no room, as for a request without a hint.
     */
    MetricsRoute *r = routeAt(base, offset);
    if ((load(r->key) & UINT32_MAX) != hint >> 32
        || load(r->seen) < load(index.generation)) {
        return nullptr;
    }
    return r;
}

void prefetchRoute(const unsigned char *base, uint64_t hint)
{
    uint64_t offset = (hint & UINT32_MAX) * 8;
    if (offset == 0) {
        return;
    }
    /*
     * What a request counts into, for a route of one method and "other"
     * with the default buckets: the header, the counters and the
     * histogram end 216 bytes in.  Routes of more methods or buckets have
     * their histogram further on, and find only the rest in cache.
     */
    constexpr size_t kPrefetchBytes = 256;
    const unsigned char *p = base + offset;
    for (size_t at = 0; at < kPrefetchBytes; at += 64) {
        __builtin_prefetch(p + at);
    }
    __builtin_prefetch(p + kPrefetchBytes - 1); // the last line, unaligned
}

std::vector<RouteKey> tableRoutes(const Snapshot &snap,
                                  const Controls &controls,
                                  TableFigures &figures, uint64_t seed)
{
    size_t total = 0;
    for (const Service &service : snap.services) {
        total += service.routeSet.routes.size();
    }
    total += controls.overrides.size();

    /*
     * One key a route: an open-addressed table of indices into `out` (0:
     * empty), at most half full, finds a route seen before (a template of
     * two route entries, or an override of a route the service has).
     */
    std::vector<RouteKey> out;
    size_t mask = 15;
    while (mask < total * 2) {
        mask = mask * 2 + 1;
    }
    std::vector<uint32_t> seen(mask + 1, 0);
    out.reserve(total);

    auto keep = [&](std::string_view service, std::string_view path,
                    uint32_t columns) {
        uint64_t key = routeKey(service, path, seed);
        size_t i = key & mask;
        for (; seen[i] != 0; i = (i + 1) & mask) {
            RouteKey &same = out[seen[i] - 1];
            if (same.key == key && same.service == service
                && same.route == path) {
                same.columns |= columns;
                return;
            }
        }
        out.push_back({key, columns, service, path});
        seen[i] = static_cast<uint32_t>(out.size());
    };

    figures.generation = snap.generation;
    figures.routes = 0;
    figures.conflicts = snap.conflicts.size();
    figures.overlaps = snap.overlaps.size();
    figures.services.clear();

    auto rejected = snap.rejections.begin(); // by service, then route
    for (uint32_t s = 0; s < snap.services.size(); s++) {
        const Service &service = snap.services[s];
        TableFigures::Service f;
        f.name = service.name;
        f.rejected =
            service.routeSet.rejected.size() + service.routeSet.rejectedOmitted;

        for (uint32_t r = 0; r < service.routeSet.routes.size(); r++) {
            if (rejected != snap.rejections.end() && rejected->service == s
                && rejected->route == r) {
                ++rejected;
                f.rejected++;
                continue;
            }
            const Route &route = service.routeSet.routes[r];
            keep(service.name, route.path, routeColumns(route.methods));
            f.routes++;
        }
        figures.routes += f.routes;
        figures.services.push_back(std::move(f));
    }

    for (const Override &o : controls.overrides) {
        if (o.action != OverrideAction::Disable && !o.service.empty()) {
            keep(o.service, o.path, routeColumns(kAllMethods));
        }
    }
    return out;
}

size_t routeSlotSize(const RouteKey &route, size_t bucketCount)
{
    size_t columns = bitCount(route.columns) + 1;
    size_t counters = columns * kStatusClasses + bucketCount + 2;
    size_t size = sizeof(MetricsRoute) + counters * sizeof(uint64_t)
                  + route.service.size() + route.route.size();
    return (size + 7) & ~size_t(7);
}

size_t routeSlotSize(const MetricsRoute &route)
{
    size_t size = sizeof(MetricsRoute) + route.counterCount() * sizeof(uint64_t)
                  + route.serviceLen + route.routeLen;
    return (size + 7) & ~size_t(7);
}

namespace {

/*
 * Lets a slot go, its key inverted first: no hint names it from then on
 * (hintedRoute), whatever the index's generation says and however its
 * memory is reused after the grace.
 */
void releaseRoute(unsigned char *base, uint64_t offset,
                  const MetricsMemory &memory)
{
    MetricsRoute *r = routeAt(base, offset);
    size_t size = routeSlotSize(*r);
    store(r->key, ~load(r->key));
    memory.release(offset, size);
}

/*
 * Gives each route its slot, or another for other methods; a route there
 * is no room for goes to `later`.
 */
void assignEach(MetricsIndex &index, unsigned char *base,
                const std::vector<const RouteKey *> &routes,
                uint64_t generation, const MetricsMemory &memory,
                AssignResult &result, std::vector<const RouteKey *> &later)
{
    uint64_t limit = index.capacity / 4 * 3;

    for (const RouteKey *p : routes) {
        const RouteKey &rk = *p;

        bool found;
        MetricsEntry *e = probe(index, base, rk, found);

        if (found) {
            MetricsRoute *r = routeAt(base, e->route);
            if (r->columns == rk.columns) {
                store(r->seen, std::max<uint64_t>(r->seen, generation));
                result.kept++;
                continue;
            }
            // other methods: a slot of their size, with the counts kept
            uint64_t offset =
                memory.alloc(routeSlotSize(rk, index.bucketCount));
            if (offset == 0) {
                // its old slot counts on meanwhile
                store(r->seen, std::max<uint64_t>(r->seen, generation));
                result.unassigned++;
                continue;
            }
            MetricsRoute *fresh = routeAt(base, offset);
            initRoute(fresh, rk, index.bucketCount, generation);
            carryCounts(*r, *fresh);
            uint64_t old = e->route;
            store(e->route, offset);
            releaseRoute(base, old, memory);
            result.kept++;
            continue;
        }

        if (e == nullptr || index.live >= limit) {
            later.push_back(p);
            continue;
        }

        uint64_t offset = memory.alloc(routeSlotSize(rk, index.bucketCount));
        if (offset == 0) {
            later.push_back(p);
            continue;
        }

        initRoute(routeAt(base, offset), rk, index.bucketCount, generation);
        store(e->route, offset);
        store(e->key, rk.key); // last: readers see the slot once it is whole
        index.live++;
        result.added++;
    }
}

} // namespace

AssignResult assignRoutes(MetricsIndex &index, unsigned char *base,
                          const std::vector<RouteKey> &routes,
                          uint64_t generation, const MetricsMemory &memory)
{
    AssignResult result;
    std::vector<const RouteKey *> all, later, none;

    all.reserve(routes.size());
    for (const RouteKey &rk : routes) {
        if (rk.service.size() > UINT16_MAX || rk.route.size() > UINT16_MAX) {
            result.unassigned++;
            continue;
        }
        all.push_back(&rk);
    }

    assignEach(index, base, all, generation, memory, result, later);

    MetricsEntry *entries = index.entries();
    for (uint64_t i = 0; i < index.capacity; i++) {
        if (entries[i].key <= kRemovedKey) {
            continue;
        }
        MetricsRoute *r = routeAt(base, entries[i].route);
        if (r->seen < generation) {
            store(entries[i].key, kRemovedKey);
            index.live--;
            releaseRoute(base, entries[i].route, memory);
            result.removed++;
        }
    }

    // the entries of the routes removed are room for those that had none
    if (!later.empty()) {
        all.swap(later);
        later.clear();
        assignEach(index, base, all, generation, memory, result, later);
        result.unassigned += later.size();
    }

    index.generation = generation;
    return result;
}

void clearRoutes(MetricsIndex &index, unsigned char *base,
                 const MetricsMemory &memory)
{
    MetricsEntry *entries = index.entries();
    for (uint64_t i = 0; i < index.capacity; i++) {
        if (entries[i].key > kRemovedKey) {
            store(entries[i].key, kRemovedKey);
            releaseRoute(base, entries[i].route, memory);
        }
    }
    index.live = 0;
    index.generation = 0;
}

void appendLabelValue(std::string &out, std::string_view value)
{
    for (char c : value) {
        switch (c) {
        case '\\':
            out += "\\\\";
            break;
        case '"':
            out += "\\\"";
            break;
        case '\n':
            out += "\\n";
            break;
        default:
            out += c;
        }
    }
}

namespace {

const char *const kClassNames[kStatusClasses] = {"1xx", "2xx", "3xx", "4xx",
                                                 "5xx"};
const char *const kReasonNames[size_t(GatewayReason::Count)] = {
    "not_found", "method_not_allowed", "unavailable",
    "pending",   "noncanonical",       "disabled"};
const char *const kOverflowNames[size_t(OverflowReason::Count)] = {
    "no_slot", "route_removed", "unknown"};
const char *const kResultNames[size_t(PollOutcome::Count)] = {
    "success", "not_modified", "failure", "rejected"};
const char *const kStateNames[3] = {"pending", "healthy", "unhealthy"};

class Exposition {
public:
    explicit Exposition(bool openMetrics) : om_(openMetrics) {}

    /*
     * A family: its name as the text format has it ("..._total" for a
     * counter); OpenMetrics names the family without "_total" and its
     * samples with it.
     */
    void family(std::string_view name, const char *type, const char *help)
    {
        std::string_view fam = name;
        if (om_ && std::string_view(type) == "counter" && fam.size() > 6
            && fam.substr(fam.size() - 6) == "_total") {
            fam.remove_suffix(6);
        }
        out_ += "# HELP ";
        out_ += fam;
        out_ += ' ';
        out_ += help;
        out_ += "\n# TYPE ";
        out_ += fam;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }

    // name{labels} value: labels as "k", "v" pairs
    void sample(std::string_view name,
                std::initializer_list<std::string_view> labels,
                std::string_view value)
    {
        out_ += name;
        if (labels.size() > 0) {
            out_ += '{';
            bool first = true;
            for (auto it = labels.begin(); it != labels.end(); it += 2) {
                if (!first) {
                    out_ += ',';
                }
                first = false;
                out_ += *it;
                out_ += "=\"";
                appendLabelValue(out_, *(it + 1));
                out_ += '"';
            }
            out_ += '}';
        }
        out_ += ' ';
        out_ += value;
        out_ += '\n';
    }

    void sample(std::string_view name,
                std::initializer_list<std::string_view> labels, uint64_t value)
    {
        sample(name, labels, std::string_view(number(value)));
    }

    // a bound or a sum in ms, as seconds
    std::string seconds(uint64_t ms) const
    {
        std::string s = std::to_string(ms / 1000);
        uint64_t frac = ms % 1000;
        if (frac != 0) {
            char buf[5];
            std::snprintf(buf, sizeof(buf), ".%03u", unsigned(frac));
            std::string f(buf);
            while (f.back() == '0') {
                f.pop_back();
            }
            s += f;
        } else if (om_) {
            s += ".0"; // OpenMetrics: le is a float
        }
        return s;
    }

    /*
     * A histogram's lines: its labels escaped once, its bounds formatted
     * once per scrape, no string made per line (a scrape of 100,000 routes
     * writes over a million of them).
     */
    void histogram(std::string_view name,
                   std::initializer_list<std::string_view> labels,
                   const uint32_t *boundsMs, size_t bounds,
                   const uint64_t *buckets, size_t bucketCount, uint64_t sumMs)
    {
        labels_.clear();
        for (auto it = labels.begin(); it != labels.end(); it += 2) {
            labels_ += *it;
            labels_ += "=\"";
            appendLabelValue(labels_, *(it + 1));
            labels_ += "\",";
        }
        if (leBounds_ != boundsMs || les_.size() != bounds) {
            les_.clear();
            for (size_t i = 0; i < bounds; i++) {
                les_.push_back(seconds(boundsMs[i]));
            }
            leBounds_ = boundsMs;
        }

        uint64_t cumulative = 0;
        for (size_t i = 0; i <= bucketCount; i++) {
            cumulative += load(buckets[i]);
            if (i < bucketCount && i >= bounds) {
                continue; // bounds changed under it: only +Inf is sure
            }
            out_ += name;
            out_ += "_bucket{";
            out_ += labels_;
            out_ += "le=\"";
            out_ += i < bucketCount ? std::string_view(les_[i]) : "+Inf";
            out_ += "\"} ";
            appendNumber(cumulative);
            out_ += '\n';
        }

        std::string_view plain(labels_.data(),
                               labels_.empty() ? 0 : labels_.size() - 1);
        out_ += name;
        out_ += "_sum{";
        out_ += plain;
        out_ += "} ";
        out_ += seconds(sumMs);
        out_ += '\n';
        out_ += name;
        out_ += "_count{";
        out_ += plain;
        out_ += "} ";
        appendNumber(cumulative);
        out_ += '\n';
    }

    void appendNumber(uint64_t v)
    {
        char buf[24];
        auto end = std::to_chars(buf, buf + sizeof(buf), v).ptr;
        out_.append(buf, end - buf);
    }

    void reserve(size_t n) { out_.reserve(n); }

    std::string &out() { return out_; }

private:
    static std::string number(uint64_t v) { return std::to_string(v); }

    bool om_;
    std::string out_;
    std::string labels_;
    std::vector<std::string> les_;
    const uint32_t *leBounds_ = nullptr;
};

} // namespace

std::string renderMetrics(const MetricsView &view)
{
    Exposition x(view.openMetrics);
    const MetricsIndex *index = view.index;

    /*
     * The routes that counted something, once: every request a route
     * counts goes to its histogram too.  A route that starts counting
     * meanwhile shows in the next scrape.
     */
    std::vector<const MetricsRoute *> active;
    if (index != nullptr) {
        const MetricsEntry *entries = index->entries();
        for (uint64_t i = 0; i < index->capacity; i++) {
            if (load(entries[i].key) <= kRemovedKey) {
                continue;
            }
            const MetricsRoute *r = routeAt(view.base, load(entries[i].route));
            const uint64_t *hist =
                r->counters() + r->columnCount * kStatusClasses;
            uint64_t count = 0;
            for (size_t b = 0; b <= r->bucketCount; b++) {
                count += load(hist[b]);
            }
            if (count != 0) {
                active.push_back(r);
            }
        }
    }

    // about what a route that counted takes: a line or two, and its histogram
    x.reserve(4096 + active.size() * 1700 + view.services.size() * 2048);

    x.family("nginx_discovery_requests_total", "counter",
             "Requests routed to a route, by method and status class.");
    for (const MetricsRoute *r : active) {
        const uint64_t *c = r->counters();
        for (size_t col = 0; col < r->columnCount; col++) {
            std::string_view method = "other";
            if (col + 1 < r->columnCount) {
                uint32_t bits = r->columns;
                for (size_t k = 0; k < col; k++) {
                    bits &= bits - 1;
                }
                method = methodName(__builtin_ctz(bits));
            }
            for (size_t cls = 0; cls < kStatusClasses; cls++) {
                uint64_t v = load(c[col * kStatusClasses + cls]);
                if (v != 0) {
                    x.sample("nginx_discovery_requests_total",
                             {"service", r->service(), "route", r->route(),
                              "method", method, "code", kClassNames[cls]},
                             v);
                }
            }
        }
    }

    x.family("nginx_discovery_request_duration_seconds", "histogram",
             "Time of the requests routed to a route, from their first byte "
             "read to their last byte sent.");
    for (const MetricsRoute *r : active) {
        const uint64_t *hist = r->counters() + r->columnCount * kStatusClasses;
        x.histogram("nginx_discovery_request_duration_seconds",
                    {"service", r->service(), "route", r->route()},
                    index->bucketsMs, index->bucketCount, hist, r->bucketCount,
                    load(hist[r->bucketCount + 1]));
    }

    x.family("nginx_discovery_gateway_responses_total", "counter",
             "Requests the gateway answered itself, by reason.");
    for (size_t i = 0; i < size_t(GatewayReason::Count); i++) {
        x.sample("nginx_discovery_gateway_responses_total",
                 {"reason", kReasonNames[i]}, view.gateway[i]);
    }

    x.family("nginx_discovery_polls_total", "counter",
             "Polls of a service, by result.");
    for (const ServiceFigures &s : view.services) {
        for (size_t i = 0; i < size_t(PollOutcome::Count); i++) {
            x.sample("nginx_discovery_polls_total",
                     {"service", s.name, "result", kResultNames[i]},
                     s.polls[i]);
        }
    }

    x.family("nginx_discovery_poll_duration_seconds", "histogram",
             "Time of the polls of a service.");
    for (const ServiceFigures &s : view.services) {
        if (s.pollBuckets != nullptr) {
            x.histogram("nginx_discovery_poll_duration_seconds",
                        {"service", s.name}, kDefaultBucketsMs,
                        kDefaultBucketCount, s.pollBuckets, kDefaultBucketCount,
                        s.pollMs);
        }
    }

    x.family("nginx_discovery_service_up", "gauge",
             "1 when the service is healthy, else 0.");
    for (const ServiceFigures &s : view.services) {
        x.sample("nginx_discovery_service_up", {"service", s.name},
                 s.state == uint32_t(ServiceState::Healthy) ? 1 : 0);
    }

    x.family("nginx_discovery_service_state", "gauge",
             "1 for the state the service is in, 0 for the others.");
    for (const ServiceFigures &s : view.services) {
        for (uint32_t st = 0; st < 3; st++) {
            x.sample("nginx_discovery_service_state",
                     {"service", s.name, "state", kStateNames[st]},
                     s.state == st ? 1 : 0);
        }
    }

    x.family("nginx_discovery_last_success_timestamp_seconds", "gauge",
             "Unix time of the service's last good poll, 0: none.");
    for (const ServiceFigures &s : view.services) {
        x.sample("nginx_discovery_last_success_timestamp_seconds",
                 {"service", s.name},
                 uint64_t(std::max<int64_t>(s.lastSuccess, 0)));
    }

    x.family("nginx_discovery_routes", "gauge",
             "Routes of the service that the table routes.");
    for (const ServiceFigures &s : view.services) {
        x.sample("nginx_discovery_routes", {"service", s.name}, s.routes);
    }

    x.family("nginx_discovery_rejected_routes", "gauge",
             "Routes the service published that are not routed.");
    for (const ServiceFigures &s : view.services) {
        x.sample("nginx_discovery_rejected_routes", {"service", s.name},
                 s.rejected);
    }

    x.family("nginx_discovery_table_generation", "gauge",
             "Generation of the route table in use.");
    x.sample("nginx_discovery_table_generation", {}, view.generation);
    x.family("nginx_discovery_table_routes", "gauge",
             "Routes the table routes.");
    x.sample("nginx_discovery_table_routes", {}, view.tableRoutes);
    x.family("nginx_discovery_conflicts", "gauge",
             "Route shapes and methods claimed by two services.");
    x.sample("nginx_discovery_conflicts", {}, view.conflicts);
    x.family("nginx_discovery_overlaps", "gauge",
             "Routes that take requests another service's route matches.");
    x.sample("nginx_discovery_overlaps", {}, view.overlaps);
    x.family("nginx_discovery_zone_bytes", "gauge",
             "The shared zone: its size, and the bytes in use.");
    x.sample("nginx_discovery_zone_bytes", {"kind", "used"}, view.zoneUsed);
    x.sample("nginx_discovery_zone_bytes", {"kind", "size"}, view.zoneSize);
    x.family("nginx_discovery_metrics_overflow_total", "counter",
             "Requests that could not be counted by route, by why: no slot "
             "(the zone full), the route removed by a table change, a status "
             "or decision not known.");
    for (size_t i = 0; i < size_t(OverflowReason::Count); i++) {
        x.sample("nginx_discovery_metrics_overflow_total",
                 {"reason", kOverflowNames[i]}, view.overflow[i]);
    }

    if (view.openMetrics) {
        x.out() += "# EOF\n";
    }
    return std::move(x.out());
}

bool parseBuckets(std::string_view text, std::vector<uint32_t> &ms,
                  std::string &error)
{
    ms.clear();
    size_t start = 0;

    for (;;) {
        size_t comma = text.find(',', start);
        std::string_view item = text.substr(
            start, comma == std::string_view::npos ? comma : comma - start);

        uint64_t whole = 0, frac = 0;
        size_t digits = 0, fracDigits = 0, i = 0;
        for (; i < item.size() && item[i] >= '0' && item[i] <= '9'; i++) {
            whole = whole * 10 + (item[i] - '0');
            if (++digits > 7) {
                break;
            }
        }
        if (i < item.size() && item[i] == '.') {
            for (i++; i < item.size() && item[i] >= '0' && item[i] <= '9';
                 i++) {
                if (fracDigits < 3) {
                    frac = frac * 10 + (item[i] - '0');
                } else if (item[i] != '0') {
                    error = "not a whole number of milliseconds";
                    return false;
                }
                fracDigits++;
            }
        }
        if (item.empty() || i != item.size() || digits > 7
            || (digits == 0 && fracDigits == 0)) {
            error = "not a number of seconds";
            return false;
        }
        for (size_t k = std::min<size_t>(fracDigits, 3); k < 3; k++) {
            frac *= 10;
        }
        uint64_t v = whole * 1000 + frac;
        if (v == 0) {
            error = "a bound of less than 1 ms";
            return false;
        }
        if (v > UINT32_MAX) {
            error = "a bound of more than 4294967 s";
            return false;
        }
        if (!ms.empty() && v <= ms.back()) {
            error = "bounds must increase";
            return false;
        }
        if (ms.size() == kMaxBuckets) {
            error = "more than 32 bounds";
            return false;
        }
        ms.push_back(static_cast<uint32_t>(v));

        if (comma == std::string_view::npos) {
            return true;
        }
        start = comma + 1;
    }
}

bool acceptsOpenMetrics(std::string_view accept)
{
    double om = -1, text = -1;

    size_t start = 0;
    while (start <= accept.size()) {
        size_t comma = accept.find(',', start);
        std::string_view range = accept.substr(
            start, comma == std::string_view::npos ? comma : comma - start);
        start = comma == std::string_view::npos ? accept.size() + 1 : comma + 1;

        while (!range.empty()
               && (range.front() == ' ' || range.front() == '\t')) {
            range.remove_prefix(1);
        }
        size_t semi = range.find(';');
        std::string_view type = range.substr(0, semi);
        while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) {
            type.remove_suffix(1);
        }
        double q = 1;
        if (semi != std::string_view::npos) {
            std::string params(range.substr(semi));
            size_t at = params.find("q=");
            if (at != std::string::npos) {
                q = std::atof(params.c_str() + at + 2);
            }
        }

        auto is = [&](std::string_view want) {
            if (type.size() != want.size()) {
                return false;
            }
            for (size_t i = 0; i < want.size(); i++) {
                char c = type[i];
                if (c >= 'A' && c <= 'Z') {
                    c = static_cast<char>(c - 'A' + 'a');
                }
                if (c != want[i]) {
                    return false;
                }
            }
            return true;
        };

        if (is("application/openmetrics-text")) {
            om = std::max(om, q);
        } else if (is("text/plain") || is("text/*") || is("*/*")) {
            text = std::max(text, q);
        }
    }

    return om > 0 && om >= text;
}

} // namespace discovery
