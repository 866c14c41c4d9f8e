// snapshot.cpp: fuzzes the snapshot and route-set decoders.
//
// The first byte picks a mode, the rest is:
//   0  a blob, used as it is (the header checks are what it reaches)
//   1  a blob whose length and checksum fields are fixed first, so mutations
//      of a valid snapshot reach the body decoder
//   2  edits to a built-in valid snapshot (fuzz/samples.hpp), unfixed
//   3  the same edits, then the length and checksum fixed
// An edit is 4 bytes: op, u16 offset (mod size), value; ops overwrite,
// insert, erase or xor a byte.  The blob goes through every C function that
// reads a snapshot (check, router, status, roster); they must agree on
// whether it is valid.  Valid, it goes through the core's applyPoll as `old`
// and as a route set (bytes of the zone and of the parser, which applyPoll
// decodes as Provenance::Made: what decodes as a file's must decode so),
// and applyPoll, which checks only what the changed
// routes could change, must make the table checked whole (checkTable) does
// of an old table whose findings are checkTable()'s.  A valid snapshot's router
// image, saved to a file and taken back at a start, must make exactly the table
// applyRoster() makes, and the file's header, damaged by the input's bytes,
// must be refused, never crash.  The image of a table a poll changed, patched
// from the old table's (Router::update), must answer as the one built whole.
#include "snapshot.hpp"
#include "discovery_core.h"
#include "error.hpp"
#include "fuzz_common.hpp"
#include "image_file.hpp"
#include "log.hpp"
#include "router.hpp"
#include "samples.hpp"
#include "snapshot_update.hpp"
#include "table_check.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {

using discovery::Bytes;

const Bytes &sample()
{
    static const Bytes blob = discovery::encodeSnapshot(fuzz::sampleSnapshot());
    return blob;
}

void edit(Bytes &blob, const uint8_t *ops, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i += 4) {
        size_t at = ops[i + 1] | (ops[i + 2] << 8);
        uint8_t v = ops[i + 3];
        switch (ops[i] % 4) {
        case 0:
            if (!blob.empty()) {
                blob[at % blob.size()] = v;
            }
            break;
        case 1:
            blob.insert(blob.begin() + at % (blob.size() + 1), v);
            break;
        case 2:
            if (!blob.empty()) {
                at %= blob.size();
                size_t len = std::min<size_t>(v % 8 + 1, blob.size() - at);
                blob.erase(blob.begin() + at, blob.begin() + at + len);
            }
            break;
        case 3:
            if (!blob.empty()) {
                blob[at % blob.size()] ^= v;
            }
            break;
        }
    }
}

// The core's applyPoll as a return code: DISCOVERY_OK with `out`,
// DISCOVERY_UNCHANGED, or DISCOVERY_ERROR for the Error that anything
// damaged must throw (any other exception is a crash).
int apply(const unsigned char *old, size_t oldLen,
          const discovery::PollResult &poll, uint64_t generation,
          fuzz::Log &log, Bytes &out)
{
    try {
        std::optional<Bytes> next = discovery::applyPoll(
            old, oldLen, poll, generation, log.core());
        if (!next) {
            return DISCOVERY_UNCHANGED;
        }
        out = std::move(*next);
        return DISCOVERY_OK;
    } catch (const discovery::Error &) {
        return DISCOVERY_ERROR;
    }
}

/*
 * What applyPoll() makes of `old`, computed on the whole table: decoded,
 * the poll applied, checked whole (checkTable) and encoded.  applyPoll()
 * checks only where the changed routes could change the findings, trusting
 * the rest to be what checkTable() found; nullopt where nothing changes.
 */
std::optional<Bytes> wholeApply(const unsigned char *old, size_t oldLen,
                                const discovery::PollResult &poll,
                                uint64_t generation)
{
    discovery::Snapshot snap = discovery::decodeSnapshot(old, oldLen);
    bool changed = false;

    for (discovery::Service &s : snap.services) {
        if (s.name != poll.name || s.url != poll.url) {
            continue;
        }
        changed = s.state != poll.state;
        s.state = poll.state;
        if (poll.routes != nullptr) {
            discovery::RouteSet set =
                discovery::decodeRouteSet(poll.routes, poll.routesLen);
            if (!(set == s.routeSet)) {
                s.routeSet = std::move(set);
                changed = true;
            }
        }
        break;
    }
    if (!changed) {
        return std::nullopt;
    }
    snap.generation = generation;
    discovery::checkTable(snap);
    return discovery::encodeSnapshot(snap);
}

// Whether a table's findings are those checkTable() makes of it.
// Whether `decode` returns rather than throwing the decoders' Error (any
// other exception is a crash).
template <class Decode>
bool decodes(Decode decode)
{
    try {
        decode();
        return true;
    } catch (const discovery::Error &) {
        return false;
    }
}

