// route_document.cpp: the route document and OpenAPI readers on yajl events.
#include "route_document.hpp"

#include "error.hpp"
#include "json_escape.hpp"
#include "methods.hpp"
#include "route_template.hpp"

#include <yajl/yajl_parse.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace discovery {

namespace {

// What a container is, from where it sits in the document.
enum class Role : uint8_t {
    Skip, // anything we do not read, however deep
    Top,
    Info,
    Routes,
    Entry,
    EntryMethods,
    EntryTags,
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
    None,
    Status,
    Version,
    Routes,
    Openapi,
    Paths,
    Security,
    Info,
    Path,
    Methods,
    Name,
    Tags,
    AuthRequired,
    Websocket,
    Operation,
};

struct Frame {
    Role role;
    Field field = Field::None;
    uint32_t method = 0; // PathItem: the operation member's method
    bool flag = false;   // security: auth required; Requirement: non-empty
};

enum class Kind : uint8_t { Null, Bool, Number, String, Map, Array };

struct Value {
    Value(Kind k, bool b = false, std::string_view t = {})
        : kind(k), boolean(b), text(t)
    {
    }

    Kind kind;
    bool boolean;
    std::string_view text; // String or Number

    bool isContainer() const
    {
        return kind == Kind::Map || kind == Kind::Array;
    }
};

struct EntryDraft {
    size_t index = 0;
    Route route;
    bool hasPath = false;
    bool hasMethods = false;
    std::string error; // the first reason to skip the entry
};

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

bool equalsIgnoreCase(std::string_view a, std::string_view lower)
{
    return a.size() == lower.size()
           && std::equal(a.begin(), a.end(), lower.begin(), [](char x, char y) {
                  return std::tolower(static_cast<unsigned char>(x)) == y;
              });
}

bool isHealthyStatus(std::string_view s)
{
    return equalsIgnoreCase(s, "healthy") || equalsIgnoreCase(s, "ok")
           || equalsIgnoreCase(s, "pass") || equalsIgnoreCase(s, "up");
}

uint32_t operationMethod(std::string_view key)
{
    // OpenAPI spells them in lowercase; "parameters" and such are not ops
    static const std::pair<std::string_view, uint32_t> ops[] = {
        {"get", kGet},       {"put", kPut},         {"post", kPost},
        {"delete", kDelete}, {"options", kOptions}, {"head", kHead},
        {"patch", kPatch},   {"trace", kTrace},
    };

    for (const auto &op : ops) {
        if (op.first == key) {
            return op.second;
        }
    }
    return 0;
}

// False with *error set when the tag breaks a bound; duplicates dropped.
bool addTag(std::vector<std::string> &tags, std::string_view tag,
            std::string &error)
{
    if (tag.size() > kMaxTagLen) {
        error = "tag longer than 128 bytes";
        return false;
    }
    if (std::find(tags.begin(), tags.end(), tag) != tags.end()) {
        return true;
    }
    if (tags.size() == kMaxTags) {
        error = "more than 32 tags";
        return false;
    }
    tags.emplace_back(tag);
    return true;
}

// Keeps `names` sorted and unique; false if it is full.
bool addExtensionMethod(MethodNames &names, std::string name)
{
    auto at = std::lower_bound(names.begin(), names.end(), name);

    if (at != names.end() && *at == name) {
        return true;
    }
    if (names.size() >= kMaxRouteExtensionMethods) {
        return false;
    }
    names.insert(at, std::move(name));
    return true;
}

// Tags of merged routes: union, silently capped at the bound.
void mergeTags(std::vector<std::string> &into,
               const std::vector<std::string> &from)
{
    std::string ignored;
    for (const std::string &tag : from) {
        addTag(into, tag, ignored);
    }
}

// Identical templates of one service are one route with the union of
// their methods, unless they differ in auth_required: that is per method,
// so a public GET and a secured POST on one path stay two routes.
void mergeDuplicates(std::vector<Route> &routes)
{
    std::vector<Route> merged;
    std::unordered_map<std::string_view, size_t> seen[2]; // by authRequired

    merged.reserve(routes.size()); // no reallocation: `seen` views into it

    for (Route &r : routes) {
        auto &byPath = seen[r.authRequired];
        auto it = byPath.find(r.path);
        if (it == byPath.end()) {
            merged.push_back(std::move(r));
            byPath.emplace(merged.back().path, merged.size() - 1);
            continue;
        }

        Route &m = merged[it->second];
        m.methods |= r.methods;
        for (std::string &method : r.extensionMethods) {
            addExtensionMethod(m.extensionMethods, std::move(method));
        }
        m.websocket |= r.websocket;
        if (m.name.empty()) {
            m.name = std::move(r.name);
        }
        mergeTags(m.tags, r.tags);
    }

    routes = std::move(merged);
}

// yajl's messages end in ".\n" and may span lines; ours are one line.
std::string oneLine(const unsigned char *msg)
{
    std::string s =
        msg != nullptr ? reinterpret_cast<const char *>(msg) : "unknown error";

    std::replace(s.begin(), s.end(), '\n', ' ');
    while (!s.empty() && (s.back() == ' ' || s.back() == '.')) {
        s.pop_back();
    }
    return s;
}

struct YajlFree {
    void operator()(yajl_handle h) const { yajl_free(h); }
};

} // namespace

