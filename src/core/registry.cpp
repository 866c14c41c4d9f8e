// registry.cpp: etcd's v3 JSON gateway (requests, answers, the watch
// stream) and the service documents the registry holds.
#include "registry.hpp"

#include "error.hpp"
#include "grpc_reflection.hpp"
#include "json_escape.hpp"
#include "json_writer.hpp"
#include "snapshot.hpp"
#include "status_json.hpp"

#include <yajl/yajl_tree.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>
#include <strings.h>

namespace discovery {

namespace {

struct YajlFree {
    void operator()(yajl_val v) const { yajl_tree_free(v); }
};
using Tree = std::unique_ptr<std::remove_pointer_t<yajl_val>, YajlFree>;

const char kBase64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64Value(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+' || c == '-') {
        return 62;
    }
    if (c == '/' || c == '_') {
        return 63;
    }
    return -1;
}

// what yajl said, its first line
std::string yajlReason(const char *err)
{
    std::string why(err, std::strcspn(err, "\n"));
    while (!why.empty() && why.back() == ' ') {
        why.pop_back();
    }
    return why;
}

// yajl frees a tree recursively: a document nested a million deep would
// overflow the stack, so the nesting is measured before yajl parses it
constexpr size_t kMaxJsonDepth = 64;

bool tooDeep(std::string_view text)
{
    size_t depth = 0;
    bool inString = false;

    for (size_t i = 0; i < text.size(); i++) {
        char c = text[i];
        if (inString) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                inString = false;
            }
        } else if (c == '"') {
            inString = true;
        } else if (c == '{' || c == '[') {
            if (++depth > kMaxJsonDepth) {
                return true;
            }
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return false;
}

Tree parseJson(std::string_view text, const char *what)
{
    if (tooDeep(text)) {
        throw Error(std::string(what)
                    + " is not valid JSON: nested deeper than "
                    + std::to_string(kMaxJsonDepth));
    }

    std::string copy(text);
    char err[256];
    err[0] = '\0';
    yajl_val v = yajl_tree_parse(copy.c_str(), err, sizeof(err));
    if (v == nullptr) {
        std::string why = yajlReason(err);
        throw Error(std::string(what) + " is not valid JSON"
                    + (why.empty() ? "" : ": " + why));
    }
    Tree tree(v);
    if (!YAJL_IS_OBJECT(v)) {
        throw Error(std::string(what) + " is not a JSON object");
    }
    return tree;
}

yajl_val field(yajl_val obj, const char *name)
{
    if (obj == nullptr || !YAJL_IS_OBJECT(obj)) {
        return nullptr;
    }
    for (size_t i = 0; i < obj->u.object.len; i++) {
        if (std::strcmp(obj->u.object.keys[i], name) == 0) {
            return obj->u.object.values[i];
        }
    }
    return nullptr;
}

// the gateway writes int64 fields as strings, and leaves out zeros
int64_t digitsOf(const char *s)
{
    int64_t n = 0;
    if (*s == '\0') {
        throw Error("a number field is empty");
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || n > (INT64_MAX - 9) / 10) {
            throw Error("a number field is not a number");
        }
        n = n * 10 + (*s - '0');
    }
    return n;
}

// etcd's int64 fields, as the JSON gateway writes them: strings, none
// negative but a lease's time to live
int64_t int64Of(yajl_val v, bool negative = false)
{
    if (v == nullptr) {
        return 0;
    }
    if (YAJL_IS_INTEGER(v)) {
        return YAJL_GET_INTEGER(v);
    }
    if (YAJL_IS_STRING(v)) {
        const char *s = YAJL_GET_STRING(v);
        if (negative && *s == '-') {
            int64_t n = digitsOf(s + 1);
            if (n == 0) {
                throw Error("a number field is not a number");
            }
            return -n;
        }
        return digitsOf(s);
    }
    throw Error("a number field is not a number");
}

bool boolOf(yajl_val v)
{
    return v != nullptr && YAJL_IS_TRUE(v);
}

std::string bytesOf(yajl_val v)
{
    if (v == nullptr) {
        return std::string();
    }
    if (!YAJL_IS_STRING(v)) {
        throw Error("a key or value is not a base64 string");
    }
    return decodeBase64(YAJL_GET_STRING(v));
}

// {"error": {"message": ...}} or {"code": .., "message": ..}: etcd's refusal
void throwIfError(yajl_val obj)
{
    yajl_val e = field(obj, "error");
    yajl_val m = nullptr;

    if (e != nullptr && YAJL_IS_OBJECT(e)) {
        m = field(e, "message");
    } else if (e != nullptr && YAJL_IS_STRING(e)) {
        m = e;
    } else if (field(obj, "code") != nullptr) {
        m = field(obj, "message");
        if (m == nullptr) {
            m = field(obj, "error");
        }
    }

    if (m != nullptr || e != nullptr) {
        std::string text = (m != nullptr && YAJL_IS_STRING(m))
                               ? YAJL_GET_STRING(m)
                               : "an error without a message";
        throw Error("etcd: " + quoted(text, 200));
    }
}

KeyValue keyValueOf(yajl_val kv)
{
    KeyValue out;
    out.key = bytesOf(field(kv, "key"));
    out.value = bytesOf(field(kv, "value"));
    out.modRevision = int64Of(field(kv, "mod_revision"));
    out.lease = int64Of(field(kv, "lease"));
    out.createRevision = int64Of(field(kv, "create_revision"));
    return out;
}

int64_t headerRevision(yajl_val obj)
{
    return int64Of(field(field(obj, "header"), "revision"));
}

[[noreturn]] void invalid(std::string_view name, const std::string &why)
{
    throw Error("service " + quoted(name, 64) + ": " + why);
}

std::string stringOption(std::string_view name, yajl_val v, const char *key)
{
    if (!YAJL_IS_STRING(v)) {
        invalid(name, std::string("\"") + key + "\" must be a string");
    }
    return YAJL_GET_STRING(v);
}

// a uri, a prefix, an upstream's name: no space, no control character
void checkPrintable(std::string_view name, const std::string &value,
                    const char *key)
{
    for (char c : value) {
        if (uint8_t(c) <= ' ' || c == 0x7f) {
            invalid(name,
                    std::string("invalid ") + key + " " + quoted(value, 128));
        }
    }
}

