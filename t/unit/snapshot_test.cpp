// snapshot_test.cpp: encodings, corruption, roster, apply and conflicts.
#include "discovery_core.h"
#include "error.hpp"
#include "methods.hpp"
#include "snapshot.hpp"
#include "snapshot_update.hpp"
#include "table_check.hpp"

#include "captured_log.hpp"
#include "written_image.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>

namespace discovery {
namespace {

Route route(const std::string &path, uint32_t methods,
            const std::string &name = "", bool auth = false)
{
    Route r;
    r.path = path;
    r.methods = methods;
    r.name = name;
    r.authRequired = auth;
    return r;
}

Service service(const std::string &name, ServiceState state,
                std::vector<Route> routes = {})
{
    Service s;
    s.name = name;
    s.url = "http://" + name + "/routes";
    s.upstream = name + "_backend";
    s.state = state;
    s.routeSet.version = "1";
    s.routeSet.routes = std::move(routes);
    return s;
}

Snapshot sample()
{
    Snapshot snap;
    snap.generation = 42;
    snap.services.push_back(
        service("users", ServiceState::Healthy,
                {route("/users/{id}", kGet | kPut, "get_user", true),
                 route("/users", kGet | kPost)}));
    snap.services.push_back(service("files", ServiceState::Unhealthy,
                                    {route("/files/{p:path}", kGet)}));
    snap.services.push_back(service("late", ServiceState::Pending));
    snap.services[0].routeSet.routes[0].tags = {"users", "\x01odd\"tag"};
    snap.services[1].routeSet.routes[0].websocket = true;
    snap.services[1].routeSet.routes[0].extensionMethods = {"LOCK",
                                                            "PROPFIND"};
    snap.extensionMethods = {"PROPFIND", "LOCK"};
    snap.conflicts.push_back({kGet | 1u << (kMethodCount + 1), 0, 0, 1, 0});
    snap.denyOverlaps = true;
    snap.overlaps.push_back({kGet | kHead, 1, 0, 0, 0});
    snap.rejections.push_back({1, 0, "shadows users /users/{id}"});
    snap.services[0].routeSet.rejected.push_back(
        {"/elsewhere", kPost, {"PROPFIND"}, "outside prefix"});
    return snap;
}

bool sameSnapshot(const Snapshot &a, const Snapshot &b)
{
    if (a.generation != b.generation || a.services.size() != b.services.size()
        || a.conflicts.size() != b.conflicts.size()
        || a.denyOverlaps != b.denyOverlaps
        || a.extensionMethods != b.extensionMethods
        || a.overlaps.size() != b.overlaps.size()
        || a.rejections.size() != b.rejections.size()) {
        return false;
    }
    for (size_t i = 0; i < a.overlaps.size(); i++) {
        const Overlap &x = a.overlaps[i];
        const Overlap &y = b.overlaps[i];
        if (x.methods != y.methods || x.service != y.service
            || x.route != y.route || x.shadowedService != y.shadowedService
            || x.shadowedRoute != y.shadowedRoute) {
            return false;
        }
    }
    for (size_t i = 0; i < a.rejections.size(); i++) {
        const Rejection &x = a.rejections[i];
        const Rejection &y = b.rejections[i];
        if (x.service != y.service || x.route != y.route
            || x.reason != y.reason) {
            return false;
        }
    }
    for (size_t i = 0; i < a.services.size(); i++) {
        const Service &x = a.services[i];
        const Service &y = b.services[i];
        if (x.name != y.name || x.url != y.url || x.upstream != y.upstream
            || x.state != y.state || !(x.routeSet == y.routeSet)) {
            return false;
        }
    }
    for (size_t i = 0; i < a.conflicts.size(); i++) {
        const Conflict &x = a.conflicts[i];
        const Conflict &y = b.conflicts[i];
        if (x.methods != y.methods || x.winnerService != y.winnerService
            || x.winnerRoute != y.winnerRoute
            || x.loserService != y.loserService
            || x.loserRoute != y.loserRoute) {
            return false;
        }
    }
    return true;
}

// Blobs whose body is garbage but whose checksum is right.
void reseal(Bytes &blob)
{
    sealBlob(blob.data(), blob.size());
}

// The checksum of format versions 2 and 3 as documented: FNV-1a of the
// blob with the field read as zero.
void resealFnv(Bytes &blob)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < blob.size(); i++) {
        h ^= (i >= 24 && i < 28) ? 0 : blob[i];
        h *= 16777619u;
    }
    for (size_t i = 0; i < 4; i++) {
        blob[24 + i] = static_cast<unsigned char>(h >> (8 * i));
    }
}

void setLength(Bytes &blob)
{
    for (size_t i = 0; i < 8; i++) {
        blob[8 + i] = static_cast<unsigned char>(blob.size() >> (8 * i));
    }
}

TEST(Snapshot, RoundTrip)
{
    Snapshot snap = sample();
    Bytes blob = encodeSnapshot(snap);

    EXPECT_TRUE(sameSnapshot(decodeSnapshot(blob.data(), blob.size()), snap));
    EXPECT_EQ(checkSnapshot(blob.data(), blob.size()), 42u);
    EXPECT_EQ(std::string(blob.begin(), blob.begin() + 4), "NGXD");
}

