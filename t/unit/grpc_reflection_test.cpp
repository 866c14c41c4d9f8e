// grpc_reflection_test.cpp: gRPC polls (health, reflection, descriptors),
// the protobuf reader under them, and gRPC routes through the table.
#include "error.hpp"
#include "grpc_reflection.hpp"
#include "methods.hpp"
#include "protobuf_wire.hpp"
#include "route_document_support.hpp"
#include "router.hpp"
#include "snapshot.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace discovery {
namespace {

using protobuf::appendBytes;
using protobuf::appendVarint;

constexpr char kHealth[] = "/grpc.health.v1.Health/Check";
constexpr char kV1[] =
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
constexpr char kV1Alpha[] =
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

std::string frame(const std::string &message, char flag = 0)
{
    std::string out(1, flag);
    auto n = static_cast<uint32_t>(message.size());
    out.push_back(static_cast<char>(n >> 24));
    out.push_back(static_cast<char>(n >> 16));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n));
    return out + message;
}

std::string healthResponse(uint64_t status)
{
    std::string m;
    appendVarint(m, 1, status);
    return m;
}

// ServerReflectionResponse{list_services_response{service{name}...}}
std::string listResponse(const std::vector<std::string> &names)
{
    std::string list;
    for (const std::string &name : names) {
        std::string service;
        appendBytes(service, 1, name);
        appendBytes(list, 1, service);
    }
    std::string m;
    appendBytes(m, 6, list);
    return m;
}

struct MethodSpec {
    std::string name;
    bool client = false;
    bool server = false;
};

std::string method(const MethodSpec &spec)
{
    std::string m;
    appendBytes(m, 1, spec.name);
    appendBytes(m, 2, ".shop.Request");
    appendBytes(m, 3, ".shop.Reply");
    if (spec.client) {
        appendVarint(m, 5, 1);
    }
    if (spec.server) {
        appendVarint(m, 6, 1);
    }
    return m;
}

std::string service(const std::string &name,
                    const std::vector<MethodSpec> &methods)
{
    std::string s;
    appendBytes(s, 1, name);
    for (const MethodSpec &spec : methods) {
        appendBytes(s, 2, method(spec));
    }
    return s;
}

// A FileDescriptorProto: name, package, a message type, the services.
std::string file(const std::string &package,
                 const std::vector<std::string> &services,
                 bool packageLast = false)
{
    std::string f;
    appendBytes(f, 1, package + ".proto");
    if (!packageLast) {
        appendBytes(f, 2, package);
    }
    std::string message;
    appendBytes(message, 1, "Request");
    appendBytes(f, 4, message);
    for (const std::string &s : services) {
        appendBytes(f, 6, s);
    }
    if (packageLast) {
        appendBytes(f, 2, package);
    }
    appendBytes(f, 12, "proto3");
    return f;
}

std::string filesResponse(const std::vector<std::string> &files)
{
    std::string response;
    for (const std::string &f : files) {
        appendBytes(response, 1, f);
    }
    std::string m;
    appendBytes(m, 4, response);
    return m;
}

std::string errorResponse(uint64_t code, const std::string &text)
{
    std::string e;
    appendVarint(e, 1, code);
    appendBytes(e, 2, text);
    std::string m;
    appendBytes(m, 7, e);
    return m;
}

GrpcAnswer ok(int status = 0, std::string_view message = "")
{
    GrpcAnswer a;
    a.httpStatus = 200;
    a.contentType = "application/grpc";
    a.grpcStatus = status;
    a.grpcMessage = message;
    return a;
}

// Answers the current call with `body` and `answer`'s trailers.
void answer(GrpcDiscovery &poll, const std::string &body,
            const GrpcAnswer &trailers = ok())
{
    GrpcAnswer head = trailers;
    head.grpcStatus = -1;
    // in pieces, as libcurl hands them over
    for (size_t at = 0; at < body.size(); at += 7) {
        size_t n = std::min<size_t>(7, body.size() - at);
        poll.feed(head, body.data() + at, n);
    }
    poll.end(trailers);
}

// The message of the Error `f` throws, "" if none.
template <typename F>
std::string errorOf(F &&f)
{
    try {
        f();
    } catch (const Error &e) {
        return e.what();
    }
    return "";
}

const std::vector<MethodSpec> kCatalog = {
    {"Get", false, false},
    {"Upload", true, false},
    {"Watch", false, true},
    {"Chat", true, true},
};