uint64_t timeOption(std::string_view name, yajl_val v, const char *key)
{
    uint64_t ms = 0;
    std::string shown;

    if (YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) >= 0
        && YAJL_GET_INTEGER(v) < 100000000) {
        ms = uint64_t(YAJL_GET_INTEGER(v)) * 1000;
        shown = std::to_string(YAJL_GET_INTEGER(v));
    } else if (YAJL_IS_STRING(v)) {
        shown = YAJL_GET_STRING(v);
        if (!parseNginxTime(shown, ms)) {
            invalid(name,
                    std::string("invalid ") + key + " " + quoted(shown, 32));
        }
    } else {
        invalid(name,
                std::string("\"") + key + "\" must be a time such as \"10s\"");
    }

    if (std::strcmp(key, "interval") == 0 && ms < 1000) {
        invalid(name, "invalid interval " + quoted(shown, 32)
                          + ", the minimum is 1s");
    }
    if (ms == 0) {
        invalid(name, std::string("invalid ") + key + " " + quoted(shown, 32));
    }
    return ms;
}

uint32_t countOption(std::string_view name, yajl_val v, const char *key)
{
    if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 1
        || YAJL_GET_INTEGER(v) > 1000) {
        invalid(name, std::string("invalid ") + key
                          + ", it must be a number from 1 to 1000");
    }
    return uint32_t(YAJL_GET_INTEGER(v));
}

// scheme://[user[:password]@]host[:port][/path], as the directive checks it
void checkUrl(std::string_view name, const std::string &url, bool &grpc)
{
    static const char *const schemes[] = {"http://", "https://", "grpc://",
                                          "grpcs://"};
    size_t skip = 0;

    for (const char *s : schemes) {
        size_t n = std::strlen(s);
        if (url.size() >= n && strncasecmp(url.c_str(), s, n) == 0) {
            skip = n;
            grpc = (s[0] == 'g');
            break;
        }
    }

    if (skip == 0) {
        invalid(name, "invalid URL " + quoted(url, 128)
                          + ", it must start with \"http://\", \"https://\", "
                            "\"grpc://\" or \"grpcs://\"");
    }

    std::string_view rest(url);
    rest.remove_prefix(skip);

    size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    size_t at = authority.rfind('@');
    if (at != std::string_view::npos) {
        invalid(name, "a registry service's URL cannot hold credentials");
    }

    if (authority.empty()) {
        invalid(name, "no host in URL " + quoted(url, 128));
    }

    for (char c : url) {
        if (c == '?' || c == '#' || c <= ' ' || c == 0x7f) {
            invalid(name, "invalid URL " + quoted(url, 128));
        }
    }

    std::string_view host = authority;
    if (host[0] == '[') {
        size_t close = host.find(']');
        if (close == std::string_view::npos) {
            invalid(name, "invalid URL " + quoted(url, 128));
        }
        // as nginx's URL parser wants it, which takes no zone ("%eth0")
        std::string literal(host.substr(1, close - 1));
        struct in6_addr addr;
        if (inet_pton(AF_INET6, literal.c_str(), &addr) != 1) {
            invalid(name, "invalid IPv6 address in URL " + quoted(url, 128));
        }
        host = authority.substr(close + 1);
        if (!host.empty() && host[0] != ':') {
            invalid(name, "invalid URL " + quoted(url, 128));
        }
    } else {
        size_t colon = host.find(':');
        if (colon == 0) {
            invalid(name, "no host in URL " + quoted(url, 128));
        }
        if (colon == 4 && strncasecmp(host.data(), "unix", 4) == 0) {
            invalid(name, "invalid URL " + quoted(url, 128)
                              + ", a host nginx reads as a unix socket");
        }
        host = colon == std::string_view::npos ? std::string_view()
                                               : host.substr(colon);
    }

    if (!host.empty()) {
        // ":port"
        std::string_view port = host.substr(1);
        uint32_t n = 0;
        if (port.empty() || port.size() > 5) {
            invalid(name, "invalid port in URL " + quoted(url, 128));
        }
        for (char c : port) {
            if (c < '0' || c > '9') {
                invalid(name, "invalid port in URL " + quoted(url, 128));
            }
            n = n * 10 + uint32_t(c - '0');
        }
        if (n == 0 || n > 65535) {
            invalid(name, "invalid port in URL " + quoted(url, 128));
        }
    }

    if (grpc && slash != std::string_view::npos
        && rest.find_first_not_of('/', slash) != std::string_view::npos) {
        invalid(name,
                "the gRPC URL " + quoted(url, 128) + " cannot have a path");
    }
}

} // namespace

std::string encodeBase64(std::string_view in)
{
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);

    size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        uint32_t n = uint32_t(uint8_t(in[i])) << 16
                     | uint32_t(uint8_t(in[i + 1])) << 8 | uint8_t(in[i + 2]);
        out += kBase64[n >> 18];
        out += kBase64[(n >> 12) & 63];
        out += kBase64[(n >> 6) & 63];
        out += kBase64[n & 63];
    }

    if (i + 1 == in.size()) {
        uint32_t n = uint32_t(uint8_t(in[i])) << 16;
        out += kBase64[n >> 18];
        out += kBase64[(n >> 12) & 63];
        out += "==";
    } else if (i + 2 == in.size()) {
        uint32_t n =
            uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8;
        out += kBase64[n >> 18];
        out += kBase64[(n >> 12) & 63];
        out += kBase64[(n >> 6) & 63];
        out += '=';
    }
    return out;
}

std::string decodeBase64(std::string_view in)
{
    while (!in.empty() && in.back() == '=') {
        in.remove_suffix(1);
    }
    if (in.size() % 4 == 1) {
        throw Error("invalid base64: bad length");
    }

    std::string out;
    out.reserve(in.size() * 3 / 4);
    uint32_t acc = 0;
    int bits = 0;

    for (char c : in) {
        int v = base64Value(c);
        if (v < 0) {
            throw Error("invalid base64 character");
        }
        acc = (acc << 6) | uint32_t(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += char((acc >> bits) & 0xff);
        }
    }
    return out;
}