TEST(Snapshot, RouteSetRoundTrip)
{
    RouteSet set = sample().services[0].routeSet;
    Bytes blob = encodeRouteSet(set);

    EXPECT_TRUE(decodeRouteSet(blob.data(), blob.size()) == set);
    // the two kinds of blob are not interchangeable
    EXPECT_THROW(decodeSnapshot(blob.data(), blob.size()), Error);
    Bytes snap = encodeSnapshot(sample());
    EXPECT_THROW(decodeRouteSet(snap.data(), snap.size()), Error);
}

// A state file written before extension methods (format 2) still loads.
TEST(Snapshot, ReadsFormatTwo)
{
    // two services with "/users/{id}" (GET, PUT), a conflict, and one
    // rejected entry, as the previous version encoded them
    static const char blob[] =
        "\x4e\x47\x58\x44\x02\x00\x00\x00\xbf\x00\x00\x00\x00\x00\x00\x00"
        "\x07\x00\x00\x00\x00\x00\x00\x00\x9a\x32\xd0\xa9\x00\x00\x00\x00"
        "\x00\x02\x05\x75\x73\x65\x72\x73\x13\x68\x74\x74\x70\x3a\x2f\x2f"
        "\x75\x73\x65\x72\x73\x2f\x72\x6f\x75\x74\x65\x73\x08\x75\x73\x65"
        "\x72\x73\x5f\x75\x70\x01\x01\x31\x01\x0b\x2f\x75\x73\x65\x72\x73"
        "\x2f\x7b\x69\x64\x7d\x09\x01\x08\x67\x65\x74\x5f\x75\x73\x65\x72"
        "\x00\x01\x02\x2f\x78\x04\x0e\x6f\x75\x74\x73\x69\x64\x65\x20\x70"
        "\x72\x65\x66\x69\x78\x00\x05\x6f\x74\x68\x65\x72\x13\x68\x74\x74"
        "\x70\x3a\x2f\x2f\x6f\x74\x68\x65\x72\x2f\x72\x6f\x75\x74\x65\x73"
        "\x08\x75\x73\x65\x72\x73\x5f\x75\x70\x01\x01\x31\x01\x0b\x2f\x75"
        "\x73\x65\x72\x73\x2f\x7b\x69\x64\x7d\x09\x01\x08\x67\x65\x74\x5f"
        "\x75\x73\x65\x72\x00\x00\x00\x01\x01\x00\x00\x01\x00\x00\x00";
    auto data = reinterpret_cast<const unsigned char *>(blob);

    Snapshot snap = decodeSnapshot(data, sizeof(blob) - 1);

    EXPECT_EQ(snap.generation, 7u);
    ASSERT_EQ(snap.services.size(), 2u);
    const Route &r = snap.services[0].routeSet.routes.at(0);
    EXPECT_EQ(r.path, "/users/{id}");
    EXPECT_EQ(r.methods, kGet | kPut);
    EXPECT_TRUE(r.extensionMethods.empty());
    EXPECT_TRUE(r.authRequired);
    EXPECT_EQ(snap.services[0].routeSet.rejected.at(0).reason,
              "outside prefix");
    ASSERT_EQ(snap.conflicts.size(), 1u);
    EXPECT_EQ(snap.conflicts[0].methods, kGet);
}

// A state file of the format before the word checksum (3) still loads,
// and is resealed as format 4 (the same body, without the controls of
// format 5); FNV-1a does not pass for a later format.
TEST(Snapshot, ReadsFormatThree)
{
    Snapshot snap = sample();
    Bytes blob = encodeSnapshot(snap);
    ASSERT_EQ(blob[4], 5);

    // format 5 less its empty controls: their length, 4 zero bytes
    Bytes three(blob.begin(), blob.end() - 4);
    for (size_t i = 0; i < 8; i++) {
        three[8 + i] = static_cast<unsigned char>(three.size() >> (8 * i));
    }
    three[4] = 3;
    resealFnv(three);
    EXPECT_TRUE(sameSnapshot(decodeSnapshot(three.data(), three.size()), snap));

    Bytes moved = resealSnapshot(three.data(), three.size(), 43);
    EXPECT_EQ(moved[4], 4);
    EXPECT_EQ(checkSnapshot(moved.data(), moved.size()), 43u);
    Snapshot back = decodeSnapshot(moved.data(), moved.size());
    back.generation = snap.generation;
    EXPECT_TRUE(sameSnapshot(back, snap));

    Bytes fnvFour = blob;
    resealFnv(fnvFour);
    EXPECT_THROW(checkSnapshot(fnvFour.data(), fnvFour.size()), Error);
}

TEST(Snapshot, Compact)
{
    Snapshot snap;
    snap.services.push_back(service("svc", ServiceState::Healthy));
    for (int i = 0; i < 1000; i++) {
        Route r = route("/api/v1/resource" + std::to_string(1000 + i) + "/{id}",
                        kGet, "operation_" + std::to_string(10000 + i));
        r.tags = {"resources"};
        snap.services[0].routeSet.routes.push_back(r);
    }

    Bytes blob = encodeSnapshot(snap);
    EXPECT_LT(blob.size(), 1000u * 70);
}

TEST(Snapshot, EveryTruncationIsRejected)
{
    Bytes blob = encodeSnapshot(sample());

    for (size_t len = 0; len < blob.size(); len++) {
        EXPECT_THROW(decodeSnapshot(blob.data(), len), Error) << len;
        EXPECT_THROW(checkSnapshot(blob.data(), len), Error) << len;
    }
    EXPECT_THROW(decodeSnapshot(nullptr, 0), Error);
}

