// image_file_test.cpp: the router image saved beside the state file.
#include "discovery_core.h"
#include "error.hpp"
#include "image_file.hpp"
#include "methods.hpp"
#include "router.hpp"
#include "snapshot.hpp"
#include "snapshot_update.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>

namespace discovery {
namespace {

Service service(const std::string &name, std::vector<std::string> paths)
{
    Service s;
    s.name = name;
    s.url = "http://" + name + "/health";
    s.upstream = name + "_up";
    s.state = ServiceState::Healthy;
    for (const std::string &p : paths) {
        Route r;
        r.path = p;
        r.methods = kGet | kPost;
        s.routeSet.routes.push_back(r);
    }
    return s;
}

std::vector<ServiceConf> confs(const Snapshot &snap)
{
    std::vector<ServiceConf> out;
    for (const Service &s : snap.services) {
        out.push_back({s.name, s.url, s.upstream});
    }
    return out;
}

// A table as a gateway saves it: checked by these rules, generation 12.
Bytes savedTable(Snapshot *decoded = nullptr)
{
    Snapshot snap;
    snap.services.push_back(service("users", {"/users/{id:int}", "/users"}));
    snap.services.push_back(service("files", {"/files/{p:path}", "/users"}));
    snap.services.push_back(service("late", {}));
    snap.services[2].state = ServiceState::Pending;
    Bytes raw = encodeSnapshot(snap);
    Bytes table =
        applyRoster(raw.data(), raw.size(), confs(snap), false, 12, Log());
    if (decoded != nullptr) {
        *decoded = decodeSnapshot(table.data(), table.size());
    }
    return table;
}

// The file as the gateway writes it, at an aligned address.
struct File {
    unsigned char *data = nullptr;
    size_t len = 0;