// Health SERVING, reflection v1, one service of four methods.
RouteSet pollCatalog(bool internal = false)
{
    GrpcDiscovery poll(internal, 1 << 20);

    EXPECT_EQ(poll.next()->path, kHealth);
    EXPECT_EQ(poll.next()->body, frame(""));
    answer(poll, frame(healthResponse(1)));

    EXPECT_EQ(poll.next()->path, kV1);
    std::string list;
    appendBytes(list, 7, "");
    EXPECT_EQ(poll.next()->body, frame(list));
    answer(poll, frame(listResponse({"shop.Catalog",
                                     "grpc.reflection.v1.ServerReflection",
                                     "grpc.health.v1.Health"})));

    EXPECT_EQ(poll.next()->path, kV1);
    if (internal) {
        answer(
            poll,
            frame(filesResponse({file("shop", {service("Catalog", kCatalog)})}))
                + frame(filesResponse(
                    {file("grpc.reflection.v1",
                          {service("ServerReflection",
                                   {{"ServerReflectionInfo", true, true}})})}))
                + frame(filesResponse(
                    {file("grpc.health.v1",
                          {service("Health",
                                   {{"Check"}, {"Watch", false, true}})})})));
    } else {
        std::string request;
        appendBytes(request, 4, "shop.Catalog");
        EXPECT_EQ(poll.next()->body, frame(request));
        answer(poll, frame(filesResponse(
                         {file("shop", {service("Catalog", kCatalog)})})));
    }

    EXPECT_EQ(poll.next(), nullptr);
    return poll.finish();
}

TEST(GrpcDiscovery, EachMethodIsAPostRouteWithItsStreamingKind)
{
    RouteSet set = pollCatalog();

    ASSERT_EQ(set.routes.size(), 4u);
    const char *paths[] = {"/shop.Catalog/Get", "/shop.Catalog/Upload",
                           "/shop.Catalog/Watch", "/shop.Catalog/Chat"};
    Streaming kinds[] = {Streaming::Unary, Streaming::Client, Streaming::Server,
                         Streaming::Bidi};
    for (size_t i = 0; i < 4; i++) {
        EXPECT_EQ(set.routes[i].path, paths[i]);
        EXPECT_EQ(set.routes[i].methods, kPost);
        EXPECT_EQ(set.routes[i].protocol, Protocol::Grpc);
        EXPECT_EQ(set.routes[i].streaming, kinds[i]);
    }
    EXPECT_EQ(set.routes[0].name, "Get");
    EXPECT_TRUE(set.rejected.empty());
}