class RouteDocumentParser::Reader {
public:
    Reader(int format, const Log &log);

    void feed(const char *data, size_t len);
    RouteSet finish();

private:
    static const yajl_callbacks kCallbacks;

    // Runs one event; an exception cancels the parse instead of unwinding
    // through yajl's C frames.
    template <typename F>
    static int event(void *ctx, F &&handle)
    {
        auto *reader = static_cast<Reader *>(ctx);
        try {
            handle(*reader);
            return 1;
        } catch (...) {
            reader->failure_ = std::current_exception();
            return 0;
        }
    }

    [[noreturn]] void fail(const std::string &msg);
    std::string_view checkedText(const unsigned char *s, size_t len);
    void checkParse(yajl_status status, uint64_t offset);

    void onValue(const Value &v);
    void onKey(std::string_view key);
    void onEnd();
    void push(Role role);

    Role topValue(Field field, const Value &v);
    Field topField(std::string_view key) const;
    void setVersion(std::string &version, const Value &v);

    Role entryStart(const Value &v);
    Role entryValue(Field field, const Value &v);
    void entryMethod(const Value &v);
    void entryTag(const Value &v);
    void rejectEntry(const std::string &reason);
    void finishEntry();
    void reject(const std::string &path, uint32_t methods,
                std::string reason, const MethodNames &extension = {});
    void skipEntry(const std::string &reason);

    void pathItemKey(std::string_view key);
    Role pathItemStart(const Value &v);
    Role operationStart(uint32_t method, const Value &v);
    Role operationValue(Field field, const Value &v);
    void operationTag(const Value &v);
    void rejectOperation(const std::string &reason);
    void finishOperation();
    void finishPathItem();
    void skipPathItem(const std::string &reason);
    void securityElement(const Value &v);

    int format_;
    Log log_;
    std::unique_ptr<yajl_handle_t, YajlFree> handle_;
    std::exception_ptr failure_;
    uint64_t offset_ = 0; // bytes fed before the current chunk
    std::vector<Frame> stack_;

    std::string statusError_;
    std::string version_;
    std::string infoVersion_;
    bool routesSeen_ = false;
    bool openapiSeen_ = false;
    bool pathsSeen_ = false;
    bool pathsInvalid_ = false;
    std::optional<bool> documentSecurity_;

    size_t entryCount_ = 0;
    size_t pathItemCount_ = 0;
    EntryDraft entry_;
    PathDraft pathItem_;
    OperationDraft operation_;

