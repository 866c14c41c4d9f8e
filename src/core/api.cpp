// api.cpp: the management API's requests, answered from the table, the
// zone's controls and the worker's router.
#include "api.hpp"

#include "json_writer.hpp"
#include "methods.hpp"
#include "request_path.hpp"
#include "route_template.hpp"

#include <yajl/yajl_tree.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <optional>

namespace discovery {

namespace {

constexpr int64_t kMaxExpires = 10LL * 365 * 24 * 3600;

// An answer other than 200, as the API's errors are.
struct ApiFailure {
    int status;
    std::string code;
    std::string text;
};

// %XX decoded, and '+' as a space in a query.
std::string urlDecode(std::string_view s, bool query)
{
    std::string out;
    out.reserve(s.size());

    for (size_t i = 0; i < s.size(); i++) {
        if (s[i] == '%' && i + 2 < s.size() + 0 && hexValue(s[i + 1]) >= 0
            && hexValue(s[i + 2]) >= 0) {
            out +=
                static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2]));
            i += 2;
        } else if (query && s[i] == '+') {
            out += ' ';
        } else {
            out += s[i];
        }
    }
    return out;
}

std::optional<std::string> queryArg(std::string_view query,
                                    std::string_view name)
{
    while (!query.empty()) {
        size_t amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        size_t eq = pair.find('=');
        if (urlDecode(pair.substr(0, eq), true) == name) {
            return eq == std::string_view::npos
                       ? std::string()
                       : urlDecode(pair.substr(eq + 1), true);
        }
        if (amp == std::string_view::npos) {
            break;
        }
        query = query.substr(amp + 1);
    }
    return std::nullopt;
}

bool isGrpcType(std::string_view type)
{
    std::string_view grpc = "application/grpc";
    if (type.size() < grpc.size()) {
        return false;
    }
    for (size_t i = 0; i < grpc.size(); i++) {
        if (std::tolower(static_cast<unsigned char>(type[i])) != grpc[i]) {
            return false;
        }
    }
    return type.size() == grpc.size() || type[grpc.size()] == '+'
           || type[grpc.size()] == ';' || type[grpc.size()] == ' ';
}

