
/*
 * Types shared by the discovery module's C files: configuration, the
 * shared zone and the functions each file offers the others.  What a
 * worker changes as it runs is not here: each file keeps its own, per
 * service in an array by the service's index.
 */

#ifndef _NGX_HTTP_DISCOVERY_H_INCLUDED_
#define _NGX_HTTP_DISCOVERY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <curl/curl.h>

#include "discovery_core.h"


/* an entity tag longer than this is not used */
#define NGX_HTTP_DISCOVERY_ETAG_LEN  128

/* a request turned away before routing, as the access phase decides it */
#define NGX_HTTP_DISCOVERY_NOT_CANONICAL          100

/* discovery_noncanonical */
#define NGX_HTTP_DISCOVERY_NONCANONICAL_REJECT    0
#define NGX_HTTP_DISCOVERY_NONCANONICAL_REDIRECT  1
#define NGX_HTTP_DISCOVERY_NONCANONICAL_PASS      2


typedef struct {
    ngx_str_t                      name;
    ngx_str_t                      url;          /* as shown: no password */
    ngx_str_t                      base;         /* polled, no credentials */
    ngx_str_t                      uri;          /* uri= */
    ngx_str_t                      poll_url;     /* base + uri, NUL-ended */
    ngx_str_t                      user;         /* NUL-ended, or empty */
    ngx_str_t                      password;
    ngx_str_t                      host;         /* $discovery_host */
    in_port_t                      port;
    unsigned                       https:1;      /* https:// or grpcs:// */
    unsigned                       grpc:1;       /* grpc:// or grpcs:// */
    unsigned                       grpc_internal:1;
    unsigned                       registry:1;   /* from the registry */
    ngx_str_t                      upstream;     /* $discovery_upstream */
    ngx_str_t                      upstream_opt; /* upstream= as given */
    ngx_str_t                      host_port;    /* of url, for upstream */
    /* the upstream made for host_port's name, as proxy_pass makes one */
    ngx_http_upstream_srv_conf_t  *implicit;
    /* where discovery_balancer sends the service's requests, or NULL */
    ngx_http_upstream_srv_conf_t  *uscf;
    ngx_array_t                   *prefixes;     /* ngx_str_t, or NULL */

    ngx_msec_t                     interval;
    ngx_msec_t                     timeout;
    ngx_uint_t                     fails;
    ngx_uint_t                     passes;
    ngx_uint_t                     format;

    ngx_uint_t                     index;        /* in configuration */
    u_char                        *file;         /* of the directive, */
    ngx_uint_t                     line;         /* for late errors */

    /*
     * Of the options that decide how the document is read, set with the
     * zone: see ngx_http_discovery_fingerprint() (a new such option goes
     * there too).
     */
    uint64_t                       fingerprint;
} ngx_http_discovery_service_t;


/* what the core's log messages are about */
typedef struct {
    ngx_log_t                     *log;
    ngx_str_t                     *service;      /* or NULL */
} ngx_http_discovery_log_ctx_t;


/* one per configured service, in the zone; keyed by name */
typedef struct {
    ngx_str_node_t                 node;         /* by name, str: name */
    ngx_queue_t                    queue;
    ngx_uint_t                     kept;         /* by a roster change */
    ngx_str_t                      name;         /* stored after the record */
    ngx_str_t                      url;

    discovery_health_t             health;
    uint64_t                       routes_hash;  /* of the published set */

    /* polls reported, numbering them; the one whose routes are published */
    uint64_t                       polls;
    uint64_t                       published_poll;
    /* a publication of its changes was given up: publish on the next poll */
    ngx_uint_t                     republish;

    uint64_t                       fingerprint;  /* of the service's */

    /* the document behind the published set: a 304 to it is a good poll */
    size_t                         etag_len;
    u_char                         etag[NGX_HTTP_DISCOVERY_ETAG_LEN];

    ngx_pid_t                      lease_pid;    /* 0: nobody polls */
    ngx_msec_t                     lease_until;
    ngx_msec_t                     next_poll;

    /*
     * share=on, set by the registry's watcher: DISCOVERY_POLLER_OTHER when
     * another gateway polls the service for the fleet (this one applies
     * what it writes to etcd, and polls not), and the lease of the claim
     */
    ngx_uint_t                     poller;
    int64_t                        poller_lease;

    time_t                         last_check;
    time_t                         last_success;
    size_t                         last_error_len;
    u_char                         last_error[DISCOVERY_ERROR_LEN];

    /* discovery_metrics: polls by result and how long they took */
    uint64_t                       poll_results[DISCOVERY_METRICS_POLL_RESULTS];
    uint64_t                       poll_buckets[DISCOVERY_METRICS_POLL_BUCKETS
                                                + 1];
    uint64_t                       poll_ms;
    /* its routes in the table last assigned slots, and those rejected */
    uint64_t                       routed;
    uint64_t                       rejected;
} ngx_http_discovery_record_t;


