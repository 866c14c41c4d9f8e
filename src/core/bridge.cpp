// bridge.cpp: the extern "C" functions of discovery_core.h; no exception
// leaves this file.
#include "discovery_core.h"

#include "api.hpp"
#include "controls.hpp"
#include "error.hpp"
#include "grpc_reflection.hpp"
#include "health.hpp"
#include "image_file.hpp"
#include "json_escape.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "ownership.hpp"
#include "registry.hpp"
#include "request_path.hpp"
#include "route_document.hpp"
#include "router.hpp"
#include "snapshot.hpp"
#include "snapshot_update.hpp"
#include "status_json.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>

/*
 * The core keeps its own names for what crosses this file (it includes no
 * header of ours or nginx's); the numbers must agree with discovery_core.h.
 */
using discovery::DocumentFormat;
using discovery::LogLevel;
using discovery::MatchStatus;
using discovery::ServiceState;

static_assert(int(LogLevel::Err) == DISCOVERY_LOG_ERR);
static_assert(int(LogLevel::Warn) == DISCOVERY_LOG_WARN);
static_assert(int(LogLevel::Info) == DISCOVERY_LOG_INFO);
static_assert(int(LogLevel::Debug) == DISCOVERY_LOG_DEBUG);
static_assert(uint32_t(ServiceState::Pending) == DISCOVERY_STATE_PENDING);
static_assert(uint32_t(ServiceState::Healthy) == DISCOVERY_STATE_HEALTHY);
static_assert(uint32_t(ServiceState::Unhealthy) == DISCOVERY_STATE_UNHEALTHY);
static_assert(int(DocumentFormat::Auto) == DISCOVERY_FORMAT_AUTO);
static_assert(int(DocumentFormat::Routes) == DISCOVERY_FORMAT_ROUTES);
static_assert(int(DocumentFormat::OpenApi) == DISCOVERY_FORMAT_OPENAPI);
static_assert(int(MatchStatus::Found) == DISCOVERY_MATCH_FOUND);
static_assert(int(MatchStatus::NotFound) == DISCOVERY_MATCH_NOT_FOUND);
static_assert(int(MatchStatus::NotAllowed) == DISCOVERY_MATCH_NOT_ALLOWED);
static_assert(int(MatchStatus::Unavailable) == DISCOVERY_MATCH_UNAVAILABLE);
static_assert(int(MatchStatus::Pending) == DISCOVERY_MATCH_PENDING);
static_assert(int(MatchStatus::Drained) == DISCOVERY_MATCH_DRAINED);
static_assert(int(MatchStatus::Disabled) == DISCOVERY_MATCH_DISABLED);
static_assert(discovery::kMaxApiBody == DISCOVERY_API_MAX_BODY);
static_assert(discovery::kMaxRangeAnswer == DISCOVERY_REGISTRY_MAX_ANSWER);
static_assert(discovery::kMaxBuckets == DISCOVERY_METRICS_MAX_BUCKETS);
static_assert(discovery::kDefaultBucketCount == DISCOVERY_METRICS_POLL_BUCKETS);
static_assert(size_t(discovery::GatewayReason::Count)
              == DISCOVERY_METRICS_REASONS);
static_assert(int(discovery::GatewayReason::Noncanonical)
              == DISCOVERY_METRICS_NONCANONICAL);
static_assert(size_t(discovery::OverflowReason::Count)
              == DISCOVERY_METRICS_OVERFLOWS);
static_assert(int(discovery::OverflowReason::RouteRemoved)
              == DISCOVERY_METRICS_OVERFLOW_ROUTE_REMOVED);
static_assert(int(discovery::OverflowReason::Unknown)
              == DISCOVERY_METRICS_OVERFLOW_UNKNOWN);
static_assert(size_t(discovery::PollOutcome::Count)
              == DISCOVERY_METRICS_POLL_RESULTS);
static_assert(int(discovery::PollOutcome::Rejected)
              == DISCOVERY_METRICS_POLL_REJECTED);
static_assert(discovery::kGet == DISCOVERY_METHOD_GET);
static_assert(discovery::kPatch == DISCOVERY_METHOD_PATCH);
static_assert(discovery::kConnect == DISCOVERY_METHOD_CONNECT);
static_assert(discovery::Router::kImageAlign == DISCOVERY_ROUTER_IMAGE_ALIGN);
static_assert(int(discovery::Protocol::Http) == DISCOVERY_PROTOCOL_HTTP);
static_assert(int(discovery::Protocol::Grpc) == DISCOVERY_PROTOCOL_GRPC);
static_assert(int(discovery::Streaming::Unary) == DISCOVERY_STREAMING_UNARY);
static_assert(int(discovery::Streaming::Client) == DISCOVERY_STREAMING_CLIENT);
static_assert(int(discovery::Streaming::Server) == DISCOVERY_STREAMING_SERVER);
static_assert(int(discovery::Streaming::Bidi) == DISCOVERY_STREAMING_BIDI);

struct discovery_registry_s {
    discovery_registry_s(std::string prefix, bool shared)
        : prefix(prefix), read(prefix, shared), table(std::move(prefix), shared)
    {
    }

    std::string prefix;
    discovery::RangeRead read;
    discovery::RegistryTable table;
    discovery::WatchStream stream;
};

struct discovery_parser_s {
    discovery_parser_s(DocumentFormat format, const discovery::Log &log)
        : parser(format, log), log(log)
    {
    }

    discovery::RouteDocumentParser parser;
    discovery::PathPrefixes prefixes;
    discovery::Log log;
};

struct discovery_grpc_s {
    discovery_grpc_s(bool internal, size_t maxSize) : poll(internal, maxSize) {}

    discovery::GrpcDiscovery poll;
    discovery::PathPrefixes prefixes;
};

struct discovery_router_s {
    std::unique_ptr<discovery::Router> router;
};

struct discovery_image_s {
    discovery::Router::Image image;
};

struct discovery_table_s {
    discovery::Snapshot snapshot;
};

namespace {

using discovery::Bytes;

discovery::Log coreLog(const discovery_log_t *log)
{
    return log != nullptr ? discovery::Log(log->handler, log->data)
                          : discovery::Log();
}

std::string_view view(const char *p, size_t len)
{
    return p != nullptr ? std::string_view(p, len) : std::string_view();
}

discovery::GrpcAnswer grpcAnswer(const discovery_grpc_answer_t *a)
{
    discovery::GrpcAnswer answer;

    answer.httpStatus = a->http_status;
    answer.contentType = view(a->content_type, a->content_type_len);
    answer.grpcStatus = a->grpc_status;
    answer.grpcMessage = view(a->grpc_message, a->grpc_message_len);
    return answer;
}

// Truncates on a UTF-8 boundary so err->text stays printable.
void setError(discovery_error_t *err, const char *text) noexcept
{
    if (err == nullptr) {
        return;
    }

    size_t n = std::strlen(text);
    if (n >= DISCOVERY_ERROR_LEN) {
        n = DISCOVERY_ERROR_LEN - 1;
        while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xc0) == 0x80) {
            n--;
        }
    }

    std::memcpy(err->text, text, n);
    err->text[n] = '\0';
}

