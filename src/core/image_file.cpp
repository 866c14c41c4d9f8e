// image_file.cpp: the router image file's header, written and checked.
#include "image_file.hpp"

#include "error.hpp"
#include "router.hpp"
#include "snapshot.hpp"

#include <cstdint>
#include <cstring>

namespace discovery {

namespace {

constexpr uint32_t kImageFileVersion = 1;

void put(unsigned char *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = static_cast<unsigned char>(v >> (8 * i));
    }
}

uint64_t get(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v |= uint64_t(p[i]) << (8 * i);
    }
    return v;
}

} // namespace

void imageFileHeader(const unsigned char *table, size_t tableLen,
                     const unsigned char *image, size_t imageLen,
                     unsigned char *header)
{
    SnapshotHead head = snapshotHead(table, tableLen);

    std::memset(header, 0, kImageFileHeader);
    std::memcpy(header, "NGXI", 4);
    put(header + 4, kImageFileVersion, 4);
    put(header + 8, kImageFileHeader + imageLen, 8);
    put(header + 16, head.generation, 8);
    put(header + 24, head.checksum, 4);
    put(header + 32, tableLen, 8);
    put(header + 40, wordHash(image, imageLen), 8);
}

void checkImageFile(const unsigned char *header, const unsigned char *image,
                    size_t imageLen, const unsigned char *table,
                    size_t tableLen)
{
    SnapshotHead head = snapshotHead(table, tableLen);

    if (std::memcmp(header, "NGXI", 4) != 0
        || get(header + 4, 4) != kImageFileVersion
        || get(header + 8, 8) != kImageFileHeader + imageLen) {
        throw Error("not a router image file");
    }

    for (size_t i = 48; i < kImageFileHeader; i++) {
        if (header[i] != 0) {
            throw Error("not a router image file");
        }
    }

    if (get(header + 16, 8) != head.generation
        || get(header + 24, 4) != head.checksum || get(header + 28, 4) != 0
        || get(header + 32, 8) != tableLen) {
        throw Error("the image of another table");
    }

    if (get(header + 40, 8) != wordHash(image, imageLen)) {
        throw Error("checksum mismatch");
    }

    if (Router::view(image, imageLen)->generation() != head.generation) {
        throw Error("the image of another table");
    }
}

} // namespace discovery