/*
 * The router image of a table (see discovery_router_image), in the zone:
 * every worker reads it where it lies.  A replaced one is kept until no
 * process reads it any more.
 */
typedef struct ngx_http_discovery_image_s  ngx_http_discovery_image_t;

struct ngx_http_discovery_image_s {
    ngx_http_discovery_image_t    *next;         /* retired */
    ngx_atomic_uint_t              generation;   /* of its table */
    size_t                         len;
    u_char                        *data;         /* aligned, in this block */

    /*
     * With discovery_metrics: where each of its routes counts (see
     * discovery_metrics_hints), its own block, freed with it; set before
     * the image is installed, or never (NULL).
     */
    uint64_t                      *hints;
    size_t                         nhints;
};

/* processes that read images: a worker per slot, with the one it reads */
#define NGX_HTTP_DISCOVERY_READERS  64

typedef struct {
    ngx_pid_t                      pid;          /* 0: a free slot */
    ngx_atomic_uint_t              generation;   /* of its image, or 0 */
} ngx_http_discovery_reader_t;


/*
 * Blocks of the zone a worker's thread took for a table and its image and
 * fills outside the lock, before install() publishes or frees them: if
 * the worker is killed meanwhile, whoever publishes next frees them.
 */
typedef struct {
    ngx_pid_t                      pid;          /* 0: a free slot */
    u_char                        *table;        /* or NULL */
    ngx_http_discovery_image_t    *image;        /* or NULL */
} ngx_http_discovery_taken_t;


/*
 * A slot no live process holds: given back (pid 0), or of a worker killed
 * (SIGKILL) that could not give it back.  With the zone's lock held.
 */
static ngx_inline ngx_uint_t
ngx_http_discovery_slot_free(ngx_pid_t pid)
{
    return pid == 0 || (kill(pid, 0) == -1 && ngx_errno == NGX_ESRCH);
}


static ngx_inline ngx_uint_t
ngx_http_discovery_reader_free(ngx_http_discovery_reader_t *reader)
{
    return ngx_http_discovery_slot_free(reader->pid);
}


/*
 * A route slot the index let go, freed once no request can count into it:
 * the note is in the slot's own block, after the slot, so that letting a
 * slot go never needs memory the zone may not have.
 */
typedef struct ngx_http_discovery_released_s  ngx_http_discovery_released_t;

struct ngx_http_discovery_released_s {
    ngx_http_discovery_released_t *next;
    uint32_t                       size;         /* of the slot before it */
    uint32_t                       at;           /* when, in seconds */
};


/*
 * Route slots are cut from chunks of the zone in units of 64 bytes, and a
 * freed one waits in the list of its size for the next route of that size:
 * the slab allocator would round a 300-byte slot up to 512.
 */
#define NGX_HTTP_DISCOVERY_SLOT_UNIT     64
#define NGX_HTTP_DISCOVERY_SLOT_SIZES    32          /* up to 2 KB */
#define NGX_HTTP_DISCOVERY_SLOT_CHUNK    (64 * 1024)