TEST(Snapshot, EveryBitFlipIsRejected)
{
    Bytes blob = encodeSnapshot(sample());

    for (size_t i = 0; i < blob.size(); i++) {
        for (int bit = 0; bit < 8; bit++) {
            Bytes bad = blob;
            bad[i] ^= static_cast<unsigned char>(1u << bit);
            EXPECT_THROW(decodeSnapshot(bad.data(), bad.size()), Error)
                << i << ":" << bit;
        }
    }
}

TEST(Snapshot, HeaderChecks)
{
    Bytes blob = encodeSnapshot(sample());

    Bytes version = blob;
    version[4] = 1; // the format before rejections and overlaps
    reseal(version);
    EXPECT_THROW(checkSnapshot(version.data(), version.size()), Error);

    Bytes longer = blob;
    longer.push_back(0);
    reseal(longer);
    EXPECT_THROW(checkSnapshot(longer.data(), longer.size()), Error);

    // right length and checksum, but a byte the body does not account for
    setLength(longer);
    reseal(longer);
    EXPECT_NO_THROW(checkSnapshot(longer.data(), longer.size()));
    EXPECT_THROW(decodeSnapshot(longer.data(), longer.size()), Error);
}

TEST(Snapshot, ForgedBodiesNeverCrash)
{
    // garbage behind a valid header: only the bounds checks stand between
    // these bytes and the heap (ASan watches)
    Bytes blob = encodeSnapshot(sample());
    std::mt19937 rng(12345);
    int accepted = 0;

    for (int round = 0; round < 20000; round++) {
        Bytes bad = blob;
        int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = 32 + rng() % (bad.size() - 32);
            bad[at] = static_cast<unsigned char>(rng());
        }
        if (rng() % 4 == 0) {
            bad.resize(32 + rng() % (bad.size() - 32));
        }
        setLength(bad);
        reseal(bad);
        try {
            decodeSnapshot(bad.data(), bad.size());
            accepted++;
        } catch (const Error &) {
        }
    }

    // most edits break something the decoder checks
    EXPECT_LT(accepted, 20000 / 2);
}

TEST(Snapshot, HugeCountsAreRejectedBeforeAllocating)
{
    // one service whose route count claims 2^62 routes
    Bytes blob(32, 0);
    const unsigned char body[] = {1,    1,    'a',  0,    0,    0,
                                  0,    0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0x3f};
    blob.insert(blob.end(), body, body + sizeof(body));
    std::memcpy(blob.data(), "NGXD", 4);
    blob[4] = 1;
    setLength(blob);
    reseal(blob);

    EXPECT_THROW(decodeSnapshot(blob.data(), blob.size()), Error);
}

TEST(Snapshot, RejectsBadConflictIndices)
{
    Snapshot snap = sample();
    snap.conflicts[0].loserRoute = 5;
    Bytes blob = encodeSnapshot(snap);
    EXPECT_THROW(decodeSnapshot(blob.data(), blob.size()), Error);

    snap = sample();
    snap.conflicts[0].winnerService = 2; // after the loser
    blob = encodeSnapshot(snap);
    EXPECT_THROW(decodeSnapshot(blob.data(), blob.size()), Error);
}

TEST(Snapshot, RejectsInvalidRoutes)
{
    Snapshot snap = sample();
    snap.services[0].routeSet.routes[0].path = "/a/{b";
    Bytes blob = encodeSnapshot(snap);
    EXPECT_THROW(decodeSnapshot(blob.data(), blob.size()), Error);

    snap = sample();
    snap.services[0].routeSet.routes[0].methods = 0;
    blob = encodeSnapshot(snap);
    EXPECT_THROW(decodeSnapshot(blob.data(), blob.size()), Error);

    snap = sample();
    snap.services[0].state = static_cast<ServiceState>(3);
    blob = encodeSnapshot(snap);
    EXPECT_THROW(decodeSnapshot(blob.data(), blob.size()), Error);

    // extension methods: tokens, upper case, none of the nine, a route's
    // sorted, the table's unique, a finding's within the table's
    for (MethodNames bad : std::vector<MethodNames>{{"lock"},
                                                    {"GET"},
                                                    {"A B"},
                                                    {""},
                                                    {"PROPFIND", "LOCK"},
                                                    {"LOCK", "LOCK"}}) {
        snap = sample();
        snap.services[1].routeSet.routes[0].extensionMethods = bad;
        blob = encodeSnapshot(snap);
        EXPECT_THROW(decodeSnapshot(blob.data(), blob.size()), Error)
            << bad[0];
    }

    snap = sample();
    snap.extensionMethods = {"LOCK", "LOCK"};
    blob = encodeSnapshot(snap);
    EXPECT_THROW(decodeSnapshot(blob.data(), blob.size()), Error);

    snap = sample();
    snap.conflicts[0].methods = 1u << (kMethodCount + 2);
    blob = encodeSnapshot(snap);
    EXPECT_THROW(decodeSnapshot(blob.data(), blob.size()), Error);
}