bool isJsonType(std::string_view type)
{
    std::string lower;
    for (char c : type.substr(0, type.find(';'))) {
        if (c != ' ' && c != '\t') {
            lower +=
                static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
    }
    return lower == "application/json";
}

// "https://host:port" against the Host header, default ports allowed for.
bool sameOrigin(std::string_view origin, std::string_view host)
{
    size_t scheme = origin.find("://");
    if (scheme == std::string_view::npos) {
        return false;
    }
    std::string_view name = origin.substr(scheme + 3);
    std::string_view kind = origin.substr(0, scheme);
    auto lower = [](std::string_view s) {
        std::string out;
        for (char c : s) {
            out +=
                static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        return out;
    };
    std::string a = lower(name);
    std::string b = lower(host);
    if (a == b) {
        return true;
    }
    std::string port = kind == "https" ? ":443" : ":80";
    return a == b + port || a + port == b;
}

const Service *findService(const Snapshot *table, std::string_view name)
{
    if (table == nullptr) {
        return nullptr;
    }
    for (const Service &s : table->services) {
        if (s.name == name) {
            return &s;
        }
    }
    return nullptr;
}

const ServiceStats *findStats(const ApiView &view, std::string_view name)
{
    for (const ServiceStats &st : view.stats) {
        if (st.name == name) {
            return &st;
        }
    }
    return nullptr;
}

void writeServiceOf(JsonWriter &w, const ApiView &view, uint32_t index)
{
    const Service &s = view.table->services[index];
    const ServiceStats *st = findStats(view, s.name);
    const ServiceStats none;
    writeService(w, *view.table, index, st != nullptr ? *st : none,
                 view.controls.isDrained(s.name));
}

std::string shapeOf(std::string_view path)
{
    Template tpl;
    return compileTemplate(path, tpl) ? templateShape(tpl) : std::string();
}

bool routeTakes(const Route &r, std::string_view method)
{
    uint32_t bit = methodBit(method);
    if (bit != 0) {
        uint32_t methods = r.methods;
        if (methods & kGet) {
            methods |= kHead;
        }
        return (methods & bit) != 0;
    }
    return std::find(r.extensionMethods.begin(), r.extensionMethods.end(),
                     method)
           != r.extensionMethods.end();
}

bool overlaps(const Override &o, const Route &r)
{
    for (const std::string &m : o.methods) {
        if (m == "*" || routeTakes(r, m)) {
            return true;
        }
    }
    return false;
}

// The override a route of this shape is subject to: disable, then pin.
const Override *overrideOf(const Controls &c, const std::string &shape,
                           const Route &r)
{
    for (OverrideAction action :
         {OverrideAction::Disable, OverrideAction::Pin}) {
        for (const Override &o : c.overrides) {
            if (o.action == action && shapeOf(o.path) == shape
                && overlaps(o, r)) {
                return &o;
            }
        }
    }
    return nullptr;
}

void writeOverrideRef(JsonWriter &w, const Override *o)
{
    if (o == nullptr) {
        w.null();
        return;
    }
    w.beginObject();
    w.key("id");
    w.string(o->id);
    w.key("action");
    w.string(actionName(o->action));
    w.endObject();
}

void writeOverrideMethods(JsonWriter &w, const Override &o)
{
    w.beginArray();
    for (const std::string &m : o.methods) {
        w.string(m);
    }
    w.endArray();
}

bool isRejected(const Snapshot &t, uint32_t s, uint32_t r,
                const Rejection **why = nullptr)
{
    for (const Rejection &j : t.rejections) {
        if (j.service == s && j.route == r) {
            if (why != nullptr) {
                *why = &j;
            }
            return true;
        }
    }
    return false;
}

// ---------------------------------------------------------------- bodies

struct YajlFree {
    void operator()(yajl_val v) const { yajl_tree_free(v); }
};
using Tree = std::unique_ptr<std::remove_pointer_t<yajl_val>, YajlFree>;

// yajl's tree keeps strings NUL-terminated, without their length: a
// "\u0000" would cut a path or a reason short, and a raw NUL the body.
bool holdsNul(std::string_view body)
{
    bool inString = false;

    for (size_t i = 0; i < body.size(); i++) {
        char c = body[i];
        if (c == '\0') {
            return true;
        }
        if (c == '"') {
            inString = !inString;
        } else if (inString && c == '\\' && i + 1 < body.size()) {
            if (body.compare(i + 1, 5, "u0000") == 0) {
                return true;
            }
            i++;
        }
    }
    return false;
}

Tree parseObject(std::string_view body)
{
    if (holdsNul(body)) {
        throw ApiFailure{400, "MalformedJson",
                         "the body holds a NUL character (\\u0000)"};
    }

    std::string text(body);
    char err[256];
    err[0] = '\0';
    yajl_val v = yajl_tree_parse(text.c_str(), err, sizeof(err));

    if (v == nullptr) {
        // yajl's first line says what; the rest draws where
        std::string why(err, std::strcspn(err, "\n"));
        while (!why.empty() && why.back() == ' ') {
            why.pop_back();
        }
        throw ApiFailure{400, "MalformedJson",
                         "the body is not valid JSON"
                             + (why.empty() ? std::string() : ": " + why)};
    }
    Tree tree(v);
    if (!YAJL_IS_OBJECT(v)) {
        throw ApiFailure{400, "MalformedJson", "the body is not a JSON object"};
    }
    if (!isValidUtf8(body)) {
        throw ApiFailure{400, "MalformedJson", "the body is not valid UTF-8"};
    }
    return tree;
}

[[noreturn]] void badField(const std::string &text)
{
    throw ApiFailure{400, "BadField", text};
}

std::string stringField(yajl_val v, const char *name, size_t max)
{
    if (!YAJL_IS_STRING(v)) {
        badField(std::string("\"") + name + "\" must be a string");
    }
    std::string s = YAJL_GET_STRING(v);
    if (s.size() > max) {
        badField(std::string("\"") + name + "\" is longer than "
                 + std::to_string(max) + " bytes");
    }
    return s;
}

Override parseOverride(std::string_view body, const ApiView &view, int64_t now)
{
    Tree tree = parseObject(body);
    yajl_val obj = tree.get();
    Override o;
    bool haveAction = false;
    bool havePath = false;
    bool haveMethods = false;

    for (size_t i = 0; i < obj->u.object.len; i++) {
        std::string key = obj->u.object.keys[i];
        yajl_val v = obj->u.object.values[i];

        if (key == "action") {
            std::string a = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : "";
            if (a == "disable") {
                o.action = OverrideAction::Disable;
            } else if (a == "pin") {
                o.action = OverrideAction::Pin;
            } else if (a == "add") {
                o.action = OverrideAction::Add;
            } else {
                throw ApiFailure{400, "UnknownAction",
                                 "\"action\" must be \"disable\", \"pin\" or "
                                 "\"add\""};
            }
            haveAction = true;
        } else if (key == "path") {
            if (!YAJL_IS_STRING(v)) {
                throw ApiFailure{400, "BadTemplate",
                                 "\"path\" must be a route template"};
            }
            o.path = YAJL_GET_STRING(v);
            std::string why;
            Template tpl;
            if (o.path.size() > kMaxPathLen) {
                throw ApiFailure{400, "BadTemplate",
                                 "\"path\" is longer than "
                                     + std::to_string(kMaxPathLen) + " bytes"};
            }
            if (!compileTemplate(o.path, tpl, &why)) {
                throw ApiFailure{400, "BadTemplate",
                                 "\"path\" is not a route template: " + why};
            }
            havePath = true;
        } else if (key == "methods") {
            if (!YAJL_IS_ARRAY(v) || v->u.array.len == 0
                || v->u.array.len > kMaxOverrideMethods) {
                throw ApiFailure{400, "BadMethods",
                                 "\"methods\" must be a list of 1 to 16 "
                                 "methods, or [\"*\"]"};
            }
            for (size_t j = 0; j < v->u.array.len; j++) {
                yajl_val m = v->u.array.values[j];
                std::string name = YAJL_IS_STRING(m) ? YAJL_GET_STRING(m) : "";
                for (char &c : name) {
                    c = static_cast<char>(
                        std::toupper(static_cast<unsigned char>(c)));
                }
                if (name == "*" ? v->u.array.len != 1 : !isMethodToken(name)) {
                    throw ApiFailure{400, "BadMethods",
                                     "\"methods\" must be method names, or "
                                     "[\"*\"] alone"};
                }
                if (std::find(o.methods.begin(), o.methods.end(), name)
                    == o.methods.end()) {
                    o.methods.push_back(name);
                }
            }
            haveMethods = true;
        } else if (key == "service") {
            if (!YAJL_IS_NULL(v)) {
                o.service = stringField(v, "service", kMaxNameLen);
            }
        } else if (key == "reason") {
            if (!YAJL_IS_NULL(v)) {
                o.reason = stringField(v, "reason", kMaxReasonTextLen);
            }
        } else if (key == "expires") {
            if (YAJL_IS_NULL(v)) {
                continue;
            }
            if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) <= 0
                || YAJL_GET_INTEGER(v) > kMaxExpires) {
                badField("\"expires\" must be a number of seconds, from 1 to "
                         "10 years, or null");
            }
            o.expires = now + YAJL_GET_INTEGER(v);
        } else if (key == "id" || key == "created") {
            badField("\"" + key + "\" is set by the gateway");
        } else {
            badField("unknown field \"" + key + "\"");
        }
    }

    if (!haveAction) {
        throw ApiFailure{400, "UnknownAction",
                         "\"action\" is missing: \"disable\", \"pin\" or "
                         "\"add\""};
    }
    if (!havePath) {
        throw ApiFailure{400, "BadTemplate", "\"path\" is missing"};
    }
    if (!haveMethods) {
        o.methods = {"*"};
    }
    if (o.service.empty() && o.action != OverrideAction::Disable) {
        badField(std::string("\"service\" is required for ")
                 + actionName(o.action));
    }
    if (!o.service.empty() && findService(view.table, o.service) == nullptr) {
        throw ApiFailure{400, "UnknownService",
                         "no service \"" + o.service + "\" is configured"};
    }
    o.created = now;
    return o;
}