/*
 * discovery_metrics in the zone: the gateway's own answers, what could
 * not be counted, and the route slots' index (_metrics.c).  The index
 * is changed by one process at a time, the one in `assigning`.
 */
typedef struct {
    ngx_atomic_t                   gateway[DISCOVERY_METRICS_REASONS];
    ngx_atomic_t                   overflow[DISCOVERY_METRICS_OVERFLOWS];
    ngx_atomic_t                   assigning;    /* a pid, 0: none */
    discovery_metrics_index_t     *index;        /* NULL: no room */
    ngx_http_discovery_released_t *released;

    /* free slots by size in units, each slot's first word the next one's */
    uint64_t                       free[NGX_HTTP_DISCOVERY_SLOT_SIZES + 1];
    u_char                        *chunk;        /* what is left of one */
    size_t                         chunk_left;

    /* of the table last assigned */
    uint64_t                       generation;
    uint64_t                       routes;
    uint64_t                       conflicts;
    uint64_t                       overlaps;
    uint64_t                       unassigned;   /* routes with no slot */
    ngx_uint_t                     freed;        /* slots, since assigned */
} ngx_http_discovery_metrics_sh_t;


/* discovery_registry */
typedef struct {
    ngx_array_t                    urls;         /* ngx_str_t, NUL-ended */
    ngx_str_t                      prefix;       /* ends in "/" */
    ngx_msec_t                     timeout;
    ngx_str_t                      user;         /* NUL-ended, or empty */
    ngx_str_t                      password;
    ngx_flag_t                     share;
    u_char                        *file;
    ngx_uint_t                     line;

    /*
     * The registry's services this configuration took in (see
     * discovery_registry_serving), at that revision; adding: the
     * directive's handler is adding them.
     */
    ngx_str_t                      serving;
    int64_t                        serving_revision;
    ngx_uint_t                     adding;
} ngx_http_discovery_registry_conf_t;

/* the registry's part of the zone, _registry.c's own */
typedef struct ngx_http_discovery_registry_sh_s
    ngx_http_discovery_registry_sh_t;


typedef struct {
    ngx_atomic_t                   generation;   /* of snapshot */
    u_char                        *snapshot;     /* see discovery_core.h */
    size_t                         snapshot_len;
    size_t                         snapshot_size; /* of its block */
    ngx_queue_t                    records;
    ngx_rbtree_t                   rbtree;       /* the records, by name */
    ngx_rbtree_node_t              sentinel;

    /* the table that did not fit, reported once per change */
    size_t                         failed_len;

    /* of the table the state file holds */
    ngx_atomic_uint_t              saved_generation;

    /* the table's image, NULL when it did not fit; older ones still read */
    ngx_http_discovery_image_t    *image;
    ngx_http_discovery_image_t    *retired;
    size_t                         failed_image_len;
    ngx_http_discovery_reader_t    readers[NGX_HTTP_DISCOVERY_READERS];
    ngx_http_discovery_taken_t     taken[NGX_HTTP_DISCOVERY_READERS];

    /*
     * The management API's overrides and drained services as the core
     * encodes them (discovery_api_*), written by the worker that answers
     * a write; the publisher puts them into the next table.  version
     * counts the writes; expiry is the next override's, 0: none.
     */
    u_char                        *controls;     /* NULL: none */
    size_t                         controls_len;
    ngx_atomic_uint_t              controls_version;
    time_t                         controls_expiry;

    ngx_http_discovery_metrics_sh_t  *metrics;   /* NULL: never configured */

    /* what the registry held when last read, and how its watch goes */
    ngx_http_discovery_registry_sh_t  *registry;
} ngx_http_discovery_shctx_t;


