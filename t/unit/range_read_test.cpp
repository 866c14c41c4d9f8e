// range_read_test.cpp: the registry's read of its prefix in pages (the
// routes' values apart, each page under the answer's cap, all at one
// revision) and the watch's fragments, against a small etcd of our own.
#include "discovery_core.h"
#include "error.hpp"
#include "registry.hpp"

#include <gtest/gtest.h>
#include <yajl/yajl_tree.h>

#include <map>
#include <memory>

namespace discovery {
namespace {

std::string b64(std::string_view s)
{
    return encodeBase64(s);
}

/*
 * etcd's range reads as its JSON gateway answers them, over a history of
 * revisions (key, range_end, limit, revision; "more" and "count"), with
 * its refusal of a compacted revision.
 */
class FakeEtcd {
public:
    int64_t put(const std::string &key, const std::string &value,
                int64_t lease = 0)
    {
        history_[key].push_back({++revision_, value, lease, true});
        return revision_;
    }

    int64_t erase(const std::string &key)
    {
        history_[key].push_back({++revision_, "", 0, false});
        return revision_;
    }

    void compact() { compacted_ = revision_; }
    int64_t revision() const { return revision_; }

    // the answer to a /v3/kv/range body, and the request's fields
    std::string answer(const std::string &request)
    {
        char error[256];
        std::unique_ptr<std::remove_pointer_t<yajl_val>,
                        decltype(&yajl_tree_free)>
            tree(yajl_tree_parse(request.c_str(), error, sizeof(error)),
                 &yajl_tree_free);
        EXPECT_NE(tree.get(), nullptr) << error;

        key = decodeBase64(text(tree.get(), "key"));
        end = decodeBase64(text(tree.get(), "range_end"));
        limit = std::stoll("0" + text(tree.get(), "limit"));
        at = std::stoll("0" + text(tree.get(), "revision"));
        const char *keysOnlyPath[] = {"keys_only", nullptr};
        keysOnly = yajl_tree_get(tree.get(), keysOnlyPath, yajl_t_true)
                   != nullptr;
        requests++;

        if (at > 0 && at < compacted_) {
            return R"({"error":"etcdserver: mvcc: required revision has been compacted","message":"etcdserver: mvcc: required revision has been compacted","code":11})";
        }

        int64_t rev = at > 0 ? at : revision_;
        std::string kvs;
        int64_t count = 0, sent = 0;

        for (const auto &[k, versions] : history_) {
            if (k < key || k >= end) {
                continue;
            }
            const Version *v = nullptr;
            for (const Version &each : versions) {
                if (each.revision <= rev) {
                    v = &each;
                }
            }
            if (v == nullptr || !v->present) {
                continue;
            }
            count++;
            if (limit > 0 && sent == limit) {
                continue;
            }
            if (kvs.size() > kMaxRangeAnswer) {
                // the watcher stops reading there: so does this
                sent++;
                continue;
            }
            sent++;
            kvs +=
                std::string(kvs.empty() ? "" : ",") + "{\"key\":\"" + b64(k)
                + "\",\"create_revision\":\""
                + std::to_string(versions[0].revision)
                + "\",\"mod_revision\":\"" + std::to_string(v->revision)
                + "\",\"version\":\"1\""
                + (keysOnly ? "" : ",\"value\":\"" + b64(v->value) + "\"")
                + (v->lease ? ",\"lease\":\"" + std::to_string(v->lease) + "\""
                            : "")
                + "}";
        }

        return "{\"header\":{\"cluster_id\":\"1\",\"revision\":\""
               + std::to_string(revision_) + "\"}"
               + (kvs.empty() ? "" : ",\"kvs\":[" + kvs + "]")
               + (sent < count ? ",\"more\":true" : "") + ",\"count\":\""
               + std::to_string(count) + "\"}";
    }

    // the last request's
    std::string key, end;
    int64_t limit = 0, at = 0;
    bool keysOnly = false;
    size_t requests = 0;

private:
    static std::string text(yajl_val obj, const char *name)
    {
        const char *path[] = {name, nullptr};
        yajl_val v = yajl_tree_get(obj, path, yajl_t_string);
        return v ? YAJL_GET_STRING(v) : "";
    }