bool parseDrain(std::string_view body)
{
    Tree tree = parseObject(body);
    yajl_val obj = tree.get();
    std::optional<bool> drain;

    for (size_t i = 0; i < obj->u.object.len; i++) {
        std::string key = obj->u.object.keys[i];
        yajl_val v = obj->u.object.values[i];
        if (key != "drain") {
            badField("unknown field \"" + key + "\"");
        }
        if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v)) {
            badField("\"drain\" must be true or false");
        }
        drain = YAJL_IS_TRUE(v);
    }
    if (!drain) {
        badField("\"drain\" is missing");
    }
    return *drain;
}

// ---------------------------------------------------------------- reads

std::string renderRoot(const ApiRequest &req, const ApiView &view)
{
    JsonWriter w;
    w.beginObject();
    w.key("api_version");
    w.number(1);
    w.key("module_version");
    w.stringOrNull(req.moduleVersion);
    w.key("write");
    w.boolean(req.write);
    w.key("overrides_persist");
    w.string(req.persistRestart ? "restart" : "reload");
    w.key("generation");
    w.number(view.table != nullptr ? view.table->generation : 0);
    w.endObject();
    return w.take();
}

std::string renderServices(const ApiView &view)
{
    JsonWriter w;
    w.beginObject();
    w.key("generation");
    w.number(view.table != nullptr ? view.table->generation : 0);
    w.key("services");
    w.beginArray();
    if (view.table != nullptr) {
        for (uint32_t i = 0; i < view.table->services.size(); i++) {
            writeServiceOf(w, view, i);
        }
    }
    w.endArray();
    w.endObject();
    return w.take();
}