// Made (the zone's table, a parser's route set): templates are not
// compiled again; everything else is checked as a file's bytes are.
TEST(Snapshot, MadeBytesSkipOnlyTheTemplates)
{
    Snapshot snap = sample();
    snap.services[0].routeSet.routes[0].path = "/a/{b";
    Bytes blob = encodeSnapshot(snap);
    EXPECT_THROW(decodeSnapshot(blob.data(), blob.size()), Error);
    EXPECT_EQ(decodeSnapshot(blob.data(), blob.size(), Provenance::Made)
                  .services[0]
                  .routeSet.routes[0]
                  .path,
              "/a/{b");

    Bytes set = encodeRouteSet(snap.services[0].routeSet);
    EXPECT_THROW(decodeRouteSet(set.data(), set.size()), Error);
    EXPECT_EQ(decodeRouteSet(set.data(), set.size(), Provenance::Made),
              snap.services[0].routeSet);

    snap = sample();
    snap.services[0].routeSet.routes[0].methods = 0;
    blob = encodeSnapshot(snap);
    EXPECT_THROW(decodeSnapshot(blob.data(), blob.size(), Provenance::Made),
                 Error);

    snap = sample();
    blob = encodeSnapshot(snap);
    blob[blob.size() / 2] ^= 1;
    EXPECT_THROW(decodeSnapshot(blob.data(), blob.size(), Provenance::Made),
                 Error);
}

/* roster and apply */

std::vector<ServiceConf> confs(const Snapshot &snap)
{
    std::vector<ServiceConf> out;
    for (const Service &s : snap.services) {
        out.push_back({s.name, s.url, s.upstream});
    }
    return out;
}

TEST(Roster, KeepsServicesWithSameNameAndUrl)
{
    Snapshot old = sample();
    old.conflicts.clear();
    Bytes oldBlob = encodeSnapshot(old);

    std::vector<ServiceConf> conf = confs(old);
    std::string movedUrl = "http://elsewhere/routes";
    conf[1].url = movedUrl;
    std::string upstream = "new_backend";
    conf[0].upstream = upstream;
    conf.push_back({"fresh", "http://fresh", "fresh_backend"});

    CapturedLog log;
    Bytes blob = applyRoster(oldBlob.data(), oldBlob.size(), conf, false, 7, Log());
    Snapshot next = decodeSnapshot(blob.data(), blob.size());

    EXPECT_EQ(next.generation, 7u);
    ASSERT_EQ(next.services.size(), 4u);
    EXPECT_EQ(next.services[0].state, ServiceState::Healthy);
    EXPECT_TRUE(next.services[0].routeSet == old.services[0].routeSet);
    EXPECT_EQ(next.services[0].upstream, "new_backend");
    EXPECT_EQ(next.services[1].state, ServiceState::Pending);
    EXPECT_TRUE(next.services[1].routeSet.routes.empty());
    EXPECT_EQ(next.services[3].name, "fresh");
    EXPECT_EQ(next.services[3].state, ServiceState::Pending);
    EXPECT_TRUE(next.conflicts.empty()); // /files moved away
}

TEST(Roster, KeepsATableCheckedByTheseRulesForTheSameRoster)
{
    Snapshot old = sample();
    Bytes first = encodeSnapshot(old);
    Bytes checked =
        applyRoster(first.data(), first.size(), confs(old), false, 5, Log());
    ASSERT_EQ(decodeSnapshot(checked.data(), checked.size()).checkedBy,
              kCheckRules);

    CapturedLog log;
    Snapshot sealed;
    Bytes again = applyRoster(checked.data(), checked.size(), confs(old),
                              false, 9, log.log(), &sealed);
    Snapshot next = decodeSnapshot(again.data(), again.size());

    EXPECT_EQ(next.generation, 9u);
    EXPECT_EQ(sealed.generation, 9u);
    EXPECT_EQ(next.checkedBy, kCheckRules);
    EXPECT_TRUE(log.lines.empty());
    // the body as it was: only the header's generation and checksum differ
    ASSERT_EQ(again.size(), checked.size());
    EXPECT_TRUE(std::equal(again.begin() + 32, again.end(),
                           checked.begin() + 32));
    EXPECT_EQ(next.conflicts.size(), sealed.conflicts.size());
    EXPECT_EQ(sealed.services.size(), old.services.size());
}

TEST(Roster, ChecksATableOfOtherRulesOrPolicyAgain)
{
    // both publish GET /x: a conflict, which the blob does not list
    Snapshot old;
    old.services.push_back(
        service("a", ServiceState::Healthy, {route("/x", kGet)}));
    old.services.push_back(
        service("b", ServiceState::Healthy, {route("/x", kGet)}));

    auto roster = [&](uint32_t rules, bool deny) {
        old.checkedBy = rules;
        Bytes blob = encodeSnapshot(old);
        Bytes out =
            applyRoster(blob.data(), blob.size(), confs(old), deny, 2, Log());
        return decodeSnapshot(out.data(), out.size());
    };

    // taken as it is: the case this test tells apart from the others
    EXPECT_TRUE(roster(kCheckRules, false).conflicts.empty());

    for (uint32_t rules : {0u, kCheckRules + 1}) {
        Snapshot next = roster(rules, false);
        EXPECT_EQ(next.conflicts.size(), 1u) << rules;
        EXPECT_EQ(next.checkedBy, kCheckRules) << rules;
    }

    // checked, but under the other discovery_overlap policy
    Snapshot next = roster(kCheckRules, true);
    EXPECT_TRUE(next.denyOverlaps);
    EXPECT_EQ(next.conflicts.size(), 1u);
}