// Runs `body`, mapping exceptions to return codes and err->text.  Every
// function below runs its work here, even work that cannot throw today:
// a core that starts throwing cannot take nginx down with it.
template <typename F>
int guard(discovery_error_t *err, F &&body) noexcept
{
    setError(err, "");

    try {
        return body();
    } catch (const std::bad_alloc &) {
        setError(err, "out of memory");
        return DISCOVERY_NOMEM;
    } catch (const std::exception &e) {
        setError(err, e.what());
        return DISCOVERY_ERROR;
    } catch (...) {
        setError(err, "internal error");
        return DISCOVERY_ERROR;
    }
}

// Hands bytes to C as malloc()ed memory, as discovery_buf_free expects.
void giveBuffer(const void *data, size_t len, discovery_buf_t *out)
{
    auto *p = static_cast<unsigned char *>(std::malloc(len > 0 ? len : 1));
    if (p == nullptr) {
        throw std::bad_alloc();
    }

    std::memcpy(p, data, len);
    out->data = p;
    out->len = len;
}

// Hands a poll's routes to C, less those outside the service's prefixes.
void giveRouteSet(discovery::RouteSet set,
                  const discovery::PathPrefixes &prefixes, discovery_buf_t *out)
{
    discovery::rejectOutside(set, prefixes);
    Bytes bytes = discovery::encodeRouteSet(set);
    giveBuffer(bytes.data(), bytes.size(), out);
}

// A roster from C, viewing its strings.
std::vector<discovery::ServiceConf>
rosterConfs(const discovery_service_conf_t *services, size_t n)
{
    std::vector<discovery::ServiceConf> confs;
    confs.reserve(n);
    for (size_t i = 0; i < n; i++) {
        const discovery_service_conf_t &s = services[i];
        confs.push_back({view(s.name, s.name_len), view(s.url, s.url_len),
                         view(s.upstream, s.upstream_len)});
    }
    return confs;
}

// Hands a router image to C, aligned as discovery_router_open() wants it.
void giveImage(const discovery::Router::Image &image, discovery_buf_t *out)
{
    void *p = std::aligned_alloc(discovery::Router::kImageAlign, image.size());
    if (p == nullptr) {
        throw std::bad_alloc();
    }

    image.write(static_cast<unsigned char *>(p));
    out->data = static_cast<unsigned char *>(p);
    out->len = image.size();
}

/*
 * The router image of a table, laid out, or NULL if it cannot be: a table
 * without its image is still the table, and workers then build their own
 * router from it.  `make` lays it out.
 */
template <class Make>
discovery_image_t *imageOrNone(Make make) noexcept
{
    try {
        return new discovery_image_s{make()};
    } catch (...) {
        return nullptr;
    }
}

void require(bool condition, const char *what)
{
    if (!condition) {
        throw discovery::Error(what);
    }
}

// A service's prefix= value, for the poll's rejectOutside().
void addPrefix(discovery::PathPrefixes &prefixes, const char *prefix,
               size_t len)
{
    require(prefix != nullptr && len > 0 && prefix[0] == '/',
            "a prefix starts with \"/\"");
    prefixes.add(std::string(prefix, len));
}

} // namespace

extern "C" {

void discovery_buf_free(discovery_buf_t *buf) noexcept
{
    guard(nullptr, [&] {
        if (buf != nullptr) {
            std::free(buf->data);
            buf->data = nullptr;
            buf->len = 0;
        }
        return DISCOVERY_OK;
    });
}

int discovery_health_update(discovery_health_t *h, int poll_ok,
                            uint32_t fails_needed,
                            uint32_t passes_needed) noexcept
{
    int changed = 0;

    guard(nullptr, [&] {
        if (h != nullptr) {
            discovery::Health health{static_cast<ServiceState>(h->state),
                                     h->fails, h->passes};
            changed = discovery::updateHealth(health, poll_ok != 0,
                                              fails_needed, passes_needed)
                          ? 1
                          : 0;
            h->state = static_cast<uint32_t>(health.state);
            h->fails = health.fails;
            h->passes = health.passes;
        }
        return DISCOVERY_OK;
    });

    return changed;
}

discovery_parser_t *discovery_parser_create(int format,
                                            discovery_log_t *log) noexcept
{
    discovery_parser_t *parser = nullptr;

    if (format != DISCOVERY_FORMAT_AUTO && format != DISCOVERY_FORMAT_ROUTES
        && format != DISCOVERY_FORMAT_OPENAPI) {
        format = DISCOVERY_FORMAT_AUTO;
    }

    // only allocation can fail here: NULL says so
    guard(nullptr, [&] {
        parser = new discovery_parser_t(static_cast<DocumentFormat>(format),
                                        coreLog(log));
        return DISCOVERY_OK;
    });

    return parser;
}

void discovery_parser_destroy(discovery_parser_t *p) noexcept
{
    guard(nullptr, [&] {
        delete p;
        return DISCOVERY_OK;
    });
}

int discovery_parser_feed(discovery_parser_t *p, const char *data, size_t len,
                          discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        require(p != nullptr, "no parser");
        require(data != nullptr || len == 0, "no data");
        p->parser.feed(data, len);
        return DISCOVERY_OK;
    });
}

int discovery_parser_finish(discovery_parser_t *p, discovery_buf_t *routes,
                            discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        require(p != nullptr && routes != nullptr, "no parser");
        giveRouteSet(p->parser.finish(), p->prefixes, routes);
        return DISCOVERY_OK;
    });
}

int discovery_parser_add_prefix(discovery_parser_t *p, const char *prefix,
                                size_t len, discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        require(p != nullptr, "no parser");
        addPrefix(p->prefixes, prefix, len);
        return DISCOVERY_OK;
    });
}

discovery_grpc_t *discovery_grpc_create(unsigned flags,
                                        size_t max_size) noexcept
{
    discovery_grpc_t *g = nullptr;

    guard(nullptr, [&] {
        g = new discovery_grpc_t((flags & DISCOVERY_GRPC_INTERNAL) != 0,
                                 max_size);
        return DISCOVERY_OK;
    });

    return g;
}

void discovery_grpc_destroy(discovery_grpc_t *g) noexcept
{
    guard(nullptr, [&] {
        delete g;
        return DISCOVERY_OK;
    });
}

int discovery_grpc_add_prefix(discovery_grpc_t *g, const char *prefix,
                              size_t len, discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        require(g != nullptr, "no gRPC poll");
        addPrefix(g->prefixes, prefix, len);
        return DISCOVERY_OK;
    });
}

int discovery_grpc_next(discovery_grpc_t *g, const char **path,
                        const unsigned char **body, size_t *len) noexcept
{
    int more = 0;

    guard(nullptr, [&] {
        const discovery::GrpcDiscovery::Call *call =
            g != nullptr ? g->poll.next() : nullptr;
        if (call != nullptr && path != nullptr && body != nullptr
            && len != nullptr) {
            *path = call->path.c_str();
            *body = reinterpret_cast<const unsigned char *>(call->body.data());
            *len = call->body.size();
            more = 1;
        }
        return DISCOVERY_OK;
    });

    return more;
}

