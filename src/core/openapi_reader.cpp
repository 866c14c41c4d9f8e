// openapi_reader.cpp: reads {"paths": {"/x": {"get": {"security": []}}}}.
#include "openapi_reader.hpp"

#include "error.hpp"
#include "json_escape.hpp"
#include "methods.hpp"
#include "route_template.hpp"

#include <optional>
#include <utility>

namespace discovery {

namespace {

// What a container is, from where it sits in the document.
enum class Role : uint8_t {
    Skip = kSkip,
    Info,
    Paths,
    PathItem,
    Operation,
    OperationTags,
    DocumentSecurity,
    OperationSecurity,
    Requirement, // an element of a security array
};

// The member of an object whose value comes next.
enum class Field : uint8_t {
    None = kNone,
    // top level
    Openapi,
    Paths,
    Security, // also an operation's
    Info,
    // info
    Version,
    // an operation
    OperationId,
    Tags,
    // a path item's operations
    Get,
    Put,
    Post,
    Delete,
    Options,
    Head,
    Patch,
    Trace,
};

struct Operation {
    std::string_view key;
    Field field;
    uint32_t method;
};

// OpenAPI spells them in lowercase; "parameters" and such are not ops
constexpr Operation kOperations[] = {
    {"get", Field::Get, kGet},
    {"put", Field::Put, kPut},
    {"post", Field::Post, kPost},
    {"delete", Field::Delete, kDelete},
    {"options", Field::Options, kOptions},
    {"head", Field::Head, kHead},
    {"patch", Field::Patch, kPatch},
    {"trace", Field::Trace, kTrace},
};

Field operationField(std::string_view key)
{
    for (const Operation &op : kOperations) {
        if (op.key == key) {
            return op.field;
        }
    }
    return Field::None;
}

uint32_t operationMethod(Field field)
{
    for (const Operation &op : kOperations) {
        if (op.field == field) {
            return op.method;
        }
    }
    return 0;
}

struct PathDraft {
    size_t index = 0;
    std::string path;
    bool tooLong = false;
    Route route;                    // the union of its operations
    uint32_t securedMethods = 0;    // operations with a non-empty security
    uint32_t inheritingMethods = 0; // operations without their own security
};

struct OperationDraft {
    uint32_t method = 0;
    std::string name;
    std::vector<std::string> tags;
    std::optional<bool> security;
    std::string error;
};

struct OpenApiRoute {
    Route route;
    uint32_t securedMethods;
    uint32_t inheritingMethods;
};

class OpenApiReader final : public Grammar {
public:
    OpenApiReader(bool forced, RejectedRoutes &rejected, const Log &log)
        : forced_(forced), rejected_(rejected), log_(log)
    {
    }

    uint8_t topKey(std::string_view key) override;
    uint8_t topValue(uint8_t field, const Value &v) override;
    uint8_t onValue(Frame &frame, const Value &v) override;
    void onKey(Frame &frame, std::string_view key) override;
    void onEnd(const Frame &frame, Frame &parent) override;
    bool present() const override { return openapiSeen_ || pathsSeen_; }
    void finish(RouteSet &set) override;

private:
    void pathItemKey(std::string_view key);
    Role pathItemStart(const Value &v);
    Role operationStart(uint32_t method, const Value &v);
    Role operationValue(Field field, const Value &v);
    void operationTag(const Value &v);
    void rejectOperation(const std::string &reason);
    void finishOperation();
    void finishPathItem();
    void skipPathItem(const std::string &reason);

    bool forced_;
    RejectedRoutes &rejected_;
    Log log_;

    bool openapiSeen_ = false;
    bool pathsSeen_ = false;
    bool pathsInvalid_ = false;
    std::optional<bool> documentSecurity_;
    std::string infoVersion_;