bool RegistryService::operator==(const RegistryService &o) const
{
    return name == o.name && url == o.url && intervalMs == o.intervalMs
           && timeoutMs == o.timeoutMs && fails == o.fails && passes == o.passes
           && uri == o.uri && format == o.format
           && grpcInternal == o.grpcInternal && prefixes == o.prefixes
           && upstream == o.upstream;
}

bool validServiceName(std::string_view name)
{
    // "." and "..": the management API's paths could not name them
    if (name.empty() || name.size() > 64 || name == "." || name == "..") {
        return false;
    }
    for (char c : name) {
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.')) {
            return false;
        }
    }
    return true;
}

bool parseNginxTime(std::string_view s, uint64_t &ms)
{
    uint64_t n = 0;
    size_t i = 0;

    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; i++) {
        n = n * 10 + uint64_t(s[i] - '0');
        if (n > 100000000) {
            return false;
        }
    }
    if (i == 0) {
        return false;
    }

    std::string_view unit = s.substr(i);
    if (unit.empty() || unit == "s") {
        ms = n * 1000;
    } else if (unit == "ms") {
        ms = n;
    } else if (unit == "m") {
        ms = n * 60000;
    } else if (unit == "h") {
        ms = n * 3600000;
    } else {
        return false;
    }
    return true;
}

RegistryService parseRegistryService(std::string_view name,
                                     std::string_view json)
{
    if (!validServiceName(name)) {
        throw Error("invalid service name " + quoted(name, 64));
    }
    if (!isValidUtf8(json)) {
        invalid(name, "the document is not valid UTF-8");
    }
    if (json.find('\0') != std::string_view::npos
        || json.find("\\u0000") != std::string_view::npos) {
        invalid(name, "the document holds a NUL character");
    }

    Tree tree;
    try {
        tree = parseJson(json, "the document");
    } catch (const Error &e) {
        invalid(name, e.what());
    }

    RegistryService s;
    s.name = std::string(name);
    bool haveUrl = false;
    bool haveFormat = false;
    yajl_val obj = tree.get();

    for (size_t i = 0; i < obj->u.object.len; i++) {
        const char *key = obj->u.object.keys[i];
        yajl_val v = obj->u.object.values[i];

        if (std::strcmp(key, "url") == 0) {
            s.url = stringOption(name, v, key);
            haveUrl = true;
        } else if (std::strcmp(key, "interval") == 0) {
            s.intervalMs = timeOption(name, v, key);
        } else if (std::strcmp(key, "timeout") == 0) {
            s.timeoutMs = timeOption(name, v, key);
        } else if (std::strcmp(key, "fails") == 0) {
            s.fails = countOption(name, v, key);
        } else if (std::strcmp(key, "passes") == 0) {
            s.passes = countOption(name, v, key);
        } else if (std::strcmp(key, "uri") == 0) {
            s.uri = stringOption(name, v, key);
            if (s.uri.empty() || s.uri[0] != '/') {
                invalid(name, "invalid uri " + quoted(s.uri, 128)
                                  + ", it must start with \"/\"");
            }
            checkPrintable(name, s.uri, key);
        } else if (std::strcmp(key, "format") == 0) {
            std::string f = stringOption(name, v, key);
            haveFormat = true;
            if (f == "auto") {
                s.format = RegistryFormat::Auto;
            } else if (f == "routes") {
                s.format = RegistryFormat::Routes;
            } else if (f == "openapi") {
                s.format = RegistryFormat::OpenApi;
            } else if (f == "grpc") {
                s.format = RegistryFormat::Grpc;
            } else {
                invalid(name, "invalid format " + quoted(f, 32)
                                  + ", it must be \"auto\", \"routes\", "
                                    "\"openapi\" or \"grpc\"");
            }
        } else if (std::strcmp(key, "grpc_internal") == 0) {
            if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v)) {
                invalid(name, "\"grpc_internal\" must be true or false");
            }
            s.grpcInternal = YAJL_IS_TRUE(v);
        } else if (std::strcmp(key, "prefix") == 0) {
            if (YAJL_IS_STRING(v)) {
                s.prefixes.push_back(YAJL_GET_STRING(v));
            } else if (YAJL_IS_ARRAY(v)) {
                for (size_t j = 0; j < v->u.array.len; j++) {
                    s.prefixes.push_back(
                        stringOption(name, v->u.array.values[j], key));
                }
            } else {
                invalid(name, "\"prefix\" must be a list of paths");
            }
            for (const std::string &p : s.prefixes) {
                if (p.empty() || p[0] != '/') {
                    invalid(name, "invalid prefix " + quoted(p, 128)
                                      + ", it must start with \"/\"");
                }
                checkPrintable(name, p, key);
            }
        } else if (std::strcmp(key, "upstream") == 0) {
            s.upstream = stringOption(name, v, key);
            if (s.upstream.empty()) {
                invalid(name, "invalid upstream \"\"");
            }
            checkPrintable(name, s.upstream, key);
        } else {
            invalid(name, "unknown option " + quoted(key, 64));
        }
    }

    if (!haveUrl) {
        invalid(name, "no \"url\"");
    }

    bool grpc = false;
    checkUrl(name, s.url, grpc);

    while (s.url.size() > 1 && s.url.back() == '/') {
        s.url.pop_back();
    }

    if (grpc) {
        if (!s.uri.empty()) {
            invalid(name, "\"uri\" does not apply to a gRPC service: it is "
                          "polled by reflection");
        }
        if (haveFormat && s.format != RegistryFormat::Grpc) {
            invalid(name, "a grpc:// or grpcs:// URL takes only "
                          "format \"grpc\"");
        }
        s.format = RegistryFormat::Grpc;
    } else if (s.format == RegistryFormat::Grpc) {
        invalid(name, "format \"grpc\" needs a grpc:// or grpcs:// URL");
    } else if (s.grpcInternal) {
        invalid(name, "\"grpc_internal\" applies to gRPC services only");
    }

    return s;
}

RangeAnswer parseRangeAnswer(std::string_view body)
{
    Tree tree = parseJson(body, "the range answer");
    yajl_val obj = tree.get();
    throwIfError(obj);

    if (field(obj, "header") == nullptr) {
        throw Error("the range answer has no header");
    }

    RangeAnswer a;
    a.revision = headerRevision(obj);
    a.more = boolOf(field(obj, "more"));

    yajl_val kvs = field(obj, "kvs");
    if (kvs != nullptr) {
        if (!YAJL_IS_ARRAY(kvs)) {
            throw Error("the range answer's \"kvs\" is not a list");
        }
        for (size_t i = 0; i < kvs->u.array.len; i++) {
            a.kvs.push_back(keyValueOf(kvs->u.array.values[i]));
        }
    }
    return a;
}