    std::vector<Route> routes_;
    std::vector<OpenApiRoute> openApiRoutes_;
    std::vector<RejectedRoute> rejected_;
    size_t rejectedOmitted_ = 0;
};

const yajl_callbacks RouteDocumentParser::Reader::kCallbacks = {
    // null
    [](void *ctx) {
        return event(ctx, [](Reader &r) { r.onValue({Kind::Null}); });
    },
    // boolean
    [](void *ctx, int b) {
        return event(ctx, [b](Reader &r) { r.onValue({Kind::Bool, b != 0}); });
    },
    nullptr, // integer: yajl_number gets every number as text
    nullptr, // double
    // number
    [](void *ctx, const char *s, size_t len) {
        return event(ctx, [s, len](Reader &r) {
            r.onValue({Kind::Number, false, std::string_view(s, len)});
        });
    },
    // string
    [](void *ctx, const unsigned char *s, size_t len) {
        return event(ctx, [s, len](Reader &r) {
            r.onValue({Kind::String, false, r.checkedText(s, len)});
        });
    },
    // start map
    [](void *ctx) {
        return event(ctx, [](Reader &r) { r.onValue({Kind::Map}); });
    },
    // map key
    [](void *ctx, const unsigned char *s, size_t len) {
        return event(ctx,
                     [s, len](Reader &r) { r.onKey(r.checkedText(s, len)); });
    },
    // end map
    [](void *ctx) { return event(ctx, [](Reader &r) { r.onEnd(); }); },
    // start array
    [](void *ctx) {
        return event(ctx, [](Reader &r) { r.onValue({Kind::Array}); });
    },
    // end array
    [](void *ctx) { return event(ctx, [](Reader &r) { r.onEnd(); }); },
};

RouteDocumentParser::Reader::Reader(int format, const Log &log)
    : format_(format), log_(log)
{
    handle_.reset(yajl_alloc(&kCallbacks, nullptr, this));
    if (!handle_) {
        throw std::bad_alloc();
    }
    // strings are validated as UTF-8 by default: leave it so
}

void RouteDocumentParser::Reader::fail(const std::string &msg)
{
    throw Error(msg);
}

// yajl checks only the byte structure of UTF-8; overlongs and surrogates
// pass it, and must not reach names we log or render.
std::string_view
RouteDocumentParser::Reader::checkedText(const unsigned char *s, size_t len)
{
    std::string_view text(reinterpret_cast<const char *>(s), len);

    if (!isValidUtf8(text)) {
        fail("invalid JSON: invalid UTF-8 in a string");
    }
    return text;
}

// Turns a yajl outcome into our error, kept for any later call.
void RouteDocumentParser::Reader::checkParse(yajl_status status,
                                             uint64_t offset)
{
    if (status == yajl_status_error) {
        unsigned char *msg = yajl_get_error(handle_.get(), 0, nullptr, 0);
        std::string text = "invalid JSON at byte " + std::to_string(offset)
                           + ": " + oneLine(msg);
        if (msg != nullptr) {
            yajl_free_error(handle_.get(), msg);
        }
        failure_ = std::make_exception_ptr(Error(text));
    }

    if (failure_) {
        std::rethrow_exception(failure_);
    }
}

void RouteDocumentParser::Reader::feed(const char *data, size_t len)
{
    if (failure_) {
        std::rethrow_exception(failure_);
    }

    if (len == 0) {
        return;
    }

    auto bytes = reinterpret_cast<const unsigned char *>(data);
    yajl_status status = yajl_parse(handle_.get(), bytes, len);

    checkParse(status, offset_ + yajl_get_bytes_consumed(handle_.get()));
    offset_ += len;
}

