// grpc_reflection.cpp: the calls of a gRPC poll and the messages they answer.
#include "grpc_reflection.hpp"

#include "error.hpp"
#include "json_escape.hpp"
#include "methods.hpp"
#include "protobuf_wire.hpp"
#include "request_path.hpp"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

namespace discovery {

namespace {

using protobuf::Field;
using protobuf::WireReader;
using protobuf::WireType;

constexpr char kHealthPath[] = "/grpc.health.v1.Health/Check";
constexpr char kReflectionPath[] =
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
constexpr char kReflectionAlphaPath[] =
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

// gRPC status codes the poll acts on
constexpr int kOk = 0;
constexpr int kNotFound = 5;
constexpr int kUnimplemented = 12;

// grpc.health.v1.HealthCheckResponse.ServingStatus
constexpr uint64_t kServing = 1;
constexpr uint64_t kNotServing = 2;

// Field numbers of the messages read and written.
namespace reflection {
constexpr uint32_t kFileContainingSymbol = 4; // ServerReflectionRequest
constexpr uint32_t kListServices = 7;
constexpr uint32_t kFileDescriptorResponse = 4; // ServerReflectionResponse
constexpr uint32_t kListServicesResponse = 6;
constexpr uint32_t kErrorResponse = 7;
constexpr uint32_t kFileDescriptorProto = 1; // FileDescriptorResponse
constexpr uint32_t kService = 1;             // ListServiceResponse
constexpr uint32_t kServiceName = 1;         // ServiceResponse
constexpr uint32_t kErrorCode = 1;           // ErrorResponse
constexpr uint32_t kErrorMessage = 2;
} // namespace reflection

namespace descriptor {
constexpr uint32_t kFilePackage = 2; // FileDescriptorProto
constexpr uint32_t kFileService = 6;
constexpr uint32_t kServiceName = 1; // ServiceDescriptorProto
constexpr uint32_t kServiceMethod = 2;
constexpr uint32_t kMethodName = 1; // MethodDescriptorProto
constexpr uint32_t kClientStreaming = 5;
constexpr uint32_t kServerStreaming = 6;
} // namespace descriptor

constexpr uint32_t kHealthStatus = 1; // HealthCheckResponse

// The services of grpc_internal=on: the poll's own.
bool isInternal(std::string_view service)
{
    return service.rfind("grpc.reflection.", 0) == 0
           || service == "grpc.health.v1.Health";
}

bool isIdentifierStart(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

bool isIdentifierChar(char c)
{
    return isIdentifierStart(c) || (c >= '0' && c <= '9');
}

// A protobuf identifier: what a method's name is.
bool isIdentifier(std::string_view s)
{
    return !s.empty() && isIdentifierStart(s[0])
           && std::all_of(s.begin(), s.end(), isIdentifierChar);
}

// "package.Service": identifiers joined by dots.
bool isFullName(std::string_view s)
{
    size_t start = 0;

    for (;;) {
        size_t dot = s.find('.', start);
        if (!isIdentifier(s.substr(start, dot - start))) {
            return false;
        }
        if (dot == std::string_view::npos) {
            return true;
        }
        start = dot + 1;
    }
}

std::string frame(std::string_view message)
{
    std::string out(5, '\0');
    auto n = static_cast<uint32_t>(message.size());

    out[1] = static_cast<char>(n >> 24);
    out[2] = static_cast<char>(n >> 16);
    out[3] = static_cast<char>(n >> 8);
    out[4] = static_cast<char>(n);
    out.append(message);
    return out;
}

bool startsWithIgnoreCase(std::string_view s, std::string_view lower)
{
    return s.size() >= lower.size()
           && std::equal(lower.begin(), lower.end(), s.begin(),
                         [](char l, char c) {
                             return l == (c >= 'A' && c <= 'Z' ? c + 32 : c);
                         });
}

// grpc-message is percent-encoded (gRPC over HTTP/2): decoded, quoted.
std::string grpcMessage(std::string_view raw)
{
    std::string text;

    for (size_t i = 0; i < raw.size() && text.size() < 256; i++) {
        if (raw[i] == '%' && i + 2 < raw.size() && hexValue(raw[i + 1]) >= 0
            && hexValue(raw[i + 2]) >= 0) {
            text.push_back(static_cast<char>(hexValue(raw[i + 1]) * 16
                                             + hexValue(raw[i + 2])));
            i += 2;
        } else {
            text.push_back(raw[i]);
        }
    }

    return quoted(text, 128);
}

// A string field, as what it names: checked by the caller.
std::string_view stringField(const Field &f, const char *what)
{
    if (f.type != WireType::Bytes) {
        throw Error(std::string("malformed ") + what + ": wrong wire type");
    }
    return f.bytes;
}

// ErrorResponse: "reflection error 5 NOT_FOUND \"...\"".
[[noreturn]] void reflectionError(std::string_view message)
{
    WireReader r(message, "reflection error response");
    Field f;
    uint64_t code = 0;
    std::string_view text;

    while (r.next(f)) {
        if (f.number == reflection::kErrorCode && f.type == WireType::Varint) {
            code = f.varint;
        } else if (f.number == reflection::kErrorMessage) {
            text = stringField(f, "reflection error response");
        }
    }

    std::string name = code <= 16 ? grpcStatusName(static_cast<int>(code)) : "";
    throw Error("reflection error " + std::to_string(code)
                + (name.empty() ? "" : " " + name) + ": " + quoted(text, 128));
}

} // namespace

bool isGrpcPath(std::string_view path)
{
    if (path.size() < 4 || path[0] != '/' || path.size() > kMaxPathLen) {
        return false;
    }

    size_t slash = path.find('/', 1);
    return slash != std::string_view::npos
           && isFullName(path.substr(1, slash - 1))
           && isIdentifier(path.substr(slash + 1));
}

const char *streamingName(Streaming s)
{
    switch (s) {
    case Streaming::Client:
        return "client";
    case Streaming::Server:
        return "server";
    case Streaming::Bidi:
        return "bidi";
    default:
        return "unary";
    }
}

bool parseStreaming(std::string_view name, Streaming &s)
{
    for (Streaming k : {Streaming::Unary, Streaming::Client, Streaming::Server,
                        Streaming::Bidi}) {
        if (name == streamingName(k)) {
            s = k;
            return true;
        }
    }
    return false;
}

const char *grpcStatusName(int code)
{
    static const char *const names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    };