    struct Version {
        int64_t revision;
        std::string value;
        int64_t lease;
        bool present;
    };
    std::map<std::string, std::vector<Version>> history_;
    int64_t revision_ = 1;
    int64_t compacted_ = 0;
};

// what a page looked like
struct Page {
    std::string key, end;
    int64_t limit, revision;
    size_t bytes;
};

// Reads the whole prefix through `read`, as the watcher does (a page over
// the cap read again with fewer keys); `between` runs after each page.
RangeAnswer readAll(RangeRead &read, FakeEtcd &etcd, std::vector<Page> &pages,
                    const std::function<void()> &between = {})
{
    read.begin();
    for (size_t n = 0; n < 10000; n++) {
        std::string body = etcd.answer(read.request());
        if (body.size() > kMaxRangeAnswer) {
            EXPECT_TRUE(read.smaller());
            continue;
        }
        pages.push_back({etcd.key, etcd.end, etcd.limit, etcd.at, body.size()});
        bool whole = read.add(parseRangeAnswer(body), body.size());
        if (whole) {
            return read.result();
        }
        if (between) {
            between();
        }
    }
    ADD_FAILURE() << "the read never ended";
    return RangeAnswer();
}

std::string service(int i)
{
    return "{\"url\":\"http://10.0.0." + std::to_string(i % 250 + 1)
           + ":8000\"}";
}

TEST(RangeRead, ThePrefixWithoutRoutesFirstThenRoutesInPagesAtOneRevision)
{
    FakeEtcd etcd;
    etcd.put("/other", "not ours");
    etcd.put("/p/overrides/controls", "c");
    for (int i = 0; i < 300; i++) {
        etcd.put("/p/services/s" + std::to_string(i), service(i));
        etcd.put("/p/pollers/s" + std::to_string(i), "ff", 255);
        etcd.put("/p/routes/s" + std::to_string(i),
                 "{\"state\":\"healthy\",\"routes\":[]}", 255);
    }
    etcd.put("/p0", "not ours either");
    int64_t revision = etcd.revision();

    RangeRead read("/p/", true);
    std::vector<Page> pages;
    RangeAnswer a = readAll(read, etcd, pages);

    EXPECT_EQ(a.revision, revision);
    EXPECT_EQ(a.kvs.size(), 1u + 3 * 300);

    // overrides/ and pollers/, services/, then routes/ apart
    ASSERT_GE(pages.size(), 3u);
    EXPECT_EQ(pages[0].key, "/p/");
    EXPECT_EQ(pages[0].end, "/p/routes/");
    EXPECT_EQ(pages[0].revision, 0);
    EXPECT_EQ(pages.back().end, "/p/routes0");
    std::vector<std::string> ends;
    for (const Page &p : pages) {
        if (ends.empty() || ends.back() != p.end) {
            ends.push_back(p.end);
        }
    }
    EXPECT_EQ(ends,
              (std::vector<std::string>{"/p/routes/", "/p0", "/p/routes0"}));

    // every page but the first at the first's revision, each range's
    // first page of 7 keys, more once the values are seen to be small
    int64_t largest = 0;
    for (size_t i = 1; i < pages.size(); i++) {
        EXPECT_EQ(pages[i].revision, revision) << i;
        if (pages[i].end != pages[i - 1].end) {
            EXPECT_EQ(pages[i].limit, RangeRead::kFirstLimit) << i;
        }
        largest = std::max(largest, pages[i].limit);
    }
    EXPECT_EQ(RangeRead::kFirstLimit, 7);
    EXPECT_EQ(pages[0].limit, 7);
    EXPECT_GT(largest, 7 * 8);
    EXPECT_LT(pages.size(), 30u);

    // the same table as one read of everything would give
    RegistryTable paged("/p/", true), whole("/p/", true);
    paged.load(a);
    RangeAnswer all;
    all.revision = revision;
    all.kvs = a.kvs;
    whole.load(all);
    EXPECT_EQ(paged.entries().size(), 300u);
    EXPECT_EQ(paged.routes().size(), 300u);
    EXPECT_EQ(paged.pollers().size(), 300u);
    EXPECT_TRUE(paged.hasOverrides());
    EXPECT_EQ(paged.servingJson(), whole.servingJson());
    EXPECT_EQ(paged.routes(), whole.routes());
}

/*
 * share=off: the gateway polls every service itself, so the others'
 * routes (the bulk of a sharing fleet's prefix) are not read, and what the
 * read and the watch bring of claims and routes is passed by.
 */
TEST(RangeRead, WithoutShareRoutesAreNotReadNorKept)
{
    FakeEtcd etcd;
    etcd.put("/p/overrides/controls", "c");
    for (int i = 0; i < 50; i++) {
        etcd.put("/p/services/s" + std::to_string(i), service(i));
        etcd.put("/p/pollers/s" + std::to_string(i), "ff", 255);
        etcd.put("/p/routes/s" + std::to_string(i),
                 "{\"state\":\"healthy\",\"routes\":[]}", 255);
    }

    RangeRead read("/p/", false);
    std::vector<Page> pages;
    RangeAnswer a = readAll(read, etcd, pages);
    for (const Page &p : pages) {
        EXPECT_NE(p.end, "/p/routes0") << p.key;
        EXPECT_NE(p.key.compare(0, 10, "/p/routes/"), 0) << p.key;
    }
    EXPECT_EQ(a.kvs.size(), 1u + 2 * 50); // the claims are in the first range

    RegistryTable t("/p/", false), shared("/p/", true);
    t.load(a);
    shared.load(a);
    EXPECT_EQ(t.entries().size(), 50u);
    EXPECT_TRUE(t.pollers().empty());
    EXPECT_TRUE(t.routes().empty());
    EXPECT_TRUE(t.hasOverrides());
    EXPECT_EQ(t.servingJson(), shared.servingJson());
    EXPECT_EQ(shared.pollers().size(), 50u);

    // nor does the watch keep them, and the services still change
    uint64_t version = t.version(), shareVersion = t.shareVersion();
    WatchMessage m;
    m.revision = a.revision + 1;
    auto event = [&](bool put, std::string key, std::string value,
                     int64_t lease) {
        m.events.push_back({put, {key, value, m.revision, lease, m.revision}});
    };
    event(true, "/p/routes/s1", "{}", 255);
    event(true, "/p/pollers/s1", "ee", 254);
    event(false, "/p/routes/s2", "", 0);
    event(true, "/p/services/new", service(1), 0);
    EXPECT_TRUE(t.apply(m));
    EXPECT_TRUE(t.pollers().empty());
    EXPECT_TRUE(t.routes().empty());
    EXPECT_EQ(t.shareVersion(), shareVersion);
    EXPECT_GT(t.version(), version);
    EXPECT_EQ(t.entries().size(), 51u);
}

TEST(RangeRead, RoutesLargerThanTheCapInAllArePagedUnderIt)
{
    // 16 values of 1.4 MB: 30 MB in base64, twice the cap, which one read
    // of the prefix passed ("the answer is larger than 16777216")
    FakeEtcd etcd;
    std::string big(1400 * 1000, 'r');
    for (int i = 0; i < 16; i++) {
        etcd.put("/p/services/s" + std::to_string(i), service(i));
        etcd.put("/p/routes/s" + std::to_string(i), big + std::to_string(i),
                 255);
    }

    RangeRead read("/p/", true);
    std::vector<Page> pages;
    RangeAnswer a = readAll(read, etcd, pages);

    size_t total = 0;
    for (const Page &p : pages) {
        EXPECT_LE(p.bytes, kMaxRangeAnswer);
        total += p.bytes;
    }
    EXPECT_GT(total, kMaxRangeAnswer * 7 / 4);
    ASSERT_EQ(a.kvs.size(), 32u);

    RegistryTable t("/p/", true);
    t.load(a);
    ASSERT_EQ(t.routes().size(), 16u);
    EXPECT_EQ(t.routes().at("s15").value, big + "15");
    EXPECT_EQ(t.routes().at("s15").lease, 255);
}

TEST(RangeRead, ValuesGrowingPastThePageAreReadWithFewerKeys)
{
    // small values make the pages grow; then values of 1 MB, which a page
    // of that many keys cannot hold: read again with half, down to fit
    FakeEtcd etcd;
    for (int i = 0; i < 49; i++) {
        etcd.put("/p/routes/a" + std::to_string(1000 + i), "small");
    }
    std::string big(1500 * 1000, 'b');
    for (int i = 0; i < 12; i++) {
        etcd.put("/p/routes/b" + std::to_string(1000 + i), big);
    }

    RangeRead read("/p/", true);
    std::vector<Page> pages;
    RangeAnswer a = readAll(read, etcd, pages);
    EXPECT_EQ(a.kvs.size(), 61u);
    EXPECT_GT(etcd.requests, pages.size()); // some were too large
    // 7, 14, 28 small ones, then 56 keys, 28, 14 too large, then 7
    std::vector<int64_t> limits;
    for (const Page &p : pages) {
        if (p.end == "/p/routes0") {
            limits.push_back(p.limit);
        }
    }
    EXPECT_EQ(limits, (std::vector<int64_t>{7, 14, 28, 7, 7}));

    // down to one key, then that key without its value; a key alone
    // larger than the cap fails the read
    RangeRead one("/p/", true);
    EXPECT_EQ(one.limit(), 7);
    for (int64_t expect : {3, 1}) {
        EXPECT_TRUE(one.smaller());
        EXPECT_EQ(one.limit(), expect);
    }
    EXPECT_TRUE(one.smaller());
    EXPECT_NE(one.request().find("\"keys_only\":true"), std::string::npos);
    EXPECT_FALSE(one.smaller());
    // a read begun again (that request failed) reads values again
    one.begin();
    EXPECT_EQ(one.request().find("keys_only"), std::string::npos);
    EXPECT_EQ(one.limit(), 7);
}

TEST(RangeRead, AValueLargerThanTheCapAloneIsReadWithoutItAndRefused)
{
    // an etcd whose --max-request-bytes is over 12 MB: a service's value,
    // a routes' value and the overrides over the cap in base64 alone
    FakeEtcd etcd;
    std::string huge(kMaxRangeAnswer * 3 / 4 + 1024, 'h');
    etcd.put("/p/overrides/controls", huge);
    etcd.put("/p/services/a", service(1));
    etcd.put("/p/services/huge", huge);
    etcd.put("/p/services/z", service(2));
    etcd.put("/p/pollers/huge", "ff", 255);
    etcd.put("/p/routes/huge", huge, 255);
    etcd.put("/p/routes/small", "{}", 255);

    RangeRead read("/p/", true);
    std::vector<Page> pages;
    std::vector<std::string> oversized;
    RangeAnswer a = readAll(read, etcd, pages, [&] {
        std::string key = read.takeOversized();
        if (!key.empty()) {
            oversized.push_back(key);
        }
    });
    std::string last = read.takeOversized();
    if (!last.empty()) {
        oversized.push_back(last);
    }
    EXPECT_EQ(oversized,
              (std::vector<std::string>{"/p/overrides/controls",
                                        "/p/services/huge",
                                        "/p/routes/huge"}));
    EXPECT_EQ(read.takeOversized(), ""); // each said once
    EXPECT_EQ(a.kvs.size(), 7u);
    for (const KeyValue &kv : a.kvs) {
        bool over = kv.key == "/p/overrides/controls"
                    || kv.key == "/p/services/huge"
                    || kv.key == "/p/routes/huge";
        EXPECT_EQ(kv.oversized, over) << kv.key;
        EXPECT_TRUE(!over || kv.value.empty()) << kv.key;
    }
    for (const Page &p : pages) {
        EXPECT_LE(p.bytes, kMaxRangeAnswer);
    }

    RegistryTable t("/p/", true);
    t.load(a);
    ASSERT_EQ(t.entries().count("huge"), 1u);
    EXPECT_FALSE(t.entries().at("huge").valid);
    EXPECT_NE(t.entries().at("huge").error.find("larger than an answer"),
              std::string::npos);
    EXPECT_TRUE(t.entries().at("a").valid);
    EXPECT_TRUE(t.entries().at("z").valid);
    EXPECT_EQ(t.pollers().at("huge"), 255);
    EXPECT_EQ(t.routes().count("huge"), 0u); // none: polled here after
    EXPECT_EQ(t.routes().count("small"), 1u);
    EXPECT_FALSE(t.hasOverrides()); // none held: none taken

    // the same again is no change; the value made small, valid again
    uint64_t version = t.version();
    t.load(readAll(read, etcd, pages));
    EXPECT_EQ(t.version(), version);
    etcd.put("/p/services/huge", service(3));
    t.load(readAll(read, etcd, pages));
    EXPECT_GT(t.version(), version);
    EXPECT_TRUE(t.entries().at("huge").valid);
}

TEST(RangeRead, AKeysOnlyAnswerOfSeveralKeysTakesTheOneAskedFor)
{
    // a server that ignores the limit: only the least key is the one too
    // large; the others are read after it, with their values
    RangeRead read("/p/", true);
    for (int i = 0; i < 3; i++) { // 3 keys, 1, then that one's key alone
        ASSERT_TRUE(read.smaller());
    }
    std::string answer =
        R"({"header":{"revision":"5"},"more":true,"kvs":[)"
        R"({"key":")" + b64("/p/pollers/b") + R"(","mod_revision":"2"},)"
        R"({"key":")" + b64("/p/pollers/a") + R"(","mod_revision":"2"},)"
        R"({"key":")" + b64("/p/pollers/c") + R"(","mod_revision":"2"}]})";
    EXPECT_FALSE(read.add(parseRangeAnswer(answer), answer.size()));
    EXPECT_EQ(read.takeOversized(), "/p/pollers/a");
    EXPECT_EQ(read.request().find("keys_only"), std::string::npos);
    EXPECT_NE(read.request().find(b64(std::string("/p/pollers/a") + '\0')),
              std::string::npos);
}

TEST(RangeRead, WritesDuringTheReadAreNotInIt)
{
    FakeEtcd etcd;
    for (int i = 0; i < 50; i++) {
        etcd.put("/p/services/s" + std::to_string(i), service(i));
        etcd.put("/p/routes/s" + std::to_string(i), "v1");
    }
    int64_t revision = etcd.revision();

    // each page, another gateway writes: a routes value, a new service,
    // a deletion; the read is of the revision its first page was
    int n = 0;
    RangeRead read("/p/", true);
    std::vector<Page> pages;
    RangeAnswer a = readAll(read, etcd, pages, [&] {
        etcd.put("/p/routes/s" + std::to_string(n % 50), "v2");
        etcd.put("/p/services/new" + std::to_string(n), service(n));
        etcd.erase("/p/services/s" + std::to_string(n % 50));
        n++;
    });

    EXPECT_GT(n, 3);
    EXPECT_EQ(a.revision, revision);
    RegistryTable t("/p/", true);
    t.load(a);
    EXPECT_EQ(t.entries().size(), 50u);
    EXPECT_EQ(t.entries().count("new0"), 0u);
    for (const auto &[name, routes] : t.routes()) {
        EXPECT_EQ(routes.value, "v1") << name;
    }
}

TEST(RangeRead, AMemberThatDoesNotGoOnIsRefused)
{
    RangeRead read("/p/", true);
    RangeAnswer page;
    page.revision = 5;
    page.more = true;
    EXPECT_THROW(read.add(page, 10), Error); // "more", no key

    read.begin();
    page.kvs.push_back({"/p/services/a", "{}", 3, 0}); // not before routes/
    EXPECT_THROW(read.add(page, 10), Error); // "more", no key of the range

    // a member that answers the whole prefix to every page: each key is
    // taken once, in its range's page
    read.begin();
    page.more = false;
    page.kvs = {{"/p/pollers/a", "1", 3, 7},
                {"/p/routes/a", "{}", 4, 7},
                {"/p/services/a", R"({"url":"http://a"})", 5, 0},
                {"/q/services/b", R"({"url":"http://b"})", 5, 0}};
    EXPECT_FALSE(read.add(page, 10));
    EXPECT_FALSE(read.add(page, 10));
    EXPECT_TRUE(read.add(page, 10));
    RangeAnswer a = read.result();
    ASSERT_EQ(a.kvs.size(), 3u);
    EXPECT_EQ(a.kvs[0].key, "/p/pollers/a");
    EXPECT_EQ(a.kvs[1].key, "/p/services/a");
    EXPECT_EQ(a.kvs[2].key, "/p/routes/a");

    read.begin();
    page.kvs = {{"/p/pollers/a", "1", 3, 7}};
    page.more = true;
    EXPECT_FALSE(read.add(page, 10));
    // the next page begins after the last key, at the first's revision
    FakeEtcd etcd;
    etcd.answer(read.request());
    EXPECT_EQ(etcd.key, std::string("/p/pollers/a") + '\0');
    EXPECT_EQ(etcd.at, 5);
    page.revision = 9;
    EXPECT_THROW(read.add(page, 10), Error); // the same key again: none

    page.revision = 0;
    read.begin();
    page.kvs.clear();
    EXPECT_THROW(read.add(page, 10), Error); // no revision
}

// A key twice in one answer (the fuzzer's, a damaged answer: etcd's keys
// are unique) fails the page, and takes nothing of it.
TEST(RangeRead, AKeyTwiceInOneAnswerIsRefused)
{
    RangeRead read("/p/", true);
    RangeAnswer page;
    page.revision = 9;
    page.more = true;
    page.kvs = {{"/p/overrides/controls", "c", 4, 0},
                {"/p/pollers/a", "c", 5, 0},
                {"/p/pollers/a", "1", 5, 255}};
    EXPECT_THROW(read.add(page, 10), Error);

    read.begin();
    page.more = false;
    page.kvs = {{"/p/pollers/a", "1", 5, 255}};
    EXPECT_FALSE(read.add(page, 10));
    page.kvs.clear();
    EXPECT_FALSE(read.add(page, 10));
    EXPECT_TRUE(read.add(page, 10));
    RangeAnswer a = read.result();
    ASSERT_EQ(a.kvs.size(), 1u);
    EXPECT_EQ(a.kvs[0].key, "/p/pollers/a");
}

TEST(RangeRead, CompactedBetweenPagesThroughTheCInterface)
{
    FakeEtcd etcd;
    for (int i = 0; i < 20; i++) {
        etcd.put("/p/services/s" + std::to_string(i), service(i));
    }
    discovery_registry_t *r = discovery_registry_create("/p/", 3, 1);
    ASSERT_NE(r, nullptr);
    discovery_error_t err;
    discovery_buf_t body{nullptr, 0};
    size_t pages = 0;

    auto next = [&](int begin) {
        EXPECT_EQ(discovery_registry_range_request(r, begin, &body, &err),
                  DISCOVERY_OK);
        std::string answer = etcd.answer(
            std::string(reinterpret_cast<char *>(body.data), body.len));
        discovery_buf_free(&body);
        return answer;
    };
    auto load = [&](const std::string &answer) {
        return discovery_registry_load(
            r, reinterpret_cast<const unsigned char *>(answer.data()),
            answer.size(), &pages, &err);
    };

    // a whole read: 20 services
    int begin = 1;
    do {
        ASSERT_EQ(load(next(begin)), DISCOVERY_OK) << err.text;
        begin = 0;
    } while (pages == 0);
    size_t valid;
    EXPECT_EQ(discovery_registry_count(r, &valid), 20u);
    int64_t first = discovery_registry_revision(r);

    // the next read: a page fails (a malformed answer) and the table is
    // the previous read's, not half of this one
    etcd.put("/p/services/late", service(1));
    ASSERT_EQ(load(next(1)), DISCOVERY_OK);
    ASSERT_EQ(load(next(0)), DISCOVERY_OK);
    EXPECT_EQ(pages, 0u);
    EXPECT_NE(load("{\"header\":"), DISCOVERY_OK);
    EXPECT_EQ(discovery_registry_count(r, &valid), 20u);
    EXPECT_EQ(discovery_registry_revision(r), first);

    // compacted between two pages: refused, and the read begins again
    ASSERT_EQ(load(next(1)), DISCOVERY_OK);
    int64_t at = etcd.revision();
    etcd.put("/p/services/later", service(2));
    etcd.compact();
    std::string refused = next(0);
    EXPECT_TRUE(compactedAnswer(refused));
    EXPECT_FALSE(compactedAnswer("{\"header\":{}}"));
    EXPECT_EQ(discovery_registry_range_compacted(
                  r, reinterpret_cast<const unsigned char *>(refused.data()),
                  refused.size()),
              at);
    EXPECT_EQ(discovery_registry_count(r, &valid), 20u);
    do {
        ASSERT_EQ(load(next(0)), DISCOVERY_OK) << err.text;
        EXPECT_EQ(etcd.at == 0, etcd.key == "/p/");
    } while (pages == 0);
    EXPECT_EQ(discovery_registry_count(r, &valid), 22u);
    EXPECT_EQ(discovery_registry_revision(r), etcd.revision());

    // another error is not a compaction
    std::string other = R"({"error":"etcdserver: no leader","code":14})";
    EXPECT_EQ(discovery_registry_range_compacted(
                  r, reinterpret_cast<const unsigned char *>(other.data()),
                  other.size()),
              0);
    discovery_registry_destroy(r);
}

std::string event(const std::string &key, const std::string &value, int64_t rev,
                  bool put = true)
{
    return std::string(put ? "{" : "{\"type\":\"DELETE\",")
           + "\"kv\":{\"key\":\"" + b64(key) + "\",\"mod_revision\":\""
           + std::to_string(rev) + "\""
           + (put ? ",\"value\":\"" + b64(value) + "\"" : "") + "}}";
}

std::string message(int64_t header, const std::vector<std::string> &events,
                    bool fragment)
{
    std::string all;
    for (const std::string &e : events) {
        all += (all.empty() ? "" : ",") + e;
    }
    return "{\"result\":{\"header\":{\"revision\":\"" + std::to_string(header)
           + "\"},\"events\":[" + all + "]"
           + (fragment ? ",\"fragment\":true" : "") + "}}";
}

TEST(WatchFragments, ARevisionIsAppliedWhenItsLastFragmentCame)
{
    RegistryTable t("/p/", true);
    RangeAnswer a;
    a.revision = 6;
    t.load(a);

    // revisions 7 and 8 (a lease's two keys deleted) cut inside 8
    WatchMessage m = parseWatchMessage(message(
        20,
        {event("/p/routes/a", "{}", 7), event("/p/pollers/b", "", 8, false)},
        true));
    EXPECT_TRUE(m.fragment);
    t.apply(m);
    EXPECT_EQ(t.routes().count("a"), 1u);
    EXPECT_EQ(t.revision(), 7); // a watch made now starts at 8 again

    // a fragment of revision 8 only: still waiting
    t.apply(parseWatchMessage(message(
        20, {event("/p/services/x", "{\"url\":\"http://x\"}", 8)}, true)));
    EXPECT_EQ(t.revision(), 7);
    EXPECT_EQ(t.entries().count("x"), 0u);

    // the last part
    m = parseWatchMessage(
        message(20, {event("/p/routes/b", "", 8, false)}, false));
    EXPECT_FALSE(m.fragment);
    t.apply(m);
    EXPECT_EQ(t.revision(), 8);
    EXPECT_EQ(t.entries().count("x"), 1u);

    // what waited is forgotten by a read (the watch broke meanwhile)
    t.apply(parseWatchMessage(message(
        30, {event("/p/services/y", "{\"url\":\"http://y\"}", 9)}, true)));
    a.revision = 12;
    t.load(a);
    t.apply(parseWatchMessage(message(30, {}, false)));
    EXPECT_EQ(t.entries().count("y"), 0u);
}

TEST(WatchFragments, AMessageOverTheOldCapIsTaken)
{
    // a fragment of etcd's smallest events (deletions) is up to 3.5 times
    // its 2 MiB in JSON (t/235 sends one of 90,000): 4 MiB refused one,
    // with "a watch message is too large", and the registry went down.
    // Fewer, longer keys here: yajl's arrays grow by one, which ASan
    // makes quadratic
    discovery_registry_t *r = discovery_registry_create("/p/", 3, 1);
    ASSERT_NE(r, nullptr);
    std::vector<std::string> events;
    for (int i = 0; events.size() < 14000; i++) {
        events.push_back(
            event("/p/routes/" + std::string(200, 'k') + std::to_string(i), "",
                  5, false));
    }
    std::string m = message(5, events, true) + "\n";
    ASSERT_GT(m.size(), 4u * 1024 * 1024 + 1);

    discovery_error_t err;
    int what;
    for (size_t at = 0; at < m.size(); at += 16384) {
        size_t n = std::min<size_t>(16384, m.size() - at);
        ASSERT_EQ(discovery_registry_watch_feed(
                      r, reinterpret_cast<const unsigned char *>(m.data() + at),
                      n, &err),
                  DISCOVERY_OK)
            << err.text;
    }
    ASSERT_EQ(discovery_registry_watch_next(r, &what, &err), DISCOVERY_OK)
        << err.text;
    EXPECT_EQ(what, DISCOVERY_WATCH_EVENTS);
    discovery_registry_destroy(r);
}

} // namespace
} // namespace discovery