typedef struct {
    ngx_array_t                    services;     /* service_t */
    size_t                         zone_size;
    size_t                         max_size;
    ngx_str_t                      state;        /* file, or empty */
    ngx_str_t                      state_image;  /* state + ".image" */
    ngx_uint_t                     overlap_deny; /* discovery_overlap */
    ngx_http_discovery_registry_conf_t  *registry; /* or NULL */

    /* TLS of the polls */
    ngx_flag_t                     ssl_verify;
    ngx_str_t                      ssl_trusted_certificate;
    ngx_str_t                      ssl_certificate;
    ngx_str_t                      ssl_certificate_key;

    /* the upstream blocks with discovery_balancer (srv conf pointers) */
    ngx_array_t                   *balancers;    /* or NULL */

    /* the first "discovery_route on", for a configuration without services */
    u_char                        *route_file;
    ngx_uint_t                     route_line;

    /* discovery_metrics somewhere, and its buckets= (the same everywhere) */
    ngx_flag_t                     metrics;
    ngx_uint_t                     metrics_buckets_set;
    ngx_int_t                      decided_index;  /* a request's slot */
    size_t                         nbuckets;
    uint32_t                       buckets_ms[DISCOVERY_METRICS_MAX_BUCKETS];

    ngx_shm_zone_t                *shm_zone;
    ngx_http_discovery_shctx_t    *sh;
    ngx_slab_pool_t               *shpool;

} ngx_http_discovery_main_conf_t;


typedef struct {
    ngx_flag_t                     route;
    ngx_uint_t                     noncanonical;

    /* discovery_status here: where, for a location that also routes */
    u_char                        *status_file;
    ngx_uint_t                     status_line;

    /* discovery_api: NGX_CONF_UNSET when absent, else write=on|off */
    ngx_flag_t                     api_write;
    u_char                        *api_file;

    u_char                        *metrics_file; /* discovery_metrics here */
} ngx_http_discovery_loc_conf_t;


/*
 * The module's timers belong to no connection, but nginx reads ev->data as
 * one (its debug log of timers, for the fd): each file's timers have a
 * dummy connection with fd -1, as nginx's own have (ngx_cycle.c), and a
 * handler finds what its event belongs to from the event's own address.
 */
#define ngx_http_discovery_event_owner(ev, type, field)                      \
    ((type *) ((u_char *) (ev) - offsetof(type, field)))


#if (NGX_THREADS)

/* work for the background threads (_background.c) */
typedef struct ngx_http_discovery_task_s  ngx_http_discovery_task_t;

struct ngx_http_discovery_task_s {
    ngx_http_discovery_task_t     *next;         /* queued */
    ngx_http_discovery_task_t     *out;          /* posted, not collected */
    void                          *ctx;
    void                         (*handler)(void *data, ngx_log_t *log);
    volatile ngx_uint_t            finished;     /* set by the thread */
    ngx_event_t                    event;        /* done, on the event loop */
};

#endif


/*
 * At exit, for a task posted to the background threads, which end after
 * every other part's exit: wait for its task.finished, the thread's last
 * write to it (the owner may free the task once it is set).
 */
static ngx_inline void
ngx_http_discovery_task_wait(volatile ngx_uint_t *done)
{
    while (!*done) {
        ngx_sched_yield();
    }

    ngx_memory_barrier();
}


/* what a poll found */
typedef struct {
    ngx_uint_t                     ok;
    discovery_buf_t               *routes;       /* NULL: as published (304) */
    uint64_t                       hash;         /* of routes, or 0 */
    ngx_str_t                      etag;         /* of the document */
    ngx_str_t                      error;        /* when not ok */
    ngx_uint_t                     result;       /* DISCOVERY_METRICS_POLL_ */
    ngx_msec_t                     duration;
    /* DISCOVERY_STATE_: another gateway's poll, which decided it; 0: ours */
    ngx_uint_t                     state;
} ngx_http_discovery_outcome_t;


/* libcurl's multi-socket interface on nginx's event loop (_curl.c) */
typedef void (*ngx_http_discovery_curl_done_pt)(CURL *easy, CURLcode result);
/* a socket found no free connection (NULL: libcurl is told to fail) */
typedef void (*ngx_http_discovery_curl_starved_pt)(CURL *easy);

/* a socket libcurl watches, by its number */
typedef struct {
    ngx_connection_t                    *connection;
    ngx_file_uniq_t                      uniq;      /* which socket it is */
} ngx_http_discovery_curl_socket_t;