TEST(GrpcDiscovery, ReflectionAndHealthAreRoutedOnlyWhenAskedTo)
{
    RouteSet set = pollCatalog(true);

    ASSERT_EQ(set.routes.size(), 7u);
    EXPECT_TRUE(find(set, "/grpc.health.v1.Health/Check") != nullptr);
    EXPECT_EQ(
        find(set, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
            ->streaming,
        Streaming::Bidi);
}

TEST(GrpcDiscovery, WithoutAHealthServiceReflectionDecides)
{
    for (int status : {12, 5}) {
        GrpcDiscovery poll(false, 1 << 20);
        answer(poll, "", ok(status, "Method not found!"));
        EXPECT_EQ(poll.next()->path, kV1);
    }
}

TEST(GrpcDiscovery, NotServingFailsThePoll)
{
    GrpcDiscovery poll(false, 1 << 20);
    EXPECT_EQ(errorOf([&] { answer(poll, frame(healthResponse(2))); }),
              "health check: NOT_SERVING");

    GrpcDiscovery unknown(false, 1 << 20);
    EXPECT_EQ(errorOf([&] { answer(unknown, frame(healthResponse(0))); }),
              "health check: status 0 UNKNOWN");

    GrpcDiscovery denied(false, 1 << 20);
    EXPECT_EQ(errorOf([&] { answer(denied, "", ok(7, "go%20away")); }),
              "health check: grpc-status 7 PERMISSION_DENIED \"go away\"");

    GrpcDiscovery two(false, 1 << 20);
    EXPECT_EQ(errorOf([&] {
                  answer(two,
                         frame(healthResponse(1)) + frame(healthResponse(1)));
              }),
              "health check: 2 answers, not one");
}

TEST(GrpcDiscovery, FallsBackToV1AlphaOnUnimplemented)
{
    GrpcDiscovery poll(false, 1 << 20);
    answer(poll, frame(healthResponse(1)));
    answer(poll, "", ok(12));
    EXPECT_EQ(poll.next()->path, kV1Alpha);
    answer(poll, frame(listResponse({"shop.Catalog"})));
    EXPECT_EQ(poll.next()->path, kV1Alpha);
    answer(poll, frame(filesResponse(
                     {file("shop", {service("Catalog", kCatalog)})})));
    EXPECT_EQ(poll.finish().routes.size(), 4u);

    GrpcDiscovery none(false, 1 << 20);
    answer(none, frame(healthResponse(1)));
    answer(none, "", ok(12));
    EXPECT_EQ(errorOf([&] { answer(none, "", ok(12, "Method not found!")); }),
              "no server reflection (v1 nor v1alpha): grpc-status 12 "
              "UNIMPLEMENTED \"Method not found!\"");
}

TEST(GrpcDiscovery, ANonGrpcServerFailsThePollAtItsFirstAnswer)
{
    GrpcDiscovery poll(false, 1 << 20);
    GrpcAnswer notFound = ok(-1);
    notFound.httpStatus = 404;
    notFound.contentType = "text/html";
    EXPECT_EQ(errorOf([&] { poll.feed(notFound, "<html>", 6); }),
              "HTTP status 404 to /grpc.health.v1.Health/Check: not a gRPC "
              "server");

    GrpcDiscovery html(false, 1 << 20);
    GrpcAnswer page = ok(-1);
    page.contentType = "text/html";
    EXPECT_EQ(errorOf([&] { html.feed(page, "<html>", 6); }),
              "not a gRPC server: content-type \"text/html\" to "
              "/grpc.health.v1.Health/Check");

    GrpcDiscovery silent(false, 1 << 20);
    EXPECT_EQ(errorOf([&] { silent.end(ok(-1)); }),
              "no grpc-status in the answer to /grpc.health.v1.Health/Check");

    GrpcDiscovery bare(false, 1 << 20);
    GrpcAnswer none = ok();
    none.contentType = "";
    EXPECT_EQ(errorOf([&] { bare.end(none); }),
              "not a gRPC server: content-type none to "
              "/grpc.health.v1.Health/Check");
}

TEST(GrpcDiscovery, BadFramesFailThePoll)
{
    auto health = [](const std::string &body) {
        GrpcDiscovery poll(false, 64);
        return errorOf([&] { answer(poll, body); });
    };

    EXPECT_EQ(health(frame(healthResponse(1), 1)),
              "compressed gRPC message (the poll asks for none)");
    EXPECT_EQ(health(frame(healthResponse(1), 7)), "invalid gRPC message flag");
    EXPECT_EQ(health(frame(healthResponse(1)).substr(0, 6)),
              "truncated gRPC message");
    EXPECT_EQ(health(std::string("\0\0", 2)), "truncated gRPC message");
    EXPECT_EQ(health(std::string("\0\xff\xff\xff\xff", 5)),
              "truncated gRPC message");
    EXPECT_EQ(health(frame(std::string(80, 'x'))),
              "answer to /grpc.health.v1.Health/Check larger than 64 bytes");
    EXPECT_EQ(health(frame("\x08")),
              "malformed health check response: truncated varint");
}

// Polls up to the files call and answers it with `body`.
std::string filesError(const std::string &body,
                       const std::vector<std::string> &listed = {
                           "shop.Catalog"})
{
    GrpcDiscovery poll(false, 1 << 20);
    answer(poll, "", ok(12));
    answer(poll, frame(listResponse(listed)));
    return errorOf([&] { answer(poll, body); });
}

TEST(GrpcDiscovery, ReflectionErrorsAndMissingDescriptorsFailThePoll)
{
    EXPECT_EQ(filesError(frame(errorResponse(5, "Symbol not found: x"))),
              "reflection error 5 NOT_FOUND: \"Symbol not found: x\"");
    EXPECT_EQ(filesError(frame(filesResponse(
                  {file("other", {service("Catalog", kCatalog)})}))),
              "reflection: no descriptor of service \"shop.Catalog\"");
    EXPECT_EQ(filesError(""),
              "reflection: no descriptor of service \"shop.Catalog\"");

    GrpcDiscovery poll(false, 1 << 20);
    answer(poll, "", ok(12));
    EXPECT_EQ(errorOf([&] { answer(poll, frame(errorResponse(13, "boom"))); }),
              "reflection error 13 INTERNAL: \"boom\"");

    GrpcDiscovery empty(false, 1 << 20);
    answer(empty, "", ok(12));
    EXPECT_EQ(errorOf([&] { answer(empty, ""); }),
              "reflection: no list of services in the answer");
}

TEST(GrpcDiscovery, HostileDescriptorsFailThePoll)
{
    // a length that runs past the message, a group, a field number 0,
    // a string where a message is expected to be bytes
    std::string past = "\x32\x7f" + std::string("abc");
    EXPECT_EQ(filesError(frame(filesResponse({past}))),
              "malformed file descriptor: length past the end of the message");
    EXPECT_EQ(filesError(frame(filesResponse({std::string("\x33\x34", 2)}))),
              "malformed file descriptor: unsupported wire type");
    EXPECT_EQ(filesError(frame(filesResponse({std::string("\x02\x00", 2)}))),
              "malformed file descriptor: invalid field number");
    std::string varintService;
    appendVarint(varintService, 6, 3);
    EXPECT_EQ(filesError(frame(filesResponse({varintService}))),
              "malformed file descriptor: wrong wire type");
    EXPECT_EQ(filesError(frame(std::string(11, '\xff'))),
              "malformed reflection response: varint overflow");
}

TEST(GrpcDiscovery, DependenciesAndFieldOrderDoNotMatter)
{
    GrpcDiscovery poll(false, 1 << 20);
    answer(poll, "", ok(12));
    answer(poll, frame(listResponse({"shop.Catalog", "Bare"})));
    // a dependency first, the package after the services, and a service
    // without a package
    answer(
        poll,
        frame(
            filesResponse({file("common", {service("Catalog", {{"Nope"}})}),
                           file("shop", {service("Catalog", kCatalog)}, true)}))
            + frame(filesResponse({file("", {service("Bare", {{"Ping"}})})})));
    RouteSet set = poll.finish();

    ASSERT_EQ(set.routes.size(), 5u);
    EXPECT_TRUE(find(set, "/shop.Catalog/Chat") != nullptr);
    EXPECT_TRUE(find(set, "/Bare/Ping") != nullptr);
    EXPECT_TRUE(find(set, "/common.Catalog/Nope") == nullptr);
}

TEST(GrpcDiscovery, BadNamesAreRejectedNotRouted)
{
    GrpcDiscovery poll(false, 1 << 20);
    answer(poll, "", ok(12));
    answer(poll,
           frame(listResponse({"shop.Catalog", "shop/../x", "a..b", ""})));
    std::string request;
    appendBytes(request, 4, "shop.Catalog");
    EXPECT_EQ(poll.next()->body, frame(request));
    answer(poll, frame(filesResponse({file(
                     "shop", {service("Catalog",
                                      {{"Get"}, {"{x}"}, {"Get"}, {""}})})})));
    RouteSet set = poll.finish();

    ASSERT_EQ(set.routes.size(), 1u);
    EXPECT_EQ(reasons(set),
              (std::vector<std::string>{
                  "invalid gRPC service name", "invalid gRPC service name",
                  "invalid gRPC service name", "invalid gRPC method name",
                  "invalid gRPC method name"}));
    EXPECT_EQ(set.rejected[0].path, "/shop/../x");
}

TEST(GrpcDiscovery, AServerWithOnlyItsOwnServicesHasNoRoutes)
{
    GrpcDiscovery poll(false, 1 << 20);
    answer(poll, frame(healthResponse(1)));
    answer(poll,
           frame(listResponse({"grpc.health.v1.Health",
                               "grpc.reflection.v1alpha.ServerReflection"})));
    EXPECT_EQ(poll.next(), nullptr);
    EXPECT_TRUE(poll.finish().routes.empty());
}

TEST(GrpcDiscovery, TooManyServicesFailThePoll)
{
    std::vector<std::string> names;
    for (size_t i = 0; i <= kMaxGrpcServices; i++) {
        names.push_back("s.S" + std::to_string(i));
    }
    GrpcDiscovery poll(false, 1 << 20);
    answer(poll, "", ok(12));
    EXPECT_EQ(errorOf([&] { answer(poll, frame(listResponse(names))); }),
              "more than 1000 services listed");
}

TEST(GrpcDiscovery, TooManyMethodsFailThePollBeforeTheyAreKept)
{
    // 2 bytes a method, none routable: kept, each cost some 20 times its
    // bytes, a body of discovery_max_size could take a worker's memory
    std::string methods;
    appendBytes(methods, 1, "Catalog");
    for (size_t i = 0; i <= kMaxRoutes; i++) {
        methods.append("\x12\x00", 2);
    }
    std::string f;
    appendBytes(f, 2, "shop");
    appendBytes(f, 6, methods);

    GrpcDiscovery poll(false, 1 << 22);
    answer(poll, "", ok(12));
    answer(poll, frame(listResponse({"shop.Catalog"})));
    EXPECT_EQ(errorOf([&] { answer(poll, frame(filesResponse({f}))); }),
              "service descriptor of more than 100000 methods");

    // nor may many services, each under the limit, sum past it
    std::string half;
    for (size_t i = 0; i <= kMaxRoutes / 2; i++) {
        half.append("\x12\x00", 2);
    }
    std::string a, b, fa, fb;
    appendBytes(a, 1, "A");
    appendBytes(b, 1, "B");
    appendBytes(fa, 2, "shop");
    appendBytes(fa, 6, a + half);
    appendBytes(fb, 2, "shop");
    appendBytes(fb, 6, b + half);

    GrpcDiscovery two(false, 1 << 22);
    answer(two, "", ok(12));
    answer(two, frame(listResponse({"shop.A", "shop.B"})));
    EXPECT_EQ(errorOf([&] {
                  answer(two, frame(filesResponse({fa, fb})));
              }),
              "the services described have more than 100000 methods");
}

TEST(GrpcDiscovery, FinishBeforeTheLastCallFails)
{
    GrpcDiscovery poll(false, 1 << 20);
    EXPECT_EQ(errorOf([&] { poll.finish(); }),
              "the poll ended before its last call");
}

TEST(GrpcPath, IsPackageServiceMethod)
{
    EXPECT_TRUE(isGrpcPath("/shop.Catalog/Get"));
    EXPECT_TRUE(isGrpcPath("/Catalog/Get_2"));
    EXPECT_FALSE(isGrpcPath("/shop.Catalog/Get/x"));
    EXPECT_FALSE(isGrpcPath("/shop.Catalog/"));
    EXPECT_FALSE(isGrpcPath("//Get"));
    EXPECT_FALSE(isGrpcPath("/shop..Catalog/Get"));
    EXPECT_FALSE(isGrpcPath("/shop.Catalog/{id}"));
    EXPECT_FALSE(isGrpcPath("shop.Catalog/Get"));
}

TEST(GrpcRouteDocument, RoutesMayDeclareGrpc)
{
    RouteSet set = parse(R"({"routes": [
        {"path": "/shop.Catalog/Get", "protocol": "grpc"},
        {"path": "/shop.Catalog/Watch", "protocol": "grpc",
         "streaming": "server", "methods": ["POST"]},
        {"path": "/rest", "protocol": "http"},
        {"path": "/shop.Catalog/{x}", "protocol": "grpc"},
        {"path": "/shop.Catalog/Put", "protocol": "grpc", "methods": ["GET"]},
        {"path": "/plain", "streaming": "bidi"},
        {"path": "/shop.Catalog/Odd", "protocol": "soap"},
        {"path": "/shop.Catalog/Odd", "protocol": "grpc", "streaming": "both"},
        {"path": "/shop.Catalog/Get", "protocol": "grpc", "streaming": "bidi"}
    ]})");

    ASSERT_EQ(set.routes.size(), 3u);
    EXPECT_EQ(set.routes[0].protocol, Protocol::Grpc);
    EXPECT_EQ(set.routes[0].methods, kPost);
    EXPECT_EQ(set.routes[0].streaming, Streaming::Unary);
    EXPECT_EQ(set.routes[1].streaming, Streaming::Server);
    EXPECT_EQ(set.routes[2].protocol, Protocol::Http);
    EXPECT_EQ(set.routes[2].methods, kGet);
    EXPECT_EQ(reasons(set),
              (std::vector<std::string>{
                  "route #3: a gRPC route's path is /package.Service/Method",
                  "route #4: a gRPC route takes POST only",
                  "route #5: \"streaming\" without \"protocol\": \"grpc\"",
                  "route #6: \"protocol\" is not \"http\" or \"grpc\"",
                  "route #7: \"streaming\" is not \"unary\", \"client\", "
                  "\"server\" or \"bidi\"",
                  "declared before with another protocol or streaming kind"}));
}