int discovery_grpc_feed(discovery_grpc_t *g,
                        const discovery_grpc_answer_t *head, const char *data,
                        size_t len, discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        require(g != nullptr && head != nullptr, "no gRPC poll");
        require(data != nullptr || len == 0, "no data");
        g->poll.feed(grpcAnswer(head), data, len);
        return DISCOVERY_OK;
    });
}

int discovery_grpc_end(discovery_grpc_t *g,
                       const discovery_grpc_answer_t *answer,
                       discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        require(g != nullptr && answer != nullptr, "no gRPC poll");
        g->poll.end(grpcAnswer(answer));
        return DISCOVERY_OK;
    });
}

int discovery_grpc_finish(discovery_grpc_t *g, discovery_buf_t *routes,
                          discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        require(g != nullptr && routes != nullptr, "no gRPC poll");
        giveRouteSet(g->poll.finish(), g->prefixes, routes);
        return DISCOVERY_OK;
    });
}

int discovery_snapshot_roster(const unsigned char *old, size_t old_len,
                              const discovery_service_conf_t *services,
                              size_t n, int deny_overlaps, uint64_t generation,
                              discovery_buf_t *out, discovery_buf_t *image,
                              discovery_log_t *log,
                              discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        require(out != nullptr, "no output buffer");
        require(services != nullptr || n == 0, "no services");

        if (image != nullptr) {
            image->data = nullptr;
            image->len = 0;
        }

        discovery::Snapshot sealed;
        Bytes bytes = discovery::applyRoster(
            old, old_len, rosterConfs(services, n), deny_overlaps != 0,
            generation, coreLog(log), image != nullptr ? &sealed : nullptr);

        discovery_buf_t table = {nullptr, 0};
        giveBuffer(bytes.data(), bytes.size(), &table);

        if (image != nullptr) {
            // as a buffer: the roster's table is made once, at a reload
            try {
                giveImage(discovery::Router::image(sealed), image);
            } catch (...) {
                image->data = nullptr;
                image->len = 0;
            }
        }

        *out = table;
        return DISCOVERY_OK;
    });
}

int discovery_snapshot_adopt_image(unsigned char *old, size_t old_len,
                                   unsigned char *image, size_t image_len,
                                   const discovery_service_conf_t *services,
                                   size_t n, int deny_overlaps,
                                   uint64_t generation,
                                   discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        require(services != nullptr || n == 0, "no services");

        return discovery::adoptRoster(old, old_len, image, image_len,
                                      rosterConfs(services, n),
                                      deny_overlaps != 0, generation)
                   ? DISCOVERY_OK
                   : DISCOVERY_DECLINED;
    });
}

int discovery_image_file_header(const unsigned char *table, size_t table_len,
                                const unsigned char *image, size_t image_len,
                                unsigned char *header,
                                discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        discovery::imageFileHeader(table, table_len, image, image_len, header);
        return DISCOVERY_OK;
    });
}

int discovery_image_file_check(const unsigned char *header,
                               const unsigned char *image, size_t image_len,
                               const unsigned char *table, size_t table_len,
                               discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        discovery::checkImageFile(header, image, image_len, table, table_len);
        return DISCOVERY_OK;
    });
}

size_t discovery_image_size(const discovery_image_t *image) noexcept
{
    return image->image.size();
}

int discovery_image_write(const discovery_image_t *image, unsigned char *dst,
                          discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        require(image != nullptr && dst != nullptr, "no image");
        require(reinterpret_cast<uintptr_t>(dst)
                        % discovery::Router::kImageAlign
                    == 0,
                "an image's place is not aligned");
        image->image.write(dst);
        return DISCOVERY_OK;
    });
}

void discovery_image_free(discovery_image_t *image) noexcept
{
    delete image;
}

int discovery_snapshot_apply_polls(const unsigned char *old, size_t old_len,
                                   const discovery_poll_t *polls, size_t n,
                                   uint64_t generation, discovery_buf_t *out,
                                   discovery_image_t **image,
                                   const unsigned char *old_image,
                                   size_t old_image_len,
                                   discovery_table_t **decoded,
                                   discovery_log_t *log,
                                   discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        require(out != nullptr, "no output buffer");
        require(polls != nullptr || n == 0, "no polls");
        if (image != nullptr) {
            *image = nullptr;
        }
        if (decoded != nullptr) {
            *decoded = nullptr;
        }

        std::vector<discovery::PollResult> all(n);
        for (size_t i = 0; i < n; i++) {
            all[i].name = view(polls[i].name, polls[i].name_len);
            all[i].url = view(polls[i].url, polls[i].url_len);
            require(polls[i].state <= DISCOVERY_STATE_UNHEALTHY,
                    "invalid service state");
            all[i].state = static_cast<ServiceState>(polls[i].state);
            all[i].routes = polls[i].routes;
            all[i].routesLen = polls[i].routes_len;
        }

        discovery::Snapshot sealed;
        discovery::ApplyTimes took;
        discovery::Router::TableBefore before;
        bool patch = image != nullptr && old_image != nullptr;
        auto bytes = discovery::applyPolls(
            old, old_len, all, generation, coreLog(log),
            image != nullptr || decoded != nullptr ? &sealed : nullptr, &took,
            patch ? &before : nullptr);
        if (!bytes) {
            return DISCOVERY_UNCHANGED;
        }

        discovery_buf_t table = {nullptr, 0};
        giveBuffer(bytes->data(), bytes->size(), &table);

        double imageMs = 0;
        discovery::Router::UpdateInfo made;
        made.fallback = "no previous image";
        if (image != nullptr) {
            double t0 = discovery::threadCpuMs();
            if (patch) {
                *image = imageOrNone([&] {
                    return discovery::Router::update(old_image, old_image_len,
                                                     before, sealed, &made);
                });
            } else {
                *image = imageOrNone(
                    [&] { return discovery::Router::image(sealed); });
            }
            imageMs = discovery::threadCpuMs() - t0;
        }

        // cheap, once per table: what each stage took, at debug level
        char line[384];
        int n = std::snprintf(
            line, sizeof(line),
            "table %llu made in ms of thread CPU: decode %.1f, check %.1f "
            "(%s, routes checked: %zu), warnings %.1f, encode %.1f, router image %.1f "
            "(%s%s: "
            "%zu routes removed, %zu added, %zu terminals)",
            static_cast<unsigned long long>(generation), took.decode,
            took.check,
            took.checkedWhole ? "the whole table"
                              : "the changed routes' subtrees",
            took.checkedRoutes,
            took.warn, took.encode, imageMs,
            made.incremental ? "patched" : "built whole, ",
            made.incremental ? "" : made.fallback, made.routesRemoved,
            made.routesAdded, made.terminals);
        if (n > 0) {
            coreLog(log).write(
                discovery::LogLevel::Debug,
                std::string_view(line, std::min<size_t>(n, sizeof(line) - 1)));
        }

        if (decoded != nullptr) {
            // none when out of memory: the table is decoded where needed
            *decoded = new (std::nothrow) discovery_table_s;
            if (*decoded != nullptr) {
                (*decoded)->snapshot = std::move(sealed);
            }
        }

        *out = table;
        return DISCOVERY_OK;
    });
}

void discovery_table_free(discovery_table_t *table) noexcept
{
    delete table;
}