    return code >= 0 && code <= 16 ? names[code] : "";
}

GrpcDiscovery::GrpcDiscovery(bool internal, size_t maxSize)
    : internal_(internal), maxSize_(maxSize)
{
    // HealthCheckRequest{service: ""}: the server as a whole
    call_.path = kHealthPath;
    call_.body = frame("");
}

void GrpcDiscovery::checkHead(const GrpcAnswer &head) const
{
    // gRPC answers every call 200, its errors in grpc-status
    if (head.httpStatus != 200) {
        throw Error("HTTP status " + std::to_string(head.httpStatus) + " to "
                    + call_.path + ": not a gRPC server");
    }

    if (!startsWithIgnoreCase(head.contentType, "application/grpc")) {
        throw Error("not a gRPC server: content-type "
                    + (head.contentType.empty() ? std::string("none")
                                                : quoted(head.contentType, 64))
                    + " to " + call_.path);
    }
}

void GrpcDiscovery::feed(const GrpcAnswer &head, const char *data, size_t len)
{
    checkHead(head);

    if (len > maxSize_ - body_.size()) {
        throw Error("answer to " + call_.path + " larger than "
                    + std::to_string(maxSize_) + " bytes");
    }

    body_.append(data, len);
}

// The messages of the answer body, each a view of it.
std::vector<std::string_view> GrpcDiscovery::messages() const
{
    std::vector<std::string_view> out;
    std::string_view rest = body_;

    while (!rest.empty()) {
        if (rest.size() < 5) {
            throw Error("truncated gRPC message");
        }

        auto flag = static_cast<unsigned char>(rest[0]);
        if (flag == 1) {
            throw Error("compressed gRPC message (the poll asks for none)");
        }
        if (flag != 0) {
            throw Error("invalid gRPC message flag");
        }

        uint32_t n = 0;
        for (size_t i = 1; i < 5; i++) {
            n = (n << 8) | static_cast<unsigned char>(rest[i]);
        }
        if (n > rest.size() - 5) {
            throw Error("truncated gRPC message");
        }

        out.push_back(rest.substr(5, n));
        rest.remove_prefix(5 + n);
    }

    return out;
}

[[noreturn]] void GrpcDiscovery::failCall(const GrpcAnswer &answer) const
{
    std::string what = step_ == Step::Health ? "health check"
                       : alpha_              ? "reflection (v1alpha)"
                                             : "reflection";
    const char *name = grpcStatusName(answer.grpcStatus);

    if (step_ == Step::List && answer.grpcStatus == kUnimplemented) {
        what = "no server reflection (v1 nor v1alpha)";
    }

    throw Error(what + ": grpc-status " + std::to_string(answer.grpcStatus)
                + (*name ? std::string(" ") + name : std::string()) + " "
                + grpcMessage(answer.grpcMessage));
}

void GrpcDiscovery::end(const GrpcAnswer &answer)
{
    if (done_) {
        throw Error("the poll has no call in progress");
    }

    checkHead(answer);

    if (answer.grpcStatus < 0) {
        throw Error("no grpc-status in the answer to " + call_.path);
    }

    switch (step_) {
    case Step::Health: {
        if (answer.grpcStatus == kUnimplemented
            || answer.grpcStatus == kNotFound) {
            startList(false); // no health service: reflection decides
            return;
        }
        if (answer.grpcStatus != kOk) {
            failCall(answer);
        }

        std::vector<std::string_view> all = messages();
        if (all.size() != 1) {
            throw Error("health check: " + std::to_string(all.size())
                        + " answers, not one");
        }

        WireReader r(all[0], "health check response");
        Field f;
        uint64_t status = 0;
        while (r.next(f)) {
            if (f.number == kHealthStatus && f.type == WireType::Varint) {
                status = f.varint;
            }
        }

        if (status == kNotServing) {
            throw Error("health check: NOT_SERVING");
        }
        if (status != kServing) {
            throw Error("health check: status " + std::to_string(status)
                        + (status == 0   ? " UNKNOWN"
                           : status == 3 ? " SERVICE_UNKNOWN"
                                         : ""));
        }

        startList(false);
        return;
    }

    case Step::List:
        listEnded(answer);
        return;

    case Step::Files:
        filesEnded(answer);
        return;
    }
}

void GrpcDiscovery::startList(bool alpha)
{
    std::string request;

    // ServerReflectionRequest{list_services: ""}: the field's presence asks
    protobuf::appendBytes(request, reflection::kListServices, "");

    step_ = Step::List;
    alpha_ = alpha;
    call_.path = alpha ? kReflectionAlphaPath : kReflectionPath;
    call_.body = frame(request);
    body_.clear();
}

void GrpcDiscovery::listEnded(const GrpcAnswer &answer)
{
    if (answer.grpcStatus == kUnimplemented && !alpha_) {
        startList(true);
        return;
    }
    if (answer.grpcStatus != kOk) {
        failCall(answer);
    }

    bool listed = false;
    std::unordered_set<std::string_view> seen;

    for (std::string_view message : messages()) {
        WireReader r(message, "reflection response");
        Field f;

        while (r.next(f)) {
            if (f.number == reflection::kErrorResponse) {
                reflectionError(stringField(f, "reflection response"));
            }
            if (f.number != reflection::kListServicesResponse) {
                continue;
            }

            listed = true;
            WireReader list(stringField(f, "list services response"),
                            "list services response");
            Field s;
            while (list.next(s)) {
                if (s.number != reflection::kService) {
                    continue;
                }

                WireReader service(stringField(s, "service response"),
                                   "service response");
                Field n;
                std::string_view name;
                while (service.next(n)) {
                    if (n.number == reflection::kServiceName) {
                        name = stringField(n, "service response");
                    }
                }

                if (!seen.insert(name).second) {
                    continue;
                }
                if (seen.size() > kMaxGrpcServices) {
                    throw Error("more than " + std::to_string(kMaxGrpcServices)
                                + " services listed");
                }
                if (!isFullName(name) || name.size() + 3 > kMaxPathLen) {
                    reject("/" + std::string(name),
                           "invalid gRPC service name");
                    continue;
                }
                if (internal_ || !isInternal(name)) {
                    listed_.emplace_back(name);
                }
            }
        }
    }

    if (!listed) {
        throw Error("reflection: no list of services in the answer");
    }

    if (listed_.empty()) {
        done_ = true; // a server of no service of its own: no routes
        return;
    }

    std::string requests;
    for (const std::string &name : listed_) {
        std::string request;
        protobuf::appendBytes(request, reflection::kFileContainingSymbol, name);
        requests += frame(request);
    }

    step_ = Step::Files;
    call_.body = std::move(requests);
    body_.clear();
}

void GrpcDiscovery::filesEnded(const GrpcAnswer &answer)
{
    if (answer.grpcStatus != kOk) {
        failCall(answer);
    }

    std::unordered_map<std::string, size_t> wanted;
    for (const std::string &name : listed_) {
        wanted.emplace(name, wanted.size());
    }
    described_.assign(listed_.size(), Service());

    std::vector<bool> found(listed_.size(), false);

    /*
     * A method costs its descriptor 2 bytes and us some 40 once kept:
     * more than a table holds fails the poll before they are, or a
     * hostile body of discovery_max_size would take 20 times that.
     */
    size_t kept = 0;

    for (std::string_view message : messages()) {
        WireReader r(message, "reflection response");
        Field f;

        while (r.next(f)) {
            if (f.number == reflection::kErrorResponse) {
                reflectionError(stringField(f, "reflection response"));
            }
            if (f.number != reflection::kFileDescriptorResponse) {
                continue;
            }

            WireReader files(stringField(f, "file descriptor response"),
                             "file descriptor response");
            Field file;
            while (files.next(file)) {
                if (file.number != reflection::kFileDescriptorProto) {
                    continue;
                }

                // the package may follow the services: read both first
                WireReader fields(stringField(file, "file descriptor"),
                                  "file descriptor");
                std::string_view package;
                std::vector<std::string_view> services;
                Field d;
                while (fields.next(d)) {
                    if (d.number == descriptor::kFilePackage) {
                        package = stringField(d, "file descriptor");
                    } else if (d.number == descriptor::kFileService) {
                        services.push_back(stringField(d, "file descriptor"));
                    }
                }

                for (std::string_view service : services) {
                    WireReader sr(service, "service descriptor");
                    std::string_view name;
                    std::vector<std::string_view> methods;
                    Field s;
                    while (sr.next(s)) {
                        if (s.number == descriptor::kServiceName) {
                            name = stringField(s, "service descriptor");
                        } else if (s.number == descriptor::kServiceMethod) {
                            if (methods.size() == kMaxRoutes) {
                                throw Error("service descriptor of more than "
                                            + std::to_string(kMaxRoutes)
                                            + " methods");
                            }
                            methods.push_back(
                                stringField(s, "service descriptor"));
                        }
                    }

                    std::string full =
                        package.empty()
                            ? std::string(name)
                            : std::string(package) + "." + std::string(name);
                    auto it = wanted.find(full);
                    if (it == wanted.end() || found[it->second]) {
                        continue; // not asked for, or described already
                    }
                    found[it->second] = true;

                    if (methods.size() > kMaxRoutes - kept) {
                        throw Error("the services described have more than "
                                    + std::to_string(kMaxRoutes) + " methods");
                    }
                    kept += methods.size();

                    Service &out = described_[it->second];
                    out.name = std::move(full);
                    for (std::string_view method : methods) {
                        WireReader mr(method, "method descriptor");
                        Method m;
                        unsigned streaming = 0;
                        Field mf;
                        while (mr.next(mf)) {
                            if (mf.number == descriptor::kMethodName) {
                                m.name = stringField(mf, "method descriptor");
                            } else if (mf.number == descriptor::kClientStreaming
                                       && mf.type == WireType::Varint) {
                                streaming = (streaming & ~1u)
                                            | (mf.varint != 0 ? 1u : 0u);
                            } else if (mf.number == descriptor::kServerStreaming
                                       && mf.type == WireType::Varint) {
                                streaming = (streaming & ~2u)
                                            | (mf.varint != 0 ? 2u : 0u);
                            }
                        }
                        m.streaming = static_cast<Streaming>(streaming);
                        out.methods.push_back(std::move(m));
                    }
                }
            }
        }
    }

    for (size_t i = 0; i < listed_.size(); i++) {
        if (!found[i]) {
            throw Error("reflection: no descriptor of service "
                        + quoted(listed_[i], 128));
        }
    }

    addRoutes();
    done_ = true;
}

void GrpcDiscovery::addRoutes()
{
    std::unordered_set<std::string> paths;

    for (Service &service : described_) {
        for (Method &method : service.methods) {
            std::string path = "/" + service.name + "/" + method.name;

            if (!isIdentifier(method.name) || path.size() > kMaxPathLen) {
                reject(path, "invalid gRPC method name");
                continue;
            }
            if (!paths.insert(path).second) {
                continue; // declared twice: one route
            }
            if (set_.routes.size() >= kMaxRoutes) {
                throw Error("too many routes");
            }

            Route r;
            r.path = std::move(path);
            r.methods = kPost;
            r.protocol = Protocol::Grpc;
            r.streaming = method.streaming;
            r.name = method.name.substr(0, kMaxNameLen);
            set_.routes.push_back(std::move(r));
        }
    }
}

// Listed on the status page, as a route document's rejected entries are.
void GrpcDiscovery::reject(const std::string &path, const char *reason)
{
    if (set_.rejected.size() >= kMaxRejected) {
        set_.rejectedOmitted++;
        return;
    }

    set_.rejected.push_back({path.substr(0, kMaxPathLen), kPost, {}, reason});
}

RouteSet GrpcDiscovery::finish()
{
    if (!done_) {
        throw Error("the poll ended before its last call");
    }

    return std::move(set_);
}

} // namespace discovery