TEST(Roster, InvalidOldIsWarnedAndIgnored)
{
    Bytes junk = {'N', 'G', 'X', 'D', 0, 0};
    CapturedLog log;
    std::vector<ServiceConf> conf = {{"a", "http://a", "up_a"}};

    Bytes blob = applyRoster(junk.data(), junk.size(), conf, false, 1, log.log());
    Snapshot next = decodeSnapshot(blob.data(), blob.size());

    ASSERT_EQ(log.lines.size(), 1u);
    EXPECT_EQ(log.lines[0],
              "previous routing table discarded: corrupt snapshot: too short");
    ASSERT_EQ(next.services.size(), 1u);
    EXPECT_EQ(next.services[0].state, ServiceState::Pending);

    // no old at all is normal, not worth a warning
    applyRoster(nullptr, 0, conf, false, 1, log.log());
    EXPECT_EQ(log.lines.size(), 1u);
}

Bytes emptyTable()
{
    std::vector<ServiceConf> conf = {{"a", "http://a", "up_a"},
                                     {"b", "http://b", "up_b"}};
    return applyRoster(nullptr, 0, conf, false, 1, Log());
}

Bytes routeSet(std::vector<Route> routes, const std::string &version = "1")
{
    RouteSet set;
    set.version = version;
    set.routes = std::move(routes);
    return encodeRouteSet(set);
}

std::optional<Bytes> poll(const Bytes &table, const std::string &name,
                          ServiceState state, const Bytes *routes,
                          CapturedLog *log = nullptr, uint64_t generation = 2)
{
    PollResult p;
    p.name = name;
    std::string url = "http://" + name;
    p.url = url;
    p.state = state;
    if (routes != nullptr) {
        p.routes = routes->data();
        p.routesLen = routes->size();
    }
    return applyPoll(table.data(), table.size(), p, generation,
                     log ? log->log() : Log());
}

TEST(Apply, UnknownServiceOrUrlIsUnchanged)
{
    Bytes table = emptyTable();
    Bytes routes = routeSet({route("/a", kGet)});

    EXPECT_FALSE(poll(table, "zzz", ServiceState::Healthy, &routes));

    PollResult p;
    p.name = "a";
    p.url = "http://old-url";
    p.state = ServiceState::Healthy;
    EXPECT_FALSE(applyPoll(table.data(), table.size(), p, 2, Log()));
}

TEST(Apply, IdenticalResultIsUnchanged)
{
    Bytes routes = routeSet({route("/a", kGet)});
    auto t1 = poll(emptyTable(), "a", ServiceState::Healthy, &routes);
    ASSERT_TRUE(t1);

    Bytes same = routeSet({route("/a", kGet)});
    EXPECT_FALSE(poll(*t1, "a", ServiceState::Healthy, &same));
    EXPECT_FALSE(poll(*t1, "a", ServiceState::Healthy, nullptr));

    Bytes newVersion = routeSet({route("/a", kGet)}, "2");
    EXPECT_TRUE(poll(*t1, "a", ServiceState::Healthy, &newVersion));
    Bytes newMethods = routeSet({route("/a", kGet | kPost)});
    EXPECT_TRUE(poll(*t1, "a", ServiceState::Healthy, &newMethods));
}

TEST(Apply, NullRoutesKeepsRoutesAndChangesState)
{
    Bytes routes = routeSet({route("/a", kGet)});
    auto t1 = poll(emptyTable(), "a", ServiceState::Healthy, &routes);
    ASSERT_TRUE(t1);

    auto t2 = poll(*t1, "a", ServiceState::Unhealthy, nullptr, nullptr, 9);
    ASSERT_TRUE(t2);
    Snapshot snap = decodeSnapshot(t2->data(), t2->size());
    EXPECT_EQ(snap.generation, 9u);
    EXPECT_EQ(snap.services[0].state, ServiceState::Unhealthy);
    ASSERT_EQ(snap.services[0].routeSet.routes.size(), 1u);
    EXPECT_EQ(snap.services[0].routeSet.routes[0].path, "/a");
}

PollResult pollOf(std::string_view name, std::string_view url, ServiceState state,
                  const Bytes *routes)
{
    PollResult p;
    p.name = name;
    p.url = url;
    p.state = state;
    if (routes != nullptr) {
        p.routes = routes->data();
        p.routesLen = routes->size();
    }
    return p;
}

TEST(ApplyPolls, SeveralPollsMakeTheTableThatOneByOneWould)
{
    Bytes table = emptyTable();
    Bytes ra = routeSet({route("/a", kGet)});
    Bytes rb = routeSet({route("/b/{id}", kGet | kPost)});

    auto t1 = poll(table, "a", ServiceState::Healthy, &ra, nullptr, 3);
    ASSERT_TRUE(t1);
    auto t2 = poll(*t1, "b", ServiceState::Healthy, &rb, nullptr, 3);
    ASSERT_TRUE(t2);

    std::vector<PollResult> polls = {
        pollOf("a", "http://a", ServiceState::Healthy, &ra),
        pollOf("b", "http://b", ServiceState::Healthy, &rb),
    };
    auto batch = applyPolls(table.data(), table.size(), polls, 3, Log());
    ASSERT_TRUE(batch);
    EXPECT_EQ(*batch, *t2);

    Snapshot snap = decodeSnapshot(batch->data(), batch->size());
    EXPECT_EQ(snap.generation, 3u);
    EXPECT_EQ(snap.services[1].routeSet.routes[0].path, "/b/{id}");
}