RouteSet RouteDocumentParser::Reader::finish()
{
    if (failure_) {
        std::rethrow_exception(failure_);
    }

    checkParse(yajl_complete_parse(handle_.get()), offset_);

    if (!statusError_.empty()) {
        throw Error(statusError_);
    }

    // a document's shape is only known at its end
    bool openApi = format_ == DISCOVERY_FORMAT_OPENAPI
                   || (format_ == DISCOVERY_FORMAT_AUTO
                       && (openapiSeen_ || pathsSeen_) && !routesSeen_);
    RouteSet set;

    set.rejected = std::move(rejected_);
    set.rejectedOmitted = rejectedOmitted_;

    if (!openApi) {
        set.version = std::move(version_);
        set.routes = std::move(routes_);
        mergeDuplicates(set.routes);
        return set;
    }

    if (pathsInvalid_) {
        throw Error("\"paths\" is not an object");
    }

    set.version =
        infoVersion_.empty() ? std::move(version_) : std::move(infoVersion_);
    for (OpenApiRoute &r : openApiRoutes_) {
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
    mergeDuplicates(set.routes);
    return set;
}

void RouteDocumentParser::Reader::push(Role role)
{
    // yajl keeps its own stack; ours bounds the document for everyone after
    if (stack_.size() >= kMaxDepth) {
        fail("JSON nested deeper than " + std::to_string(kMaxDepth)
             + " levels");
    }
    stack_.push_back(Frame{role});
}

void RouteDocumentParser::Reader::onValue(const Value &v)
{
    if (stack_.empty()) {
        if (v.kind != Kind::Map) {
            fail("the document is not a JSON object");
        }
        push(Role::Top);
        return;
    }

    Frame &f = stack_.back();
    Field field = f.field;
    uint32_t method = f.method;
    Role child = Role::Skip;

    f.field = Field::None;
    f.method = 0;

    switch (f.role) {
    case Role::Top:
        child = topValue(field, v);
        break;
    case Role::Info:
        if (field == Field::Version) {
            setVersion(infoVersion_, v);
        }
        break;
    case Role::Routes:
        child = entryStart(v);
        break;
    case Role::Entry:
        child = entryValue(field, v);
        break;
    case Role::EntryMethods:
        entryMethod(v);
        break;
    case Role::EntryTags:
        entryTag(v);
        break;
    case Role::Paths:
        child = pathItemStart(v);
        break;
    case Role::PathItem:
        child = operationStart(method, v);
        break;
    case Role::Operation:
        child = operationValue(field, v);
        break;
    case Role::OperationTags:
        operationTag(v);
        break;
    case Role::DocumentSecurity:
    case Role::OperationSecurity:
        securityElement(v);
        child = v.kind == Kind::Map ? Role::Requirement : Role::Skip;
        break;
    case Role::Requirement:
    case Role::Skip:
        break;
    }

    if (v.isContainer()) {
        push(child);
    }
}

void RouteDocumentParser::Reader::onKey(std::string_view key)
{
    Frame &f = stack_.back();

    switch (f.role) {
    case Role::Top:
        f.field = topField(key);
        break;
    case Role::Info:
        f.field = key == "version" ? Field::Version : Field::None;
        break;
    case Role::Entry:
        f.field = key == "path"            ? Field::Path
                  : key == "methods"       ? Field::Methods
                  : key == "name"          ? Field::Name
                  : key == "tags"          ? Field::Tags
                  : key == "auth_required" ? Field::AuthRequired
                  : key == "websocket"     ? Field::Websocket
                                           : Field::None;
        break;
    case Role::Paths:
        pathItemKey(key);
        break;
    case Role::PathItem:
        f.method = operationMethod(key);
        break;
    case Role::Operation:
        f.field = key == "operationId" ? Field::Name
                  : key == "tags"      ? Field::Tags
                  : key == "security"  ? Field::Security
                                       : Field::None;
        break;
    case Role::Requirement:
        f.flag = true;
        break;
    default:
        break;
    }
}

void RouteDocumentParser::Reader::onEnd()
{
    Frame f = stack_.back();

    stack_.pop_back();

    switch (f.role) {
    case Role::Entry:
        finishEntry();
        break;
    case Role::Operation:
        finishOperation();
        break;
    case Role::PathItem:
        finishPathItem();
        break;
    case Role::DocumentSecurity:
        documentSecurity_ = f.flag;
        break;
    case Role::OperationSecurity:
        operation_.security = f.flag;
        break;
    case Role::Requirement:
        // a non-empty requirement object means the operation needs auth
        if (f.flag) {
            stack_.back().flag = true;
        }
        break;
    default:
        break;
    }
}

Field RouteDocumentParser::Reader::topField(std::string_view key) const
{
    bool routes = format_ != DISCOVERY_FORMAT_OPENAPI;
    bool openApi = format_ != DISCOVERY_FORMAT_ROUTES;

    if (key == "status") {
        return Field::Status;
    }
    if (key == "version") {
        return Field::Version;
    }
    if (routes && key == "routes") {
        return Field::Routes;
    }
    if (openApi) {
        return key == "openapi"    ? Field::Openapi
               : key == "paths"    ? Field::Paths
               : key == "security" ? Field::Security
               : key == "info"     ? Field::Info
                                   : Field::None;
    }
    return Field::None;
}

Role RouteDocumentParser::Reader::topValue(Field field, const Value &v)
{
    switch (field) {
    case Field::Status:
        if (v.kind != Kind::String) {
            fail("\"status\" is not a string");
        }
        statusError_ =
            isHealthyStatus(v.text) ? "" : "status " + quoted(v.text, 64);
        return Role::Skip;

    case Field::Version:
        setVersion(version_, v);
        return Role::Skip;

    case Field::Routes:
        routesSeen_ = true;
        if (v.kind != Kind::Array) {
            fail("\"routes\" is not an array");
        }
        return Role::Routes;

    case Field::Openapi:
        openapiSeen_ = true;
        return Role::Skip;

    case Field::Paths:
        pathsSeen_ = true;
        if (v.kind == Kind::Map) {
            return Role::Paths;
        }
        if (format_ == DISCOVERY_FORMAT_OPENAPI) {
            fail("\"paths\" is not an object");
        }
        pathsInvalid_ = true; // fatal only if this turns out to be OpenAPI
        return Role::Skip;

    case Field::Security:
        return v.kind == Kind::Array ? Role::DocumentSecurity : Role::Skip;

    case Field::Info:
        return v.kind == Kind::Map ? Role::Info : Role::Skip;

    default:
        return Role::Skip;
    }
}

void RouteDocumentParser::Reader::setVersion(std::string &version,
                                             const Value &v)
{
    if (v.kind != Kind::String && v.kind != Kind::Number) {
        return;
    }

    if (v.text.size() > kMaxVersionLen) {
        log_.warn("version longer than 256 bytes ignored");
        return;
    }

    version.assign(v.text);
}

/* the route document: {"routes": [{"path": ..., "methods": [...]}]} */

Role RouteDocumentParser::Reader::entryStart(const Value &v)
{
    if (++entryCount_ > kMaxRoutes) {
        fail("too many routes");
    }

    entry_ = EntryDraft();
    entry_.index = entryCount_ - 1;

    if (v.kind != Kind::Map) {
        skipEntry("not an object");
        return Role::Skip;
    }

    return Role::Entry;
}

Role RouteDocumentParser::Reader::entryValue(Field field, const Value &v)
{
    Route &r = entry_.route;

    switch (field) {
    case Field::Path:
        if (v.kind != Kind::String) {
            rejectEntry("\"path\" is not a string");
        } else if (v.text.size() > kMaxPathLen) {
            rejectEntry("path longer than 1024 bytes");
        } else {
            r.path.assign(v.text);
            entry_.hasPath = true;
        }
        return Role::Skip;

    case Field::Methods:
        if (v.kind == Kind::Array) {
            entry_.hasMethods = true;
            return Role::EntryMethods;
        }
        rejectEntry("\"methods\" is not an array");
        return Role::Skip;

    case Field::Name:
        if (v.kind == Kind::String && v.text.size() <= kMaxNameLen) {
            r.name.assign(v.text);
        } else if (v.kind == Kind::String) {
            rejectEntry("name longer than 256 bytes");
        } else if (v.kind != Kind::Null) {
            rejectEntry("\"name\" is not a string");
        }
        return Role::Skip;

    case Field::Tags:
        if (v.kind == Kind::Array) {
            return Role::EntryTags;
        }
        if (v.kind != Kind::Null) {
            rejectEntry("\"tags\" is not an array");
        }
        return Role::Skip;

    case Field::AuthRequired:
    case Field::Websocket:
        if (v.kind == Kind::Bool) {
            (field == Field::AuthRequired ? r.authRequired : r.websocket) =
                v.boolean;
        } else if (v.kind != Kind::Null) {
            rejectEntry(field == Field::AuthRequired
                            ? "\"auth_required\" is not a boolean"
                            : "\"websocket\" is not a boolean");
        }
        return Role::Skip;

    default:
        return Role::Skip; // "description" and anything unknown
    }
}

void RouteDocumentParser::Reader::entryMethod(const Value &v)
{
    if (v.kind != Kind::String) {
        rejectEntry("method is not a string");
        return;
    }

    uint32_t bit = methodBitIgnoreCase(v.text);

    if (bit != 0) {
        entry_.route.methods |= bit;
        return;
    }

    if (!isMethodToken(v.text)) {
        rejectEntry("invalid method " + quoted(v.text, kMaxMethodLen));
        return;
    }

    // as Starlette has them: it upper-cases the methods a route declares
    std::string name(v.text);
    for (char &c : name) {
        if (c >= 'a' && c <= 'z') {
            c = static_cast<char>(c - 'a' + 'A');
        }
    }

    if (!addExtensionMethod(entry_.route.extensionMethods, std::move(name))) {
        rejectEntry("more than "
                    + std::to_string(kMaxRouteExtensionMethods)
                    + " extension methods");
    }
}

void RouteDocumentParser::Reader::entryTag(const Value &v)
{
    std::string error;

    if (v.kind != Kind::String) {
        rejectEntry("tag is not a string");
    } else if (!addTag(entry_.route.tags, v.text, error)) {
        rejectEntry(error);
    }
}

void RouteDocumentParser::Reader::rejectEntry(const std::string &reason)
{
    if (entry_.error.empty()) {
        entry_.error = reason;
    }
}

void RouteDocumentParser::Reader::finishEntry()
{
    Route &r = entry_.route;
    Template tpl;

    if (!entry_.error.empty()) {
        skipEntry(entry_.error);
    } else if (!entry_.hasPath) {
        skipEntry("no \"path\"");
    } else if (!compileTemplate(r.path, tpl)) {
        skipEntry("invalid template " + quoted(r.path));
    } else if (entry_.hasMethods && r.methods == 0
               && r.extensionMethods.empty()) {
        skipEntry("no method");
    } else {
        if (!entry_.hasMethods) {
            r.methods = kGet;
        }
        routes_.push_back(std::move(r));
    }
}

void RouteDocumentParser::Reader::skipEntry(const std::string &reason)
{
    const Route &r = entry_.route;
    reject(r.path, r.methods,
           "route #" + std::to_string(entry_.index) + ": " + reason,
           r.extensionMethods);
}

/*
 * An entry turned away goes with the route set, not to the log: the table
 * warns about it once, when it first appears, and the status page lists
 * it, however often an unchanged document is polled.
 */
void RouteDocumentParser::Reader::reject(const std::string &path,
                                         uint32_t methods, std::string reason,
                                         const MethodNames &extension)
{
    if (rejected_.size() >= kMaxRejected) {
        rejectedOmitted_++;
        return;
    }

    rejected_.push_back({path.substr(0, kMaxPathLen), methods, extension,
                         std::move(reason)});
}

/* OpenAPI: {"paths": {"/x": {"get": {"operationId": ..., "security": []}}}} */

void RouteDocumentParser::Reader::pathItemKey(std::string_view key)
{
    if (++pathItemCount_ > kMaxRoutes) {
        fail("too many routes");
    }

    pathItem_ = PathDraft();
    pathItem_.index = pathItemCount_ - 1;
    pathItem_.tooLong = key.size() > kMaxPathLen;
    pathItem_.path.assign(key.substr(0, pathItem_.tooLong ? 0 : key.size()));
}

Role RouteDocumentParser::Reader::pathItemStart(const Value &v)
{
    if (v.kind == Kind::Map) {
        return Role::PathItem;
    }

    skipPathItem("not an object");
    return Role::Skip;
}

Role RouteDocumentParser::Reader::operationStart(uint32_t method,
                                                 const Value &v)
{
    if (method == 0 || v.kind != Kind::Map) {
        return Role::Skip; // "parameters", "summary", ...
    }

    operation_ = OperationDraft();
    operation_.method = method;
    return Role::Operation;
}

Role RouteDocumentParser::Reader::operationValue(Field field, const Value &v)
{
    OperationDraft &op = operation_;

    switch (field) {
    case Field::Name:
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

void RouteDocumentParser::Reader::operationTag(const Value &v)
{
    std::string error;

    if (v.kind != Kind::String) {
        rejectOperation("tag is not a string");
    } else if (!addTag(operation_.tags, v.text, error)) {
        rejectOperation(error);
    }
}

void RouteDocumentParser::Reader::rejectOperation(const std::string &reason)
{
    if (operation_.error.empty()) {
        operation_.error = reason;
    }
}

// Anything but an empty object {} in a security array requires auth; the
// Requirement frame reports non-empty objects when it closes.
void RouteDocumentParser::Reader::securityElement(const Value &v)
{
    if (v.kind != Kind::Map) {
        stack_.back().flag = true;
    }
}

void RouteDocumentParser::Reader::finishOperation()
{
    OperationDraft &op = operation_;
    Route &r = pathItem_.route;

    if (!op.error.empty()) {
        reject(pathItem_.path, op.method,
               "path #" + std::to_string(pathItem_.index) + " operation "
                   + std::string(methodName(__builtin_ctz(op.method))) + ": "
                   + op.error);
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

void RouteDocumentParser::Reader::finishPathItem()
{
    Template tpl;

    if (pathItem_.tooLong) {
        skipPathItem("path longer than 1024 bytes");
    } else if (pathItem_.route.methods == 0) {
        return; // no operations: nothing to route
    } else if (!compileTemplate(pathItem_.path, tpl)) {
        skipPathItem("invalid template " + quoted(pathItem_.path));
    } else {
        pathItem_.route.path = std::move(pathItem_.path);
        openApiRoutes_.push_back({std::move(pathItem_.route),
                                  pathItem_.securedMethods,
                                  pathItem_.inheritingMethods});
    }
}

void RouteDocumentParser::Reader::skipPathItem(const std::string &reason)
{
    reject(pathItem_.path, pathItem_.route.methods,
           "path #" + std::to_string(pathItem_.index) + ": " + reason);
}

RouteDocumentParser::RouteDocumentParser(int format, const Log &log)
    : reader_(std::make_unique<Reader>(format, log))
{
}

RouteDocumentParser::~RouteDocumentParser() = default;

void RouteDocumentParser::feed(const char *data, size_t len)
{
    reader_->feed(data, len);
}

RouteSet RouteDocumentParser::finish()
{
    return reader_->finish();
}

} // namespace discovery