int discovery_snapshot_states(const unsigned char *blob, size_t len,
                              const discovery_service_conf_t *services,
                              size_t n, uint32_t *states,
                              discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        require(states != nullptr && (services != nullptr || n == 0),
                "no services");
        discovery::Snapshot snap = discovery::decodeSnapshot(blob, len);

        for (size_t i = 0; i < n; i++) {
            std::string_view name =
                view(services[i].name, services[i].name_len);
            states[i] = DISCOVERY_STATE_PENDING;
            for (const discovery::Service &s : snap.services) {
                if (s.name == name) {
                    states[i] = static_cast<uint32_t>(s.state);
                    break;
                }
            }
        }
        return DISCOVERY_OK;
    });
}

int discovery_snapshot_check(const unsigned char *blob, size_t len,
                             uint64_t *generation,
                             discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        uint64_t gen = discovery::checkSnapshot(blob, len);
        if (generation != nullptr) {
            *generation = gen;
        }
        return DISCOVERY_OK;
    });
}

discovery_router_t *discovery_router_create(const unsigned char *snapshot,
                                            size_t len,
                                            discovery_error_t *err) noexcept
{
    discovery_router_t *router = nullptr;

    guard(err, [&] {
        auto built = discovery::Router::build(snapshot, len);
        router = new discovery_router_t{std::move(built)};
        return DISCOVERY_OK;
    });

    return router;
}

int discovery_router_image(const unsigned char *snapshot, size_t len,
                           discovery_buf_t *out,
                           discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        require(out != nullptr, "no buffer");

        giveImage(discovery::Router::image(snapshot, len), out);
        return DISCOVERY_OK;
    });
}

discovery_router_t *discovery_router_open(const unsigned char *image,
                                          size_t len,
                                          discovery_error_t *err) noexcept
{
    discovery_router_t *router = nullptr;

    guard(err, [&] {
        auto view = discovery::Router::view(image, len);
        router = new discovery_router_t{std::move(view)};
        return DISCOVERY_OK;
    });

    return router;
}

int discovery_router_state(const discovery_router_t *router,
                           size_t index) noexcept
{
    int state = -1;

    guard(nullptr, [&] {
        if (router != nullptr && router->router
            && index < router->router->serviceCount()) {
            state = static_cast<int>(router->router->service(index).state);
        }
        return DISCOVERY_OK;
    });

    return state;
}

void discovery_router_destroy(discovery_router_t *router) noexcept
{
    guard(nullptr, [&] {
        delete router;
        return DISCOVERY_OK;
    });
}

int discovery_router_pending(const discovery_router_t *router) noexcept
{
    int pending = 0;

    guard(nullptr, [&] {
        pending =
            router != nullptr && router->router && router->router->anyPending();
        return DISCOVERY_OK;
    });

    return pending;
}

int discovery_router_match(const discovery_router_t *router, const char *method,
                           size_t method_len, const char *path, size_t path_len,
                           int websocket, discovery_match_t *m) noexcept
{
    if (m == nullptr) {
        return DISCOVERY_MATCH_NOT_FOUND;
    }

    *m = discovery_match_t();
    m->status = DISCOVERY_MATCH_NOT_FOUND;
    m->entry = DISCOVERY_NO_ENTRY;

    if (router == nullptr) {
        return m->status;
    }

    // match() does not allocate, but keep the promise of no exceptions
    int rc = guard(nullptr, [&] {
        discovery::Match r = router->router->match(
            view(method, method_len), view(path, path_len), websocket != 0);

        m->status = static_cast<int>(r.status);
        m->service = r.service.data();
        m->service_len = r.service.size();
        m->upstream = r.upstream.data();
        m->upstream_len = r.upstream.size();
        m->route = r.route.data();
        m->route_len = r.route.size();
        m->allow = r.allow.data();
        m->allow_len = r.allow.size();
        m->auth_required = r.authRequired;
        m->service_index = r.serviceIndex;
        m->protocol = static_cast<int>(r.protocol);
        m->streaming = static_cast<int>(r.streaming);
        m->entry = r.entry;
        return DISCOVERY_OK;
    });

    if (rc != DISCOVERY_OK) {
        *m = discovery_match_t();
        m->status = DISCOVERY_MATCH_NOT_FOUND;
        m->entry = DISCOVERY_NO_ENTRY;
    }

    return m->status;
}

int discovery_router_roster(const discovery_router_t *router,
                            discovery_service_conf_t *services, size_t max,
                            size_t *n, discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        require(router != nullptr && n != nullptr, "no router");
        require(services != nullptr || max == 0, "no services");

        const discovery::Router &r = *router->router;

        *n = r.serviceCount();
        for (size_t i = 0; i < *n && i < max; i++) {
            discovery::Router::ServiceView s = r.service(i);
            services[i].name = s.name.data();
            services[i].name_len = s.name.size();
            services[i].url = s.url.data();
            services[i].url_len = s.url.size();
            services[i].upstream = s.upstream.data();
            services[i].upstream_len = s.upstream.size();
        }
        return DISCOVERY_OK;
    });
}

int discovery_path_is_canonical(const char *raw, size_t len) noexcept
{
    int canonical = 0;

    guard(nullptr, [&] {
        std::string_view path = view(raw, len);

        // a canonical path has a canonical form: the common case, first
        if (discovery::isCanonicalPath(path)) {
            canonical = 1;
        } else {
            canonical = discovery::hasCanonicalForm(path) ? 0 : -1;
        }
        return DISCOVERY_OK;
    });

    return canonical;
}

size_t discovery_path_canonicalize(const char *raw, size_t len,
                                   char *out) noexcept
{
    size_t n = 0;

    guard(nullptr, [&] {
        std::string path = discovery::canonicalPath(view(raw, len));
        if (path.size() > 3 * len + 1) {
            return DISCOVERY_OK; // longer than the caller's room: not ours
        }
        std::memcpy(out, path.data(), path.size());
        n = path.size();
        return DISCOVERY_OK;
    });

    return n;
}

int discovery_status_render(const unsigned char *snapshot, size_t len,
                            const discovery_service_stats_t *stats, size_t n,
                            const char *table_error, size_t table_error_len,
                            const char *module_version, const char *registry,
                            size_t registry_len, discovery_buf_t *out,
                            discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        require(out != nullptr, "no output buffer");
        require(stats != nullptr || n == 0, "no stats");
        require(module_version != nullptr, "no module version");

        std::vector<discovery::ServiceStats> all(n);
        for (size_t i = 0; i < n; i++) {
            const discovery_service_stats_t &s = stats[i];
            all[i].name = view(s.name, s.name_len);
            all[i].lastCheck = s.last_check;
            all[i].lastSuccess = s.last_success;
            all[i].failures = s.failures;
            all[i].lastError = view(s.last_error, s.last_error_len);
            all[i].registry = s.registry != 0;
            all[i].poller = s.poller;
            all[i].pollerLease = s.poller_lease;
        }

        std::string json = discovery::renderStatus(
            discovery::decodeSnapshot(snapshot, len), all,
            view(table_error, table_error_len), module_version,
            view(registry, registry_len));
        json += '\n';
        giveBuffer(json.data(), json.size(), out);
        return DISCOVERY_OK;
    });
}