TEST(GrpcRoutes, SurviveTheSnapshotAndReachTheMatch)
{
    Snapshot snap;
    Service s;
    s.name = "shop";
    s.url = "grpc://127.0.0.1:1";
    s.upstream = "127.0.0.1:1";
    s.state = ServiceState::Healthy;
    s.routeSet = pollCatalog();
    Route rest;
    rest.path = "/shop.Catalog";
    rest.methods = kGet;
    s.routeSet.routes.push_back(rest);
    snap.services.push_back(s);

    Bytes blob = encodeSnapshot(snap);
    Snapshot back = decodeSnapshot(blob.data(), blob.size());
    EXPECT_EQ(back.services[0].routeSet, s.routeSet);

    auto router = Router::build(blob.data(), blob.size());
    Match m = router->match("POST", "/shop.Catalog/Chat", false);
    EXPECT_EQ(m.status, MatchStatus::Found);
    EXPECT_EQ(m.protocol, Protocol::Grpc);
    EXPECT_EQ(m.streaming, Streaming::Bidi);
    m = router->match("POST", "/shop.Catalog/Watch", false);
    EXPECT_EQ(m.streaming, Streaming::Server);
    m = router->match("GET", "/shop.Catalog", false);
    EXPECT_EQ(m.status, MatchStatus::Found);
    EXPECT_EQ(m.protocol, Protocol::Http);
    m = router->match("GET", "/shop.Catalog/Get", false);
    EXPECT_EQ(m.status, MatchStatus::NotAllowed);
}

