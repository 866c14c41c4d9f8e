// grpc_reflection.cpp: fuzzes a gRPC poll (health, reflection, descriptors)
// through the C API.
//
// The input is a poll's answers: a first byte of flags (bit 0:
// grpc_internal=on), then for each call a record of a grpc-status byte
// (255: none), a 2-byte big-endian length and that many bytes of answer
// body, fed in two pieces.  The poll must fail with a terminated error or
// give a route set whose routes are gRPC POST routes on valid
// /package.Service/Method paths, which the snapshot encoding takes and gives
// back unchanged.  The raw input also goes through the protobuf reader.
#include "grpc_reflection.hpp"
#include "discovery_core.h"
#include "error.hpp"
#include "fuzz_common.hpp"
#include "methods.hpp"
#include "protobuf_wire.hpp"
#include "route_template.hpp"
#include "snapshot.hpp"

#include <cstdint>
#include <string_view>

namespace {

// Every field of a message and of the messages in it, to a bounded depth.
void walk(std::string_view message, int depth)
{
    discovery::protobuf::WireReader r(message, "fuzz input");
    discovery::protobuf::Field f;

    while (r.next(f)) {
        if (f.type == discovery::protobuf::WireType::Bytes && depth < 4) {
            try {
                walk(f.bytes, depth + 1);
            } catch (const discovery::Error &) {
                // a string, not a message
            }
        }
    }
}

void checkRoutes(const discovery_buf_t &buf)
{
    discovery::RouteSet set = discovery::decodeRouteSet(buf.data, buf.len);

    for (const discovery::Route &r : set.routes) {
        discovery::Template tpl;
        fuzz::check(r.protocol == discovery::Protocol::Grpc, "not a gRPC route",
                    r.path);
        fuzz::check(r.methods == discovery::kPost, "not POST", r.path);
        fuzz::check(discovery::isGrpcPath(r.path), "not a gRPC path", r.path);
        fuzz::check(discovery::compileTemplate(r.path, tpl), "not a template",
                    r.path);
        fuzz::check(fuzz::strictUtf8(r.name), "name not UTF-8", r.name);
    }

    discovery::Bytes again = discovery::encodeRouteSet(set);
    fuzz::check(again.size() == buf.len
                    && std::equal(again.begin(), again.end(), buf.data),
                "route set not stable through its encoding");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    try {
        walk(std::string_view(reinterpret_cast<const char *>(data), size), 0);
    } catch (const discovery::Error &) {
    }

    if (size == 0) {
        return 0;
    }

    discovery_grpc_t *g =
        discovery_grpc_create(data[0] & 1 ? DISCOVERY_GRPC_INTERNAL : 0, 4096);
    fuzz::check(g != nullptr, "discovery_grpc_create returned NULL");

    discovery_error_t err;
    size_t at = 1;
    int rc = DISCOVERY_OK;
    const char *path;
    const unsigned char *body;
    size_t len;

    while (rc == DISCOVERY_OK && discovery_grpc_next(g, &path, &body, &len)) {
        fuzz::check(path[0] == '/', "call path", path);
        if (size - at < 3) {
            rc = DISCOVERY_ERROR; // the poll stops here, as on a timeout
            break;
        }

        int status = data[at] == 255 ? -1 : data[at];
        size_t n = std::min<size_t>(size - at - 3,
                                    (size_t(data[at + 1]) << 8) | data[at + 2]);
        const char *answer = reinterpret_cast<const char *>(data + at + 3);
        at += 3 + n;

        discovery_grpc_answer_t a = {200, "application/grpc", 16,
                                     -1,  "fuzz%20message",   14};
        size_t half = n / 2;
        rc = discovery_grpc_feed(g, &a, answer, half, &err);
        fuzz::checkError(err);
        if (rc == DISCOVERY_OK) {
            rc = discovery_grpc_feed(g, &a, answer + half, n - half, &err);
            fuzz::checkError(err);
        }
        if (rc == DISCOVERY_OK) {
            a.grpc_status = status;
            rc = discovery_grpc_end(g, &a, &err);
            fuzz::checkError(err);
        }
        fuzz::check(rc == DISCOVERY_OK || rc == DISCOVERY_ERROR,
                    "unexpected return code");
    }

    if (rc == DISCOVERY_OK) {
        discovery_buf_t buf = {nullptr, 0};
        rc = discovery_grpc_finish(g, &buf, &err);
        fuzz::checkError(err);
        fuzz::check(rc == DISCOVERY_OK, "finish failed after the last call",
                    err.text);
        checkRoutes(buf);
        discovery_buf_free(&buf);
    }

    discovery_grpc_destroy(g);
    return 0;
}