bool checkedAsWhole(const discovery::Snapshot &snap)
{
    discovery::Snapshot again = snap;
    discovery::checkTable(again);
    return discovery::encodeSnapshot(again) == discovery::encodeSnapshot(snap);
}

// applyPoll()'s answer (rc, applied) and the whole table's agree.
void agreesWithWhole(const unsigned char *old, size_t oldLen,
                     const discovery::PollResult &poll, uint64_t generation,
                     int rc, const Bytes &applied)
{
    std::optional<Bytes> whole = wholeApply(old, oldLen, poll, generation);
    fuzz::check(rc == (whole ? DISCOVERY_OK : DISCOVERY_UNCHANGED),
                "apply and the whole table disagree on a change");
    fuzz::check(!whole || *whole == applied,
                "apply's table is not the whole table's");
}

using Aligned = std::unique_ptr<unsigned char, decltype(&std::free)>;

Aligned written(const discovery::Router::Image &image)
{
    Aligned out(static_cast<unsigned char *>(std::aligned_alloc(
                    discovery::Router::kImageAlign, image.size())),
                &std::free);
    image.write(out.get());
    return out;
}

/*
 * The image of the table applyPolls() makes of `old`, patched from the
 * image of `old` (Router::update), answers every lookup as the image
 * built whole does, and accounts for itself.
 */
void patchedAgrees(const unsigned char *old, size_t oldLen,
                   const discovery::PollResult &poll, uint64_t generation)
{
    discovery::Snapshot sealed;
    discovery::Router::TableBefore before;
    std::optional<Bytes> next;
    discovery::Router::Image prev;

    try {
        prev = discovery::Router::image(old, oldLen);
        next = discovery::applyPolls(old, oldLen, {poll}, generation,
                                     discovery::Log(), &sealed, nullptr,
                                     &before);
    } catch (const discovery::Error &) {
        return;
    }
    if (!next) {
        return;
    }

    Aligned was = written(prev);
    discovery::Router::UpdateInfo info;
    discovery::Router::Image patched = discovery::Router::update(
        was.get(), prev.size(), before, sealed, &info);
    discovery::Router::Image whole = discovery::Router::image(sealed);
    Aligned a = written(patched);
    Aligned b = written(whole);
    fuzz::check(discovery::Router::audit(a.get(), patched.size()).empty(),
                "a patched image does not account for itself");
    auto x = discovery::Router::view(a.get(), patched.size());
    auto y = discovery::Router::view(b.get(), whole.size());
    static const char *const methods[] = {"GET", "POST", "DELETE", "OPTIONS"};
    size_t tried = 0;

    for (const discovery::Service &s : sealed.services) {
        for (const discovery::Route &r : s.routeSet.routes) {
            if (tried++ == 64) {
                return;
            }
            for (const char *method : methods) {
                discovery::Match m = x->match(method, r.path, false);
                discovery::Match n = y->match(method, r.path, false);
                fuzz::check(m.status == n.status && m.service == n.service
                                && m.upstream == n.upstream
                                && m.route == n.route && m.allow == n.allow
                                && m.authRequired == n.authRequired
                                && m.protocol == n.protocol
                                && m.streaming == n.streaming
                                && m.serviceIndex == n.serviceIndex,
                            "a patched image answers otherwise", r.path);
            }
        }
    }
}

void matchAll(const discovery_router_t *router,
              const discovery::Snapshot &snap)
{
    discovery_match_t m;
    size_t tried = 0;

    for (const discovery::Service &s : snap.services) {
        for (const discovery::Route &r : s.routeSet.routes) {
            if (tried++ == 32) {
                return;
            }
            int status = discovery_router_match(router, "GET", 3,
                                                r.path.data(), r.path.size(),
                                                r.websocket, &m);
            fuzz::check(status == m.status, "match status mismatch");
            discovery_router_match(router, "OPTIONS", 7, r.path.data(),
                                   r.path.size(), 0, &m);
        }
    }
    discovery_router_match(router, "GET", 3, "/", 1, 0, &m);
    discovery_router_match(router, "DELETE", 6, "/users/1", 8, 0, &m);
}