std::string renderService(const ApiView &view, std::string_view name)
{
    for (uint32_t i = 0;
         view.table != nullptr && i < view.table->services.size(); i++) {
        if (view.table->services[i].name == name) {
            JsonWriter w;
            writeServiceOf(w, view, i);
            return w.take();
        }
    }
    throw ApiFailure{404, "ServiceNotFound",
                     "no service \"" + std::string(name) + "\" is configured"};
}

void writeRouteEntry(JsonWriter &w, const ApiView &view, const Route &r,
                     std::string_view service, const Override *o)
{
    const Service *s = findService(view.table, service);
    w.beginObject();
    w.key("path");
    w.string(r.path);
    w.key("methods");
    writeRouteMethods(w, r.methods, r.extensionMethods);
    w.key("service");
    w.stringOrNull(service);
    w.key("state");
    w.string(stateName(s != nullptr ? s->state : ServiceState::Pending));
    w.key("drained");
    w.boolean(!service.empty() && view.controls.isDrained(service));
    w.key("name");
    w.stringOrNull(r.name);
    w.key("tags");
    w.beginArray();
    for (const std::string &tag : r.tags) {
        w.string(tag);
    }
    w.endArray();
    w.key("auth_required");
    w.boolean(r.authRequired);
    w.key("protocol");
    w.string(r.protocol == Protocol::Grpc ? "grpc" : "http");
    w.key("override");
    writeOverrideRef(w, o);
    w.endObject();
}

std::string renderRoutes(const ApiRequest &req, const ApiView &view)
{
    std::optional<std::string> service = queryArg(req.query, "service");
    std::optional<std::string> path = queryArg(req.query, "path");
    std::optional<std::string> method = queryArg(req.query, "method");
    auto keep = [&](std::string_view owner, const std::string &tpl,
                    auto takes) {
        if (service && !service->empty() && owner != *service) {
            return false;
        }
        if (path && !path->empty()) {
            Template t;
            if (!compileTemplate(tpl, t) || !templateMatches(t, *path)) {
                return false;
            }
        }
        return !method || method->empty() || takes(*method);
    };

    JsonWriter w;
    std::vector<const Override *> shown;
    w.beginObject();
    w.key("generation");
    w.number(view.table != nullptr ? view.table->generation : 0);
    w.key("routes");
    w.beginArray();

    if (view.table != nullptr) {
        const Snapshot &t = *view.table;
        for (uint32_t s = 0; s < t.services.size(); s++) {
            const Service &svc = t.services[s];
            for (uint32_t i = 0; i < svc.routeSet.routes.size(); i++) {
                const Route &r = svc.routeSet.routes[i];
                if (isRejected(t, s, i)) {
                    continue;
                }
                const Override *o =
                    overrideOf(view.controls, shapeOf(r.path), r);
                if (o != nullptr) {
                    shown.push_back(o);
                }
                if (keep(svc.name, r.path, [&r](const std::string &m) {
                        return routeTakes(r, m);
                    })) {
                    writeRouteEntry(w, view, r, svc.name, o);
                }
            }
        }
    }

    // overrides no published route shows: added routes, and the others
    for (const Override &o : view.controls.overrides) {
        if (std::find(shown.begin(), shown.end(), &o) != shown.end()) {
            continue;
        }
        if (!keep(o.service, o.path,
                  [&o](const std::string &m) { return overrideTakes(o, m); })) {
            continue;
        }
        w.beginObject();
        w.key("path");
        w.string(o.path);
        w.key("methods");
        writeOverrideMethods(w, o);
        w.key("service");
        w.stringOrNull(o.service);
        const Service *s = findService(view.table, o.service);
        w.key("state");
        w.string(stateName(s != nullptr ? s->state : ServiceState::Pending));
        w.key("drained");
        w.boolean(!o.service.empty() && view.controls.isDrained(o.service));
        w.key("name");
        w.null();
        w.key("tags");
        w.beginArray();
        w.endArray();
        w.key("auth_required");
        w.boolean(false);
        w.key("protocol");
        w.string("http");
        w.key("override");
        writeOverrideRef(w, &o);
        w.endObject();
    }
    w.endArray();

    w.key("conflicts");
    w.beginArray();
    if (view.table != nullptr) {
        for (const Conflict &c : view.table->conflicts) {
            writeConflict(w, *view.table, c);
        }
    }
    w.endArray();
    w.key("overlaps");
    w.beginArray();
    if (view.table != nullptr) {
        for (const Overlap &o : view.table->overlaps) {
            writeOverlap(w, *view.table, o);
        }
    }
    w.endArray();
    w.endObject();
    return w.take();
}

std::string renderOverrides(const ApiRequest &req, const Controls &c)
{
    JsonWriter w;
    w.beginObject();
    w.key("overrides_persist");
    w.string(req.persistRestart ? "restart" : "reload");
    w.key("overrides");
    w.beginArray();
    for (const Override &o : c.overrides) {
        writeOverride(w, o);
    }
    w.endArray();
    w.endObject();
    return w.take();
}