bool compactedAnswer(std::string_view body)
{
    std::string why = errorAnswer(body);
    return why.find("required revision has been compacted")
           != std::string::npos;
}

RangeRead::RangeRead(std::string_view prefix, bool shared)
{
    std::string routes = std::string(prefix) + "routes/";
    std::string afterRoutes = prefixRangeEnd(routes);

    ranges_.emplace_back(prefix, routes);
    ranges_.emplace_back(afterRoutes, prefixRangeEnd(prefix));
    if (shared) {
        ranges_.emplace_back(routes, afterRoutes);
    }
    begin();
}

void RangeRead::begin()
{
    range_ = 0;
    key_ = ranges_[0].first;
    revision_ = 0;
    limit_ = kFirstLimit;
    pages_ = 0;
    keysOnly_ = false;
    oversized_.clear();
    kvs_.clear();
}

std::string RangeRead::request() const
{
    return rangeRequest(key_, ranges_[range_].second, limit_, revision_,
                        keysOnly_);
}

bool RangeRead::add(RangeAnswer page, size_t bytes)
{
    // the keys alone for this page only, whatever it was
    bool keysOnly = keysOnly_;
    keysOnly_ = false;

    if (range_ == ranges_.size()) {
        throw Error("a range answer after the read was whole");
    }
    if (revision_ == 0) {
        if (page.revision <= 0) {
            throw Error("the range answer has no revision");
        }
        revision_ = page.revision;
    }

    // Only the keys of the range asked are taken, so that no key is taken
    // twice (etcd sends no other; a server that answers every read with
    // the whole prefix, as the tests' mocks of etcd do, is read right);
    // a page that says "more" has a last key to go on from, or a member
    // that says it and sends none makes the read endless.
    // A key twice in one answer is a damaged one: etcd's are unique.
    std::string last;
    std::set<std::string> taken;
    size_t before = kvs_.size();
    for (KeyValue &kv : page.kvs) {
        if (kv.key >= key_ && kv.key < ranges_[range_].second) {
            if (!taken.insert(kv.key).second) {
                kvs_.resize(before);
                throw Error("the range answer has a key twice");
            }
            last = std::max(last, kv.key);
            kvs_.push_back(std::move(kv));
        }
    }
    if (keysOnly && kvs_.size() > before) {
        // the one key asked for, the least, was too large with its value;
        // any other (a server that ignores the limit) is read again after
        auto least = std::min_element(
            kvs_.begin() + before, kvs_.end(),
            [](const KeyValue &a, const KeyValue &b) { return a.key < b.key; });
        KeyValue kv = std::move(*least);
        kvs_.resize(before);
        kv.value.clear();
        kv.oversized = true;
        oversized_ = kv.key;
        last = kv.key;
        kvs_.push_back(std::move(kv));
        page.more = true;
    }
    if (page.more && last.empty()) {
        throw Error("the range answer has \"more\" and no key of the range");
    }
    pages_++;

    if (page.more) {
        key_ = last + std::string(1, '\0');
        // values of the size seen: twice the keys still fit the answer
        if (bytes < kMaxRangeAnswer / 4) {
            limit_ = std::min(limit_ * 2, kMaxLimit);
        }
        return false;
    }

    if (++range_ == ranges_.size()) {
        return true;
    }
    key_ = ranges_[range_].first;
    limit_ = kFirstLimit;
    return false;
}

bool RangeRead::smaller()
{
    if (limit_ > 1) {
        limit_ /= 2;
        return true;
    }
    if (keysOnly_) {
        return false;
    }
    // one value over the cap (an etcd whose --max-request-bytes is over
    // 12 MB): its key alone, and the read goes on after it
    keysOnly_ = true;
    return true;
}

std::string RangeRead::takeOversized()
{
    std::string key;
    key.swap(oversized_);
    return key;
}

RangeAnswer RangeRead::result()
{
    RangeAnswer a;
    a.revision = revision_;
    a.kvs.swap(kvs_);
    begin();
    return a;
}

WatchMessage parseWatchMessage(std::string_view json)
{
    Tree tree = parseJson(json, "a watch message");
    yajl_val obj = tree.get();
    throwIfError(obj);

    yajl_val result = field(obj, "result");
    if (result == nullptr || !YAJL_IS_OBJECT(result)) {
        throw Error("a watch message has no \"result\"");
    }

    WatchMessage m;
    m.revision = headerRevision(result);
    m.created = boolOf(field(result, "created"));
    m.canceled = boolOf(field(result, "canceled"));
    m.compactRevision = int64Of(field(result, "compact_revision"));
    m.fragment = boolOf(field(result, "fragment"));

    yajl_val reason = field(result, "cancel_reason");
    if (reason != nullptr && YAJL_IS_STRING(reason)) {
        m.cancelReason = YAJL_GET_STRING(reason);
    }

    yajl_val events = field(result, "events");
    if (events != nullptr) {
        if (!YAJL_IS_ARRAY(events)) {
            throw Error("a watch message's \"events\" is not a list");
        }
        for (size_t i = 0; i < events->u.array.len; i++) {
            yajl_val e = events->u.array.values[i];
            WatchEvent ev;
            yajl_val type = field(e, "type");
            // PUT is the enum's zero, which the gateway leaves out
            if (type != nullptr && YAJL_IS_STRING(type)
                && std::strcmp(YAJL_GET_STRING(type), "DELETE") == 0) {
                ev.put = false;
            } else if (type != nullptr && YAJL_IS_INTEGER(type)
                       && YAJL_GET_INTEGER(type) == 1) {
                ev.put = false;
            }
            ev.kv = keyValueOf(field(e, "kv"));
            m.events.push_back(std::move(ev));
        }
    }
    return m;
}

