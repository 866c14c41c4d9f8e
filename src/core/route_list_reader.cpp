// route_list_reader.cpp: reads {"routes": [{"path": ..., "methods": [...]}]}.
#include "route_list_reader.hpp"

#include "error.hpp"
#include "grpc_reflection.hpp"
#include "json_escape.hpp"
#include "methods.hpp"
#include "route_template.hpp"

#include <utility>

namespace discovery {

namespace {

// What a container is, from where it sits in the document.
enum class Role : uint8_t {
    Skip = kSkip,
    Routes, // the top-level array
    Entry,  // one of its objects
    EntryMethods,
    EntryTags,
};

// The member of an object whose value comes next.
enum class Field : uint8_t {
    None = kNone,
    Routes,
    Path,
    Methods,
    Name,
    Tags,
    AuthRequired,
    Websocket,
    Protocol,
    Streaming,
};

struct EntryDraft {
    size_t index = 0;
    Route route;
    bool hasPath = false;
    bool hasMethods = false;
    bool hasStreaming = false;
    std::string error; // the first reason to skip the entry
};

class RouteListReader final : public Grammar {
public:
    explicit RouteListReader(RejectedRoutes &rejected) : rejected_(rejected) {}

    uint8_t topKey(std::string_view key) override;
    uint8_t topValue(uint8_t field, const Value &v) override;
    uint8_t onValue(Frame &frame, const Value &v) override;
    void onKey(Frame &frame, std::string_view key) override;
    void onEnd(const Frame &frame, Frame &parent) override;
    bool present() const override { return routesSeen_; }
    void finish(RouteSet &set) override;

private:
    Role entryStart(const Value &v);
    Role entryValue(Field field, const Value &v);
    void entryMethod(const Value &v);
    void entryTag(const Value &v);
    void rejectEntry(const std::string &reason);
    void finishEntry();
    void skipEntry(const std::string &reason);

    RejectedRoutes &rejected_;
    bool routesSeen_ = false;
    size_t entryCount_ = 0;
    EntryDraft entry_;
    std::vector<Route> routes_;
};

uint8_t RouteListReader::topKey(std::string_view key)
{
    return static_cast<uint8_t>(key == "routes" ? Field::Routes : Field::None);
}

uint8_t RouteListReader::topValue(uint8_t, const Value &v)
{
    routesSeen_ = true;
    if (v.kind != Kind::Array) {
        throw Error("\"routes\" is not an array");
    }
    return static_cast<uint8_t>(Role::Routes);
}

uint8_t RouteListReader::onValue(Frame &frame, const Value &v)
{
    Role child = Role::Skip;

    switch (static_cast<Role>(frame.role)) {
    case Role::Routes:
        child = entryStart(v);
        break;
    case Role::Entry:
        child = entryValue(static_cast<Field>(frame.field), v);
        break;
    case Role::EntryMethods:
        entryMethod(v);
        break;
    case Role::EntryTags:
        entryTag(v);
        break;
    case Role::Skip:
        break;
    }

    return static_cast<uint8_t>(child);
}

void RouteListReader::onKey(Frame &frame, std::string_view key)
{
    if (static_cast<Role>(frame.role) != Role::Entry) {
        return;
    }

    Field field = key == "path"            ? Field::Path
                  : key == "methods"       ? Field::Methods
                  : key == "name"          ? Field::Name
                  : key == "tags"          ? Field::Tags
                  : key == "auth_required" ? Field::AuthRequired
                  : key == "websocket"     ? Field::Websocket
                  : key == "protocol"      ? Field::Protocol
                  : key == "streaming"     ? Field::Streaming
                                           : Field::None;
    frame.field = static_cast<uint8_t>(field);
}

void RouteListReader::onEnd(const Frame &frame, Frame &)
{
    if (static_cast<Role>(frame.role) == Role::Entry) {
        finishEntry();
    }
}

void RouteListReader::finish(RouteSet &set)
{
    set.routes = std::move(routes_);
}

Role RouteListReader::entryStart(const Value &v)
{
    if (++entryCount_ > kMaxRoutes) {
        throw Error("too many routes");
    }

    entry_ = EntryDraft();
    entry_.index = entryCount_ - 1;

    if (v.kind != Kind::Map) {
        skipEntry("not an object");
        return Role::Skip;
    }

    return Role::Entry;
}

Role RouteListReader::entryValue(Field field, const Value &v)
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

    case Field::Protocol:
        if (v.kind == Kind::String && (v.text == "grpc" || v.text == "http")) {
            r.protocol = v.text == "grpc" ? Protocol::Grpc : Protocol::Http;
        } else if (v.kind != Kind::Null) {
            rejectEntry("\"protocol\" is not \"http\" or \"grpc\"");
        }
        return Role::Skip;

    case Field::Streaming:
        if (v.kind == Kind::String && parseStreaming(v.text, r.streaming)) {
            entry_.hasStreaming = true;
        } else if (v.kind != Kind::Null) {
            rejectEntry("\"streaming\" is not \"unary\", \"client\", "
                        "\"server\" or \"bidi\"");
        }
        return Role::Skip;

    default:
        return Role::Skip; // "description" and anything unknown
    }
}

void RouteListReader::entryMethod(const Value &v)
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
        rejectEntry("more than " + std::to_string(kMaxRouteExtensionMethods)
                    + " extension methods");
    }
}

void RouteListReader::entryTag(const Value &v)
{
    std::string error;

    if (v.kind != Kind::String) {
        rejectEntry("tag is not a string");
    } else if (!addTag(entry_.route.tags, v.text, error)) {
        rejectEntry(error);
    }
}

void RouteListReader::rejectEntry(const std::string &reason)
{
    if (entry_.error.empty()) {
        entry_.error = reason;
    }
}

void RouteListReader::finishEntry()
{
    Route &r = entry_.route;
    Template tpl;
    std::string why;

    if (!entry_.error.empty()) {
        skipEntry(entry_.error);
    } else if (!entry_.hasPath) {
        skipEntry("no \"path\"");
    } else if (!compileTemplate(r.path, tpl, &why)) {
        skipEntry("invalid template " + quoted(r.path) + ": " + why);
    } else if (entry_.hasMethods && r.methods == 0
               && r.extensionMethods.empty()) {
        skipEntry("no method");
    } else if (r.protocol == Protocol::Grpc && !isGrpcPath(r.path)) {
        skipEntry("a gRPC route's path is /package.Service/Method");
    } else if (r.protocol == Protocol::Grpc && entry_.hasMethods
               && (r.methods != kPost || !r.extensionMethods.empty())) {
        skipEntry("a gRPC route takes POST only");
    } else if (r.protocol != Protocol::Grpc && entry_.hasStreaming) {
        skipEntry("\"streaming\" without \"protocol\": \"grpc\"");
    } else if (r.protocol == Protocol::Grpc && r.websocket) {
        skipEntry("a gRPC route is no websocket");
    } else if (r.protocol == Protocol::Grpc) {
        r.methods = kPost;
        routes_.push_back(std::move(r));
    } else {
        if (!entry_.hasMethods) {
            r.methods = kGet;
        }
        routes_.push_back(std::move(r));
    }
}

void RouteListReader::skipEntry(const std::string &reason)
{
    const Route &r = entry_.route;
    rejected_.add(r.path, r.methods,
                  "route #" + std::to_string(entry_.index) + ": " + reason,
                  r.extensionMethods);
}

} // namespace

std::unique_ptr<Grammar> makeRouteListReader(RejectedRoutes &rejected)
{
    return std::make_unique<RouteListReader>(rejected);
}

} // namespace discovery