// The image file of the table a gateway would save from this one (checked
// by this module's rules, as every table it writes), taken at a start.
void imageFile(const Bytes &blob, const discovery::Snapshot &snap,
               const uint8_t *raw, size_t rawLen)
{
    using discovery::kImageFileHeader;

    std::vector<discovery::ServiceConf> confs;
    for (const discovery::Service &s : snap.services) {
        confs.push_back({s.name, s.url, s.upstream});
    }
    uint64_t generation = snap.generation + 1;
    Bytes table = discovery::applyRoster(blob.data(), blob.size(), confs,
                                         snap.denyOverlaps, generation,
                                         discovery::Log());

    discovery::Router::Image image;
    try {
        image = discovery::Router::image(table.data(), table.size());
    } catch (const discovery::Error &) {
        return; // no router: no file is written
    }

    size_t len = kImageFileHeader + image.size();
    std::unique_ptr<unsigned char, decltype(&std::free)> file(
        static_cast<unsigned char *>(
            std::aligned_alloc(discovery::Router::kImageAlign, len)),
        &std::free);
    unsigned char *data = file.get() + kImageFileHeader;
    image.write(data);
    discovery::imageFileHeader(table.data(), table.size(), data, image.size(),
                               file.get());

    // a header damaged by the input: refused, or still the same file
    Bytes header(file.get(), file.get() + kImageFileHeader);
    for (size_t i = 0; i + 1 < rawLen && i < 16; i += 2) {
        header[raw[i] % kImageFileHeader] ^= raw[i + 1];
    }
    try {
        discovery::checkImageFile(header.data(), data, image.size(),
                                  table.data(), table.size());
        fuzz::check(std::equal(header.begin(), header.end(), file.get()),
                    "a damaged image file header was taken");
    } catch (const discovery::Error &) {
    }

    discovery::checkImageFile(file.get(), data, image.size(), table.data(),
                              table.size());

    Bytes adopted = table;
    fuzz::check(discovery::adoptRoster(adopted.data(), adopted.size(), data,
                                       image.size(), confs, snap.denyOverlaps,
                                       generation + 1),
                "the image of a checked table of the same roster not taken");

    Bytes made = discovery::applyRoster(table.data(), table.size(), confs,
                                        snap.denyOverlaps, generation + 1,
                                        discovery::Log());
    fuzz::check(adopted == made, "an adopted table differs from the roster's");
    discovery::Router::Image built =
        discovery::Router::image(made.data(), made.size());
    fuzz::check(built.size() == image.size(), "adopted image size differs");
    std::unique_ptr<unsigned char, decltype(&std::free)> want(
        static_cast<unsigned char *>(std::aligned_alloc(
            discovery::Router::kImageAlign, built.size())),
        &std::free);
    built.write(want.get());
    fuzz::check(std::memcmp(want.get(), data, built.size()) == 0,
                "an adopted image differs from the one built");
}

void applySet(const unsigned char *p, size_t len,
              const discovery_service_conf_t &chatConf, fuzz::Log &log);