std::string parseAuthAnswer(std::string_view body)
{
    Tree tree = parseJson(body, "the authentication answer");
    yajl_val obj = tree.get();
    throwIfError(obj);

    yajl_val token = field(obj, "token");
    if (token == nullptr || !YAJL_IS_STRING(token)
        || *YAJL_GET_STRING(token) == '\0') {
        throw Error("the authentication answer has no token");
    }

    std::string t = YAJL_GET_STRING(token);
    for (char c : t) {
        if (c < 0x21 || c > 0x7e) {
            throw Error("the authentication token is not printable");
        }
    }
    return t;
}

std::string errorAnswer(std::string_view body)
{
    try {
        Tree tree = parseJson(body, "the answer");
        throwIfError(tree.get());
    } catch (const Error &e) {
        std::string what = e.what();
        return what.compare(0, 6, "etcd: ") == 0 ? what : std::string();
    }
    return std::string();
}

std::string prefixRangeEnd(std::string_view prefix)
{
    std::string end(prefix);
    while (!end.empty()) {
        if (uint8_t(end.back()) < 0xff) {
            end.back() = char(uint8_t(end.back()) + 1);
            return end;
        }
        end.pop_back();
    }
    // every key: "\0"
    return std::string(1, '\0');
}

std::string rangeRequest(std::string_view key, std::string_view end,
                         int64_t limit, int64_t revision, bool keysOnly)
{
    JsonWriter w;
    w.beginObject();
    w.key("key");
    w.string(encodeBase64(key));
    w.key("range_end");
    w.string(encodeBase64(end));
    if (limit > 0) {
        w.key("limit");
        w.string(std::to_string(limit));
    }
    if (revision > 0) {
        w.key("revision");
        w.string(std::to_string(revision));
    }
    if (keysOnly) {
        w.key("keys_only");
        w.boolean(true);
    }
    w.endObject();
    return w.take();
}

std::string watchRequest(std::string_view prefix, int64_t startRevision)
{
    JsonWriter w;
    w.beginObject();
    w.key("create_request");
    w.beginObject();
    w.key("key");
    w.string(encodeBase64(prefix));
    w.key("range_end");
    w.string(encodeBase64(prefixRangeEnd(prefix)));
    w.key("start_revision");
    w.string(std::to_string(startRevision));
    // Without it etcd sends the events of up to 1,000 revisions that a
    // watch has to catch up with in one message, of any size; with it,
    // parts of at most its request size (1.5 MiB and 512 KiB of grpc's
    // room) each, or one event.
    w.key("fragment");
    w.boolean(true);
    w.endObject();
    w.endObject();
    return w.take();
}

namespace {

// {"NAME": "N"}: the JSON gateway takes etcd's int64 fields as strings
std::string int64Request(const char *name, int64_t value)
{
    JsonWriter w;
    w.beginObject();
    w.key(name);
    w.string(std::to_string(value));
    w.endObject();
    return w.take();
}

} // namespace

std::string leaseGrantRequest(int64_t ttl)
{
    return int64Request("TTL", ttl);
}

std::string leaseKeepAliveRequest(int64_t lease)
{
    return int64Request("ID", lease);
}

namespace {

// {"request_put": {"key": ..., "value": ..., "lease": ...}}
void writePut(JsonWriter &w, std::string_view key, std::string_view value,
              int64_t lease)
{
    w.beginObject();
    w.key("request_put");
    w.beginObject();
    w.key("key");
    w.string(encodeBase64(key));
    w.key("value");
    w.string(encodeBase64(value));
    w.key("lease");
    w.string(std::to_string(lease));
    w.endObject();
    w.endObject();
}

std::string leaseHex(int64_t lease)
{
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%llx",
                  static_cast<unsigned long long>(lease));
    return hex;
}

/*
 * A txn's condition, one compare: `field` of `key` (its target, in etcd's
 * terms: CREATE, MOD, LEASE) is `value`.
 */
void writeCompare(JsonWriter &w, std::string_view key, const char *target,
                  const char *field, int64_t value)
{
    w.key("compare");
    w.beginArray();
    w.beginObject();
    w.key("key");
    w.string(encodeBase64(key));
    w.key("result");
    w.string("EQUAL");
    w.key("target");
    w.string(target);
    w.key(field);
    w.string(std::to_string(value));
    w.endObject();
    w.endArray();
}

// A txn's compare: the claim, pollersKey, is still bound to `lease`.
void writeClaimHolds(JsonWriter &w, std::string_view pollersKey, int64_t lease)
{
    writeCompare(w, pollersKey, "LEASE", "lease", lease);
}

// A txn that puts `value` at `key` (bound to `lease`, 0: none) when the
// compare `writeCondition` writes holds.
template <class Condition>
std::string conditionalPut(Condition &&writeCondition, std::string_view key,
                           std::string_view value, int64_t lease)
{
    JsonWriter w;
    w.beginObject();
    writeCondition(w);
    w.key("success");
    w.beginArray();
    writePut(w, key, value, lease);
    w.endArray();
    w.endObject();
    return w.take();
}

} // namespace

std::string claimRequest(std::string_view pollersKey, int64_t lease)
{
    return conditionalPut(
        [&](JsonWriter &w) {
            writeCompare(w, pollersKey, "CREATE", "create_revision", 0);
        },
        pollersKey, leaseHex(lease), lease);
}

std::string routesRequest(std::string_view pollersKey,
                          std::string_view routesKey, int64_t lease,
                          std::string_view value)
{
    // bound to the lease too: a service nobody polls any more leaves no
    // routes behind, and a claim with no routes is one that never polled
    return conditionalPut(
        [&](JsonWriter &w) { writeClaimHolds(w, pollersKey, lease); },
        routesKey, value, lease);
}

std::string overridesRequest(std::string_view key, std::string_view value,
                             int64_t modRevision)
{
    JsonWriter w;
    w.beginObject();
    writeCompare(w, key, "MOD", "mod_revision", modRevision);
    w.key("success");
    w.beginArray();
    writePut(w, key, value, 0);
    w.endArray();
    w.key("failure");
    w.beginArray();
    w.beginObject();
    w.key("request_range");
    w.beginObject();
    w.key("key");
    w.string(encodeBase64(key));
    w.key("keys_only");
    w.boolean(true);
    w.endObject();
    w.endObject();
    w.endArray();
    w.endObject();
    return w.take();
}