TEST(ApplyPolls, LaterPollsOfOneServiceWin)
{
    Bytes first = routeSet({route("/a", kGet)});
    Bytes second = routeSet({route("/a2", kGet)});
    std::vector<PollResult> polls = {
        pollOf("a", "http://a", ServiceState::Healthy, &first),
        pollOf("a", "http://a", ServiceState::Unhealthy, &second),
        pollOf("a", "http://a", ServiceState::Unhealthy, nullptr),
    };
    Bytes table = emptyTable();
    auto next = applyPolls(table.data(), table.size(), polls, 2, Log());
    ASSERT_TRUE(next);

    Snapshot snap = decodeSnapshot(next->data(), next->size());
    EXPECT_EQ(snap.services[0].state, ServiceState::Unhealthy);
    ASSERT_EQ(snap.services[0].routeSet.routes.size(), 1u);
    EXPECT_EQ(snap.services[0].routeSet.routes[0].path, "/a2");
}

TEST(ApplyPolls, UnknownServicesAreSkippedConflictsLoggedOnce)
{
    Bytes routes = routeSet({route("/x", kGet)});
    std::vector<PollResult> polls = {
        pollOf("zzz", "http://zzz", ServiceState::Healthy, &routes),
        pollOf("a", "http://a", ServiceState::Healthy, &routes),
        pollOf("b", "http://old-url", ServiceState::Healthy, &routes),
        pollOf("b", "http://b", ServiceState::Healthy, &routes),
    };
    CapturedLog log;
    Bytes table = emptyTable();
    auto next = applyPolls(table.data(), table.size(), polls, 2, log.log());
    ASSERT_TRUE(next);

    Snapshot snap = decodeSnapshot(next->data(), next->size());
    ASSERT_EQ(snap.services.size(), 2u);
    EXPECT_EQ(snap.conflicts.size(), 1u);
    ASSERT_EQ(log.lines.size(), 1u);
    EXPECT_EQ(log.lines[0], "route conflict: GET /x of \"b\" is shadowed by "
                            "/x of \"a\"");
}

TEST(ApplyPolls, NothingChangedIsUnchanged)
{
    Bytes routes = routeSet({route("/a", kGet)});
    auto t1 = poll(emptyTable(), "a", ServiceState::Healthy, &routes);
    ASSERT_TRUE(t1);

    std::vector<PollResult> polls = {
        pollOf("a", "http://a", ServiceState::Healthy, &routes),
        pollOf("a", "http://a", ServiceState::Healthy, nullptr),
        pollOf("b", "http://b", ServiceState::Pending, nullptr),
    };
    EXPECT_FALSE(applyPolls(t1->data(), t1->size(), polls, 3, Log()));
    EXPECT_FALSE(applyPolls(t1->data(), t1->size(), {}, 3, Log()));

    // a bad state anywhere refuses the whole batch
    polls.push_back(pollOf("b", "http://b", static_cast<ServiceState>(7), nullptr));
    EXPECT_THROW(applyPolls(t1->data(), t1->size(), polls, 3, Log()), Error);
}

TEST(Apply, RejectsBadInput)
{
    Bytes table = emptyTable();
    Bytes junk = {1, 2, 3};

    EXPECT_THROW(poll(table, "a", ServiceState::Healthy, &junk), Error);
    EXPECT_THROW(poll(junk, "a", ServiceState::Healthy, nullptr), Error);
    EXPECT_THROW(poll(table, "a", static_cast<ServiceState>(7), nullptr), Error);
}

TEST(Apply, ConflictsAreResolvedAndLoggedOnce)
{
    Bytes a = routeSet({route("/users/{id}", kGet | kDelete)});
    Bytes b = routeSet({route("/users/{user_id}", kGet | kPost | kDelete),
                        route("/other", kGet)});
    CapturedLog log;

    auto t1 = poll(emptyTable(), "a", ServiceState::Healthy, &a, &log);
    auto t2 = poll(*t1, "b", ServiceState::Healthy, &b, &log);
    ASSERT_TRUE(t2);

    ASSERT_EQ(log.lines.size(), 1u);
    EXPECT_EQ(log.lines[0],
              "route conflict: GET,DELETE /users/{user_id} of \"b\" is "
              "shadowed by /users/{id} of \"a\"");

    Snapshot snap = decodeSnapshot(t2->data(), t2->size());
    ASSERT_EQ(snap.conflicts.size(), 1u);
    const Conflict &c = snap.conflicts[0];
    EXPECT_EQ(c.methods, kGet | kDelete);
    EXPECT_EQ(c.winnerService, 0u);
    EXPECT_EQ(c.loserService, 1u);
    EXPECT_EQ(c.loserRoute, 0u);

    // the conflict is old news now
    auto t3 = poll(*t2, "b", ServiceState::Unhealthy, nullptr, &log);
    ASSERT_TRUE(t3);
    EXPECT_EQ(log.lines.size(), 1u);
}

/*
 * Overlaps can be as many as the routes of one service times those of
 * another: finding the new ones must cost about what finding them all
 * does, not describe every old and new one in text (which took ten times
 * as long: seconds, for a document of 600 kB, on every table change).
 */