size_t discovery_json_escape(unsigned char *dst, const unsigned char *src,
                             size_t len) noexcept
{
    size_t n = 0;

    guard(nullptr, [&] {
        if (src != nullptr) {
            n = discovery::escapeJson(dst, src, len);
        }
        return DISCOVERY_OK;
    });

    return n;
}

int discovery_api_uses_router(const char *path, size_t len) noexcept
{
    try {
        return discovery::apiUsesRouter(view(path, len)) ? 1 : 0;
    } catch (...) {
        return 1; // where it cannot be told, as if it did
    }
}

int discovery_api_handle(const discovery_api_request_t *req,
                         const discovery_api_view_t *v,
                         discovery_api_answer_t *answer,
                         discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        require(req != nullptr && v != nullptr && answer != nullptr,
                "no request");
        require(v->stats != nullptr || v->n == 0, "no stats");
        *answer = discovery_api_answer_t();

        discovery::ApiRequest r;
        r.method = view(req->method, req->method_len);
        r.path = view(req->path, req->path_len);
        r.query = view(req->query, req->query_len);
        r.body = view(req->body, req->body_len);
        r.bodyTooLarge = req->body_too_large != 0;
        r.contentType = view(req->content_type, req->content_type_len);
        r.origin = view(req->origin, req->origin_len);
        r.host = view(req->host, req->host_len);
        r.write = req->write != 0;
        r.persistRestart = req->persist_restart != 0;
        r.moduleVersion = req->module_version != nullptr
                              ? std::string_view(req->module_version)
                              : std::string_view();
        r.now = req->now;

        discovery::Snapshot table;
        discovery::ApiView w;
        if (v->snapshot != nullptr) {
            table = discovery::decodeSnapshot(v->snapshot, v->snapshot_len);
            w.table = &table;
        }
        for (size_t i = 0; i < v->n; i++) {
            const discovery_service_stats_t &s = v->stats[i];
            discovery::ServiceStats st;
            st.name = view(s.name, s.name_len);
            st.lastCheck = s.last_check;
            st.lastSuccess = s.last_success;
            st.failures = s.failures;
            st.lastError = view(s.last_error, s.last_error_len);
            st.registry = s.registry != 0;
            st.poller = s.poller;
            st.pollerLease = s.poller_lease;
            w.stats.push_back(st);
        }
        w.controls = discovery::decodeControls(v->controls, v->controls_len);
        w.router = v->router != nullptr ? v->router->router.get() : nullptr;

        discovery::ApiAnswer a = discovery::handleApi(r, w);

        discovery_api_answer_t out = discovery_api_answer_t();
        out.status = a.status;
        std::memcpy(out.allow, a.allow.data(),
                    std::min(a.allow.size(), sizeof(out.allow) - 1));

        try {
            giveBuffer(a.body.data(), a.body.size(), &out.body);
            if (a.controlsChanged) {
                Bytes c = discovery::encodeControls(a.controls);
                giveBuffer(c.data(), c.size(), &out.controls);
                out.controls_changed = 1;
                out.next_expiry = a.controls.nextExpiry();
            }
            if (!a.poll.empty()) {
                giveBuffer(a.poll.data(), a.poll.size(), &out.poll);
            }
        } catch (...) {
            std::free(out.body.data);
            std::free(out.controls.data);
            std::free(out.poll.data);
            throw;
        }

        *answer = out;
        return DISCOVERY_OK;
    });
}

int discovery_controls_expire(const unsigned char *controls, size_t len,
                              int64_t now, discovery_buf_t *out,
                              int64_t *next_expiry,
                              discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        require(out != nullptr && next_expiry != nullptr, "no output buffer");
        discovery::Controls c = discovery::decodeControls(controls, len);
        bool expired = c.expire(now);
        *next_expiry = c.nextExpiry();
        if (!expired) {
            return DISCOVERY_UNCHANGED;
        }
        Bytes bytes = discovery::encodeControls(c);
        giveBuffer(bytes.data(), bytes.size(), out);
        return DISCOVERY_OK;
    });
}

int discovery_snapshot_controls(const unsigned char *snapshot, size_t len,
                                discovery_buf_t *out, int64_t *next_expiry,
                                discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        require(out != nullptr && next_expiry != nullptr, "no output buffer");
        discovery::checkSnapshot(snapshot, len);
        auto c = discovery::snapshotControls(snapshot, len);
        *next_expiry =
            discovery::decodeControls(c.first, c.second).nextExpiry();
        giveBuffer(c.first, c.second, out);
        return DISCOVERY_OK;
    });
}

int discovery_snapshot_set_controls(const unsigned char *old, size_t old_len,
                                    const unsigned char *controls, size_t len,
                                    uint64_t generation, discovery_buf_t *out,
                                    discovery_image_t **image,
                                    const unsigned char *old_image,
                                    size_t old_image_len,
                                    discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        require(out != nullptr, "no output buffer");
        require(controls != nullptr || len == 0, "no controls");

        if (image != nullptr) {
            *image = nullptr;
        }

        auto have = discovery::snapshotControls(old, old_len);
        if (have.second == len
            && (len == 0 || std::memcmp(have.first, controls, len) == 0)) {
            return DISCOVERY_UNCHANGED;
        }

        Bytes c(controls, controls + len);
        (void)discovery::decodeControls(c.data(), c.size()); // checked
        Bytes bytes = discovery::replaceControls(old, old_len, c, generation);

        discovery_buf_t table = {nullptr, 0};
        giveBuffer(bytes.data(), bytes.size(), &table);

        if (image != nullptr) {
            try {
                discovery::Snapshot next = discovery::decodeSnapshot(
                    bytes.data(), bytes.size(), discovery::Provenance::Made);
                if (old_image != nullptr) {
                    // only the controls and the generation differ
                    discovery::Router::TableBefore before;
                    before.generation =
                        discovery::snapshotHead(old, old_len).generation;
                    before.rejections = next.rejections;
                    before.extensionMethods = next.extensionMethods;
                    before.controls.assign(have.first,
                                           have.first + have.second);
                    *image = imageOrNone([&] {
                        return discovery::Router::update(
                            old_image, old_image_len, before, next);
                    });
                } else {
                    *image = imageOrNone(
                        [&] { return discovery::Router::image(next); });
                }
            } catch (...) {
                std::free(table.data);
                throw;
            }
        }

        *out = table;
        return DISCOVERY_OK;
    });
}

discovery_registry_t *discovery_registry_create(const char *prefix,
                                                size_t len, int share) noexcept
{
    discovery_registry_t *r = nullptr;
    guard(nullptr, [&] {
        r = new discovery_registry_s(std::string(prefix, len), share != 0);
        return DISCOVERY_OK;
    });
    return r;
}

void discovery_registry_destroy(discovery_registry_t *r) noexcept
{
    delete r;
}

int discovery_registry_range_request(discovery_registry_t *r, int begin,
                                     discovery_buf_t *out,
                                     discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        if (begin) {
            r->read.begin();
        }
        std::string body = r->read.request();
        giveBuffer(body.data(), body.size(), out);
        return DISCOVERY_OK;
    });
}

