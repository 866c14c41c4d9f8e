// image_file.hpp: a table's router image on disk, beside the state file.
#ifndef DISCOVERY_IMAGE_FILE_HPP
#define DISCOVERY_IMAGE_FILE_HPP

#include <cstddef>

namespace discovery {

/*
 * Building the router image of 1,000,000 routes takes a second: a start
 * from the state file reads the image saved with the table instead.  The
 * file is a header of kImageFileHeader bytes, then the image:
 *
 *   0  magic "NGXI"
 *   4  u32 format version (1)
 *   8  u64 total length, header included
 *  16  u64 the table's generation        \
 *  24  u32 the table's checksum           > the table the image is of
 *  28  u32 zero                           |
 *  32  u64 the table's length            /
 *  40  u64 wordHash() of the image
 *  48  zero to the end of the header
 *
 * little-endian, like snapshots.  The checksum finds damage (a write cut
 * short: the file is not fsynced, a cache the table can always rebuild),
 * not forgery: whoever can write the state file's directory is trusted
 * with the table, and with its image alike.
 */
constexpr size_t kImageFileHeader = 64;

// The header of the file that holds `image`, the router image of `table`.
void imageFileHeader(const unsigned char *table, size_t tableLen,
                     const unsigned char *image, size_t imageLen,
                     unsigned char *header);

/*
 * Whether `header` and the `imageLen` bytes at `image` (aligned as the
 * image wants), read from a file, are a whole image file of `table`,
 * which checkSnapshot() accepted.  Throws Error saying why not.
 */
void checkImageFile(const unsigned char *header, const unsigned char *image,
                    size_t imageLen, const unsigned char *table,
                    size_t tableLen);

} // namespace discovery

#endif