TEST(Apply, ManyOverlapsAreComparedCheaply)
{
    constexpr int kDepth = 60, kRoutes = 500;
    std::vector<Route> web, api;

    for (int d = 1; d < kDepth; d++) {
        std::string path;
        for (int i = 0; i < d; i++) {
            path += "/{p" + std::to_string(i) + "}";
        }
        web.push_back(route(path + "/{rest:path}", kGet));
    }
    for (int r = 0; r < kRoutes; r++) {
        std::string path = "/r" + std::to_string(r);
        for (int i = 0; i < kDepth; i++) {
            path += "/segment";
        }
        api.push_back(route(path, kGet));
    }

    Bytes a = routeSet(web);
    Bytes b = routeSet(api);
    auto t1 = poll(emptyTable(), "a", ServiceState::Healthy, &a);
    auto t2 = poll(*t1, "b", ServiceState::Healthy, &b);
    ASSERT_TRUE(t2);

    api.push_back(route("/one/more", kGet));
    Bytes changed = routeSet(api);
    CapturedLog log;
    auto t3 = poll(*t2, "b", ServiceState::Healthy, &changed, &log);
    ASSERT_TRUE(t3);

    Snapshot snap = decodeSnapshot(t3->data(), t3->size());
    EXPECT_GT(snap.overlaps.size(), size_t{kRoutes} * (kDepth - 2));
    ASSERT_EQ(log.lines.size(), 1u); // "/one/more" shadows "/{p0}/{rest:path}"
    EXPECT_EQ(log.lines[0],
              "route overlap: GET,HEAD,OPTIONS /one/more of \"b\" shadows "
              "/{p0}/{rest:path} of \"a\"");

    // the fastest of three runs each: the machine may be busy
    using Clock = std::chrono::steady_clock;
    Clock::duration applied = Clock::duration::max();
    Clock::duration checked = Clock::duration::max();

    for (int run = 0; run < 3; run++) {
        auto start = Clock::now();
        poll(*t2, "b", ServiceState::Healthy, &changed);
        applied = std::min(applied, Clock::now() - start);

        start = Clock::now();
        checkTable(snap);
        checked = std::min(checked, Clock::now() - start);
    }

    EXPECT_LT(applied, 3 * checked);
}

TEST(Apply, NoConflictWithoutCommonMethodsOrWithinOneService)
{
    Bytes a = routeSet(
        {route("/x/{id}", kGet), route("/x/{other}", kGet), route("/h", kGet)});
    Bytes b = routeSet({route("/x/{n}", kPost), route("/h", kHead),
                        route("/x/{n:int}", kGet)});

    auto t1 = poll(emptyTable(), "a", ServiceState::Healthy, &a);
    auto t2 = poll(*t1, "b", ServiceState::Healthy, &b);
    ASSERT_TRUE(t2);
    EXPECT_TRUE(decodeSnapshot(t2->data(), t2->size()).conflicts.empty());
}

TEST(Apply, WinnerIsFirstInRosterNotFirstToArrive)
{
    Bytes a = routeSet({route("/same", kGet, "from_a")});
    Bytes b = routeSet({route("/same", kGet, "from_b")});

    // b publishes first, a later: a still wins
    auto t1 = poll(emptyTable(), "b", ServiceState::Healthy, &b);
    auto t2 = poll(*t1, "a", ServiceState::Healthy, &a);
    Snapshot snap = decodeSnapshot(t2->data(), t2->size());
    ASSERT_EQ(snap.conflicts.size(), 1u);
    EXPECT_EQ(snap.conflicts[0].winnerService, 0u);
    EXPECT_EQ(snap.conflicts[0].loserService, 1u);
}

/* the C interface */

TEST(SnapshotApi, RosterApplyCheck)
{
    discovery_service_conf_t conf[] = {
        {"a", 1, "http://a", 8, "up_a", 4},
    };
    discovery_buf_t table = {nullptr, 0};
    discovery_error_t err;
    uint64_t gen = 0;

    ASSERT_EQ(discovery_snapshot_roster(nullptr, 0, conf, 1, 0, 5, &table,
                                        nullptr, nullptr, &err),
              DISCOVERY_OK);
    EXPECT_EQ(discovery_snapshot_check(table.data, table.len, &gen, &err),
              DISCOVERY_OK);
    EXPECT_EQ(gen, 5u);

    // through the core: the glue's discovery_snapshot_apply_polls is below
    Bytes routes = routeSet({route("/a", kGet)});
    PollResult p;
    p.name = "a";
    p.url = "http://a";
    p.state = ServiceState::Healthy;
    p.routes = routes.data();
    p.routesLen = routes.size();
    std::optional<Bytes> next = applyPoll(table.data, table.len, p, 6, Log());
    ASSERT_TRUE(next);

    p.routes = nullptr;
    p.routesLen = 0;
    EXPECT_FALSE(applyPoll(next->data(), next->size(), p, 7, Log()));

    next->back() ^= 1;
    EXPECT_EQ(discovery_snapshot_check(next->data(), next->size(), &gen, &err),
              DISCOVERY_ERROR);
    EXPECT_STREQ(err.text, "corrupt snapshot: checksum mismatch");
    EXPECT_EQ(
        discovery_snapshot_check(next->data(), next->size(), nullptr, nullptr),
        DISCOVERY_ERROR);

    discovery_buf_free(&table);
    discovery_buf_free(nullptr);
}