int discovery_registry_watch_request(discovery_registry_t *r,
                                     discovery_buf_t *out,
                                     discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        std::string body =
            discovery::watchRequest(r->table.prefix(), r->table.revision() + 1);
        giveBuffer(body.data(), body.size(), out);
        return DISCOVERY_OK;
    });
}

int discovery_registry_auth_request(const char *user, size_t user_len,
                                    const char *password, size_t password_len,
                                    discovery_buf_t *out,
                                    discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        std::string body =
            discovery::authRequest(std::string_view(user, user_len),
                                   std::string_view(password, password_len));
        giveBuffer(body.data(), body.size(), out);
        return DISCOVERY_OK;
    });
}

int discovery_registry_auth_token(const unsigned char *body, size_t len,
                                  discovery_buf_t *out,
                                  discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        std::string token = discovery::parseAuthAnswer(
            std::string_view(reinterpret_cast<const char *>(body), len));
        giveBuffer(token.c_str(), token.size() + 1, out);
        out->len = token.size();
        return DISCOVERY_OK;
    });
}

int discovery_registry_answer_error(const unsigned char *body, size_t len,
                                    discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        std::string why = discovery::errorAnswer(
            std::string_view(reinterpret_cast<const char *>(body), len));
        if (why.empty()) {
            return DISCOVERY_OK;
        }
        setError(err, why.c_str());
        return DISCOVERY_ERROR;
    });
}

int discovery_registry_load(discovery_registry_t *r, const unsigned char *body,
                            size_t len, size_t *pages,
                            discovery_error_t *err) noexcept
{
    *pages = 0;

    return guard(err, [&] {
        discovery::RangeAnswer a = discovery::parseRangeAnswer(
            std::string_view(reinterpret_cast<const char *>(body), len));
        if (!r->read.add(std::move(a), len)) {
            return DISCOVERY_OK;
        }
        *pages = r->read.pages();
        r->table.load(r->read.result());
        r->stream.clear();
        return DISCOVERY_OK;
    });
}

int discovery_registry_range_smaller(discovery_registry_t *r) noexcept
{
    return r->read.smaller();
}

int discovery_registry_range_oversized(discovery_registry_t *r,
                                       discovery_buf_t *out,
                                       discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        std::string key = r->read.takeOversized();
        giveBuffer(key.data(), key.size(), out);
        return DISCOVERY_OK;
    });
}

int64_t discovery_registry_range_compacted(discovery_registry_t *r,
                                           const unsigned char *body,
                                           size_t len) noexcept
{
    int64_t revision = r->read.revision();

    try {
        if (revision == 0
            || !discovery::compactedAnswer(
                std::string_view(reinterpret_cast<const char *>(body), len))) {
            return 0;
        }
        r->read.begin();
    } catch (...) {
        return 0;
    }

    return revision;
}

int discovery_registry_watch_feed(discovery_registry_t *r,
                                  const unsigned char *data, size_t len,
                                  discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        require(r->stream.pending() + len <= DISCOVERY_WATCH_MAX_MESSAGE,
                "a watch message is too large");
        r->stream.feed(
            std::string_view(reinterpret_cast<const char *>(data), len));
        return DISCOVERY_OK;
    });
}

size_t discovery_registry_watch_pending(discovery_registry_t *r) noexcept
{
    return r->stream.pending();
}

int discovery_registry_watch_next(discovery_registry_t *r, int *what,
                                  discovery_error_t *err) noexcept
{
    *what = DISCOVERY_WATCH_MORE;

    return guard(err, [&] {
        std::string text;
        if (!r->stream.next(text)) {
            return DISCOVERY_OK;
        }

        discovery::WatchMessage m = discovery::parseWatchMessage(text);

        if (m.canceled) {
            *what = m.compactRevision > 0 ? DISCOVERY_WATCH_COMPACTED
                                          : DISCOVERY_WATCH_CANCELED;
            if (*what == DISCOVERY_WATCH_CANCELED) {
                setError(err, m.cancelReason.empty() ? "the watch was canceled"
                                                     : m.cancelReason.c_str());
            }
            return DISCOVERY_OK;
        }

        r->table.apply(m);
        *what = m.created ? DISCOVERY_WATCH_CREATED : DISCOVERY_WATCH_EVENTS;
        return DISCOVERY_OK;
    });
}

int64_t discovery_registry_revision(discovery_registry_t *r) noexcept
{
    return r->table.revision();
}

uint64_t discovery_registry_version(discovery_registry_t *r) noexcept
{
    return r->table.version();
}

size_t discovery_registry_count(discovery_registry_t *r, size_t *valid) noexcept
{
    size_t n = 0;
    for (const auto &entry : r->table.entries()) {
        n += entry.second.valid;
    }
    *valid = n;
    return r->table.entries().size();
}

uint64_t discovery_registry_overrides(discovery_registry_t *r,
                                      const unsigned char **data, size_t *len,
                                      int *present) noexcept
{
    const std::string &o = r->table.overrides();
    *data = reinterpret_cast<const unsigned char *>(o.data());
    *len = o.size();
    *present = r->table.hasOverrides();
    return r->table.overridesVersion();
}

int discovery_registry_overrides_request(discovery_registry_t *r,
                                         const unsigned char *controls,
                                         size_t len, int64_t found,
                                         discovery_buf_t *out,
                                         discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        // what a failed txn just read, a deletion (0) too, over what the
        // watch has brought, which may lag
        std::string body = discovery::overridesRequest(
            r->table.overridesKey(),
            std::string_view(reinterpret_cast<const char *>(controls), len),
            found >= 0 ? found : r->table.overridesRevision());
        giveBuffer(body.data(), body.size(), out);
        return DISCOVERY_OK;
    });
}

int discovery_registry_serving(discovery_registry_t *r, discovery_buf_t *out,
                               discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        std::string json = r->table.servingJson();
        giveBuffer(json.data(), json.size(), out);
        return DISCOVERY_OK;
    });
}

int discovery_registry_args(const unsigned char *serving, size_t len,
                            discovery_buf_t *out,
                            discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        std::string all;
        for (const auto &service : discovery::servingServices(std::string_view(
                 reinterpret_cast<const char *>(serving), len))) {
            all.append(service.name).push_back('\0');
            for (const std::string &arg : discovery::directiveArgs(service)) {
                all.append(arg).push_back('\0');
            }
            all.push_back('\0');
        }
        all.push_back('\0');
        giveBuffer(all.data(), all.size(), out);
        return DISCOVERY_OK;
    });
}

int discovery_registry_status(discovery_registry_t *r, discovery_buf_t *out,
                              discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        std::string json = r->table.statusJson();
        giveBuffer(json.data(), json.size(), out);
        return DISCOVERY_OK;
    });
}

int discovery_registry_lease_request(int64_t lease, int64_t ttl,
                                     discovery_buf_t *out,
                                     discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        std::string body = lease ? discovery::leaseKeepAliveRequest(lease)
                                 : discovery::leaseGrantRequest(ttl);
        giveBuffer(body.data(), body.size(), out);
        return DISCOVERY_OK;
    });
}