std::string releaseRequest(std::string_view pollersKey,
                           std::string_view routesKey, int64_t lease)
{
    JsonWriter w;
    w.beginObject();
    writeClaimHolds(w, pollersKey, lease);
    w.key("success");
    w.beginArray();
    for (std::string_view key : {pollersKey, routesKey}) {
        w.beginObject();
        w.key("request_delete_range");
        w.beginObject();
        w.key("key");
        w.string(encodeBase64(key));
        w.endObject();
        w.endObject();
    }
    w.endArray();
    w.endObject();
    return w.take();
}

std::string checkRequest(std::string_view prefix)
{
    JsonWriter w;
    w.beginObject();
    w.key("key");
    w.string(encodeBase64(prefix));
    w.key("count_only");
    w.boolean(true);
    w.endObject();
    return w.take();
}

void parseLeaseAnswer(std::string_view body, int64_t &lease, int64_t &ttl)
{
    Tree tree = parseJson(body, "the lease answer");
    yajl_val obj = tree.get();
    throwIfError(obj);

    // a keepalive's answer is a stream's message: {"result": {...}}
    yajl_val result = field(obj, "result");
    if (result != nullptr) {
        throwIfError(result);
        obj = result;
    }

    lease = int64Of(field(obj, "ID"));
    ttl = int64Of(field(obj, "TTL"), true);
    if (lease <= 0) {
        throw Error("the lease answer has no \"ID\"");
    }
}

bool parseTxnAnswer(std::string_view body)
{
    Tree tree = parseJson(body, "the txn answer");
    yajl_val obj = tree.get();
    throwIfError(obj);

    if (field(obj, "header") == nullptr) {
        throw Error("the txn answer has no header");
    }
    return boolOf(field(obj, "succeeded"));
}

bool parseOverridesAnswer(std::string_view body, int64_t &current)
{
    Tree tree = parseJson(body, "the overrides' txn answer");
    yajl_val obj = tree.get();
    throwIfError(obj);

    if (field(obj, "header") == nullptr) {
        throw Error("the overrides' txn answer has no header");
    }
    if (boolOf(field(obj, "succeeded"))) {
        return true;
    }

    // {"responses": [{"response_range": {"header": ..., "kvs": [...]}}]}
    yajl_val responses = field(obj, "responses");
    yajl_val range = nullptr;
    if (responses != nullptr && YAJL_IS_ARRAY(responses)
        && responses->u.array.len == 1) {
        range = field(responses->u.array.values[0], "response_range");
    }
    if (range == nullptr || !YAJL_IS_OBJECT(range)) {
        throw Error("the overrides' txn answer has no read of the key");
    }

    current = 0;
    yajl_val kvs = field(range, "kvs");
    if (kvs != nullptr) {
        if (!YAJL_IS_ARRAY(kvs) || kvs->u.array.len > 1) {
            throw Error("the overrides' txn answer's \"kvs\" is not one key");
        }
        if (kvs->u.array.len == 1) {
            current = keyValueOf(kvs->u.array.values[0]).modRevision;
        }
    }
    if (current < 0) {
        throw Error("the overrides' txn answer has a negative revision");
    }
    return false;
}

std::vector<std::pair<std::string, std::string>>
shareValues(const unsigned char *snapshot, size_t len)
{
    Snapshot snap = decodeSnapshot(snapshot, len);
    std::vector<std::pair<std::string, std::string>> values;

    for (const Service &s : snap.services) {
        if (s.state == ServiceState::Pending) {
            values.emplace_back(s.name, std::string()); // nothing to say
            continue;
        }

        JsonWriter w;
        w.beginObject();
        w.key("state");
        w.string(stateName(s.state));
        w.key("url");    // what was polled: another gateway's service of the
        w.string(s.url); // same name may be another service
        if (!s.routeSet.version.empty()) {
            w.key("version");
            w.string(s.routeSet.version);
        }
        w.key("routes");
        w.beginArray();
        for (const Route &r : s.routeSet.routes) {
            w.beginObject();
            w.key("path");
            w.string(r.path);
            w.key("methods");
            writeRouteMethods(w, r.methods, r.extensionMethods);
            if (!r.name.empty()) {
                w.key("name");
                w.string(r.name);
            }
            if (!r.tags.empty()) {
                w.key("tags");
                w.beginArray();
                for (const std::string &tag : r.tags) {
                    w.string(tag);
                }
                w.endArray();
            }
            if (r.authRequired) {
                w.key("auth_required");
                w.boolean(true);
            }
            if (r.websocket) {
                w.key("websocket");
                w.boolean(true);
            }
            if (r.protocol == Protocol::Grpc) {
                w.key("protocol");
                w.string("grpc");
                w.key("streaming");
                w.string(streamingName(r.streaming));
            }
            w.endObject();
        }
        w.endArray();
        w.endObject();
        values.emplace_back(s.name, w.take());
    }
    return values;
}

int shareState(std::string_view value, std::string_view url)
{
    Tree tree = parseJson(value, "the routes' value");
    yajl_val state = field(tree.get(), "state");
    yajl_val polled = field(tree.get(), "url");

    if (polled != nullptr
        && (!YAJL_IS_STRING(polled) || YAJL_GET_STRING(polled) != url)) {
        throw Error("the routes' value is of the service at "
                    + (YAJL_IS_STRING(polled)
                           ? "\"" + std::string(YAJL_GET_STRING(polled)) + "\""
                           : std::string("no URL"))
                    + ", not of this gateway's at \"" + std::string(url)
                    + "\"");
    }

    if (state != nullptr && YAJL_IS_STRING(state)) {
        std::string_view name = YAJL_GET_STRING(state);
        if (name == "healthy") {
            return int(ServiceState::Healthy);
        }
        if (name == "unhealthy") {
            return int(ServiceState::Unhealthy);
        }
    }
    throw Error("the routes' value has no \"state\" \"healthy\" or "
                "\"unhealthy\"");
}

std::string authRequest(std::string_view user, std::string_view password)
{
    JsonWriter w;
    w.beginObject();
    w.key("name");
    w.string(user);
    w.key("password");
    w.string(password);
    w.endObject();
    return w.take();
}