// ---------------------------------------------------------------- explain

// A route that matched the path, and what became of it.
struct Candidate {
    std::string service;
    std::string route;
    std::string methods; // JSON array, written
    std::string shape;
    const Override *override = nullptr; // an override's own entry
    const Route *own = nullptr;         // a published route
    std::string rejected;               // why it is not routed at all
    bool won = false;
    std::string why;
};

const char *kindWord(SegmentKind kind)
{
    switch (kind) {
    case SegmentKind::Literal:
        return "literal";
    case SegmentKind::Str:
        return "plain";
    case SegmentKind::Path:
        return "path";
    default:
        return "typed";
    }
}

int precedenceRank(SegmentKind kind)
{
    switch (kind) {
    case SegmentKind::Literal:
        return 0;
    case SegmentKind::Int:
        return 1;
    case SegmentKind::Float:
        return 2;
    case SegmentKind::Uuid:
        return 3;
    case SegmentKind::Str:
        return 4;
    default:
        return 5;
    }
}

// Why template `a` takes precedence over `b` for a path both match.
std::string precedence(std::string_view a, std::string_view b)
{
    Template ta;
    Template tb;
    if (!compileTemplate(a, ta) || !compileTemplate(b, tb)) {
        return "it takes precedence";
    }
    for (size_t i = 0; i < ta.segments.size() && i < tb.segments.size(); i++) {
        SegmentKind ka = ta.segments[i].kind;
        SegmentKind kb = tb.segments[i].kind;
        if (precedenceRank(ka) != precedenceRank(kb)) {
            return std::string("its ") + kindWord(ka) + " segment "
                   + std::to_string(i + 1) + " takes precedence over a "
                   + kindWord(kb) + " one (literal, typed, plain, path)";
        }
    }
    return "it takes precedence (literal, typed, plain, path)";
}

std::string methodsJson(const Route &r)
{
    JsonWriter w;
    writeRouteMethods(w, r.methods, r.extensionMethods);
    return w.take();
}

std::string methodsJson(const Override &o)
{
    JsonWriter w;
    writeOverrideMethods(w, o);
    return w.take();
}

std::string methodsJson(uint32_t methods, const MethodNames &ext)
{
    JsonWriter w;
    writeRouteMethods(w, methods, ext);
    return w.take();
}

std::vector<Candidate> candidatesFor(const Snapshot &t, const Controls &c,
                                     std::string_view path)
{
    std::vector<Candidate> out;
    auto matches = [path](std::string_view tpl) {
        Template t;
        return compileTemplate(tpl, t) && templateMatches(t, path);
    };

    for (const Override &o : c.overrides) {
        if (o.action != OverrideAction::Add && matches(o.path)) {
            Candidate k;
            k.service = o.service;
            k.route = o.path;
            k.methods = methodsJson(o);
            k.shape = shapeOf(o.path);
            k.override = &o;
            out.push_back(std::move(k));
        }
    }
    for (uint32_t s = 0; s < t.services.size(); s++) {
        const Service &svc = t.services[s];
        for (uint32_t i = 0; i < svc.routeSet.routes.size(); i++) {
            const Route &r = svc.routeSet.routes[i];
            if (!matches(r.path)) {
                continue;
            }
            Candidate k;
            k.service = svc.name;
            k.route = r.path;
            k.methods = methodsJson(r);
            k.shape = shapeOf(r.path);
            k.own = &r;
            const Rejection *why = nullptr;
            if (isRejected(t, s, i, &why)) {
                k.rejected = "not routed: " + why->reason;
            }
            out.push_back(std::move(k));
        }
        for (const RejectedRoute &r : svc.routeSet.rejected) {
            if (!matches(r.path)) {
                continue;
            }
            Candidate k;
            k.service = svc.name;
            k.route = r.path;
            k.methods = methodsJson(r.methods, r.extensionMethods);
            k.shape = shapeOf(r.path);
            k.rejected = "rejected when polled: " + r.reason;
            out.push_back(std::move(k));
        }
    }
    for (const Override &o : c.overrides) {
        if (o.action == OverrideAction::Add && matches(o.path)) {
            Candidate k;
            k.service = o.service;
            k.route = o.path;
            k.methods = methodsJson(o);
            k.shape = shapeOf(o.path);
            k.override = &o;
            out.push_back(std::move(k));
        }
    }
    return out;
}

bool candidateTakes(const Candidate &k, std::string_view method)
{
    if (k.override != nullptr) {
        return overrideTakes(*k.override, method);
    }
    return k.own != nullptr && routeTakes(*k.own, method);
}