    explicit File(const Bytes &table)
    {
        Router::Image image = Router::image(table.data(), table.size());
        len = kImageFileHeader + image.size();
        data = static_cast<unsigned char *>(
            std::aligned_alloc(Router::kImageAlign, len));
        image.write(data + kImageFileHeader);
        imageFileHeader(table.data(), table.size(), data + kImageFileHeader,
                        image.size(), data);
    }
    ~File() { std::free(data); }
    File(const File &) = delete;
    File &operator=(const File &) = delete;
};

std::string whyNot(File &file, const Bytes &table)
{
    try {
        checkImageFile(file.data, file.data + kImageFileHeader,
                       file.len - kImageFileHeader, table.data(),
                       table.size());
    } catch (const Error &e) {
        return e.what();
    }
    return "";
}

TEST(ImageFile, AdoptedImageIsTheOneBuiltForTheResealedTable)
{
    Bytes table = savedTable();
    File file(table);
    ASSERT_EQ(whyNot(file, table), "");

    unsigned char *image = file.data + kImageFileHeader;
    size_t len = file.len - kImageFileHeader;

    // what applyRoster would have made, and the image built from it
    Snapshot snap = decodeSnapshot(table.data(), table.size());
    Bytes expected =
        applyRoster(table.data(), table.size(), confs(snap), false, 13, Log());

    Bytes adopted = table;
    ASSERT_TRUE(adoptRoster(adopted.data(), adopted.size(), image, len,
                            confs(snap), false, 13));
    EXPECT_EQ(adopted, expected);

    Router::Image built = Router::image(expected.data(), expected.size());
    ASSERT_EQ(built.size(), len);
    std::unique_ptr<unsigned char, decltype(&std::free)> want(
        static_cast<unsigned char *>(
            std::aligned_alloc(Router::kImageAlign, len)),
        &std::free);
    built.write(want.get());
    EXPECT_EQ(std::memcmp(want.get(), image, len), 0);

    std::unique_ptr<Router> router = Router::view(image, len);
    EXPECT_EQ(router->generation(), 13u);
    EXPECT_EQ(router->match("GET", "/users/7", false).service, "users");
    EXPECT_EQ(router->match("GET", "/files/a/b", false).service, "files");
}

TEST(ImageFile, AnotherRosterOrPolicyIsNotAdopted)
{
    Snapshot snap;
    Bytes table = savedTable(&snap);

    auto tryRoster = [&](const Bytes &t, std::vector<ServiceConf> roster,
                         bool deny) {
        File file(t);
        Bytes copy = t;
        unsigned char *image = file.data + kImageFileHeader;
        size_t len = file.len - kImageFileHeader;
        bool adopted = adoptRoster(copy.data(), copy.size(), image, len,
                                   roster, deny, 13);
        // declined: both are left as they were
        if (!adopted) {
            EXPECT_EQ(copy, t);
            EXPECT_EQ(Router::view(image, len)->generation(),
                      snapshotHead(t.data(), t.size()).generation);
        }
        return adopted;
    };

    EXPECT_TRUE(tryRoster(table, confs(snap), false));
    EXPECT_FALSE(tryRoster(table, confs(snap), true));

    std::vector<ServiceConf> roster = confs(snap);
    roster.pop_back();
    EXPECT_FALSE(tryRoster(table, roster, false));

    roster = confs(snap);
    roster[1].upstream = "elsewhere";
    EXPECT_FALSE(tryRoster(table, roster, false));

    roster = confs(snap);
    std::swap(roster[0], roster[1]);
    EXPECT_FALSE(tryRoster(table, roster, false));

    // a table checked by other rules is checked again, not adopted
    Snapshot unchecked = snap;
    unchecked.checkedBy = 0;
    EXPECT_FALSE(tryRoster(encodeSnapshot(unchecked), confs(snap), false));
}

// A file whose checksum was forged to match: the roster's strings pointing
// out of the image are not read, and the table is built as usual.
TEST(ImageFile, AForgedRosterIsNotRead)
{
    Snapshot snap;
    Bytes table = savedTable(&snap);
    File file(table);
    unsigned char *image = file.data + kImageFileHeader;
    size_t len = file.len - kImageFileHeader;

    // Router's header: magic, size, generation, then u32 nodes, capacity,
    // root, entries, tails, strings, services (the roster's offset)
    uint32_t services;
    std::memcpy(&services, image + 48, 4);
    uint32_t far = 0xffffff00u;
    std::memcpy(image + services, &far, 4); // the first name's offset

    Bytes copy = table;
    EXPECT_FALSE(adoptRoster(copy.data(), copy.size(), image, len,
                             confs(snap), false, 13));
    EXPECT_EQ(copy, table);
}

TEST(ImageFile, DamageAndOtherTablesAreRefused)
{
    Bytes table = savedTable();

    {
        File file(table);
        EXPECT_EQ(whyNot(file, table), "");
        file.data[file.len - 1] ^= 1;
        EXPECT_EQ(whyNot(file, table), "checksum mismatch");
    }
    {
        File file(table);
        file.len -= 64; // cut short
        EXPECT_EQ(whyNot(file, table), "not a router image file");
    }
    for (size_t at : {0, 4, 8, 28, 48, 63}) {
        File file(table);
        file.data[at] ^= 1;
        EXPECT_NE(whyNot(file, table), "") << at;
    }
    for (size_t at : {16, 24, 32}) {
        File file(table);
        file.data[at] ^= 1;
        EXPECT_EQ(whyNot(file, table), "the image of another table") << at;
    }
    {
        // the same roster later: another generation, another checksum
        Bytes later = resealSnapshot(table.data(), table.size(), 14);
        File file(table);
        EXPECT_EQ(whyNot(file, later), "the image of another table");
    }
    {
        File file(table);
        Bytes junk = table;
        junk[40] ^= 1;
        EXPECT_EQ(whyNot(file, junk), "corrupt snapshot: checksum mismatch");
    }
}

TEST(ImageFile, ThroughTheBridge)
{
    Snapshot snap;
    Bytes table = savedTable(&snap);
    File file(table);
    discovery_error_t err;

    unsigned char *image = file.data + kImageFileHeader;
    size_t len = file.len - kImageFileHeader;
    ASSERT_EQ(discovery_image_file_check(file.data, image, len, table.data(),
                                         table.size(), &err),
              DISCOVERY_OK)
        << err.text;

    std::vector<discovery_service_conf_t> roster;
    for (const Service &s : snap.services) {
        roster.push_back({s.name.data(), s.name.size(), s.url.data(),
                          s.url.size(), s.upstream.data(), s.upstream.size()});
    }

    ASSERT_EQ(discovery_snapshot_adopt_image(table.data(), table.size(), image,
                                             len, roster.data(), roster.size(),
                                             1, 13, &err),
              DISCOVERY_DECLINED);
    ASSERT_EQ(discovery_snapshot_adopt_image(table.data(), table.size(), image,
                                             len, roster.data(), roster.size(),
                                             0, 13, &err),
              DISCOVERY_OK)
        << err.text;
    uint64_t generation = 0;
    EXPECT_EQ(discovery_snapshot_check(table.data(), table.size(), &generation,
                                       &err),
              DISCOVERY_OK);
    EXPECT_EQ(generation, 13u);

    discovery_router_t *router = discovery_router_open(image, len, &err);
    ASSERT_NE(router, nullptr) << err.text;
    EXPECT_EQ(discovery_router_state(router, 0), DISCOVERY_STATE_HEALTHY);
    EXPECT_EQ(discovery_router_state(router, 2), DISCOVERY_STATE_PENDING);
    EXPECT_EQ(discovery_router_state(router, 3), -1);
    discovery_router_destroy(router);

    File damaged(table);
    damaged.data[damaged.len - 1] ^= 1;
    EXPECT_EQ(discovery_image_file_check(
                  damaged.data, damaged.data + kImageFileHeader,
                  damaged.len - kImageFileHeader, table.data(), table.size(),
                  &err),
              DISCOVERY_ERROR);
    EXPECT_STREQ(err.text, "checksum mismatch");
}

} // namespace
} // namespace discovery