TEST(SnapshotApi, ApplyPolls)
{
    discovery_service_conf_t conf[] = {
        {"a", 1, "http://a", 8, "up_a", 4},
        {"b", 1, "http://b", 8, "up_b", 4},
    };
    discovery_buf_t table = {nullptr, 0};
    discovery_buf_t next = {nullptr, 0};
    discovery_buf_t none = {nullptr, 0};
    discovery_error_t err;

    ASSERT_EQ(discovery_snapshot_roster(nullptr, 0, conf, 2, 0, 1, &table,
                                        nullptr, nullptr, &err),
              DISCOVERY_OK);

    Bytes ra = routeSet({route("/a", kGet)});
    discovery_poll_t polls[] = {
        {"a", 1, "http://a", 8, DISCOVERY_STATE_HEALTHY, ra.data(), ra.size()},
        {"b", 1, "http://b", 8, DISCOVERY_STATE_UNHEALTHY, nullptr, 0},
    };
    ASSERT_EQ(discovery_snapshot_apply_polls(table.data, table.len, polls, 2, 2,
                                             &next, nullptr, nullptr, 0,
                                             nullptr, nullptr, &err),
              DISCOVERY_OK);

    Snapshot snap = decodeSnapshot(next.data, next.len);
    EXPECT_EQ(snap.generation, 2u);
    EXPECT_EQ(snap.services[0].state, ServiceState::Healthy);
    EXPECT_EQ(snap.services[0].routeSet.routes.size(), 1u);
    EXPECT_EQ(snap.services[1].state, ServiceState::Unhealthy);

    // the same table, and its router image made from it as encoded
    discovery_buf_t again = {nullptr, 0};
    discovery_image_t *laid = nullptr;
    ASSERT_EQ(discovery_snapshot_apply_polls(table.data, table.len, polls, 2, 2,
                                             &again, &laid, nullptr, 0,
                                             nullptr, nullptr, &err),
              DISCOVERY_OK);
    discovery_buf_t image = writtenImage(laid);
    EXPECT_EQ(Bytes(again.data, again.data + again.len),
              Bytes(next.data, next.data + next.len));
    discovery_router_t *router =
        discovery_router_open(image.data, image.len, &err);
    ASSERT_NE(router, nullptr) << err.text;
    discovery_match_t m;
    EXPECT_EQ(discovery_router_match(router, "GET", 3, "/a", 2, 0, &m),
              DISCOVERY_MATCH_FOUND);
    EXPECT_EQ(std::string(m.upstream, m.upstream_len), "up_a");
    EXPECT_EQ(discovery_router_match(router, "GET", 3, "/b", 2, 0, &m),
              DISCOVERY_MATCH_NOT_FOUND);
    discovery_router_destroy(router);

    // the next table's image patched from this one: a route added
    Bytes rc = routeSet({route("/a", kGet), route("/c", kPost)});
    discovery_poll_t more[] = {
        {"a", 1, "http://a", 8, DISCOVERY_STATE_HEALTHY, rc.data(), rc.size()},
    };
    discovery_buf_t third = {nullptr, 0};
    laid = nullptr;
    CapturedLog said;
    discovery_log_t log = {CapturedLog::handler, &said};
    ASSERT_EQ(discovery_snapshot_apply_polls(again.data, again.len, more, 1, 3,
                                             &third, &laid, image.data,
                                             image.len, nullptr, &log, &err),
              DISCOVERY_OK);
    ASSERT_NE(laid, nullptr);
    EXPECT_EQ(discovery_image_size(laid), image.len);
    // the layout reads the old image when written, not before
    discovery_buf_t patched = writtenImage(laid);
    ASSERT_NE(patched.data, nullptr);
    EXPECT_EQ(patched.len, image.len);
    ASSERT_FALSE(said.lines.empty());
    EXPECT_NE(said.lines.back().find("router image"), std::string::npos);
    EXPECT_NE(said.lines.back().find("(patched: 0 routes removed, 1 added"),
              std::string::npos)
        << said.lines.back();
    router = discovery_router_open(patched.data, patched.len, &err);
    ASSERT_NE(router, nullptr) << err.text;
    EXPECT_EQ(discovery_router_match(router, "POST", 4, "/c", 2, 0, &m),
              DISCOVERY_MATCH_FOUND);
    EXPECT_EQ(discovery_router_match(router, "GET", 3, "/a", 2, 0, &m),
              DISCOVERY_MATCH_FOUND);
    EXPECT_EQ(discovery_router_match(router, "GET", 3, "/c", 2, 0, &m),
              DISCOVERY_MATCH_NOT_ALLOWED);
    discovery_router_destroy(router);
    discovery_buf_free(&third);
    discovery_buf_free(&patched);

    discovery_buf_free(&again);
    discovery_buf_free(&image);

    EXPECT_EQ(discovery_snapshot_apply_polls(next.data, next.len, polls, 2, 3,
                                             &none, nullptr, nullptr, 0,
                                             nullptr, nullptr, &err),
              DISCOVERY_UNCHANGED);
    EXPECT_EQ(none.data, nullptr);

    EXPECT_EQ(discovery_snapshot_apply_polls(next.data, next.len, nullptr, 1, 3,
                                             &none, nullptr, nullptr, 0,
                                             nullptr, nullptr, &err),
              DISCOVERY_ERROR);
    EXPECT_STREQ(err.text, "no polls");

    discovery_buf_free(&table);
    discovery_buf_free(&next);
}

} // namespace
} // namespace discovery
