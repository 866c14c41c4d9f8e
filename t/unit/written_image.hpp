// written_image.hpp: a laid-out router image (discovery_image_t) written
// into a buffer of its own, as the glue writes one into the zone.
#pragma once

#include "discovery_core.h"

#include <cstdlib>

// Takes `image` (freed here): its bytes at the images' alignment, in a
// buffer discovery_buf_free() frees; data NULL for no image or a failure.
inline discovery_buf_t writtenImage(discovery_image_t *image)
{
    discovery_buf_t buf = {nullptr, 0};

    if (image == nullptr) {
        return buf;
    }

    size_t n = discovery_image_size(image);
    size_t room = (n + DISCOVERY_ROUTER_IMAGE_ALIGN - 1)
                  / DISCOVERY_ROUTER_IMAGE_ALIGN * DISCOVERY_ROUTER_IMAGE_ALIGN;
    auto *p = static_cast<unsigned char *>(
        std::aligned_alloc(DISCOVERY_ROUTER_IMAGE_ALIGN, room));
    discovery_error_t err;

    if (p != nullptr && discovery_image_write(image, p, &err) == DISCOVERY_OK) {
        buf.data = p;
        buf.len = n;
    } else {
        std::free(p);
    }

    discovery_image_free(image);
    return buf;
}
