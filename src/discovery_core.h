/*
 * discovery_core.h: the C interface of the C++ core, the only header the
 * nginx glue and the core share.  Plain C types and opaque handles; every
 * function is noexcept on the C++ side and reports failure through its
 * return code and a discovery_error_t, never by throwing.
 */

#ifndef DISCOVERY_CORE_H_INCLUDED_
#define DISCOVERY_CORE_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>

/* on the C++ side, the compiler holds every function to its promise */
#ifdef __cplusplus
#define DISCOVERY_NOEXCEPT  noexcept
#else
#define DISCOVERY_NOEXCEPT
#endif

#ifdef __cplusplus
extern "C" {
#endif


/* return codes */
#define DISCOVERY_OK         0
#define DISCOVERY_UNCHANGED  1      /* nothing routing sees changed */
#define DISCOVERY_ERROR     -1      /* see discovery_error_t */
#define DISCOVERY_NOMEM     -2
#define DISCOVERY_DECLINED  -3     /* not this way: take the usual one */

#define DISCOVERY_ERROR_LEN  256

typedef struct {
    char          text[DISCOVERY_ERROR_LEN];   /* NUL-terminated, "" if none */
} discovery_error_t;


/* log levels passed to discovery_log_pt */
#define DISCOVERY_LOG_ERR    1
#define DISCOVERY_LOG_WARN   2
#define DISCOVERY_LOG_INFO   3
#define DISCOVERY_LOG_DEBUG  4

typedef void (*discovery_log_pt)(void *data, int level, const char *msg,
    size_t len);

typedef struct {
    discovery_log_pt  handler;     /* may be NULL: messages are dropped */
    void             *data;
} discovery_log_t;


/* bytes allocated by the core (malloc); release with discovery_buf_free */
typedef struct {
    unsigned char  *data;
    size_t          len;
} discovery_buf_t;

void discovery_buf_free(discovery_buf_t *buf) DISCOVERY_NOEXCEPT;


/* service health, a plain struct that lives in shared memory */
#define DISCOVERY_STATE_PENDING    0   /* no poll has finished yet */
#define DISCOVERY_STATE_HEALTHY    1
#define DISCOVERY_STATE_UNHEALTHY  2

typedef struct {
    uint32_t  state;
    uint32_t  fails;       /* consecutive failed polls */
    uint32_t  passes;      /* consecutive good polls */
} discovery_health_t;

/*
 * Feeds one poll outcome to the health state machine.  pending: a good poll
 * makes it healthy, a failed one unhealthy (there are no routes to keep).
 * healthy: `fails_needed` consecutive failures make it unhealthy.
 * unhealthy: `passes_needed` consecutive good polls make it healthy.
 * Returns 1 when the state changed, 0 otherwise.
 */
int discovery_health_update(discovery_health_t *h, int poll_ok,
    uint32_t fails_needed, uint32_t passes_needed) DISCOVERY_NOEXCEPT;


/*
 * Route documents.  A parser is fed the body as it arrives and never keeps
 * more than the routes it accepted.  Formats: the route document of the
 * README, an OpenAPI 3.x document, or auto (decided by the document's
 * shape: "openapi" or "paths" at top level means OpenAPI).
 */
#define DISCOVERY_FORMAT_AUTO     0
#define DISCOVERY_FORMAT_ROUTES   1
#define DISCOVERY_FORMAT_OPENAPI  2
#define DISCOVERY_FORMAT_GRPC     3     /* no document: discovery_grpc_* */

typedef struct discovery_parser_s  discovery_parser_t;

/* log receives a WARN per skipped route entry; NULL on out of memory */
discovery_parser_t *discovery_parser_create(int format, discovery_log_t *log)
    DISCOVERY_NOEXCEPT;
void discovery_parser_destroy(discovery_parser_t *p) DISCOVERY_NOEXCEPT;

/* DISCOVERY_ERROR once the body cannot be a valid document */
int discovery_parser_feed(discovery_parser_t *p, const char *data,
    size_t len, discovery_error_t *err) DISCOVERY_NOEXCEPT;

/*
 * Ownership (prefix=): once a prefix is added, routes outside every prefix
 * are rejected with a WARN each.  "/chat" covers /chat and /chat/...
 */
int discovery_parser_add_prefix(discovery_parser_t *p, const char *prefix,
    size_t len, discovery_error_t *err) DISCOVERY_NOEXCEPT;

/*
 * Ends the body.  On DISCOVERY_OK, *routes holds the service's route set
 * (opaque, for discovery_snapshot_apply_polls).  A document whose "status" is
 * present and not healthy/ok/pass/up is DISCOVERY_ERROR ("status ...").
 */
int discovery_parser_finish(discovery_parser_t *p, discovery_buf_t *routes,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;


/*
 * gRPC services (format=grpc): one poll is a few gRPC calls made in turn,
 * health check then server reflection (see grpc_reflection.hpp).  The
 * caller makes each call discovery_grpc_next() names (a POST over HTTP/2,
 * "content-type: application/grpc", "te: trailers"), feeds its answer's
 * body as it arrives and ends it with the headers and trailers seen, until
 * no call is left; discovery_grpc_finish() then gives the route set.
 */
typedef struct discovery_grpc_s  discovery_grpc_t;

#define DISCOVERY_GRPC_INTERNAL  1     /* grpc_internal=on */

/* max_size bounds each answer's body; NULL on out of memory */
discovery_grpc_t *discovery_grpc_create(unsigned flags, size_t max_size)
    DISCOVERY_NOEXCEPT;
void discovery_grpc_destroy(discovery_grpc_t *g) DISCOVERY_NOEXCEPT;

/* as discovery_parser_add_prefix */
int discovery_grpc_add_prefix(discovery_grpc_t *g, const char *prefix,
    size_t len, discovery_error_t *err) DISCOVERY_NOEXCEPT;

/*
 * 1 and the next call's path (NUL-terminated) and request body, valid
 * until discovery_grpc_end(); 0 when no call is left.
 */
int discovery_grpc_next(discovery_grpc_t *g, const char **path,
    const unsigned char **body, size_t *len) DISCOVERY_NOEXCEPT;

/* an answer's headers, and after its end its trailers too */
typedef struct {
    long         http_status;
    const char  *content_type;
    size_t       content_type_len;
    int          grpc_status;     /* -1: none */
    const char  *grpc_message;    /* percent-encoded, as received */
    size_t       grpc_message_len;
} discovery_grpc_answer_t;

/* DISCOVERY_ERROR once the answer fails the poll */
int discovery_grpc_feed(discovery_grpc_t *g,
    const discovery_grpc_answer_t *head, const char *data, size_t len,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;
int discovery_grpc_end(discovery_grpc_t *g,
    const discovery_grpc_answer_t *answer, discovery_error_t *err)
    DISCOVERY_NOEXCEPT;

/* as discovery_parser_finish, once discovery_grpc_next() says 0 */
int discovery_grpc_finish(discovery_grpc_t *g, discovery_buf_t *routes,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;


/*
 * Snapshots: the whole table as one flat, pointer-free, versioned and
 * checksummed blob, the only thing kept in shared memory or on disk.
 * It holds the roster (services in configuration order, with url,
 * upstream, state, version) and each service's routes.  Conflicts are
 * resolved (first service in the roster wins) and recorded in it, as are
 * overlaps across services and the routes it does not route.
 */
typedef struct {
    const char  *name;
    size_t       name_len;
    const char  *url;
    size_t       url_len;
    const char  *upstream;        /* the $discovery_upstream value */
    size_t       upstream_len;
} discovery_service_conf_t;

/*
 * A snapshot for `services`, keeping state, version and routes of each
 * service found in `old` (may be NULL) with the same name and url; others
 * start pending with no routes.  deny_overlaps (discovery_overlap deny):
 * a route that shadows a route of an earlier service is rejected, in this
 * table and in every table made from it.  An `old` of the same services
 * and policy, checked by this module's rules, is kept as it is but for
 * its generation.  *image, if given, receives the table's router image
 * (data NULL if it could not be built: the table is still the table).
 */
int discovery_snapshot_roster(const unsigned char *old, size_t old_len,
    const discovery_service_conf_t *services, size_t n, int deny_overlaps,
    uint64_t generation, discovery_buf_t *out, discovery_buf_t *image,
    discovery_log_t *log, discovery_error_t *err) DISCOVERY_NOEXCEPT;

/*
 * A start from the state file, with the router image saved beside it
 * (discovery_image_file_check): when discovery_snapshot_roster() would keep
 * `old` as it is, it is resealed in place at `generation` and the image
 * given that generation in place: nothing decoded, nothing built.
 * DISCOVERY_DECLINED otherwise, both left as they are.
 */
int discovery_snapshot_adopt_image(unsigned char *old, size_t old_len,
    unsigned char *image, size_t image_len,
    const discovery_service_conf_t *services, size_t n, int deny_overlaps,
    uint64_t generation, discovery_error_t *err) DISCOVERY_NOEXCEPT;

/*
 * The router image file, beside the state file: a header of
 * DISCOVERY_IMAGE_FILE_HEADER bytes binding the image to its table, then
 * the image.
 */
#define DISCOVERY_IMAGE_FILE_HEADER  64

int discovery_image_file_header(const unsigned char *table, size_t table_len,
    const unsigned char *image, size_t image_len, unsigned char *header,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;

/*
 * DISCOVERY_OK when `header` and the image after it in the file, read to
 * `image` (DISCOVERY_ROUTER_IMAGE_ALIGN-aligned), are whole and of `table`;
 * DISCOVERY_ERROR, saying why, otherwise.
 */
int discovery_image_file_check(const unsigned char *header,
    const unsigned char *image, size_t image_len, const unsigned char *table,
    size_t table_len, discovery_error_t *err) DISCOVERY_NOEXCEPT;

/*
 * The outcome of one poll of service `name` (polled at `url`): its new
 * state and, when routes is not NULL, its new route set.
 */
typedef struct {
    const char           *name;
    size_t                name_len;
    const char           *url;
    size_t                url_len;
    uint32_t              state;
    const unsigned char  *routes;     /* NULL: routes unchanged */
    size_t                routes_len;
} discovery_poll_t;

/*
 * A router image laid out, not yet written: its size is known, so that it
 * is written once, where it will be read (a block of the zone), not made
 * in a buffer and copied there.  One patched from an old image reads that
 * image when written: the old image must stay as it is until then.
 */
typedef struct discovery_image_s  discovery_image_t;
typedef struct discovery_table_s  discovery_table_t;

size_t discovery_image_size(const discovery_image_t *image) DISCOVERY_NOEXCEPT;

/* its discovery_image_size() bytes at dst, DISCOVERY_ROUTER_IMAGE_ALIGN-aligned */
int discovery_image_write(const discovery_image_t *image, unsigned char *dst,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;

void discovery_image_free(discovery_image_t *image) DISCOVERY_NOEXCEPT;

/*
 * Applies n polls in order: one new snapshot for all of them, so that a
 * table changed by many polls together is encoded once, not once per
 * poll.  Returns DISCOVERY_UNCHANGED (and no *out) when states and routes
 * are as in `old`; a poll of a service the roster does not have at that
 * url (one begun before a reload) changes nothing.  Logs each conflict
 * that `old` did not have at WARN.  With `image`, the new snapshot's
 * router image (see discovery_router_image), laid out, goes to *image too,
 * made from the table as it was encoded, not decoded again; *image is NULL
 * when it could not be made (out of memory), the table being made all the
 * same.  With `old_image`, the router image of `old` (only read: it must
 * stay as it is until the new one is written), the new image is that one
 * with what changed patched in when it can be, in time proportional to
 * the change (Router::update); the debug line of each table says which
 * way it was made, and why not patched.
 */
int discovery_snapshot_apply_polls(const unsigned char *old, size_t old_len,
    const discovery_poll_t *polls, size_t n, uint64_t generation,
    discovery_buf_t *out, discovery_image_t **image,
    const unsigned char *old_image, size_t old_image_len,
    discovery_table_t **decoded, discovery_log_t *log,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;

/*
 * The table discovery_snapshot_apply_polls made, as the core holds it:
 * with `decoded`, it goes to *decoded (NULL when there was no room for
 * it), for discovery_metrics_assign to read instead of decoding the
 * encoded table again.
 */
void discovery_table_free(discovery_table_t *table) DISCOVERY_NOEXCEPT;

/*
 * The state of each of `services` in `blob`, by name, into states[i]
 * (PENDING for a service the snapshot does not have).
 */
int discovery_snapshot_states(const unsigned char *blob, size_t len,
    const discovery_service_conf_t *services, size_t n, uint32_t *states,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;

/* checks magic, format version, length and checksum */
int discovery_snapshot_check(const unsigned char *blob, size_t len,
    uint64_t *generation, discovery_error_t *err) DISCOVERY_NOEXCEPT;


/*
 * The lookup structure of a snapshot: an image, position-independent,
 * built once per table and read where it lies (the shared zone), through
 * a router that views it; or a router with an image of its own.
 */
typedef struct discovery_router_s  discovery_router_t;

/* DISCOVERY_ROUTER_IMAGE_ALIGN-aligned, in out; see discovery_buf_free */
#define DISCOVERY_ROUTER_IMAGE_ALIGN  64

int discovery_router_image(const unsigned char *snapshot, size_t len,
    discovery_buf_t *out, discovery_error_t *err) DISCOVERY_NOEXCEPT;

/*
 * A router over len bytes at image, a copy of an image from
 * discovery_router_image() at the same alignment, which must stay as it
 * is until the router is destroyed.  Constant time: only the header is
 * checked.
 */
discovery_router_t *discovery_router_open(const unsigned char *image,
    size_t len, discovery_error_t *err) DISCOVERY_NOEXCEPT;

discovery_router_t *discovery_router_create(const unsigned char *snapshot,
    size_t len, discovery_error_t *err) DISCOVERY_NOEXCEPT;
void discovery_router_destroy(discovery_router_t *router) DISCOVERY_NOEXCEPT;

/* the DISCOVERY_STATE_ of service `index` in the roster, or -1 */
int discovery_router_state(const discovery_router_t *router, size_t index)
    DISCOVERY_NOEXCEPT;

/* 1 when a service of the router's table has not been polled yet */
int discovery_router_pending(const discovery_router_t *router)
    DISCOVERY_NOEXCEPT;

#define DISCOVERY_MATCH_FOUND        0
#define DISCOVERY_MATCH_NOT_FOUND    1   /* 404 */
#define DISCOVERY_MATCH_NOT_ALLOWED  2   /* 405, allow set */
#define DISCOVERY_MATCH_UNAVAILABLE  3   /* 503, owner unhealthy */
#define DISCOVERY_MATCH_PENDING      4   /* 503, no match, a service pending */
#define DISCOVERY_MATCH_DRAINED      5   /* 503, the owner is drained */
#define DISCOVERY_MATCH_DISABLED     6   /* 404, disabled by an override */

/* how a route is proxied, and a gRPC route's streaming kind */
#define DISCOVERY_PROTOCOL_HTTP      0
#define DISCOVERY_PROTOCOL_GRPC      1

#define DISCOVERY_STREAMING_UNARY    0
#define DISCOVERY_STREAMING_CLIENT   1
#define DISCOVERY_STREAMING_SERVER   2
#define DISCOVERY_STREAMING_BIDI     3

typedef struct {
    int          status;
    const char  *service;         /* FOUND, NOT_ALLOWED, UNAVAILABLE */
    size_t       service_len;
    const char  *upstream;
    size_t       upstream_len;
    const char  *route;           /* the matched template */
    size_t       route_len;
    const char  *allow;           /* NOT_ALLOWED: "GET, HEAD, OPTIONS" */
    size_t       allow_len;
    int          auth_required;
    uint32_t     service_index;   /* in the snapshot's roster, with service */
    int          protocol;        /* FOUND, UNAVAILABLE: the route's */
    int          streaming;
    uint32_t     entry;           /* of the route in the router, for its */
                                  /* metrics hint; DISCOVERY_NO_ENTRY */
} discovery_match_t;

#define DISCOVERY_NO_ENTRY  0xffffffff

/*
 * Looks up `path` (normalized, no query string) for `method`.  A websocket
 * upgrade matches GET routes.  Strings in *m point into the router and
 * stay valid until it is destroyed.
 */
int discovery_router_match(const discovery_router_t *router,
    const char *method, size_t method_len, const char *path, size_t path_len,
    int websocket, discovery_match_t *m) DISCOVERY_NOEXCEPT;

/*
 * The services of the router's table in its roster's order, that of a
 * match's service_index: *n receives how many there are, and the first
 * min(*n, max) go to `services`, their strings pointing into the router.
 */
int discovery_router_roster(const discovery_router_t *router,
    discovery_service_conf_t *services, size_t max, size_t *n,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;


/*
 * Raw request paths (before '?'): 1 when no dot segment ("." or "..",
 * literal or percent-encoded), no repeated slash ("//", "%2F" counting as
 * '/') and no '#' would make a server see another path than nginx's $uri;
 * -1 when the path has no canonical form to redirect to (an escaped
 * control character, "%0A" and the like); 0 otherwise.
 */
int discovery_path_is_canonical(const char *raw, size_t len)
    DISCOVERY_NOEXCEPT;

/*
 * Writes the canonical form of `raw` (what precedes '#', dot segments
 * removed, repeated slashes merged, bytes a URI cannot hold escaped) to
 * `out`, which has room for 3 * len + 1 bytes, and returns its length; 0
 * only when out of memory.
 */
size_t discovery_path_canonicalize(const char *raw, size_t len, char *out)
    DISCOVERY_NOEXCEPT;


/* Status page: everything the gateway knows, as JSON. */
typedef struct {
    const char  *name;
    size_t       name_len;
    int64_t      last_check;      /* unix time, 0: never */
    int64_t      last_success;    /* unix time, 0: never */
    uint32_t     failures;        /* consecutive failed polls */
    const char  *last_error;      /* "" when the last poll succeeded */
    size_t       last_error_len;
    int          registry;        /* 1: a discovery_registry service */
    int          poller;          /* share=on: DISCOVERY_POLLER_* */
    int64_t      poller_lease;    /* the claim's, 0: none */
} discovery_service_stats_t;

/* who polls a service with share=on */
#define DISCOVERY_POLLER_NONE   0   /* not shared: this gateway */
#define DISCOVERY_POLLER_SELF   1   /* this gateway, for the fleet */
#define DISCOVERY_POLLER_OTHER  2   /* another gateway, whose routes apply */

/*
 * The status page, ending in a newline.  table_error: why the newest table
 * is not published, "" if it is; module_version: the module's version,
 * NUL-terminated; registry: the registry's object, JSON, the page's last
 * member, or 0 bytes for none.
 */
int discovery_status_render(const unsigned char *snapshot, size_t len,
    const discovery_service_stats_t *stats, size_t n, const char *table_error,
    size_t table_error_len, const char *module_version, const char *registry,
    size_t registry_len, discovery_buf_t *out,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;


/*
 * The management API (discovery_api).  Overrides and drained services,
 * "controls", are a flat blob the core encodes: the zone keeps the
 * current one, and each table carries the one it was made with (so the
 * state file keeps them too).
 */
#define DISCOVERY_API_MAX_BODY  (64 * 1024)

typedef struct {
    const char                       *method;
    size_t                            method_len;
    const char                       *path;       /* below the location */
    size_t                            path_len;
    const char                       *query;      /* undecoded */
    size_t                            query_len;
    const char                       *body;
    size_t                            body_len;
    int                               body_too_large;
    const char                       *content_type;
    size_t                            content_type_len;
    const char                       *origin;     /* NULL: no header */
    size_t                            origin_len;
    const char                       *host;
    size_t                            host_len;
    int                               write;      /* write=on */
    int                               persist_restart; /* discovery_state */
    const char                       *module_version; /* NUL-terminated */
    int64_t                           now;        /* unix time */
} discovery_api_request_t;

typedef struct {
    const unsigned char              *snapshot;   /* NULL: no table */
    size_t                            snapshot_len;
    const discovery_service_stats_t  *stats;
    size_t                            n;
    const unsigned char              *controls;   /* the zone's */
    size_t                            controls_len;
    const discovery_router_t         *router;     /* NULL: none yet */
} discovery_api_view_t;

typedef struct {
    int                               status;     /* HTTP */
    discovery_buf_t                   body;       /* JSON */
    char                              allow[64];  /* of a 405, or "" */
    int                               controls_changed;
    discovery_buf_t                   controls;   /* the new ones */
    int64_t                           next_expiry; /* of them; 0: none */
    discovery_buf_t                   poll;       /* a service to poll */
} discovery_api_answer_t;

/* DISCOVERY_OK with the answer, whatever its status; buffers to free */
int discovery_api_handle(const discovery_api_request_t *req,
    const discovery_api_view_t *view, discovery_api_answer_t *answer,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;

/*
 * 1 when the answer at that API path asks the router (/explain), which is
 * the worker's own and cannot be read from another thread; else 0.
 */
int discovery_api_uses_router(const char *path, size_t len)
    DISCOVERY_NOEXCEPT;

/*
 * Controls less the overrides expired at `now`: DISCOVERY_UNCHANGED when
 * none has; *next_expiry receives the next expiry of what is left.
 */
int discovery_controls_expire(const unsigned char *controls, size_t len,
    int64_t now, discovery_buf_t *out, int64_t *next_expiry,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;

/* the controls a snapshot carries, and their next expiry */
int discovery_snapshot_controls(const unsigned char *snapshot, size_t len,
    discovery_buf_t *out, int64_t *next_expiry, discovery_error_t *err)
    DISCOVERY_NOEXCEPT;

/*
 * The snapshot with these controls (len 0: none) and this generation,
 * and its router image as discovery_snapshot_apply_polls() gives one,
 * from `old_image`, the image of `old`, when given: patched when only
 * drained services changed; DISCOVERY_UNCHANGED when it carries them
 * already.  Cheap when they are the same: they are compared where they
 * lie, at the snapshot's end.
 */
int discovery_snapshot_set_controls(const unsigned char *old, size_t old_len,
    const unsigned char *controls, size_t len, uint64_t generation,
    discovery_buf_t *out, discovery_image_t **image,
    const unsigned char *old_image, size_t old_image_len,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;


/*
 * Writes `src` as the inside of a JSON string: quotes, backslashes and
 * control characters escaped, invalid UTF-8 replaced by \ufffd.  With
 * dst NULL only measures.  Returns the length written.
 */
size_t discovery_json_escape(unsigned char *dst, const unsigned char *src,
    size_t len) DISCOVERY_NOEXCEPT;


/*
 * Metrics (discovery_metrics).  Each route's counters are a slot in
 * shared memory, found through an index by a key of its service and
 * template: the index and the slots are plain memory the caller gives
 * (offsets from `base`), changed by one process at a time (assign,
 * clear) and read and counted into by any, without a lock.
 */
typedef struct discovery_metrics_index_s  discovery_metrics_index_t;

#define DISCOVERY_METRICS_MAX_BUCKETS   32
#define DISCOVERY_METRICS_POLL_BUCKETS  11   /* of poll_duration_seconds */

/* gateway_responses_total{reason} */
#define DISCOVERY_METRICS_NOT_FOUND           0
#define DISCOVERY_METRICS_METHOD_NOT_ALLOWED  1
#define DISCOVERY_METRICS_UNAVAILABLE         2
#define DISCOVERY_METRICS_PENDING             3
#define DISCOVERY_METRICS_NONCANONICAL        4
#define DISCOVERY_METRICS_DISABLED            5
#define DISCOVERY_METRICS_REASONS             6

/* metrics_overflow_total{reason}: requests not counted by route */
#define DISCOVERY_METRICS_OVERFLOW_NO_SLOT        0  /* zone out of room */
#define DISCOVERY_METRICS_OVERFLOW_ROUTE_REMOVED  1  /* by a table change */
#define DISCOVERY_METRICS_OVERFLOW_UNKNOWN        2  /* status, decision */
#define DISCOVERY_METRICS_OVERFLOWS               3

/* polls_total{result} */
#define DISCOVERY_METRICS_POLL_SUCCESS        0
#define DISCOVERY_METRICS_POLL_NOT_MODIFIED   1
#define DISCOVERY_METRICS_POLL_FAILURE        2
#define DISCOVERY_METRICS_POLL_REJECTED       3
#define DISCOVERY_METRICS_POLL_RESULTS        4

/* a request's method, as the router numbers the nine; 0: another */
#define DISCOVERY_METHOD_GET      0x001
#define DISCOVERY_METHOD_HEAD     0x002
#define DISCOVERY_METHOD_POST     0x004
#define DISCOVERY_METHOD_PUT      0x008
#define DISCOVERY_METHOD_DELETE   0x010
#define DISCOVERY_METHOD_PATCH    0x020
#define DISCOVERY_METHOD_OPTIONS  0x040
#define DISCOVERY_METHOD_TRACE    0x080
#define DISCOVERY_METHOD_CONNECT  0x100

/* the poll_duration_seconds bounds, in ms */
extern const uint32_t  discovery_metrics_poll_buckets_ms[];

/* bytes of an index of `capacity` entries, a power of two */
size_t discovery_metrics_index_size(uint64_t capacity) DISCOVERY_NOEXCEPT;
discovery_metrics_index_t *discovery_metrics_index_init(void *at,
    uint64_t capacity, const uint32_t *buckets_ms, size_t n)
    DISCOVERY_NOEXCEPT;
/* 1 when the index counts with those bounds */
int discovery_metrics_index_buckets(const discovery_metrics_index_t *index,
    const uint32_t *buckets_ms, size_t n) DISCOVERY_NOEXCEPT;
/* the generation of the table last assigned, 0: none */
uint64_t discovery_metrics_index_generation(
    const discovery_metrics_index_t *index) DISCOVERY_NOEXCEPT;

/*
 * Counts a request routed to `route` of `service`, of `ms` milliseconds:
 * 1.  When it could not be, the caller counts it in metrics_overflow_total
 * by why: -1 for a status outside 100-599, which has no class to count
 * in; 0 for a route with no slot (no room, or removed since the request
 * was routed: the zone tells them apart).
 */
int discovery_metrics_count(discovery_metrics_index_t *index,
    unsigned char *base, const char *service, size_t service_len,
    const char *route, size_t route_len, uint32_t method, unsigned status,
    uint64_t ms) DISCOVERY_NOEXCEPT;

/*
 * Where each route of a router image counts, found once per table: the
 * number of hints its routes take (discovery_match_t's entry indexes
 * them; 0 for an image that cannot be read), then the hints themselves,
 * n of them into `hints` (0 where a route has no slot).  A request's hint
 * counts it with discovery_metrics_count_hinted() without hashing its
 * names: 1 when counted, 0 when the hint no longer names its route's slot
 * (the slot was replaced, or the route removed since), and the request is
 * counted by its names; -1 as for discovery_metrics_count().
 */
size_t discovery_metrics_hint_count(const unsigned char *image, size_t len)
    DISCOVERY_NOEXCEPT;
int discovery_metrics_hints(const discovery_metrics_index_t *index,
    const unsigned char *base, const unsigned char *image, size_t len,
    uint64_t *hints, size_t n) DISCOVERY_NOEXCEPT;
int discovery_metrics_count_hinted(discovery_metrics_index_t *index,
    unsigned char *base, uint64_t hint, uint32_t method, unsigned status,
    uint64_t ms) DISCOVERY_NOEXCEPT;

/*
 * Brings a hint's slot toward the cache, for a count to come: neither
 * reads nor checks it, so that any hint is harmless.
 */
void discovery_metrics_prefetch(const unsigned char *base, uint64_t hint)
    DISCOVERY_NOEXCEPT;

/* shared memory for slots: an offset from base (0: no room), and back */
typedef struct {
    uint64_t   (*alloc)(void *data, size_t size);
    void       (*release)(void *data, uint64_t offset, size_t size);
    void        *data;
} discovery_metrics_memory_t;

typedef struct {
    const char  *name;
    size_t       name_len;
    uint64_t     routes;          /* routed */
    uint64_t     rejected;
} discovery_metrics_table_service_t;

typedef struct {
    uint64_t                            generation;
    uint64_t                            routes;
    uint64_t                            conflicts;
    uint64_t                            overlaps;
    uint64_t                            kept;
    uint64_t                            added;
    uint64_t                            removed;
    uint64_t                            unassigned;  /* no room for them */
    discovery_metrics_table_service_t  *services;    /* into the core's */
    size_t                              n;
    void                               *own;
} discovery_metrics_assigned_t;

/*
 * Gives every route of the snapshot a slot, keeping those of routes the
 * index has; slots no route of this table or a newer one has are
 * released.  `decoded`, if not NULL, is the same table as the core holds
 * it (from discovery_snapshot_apply_polls), read rather than `snapshot`
 * decoded.  Free *out with discovery_metrics_assigned_free.
 */
int discovery_metrics_assign(discovery_metrics_index_t *index,
    unsigned char *base, const unsigned char *snapshot, size_t len,
    const discovery_table_t *decoded, const discovery_metrics_memory_t *memory,
    discovery_metrics_assigned_t *out, discovery_error_t *err)
    DISCOVERY_NOEXCEPT;
void discovery_metrics_assigned_free(discovery_metrics_assigned_t *a)
    DISCOVERY_NOEXCEPT;

/* releases every slot, and sets the bounds (buckets= changed) */
void discovery_metrics_clear(discovery_metrics_index_t *index,
    unsigned char *base, const uint32_t *buckets_ms, size_t n,
    const discovery_metrics_memory_t *memory) DISCOVERY_NOEXCEPT;

typedef struct {
    const char      *name;
    size_t           name_len;
    uint32_t         state;          /* DISCOVERY_STATE_* */
    int64_t          last_success;   /* unix time, 0: never */
    uint64_t         polls[DISCOVERY_METRICS_POLL_RESULTS];
    const uint64_t  *poll_buckets;   /* POLL_BUCKETS + 1, or NULL */
    uint64_t         poll_ms;
    uint64_t         routes;
    uint64_t         rejected;
} discovery_metrics_service_t;

typedef struct {
    const discovery_metrics_index_t    *index;   /* NULL: none */
    const unsigned char                *base;
    const discovery_metrics_service_t  *services;
    size_t                              n;
    uint64_t                            gateway[DISCOVERY_METRICS_REASONS];
    uint64_t                            overflow[DISCOVERY_METRICS_OVERFLOWS];
    uint64_t                            generation;
    uint64_t                            table_routes;
    uint64_t                            conflicts;
    uint64_t                            overlaps;
    uint64_t                            zone_used;
    uint64_t                            zone_size;
    int                                 openmetrics;
} discovery_metrics_view_t;

/* the exposition, text format 0.0.4 or OpenMetrics 1.0 */
int discovery_metrics_render(const discovery_metrics_view_t *view,
    discovery_buf_t *out, discovery_error_t *err) DISCOVERY_NOEXCEPT;

/* buckets=: bounds in seconds into ms[DISCOVERY_METRICS_MAX_BUCKETS] */
int discovery_metrics_parse_buckets(const char *text, size_t len,
    uint32_t *ms, size_t *n, discovery_error_t *err) DISCOVERY_NOEXCEPT;

/* 1 when an Accept header prefers OpenMetrics */
int discovery_metrics_accepts_openmetrics(const char *accept, size_t len)
    DISCOVERY_NOEXCEPT;


/*
 * The registry (discovery_registry): etcd's v3 JSON gateway.  The handle
 * holds what PREFIX/services/ held at the revision last read, each key's
 * document validated as a service, PREFIX/overrides/controls, and the
 * watch stream's unread bytes.
 */
typedef struct discovery_registry_s  discovery_registry_t;

/* what discovery_registry_watch_next() found */
#define DISCOVERY_WATCH_MORE       0   /* no whole message yet */
#define DISCOVERY_WATCH_CREATED    1   /* the watch runs */
#define DISCOVERY_WATCH_EVENTS     2   /* applied (or progress) */
#define DISCOVERY_WATCH_COMPACTED  3   /* the revision is gone: read again */
#define DISCOVERY_WATCH_CANCELED   4   /* ended by etcd: watch again */

/*
 * The watch stream's bytes not yet a whole message, at most.  The watch
 * asks for fragments: etcd sends at most its request size and grpc's
 * room (1.5 MiB + 512 KiB by default) of events a message, or one event
 * alone; in JSON, with base64 and field names, up to 3.5 times that for
 * the smallest events (a lease's 100,000 deletions), 7.3 MiB.
 */
#define DISCOVERY_WATCH_MAX_MESSAGE  (16 * 1024 * 1024)

/* an answer to a range read (a page of it) or an authentication, at most */
#define DISCOVERY_REGISTRY_MAX_ANSWER  (16 * 1024 * 1024)

/* share: share=on, the others' claims and routes are kept (else not read) */
discovery_registry_t *discovery_registry_create(const char *prefix,
    size_t len, int share) DISCOVERY_NOEXCEPT;
void discovery_registry_destroy(discovery_registry_t *r) DISCOVERY_NOEXCEPT;

/*
 * Request bodies: the next page of the read of PREFIX (begin: the first,
 * forgetting the pages read), the watch from the revision after the one
 * read, /v3/auth/authenticate's.
 */
int discovery_registry_range_request(discovery_registry_t *r, int begin,
    discovery_buf_t *out, discovery_error_t *err) DISCOVERY_NOEXCEPT;
int discovery_registry_watch_request(discovery_registry_t *r,
    discovery_buf_t *out, discovery_error_t *err) DISCOVERY_NOEXCEPT;
int discovery_registry_auth_request(const char *user, size_t user_len,
    const char *password, size_t password_len, discovery_buf_t *out,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;

/* the token of an authentication answer, NUL-ended */
int discovery_registry_auth_token(const unsigned char *body, size_t len,
    discovery_buf_t *out, discovery_error_t *err) DISCOVERY_NOEXCEPT;

/*
 * An answer other than 200: DISCOVERY_ERROR with etcd's reason in err when
 * the body is etcd's error, else DISCOVERY_OK.
 */
int discovery_registry_answer_error(const unsigned char *body, size_t len,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;

/*
 * A page of the read: *pages 0 while more are to be read, else the read is
 * whole, took *pages pages, and replaced what the handle holds (the
 * stream cleared).  A failed page leaves what the handle holds as it was.
 */
int discovery_registry_load(discovery_registry_t *r,
    const unsigned char *body, size_t len, size_t *pages,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;

/*
 * The next page was larger than DISCOVERY_REGISTRY_MAX_ANSWER: 1 when it
 * is to be read again with half the keys, or, when it was one, that key
 * alone without its value; 0 when even that was too large.
 */
int discovery_registry_range_smaller(discovery_registry_t *r)
    DISCOVERY_NOEXCEPT;

/*
 * The key the last page read without its value (too large), which the
 * read takes as a value refused; empty (out->len 0) when none.
 */
int discovery_registry_range_oversized(discovery_registry_t *r,
    discovery_buf_t *out, discovery_error_t *err) DISCOVERY_NOEXCEPT;

/*
 * An answer other than 200 to a page: when it is etcd's refusal of the
 * read's revision, compacted since its first page, the read begins again
 * and the revision is returned; else 0.
 */
int64_t discovery_registry_range_compacted(discovery_registry_t *r,
    const unsigned char *body, size_t len) DISCOVERY_NOEXCEPT;

/* the watch stream's bytes; an error past DISCOVERY_WATCH_MAX_MESSAGE */
int discovery_registry_watch_feed(discovery_registry_t *r,
    const unsigned char *data, size_t len, discovery_error_t *err)
    DISCOVERY_NOEXCEPT;

/* the bytes of a message begun and not yet whole */
size_t discovery_registry_watch_pending(discovery_registry_t *r)
    DISCOVERY_NOEXCEPT;

/*
 * Reads and applies the stream's next whole message: DISCOVERY_OK with
 * *what one of DISCOVERY_WATCH_*, or an error (etcd's, or a malformed
 * message) after which the watch is made again.
 */
int discovery_registry_watch_next(discovery_registry_t *r, int *what,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;

/* the store's revision the services were last read or watched at */
int64_t discovery_registry_revision(discovery_registry_t *r)
    DISCOVERY_NOEXCEPT;

/* counts the changes of the services' documents */
uint64_t discovery_registry_version(discovery_registry_t *r)
    DISCOVERY_NOEXCEPT;

/* the number of services held, valid ones in *valid */
size_t discovery_registry_count(discovery_registry_t *r, size_t *valid)
    DISCOVERY_NOEXCEPT;

/*
 * PREFIX/overrides/controls, the management API's overrides as
 * discovery_api_handle() encodes them, as last read; *present 0: there is
 * no such key.  Returns a count of its changes.  Valid until the next read.
 */
uint64_t discovery_registry_overrides(discovery_registry_t *r,
    const unsigned char **data, size_t *len, int *present)
    DISCOVERY_NOEXCEPT;

/*
 * The body of the /v3/kv/txn that writes these controls to that key only
 * over a revision of it (0: only where there is no key): `found`, what a
 * failed txn found, or, when it is below 0, the one last read or watched.
 * Where the key is at another, it writes nothing and reads it.
 */
int discovery_registry_overrides_request(discovery_registry_t *r,
    const unsigned char *controls, size_t len, int64_t found,
    discovery_buf_t *out, discovery_error_t *err) DISCOVERY_NOEXCEPT;

/*
 * That txn's answer: *written 1 when the controls were written, else
 * *found the key's revision the txn found (0: no key).
 */
int discovery_registry_overrides_answer(const unsigned char *body,
    size_t len, int *written, int64_t *found,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;

/*
 * The valid services' documents as one JSON object by name: what the
 * configuration takes in at a reload (see discovery_registry_args).
 */
int discovery_registry_serving(discovery_registry_t *r, discovery_buf_t *out,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;

/*
 * The services of a discovery_registry_serving() object as discovery_service
 * arguments: for each service, its name, its URL, then its options, each
 * NUL-ended, and an empty string after the last; an empty string again
 * ends the list.  NULL-free: out holds them all.
 */
int discovery_registry_args(const unsigned char *serving, size_t len,
    discovery_buf_t *out, discovery_error_t *err) DISCOVERY_NOEXCEPT;

/* the services as a JSON array: name, mod_revision, valid, url or error */
int discovery_registry_status(discovery_registry_t *r, discovery_buf_t *out,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;

/*
 * share=on (see registry.hpp): the bodies of a lease's grant and
 * keepalive, of the txn that claims service NAME's polls for `lease`, and
 * of the txn that writes its routes' value while that claim holds.
 */
int discovery_registry_lease_request(int64_t lease, int64_t ttl,
    discovery_buf_t *out, discovery_error_t *err) DISCOVERY_NOEXCEPT;
int discovery_registry_claim_request(discovery_registry_t *r,
    const char *name, size_t len, int64_t lease, discovery_buf_t *out,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;
int discovery_registry_routes_request(discovery_registry_t *r,
    const char *name, size_t len, int64_t lease, const unsigned char *value,
    size_t value_len, discovery_buf_t *out, discovery_error_t *err)
    DISCOVERY_NOEXCEPT;

/*
 * The services `lease` claims that are not among `names` ("NAME\0"...),
 * as "NAME\0"..., and the body of the txn that gives up one of them.
 */
int discovery_registry_orphans(discovery_registry_t *r, int64_t lease,
    const unsigned char *names, size_t len, discovery_buf_t *out,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;
int discovery_registry_release_request(discovery_registry_t *r,
    const char *name, size_t len, int64_t lease, discovery_buf_t *out,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;

/* the body of the check of a silent watch's member (see registry.hpp) */
int discovery_registry_check_request(discovery_registry_t *r,
    discovery_buf_t *out, discovery_error_t *err) DISCOVERY_NOEXCEPT;

/*
 * A grant's, keepalive's or time to live's answer.  A keepalive's *ttl is
 * 0 when etcd no longer has the lease; a time to live's is -1 then, and 0
 * for a lease with under a second left (etcd answers whole seconds).
 */
int discovery_registry_lease_answer(const unsigned char *body, size_t len,
    int64_t *lease, int64_t *ttl, discovery_error_t *err) DISCOVERY_NOEXCEPT;

/* a txn's answer: *succeeded 1 when its comparison held */
int discovery_registry_txn_answer(const unsigned char *body, size_t len,
    int *succeeded, discovery_error_t *err) DISCOVERY_NOEXCEPT;

/* counts the changes of PREFIX/pollers/ and PREFIX/routes/ */
uint64_t discovery_registry_share_version(discovery_registry_t *r)
    DISCOVERY_NOEXCEPT;

/*
 * The lease PREFIX/pollers/NAME is bound to: 0 when there is no such key,
 * -1 for a key bound to no lease.
 */
int64_t discovery_registry_poller(discovery_registry_t *r, const char *name,
    size_t len) DISCOVERY_NOEXCEPT;

/*
 * The services this gateway has ("NAME\0"...), and the least lease above
 * `after` bound to one of their PREFIX/pollers/NAME keys, but for `own`;
 * 0: none.  From 0, the others' leases in turn, each once.
 */
int discovery_registry_configured(discovery_registry_t *r,
    const unsigned char *names, size_t len, discovery_error_t *err)
    DISCOVERY_NOEXCEPT;
int64_t discovery_registry_claimant(discovery_registry_t *r, int64_t own,
    int64_t after) DISCOVERY_NOEXCEPT;

/*
 * PREFIX/routes/NAME's value, valid until the next read, and the lease
 * the key is bound to (0: none); 0: no such key
 */
int discovery_registry_routes(discovery_registry_t *r, const char *name,
    size_t len, const unsigned char **value, size_t *value_len,
    int64_t *lease) DISCOVERY_NOEXCEPT;

/*
 * The value of PREFIX/routes/NAME for each service of a table, in its
 * roster's order: "NAME\0VALUE\0" one after another, VALUE a route
 * document with the service's "state" and "url", empty for one not polled
 * yet.
 */
int discovery_share_values(const unsigned char *snapshot, size_t len,
    discovery_buf_t *out, discovery_error_t *err) DISCOVERY_NOEXCEPT;

/*
 * The DISCOVERY_STATE_ a PREFIX/routes/NAME value names, or an error, as
 * for a value whose "url" (the URL polled) is not `url`.
 */
int discovery_share_state(const unsigned char *value, size_t len,
    const char *url, size_t url_len, uint32_t *state,
    discovery_error_t *err) DISCOVERY_NOEXCEPT;


#ifdef __cplusplus
}
#endif

#endif /* DISCOVERY_CORE_H_INCLUDED_ */