std::string renderExplain(const ApiRequest &req, const ApiView &view)
{
    std::optional<std::string> method = queryArg(req.query, "method");
    std::optional<std::string> raw = queryArg(req.query, "path");
    std::optional<std::string> type = queryArg(req.query, "content_type");

    if (!method || method->empty() || !raw || raw->empty()) {
        throw ApiFailure{400, "BadRequest",
                         "explain needs the arguments method and path"};
    }
    if (!isMethodToken(*method)) {
        throw ApiFailure{400, "BadRequest", "method is not a method name"};
    }
    if ((*raw)[0] != '/') {
        throw ApiFailure{400, "BadRequest", "path does not start with \"/\""};
    }

    std::string path = urlDecode(raw->substr(0, raw->find('?')), false);
    bool grpc = type && isGrpcType(*type);
    Controls controls;
    if (view.table != nullptr) {
        controls = decodeControls(view.table->controls.data(),
                                  view.table->controls.size());
    }

    int status = 200;
    std::string reason;
    Match m;
    bool routed = false;

    if (!isCanonicalPath(*raw)) {
        status = 400;
        reason = "the path is not canonical: with discovery_noncanonical "
                 "reject (the default) it answers 400, with redirect a 308 "
                 "to its canonical form";
    } else if (view.router == nullptr) {
        status = 503;
        reason = "no table is published yet: discovery pending";
    } else {
        m = view.router->match(*method, path, false);
        routed = true;
    }

    if (routed) {
        switch (m.status) {
        case MatchStatus::Found:
            reason = "routed to " + std::string(m.service) + " by "
                     + std::string(m.route);
            break;
        case MatchStatus::NotAllowed:
            status = 405;
            reason = "the path is routed, but not for " + *method
                     + "; Allow: " + std::string(m.allow);
            break;
        case MatchStatus::Unavailable:
            status = 503;
            reason = "its route " + std::string(m.route) + " belongs to "
                     + std::string(m.service) + ", which is unhealthy";
            break;
        case MatchStatus::Drained:
            status = 503;
            reason = "its route " + std::string(m.route) + " belongs to "
                     + std::string(m.service)
                     + ", which is drained (Retry-After)";
            break;
        case MatchStatus::Pending:
            status = 503;
            reason = "no route matches while a service has not been polled "
                     "yet";
            break;
        case MatchStatus::Disabled:
            status = 404;
            reason = "the route " + std::string(m.route)
                     + " is disabled by an override: Endpoint disabled";
            break;
        default:
            status = 404;
            reason = "no route matches the path";
            break;
        }
        if (grpc && status != 200) {
            reason += "; a gRPC request gets grpc-status "
                      + std::string(status == 503 ? "14" : "12")
                      + " in an HTTP 200 answer";
        }
    }

    std::vector<Candidate> all;
    if (view.table != nullptr) {
        all = candidatesFor(*view.table, controls, path);
    }

    // the router's decision names the winner
    bool hasWinner = routed
                     && (m.status == MatchStatus::Found
                         || m.status == MatchStatus::Unavailable
                         || m.status == MatchStatus::Drained
                         || m.status == MatchStatus::Disabled);
    const Candidate *winner = nullptr;
    if (hasWinner) {
        for (Candidate &k : all) {
            bool same =
                m.status == MatchStatus::Disabled
                    ? k.override != nullptr
                          && k.override->action == OverrideAction::Disable
                          && k.route == m.route && candidateTakes(k, *method)
                    : k.service == m.service && k.route == m.route
                          && k.rejected.empty() && candidateTakes(k, *method);
            if (same) {
                k.won = true;
                winner = &k;
                break;
            }
        }
    }

    for (Candidate &k : all) {
        if (k.won) {
            if (k.override != nullptr
                && k.override->action == OverrideAction::Disable) {
                k.why = "disabled by override " + k.override->id;
            } else if (k.override != nullptr) {
                k.why = std::string(k.override->action == OverrideAction::Pin
                                        ? "pinned"
                                        : "added")
                        + " by override " + k.override->id;
            } else {
                k.why = "the route of highest precedence that takes " + *method;
            }
            if (m.status == MatchStatus::Unavailable) {
                k.why += "; its owner is unhealthy (503)";
            } else if (m.status == MatchStatus::Drained) {
                k.why += "; its owner is drained (503)";
            }
            continue;
        }
        if (!k.rejected.empty()) {
            k.why = k.rejected;
        } else if (!candidateTakes(k, *method)) {
            k.why = "it does not take " + *method;
        } else if (winner == nullptr) {
            k.why = "not chosen";
        } else if (k.shape == winner->shape) {
            if (winner->override != nullptr
                && winner->override->action == OverrideAction::Disable) {
                k.why = "disabled by override " + winner->override->id;
            } else if (winner->override != nullptr
                       && winner->override->action == OverrideAction::Pin) {
                k.why = (k.service == winner->service
                             ? std::string("routed by the pin of override ")
                             : "pinned to " + winner->service + " by override ")
                        + winner->override->id;
            } else if (k.override != nullptr
                       && k.override->action == OverrideAction::Pin) {
                // a pin takes only a route its service publishes
                k.why = "override " + k.override->id + " pins it to "
                        + k.service + ", which does not publish this route";
            } else if (k.override != nullptr) {
                k.why = "the published route " + winner->route + " of "
                        + winner->service + " takes precedence over an "
                        + "added one";
            } else {
                k.why = "conflict loser: " + winner->service
                        + " publishes the same route first";
            }
        } else if (winner->override != nullptr
                   && winner->override->action == OverrideAction::Pin) {
            k.why = "pinned to " + winner->service + " by override "
                    + winner->override->id + ", which goes before precedence";
        } else if (winner->override != nullptr
                   && winner->override->action == OverrideAction::Disable) {
            k.why = "disabled by override " + winner->override->id
                    + ", which goes before precedence";
        } else {
            k.why = "shadowed by " + winner->route + " of "
                    + (winner->service.empty() ? std::string("an override")
                                               : winner->service)
                    + ": " + precedence(winner->route, k.route);
        }
    }

    JsonWriter w;
    w.beginObject();
    w.key("status");
    w.number(static_cast<uint64_t>(status));
    bool named =
        routed && !m.service.empty() && m.status != MatchStatus::Disabled;
    w.key("service");
    if (named) {
        w.string(m.service);
    } else {
        w.null();
    }
    w.key("route");
    w.stringOrNull(routed ? m.route : std::string_view());
    w.key("upstream");
    if (named && !m.upstream.empty()) {
        w.string(m.upstream);
    } else {
        w.null();
    }
    w.key("reason");
    w.string(reason);
    w.key("candidates");
    w.beginArray();
    for (const Candidate &k : all) {
        w.beginObject();
        w.key("service");
        w.stringOrNull(k.service);
        w.key("route");
        w.string(k.route);
        w.key("methods");
        w.rawValue(k.methods);
        w.key("result");
        w.string(k.won ? "won" : "lost");
        w.key("why");
        w.string(k.why);
        if (k.override != nullptr) {
            w.key("override");
            writeOverrideRef(w, k.override);
        }
        w.endObject();
    }
    w.endArray();
    w.endObject();
    return w.take();
}