int discovery_registry_claim_request(discovery_registry_t *r, const char *name,
                                     size_t len, int64_t lease,
                                     discovery_buf_t *out,
                                     discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        std::string body = discovery::claimRequest(
            r->table.pollersKey(std::string_view(name, len)), lease);
        giveBuffer(body.data(), body.size(), out);
        return DISCOVERY_OK;
    });
}

int discovery_registry_routes_request(discovery_registry_t *r, const char *name,
                                      size_t len, int64_t lease,
                                      const unsigned char *value,
                                      size_t value_len, discovery_buf_t *out,
                                      discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        std::string_view n(name, len);
        std::string body = discovery::routesRequest(
            r->table.pollersKey(n), r->table.routesKey(n), lease,
            std::string_view(reinterpret_cast<const char *>(value), value_len));
        giveBuffer(body.data(), body.size(), out);
        return DISCOVERY_OK;
    });
}

int discovery_registry_orphans(discovery_registry_t *r, int64_t lease,
                               const unsigned char *names, size_t len,
                               discovery_buf_t *out,
                               discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        std::string all;
        for (const std::string &name : r->table.orphans(
                 lease, std::string_view(reinterpret_cast<const char *>(names),
                                         len))) {
            all.append(name).push_back('\0');
        }
        giveBuffer(all.data(), all.size(), out);
        return DISCOVERY_OK;
    });
}

int discovery_registry_release_request(discovery_registry_t *r,
                                       const char *name, size_t len,
                                       int64_t lease, discovery_buf_t *out,
                                       discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        std::string_view n(name, len);
        std::string body = discovery::releaseRequest(
            r->table.pollersKey(n), r->table.routesKey(n), lease);
        giveBuffer(body.data(), body.size(), out);
        return DISCOVERY_OK;
    });
}

int discovery_registry_check_request(discovery_registry_t *r,
                                     discovery_buf_t *out,
                                     discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        std::string body = discovery::checkRequest(r->table.prefix());
        giveBuffer(body.data(), body.size(), out);
        return DISCOVERY_OK;
    });
}

int discovery_registry_lease_answer(const unsigned char *body, size_t len,
                                    int64_t *lease, int64_t *ttl,
                                    discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        discovery::parseLeaseAnswer(
            std::string_view(reinterpret_cast<const char *>(body), len), *lease,
            *ttl);
        return DISCOVERY_OK;
    });
}

int discovery_registry_overrides_answer(const unsigned char *body,
                                        size_t len, int *written,
                                        int64_t *found,
                                        discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        *written = discovery::parseOverridesAnswer(
            std::string_view(reinterpret_cast<const char *>(body), len),
            *found);
        return DISCOVERY_OK;
    });
}

int discovery_registry_txn_answer(const unsigned char *body, size_t len,
                                  int *succeeded,
                                  discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        *succeeded = discovery::parseTxnAnswer(
            std::string_view(reinterpret_cast<const char *>(body), len));
        return DISCOVERY_OK;
    });
}

uint64_t discovery_registry_share_version(discovery_registry_t *r) noexcept
{
    return r->table.shareVersion();
}

int discovery_registry_configured(discovery_registry_t *r,
                                  const unsigned char *names, size_t len,
                                  discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        r->table.setConfigured(
            std::string_view(reinterpret_cast<const char *>(names), len));
        return DISCOVERY_OK;
    });
}

int64_t discovery_registry_claimant(discovery_registry_t *r, int64_t own,
                                    int64_t after) noexcept
{
    return r->table.claimantAfter(own, after);
}

int64_t discovery_registry_poller(discovery_registry_t *r, const char *name,
                                  size_t len) noexcept
{
    try {
        auto it = r->table.pollers().find(std::string(name, len));
        return it == r->table.pollers().end() ? 0 : it->second;
    } catch (...) {
        return 0;
    }
}

int discovery_registry_routes(discovery_registry_t *r, const char *name,
                              size_t len, const unsigned char **value,
                              size_t *value_len, int64_t *lease) noexcept
{
    try {
        auto it = r->table.routes().find(std::string(name, len));
        if (it == r->table.routes().end()) {
            return 0;
        }
        *value =
            reinterpret_cast<const unsigned char *>(it->second.value.data());
        *value_len = it->second.value.size();
        *lease = it->second.lease;
        return 1;
    } catch (...) {
        return 0;
    }
}

int discovery_share_values(const unsigned char *snapshot, size_t len,
                           discovery_buf_t *out,
                           discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        std::string all;
        for (const auto &[name, value] :
             discovery::shareValues(snapshot, len)) {
            all.append(name).push_back('\0');
            all.append(value).push_back('\0');
        }
        giveBuffer(all.data(), all.size(), out);
        return DISCOVERY_OK;
    });
}

int discovery_share_state(const unsigned char *value, size_t len,
                          const char *url, size_t url_len, uint32_t *state,
                          discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        *state = static_cast<uint32_t>(discovery::shareState(
            std::string_view(reinterpret_cast<const char *>(value), len),
            std::string_view(url, url_len)));
        return DISCOVERY_OK;
    });
}

} /* extern "C" */

/* metrics: the index is discovery::MetricsIndex, in the caller's memory */

struct discovery_metrics_index_s : discovery::MetricsIndex {};

const uint32_t discovery_metrics_poll_buckets_ms[] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

namespace {

discovery::MetricsMemory metricsMemory(const discovery_metrics_memory_t *m)
{
    discovery::MetricsMemory memory;
    memory.alloc = [m](size_t size) { return m->alloc(m->data, size); };
    memory.release = [m](uint64_t offset, size_t size) {
        m->release(m->data, offset, size);
    };
    return memory;
}

/*
 * The seed of an index's keys: random, so no service can publish a route
 * whose key is another's (the key function alone is invertible).
 */
uint64_t metricsSeed(const void *at) noexcept
{
    uint64_t seed = 0;
    try {
        std::random_device rd;
        seed = (uint64_t(rd()) << 32) ^ rd();
    } catch (...) {
        // no entropy source: the time and an address, better than none
    }
    seed ^=
        uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
    seed ^= reinterpret_cast<uintptr_t>(at) * 0x9e3779b97f4a7c15ull;
    return seed;
}

} // namespace

size_t discovery_metrics_index_size(uint64_t capacity) noexcept
{
    return discovery::metricsIndexSize(capacity);
}

discovery_metrics_index_t *
discovery_metrics_index_init(void *at, uint64_t capacity,
                             const uint32_t *buckets_ms, size_t n) noexcept
{
    if (at == nullptr || capacity == 0 || (capacity & (capacity - 1)) != 0
        || n > discovery::kMaxBuckets) {
        return nullptr;
    }
    auto *index = static_cast<discovery_metrics_index_t *>(at);
    discovery::metricsIndexInit(*index, capacity, buckets_ms, n);
    index->seed = metricsSeed(at);
    return index;
}

int discovery_metrics_index_buckets(const discovery_metrics_index_t *index,
                                    const uint32_t *buckets_ms,
                                    size_t n) noexcept
{
    return index->bucketCount == n
           && (n == 0
               || std::memcmp(index->bucketsMs, buckets_ms,
                              n * sizeof(uint32_t))
                      == 0);
}