bool WatchStream::next(std::string &message)
{
    if (!started_) {
        size_t start = buffer_.find_first_not_of(" \t\r\n", begin_);
        if (start == std::string::npos) {
            buffer_.clear();
            begin_ = 0;
            return false;
        }
        if (buffer_[start] != '{') {
            throw Error("the watch stream is not a series of JSON objects");
        }
        begin_ = start;
        scan_ = start;
        depth_ = 0;
        inString_ = false;
        escaped_ = false;
        started_ = true;
    }

    for (; scan_ < buffer_.size(); scan_++) {
        char c = buffer_[scan_];
        if (escaped_) {
            escaped_ = false;
        } else if (inString_) {
            if (c == '\\') {
                escaped_ = true;
            } else if (c == '"') {
                inString_ = false;
            }
        } else if (c == '"') {
            inString_ = true;
        } else if (c == '{' || c == '[') {
            depth_++;
        } else if ((c == '}' || c == ']') && --depth_ == 0) {
            message.assign(buffer_, begin_, scan_ + 1 - begin_);
            begin_ = scan_ + 1;
            started_ = false;
            if (begin_ > buffer_.size() / 2) {
                buffer_.erase(0, begin_);
                begin_ = 0;
            }
            return true;
        }
    }
    return false;
}

RegistryTable::RegistryTable(std::string prefix, bool shared)
    : prefix_(prefix), shared_(shared), servicesPrefix_(prefix + "services/"),
      overridesKey_(prefix + "overrides/controls")
{
}

bool RegistryTable::setOverrides(const std::string &value, bool present,
                                 int64_t modRevision)
{
    // written again as it was: another revision all the same
    overridesRevision_ = present ? modRevision : 0;

    if (value == overrides_ && present == hasOverrides_) {
        return false;
    }
    overrides_ = value;
    hasOverrides_ = present;
    overridesVersion_++;
    return true;
}

void RegistryTable::load(const RangeAnswer &answer)
{
    held_.clear();

    // what is unchanged keeps its parse; a change counts once
    std::map<std::string, Entry> old;
    old.swap(entries_);
    bool changed = false;
    std::string overrides;
    bool present = false;
    bool kept = false;
    int64_t overridesRevision = 0;

    for (const KeyValue &kv : answer.kvs) {
        if (kv.key == overridesKey_) {
            // too large to read: the overrides held stay
            kept = kv.oversized;
            overrides = kv.value;
            present = true;
            overridesRevision = kv.modRevision;
        }
        if (kv.key.compare(0, servicesPrefix_.size(), servicesPrefix_) != 0) {
            continue;
        }
        std::string name = kv.key.substr(servicesPrefix_.size());
        auto it = old.find(name);
        if (it != old.end()) {
            entries_[name] = std::move(it->second);
            old.erase(it);
        }
        changed |= put(kv);
    }

    changed |= !old.empty();
    if (changed) {
        version_++;
    }
    if (!kept) {
        setOverrides(overrides, present, overridesRevision);
    } else {
        overridesRevision_ = overridesRevision;
    }

    std::map<std::string, int64_t> pollers;
    std::map<std::string, SharedRoutes> routes;
    uint64_t shareVersion = shareVersion_;
    pollers.swap(pollers_);
    routes.swap(routes_);
    for (const KeyValue &kv : answer.kvs) {
        putShared(kv);
    }
    // a change counts once, and a resync of the same keys not at all
    shareVersion_ = shareVersion + (pollers != pollers_ || routes != routes_);
    revision_ = answer.revision;
}

bool RegistryTable::apply(const WatchMessage &message)
{
    bool changed = false;

    // etcd cuts a response in fragments between two events, within a
    // revision too: its last revision's events wait for the next part,
    // so that what is applied, and the revision a new watch starts
    // after, is never half a revision (a txn's or a lease's deletions)
    std::vector<WatchEvent> events;
    events.swap(held_);
    events.insert(events.end(), message.events.begin(), message.events.end());

    size_t ready = events.size();
    if (message.fragment) {
        while (ready > 0
               && events[ready - 1].kv.modRevision
                      == events.back().kv.modRevision) {
            ready--;
        }
        held_.assign(std::make_move_iterator(events.begin() + ready),
                     std::make_move_iterator(events.end()));
    }

    for (size_t i = 0; i < ready; i++) {
        const WatchEvent &ev = events[i];
        changed |= ev.put ? put(ev.kv) : erase(ev.kv.key);
        if (ev.kv.modRevision > revision_) {
            revision_ = ev.kv.modRevision;
        }
    }

    // Only a progress notification (no event, not the creation) says
    // that every event up to its header's revision was sent: the header
    // of the others is the store's, and events before it may follow.
    if (message.events.empty() && !message.created && !message.canceled
        && !message.fragment && message.revision > revision_) {
        revision_ = message.revision;
    }
    if (changed) {
        version_++;
    }
    return changed;
}

void RegistryTable::setConfigured(std::string_view names)
{
    configured_.clear();
    while (!names.empty()) {
        size_t end = names.find('\0');
        if (end != 0) {
            configured_.emplace_back(names.substr(0, end));
        }
        names.remove_prefix(end == std::string_view::npos ? names.size()
                                                          : end + 1);
    }
}

int64_t RegistryTable::claimantAfter(int64_t own, int64_t after) const
{
    int64_t least = 0;

    for (const std::string &name : configured_) {
        auto it = pollers_.find(name);
        if (it == pollers_.end()) {
            continue;
        }
        int64_t lease = it->second;
        if (lease > after && lease != own && (least == 0 || lease < least)) {
            least = lease;
        }
    }
    return least;
}

std::vector<std::string> RegistryTable::orphans(int64_t lease,
                                                std::string_view names) const
{
    std::set<std::string_view> have;
    while (!names.empty()) {
        size_t end = names.find('\0');
        have.insert(names.substr(0, end));
        names.remove_prefix(end == std::string_view::npos ? names.size()
                                                          : end + 1);
    }

    std::vector<std::string> out;
    for (const auto &[name, claim] : pollers_) {
        if (claim == lease && have.count(name) == 0) {
            out.push_back(name);
        }
    }
    return out;
}