// ---------------------------------------------------------------- dispatch

enum class Endpoint {
    Root,
    Services,
    Service,
    Poll,
    Routes,
    Explain,
    Overrides,
    Override,
};

struct Resolved {
    Endpoint endpoint;
    std::string arg; // a service name or an override id
    std::string allow;
};

std::vector<std::string_view> splitPath(std::string_view path)
{
    std::vector<std::string_view> parts;
    while (!path.empty() && path.front() == '/') {
        path.remove_prefix(1);
        size_t slash = path.find('/');
        parts.push_back(path.substr(0, slash));
        path = slash == std::string_view::npos ? std::string_view()
                                               : path.substr(slash);
    }
    if (!parts.empty() && parts.back().empty()) {
        parts.pop_back(); // a trailing slash
    }
    return parts;
}

Resolved resolve(std::string_view path)
{
    // the glue passes a location's sibling (/apix of /api) as "x"
    if (!path.empty() && path.front() != '/') {
        throw ApiFailure{404, "NotFound", "the API has no such path"};
    }

    std::vector<std::string_view> p = splitPath(path);
    auto is = [&p](size_t n, std::string_view first) {
        return p.size() == n && p[0] == first;
    };

    if (p.empty()) {
        return {Endpoint::Root, "", "GET, HEAD"};
    }
    if (is(1, "services")) {
        return {Endpoint::Services, "", "GET, HEAD"};
    }
    if (is(2, "services") && !p[1].empty()) {
        return {Endpoint::Service, urlDecode(p[1], false), "GET, HEAD, PATCH"};
    }
    if (is(3, "services") && !p[1].empty() && p[2] == "poll") {
        return {Endpoint::Poll, urlDecode(p[1], false), "POST"};
    }
    if (is(1, "routes")) {
        return {Endpoint::Routes, "", "GET, HEAD"};
    }
    if (is(1, "explain")) {
        return {Endpoint::Explain, "", "GET, HEAD"};
    }
    if (is(1, "overrides")) {
        return {Endpoint::Overrides, "", "GET, HEAD, POST"};
    }
    if (is(2, "overrides") && !p[1].empty()) {
        return {Endpoint::Override, urlDecode(p[1], false), "DELETE"};
    }
    throw ApiFailure{404, "NotFound", "the API has no such path"};
}

} // namespace