uint64_t discovery_metrics_index_generation(
    const discovery_metrics_index_t *index) noexcept
{
    return __atomic_load_n(&index->generation, __ATOMIC_ACQUIRE);
}

int discovery_metrics_count(discovery_metrics_index_t *index,
                            unsigned char *base, const char *service,
                            size_t service_len, const char *route,
                            size_t route_len, uint32_t method, unsigned status,
                            uint64_t ms) noexcept
{
    if (discovery::statusClass(status) >= discovery::kStatusClasses) {
        return -1;
    }

    std::string_view s(service, service_len), rt(route, route_len);
    uint64_t key = discovery::routeKey(s, rt, index->seed);
    const discovery::MetricsRoute *r =
        discovery::findRoute(*index, base, key, s, rt);

    if (r == nullptr) {
        return 0;
    }

    // counters only: the header is the assigner's
    return discovery::countRequest(*index,
                                   const_cast<discovery::MetricsRoute &>(*r),
                                   method, status, ms)
               ? 1
               : -1;
}

size_t discovery_metrics_hint_count(const unsigned char *image,
                                    size_t len) noexcept
{
    size_t n = 0;
    (void) guard(nullptr, [&] {
        n = discovery::Router::view(image, len)->entryCount();
        return DISCOVERY_OK;
    });
    return n;
}

int discovery_metrics_hints(const discovery_metrics_index_t *index,
                            const unsigned char *base,
                            const unsigned char *image, size_t len,
                            uint64_t *hints, size_t n) noexcept
{
    return guard(nullptr, [&] {
        auto router = discovery::Router::view(image, len);
        std::string_view service, route;
        for (size_t i = 0; i < n; i++) {
            hints[i] = router->entryNames(i, service, route)
                           ? discovery::routeHint(*index, base, service, route)
                           : 0;
        }
        return DISCOVERY_OK;
    });
}

void discovery_metrics_prefetch(const unsigned char *base,
                                uint64_t hint) noexcept
{
    discovery::prefetchRoute(base, hint);
}

int discovery_metrics_count_hinted(discovery_metrics_index_t *index,
                                   unsigned char *base, uint64_t hint,
                                   uint32_t method, unsigned status,
                                   uint64_t ms) noexcept
{
    discovery::MetricsRoute *r = discovery::hintedRoute(*index, base, hint);

    if (r == nullptr) {
        return 0;
    }

    return discovery::countRequest(*index, *r, method, status, ms) ? 1 : -1;
}

int discovery_metrics_assign(discovery_metrics_index_t *index,
                             unsigned char *base, const unsigned char *snapshot,
                             size_t len, const discovery_table_t *decoded,
                             const discovery_metrics_memory_t *memory,
                             discovery_metrics_assigned_t *out,
                             discovery_error_t *err) noexcept
{
    std::memset(out, 0, sizeof(*out));

    return guard(err, [&] {
        auto figures = std::make_unique<discovery::TableFigures>();
        discovery::Snapshot own;
        if (decoded == nullptr) {
            own = discovery::decodeSnapshot(snapshot, len,
                                            discovery::Provenance::Made);
        }
        const discovery::Snapshot &snap =
            decoded != nullptr ? decoded->snapshot : own; // the zone's
        discovery::Controls controls = discovery::decodeControls(
            snap.controls.data(), snap.controls.size());
        std::vector<discovery::RouteKey> routes =
            discovery::tableRoutes(snap, controls, *figures, index->seed);
        discovery::AssignResult r = discovery::assignRoutes(
            *index, base, routes, snap.generation, metricsMemory(memory));

        auto services = std::make_unique<discovery_metrics_table_service_t[]>(
            figures->services.size() + 1);
        for (size_t i = 0; i < figures->services.size(); i++) {
            const auto &f = figures->services[i];
            services[i] = {f.name.data(), f.name.size(), f.routes, f.rejected};
        }

        out->generation = figures->generation;
        out->routes = figures->routes;
        out->conflicts = figures->conflicts;
        out->overlaps = figures->overlaps;
        out->kept = r.kept;
        out->added = r.added;
        out->removed = r.removed;
        out->unassigned = r.unassigned;
        out->n = figures->services.size();
        out->services = services.release();
        out->own = figures.release();
        return DISCOVERY_OK;
    });
}

void discovery_metrics_assigned_free(discovery_metrics_assigned_t *a) noexcept
{
    delete[] a->services;
    delete static_cast<discovery::TableFigures *>(a->own);
    a->services = nullptr;
    a->own = nullptr;
    a->n = 0;
}

void discovery_metrics_clear(discovery_metrics_index_t *index,
                             unsigned char *base, const uint32_t *buckets_ms,
                             size_t n,
                             const discovery_metrics_memory_t *memory) noexcept
{
    try {
        discovery::clearRoutes(*index, base, metricsMemory(memory));
    } catch (...) {
        // std::function's copies only: nothing was released twice
    }
    n = std::min<size_t>(n, discovery::kMaxBuckets);
    index->bucketCount = static_cast<uint32_t>(n);
    std::memcpy(index->bucketsMs, buckets_ms, n * sizeof(uint32_t));
}

int discovery_metrics_render(const discovery_metrics_view_t *view,
                             discovery_buf_t *out,
                             discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        discovery::MetricsView v;
        v.index = view->index;
        v.base = view->base;
        for (size_t i = 0; i < view->n; i++) {
            const discovery_metrics_service_t &s = view->services[i];
            discovery::ServiceFigures f;
            f.name = std::string_view(s.name, s.name_len);
            f.state = s.state;
            f.lastSuccess = s.last_success;
            std::memcpy(f.polls, s.polls, sizeof(f.polls));
            f.pollBuckets = s.poll_buckets;
            f.pollMs = s.poll_ms;
            f.routes = s.routes;
            f.rejected = s.rejected;
            v.services.push_back(f);
        }
        std::memcpy(v.gateway, view->gateway, sizeof(v.gateway));
        std::memcpy(v.overflow, view->overflow, sizeof(v.overflow));
        v.generation = view->generation;
        v.tableRoutes = view->table_routes;
        v.conflicts = view->conflicts;
        v.overlaps = view->overlaps;
        v.zoneUsed = view->zone_used;
        v.zoneSize = view->zone_size;
        v.openMetrics = view->openmetrics != 0;

        std::string text = discovery::renderMetrics(v);
        giveBuffer(text.data(), text.size(), out);
        return DISCOVERY_OK;
    });
}

int discovery_metrics_parse_buckets(const char *text, size_t len, uint32_t *ms,
                                    size_t *n, discovery_error_t *err) noexcept
{
    return guard(err, [&] {
        std::vector<uint32_t> bounds;
        std::string error;
        if (!discovery::parseBuckets(view(text, len), bounds, error)) {
            setError(err, error.c_str());
            return DISCOVERY_ERROR;
        }
        std::copy(bounds.begin(), bounds.end(), ms);
        *n = bounds.size();
        return DISCOVERY_OK;
    });
}

int discovery_metrics_accepts_openmetrics(const char *accept,
                                          size_t len) noexcept
{
    try {
        return discovery::acceptsOpenMetrics(view(accept, len)) ? 1 : 0;
    } catch (...) {
        return 0;
    }
}