bool RegistryTable::putShared(const KeyValue &kv)
{
    std::string_view key = kv.key;
    std::string_view rest =
        std::string_view(key).substr(std::min(prefix_.size(), key.size()));

    if (key.compare(0, prefix_.size(), prefix_) != 0) {
        return false;
    }

    if (rest.compare(0, 8, "pollers/") == 0) {
        if (!shared_) {
            return true;
        }
        std::string name(rest.substr(8));
        int64_t lease = kv.lease > 0 ? kv.lease : -1;
        auto it = pollers_.find(name);
        if (it == pollers_.end() || it->second != lease) {
            pollers_[name] = lease;
            shareVersion_++;
        }
        return true;
    }

    if (rest.compare(0, 7, "routes/") == 0) {
        // a value too large to read is none: after the grace, the service
        // is polled here, as for a claimant that writes nothing
        if (!shared_ || kv.oversized) {
            return true;
        }
        std::string name(rest.substr(7));
        SharedRoutes routes{kv.value, kv.lease};
        auto it = routes_.find(name);
        if (it == routes_.end() || it->second != routes) {
            routes_[name] = routes;
            shareVersion_++;
        }
        return true;
    }

    return false;
}

bool RegistryTable::eraseShared(const std::string &key)
{
    std::string_view rest =
        std::string_view(key).substr(std::min(prefix_.size(), key.size()));

    if (key.compare(0, prefix_.size(), prefix_) != 0) {
        return false;
    }

    // with share=off, none was kept: nothing is erased
    if (rest.compare(0, 8, "pollers/") == 0) {
        shareVersion_ += pollers_.erase(std::string(rest.substr(8)));
        return true;
    }

    if (rest.compare(0, 7, "routes/") == 0) {
        shareVersion_ += routes_.erase(std::string(rest.substr(7)));
        return true;
    }

    return false;
}

bool RegistryTable::put(const KeyValue &kv)
{
    if (putShared(kv)) {
        return false;
    }
    if (kv.key == overridesKey_) {
        setOverrides(kv.value, true, kv.modRevision);
        return false;
    }
    if (kv.key.compare(0, servicesPrefix_.size(), servicesPrefix_) != 0) {
        return false;
    }
    std::string name = kv.key.substr(servicesPrefix_.size());

    auto it = entries_.find(name);
    // a value read without it is the same while its revision is
    if (it != entries_.end() && kv.oversized == it->second.oversized
        && (kv.oversized ? it->second.modRevision == kv.modRevision
                         : it->second.document == kv.value)) {
        it->second.modRevision = kv.modRevision;
        // deleted and put again while unseen: its place in the order moves
        bool moved = it->second.createRevision != kv.createRevision;
        it->second.createRevision = kv.createRevision;
        return moved;
    }

    Entry e;
    e.document = kv.value;
    e.modRevision = kv.modRevision;
    e.createRevision = kv.createRevision;
    e.oversized = kv.oversized;
    try {
        if (kv.oversized) {
            invalid(name, "its value is larger than an answer of etcd's "
                          "this gateway reads (16 MB)");
        }
        e.service = parseRegistryService(name, kv.value);
        e.valid = true;
    } catch (const Error &err) {
        e.error = err.what();
    }
    entries_[name] = std::move(e);
    return true;
}

bool RegistryTable::erase(const std::string &key)
{
    if (eraseShared(key)) {
        return false;
    }
    if (key == overridesKey_) {
        setOverrides(std::string(), false, 0);
        return false;
    }
    if (key.compare(0, servicesPrefix_.size(), servicesPrefix_) != 0) {
        return false;
    }
    return entries_.erase(key.substr(servicesPrefix_.size())) > 0;
}

std::string RegistryTable::statusJson() const
{
    JsonWriter w;
    w.beginArray();
    for (const auto &[name, e] : entries_) {
        w.beginObject();
        w.key("name");
        w.string(isValidUtf8(name) ? name : quoted(name, 64));
        w.key("mod_revision");
        w.integer(e.modRevision);
        w.key("valid");
        w.boolean(e.valid);
        if (e.valid) {
            w.key("url");
            w.string(e.service.url);
        } else {
            w.key("last_error");
            w.string(e.error);
        }
        w.endObject();
    }
    w.endArray();
    return w.take();
}

std::string RegistryTable::servingJson() const
{
    std::vector<std::pair<const std::string *, const Entry *>> valid;
    for (const auto &[name, e] : entries_) {
        if (e.valid) {
            valid.emplace_back(&name, &e);
        }
    }
    // entries_ is by name: stable, so equal revisions stay by name
    std::stable_sort(
        valid.begin(), valid.end(), [](const auto &x, const auto &y) {
            return x.second->createRevision < y.second->createRevision;
        });

    JsonWriter w;
    w.beginObject();
    for (const auto &[name, e] : valid) {
        w.key(*name);
        w.string(e->document);
    }
    w.endObject();
    return w.take();
}

std::vector<RegistryService> servingServices(std::string_view json)
{
    Tree tree = parseJson(json, "the registry's services");
    yajl_val obj = tree.get();
    std::vector<RegistryService> out;

    for (size_t i = 0; i < obj->u.object.len; i++) {
        yajl_val v = obj->u.object.values[i];
        if (!YAJL_IS_STRING(v)) {
            throw Error("the registry's services: a document is not a string");
        }
        try {
            out.push_back(parseRegistryService(obj->u.object.keys[i],
                                               YAJL_GET_STRING(v)));
        } catch (const Error &) {
            // checked when read: only another version's rules refuse it
        }
    }
    return out;
}

std::vector<std::string> directiveArgs(const RegistryService &s)
{
    static const char *const formats[] = {"auto", "routes", "openapi", "grpc"};
    std::vector<std::string> args;

    args.push_back(s.url);
    args.push_back("interval=" + std::to_string(s.intervalMs) + "ms");
    args.push_back("timeout=" + std::to_string(s.timeoutMs) + "ms");
    args.push_back("fails=" + std::to_string(s.fails));
    args.push_back("passes=" + std::to_string(s.passes));
    if (!s.uri.empty()) {
        args.push_back("uri=" + s.uri);
    }
    args.push_back(std::string("format=") + formats[int(s.format)]);
    if (s.grpcInternal) {
        args.push_back("grpc_internal=on");
    }
    for (const std::string &p : s.prefixes) {
        args.push_back("prefix=" + p);
    }
    if (!s.upstream.empty()) {
        args.push_back("upstream=" + s.upstream);
    }
    return args;
}

} // namespace discovery