TEST(GrpcRoutes, StreamingWithoutGrpcIsACorruptRouteSet)
{
    RouteSet set;
    Route r;
    r.path = "/a";
    r.methods = kGet;
    r.streaming = Streaming::Client; // protocol Http
    set.routes.push_back(r);
    Bytes blob = encodeRouteSet(set);

    EXPECT_EQ(errorOf([&] { decodeRouteSet(blob.data(), blob.size()); }),
              "corrupt route set: invalid route flags");
}

TEST(WireReader, ReadsEveryWireTypeAndChecksBounds)
{
    std::string m;
    appendVarint(m, 1, 300);
    m += std::string("\x11", 1) + std::string(8, 'f'); // 2: fixed64
    m += std::string("\x1d", 1) + std::string(4, 'f'); // 3: fixed32
    appendBytes(m, 536870911, "max field");

    protobuf::WireReader r(m, "test");
    protobuf::Field f;
    ASSERT_TRUE(r.next(f));
    EXPECT_EQ(f.varint, 300u);
    ASSERT_TRUE(r.next(f));
    EXPECT_EQ(f.type, protobuf::WireType::Fixed64);
    ASSERT_TRUE(r.next(f));
    EXPECT_EQ(f.type, protobuf::WireType::Fixed32);
    ASSERT_TRUE(r.next(f));
    EXPECT_EQ(f.number, 536870911u);
    EXPECT_EQ(f.bytes, "max field");
    EXPECT_FALSE(r.next(f));

    auto first = [](const std::string &bytes) {
        return errorOf([&] {
            protobuf::WireReader r(bytes, "test");
            protobuf::Field f;
            while (r.next(f)) {
            }
        });
    };
    EXPECT_EQ(first(std::string("\x11\x01", 2)),
              "malformed test: truncated field");
    EXPECT_EQ(first(std::string("\x1d\x01", 2)),
              "malformed test: truncated field");
    EXPECT_EQ(first("\x80"), "malformed test: truncated varint");
    EXPECT_EQ(first(std::string("\x08") + std::string(9, '\xff') + "\x02"),
              "malformed test: varint overflow");
    EXPECT_EQ(first(std::string("\x80\x80\x80\x80\x10\x00", 6)),
              "malformed test: invalid field number");
    EXPECT_EQ(first(std::string("\x0c", 1)),
              "malformed test: unsupported wire type");
    EXPECT_EQ(first(std::string("\x0f", 1)),
              "malformed test: unsupported wire type");
}

} // namespace
} // namespace discovery
