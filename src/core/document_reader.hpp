// document_reader.hpp: what the route-document skeleton and its grammars share.
#ifndef DISCOVERY_DOCUMENT_READER_HPP
#define DISCOVERY_DOCUMENT_READER_HPP

#include "log.hpp"
#include "methods.hpp"
#include "snapshot.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

/*
 * RouteDocumentParser (route_document.cpp) is a skeleton on yajl's events:
 * it checks strings, keeps the stack of open containers, reads the
 * top-level "status" and "version", and hands every other top-level member
 * to the grammar that claims it: the route list (route_list_reader.cpp)
 * or OpenAPI (openapi_reader.cpp).  With format=auto both read the same
 * events, each its own members, and finish() takes one's result.  The
 * helpers below are defined in route_document.cpp.
 */

namespace discovery {

enum class Kind : uint8_t { Null, Bool, Number, String, Map, Array };

// A value as an event brings it; a container's members follow as events.
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

class Grammar;

// Each grammar's Role enum starts with kSkip, its Field enum with kNone.
constexpr uint8_t kSkip = 0; // a container no grammar reads, however deep
constexpr uint8_t kNone = 0; // no member that anyone reads comes next

// An open container, tagged with the grammar that reads it.
struct Frame {
    Grammar *grammar = nullptr; // null: skipped, or the document's object
    uint8_t role = kSkip;       // the grammar's Role: what the container is
    uint8_t field = kNone;      // its Field: the member whose value is next
    bool flag = false;          // the grammar's own mark on the container
};

/*
 * One grammar on the skeleton's events, a virtual call per event: it sees
 * the top-level members it claims and the events inside the containers
 * they open, never a skipped one's.  Roles and fields travel as uint8_t;
 * what they mean is the grammar's own.
 */
class Grammar {
public:
    virtual ~Grammar() = default;

    // The Field of a top-level member this grammar reads, else kNone.
    virtual uint8_t topKey(std::string_view key) = 0;

    // The value of a member topKey() claimed: the Role of the container
    // it opens (kSkip when it is not read, or is no container).
    virtual uint8_t topValue(uint8_t field, const Value &v) = 0;

    // A value in `frame`, a container of ours: an array element, or a
    // member's after onKey().  The Role of the container it opens.
    virtual uint8_t onValue(Frame &frame, const Value &v) = 0;

    virtual void onKey(Frame &frame, std::string_view key) = 0;

    // `frame` closed; `parent` is the container it was in.
    virtual void onEnd(const Frame &frame, Frame &parent) = 0;

    // Whether the document has this grammar's shape, for format=auto.
    virtual bool present() const = 0;

    // Moves the routes read, and a version of the grammar's own, to `set`;
    // throws Error when the document is not valid in this grammar.
    virtual void finish(RouteSet &set) = 0;
};

/*
 * The entries a grammar turned away go with the route set, not to the
 * log: the table warns about each once, when it first appears, and the
 * status page lists it, however often an unchanged document is polled.
 * Each grammar has its own list, in document order.
 */
class RejectedRoutes {
public:
    void add(const std::string &path, uint32_t methods, std::string reason,
             const MethodNames &extension = {});
    void moveTo(RouteSet &set);

private:
    std::vector<RejectedRoute> routes_;
    size_t omitted_ = 0; // past kMaxRejected
};

// False with `error` set when the tag breaks a bound; duplicates dropped.
bool addTag(std::vector<std::string> &tags, std::string_view tag,
            std::string &error);

// Tags of merged routes: union, silently capped at the bound.
void mergeTags(std::vector<std::string> &into,
               const std::vector<std::string> &from);

// Keeps `names` sorted and unique; false if it is full.
bool addExtensionMethod(MethodNames &names, std::string name);

// A string or number value as `version`; one too long is logged, not kept.
void readVersion(std::string &version, const Value &v, const Log &log);

} // namespace discovery

#endif