typedef struct {
    CURLM                               *multi;
    ngx_http_discovery_curl_done_pt      done;      /* a transfer ended */
    ngx_http_discovery_curl_starved_pt   starved;
    ngx_event_t                          timer;     /* libcurl's */
    ngx_connection_t                     dumb;      /* the timer's data */
    ngx_http_discovery_curl_socket_t    *sockets;   /* by number */
    ngx_uint_t                           nsockets;
    ngx_log_t                           *log;
} ngx_http_discovery_curl_t;


/* ngx_http_discovery_curl.c */
ngx_int_t ngx_http_discovery_curl_init(ngx_http_discovery_curl_t *curl,
    ngx_log_t *log, ngx_http_discovery_curl_done_pt done,
    ngx_http_discovery_curl_starved_pt starved);
CURLcode ngx_http_discovery_curl_handle(ngx_http_discovery_curl_t *curl,
    CURL *easy);
void ngx_http_discovery_curl_cleanup(ngx_http_discovery_curl_t *curl);

/* ngx_http_discovery_directive.c */
char *ngx_http_discovery_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_discovery_service(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_discovery_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_discovery_route(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_discovery_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_discovery_ssl_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_discovery_max_size(ngx_conf_t *cf, void *post, void *data);
char *ngx_http_discovery_upstreams(ngx_conf_t *cf,
    ngx_http_discovery_main_conf_t *dmcf);

/* ngx_http_discovery_balancer.c */
char *ngx_http_discovery_balancer(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_uint_t ngx_http_discovery_is_balancer(ngx_http_upstream_srv_conf_t *uscf);
ngx_int_t ngx_http_discovery_balancer_upstreams(ngx_conf_t *cf,
    ngx_http_discovery_main_conf_t *dmcf);
ngx_int_t ngx_http_discovery_balancer_check(ngx_conf_t *cf);

/* ngx_http_discovery_background.c */
#if (NGX_THREADS)
void ngx_http_discovery_background_init_worker(ngx_cycle_t *cycle);
void ngx_http_discovery_background_exit_worker(ngx_cycle_t *cycle);
ngx_int_t ngx_http_discovery_task_post(ngx_http_discovery_task_t *task,
    void *ctx, void (*handler)(void *data, ngx_log_t *log),
    ngx_event_handler_pt done, ngx_log_t *log);
#endif

/* ngx_http_discovery_handler.c */
ngx_int_t ngx_http_discovery_access_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_discovery_add_variables(ngx_conf_t *cf);
ngx_int_t ngx_http_discovery_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_buf_t *b);
ngx_int_t ngx_http_discovery_send_rendered(ngx_http_request_t *r,
    ngx_str_t *type, discovery_buf_t *text);
ngx_int_t ngx_http_discovery_set_header(ngx_http_request_t *r,
    ngx_str_t *name, ngx_str_t *value);

/* ngx_http_discovery_router.c */
void ngx_http_discovery_router_init_worker(ngx_cycle_t *cycle,
    ngx_http_discovery_main_conf_t *dmcf);
void ngx_http_discovery_router_exit_worker(ngx_cycle_t *cycle);
discovery_router_t *ngx_http_discovery_router_latest(
    ngx_http_discovery_main_conf_t *dmcf);
ngx_http_discovery_service_t *ngx_http_discovery_router_owner(
    discovery_match_t *m);
uint64_t ngx_http_discovery_router_hint(discovery_match_t *m);
void ngx_http_discovery_router_hint_prefetch(discovery_match_t *m);

/* what the zone holds, copied under its lock for the status page and API */
typedef struct {
    u_char                        *snapshot;     /* NULL: no table */
    size_t                         snapshot_len;
    u_char                        *controls;     /* NULL: none */
    size_t                         controls_len;
    ngx_atomic_uint_t              controls_version;
    discovery_service_stats_t     *stats;        /* a record per service */
    size_t                         n;
    size_t                         failed_len;   /* a table that did not fit */
} ngx_http_discovery_zone_copy_t;


/* ngx_http_discovery_zone.c */
ngx_int_t ngx_http_discovery_zone_add(ngx_conf_t *cf,
    ngx_http_discovery_main_conf_t *dmcf);
ngx_int_t ngx_http_discovery_claim(ngx_http_discovery_main_conf_t *dmcf,
    ngx_http_discovery_service_t *service, ngx_msec_t *next, ngx_str_t *etag);
uint64_t ngx_http_discovery_routes_hash(discovery_buf_t *routes);
ngx_int_t ngx_http_discovery_zone_copy(ngx_pool_t *pool,
    ngx_http_discovery_main_conf_t *dmcf, ngx_http_discovery_zone_copy_t *c);
void ngx_http_discovery_report(ngx_http_discovery_main_conf_t *dmcf,
    ngx_http_discovery_service_t *service,
    ngx_http_discovery_outcome_t *outcome, ngx_log_t *log);
void ngx_http_discovery_release_leases(ngx_http_discovery_main_conf_t *dmcf);
u_char *ngx_http_discovery_table_copy(ngx_http_discovery_main_conf_t *dmcf,
    size_t *len, ngx_atomic_uint_t *generation);
ngx_http_discovery_record_t *ngx_http_discovery_record_of(
    ngx_http_discovery_shctx_t *sh, ngx_http_discovery_service_t *service);
void ngx_http_discovery_log_handler(void *data, int level, const char *msg,
    size_t len);

/* ngx_http_discovery_publish.c */
ngx_int_t ngx_http_discovery_publish_init_worker(ngx_cycle_t *cycle,
    ngx_http_discovery_main_conf_t *dmcf);
void ngx_http_discovery_publish_exit_worker(ngx_cycle_t *cycle);
void ngx_http_discovery_publish_freed(void);
void ngx_http_discovery_defer(ngx_http_discovery_service_t *service,
    ngx_http_discovery_outcome_t *outcome, uint64_t hash, uint64_t poll);
void ngx_http_discovery_defer_drop_routes(
    ngx_http_discovery_service_t *service);
void ngx_http_discovery_publish_controls(void);
u_char *ngx_http_discovery_table_alloc_locked(
    ngx_http_discovery_main_conf_t *dmcf, size_t len, size_t *size);
ngx_atomic_uint_t ngx_http_discovery_table_install_locked(
    ngx_http_discovery_main_conf_t *dmcf, u_char *p, size_t size, size_t len,
    ngx_http_discovery_image_t *image);
ngx_http_discovery_image_t *ngx_http_discovery_image_alloc_locked(
    ngx_http_discovery_main_conf_t *dmcf, size_t len, ngx_log_t *log);
void ngx_http_discovery_image_no_room(ngx_http_discovery_main_conf_t *dmcf,
    ngx_log_t *log, size_t table_len, size_t image_len);
void ngx_http_discovery_image_free_locked(
    ngx_http_discovery_main_conf_t *dmcf, ngx_http_discovery_image_t *image);
void ngx_http_discovery_images_reclaim_locked(
    ngx_http_discovery_main_conf_t *dmcf);

/* ngx_http_discovery_state.c */
ngx_int_t ngx_http_discovery_state_names(ngx_conf_t *cf,
    ngx_http_discovery_main_conf_t *dmcf);
ngx_int_t ngx_http_discovery_state_load(ngx_http_discovery_main_conf_t *dmcf,
    ngx_log_t *log, u_char **blob, size_t *len);
ngx_http_discovery_image_t *ngx_http_discovery_state_image_locked(
    ngx_http_discovery_main_conf_t *dmcf, ngx_log_t *log, u_char *table,
    size_t table_len);
void ngx_http_discovery_state_init_worker(ngx_cycle_t *cycle,
    ngx_http_discovery_main_conf_t *dmcf);
void ngx_http_discovery_state_exit_worker(ngx_cycle_t *cycle);
void ngx_http_discovery_state_publish(ngx_http_discovery_main_conf_t *dmcf,
    discovery_buf_t *table, ngx_atomic_uint_t generation);
ngx_fd_t ngx_http_discovery_state_create(ngx_str_t *path, u_char *tmp,
    ngx_log_t *log);

/* ngx_http_discovery_api.c */
ngx_int_t ngx_http_discovery_api_handler(ngx_http_request_t *r);
void ngx_http_discovery_api_init_worker(ngx_cycle_t *cycle,
    ngx_http_discovery_main_conf_t *dmcf);
void ngx_http_discovery_api_exit_worker(ngx_cycle_t *cycle);
void ngx_http_discovery_controls_restore_locked(
    ngx_http_discovery_main_conf_t *dmcf, discovery_buf_t *table,
    ngx_log_t *log);

/* ngx_http_discovery_poller.c */
void ngx_http_discovery_poll_now(ngx_http_discovery_service_t *service);
ngx_int_t ngx_http_discovery_poller_init_worker(ngx_cycle_t *cycle,
    ngx_http_discovery_main_conf_t *dmcf);
void ngx_http_discovery_poller_exit_worker(ngx_cycle_t *cycle);

/* ngx_http_discovery_handler.c: the access phase's decision, for the log */
ngx_int_t ngx_http_discovery_decision(ngx_http_request_t *r,
    ngx_uint_t *status, ngx_str_t *service, ngx_str_t *route,
    uint64_t *hint);
ngx_int_t ngx_http_discovery_routed(ngx_http_request_t *r,
    ngx_http_discovery_service_t **service, ngx_str_t *name,
    ngx_str_t *upstream);

/* ngx_http_discovery_metrics.c */
char *ngx_http_discovery_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_discovery_metrics_init(ngx_conf_t *cf);
ngx_int_t ngx_http_discovery_metrics_init_zone(
    ngx_http_discovery_main_conf_t *dmcf, ngx_log_t *log);
void ngx_http_discovery_metrics_init_worker(ngx_cycle_t *cycle,
    ngx_http_discovery_main_conf_t *dmcf);
void ngx_http_discovery_metrics_exit_worker(ngx_cycle_t *cycle);
void ngx_http_discovery_metrics_hint(ngx_http_discovery_main_conf_t *dmcf,
    ngx_http_discovery_image_t *image, size_t table_len, ngx_log_t *log);
void ngx_http_discovery_metrics_assign(ngx_http_discovery_main_conf_t *dmcf,
    u_char *table, size_t len, discovery_table_t *decoded,
    discovery_metrics_assigned_t *keep, ngx_log_t *log);
void ngx_http_discovery_metrics_installed_locked(
    ngx_http_discovery_main_conf_t *dmcf, discovery_metrics_assigned_t *a,
    ngx_atomic_uint_t generation);
void ngx_http_discovery_metrics_poll_locked(ngx_http_discovery_record_t *rec,
    ngx_http_discovery_outcome_t *outcome);

/* ngx_http_discovery_registry.c */
char *ngx_http_discovery_registry(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_discovery_registry_init_worker(ngx_cycle_t *cycle,
    ngx_http_discovery_main_conf_t *dmcf);
void ngx_http_discovery_registry_exit_worker(ngx_cycle_t *cycle);
ngx_int_t ngx_http_discovery_registry_services(ngx_conf_t *cf,
    ngx_http_discovery_main_conf_t *dmcf);
ngx_int_t ngx_http_discovery_registry_status(ngx_pool_t *pool,
    ngx_http_discovery_main_conf_t *dmcf, ngx_str_t *out);

/* ngx_http_discovery_reload.c */
void ngx_http_discovery_reload_init_module(ngx_cycle_t *cycle);
void ngx_http_discovery_reload_init_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_discovery_reload_ask(ngx_log_t *log);

/* ngx_http_discovery_status.c */
ngx_int_t ngx_http_discovery_status_handler(ngx_http_request_t *r);


extern ngx_module_t  ngx_http_discovery_module;


#endif /* _NGX_HTTP_DISCOVERY_H_INCLUDED_ */
