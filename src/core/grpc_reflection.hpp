// grpc_reflection.hpp: a gRPC service's routes, from server reflection and
// the health service.
#ifndef DISCOVERY_GRPC_REFLECTION_HPP
#define DISCOVERY_GRPC_REFLECTION_HPP

#include "snapshot.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace discovery {

// Services one server may list; more fail the poll.
constexpr size_t kMaxGrpcServices = 1000;

// "/package.Service/Method": the path of a gRPC method, a literal.
bool isGrpcPath(std::string_view path);

// "unary", "client", "server", "bidi": a route's streaming kind by name.
const char *streamingName(Streaming s);
bool parseStreaming(std::string_view name, Streaming &s);

// "UNIMPLEMENTED" for 12; "" for a code gRPC does not define.
const char *grpcStatusName(int code);

// What one call answered, as the poller saw it.
struct GrpcAnswer {
    long httpStatus = 0;
    std::string_view contentType;
    int grpcStatus = -1;          // -1: no grpc-status (yet)
    std::string_view grpcMessage; // percent-encoded, as sent
};

/*
 * One poll of a gRPC server, as the calls it makes in turn:
 *
 *   1. grpc.health.v1.Health/Check with service "": SERVING goes on,
 *      NOT_SERVING (or any other answer) fails the poll; a server without
 *      the health service (UNIMPLEMENTED, or NOT_FOUND for "") is judged
 *      by reflection alone.
 *   2. ServerReflectionInfo with list_services, grpc.reflection.v1 first,
 *      v1alpha when the server answers UNIMPLEMENTED.
 *   3. ServerReflectionInfo again, one file_containing_symbol request per
 *      service listed, all in one request body: each answer's file
 *      descriptors give the service's methods.  Dependencies are not
 *      needed: only the file that declares a service is read.
 *
 * Each method becomes a POST route /package.Service/Method with its
 * streaming kind; the reflection and health services are left out
 * unless `internal` (grpc_internal=on).  An answer body larger than
 * `maxSize`, a malformed message, an error from the server or a call
 * that is not answered in gRPC's terms throws Error, a failed poll.
 */
class GrpcDiscovery {
public:
    struct Call {
        std::string path; // ":path" of the call
        std::string body; // its request messages, framed
    };

    GrpcDiscovery(bool internal, size_t maxSize);

    // The call to make now, or nullptr when finish() may be called.
    const Call *next() const { return done_ ? nullptr : &call_; }

    // A piece of the current call's body, with the answer's headers.
    void feed(const GrpcAnswer &head, const char *data, size_t len);

    // The current call's answer is complete (trailers included).
    void end(const GrpcAnswer &answer);

    RouteSet finish();

private:
    enum class Step { Health, List, Files };

    void checkHead(const GrpcAnswer &head) const;
    std::vector<std::string_view> messages() const;
    void startList(bool alpha);
    void listEnded(const GrpcAnswer &answer);
    void filesEnded(const GrpcAnswer &answer);
    [[noreturn]] void failCall(const GrpcAnswer &answer) const;
    void addRoutes();
    void reject(const std::string &path, const char *reason);

    bool internal_;
    size_t maxSize_;
    Step step_ = Step::Health;
    bool alpha_ = false; // reflection v1alpha
    bool done_ = false;
    Call call_;
    std::string body_; // of the current call's answer

    std::vector<std::string> listed_; // the services to describe

    struct Method {
        std::string name;
        Streaming streaming = Streaming::Unary;
    };
    struct Service {
        std::string name; // full: package.Service
        std::vector<Method> methods;
    };
    std::vector<Service> described_;

    RouteSet set_;
};

} // namespace discovery

#endif