    size_t pathItemCount_ = 0;
    PathDraft pathItem_;
    OperationDraft operation_;
    std::vector<OpenApiRoute> routes_;
};

uint8_t OpenApiReader::topKey(std::string_view key)
{
    Field field = key == "openapi"    ? Field::Openapi
                  : key == "paths"    ? Field::Paths
                  : key == "security" ? Field::Security
                  : key == "info"     ? Field::Info
                                      : Field::None;
    return static_cast<uint8_t>(field);
}

uint8_t OpenApiReader::topValue(uint8_t field, const Value &v)
{
    Role child = Role::Skip;

    switch (static_cast<Field>(field)) {
    case Field::Openapi:
        openapiSeen_ = true;
        break;

    case Field::Paths:
        pathsSeen_ = true;
        if (v.kind == Kind::Map) {
            child = Role::Paths;
        } else if (forced_) {
            throw Error("\"paths\" is not an object");
        } else {
            pathsInvalid_ = true; // fatal only if this turns out to be OpenAPI
        }
        break;

    case Field::Security:
        if (v.kind == Kind::Array) {
            child = Role::DocumentSecurity;
        }
        break;

    case Field::Info:
        if (v.kind == Kind::Map) {
            child = Role::Info;
        }
        break;

    default:
        break;
    }

    return static_cast<uint8_t>(child);
}

uint8_t OpenApiReader::onValue(Frame &frame, const Value &v)
{
    Field field = static_cast<Field>(frame.field);
    Role child = Role::Skip;

    switch (static_cast<Role>(frame.role)) {
    case Role::Info:
        if (field == Field::Version) {
            readVersion(infoVersion_, v, log_);
        }
        break;
    case Role::Paths:
        child = pathItemStart(v);
        break;
    case Role::PathItem:
        child = operationStart(operationMethod(field), v);
        break;
    case Role::Operation:
        child = operationValue(field, v);
        break;
    case Role::OperationTags:
        operationTag(v);
        break;
    case Role::DocumentSecurity:
    case Role::OperationSecurity:
        // anything but an empty object {} in a security array requires
        // auth; a Requirement reports a non-empty object when it closes
        if (v.kind == Kind::Map) {
            child = Role::Requirement;
        } else {
            frame.flag = true;
        }
        break;
    case Role::Requirement:
    case Role::Skip:
        break;
    }

    return static_cast<uint8_t>(child);
}

void OpenApiReader::onKey(Frame &frame, std::string_view key)
{
    Field field = Field::None;

    switch (static_cast<Role>(frame.role)) {
    case Role::Info:
        field = key == "version" ? Field::Version : Field::None;
        break;
    case Role::Paths:
        pathItemKey(key);
        break;
    case Role::PathItem:
        field = operationField(key);
        break;
    case Role::Operation:
        field = key == "operationId" ? Field::OperationId
                : key == "tags"      ? Field::Tags
                : key == "security"  ? Field::Security
                                     : Field::None;
        break;
    case Role::Requirement:
        frame.flag = true;
        break;
    default:
        break;
    }

    frame.field = static_cast<uint8_t>(field);
}

void OpenApiReader::onEnd(const Frame &frame, Frame &parent)
{
    switch (static_cast<Role>(frame.role)) {
    case Role::Operation:
        finishOperation();
        break;
    case Role::PathItem:
        finishPathItem();
        break;
    case Role::DocumentSecurity:
        documentSecurity_ = frame.flag;
        break;
    case Role::OperationSecurity:
        operation_.security = frame.flag;
        break;
    case Role::Requirement:
        // a non-empty requirement object means the operation needs auth
        if (frame.flag) {
            parent.flag = true;
        }
        break;
    default:
        break;
    }
}

void OpenApiReader::finish(RouteSet &set)
{
    if (pathsInvalid_) {
        throw Error("\"paths\" is not an object");
    }

    if (!infoVersion_.empty()) {
        set.version = std::move(infoVersion_);
    }

    for (OpenApiRoute &r : routes_) {
        // the document's "security" may come after "paths"
        uint32_t secured =
            r.securedMethods
            | (documentSecurity_.value_or(false) ? r.inheritingMethods : 0);
        uint32_t open = r.route.methods & ~secured;

        if (open != 0 && secured != 0) {
            Route securedRoute = r.route;
            securedRoute.methods = secured;
            securedRoute.authRequired = true;
            set.routes.push_back(std::move(securedRoute));
        }

        r.route.methods = open != 0 ? open : secured;
        r.route.authRequired = open == 0;
        set.routes.push_back(std::move(r.route));
    }
}

void OpenApiReader::pathItemKey(std::string_view key)
{
    if (++pathItemCount_ > kMaxRoutes) {
        throw Error("too many routes");
    }

    pathItem_ = PathDraft();
    pathItem_.index = pathItemCount_ - 1;
    pathItem_.tooLong = key.size() > kMaxPathLen;
    pathItem_.path.assign(key.substr(0, pathItem_.tooLong ? 0 : key.size()));
}

Role OpenApiReader::pathItemStart(const Value &v)
{
    if (v.kind == Kind::Map) {
        return Role::PathItem;
    }

    skipPathItem("not an object");
    return Role::Skip;
}

Role OpenApiReader::operationStart(uint32_t method, const Value &v)
{
    if (method == 0 || v.kind != Kind::Map) {
        return Role::Skip; // "parameters", "summary", ...
    }

    operation_ = OperationDraft();
    operation_.method = method;
    return Role::Operation;
}

Role OpenApiReader::operationValue(Field field, const Value &v)
{
    OperationDraft &op = operation_;

    switch (field) {
    case Field::OperationId:
        if (v.kind == Kind::String && v.text.size() <= kMaxNameLen) {
            op.name.assign(v.text);
        } else if (v.kind == Kind::String) {
            rejectOperation("operationId longer than 256 bytes");
        } else if (v.kind != Kind::Null) {
            rejectOperation("\"operationId\" is not a string");
        }
        return Role::Skip;

    case Field::Tags:
        if (v.kind == Kind::Array) {
            return Role::OperationTags;
        }
        if (v.kind != Kind::Null) {
            rejectOperation("\"tags\" is not an array");
        }
        return Role::Skip;

    case Field::Security:
        if (v.kind == Kind::Array) {
            return Role::OperationSecurity;
        }
        if (v.kind != Kind::Null) {
            rejectOperation("\"security\" is not an array");
        }
        return Role::Skip;

    default:
        return Role::Skip;
    }
}

void OpenApiReader::operationTag(const Value &v)
{
    std::string error;

    if (v.kind != Kind::String) {
        rejectOperation("tag is not a string");
    } else if (!addTag(operation_.tags, v.text, error)) {
        rejectOperation(error);
    }
}

void OpenApiReader::rejectOperation(const std::string &reason)
{
    if (operation_.error.empty()) {
        operation_.error = reason;
    }
}

void OpenApiReader::finishOperation()
{
    OperationDraft &op = operation_;
    Route &r = pathItem_.route;

    if (!op.error.empty()) {
        rejected_.add(pathItem_.path, op.method,
                      "path #" + std::to_string(pathItem_.index) + " operation "
                          + std::string(methodName(__builtin_ctz(op.method)))
                          + ": " + op.error);
        return;
    }

    r.methods |= op.method;
    if (!op.security.has_value()) {
        pathItem_.inheritingMethods |= op.method;
    } else if (*op.security) {
        pathItem_.securedMethods |= op.method;
    }
    if (r.name.empty()) {
        r.name = std::move(op.name);
    }
    mergeTags(r.tags, op.tags);
}

void OpenApiReader::finishPathItem()
{
    Template tpl;
    std::string why;

    if (pathItem_.tooLong) {
        skipPathItem("path longer than 1024 bytes");
    } else if (pathItem_.route.methods == 0) {
        return; // no operations: nothing to route
    } else if (!compileTemplate(pathItem_.path, tpl, &why)) {
        skipPathItem("invalid template " + quoted(pathItem_.path) + ": " + why);
    } else {
        pathItem_.route.path = std::move(pathItem_.path);
        routes_.push_back({std::move(pathItem_.route), pathItem_.securedMethods,
                           pathItem_.inheritingMethods});
    }
}

void OpenApiReader::skipPathItem(const std::string &reason)
{
    rejected_.add(pathItem_.path, pathItem_.route.methods,
                  "path #" + std::to_string(pathItem_.index) + ": " + reason);
}

} // namespace

std::unique_ptr<Grammar>
makeOpenApiReader(bool forced, RejectedRoutes &rejected, const Log &log)
{
    return std::make_unique<OpenApiReader>(forced, rejected, log);
}

} // namespace discovery