bool apiUsesRouter(std::string_view path)
{
    try {
        return resolve(path).endpoint == Endpoint::Explain;
    } catch (const ApiFailure &) {
        return false;
    }
}

namespace {

bool allows(const std::string &allow, std::string_view method)
{
    size_t at = 0;
    while (at < allow.size()) {
        size_t comma = allow.find(", ", at);
        std::string_view one = std::string_view(allow).substr(at, comma - at);
        if (one == method) {
            return true;
        }
        if (comma == std::string::npos) {
            break;
        }
        at = comma + 2;
    }
    return false;
}

// The checks of every write, before its body is read as JSON.
void checkWrite(const ApiRequest &req)
{
    if (!req.write) {
        throw ApiFailure{405, "MethodDisabled",
                         "the API is read-only here: discovery_api "
                         "write=off"};
    }
    if (!isJsonType(req.contentType)) {
        throw ApiFailure{415, "UnsupportedMediaType",
                         "a write needs Content-Type: application/json"};
    }
    if (!req.origin.empty() && !sameOrigin(req.origin, req.host)) {
        throw ApiFailure{403, "CrossOrigin",
                         "the Origin header names another site than the "
                         "Host header"};
    }
    if (req.bodyTooLarge || req.body.size() > kMaxApiBody) {
        throw ApiFailure{400, "BodyTooLarge", "the body is larger than 64 KB"};
    }
}

ApiAnswer dispatch(const ApiRequest &req, const ApiView &view)
{
    ApiAnswer a;
    std::string_view method = req.method == "HEAD" ? "GET" : req.method;
    Resolved r = resolve(req.path);

    if (!allows(r.allow, method)) {
        throw ApiFailure{405, "MethodNotAllowed", "this path takes " + r.allow};
    }

    if (method != "GET") {
        checkWrite(req);
    }

    switch (r.endpoint) {
    case Endpoint::Root:
        a.body = renderRoot(req, view);
        break;
    case Endpoint::Services:
        a.body = renderServices(view);
        break;
    case Endpoint::Service:
        if (method == "GET") {
            a.body = renderService(view, r.arg);
            break;
        }
        {
            renderService(view, r.arg); // 404 for an unknown one
            bool drain = parseDrain(req.body);
            ApiView after = view;
            after.controls.setDrained(r.arg, drain);
            a.controlsChanged = !(after.controls == view.controls);
            a.controls = after.controls;
            a.body = renderService(after, r.arg);
        }
        break;
    case Endpoint::Poll:
        a.body = renderService(view, r.arg);
        a.poll = r.arg;
        break;
    case Endpoint::Routes:
        a.body = renderRoutes(req, view);
        break;
    case Endpoint::Explain:
        a.body = renderExplain(req, view);
        break;
    case Endpoint::Overrides:
        if (method == "GET") {
            a.body = renderOverrides(req, view.controls);
            break;
        }
        {
            Override o = parseOverride(req.body, view, req.now);
            Controls next = view.controls;
            if (next.overrides.size() >= kMaxOverrides) {
                badField("the gateway keeps at most 1000 overrides");
            }
            o.id = "o" + std::to_string(next.nextId++);
            next.overrides.push_back(o);
            JsonWriter w;
            writeOverride(w, o);
            a.status = 201;
            a.body = w.take();
            a.controls = std::move(next);
            a.controlsChanged = true;
        }
        break;
    case Endpoint::Override: {
        Controls next = view.controls;
        auto it =
            std::find_if(next.overrides.begin(), next.overrides.end(),
                         [&r](const Override &o) { return o.id == r.arg; });
        if (it == next.overrides.end()) {
            throw ApiFailure{404, "OverrideNotFound",
                             "no override has the id \"" + r.arg + "\""};
        }
        next.overrides.erase(it);
        JsonWriter w;
        w.beginObject();
        w.key("deleted");
        w.string(r.arg);
        w.endObject();
        a.body = w.take();
        a.controls = std::move(next);
        a.controlsChanged = true;
        break;
    }
    }
    return a;
}

} // namespace

std::string apiError(int status, std::string_view code, std::string_view text)
{
    JsonWriter w;
    w.beginObject();
    w.key("error");
    w.beginObject();
    w.key("status");
    w.number(static_cast<uint64_t>(status));
    w.key("code");
    w.string(code);
    w.key("text");
    w.string(text);
    w.endObject();
    w.endObject();
    return w.take();
}

ApiAnswer handleApi(const ApiRequest &req, const ApiView &view)
{
    try {
        return dispatch(req, view);
    } catch (const ApiFailure &f) {
        ApiAnswer a;
        a.status = f.status;
        a.body = apiError(f.status, f.code, f.text);
        if (f.code == "MethodNotAllowed") {
            a.allow = resolve(req.path).allow;
        }
        return a;
    }
}

} // namespace discovery