void run(const Bytes &blob, const uint8_t *raw, size_t rawLen)
{
    fuzz::Log log;
    discovery_error_t err;
    const unsigned char *p = blob.data();
    size_t len = blob.size();

    uint64_t generation = 0;
    int checked = discovery_snapshot_check(p, len, &generation, &err);
    fuzz::checkError(err);

    // the decoder proper, also used to cross-check the C functions
    bool decoded = false;
    discovery::Snapshot snap;
    try {
        snap = discovery::decodeSnapshot(p, len);
        decoded = true;
    } catch (const std::exception &) {
    }
    fuzz::check(!decoded || checked == DISCOVERY_OK,
                "decodes but fails the check");

    if (decoded) {
        fuzz::check(snap.generation == generation, "generation mismatch");
        // decoding is a function of the encoding: re-encoding is stable
        Bytes once = discovery::encodeSnapshot(snap);
        Bytes twice = discovery::encodeSnapshot(
            discovery::decodeSnapshot(once.data(), once.size()));
        fuzz::check(once == twice, "re-encoding is not stable");

        imageFile(blob, snap, raw, rawLen);
    }

    discovery_router_t *router = discovery_router_create(p, len, &err);
    fuzz::checkError(err);
    fuzz::check((router != nullptr) == decoded,
                "router_create disagrees with the decoder", err.text);
    if (router != nullptr) {
        matchAll(router, snap);
        discovery_router_destroy(router);
    }

    // stats with fuzz-derived times, one for a name the snapshot may hold
    int64_t t1 = 0, t2 = 0;
    for (size_t i = 0; i < 8 && i < rawLen; i++) {
        t1 |= static_cast<int64_t>(raw[i]) << (8 * i);
        t2 |= static_cast<int64_t>(raw[rawLen - 1 - i]) << (8 * i);
    }
    const discovery_service_stats_t stats[] = {
        {"users", 5, t1, t2, 7, "timed out \xff\xfe", 12, 0},
        {"files", 5, INT64_MIN, INT64_MAX, UINT32_MAX, "", 0, 1},
        {"users", 5, 1, 1, 0, "", 0, 0},
    };
    discovery_buf_t page = {nullptr, 0};
    int rc = discovery_status_render(p, len, stats, 3, "full", 4, "1.0",
                                     "{\"state\":\"up\"}", 14, &page, &err);
    fuzz::checkError(err);
    fuzz::check((rc == DISCOVERY_OK) == decoded,
                "status_render disagrees with the decoder", err.text);
    if (rc == DISCOVERY_OK) {
        fuzz::checkJson(page);
        discovery_buf_free(&page);
    }

    // a damaged old snapshot never fails a reload
    const discovery_service_conf_t confs[] = {
        {"users", 5, "http://users:8000/health?include_routes=true", 44,
         "users_backend", 13},
        {"chat", 4, "http://chat:8000/health?include_routes=true", 43, "c",
         1},
        {"files", 5, "http://other", 12, "f", 1},
    };
    discovery_buf_t out = {nullptr, 0};
    rc = discovery_snapshot_roster(p, len, confs, 3, 0, generation + 1, &out,
                                   nullptr, &log.raw, &err);
    fuzz::check(rc == DISCOVERY_OK, "roster failed", err.text);
    discovery_buf_free(&out);

    /*
     * applyPoll() takes the zone's table and the parser's route sets
     * (Provenance::Made: templates not compiled again), so only bytes that
     * decode as a file's are given to it.  As Made, the decoder checks
     * all but the templates: whatever decodes as a file's decodes so.
     */
    bool made = decodes([&] {
        discovery::decodeSnapshot(p, len, discovery::Provenance::Made);
    });
    fuzz::check(!decoded || made, "decodes as a file's, not as made");

    if (decoded) {
        Bytes applied;
        discovery::PollResult unhealthy{
            "users", std::string_view(confs[0].url, confs[0].url_len),
            discovery::ServiceState::Unhealthy, nullptr, 0};
        rc = apply(p, len, unhealthy, generation + 1, log, applied);
        fuzz::check(rc == DISCOVERY_OK || rc == DISCOVERY_UNCHANGED,
                    "apply disagrees with the decoder");
        if (snap.checkedBy == discovery::kCheckRules && checkedAsWhole(snap)) {
            agreesWithWhole(p, len, unhealthy, generation + 1, rc, applied);
            patchedAgrees(p, len, unhealthy, generation + 1);
        }
        if (rc == DISCOVERY_OK) {
            fuzz::check(discovery_snapshot_check(applied.data(),
                                                 applied.size(), nullptr,
                                                 &err) == DISCOVERY_OK,
                        "apply made a bad snapshot", err.text);
        }
    }

    // the same bytes as a route set (NULL routes means "unchanged")
    applySet(p, len, confs[1], log);
}

/*
 * The blob as the route set of a poll of "chat" (confs[1]), applied to the
 * sample: only a set that decodes as a file's, the parser's being checked.
 */
void applySet(const unsigned char *p, size_t len,
              const discovery_service_conf_t &chatConf, fuzz::Log &log)
{
    discovery_error_t err;

    if (p == nullptr) {
        return;
    }
    bool set = decodes([&] { discovery::decodeRouteSet(p, len); });
    bool made = decodes([&] {
        discovery::decodeRouteSet(p, len, discovery::Provenance::Made);
    });
    fuzz::check(!set || made, "a route set decodes as a file's, not as made");
    if (!set) {
        return;
    }
    Bytes applied;
    discovery::PollResult chat{"chat",
                               std::string_view(chatConf.url, chatConf.url_len),
                               discovery::ServiceState::Healthy, p, len};
    int rc = apply(sample().data(), sample().size(), chat, 43, log, applied);
    fuzz::check(rc == DISCOVERY_OK || rc == DISCOVERY_UNCHANGED,
                "apply disagrees with the route-set decoder");
    // the sample is checked whole: its findings are checkTable()'s
    agreesWithWhole(sample().data(), sample().size(), chat, 43, rc, applied);
    patchedAgrees(sample().data(), sample().size(), chat, 43);
    if (rc == DISCOVERY_OK) {
        discovery_router_t *router =
            discovery_router_create(applied.data(), applied.size(), &err);
        fuzz::check(router != nullptr, "router of an applied set failed",
                    err.text);
        matchAll(router,
                 discovery::decodeSnapshot(applied.data(), applied.size()));
        discovery_router_destroy(router);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }

    int mode = data[0] % 4;
    Bytes blob;

    if (mode < 2) {
        blob.assign(data + 1, data + size);
    } else {
        blob = sample();
        edit(blob, data + 1, size - 1);
    }
    if (mode == 1 || mode == 3) {
        fuzz::fixHeader(blob);
    }

    run(blob, data, size);
    return 0;
}
