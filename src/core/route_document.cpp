// route_document.cpp: the route-document reader's skeleton on yajl events.
#include "route_document.hpp"

#include "document_reader.hpp"
#include "error.hpp"
#include "json_escape.hpp"
#include "openapi_reader.hpp"
#include "route_list_reader.hpp"

#include <yajl/yajl_parse.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <functional>
#include <new>
#include <string>
#include <utility>
#include <vector>

namespace discovery {

/* what the grammars share (document_reader.hpp) */

void RejectedRoutes::add(const std::string &path, uint32_t methods,
                         std::string reason, const MethodNames &extension)
{
    if (routes_.size() >= kMaxRejected) {
        omitted_++;
        return;
    }

    routes_.push_back(
        {path.substr(0, kMaxPathLen), methods, extension, std::move(reason)});
}

void RejectedRoutes::moveTo(RouteSet &set)
{
    set.rejected = std::move(routes_);
    set.rejectedOmitted = omitted_;
}

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

void mergeTags(std::vector<std::string> &into,
               const std::vector<std::string> &from)
{
    std::string ignored;
    for (const std::string &tag : from) {
        addTag(into, tag, ignored);
    }
}

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

void readVersion(std::string &version, const Value &v, const Log &log)
{
    if (v.kind != Kind::String && v.kind != Kind::Number) {
        return;
    }

    if (v.text.size() > kMaxVersionLen) {
        log.warn("version longer than 256 bytes ignored");
        return;
    }

    version.assign(v.text);
}

namespace {

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

// How many extension methods `a` and `b` have together.
size_t unionSize(const MethodNames &a, const MethodNames &b)
{
    return a.size()
           + std::count_if(b.begin(), b.end(), [&a](const std::string &m) {
                 return !std::binary_search(a.begin(), a.end(), m);
             });
}

/*
 * Identical templates of one service are one route with the union of
 * their methods, unless they differ in auth_required: that is per method,
 * so a public GET and a secured POST on one path stay two routes.  One
 * path cannot be both HTTP and gRPC, or two streaming kinds: the later
 * entry is turned away.  An
 * entry that would take the union past kMaxRouteExtensionMethods is
 * turned away whole, as one entry with too many is.
 */
void mergeDuplicates(std::vector<Route> &routes, RejectedRoutes &rejected)
{
    /*
     * The routes merged so far by path and authRequired: their indices in
     * `routes` plus one (0: free), open addressing at most half full.  A
     * node allocated per route made this a fifth of a large document's
     * parse.  They are kept in place, routes[0, kept), each moved down
     * over the duplicates before it: a document without duplicates (most)
     * moves none.
     */
    size_t size = 2;
    while (size < 2 * routes.size()) {
        size *= 2;
    }
    std::vector<uint32_t> seen(size, 0);
    std::hash<std::string_view> hash;
    size_t kept = 0;

    for (size_t i = 0; i < routes.size(); i++) {
        Route &r = routes[i];
        size_t at = (hash(r.path) ^ r.authRequired) & (size - 1);
        while (seen[at] != 0) {
            const Route &m = routes[seen[at] - 1];
            if (m.authRequired == r.authRequired && m.path == r.path) {
                break;
            }
            at = (at + 1) & (size - 1);
        }
        if (seen[at] == 0) {
            if (kept != i) {
                routes[kept] = std::move(r); // over a duplicate merged
            }
            seen[at] = static_cast<uint32_t>(++kept);
            continue;
        }

        Route &m = routes[seen[at] - 1]; // kept, before r
        if (m.protocol != r.protocol || m.streaming != r.streaming) {
            rejected.add(r.path, r.methods,
                         "declared before with another protocol or "
                         "streaming kind",
                         r.extensionMethods);
            continue;
        }
        if (unionSize(m.extensionMethods, r.extensionMethods)
            > kMaxRouteExtensionMethods) {
            rejected.add(r.path, r.methods,
                         "more than "
                             + std::to_string(kMaxRouteExtensionMethods)
                             + " extension methods on one path",
                         r.extensionMethods);
            continue;
        }
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

    routes.erase(routes.begin() + static_cast<std::ptrdiff_t>(kept),
                 routes.end());
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

// The skeleton's own frame, the document's object (with no grammar).
constexpr uint8_t kTop = 1;

// The top-level member whose value comes next.
enum class TopField : uint8_t { None, Status, Version, Claimed };

} // namespace

class RouteDocumentParser::Reader {
public:
    Reader(DocumentFormat format, const Log &log);

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

    std::string_view checkedText(const unsigned char *s, size_t len);
    void checkParse(yajl_status status, uint64_t offset);

    void onValue(const Value &v);
    void onKey(std::string_view key);
    void onEnd();
    void push(Grammar *grammar, uint8_t role);

    void topKey(std::string_view key);
    void topValue(const Value &v);
    Grammar &chosenGrammar();

    DocumentFormat format_;
    Log log_;
    std::unique_ptr<yajl_handle_t, YajlFree> handle_;
    std::exception_ptr failure_;
    uint64_t offset_ = 0; // bytes fed before the current chunk
    std::vector<Frame> stack_;

    // before the grammars, which refer to them: each its own, since with
    // format=auto both read the document and one is chosen at its end
    RejectedRoutes listRejected_;
    RejectedRoutes openApiRejected_;
    std::unique_ptr<Grammar> routeList_; // none with format=openapi
    std::unique_ptr<Grammar> openApi_;   // none with format=routes

    TopField topField_ = TopField::None;
    Grammar *claimant_ = nullptr;  // Claimed: the grammar reading the member
    uint8_t claimedField_ = kNone; // and the member as its Field

    std::string statusError_;
    std::string version_;
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

RouteDocumentParser::Reader::Reader(DocumentFormat format, const Log &log)
    : format_(format), log_(log)
{
    if (format != DocumentFormat::OpenApi) {
        routeList_ = makeRouteListReader(listRejected_);
    }
    if (format != DocumentFormat::Routes) {
        openApi_ = makeOpenApiReader(format == DocumentFormat::OpenApi,
                                     openApiRejected_, log_);
    }

    handle_.reset(yajl_alloc(&kCallbacks, nullptr, this));
    if (!handle_) {
        throw std::bad_alloc();
    }
    // strings are validated as UTF-8 by default: leave it so
}

// yajl checks only the byte structure of UTF-8; overlongs and surrogates
// pass it, and must not reach names we log or render.
std::string_view
RouteDocumentParser::Reader::checkedText(const unsigned char *s, size_t len)
{
    std::string_view text(reinterpret_cast<const char *>(s), len);

    if (!isValidUtf8(text)) {
        throw Error("invalid JSON: invalid UTF-8 in a string");
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

    RouteSet set;

    Grammar &chosen = chosenGrammar();
    RejectedRoutes &rejected =
        &chosen == routeList_.get() ? listRejected_ : openApiRejected_;

    set.version = std::move(version_);
    chosen.finish(set);
    mergeDuplicates(set.routes, rejected);
    rejected.moveTo(set);
    return set;
}

// A document's shape is only known at its end: with format=auto, OpenAPI
// when it has "openapi" or "paths" and no "routes".
Grammar &RouteDocumentParser::Reader::chosenGrammar()
{
    if (!routeList_) {
        return *openApi_;
    }
    if (format_ == DocumentFormat::Auto && openApi_->present()
        && !routeList_->present()) {
        return *openApi_;
    }
    return *routeList_;
}

void RouteDocumentParser::Reader::push(Grammar *grammar, uint8_t role)
{
    // yajl keeps its own stack; ours bounds the document for everyone after
    if (stack_.size() >= kMaxDepth) {
        throw Error("JSON nested deeper than " + std::to_string(kMaxDepth)
                    + " levels");
    }
    stack_.push_back(role == kSkip ? Frame() : Frame{grammar, role});
}

void RouteDocumentParser::Reader::onValue(const Value &v)
{
    if (stack_.empty()) {
        if (v.kind != Kind::Map) {
            throw Error("the document is not a JSON object");
        }
        push(nullptr, kTop);
        return;
    }

    Frame &f = stack_.back();
    Grammar *grammar = f.grammar;

    if (grammar != nullptr) {
        uint8_t child = grammar->onValue(f, v);
        f.field = kNone;
        if (v.isContainer()) {
            push(grammar, child);
        }
    } else if (f.role == kTop) {
        topValue(v);
    } else if (v.isContainer()) {
        push(nullptr, kSkip);
    }
}

void RouteDocumentParser::Reader::onKey(std::string_view key)
{
    Frame &f = stack_.back();

    if (f.grammar != nullptr) {
        f.grammar->onKey(f, key);
    } else if (f.role == kTop) {
        topKey(key);
    }
}

void RouteDocumentParser::Reader::onEnd()
{
    Frame f = stack_.back();

    stack_.pop_back();
    if (f.grammar != nullptr) {
        f.grammar->onEnd(f, stack_.back()); // the top frame is no grammar's
    }
}

void RouteDocumentParser::Reader::topKey(std::string_view key)
{
    claimant_ = nullptr;
    claimedField_ = kNone;
    topField_ = key == "status"    ? TopField::Status
                : key == "version" ? TopField::Version
                                   : TopField::None;
    if (topField_ != TopField::None) {
        return;
    }

    // the grammars' members are disjoint: at most one claims the key
    for (Grammar *g : {routeList_.get(), openApi_.get()}) {
        if (g != nullptr && (claimedField_ = g->topKey(key)) != kNone) {
            claimant_ = g;
            topField_ = TopField::Claimed;
            return;
        }
    }
}

void RouteDocumentParser::Reader::topValue(const Value &v)
{
    Grammar *claimant = claimant_;
    uint8_t child = kSkip;

    switch (topField_) {
    case TopField::Status:
        if (v.kind != Kind::String) {
            throw Error("\"status\" is not a string");
        }
        statusError_ =
            isHealthyStatus(v.text) ? "" : "status " + quoted(v.text, 64);
        break;

    case TopField::Version:
        readVersion(version_, v, log_);
        break;

    case TopField::Claimed:
        child = claimant->topValue(claimedField_, v);
        break;

    case TopField::None:
        break;
    }

    topField_ = TopField::None;
    claimant_ = nullptr;
    if (v.isContainer()) {
        push(claimant, child);
    }
}

RouteDocumentParser::RouteDocumentParser(DocumentFormat format,
                                         const Log &log)
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
