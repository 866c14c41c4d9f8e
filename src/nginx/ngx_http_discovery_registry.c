
/*
 * The registry (discovery_registry): one process of the gateway watches
 * PREFIX/services/ in etcd through its v3 JSON gateway, with libcurl on
 * nginx's event loop, and keeps what it read, and how the watch goes, in
 * the zone for the status page.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <curl/curl.h>

#include "ngx_http_discovery.h"


/* what the watcher is doing */
#define NGX_HTTP_DISCOVERY_REGISTRY_IDLE    0
#define NGX_HTTP_DISCOVERY_REGISTRY_AUTH    1
#define NGX_HTTP_DISCOVERY_REGISTRY_RANGE   2
#define NGX_HTTP_DISCOVERY_REGISTRY_WATCH   3

/* the registry's state, as the status page names it */
#define NGX_HTTP_DISCOVERY_REGISTRY_CONNECTING  0
#define NGX_HTTP_DISCOVERY_REGISTRY_UP          1
#define NGX_HTTP_DISCOVERY_REGISTRY_DOWN        2

/*
 * The watcher's lease (milliseconds): the process that holds it renews
 * it every NGX_HTTP_DISCOVERY_REGISTRY_TICK; another, looking every
 * NGX_HTTP_DISCOVERY_REGISTRY_SYNC, takes it over once it has expired, or
 * at once when its holder is gone or gave it back (at exit).
 */
#define NGX_HTTP_DISCOVERY_REGISTRY_LEASE   3000
#define NGX_HTTP_DISCOVERY_REGISTRY_TICK    1000

/*
 * Registry changes within this long (ms) of the first make one reload:
 * ten services started together cost one, not ten.
 */
#define NGX_HTTP_DISCOVERY_REGISTRY_SETTLE  50

/*
 * A reload a second, in bursts of NGX_HTTP_DISCOVERY_REGISTRY_BURST: each
 * takes NGX_HTTP_DISCOVERY_REGISTRY_RELOAD ms of credit, which comes back
 * a millisecond a millisecond.  A service that flaps, registered and gone
 * every 10 ms, made the gateway reload five times a second for as long as
 * it flapped; with a reload at most every second, a change right after
 * another (a service killed, then another stopped) waited up to a second.
 * Now two changes after a quiet two seconds each reload within
 * NGX_HTTP_DISCOVERY_REGISTRY_SETTLE, and a flapping service still makes
 * one reload a second.
 */
#define NGX_HTTP_DISCOVERY_REGISTRY_RELOAD  1000
#define NGX_HTTP_DISCOVERY_REGISTRY_BURST   2

/*
 * A reload that has not replaced the watching worker this long (ms) after
 * it was asked for was refused by nginx (nginx.conf broken meanwhile, the
 * zone too small for the new table): the status page says so.
 */
#define NGX_HTTP_DISCOVERY_REGISTRY_TOOK    5000

/* how often the watcher looks for an API write to put to etcd (ms) */
#define NGX_HTTP_DISCOVERY_REGISTRY_SYNC    100

/*
 * Reconnecting: after a failure the next endpoint is tried after
 * RETRY_MIN milliseconds, doubled with each failure in a row up to
 * RETRY_MAX; a watch that starts resets it.
 */
#define NGX_HTTP_DISCOVERY_REGISTRY_RETRY_MIN  250
#define NGX_HTTP_DISCOVERY_REGISTRY_RETRY_MAX  5000

/*
 * An authentication token, at most: etcd's JWTs signed with RS512 and a
 * 4096-bit key are some 900 bytes.  A header line or a request's URL is
 * made in a buffer of NGX_HTTP_DISCOVERY_LINE_MAX bytes, which a
 * member's URL (at most NGX_HTTP_DISCOVERY_URL_MAX) fits too.
 */
#define NGX_HTTP_DISCOVERY_TOKEN_MAX   4096
#define NGX_HTTP_DISCOVERY_URL_MAX     1024
#define NGX_HTTP_DISCOVERY_LINE_MAX                                      \
    (sizeof("Authorization: ") + NGX_HTTP_DISCOVERY_TOKEN_MAX)

/*
 * share=on: the gateway's etcd lease lives this long (seconds) unless kept
 * alive, which its watcher does every NGX_HTTP_DISCOVERY_SHARE_KEEP (ms),
 * each keepalive given NGX_HTTP_DISCOVERY_SHARE_WAIT; its claims go with
 * it, and another gateway polls their services within this long of its
 * death.  etcd takes 3 s for its least.
 */
#define NGX_HTTP_DISCOVERY_SHARE_TTL     3
#define NGX_HTTP_DISCOVERY_SHARE_KEEP    500

/*
 * The leases of the others' claims of this gateway's services are looked
 * at every NGX_HTTP_DISCOVERY_SHARE_LOOK (ms; on the sync timer's ticks,
 * so every 300 ms), one request at a time, each given
 * NGX_HTTP_DISCOVERY_SHARE_WAIT.  One that etcd says has under a
 * second left has not been kept alive for 2 s, four keepalives: its
 * gateway is gone, and its lease is revoked at once rather than left to
 * expire, which etcd notices up to 500 ms late.
 */
#define NGX_HTTP_DISCOVERY_SHARE_LOOK    250
#define NGX_HTTP_DISCOVERY_SHARE_WAIT    1000

/* a claim or a write of routes not seen by the watch is made again after */
#define NGX_HTTP_DISCOVERY_SHARE_AGAIN   1000

/* an answer to a grant, a keepalive or a txn, at most */
#define NGX_HTTP_DISCOVERY_SHARE_ANSWER  1024


/* in the zone, with its lock */
struct ngx_http_discovery_registry_sh_s {
    ngx_pid_t                      pid;          /* the watcher, 0: none */
    ngx_msec_t                     until;        /* of its lease */
    ngx_uint_t                     state;
    ngx_uint_t                     endpoint;     /* index in the URLs */
    int64_t                        revision;
    time_t                         since;        /* of the state */
    size_t                         error_len;
    u_char                         error[DISCOVERY_ERROR_LEN];
    ngx_uint_t                     count;        /* services */
    ngx_uint_t                     valid;
    u_char                        *services;     /* JSON array, or NULL */
    size_t                         services_len;

    /*
     * The valid services (discovery_registry_serving) for the next
     * configuration, which a reload takes in, at that revision; and the
     * revision the running configuration's services were last found
     * current at.
     */
    u_char                        *serving;
    size_t                         serving_len;
    int64_t                        serving_revision;
    int64_t                        table_revision;

    ngx_msec_t                     reloaded;     /* asked at, 0: never */
    ngx_msec_t                     credit;       /* left then, in ms */

    /*
     * The zone's controls_version etcd is known to hold (written there,
     * or taken from there), by any worker's watcher: a new watcher, after
     * a reload or a handover, still writes what an old one had not.
     */
    ngx_atomic_uint_t              overrides_synced;
    ngx_uint_t                     overrides_known;

    /* share=on: the gateway's lease, 0: none, and when it ends */
    int64_t                        lease;
    ngx_msec_t                     lease_until;
};


/* a request to etcd: its handle, in flight or NULL, its headers, its body */
typedef struct {
    CURL                                *easy;
    struct curl_slist                   *headers;
    discovery_buf_t                      body;
    /* a short answer, kept by ngx_http_discovery_registry_keep() */
    size_t                               received;
    u_char                              *answer;
    ngx_msec_t                           timeout;    /* 0: the default */
} ngx_http_discovery_registry_call_t;


/* share=on: what the watcher knows of one service of the configuration */
typedef struct {
    int64_t                              lease;      /* of the claim seen */
    int64_t                              previous;   /* the one before */
    ngx_msec_t                           since;      /* it was first seen */
    ngx_uint_t                           warned;     /* that it never wrote */
    ngx_msec_t                           claimed;    /* our claim sent at */
    uint32_t                             applied;    /* the value's hash */
    uint32_t                             rejected;   /* a value refused */
    ngx_uint_t                           held;       /* claimant's routes */
    u_char                              *value;      /* in w->values */
    size_t                               value_len;  /* 0: none */
    ngx_uint_t                           failed;     /* its last request */
    uint32_t                             written;
    ngx_msec_t                           written_at;
} ngx_http_discovery_share_t;


typedef struct {
    ngx_http_discovery_main_conf_t      *dmcf;
    ngx_http_discovery_registry_conf_t  *conf;
    discovery_registry_t                *registry;
    ngx_http_discovery_curl_t            curl;
    ngx_http_discovery_registry_call_t   watch;      /* auth, range, watch */
    ngx_uint_t                           step;
    ngx_uint_t                           leased;
    ngx_uint_t                           endpoint;
    ngx_uint_t                           failures;   /* in a row */
    uint64_t                             version;    /* in the zone */

    u_char                              *answer;
    size_t                               received;
    size_t                               answer_size;
    ngx_uint_t                           oversize;   /* past the cap */

    size_t                               token_len;
    u_char                               token[NGX_HTTP_DISCOVERY_TOKEN_MAX];
    ngx_msec_t                           token_at;   /* when it was given */

    size_t                               error_len;
    u_char                               error[DISCOVERY_ERROR_LEN];
    char                                 curl_error[CURL_ERROR_SIZE];

    u_char                              *asked;      /* reloaded for */
    size_t                               asked_len;
    int64_t                              asked_revision;

    /*
     * The management API's overrides: the zone's controls_version etcd
     * holds (written there, or taken from there), the put in flight, the
     * key's revision a put that found another write there found (0: no
     * key; -1: none found), and the count of the registry's changes of
     * them last applied.
     */
    ngx_atomic_uint_t                    synced;
    ngx_atomic_uint_t                    put_version;
    int64_t                              put_found;
    uint64_t                             overrides_version;
    ngx_http_discovery_registry_call_t   put;

    /*
     * share=on: the lease's grant or keepalive, and a claim or a write of
     * routes, each one at a time; the service it is about; the values
     * of the table last looked at, and each service's part.
     */
    ngx_http_discovery_registry_call_t   lease_call;
    ngx_http_discovery_registry_call_t   share_call;
    ngx_uint_t                           share_index;
    ngx_uint_t                           share_cursor; /* next to look at */
    ngx_uint_t                           orphans_read;
    discovery_buf_t                      orphans;    /* claims to give up */
    size_t                               orphan;     /* the next one's */
    ngx_uint_t                           share_claim;
    uint32_t                             share_hash;
    ngx_msec_t                           kept_alive; /* asked at */
    ngx_uint_t                           lease_failed;
    discovery_buf_t                      values;
    ngx_atomic_uint_t                    values_generation;
    uint64_t                             share_version;
    ngx_uint_t                           trusted;
    ngx_msec_t                           pollers_at;
    ngx_http_discovery_share_t          *share;

    /*
     * share=on: the others' leases, looked at in turn: the request about
     * one (its time to live, then maybe its revocation), the lease, 0
     * between rounds, and when the last round began.
     */
    ngx_http_discovery_registry_call_t   look_call;
    int64_t                              look_lease;
    ngx_uint_t                           look_revoke;
    ngx_msec_t                           looked_at;

    ngx_uint_t                           watching;   /* created */
    ngx_msec_t                           compacted;  /* last read for it */

    /*
     * The check of the watch's member while the watch is silent, one at
     * a time: when it was sent, and when the watch last received bytes.
     */
    ngx_http_discovery_registry_call_t   check_call;
    ngx_msec_t                           checked;
    ngx_msec_t                           heard;

    ngx_event_t                          lease;
    ngx_event_t                          settle;     /* then follow */
    ngx_event_t                          sync;
    ngx_event_t                          retry;
    ngx_event_t                          stalled;    /* of the watch */
    ngx_event_t                          check;      /* the watch silent */
    ngx_event_t                          took;       /* the reload asked */
    ngx_log_t                           *log;
} ngx_http_discovery_registry_watcher_t;


static char *ngx_http_discovery_registry_url(ngx_conf_t *cf,
    ngx_http_discovery_registry_conf_t *rcf, ngx_str_t *value);
static void ngx_http_discovery_registry_lease_handler(ngx_event_t *ev);
static void ngx_http_discovery_registry_retry_handler(ngx_event_t *ev);
static void ngx_http_discovery_registry_stalled_handler(ngx_event_t *ev);
static void ngx_http_discovery_registry_took_handler(ngx_event_t *ev);
static void ngx_http_discovery_registry_sync_handler(ngx_event_t *ev);
static void ngx_http_discovery_registry_start(ngx_uint_t step);
static CURLcode ngx_http_discovery_registry_tls(CURL *easy,
    ngx_http_discovery_main_conf_t *dmcf);
static void ngx_http_discovery_registry_stop(void);
static ngx_uint_t ngx_http_discovery_registry_refused(long status);
static void ngx_http_discovery_registry_failed(const char *fmt, ...);
static void ngx_http_discovery_registry_finish(CURLcode result);
static void ngx_http_discovery_registry_answer(long status);
static void ngx_http_discovery_registry_watch(void);
static void ngx_http_discovery_registry_publish(ngx_uint_t state);
static size_t ngx_http_discovery_registry_write(char *ptr, size_t size,
    size_t nmemb, void *userdata);
static void ngx_http_discovery_registry_ended(CURL *easy, CURLcode result);
static u_char *ngx_http_discovery_registry_escape(u_char *p,
    u_char *data, size_t len);
static ngx_int_t ngx_http_discovery_registry_saved(ngx_conf_t *cf,
    ngx_http_discovery_main_conf_t *dmcf);
static ngx_int_t ngx_http_discovery_registry_add(ngx_conf_t *cf,
    ngx_http_discovery_main_conf_t *dmcf, u_char *p, u_char *last);
static void ngx_http_discovery_registry_follow(void);
static void ngx_http_discovery_registry_settle_handler(ngx_event_t *ev);
static void ngx_http_discovery_registry_save(u_char *serving, size_t len,
    int64_t revision);
static void ngx_http_discovery_registry_overrides_apply(void);
static void ngx_http_discovery_registry_overrides_put(void);
static void ngx_http_discovery_registry_put_done(CURLcode result);
static void ngx_http_discovery_registry_synced_locked(
    ngx_atomic_uint_t version);
static void ngx_http_discovery_registry_call_free(
    ngx_http_discovery_registry_call_t *call);
static size_t ngx_http_discovery_registry_keep(char *ptr, size_t size,
    size_t nmemb, void *userdata);
static ngx_int_t ngx_http_discovery_registry_send(
    ngx_http_discovery_registry_call_t *call, const char *path);
static void ngx_http_discovery_registry_share(void);
static void ngx_http_discovery_registry_pollers(ngx_uint_t trusted,
    ngx_uint_t changed);
static void ngx_http_discovery_registry_share_apply(
    ngx_http_discovery_service_t *service, const u_char *value, size_t len);
static void ngx_http_discovery_registry_values(void);
static void ngx_http_discovery_registry_orphans(int64_t lease);
static void ngx_http_discovery_registry_lease_done(CURLcode result);
static long ngx_http_discovery_registry_lease_read(
    ngx_http_discovery_registry_call_t *call, CURLcode result,
    int64_t *lease, int64_t *ttl, discovery_error_t *err);
static void ngx_http_discovery_registry_share_done(CURLcode result);
static ngx_uint_t ngx_http_discovery_registry_trusted(void);
static void ngx_http_discovery_registry_look(void);
static void ngx_http_discovery_registry_look_done(CURLcode result);
static void ngx_http_discovery_registry_give_back(void);
static void ngx_http_discovery_registry_leave(void);
static void ngx_http_discovery_registry_oversized(void);
static u_char *ngx_http_discovery_registry_names(size_t *len);
static void ngx_http_discovery_registry_check_handler(ngx_event_t *ev);
static void ngx_http_discovery_registry_check_done(CURLcode result);


static ngx_http_discovery_registry_watcher_t  ngx_http_discovery_watcher;

/* ev->data of the timers, as nginx's own timers without a connection */
static ngx_connection_t  ngx_http_discovery_registry_dumb;

static ngx_str_t  ngx_http_discovery_registry_states[] = {
    ngx_string("connecting"),
    ngx_string("up"),
    ngx_string("down")
};


/*
 * discovery_registry etcd URL [URL...] [prefix=] [timeout=]
 * [user= password=] [share=on|off]
 */

char *
ngx_http_discovery_registry(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_discovery_main_conf_t *dmcf = conf;

    u_char                              *p;
    ngx_str_t                           *value, s;
    ngx_uint_t                           i;
    ngx_msec_t                           ms;
    ngx_http_discovery_registry_conf_t  *rcf;

    if (dmcf->registry) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len != 4 || ngx_strncmp(value[1].data, "etcd", 4) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown registry \"%V\", the only one is "
                           "\"etcd\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    rcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_discovery_registry_conf_t));
    if (rcf == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_array_init(&rcf->urls, cf->pool, 3, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&rcf->prefix, "/nginx-discovery/");
    rcf->timeout = 5000;
    rcf->file = cf->conf_file->file.name.data;
    rcf->line = cf->conf_file->line;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            s.data = value[i].data + 7;
            s.len = value[i].len - 7;

            if (s.len == 0 || s.data[0] != '/') {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid prefix \"%V\", it must start "
                                   "with \"/\"", &s);
                return NGX_CONF_ERROR;
            }

            /* keys are PREFIX/services/NAME: the prefix ends in "/" */

            p = ngx_pnalloc(cf->pool, s.len + 1);
            if (p == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memcpy(p, s.data, s.len);

            if (p[s.len - 1] != '/') {
                p[s.len++] = '/';
            }

            rcf->prefix.data = p;
            rcf->prefix.len = s.len;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            ms = ngx_parse_time(&s, 0);
            if (ms == (ngx_msec_t) NGX_ERROR || ms == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid timeout \"%V\"", &s);
                return NGX_CONF_ERROR;
            }

            rcf->timeout = ms;
            continue;
        }

        if (ngx_strncmp(value[i].data, "user=", 5) == 0
            || ngx_strncmp(value[i].data, "password=", 9) == 0)
        {
            s.data = (u_char *) ngx_strchr(value[i].data, '=') + 1;
            s.len = value[i].data + value[i].len - s.data;

            if (s.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid parameter \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            /* the arguments are NUL-terminated: libcurl takes them so */

            if (value[i].data[0] == 'u') {
                rcf->user = s;

            } else {
                rcf->password = s;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "share=on") == 0) {
            rcf->share = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "share=off") == 0) {
            rcf->share = 0;
            continue;
        }

        if (ngx_strlchr(value[i].data, value[i].data + value[i].len, '=')
            && ngx_strncmp(value[i].data, "http", 4) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (ngx_http_discovery_registry_url(cf, rcf, &value[i])
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (rcf->urls.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no URL of an etcd member in \"discovery_registry\"");
        return NGX_CONF_ERROR;
    }

    if ((rcf->user.len == 0) != (rcf->password.len == 0)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"user=\" and \"password=\" go together");
        return NGX_CONF_ERROR;
    }

    dmcf->registry = rcf;

    return NGX_CONF_OK;
}


/*
 * At the end of "http": the registry's services become services of this
 * configuration, as if nginx.conf listed them, checked and set up by
 * discovery_service's own handler.  On a reload they are what the
 * running gateway's registry holds (its zone); at a start, what the last
 * run saved beside the state file, so that a gateway started while etcd
 * is down serves them.  A name nginx.conf has is nginx.conf's.
 */

ngx_int_t
ngx_http_discovery_registry_services(ngx_conf_t *cf,
    ngx_http_discovery_main_conf_t *dmcf)
{
    u_char                              *p, *last;
    discovery_buf_t                      args;
    discovery_error_t                    err;
    ngx_http_discovery_registry_conf_t  *rcf;

    rcf = dmcf->registry;

    if (ngx_http_discovery_registry_saved(cf, dmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (rcf->serving.len == 0) {
        return NGX_OK;
    }

    if (discovery_registry_args(rcf->serving.data, rcf->serving.len, &args,
                                &err)
        != DISCOVERY_OK)
    {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "discovery: the registry's services are not used: %s",
                      err.text);
        ngx_str_null(&rcf->serving);
        return NGX_OK;
    }

    /* name, URL, options, "" after each service; "" after the last */

    p = args.data;
    last = args.data + args.len;

    while (p < last && *p) {
        if (ngx_http_discovery_registry_add(cf, dmcf, p, last) != NGX_OK) {
            discovery_buf_free(&args);
            return NGX_ERROR;
        }

        /* past this service's arguments and the empty one after them */

        while (p < last && *p) {
            p += ngx_strlen(p) + 1;
        }

        p++;
    }

    discovery_buf_free(&args);

    return NGX_OK;
}


/* the serving set: the running gateway's zone, or the saved file */

static ngx_int_t
ngx_http_discovery_registry_saved(ngx_conf_t *cf,
    ngx_http_discovery_main_conf_t *dmcf)
{
    u_char                              *p, *nl, *sp;
    ssize_t                              n;
    ngx_fd_t                             fd;
    ngx_err_t                            err;
    ngx_str_t                            name;
    ngx_uint_t                           i;
    ngx_list_part_t                     *part;
    ngx_shm_zone_t                      *zone;
    ngx_file_info_t                      fi;
    ngx_http_discovery_main_conf_t      *odmcf;
    ngx_http_discovery_registry_sh_t    *rsh;
    ngx_http_discovery_registry_conf_t  *rcf;

    rcf = dmcf->registry;

    /* a reload: the old cycle's zone, found by its tag */

    odmcf = NULL;

    if (ngx_cycle && ngx_cycle->shared_memory.part.elts) {
        part = (ngx_list_part_t *) &ngx_cycle->shared_memory.part;
        zone = part->elts;

        for (i = 0; /* void */ ; i++) {

            if (i >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }

                part = part->next;
                zone = part->elts;
                i = 0;
            }

            if (zone[i].tag == &ngx_http_discovery_module) {
                odmcf = zone[i].data;
                break;
            }
        }
    }

    if (odmcf && odmcf->sh && odmcf->shpool) {
        ngx_shmtx_lock(&odmcf->shpool->mutex);

        rsh = odmcf->sh->registry;

        if (rsh && rsh->serving) {
            rcf->serving.data = ngx_pnalloc(cf->pool, rsh->serving_len);

            if (rcf->serving.data) {
                ngx_memcpy(rcf->serving.data, rsh->serving,
                           rsh->serving_len);
                rcf->serving.len = rsh->serving_len;
                rcf->serving_revision = rsh->serving_revision;
            }
        }

        ngx_shmtx_unlock(&odmcf->shpool->mutex);

        if (rsh && rsh->serving && rcf->serving.data == NULL) {
            return NGX_ERROR;
        }

        if (rsh && rsh->serving) {
            return NGX_OK;
        }
    }

    /* a start: "REVISION PREFIX\nJSON" beside the state file */

    if (dmcf->state.len == 0 || ngx_test_config) {
        return NGX_OK;
    }

    name.len = dmcf->state.len + sizeof(".registry") - 1;
    name.data = ngx_pnalloc(cf->pool, name.len + 1);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(name.data, "%V.registry%Z", &dmcf->state);

    /* as the state file: never through a link, nor waiting on a FIFO */

    fd = ngx_open_file(name.data,
                       NGX_FILE_RDONLY|NGX_FILE_NONBLOCK|NGX_FILE_NOFOLLOW,
                       NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        err = ngx_errno;

        if (err != NGX_ENOENT) {
            ngx_log_error(NGX_LOG_WARN, cf->log, err,
                          "discovery: \"%s\" not loaded%s", name.data,
                          (err == NGX_ELOOP) ? ": it is a symbolic link" : "");
        }

        return NGX_OK;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || !ngx_is_file(&fi)
        || ngx_file_size(&fi) > DISCOVERY_REGISTRY_MAX_ANSWER)
    {
        ngx_close_file(fd);
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "discovery: \"%s\" is not a registry file: ignored",
                      name.data);
        return NGX_OK;
    }

    p = ngx_pnalloc(cf->pool, (size_t) ngx_file_size(&fi) + 1);
    if (p == NULL) {
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    n = ngx_read_fd(fd, p, (size_t) ngx_file_size(&fi));
    ngx_close_file(fd);

    nl = (n > 0) ? ngx_strlchr(p, p + n, LF) : NULL;

    if (nl == NULL) {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "discovery: \"%s\" is not a registry file: ignored",
                      name.data);
        return NGX_OK;
    }

    /* "REVISION PREFIX"; "REVISION" alone in a file of an older version */

    sp = ngx_strlchr(p, nl, ' ');

    if (sp
        && ((size_t) (nl - sp - 1) != rcf->prefix.len
            || ngx_strncmp(sp + 1, rcf->prefix.data, rcf->prefix.len) != 0))
    {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "discovery: \"%s\" holds the services of prefix "
                      "\"%*s\", not \"%V\": ignored", name.data,
                      ngx_min((size_t) (nl - sp - 1), 256), sp + 1,
                      &rcf->prefix);
        return NGX_OK;
    }

    rcf->serving_revision = ngx_atoof(p, (sp ? sp : nl) - p);
    if (rcf->serving_revision == NGX_ERROR) {
        rcf->serving_revision = 0;
    }

    rcf->serving.data = nl + 1;
    rcf->serving.len = p + n - (nl + 1);

    ngx_log_error(NGX_LOG_INFO, cf->log, 0,
                  "discovery: the registry's services of revision %L, "
                  "from \"%s\"", rcf->serving_revision, name.data);

    return NGX_OK;
}


/* one service: NAME\0URL\0OPTION\0...\0 */

static ngx_int_t
ngx_http_discovery_registry_add(ngx_conf_t *cf,
    ngx_http_discovery_main_conf_t *dmcf, u_char *p, u_char *last)
{
    char                                *rv;
    size_t                               len;
    ngx_str_t                           *arg;
    ngx_uint_t                           i, n;
    ngx_array_t                         *saved, args;
    ngx_http_discovery_service_t        *service;
    ngx_http_discovery_registry_conf_t  *rcf;

    rcf = dmcf->registry;

    if (ngx_array_init(&args, cf->temp_pool, 8, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    arg = ngx_array_push(&args);
    if (arg == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(arg, "discovery_service");

    while (p < last && *p) {
        len = ngx_strlen(p);

        arg = ngx_array_push(&args);
        if (arg == NULL) {
            return NGX_ERROR;
        }

        /* the service keeps pointers into its arguments: the conf's pool */

        arg->data = ngx_pstrdup(cf->pool, &(ngx_str_t) { len, p });
        if (arg->data == NULL) {
            return NGX_ERROR;
        }

        arg->len = len;
        p += len + 1;
    }

    arg = args.elts;

    service = dmcf->services.elts;

    for (i = 0; i < dmcf->services.nelts; i++) {
        if (service[i].name.len == arg[1].len
            && ngx_strncmp(service[i].name.data, arg[1].data, arg[1].len)
               == 0)
        {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "discovery: the registry's service \"%V\" is "
                          "also in %s:%ui: that one is used",
                          &arg[1], service[i].file, service[i].line);
            return NGX_OK;
        }
    }

    n = dmcf->services.nelts;
    saved = cf->args;
    cf->args = &args;
    rcf->adding = 1;

    rv = ngx_http_discovery_service(cf, NULL, dmcf);

    rcf->adding = 0;
    cf->args = saved;

    if (rv != NGX_CONF_OK) {
        /* said by the handler; the rest of the configuration goes on */
        dmcf->services.nelts = n;

        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "discovery: the registry's service \"%V\" is not "
                      "used", &arg[1]);
    }

    return NGX_OK;
}


/* an etcd member's client URL: http[s]://host[:port], no path */

static char *
ngx_http_discovery_registry_url(ngx_conf_t *cf,
    ngx_http_discovery_registry_conf_t *rcf, ngx_str_t *value)
{
    u_char     *p;
    size_t      skip;
    ngx_url_t   u;
    ngx_str_t  *url;

    if (value->len > 7
        && ngx_strncasecmp(value->data, (u_char *) "http://", 7) == 0)
    {
        skip = 7;

    } else if (value->len > 8
               && ngx_strncasecmp(value->data, (u_char *) "https://", 8) == 0)
    {
        skip = 8;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid registry URL \"%V\", it must start with "
                           "\"http://\" or \"https://\"", value);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url.data = value->data + skip;
    u.url.len = value->len - skip;
    u.default_port = 2379;
    u.uri_part = 1;
    u.no_resolve = 1;

    while (u.url.len && u.url.data[u.url.len - 1] == '/') {
        u.url.len--;
    }

    if (u.url.len == 0
        || value->len > NGX_HTTP_DISCOVERY_URL_MAX
        || ngx_strlchr(u.url.data, u.url.data + u.url.len, '@')
        || ngx_parse_url(cf->pool, &u) != NGX_OK
        || u.host.len == 0
        || u.uri.len)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid registry URL \"%V\"%s%s", value,
                           u.err ? ": " : "", u.err ? u.err : "");
        return NGX_CONF_ERROR;
    }

    url = ngx_array_push(&rcf->urls);
    if (url == NULL) {
        return NGX_CONF_ERROR;
    }

    /* NUL-ended, for libcurl, with room for the longest path */

    url->len = skip + u.url.len;
    url->data = ngx_pnalloc(cf->pool, url->len + 1);
    if (url->data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_cpymem(url->data, value->data, url->len);
    *p = '\0';

    return NGX_CONF_OK;
}


void
ngx_http_discovery_registry_init_worker(ngx_cycle_t *cycle,
    ngx_http_discovery_main_conf_t *dmcf)
{
    u_char                                 *names;
    size_t                                  len;
    discovery_error_t                       err;
    ngx_http_discovery_registry_sh_t       *rsh;
    ngx_http_discovery_registry_watcher_t  *w;

    if (dmcf->registry == NULL) {
        return;
    }

    w = &ngx_http_discovery_watcher;
    w->dmcf = dmcf;
    w->conf = dmcf->registry;
    w->log = cycle->log;

    /* the zone's part is made by the first process that needs it */

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    rsh = dmcf->sh->registry;

    if (rsh == NULL) {
        rsh = ngx_slab_calloc_locked(dmcf->shpool,
                                 sizeof(ngx_http_discovery_registry_sh_t));
        dmcf->sh->registry = rsh;

        if (rsh) {
            rsh->since = ngx_time();
        }
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    if (rsh == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "discovery: no room in the zone for the registry");
        return;
    }

    /* no free connection for the watch's socket: it fails at once */

    if (ngx_http_discovery_curl_init(&w->curl, cycle->log,
                                     ngx_http_discovery_registry_ended, NULL)
        != NGX_OK)
    {
        return;
    }

    if (w->conf->share) {
        w->share = ngx_pcalloc(cycle->pool,
                               (dmcf->services.nelts + 1)
                               * sizeof(ngx_http_discovery_share_t));
        if (w->share == NULL) {
            return;
        }
    }

    w->registry = discovery_registry_create((char *) w->conf->prefix.data,
                                            w->conf->prefix.len,
                                            w->conf->share);

    if (w->registry == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "discovery: cannot start the registry's watcher");
        return;
    }

    if (w->conf->share) {
        names = ngx_http_discovery_registry_names(&len);

        if (names == NULL
            || discovery_registry_configured(w->registry, names, len, &err)
               != DISCOVERY_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "discovery: cannot start the registry's watcher");
            if (names) {
                ngx_free(names);
            }
            discovery_registry_destroy(w->registry);
            w->registry = NULL;
            return;
        }

        ngx_free(names);
    }

    ngx_http_discovery_registry_dumb.fd = (ngx_socket_t) -1;

    w->lease.handler = ngx_http_discovery_registry_lease_handler;
    w->settle.handler = ngx_http_discovery_registry_settle_handler;
    w->settle.data = &ngx_http_discovery_registry_dumb;
    w->settle.log = cycle->log;
    w->settle.cancelable = 1;

    w->sync.handler = ngx_http_discovery_registry_sync_handler;
    w->sync.data = &ngx_http_discovery_registry_dumb;
    w->sync.log = cycle->log;
    w->sync.cancelable = 1;
    w->retry.handler = ngx_http_discovery_registry_retry_handler;
    w->stalled.handler = ngx_http_discovery_registry_stalled_handler;
    w->took.handler = ngx_http_discovery_registry_took_handler;

    w->lease.data = &ngx_http_discovery_registry_dumb;
    w->retry.data = &ngx_http_discovery_registry_dumb;
    w->stalled.data = &ngx_http_discovery_registry_dumb;
    w->took.data = &ngx_http_discovery_registry_dumb;

    w->lease.log = cycle->log;
    w->retry.log = cycle->log;
    w->stalled.log = cycle->log;
    w->took.log = cycle->log;

    w->lease.cancelable = 1;
    w->retry.cancelable = 1;
    w->stalled.cancelable = 1;
    w->took.cancelable = 1;

    w->check.handler = ngx_http_discovery_registry_check_handler;
    w->check.data = &ngx_http_discovery_registry_dumb;
    w->check.log = cycle->log;
    w->check.cancelable = 1;
    w->check_call.timeout = w->conf->timeout;
    w->look_call.timeout = NGX_HTTP_DISCOVERY_SHARE_WAIT;
    w->lease_call.timeout = NGX_HTTP_DISCOVERY_SHARE_WAIT;

    ngx_add_timer(&w->lease, 1);
}


void
ngx_http_discovery_registry_exit_worker(ngx_cycle_t *cycle)
{
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;

    if (w->curl.multi == NULL) {
        return;
    }

    ngx_http_discovery_registry_give_back();
    ngx_http_discovery_registry_call_free(&w->put);
    discovery_buf_free(&w->values);
    discovery_buf_free(&w->orphans);

    /* the lease is not revoked: a reload's new worker keeps it */

    ngx_http_discovery_curl_cleanup(&w->curl);

    if (w->asked) {
        ngx_free(w->asked);
        w->asked = NULL;
    }

    discovery_registry_destroy(w->registry);
    w->registry = NULL;
}


/*
 * The watch given back, at exit or once this worker shuts down: another
 * worker takes it over at its next check (every 100 ms), rather than
 * when the watcher's lease has run out, so that the gateway's etcd lease is kept alive meanwhile (a
 * worker shutting down gracefully may live on for long after its last
 * tick, serving its requests).
 */

static void
ngx_http_discovery_registry_give_back(void)
{
    ngx_http_discovery_registry_sh_t       *rsh;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;

    ngx_http_discovery_registry_stop();

    /* an overrides' put in flight goes on: the next watcher trusts it */

    ngx_http_discovery_registry_call_free(&w->lease_call);
    ngx_http_discovery_registry_call_free(&w->share_call);
    ngx_http_discovery_registry_call_free(&w->look_call);
    w->look_lease = 0;

    if (!w->leased) {
        return;
    }

    ngx_shmtx_lock(&w->dmcf->shpool->mutex);

    rsh = w->dmcf->sh->registry;

    if (rsh->pid == ngx_pid) {
        rsh->pid = 0;
    }

    ngx_shmtx_unlock(&w->dmcf->shpool->mutex);

    w->leased = 0;
}


/* a worker shutting down gives the watch back at its next timer */

static void
ngx_http_discovery_registry_leave(void)
{
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;

    if (w->leased) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, w->log, 0,
                       "discovery: this process, shutting down, gives the "
                       "registry's watch back");
        ngx_http_discovery_registry_give_back();
    }
}


/*
 * Every tick: the process that watches renews its lease; the others take
 * it over once it expired or its holder is gone, and start watching.
 */

static void
ngx_http_discovery_registry_lease_handler(ngx_event_t *ev)
{
    ngx_uint_t                              take;
    ngx_http_discovery_registry_sh_t       *rsh;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        ngx_http_discovery_registry_leave();
        return;
    }

    ngx_shmtx_lock(&w->dmcf->shpool->mutex);

    rsh = w->dmcf->sh->registry;
    take = 0;

    if (rsh->pid == ngx_pid) {
        rsh->until = ngx_current_msec + NGX_HTTP_DISCOVERY_REGISTRY_LEASE;

    } else if (rsh->pid == 0
               || (ngx_msec_int_t) (rsh->until - ngx_current_msec) < 0
               || (kill(rsh->pid, 0) == -1 && ngx_errno == NGX_ESRCH))
    {
        rsh->pid = ngx_pid;
        rsh->until = ngx_current_msec + NGX_HTTP_DISCOVERY_REGISTRY_LEASE;
        take = 1;

        /*
         * The member the last watcher used or was to try next: a reload's
         * new worker began with the first, and waited timeout= on it again
         * when it was the one left (frozen, or gone without a word).
         */
        w->endpoint = rsh->endpoint;
    }

    ngx_shmtx_unlock(&w->dmcf->shpool->mutex);

    if (take) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, w->log, 0,
                       "discovery: this process watches the registry");

        w->lease_failed = 0;
        w->kept_alive = 0;

        /*
         * The zone's overrides etcd has: as the watchers before this one
         * knew it, or, for the first, all of them until etcd's are read.
         */
        w->synced = rsh->overrides_known ? rsh->overrides_synced
                                         : w->dmcf->sh->controls_version;
        w->put_found = -1;
        w->overrides_version = (uint64_t) -1;

        w->leased = 1;
        w->failures = 0;
        ngx_http_discovery_registry_start(w->conf->user.len
                                          ? NGX_HTTP_DISCOVERY_REGISTRY_AUTH
                                          : NGX_HTTP_DISCOVERY_REGISTRY_RANGE);

        /* the gateway's etcd lease kept alive at once, not at a tick */

        if (w->conf->share && w->share) {
            ngx_http_discovery_registry_share();
        }

    } else if (w->leased && rsh->pid != ngx_pid) {
        /* another took it: this process was too slow to renew it */
        w->leased = 0;
        ngx_http_discovery_registry_give_back();
    }

    if (w->leased && !w->sync.timer_set) {
        ngx_add_timer(&w->sync, NGX_HTTP_DISCOVERY_REGISTRY_SYNC);
    }

    /*
     * The others look more often: after a reload the old worker gives the
     * lease back as it exits, and a new one takes the watch over at once.
     */
    ngx_add_timer(ev, w->leased ? NGX_HTTP_DISCOVERY_REGISTRY_TICK
                                : NGX_HTTP_DISCOVERY_REGISTRY_SYNC);
}


/* an API write in any worker of this gateway: its overrides go to etcd */

static void
ngx_http_discovery_registry_sync_handler(ngx_event_t *ev)
{
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        ngx_http_discovery_registry_leave();
        return;
    }

    if (!w->leased) {
        return;
    }

    if (w->watching) {
        ngx_http_discovery_registry_overrides_put();
    }

    if (w->conf->share && w->share) {
        ngx_http_discovery_registry_share();
    }

    ngx_add_timer(ev, NGX_HTTP_DISCOVERY_REGISTRY_SYNC);
}


static void
ngx_http_discovery_registry_retry_handler(ngx_event_t *ev)
{
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;

    if (ngx_exiting || ngx_terminate || ngx_quit || !w->leased) {
        return;
    }

    ngx_http_discovery_registry_start(w->conf->user.len
                                      ? NGX_HTTP_DISCOVERY_REGISTRY_AUTH
                                      : NGX_HTTP_DISCOVERY_REGISTRY_RANGE);
}


/*
 * A watch may be silent for as long as nothing changes, but its creation,
 * and each message once begun, come at once from a sane member: one that
 * sent its headers, or half a message, and then nothing for timeout=, is
 * left for the next (TCP keepalive does not tell: its kernel answers).
 */

static void
ngx_http_discovery_registry_stalled_handler(ngx_event_t *ev)
{
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;

    if (w->step != NGX_HTTP_DISCOVERY_REGISTRY_WATCH) {
        return;
    }

    if (w->watching) {
        ngx_http_discovery_registry_failed("the watch sent part of a message "
                                           "and nothing more for %M ms",
                                           w->conf->timeout);

    } else {
        ngx_http_discovery_registry_failed("the watch was not created within "
                                           "%M ms", w->conf->timeout);
    }
}


/* a request to the current endpoint: authenticate, read, or watch */

static void
ngx_http_discovery_registry_start(ngx_uint_t step)
{
    char                                   *path;
    CURLcode                                rc;
    CURLMcode                               mrc;
    ngx_str_t                              *url;
    ngx_uint_t                              begin;
    discovery_error_t                       err;
    struct curl_slist                      *list;
    ngx_http_discovery_registry_conf_t     *rcf;
    ngx_http_discovery_main_conf_t         *dmcf;
    ngx_http_discovery_registry_watcher_t  *w;
    u_char                                  buf[NGX_HTTP_DISCOVERY_LINE_MAX];

    w = &ngx_http_discovery_watcher;
    rcf = w->conf;
    dmcf = w->dmcf;

    /* a page after a page goes on with the read; any other begins one */
    begin = (w->step != NGX_HTTP_DISCOVERY_REGISTRY_RANGE);

    ngx_http_discovery_registry_stop();

    w->step = step;
    url = rcf->urls.elts;
    url = &url[w->endpoint % rcf->urls.nelts];

    switch (step) {

    case NGX_HTTP_DISCOVERY_REGISTRY_AUTH:
        path = "/v3/auth/authenticate";
        w->token_len = 0;
        rc = discovery_registry_auth_request((char *) rcf->user.data,
                                             rcf->user.len,
                                             (char *) rcf->password.data,
                                             rcf->password.len, &w->watch.body,
                                             &err)
             == DISCOVERY_OK ? CURLE_OK : CURLE_OUT_OF_MEMORY;
        break;

    case NGX_HTTP_DISCOVERY_REGISTRY_RANGE:
        path = "/v3/kv/range";
        rc = discovery_registry_range_request(w->registry, begin,
                                              &w->watch.body, &err)
             == DISCOVERY_OK ? CURLE_OK : CURLE_OUT_OF_MEMORY;
        break;

    default: /* NGX_HTTP_DISCOVERY_REGISTRY_WATCH */
        path = "/v3/watch";
        rc = discovery_registry_watch_request(w->registry, &w->watch.body, &err)
             == DISCOVERY_OK ? CURLE_OK : CURLE_OUT_OF_MEMORY;
        break;
    }

    if (rc != CURLE_OK) {
        ngx_http_discovery_registry_failed("%s", err.text);
        return;
    }

    /*
     * With "hasleader", etcd ends a watch within seconds when its member
     * has lost the cluster's leader, rather than leaving it silent.
     */

    list = curl_slist_append(NULL, "Content-Type: application/json");
    if (list) {
        w->watch.headers = list;
        list = curl_slist_append(w->watch.headers,
                                 "Grpc-Metadata-hasleader: true");
    }

    if (list && w->token_len) {
        w->watch.headers = list;
        ngx_snprintf(buf, sizeof(buf), "Authorization: %*s%Z",
                     w->token_len, w->token);
        list = curl_slist_append(w->watch.headers, (char *) buf);
    }

    if (list == NULL) {
        ngx_http_discovery_registry_failed("curl_slist_append() failed");
        return;
    }

    w->watch.headers = list;

    w->watch.easy = curl_easy_init();
    if (w->watch.easy == NULL) {
        ngx_http_discovery_registry_failed("curl_easy_init() failed");
        return;
    }

    ngx_snprintf(buf, sizeof(buf), "%V%s%Z", url, path);

    w->curl_error[0] = '\0';
    w->error_len = 0;
    w->received = 0;
    w->oversize = 0;

    rc = curl_easy_setopt(w->watch.easy, CURLOPT_URL, (char *) buf);
    rc |= curl_easy_setopt(w->watch.easy, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(w->watch.easy, CURLOPT_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(w->watch.easy, CURLOPT_FOLLOWLOCATION, 0L);
    rc |= curl_easy_setopt(w->watch.easy, CURLOPT_HTTPHEADER, w->watch.headers);
    rc |= curl_easy_setopt(w->watch.easy, CURLOPT_POST, 1L);
    rc |= curl_easy_setopt(w->watch.easy, CURLOPT_POSTFIELDSIZE,
                           (long) w->watch.body.len);
    rc |= curl_easy_setopt(w->watch.easy, CURLOPT_POSTFIELDS,
                           w->watch.body.data);
    rc |= curl_easy_setopt(w->watch.easy, CURLOPT_USERAGENT,
                           "nginx-discovery/" NGINX_VERSION);
    rc |= curl_easy_setopt(w->watch.easy, CURLOPT_ERRORBUFFER, w->curl_error);
    rc |= curl_easy_setopt(w->watch.easy, CURLOPT_WRITEFUNCTION,
                           ngx_http_discovery_registry_write);
    rc |= curl_easy_setopt(w->watch.easy, CURLOPT_WRITEDATA, w);
    rc |= ngx_http_discovery_curl_handle(&w->curl, w->watch.easy);
    rc |= curl_easy_setopt(w->watch.easy, CURLOPT_CONNECTTIMEOUT_MS,
                           (long) rcf->timeout);
    rc |= ngx_http_discovery_registry_tls(w->watch.easy, dmcf);

    if (step == NGX_HTTP_DISCOVERY_REGISTRY_WATCH) {
        /*
         * A watch has no end; a member that went away without a word is
         * found by TCP keepalive, probes every second after timeout=; a
         * frozen one, whose kernel answers the probes, by the check of a
         * silent watch (ngx_http_discovery_registry_check_handler).
         */
        rc |= curl_easy_setopt(w->watch.easy, CURLOPT_TCP_KEEPALIVE, 1L);
        rc |= curl_easy_setopt(w->watch.easy, CURLOPT_TCP_KEEPIDLE,
                               (long) ngx_max(rcf->timeout / 1000, 1));
        rc |= curl_easy_setopt(w->watch.easy, CURLOPT_TCP_KEEPINTVL, 1L);

    } else {
        rc |= curl_easy_setopt(w->watch.easy, CURLOPT_TIMEOUT_MS,
                               (long) rcf->timeout);
    }

    if (rc != CURLE_OK) {
        ngx_http_discovery_registry_failed("curl_easy_setopt() failed");
        return;
    }

    mrc = curl_multi_add_handle(w->curl.multi, w->watch.easy);

    if (mrc != CURLM_OK) {
        ngx_http_discovery_registry_failed("curl_multi_add_handle() failed: "
                                           "%s", curl_multi_strerror(mrc));
        return;
    }

    if (step == NGX_HTTP_DISCOVERY_REGISTRY_WATCH) {
        ngx_add_timer(&w->stalled, rcf->timeout);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, w->log, 0,
                   "discovery: registry request %s", buf);
}


/*
 * The discovery_ssl_* directives, for every request to etcd: its reads and
 * watches and the overrides' writes alike (the writes had no client
 * certificate, which an etcd requiring one refused).
 */

static CURLcode
ngx_http_discovery_registry_tls(CURL *easy,
    ngx_http_discovery_main_conf_t *dmcf)
{
    CURLcode  rc;

    rc = curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER,
                          dmcf->ssl_verify ? 1L : 0L);
    rc |= curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST,
                           dmcf->ssl_verify ? 2L : 0L);

    if (dmcf->ssl_trusted_certificate.len) {
        rc |= curl_easy_setopt(easy, CURLOPT_CAINFO,
                               dmcf->ssl_trusted_certificate.data);
    }

    if (dmcf->ssl_certificate.len) {
        rc |= curl_easy_setopt(easy, CURLOPT_SSLCERT,
                               dmcf->ssl_certificate.data);
        rc |= curl_easy_setopt(easy, CURLOPT_SSLKEY,
                               dmcf->ssl_certificate_key.data);
    }

    return rc;
}


/* ends the request in flight, if any */

static void
ngx_http_discovery_registry_stop(void)
{
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;

    ngx_http_discovery_registry_call_free(&w->watch);

    if (w->answer) {
        ngx_free(w->answer);
        w->answer = NULL;
        w->answer_size = 0;
    }

    w->received = 0;
    w->step = NGX_HTTP_DISCOVERY_REGISTRY_IDLE;
    w->watching = 0;

    if (w->retry.timer_set) {
        ngx_del_timer(&w->retry);
    }

    if (w->stalled.timer_set) {
        ngx_del_timer(&w->stalled);
    }

    ngx_http_discovery_registry_call_free(&w->check_call);

    if (w->check.timer_set) {
        ngx_del_timer(&w->check);
    }
}


/*
 * A short request (the lease's, a claim, a routes or overrides write) was
 * refused with 401: the token expired (a JWT does after its TTL, 5
 * minutes by default, whatever the watch does meanwhile).  The watch
 * starts again with a new one, as after any expiry; a token refused
 * within a second of being given is a failure of the endpoint instead.
 * Returns whether the request is to be forgotten.
 */

static ngx_uint_t
ngx_http_discovery_registry_refused(long status)
{
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;

    if (status != 401 || w->token_len == 0
        || w->step == NGX_HTTP_DISCOVERY_REGISTRY_IDLE
        || w->step == NGX_HTTP_DISCOVERY_REGISTRY_AUTH)
    {
        return 0;
    }

    if (ngx_current_msec - w->token_at < 1000) {
        ngx_http_discovery_registry_failed("a token refused as soon as "
                                           "it was given (HTTP status 401)");
        return 1;
    }

    ngx_log_error(NGX_LOG_NOTICE, w->log, 0,
                  "discovery: the registry's token expired: authenticating "
                  "again");

    ngx_http_discovery_registry_start(NGX_HTTP_DISCOVERY_REGISTRY_AUTH);

    return 1;
}


/*
 * A request failed: said in the log and on the status page; the next
 * endpoint is tried after the backoff.  What the registry held is kept,
 * and so are the services and their routes.
 */

static void
ngx_http_discovery_registry_failed(const char *fmt, ...)
{
    u_char                                 *p;
    va_list                                 args;
    ngx_str_t                              *url;
    ngx_msec_t                              delay;
    ngx_uint_t                              state;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;

    va_start(args, fmt);
    p = ngx_vslprintf(w->error, w->error + DISCOVERY_ERROR_LEN, fmt, args);
    va_end(args);

    w->error_len = p - w->error;

    url = w->conf->urls.elts;
    url = &url[w->endpoint % w->conf->urls.nelts];

    ngx_log_error(NGX_LOG_ERR, w->log, 0,
                  "discovery: registry at \"%V\" failed: %*s", url,
                  w->error_len, w->error);

    ngx_http_discovery_registry_stop();

    w->failures++;
    w->endpoint = (w->endpoint + 1) % w->conf->urls.nelts;

    /* down once every endpoint failed in a row */
    state = (w->failures >= w->conf->urls.nelts)
            ? NGX_HTTP_DISCOVERY_REGISTRY_DOWN
            : NGX_HTTP_DISCOVERY_REGISTRY_CONNECTING;

    ngx_http_discovery_registry_publish(state);

    delay = NGX_HTTP_DISCOVERY_REGISTRY_RETRY_MIN
            << ngx_min(w->failures - 1, 5);
    delay = ngx_min(delay, NGX_HTTP_DISCOVERY_REGISTRY_RETRY_MAX);

    if (!ngx_exiting && !ngx_terminate && !ngx_quit && w->leased) {
        ngx_add_timer(&w->retry, delay);
    }
}


static void
ngx_http_discovery_registry_finish(CURLcode result)
{
    long                                    status;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;

    if (w->error_len) {

        if (w->oversize && w->step == NGX_HTTP_DISCOVERY_REGISTRY_RANGE
            && discovery_registry_range_smaller(w->registry))
        {
            /*
             * values larger than the page's before: fewer keys a page,
             * and a value too large alone is read without it
             */
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, w->log, 0,
                           "discovery: registry page too large, "
                           "reading it again with fewer keys or values");
            ngx_http_discovery_registry_start(
                                        NGX_HTTP_DISCOVERY_REGISTRY_RANGE);
            return;
        }

        /* the write callback stopped the transfer and said why */
        ngx_http_discovery_registry_failed("%*s", w->error_len, w->error);
        return;
    }

    if (result != CURLE_OK) {
        ngx_http_discovery_registry_failed("%s%s",
                                           w->step
                                           == NGX_HTTP_DISCOVERY_REGISTRY_WATCH
                                           ? "the watch ended: " : "",
                                           w->curl_error[0]
                                           ? w->curl_error
                                           : curl_easy_strerror(result));
        return;
    }

    status = 0;
    curl_easy_getinfo(w->watch.easy, CURLINFO_RESPONSE_CODE, &status);

    if (w->step == NGX_HTTP_DISCOVERY_REGISTRY_WATCH && status == 200) {
        ngx_http_discovery_registry_failed("the watch ended");
        return;
    }

    ngx_http_discovery_registry_answer(status);
}


/* the answer to an authentication or a range read */

static void
ngx_http_discovery_registry_answer(long status)
{
    size_t                                  len, pages;
    int64_t                                 revision;
    discovery_buf_t                         token;
    discovery_error_t                       err;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;

    if (status != 200 && w->step == NGX_HTTP_DISCOVERY_REGISTRY_RANGE) {
        revision = discovery_registry_range_compacted(w->registry, w->answer,
                                                      w->received);

        /*
         * Compacted between two pages: the read begins again at once, as
         * after a watch's compaction, and fails as any error when that
         * comes again right after (see ngx_http_discovery_registry_ended)
         */

        if (revision
            && (w->compacted == 0
                || ngx_current_msec - w->compacted
                   >= NGX_HTTP_DISCOVERY_REGISTRY_RETRY_MAX))
        {
            ngx_log_error(NGX_LOG_WARN, w->log, 0,
                          "discovery: the registry's revision %L was "
                          "compacted during its read: reading it again",
                          revision);
            w->compacted = ngx_max(ngx_current_msec, 1);
            ngx_http_discovery_registry_start(
                                        NGX_HTTP_DISCOVERY_REGISTRY_RANGE);
            return;
        }
    }

    if (status != 200
        && discovery_registry_answer_error(w->answer, w->received, &err)
           != DISCOVERY_OK)
    {
        ngx_http_discovery_registry_failed("HTTP status %l to %s: %s",
                                           status,
                                           w->step
                                           == NGX_HTTP_DISCOVERY_REGISTRY_AUTH
                                           ? "/v3/auth/authenticate"
                                           : w->step
                                             == NGX_HTTP_DISCOVERY_REGISTRY_RANGE
                                             ? "/v3/kv/range" : "/v3/watch",
                                           err.text);
        return;
    }

    if (status != 200) {
        len = ngx_min(w->received, 160);

        while (len && (w->answer[len - 1] == '\n'
                       || w->answer[len - 1] == '\r'))
        {
            len--;
        }

        ngx_http_discovery_registry_failed("HTTP status %l to %s: %*s",
                                           status,
                                           w->step
                                           == NGX_HTTP_DISCOVERY_REGISTRY_AUTH
                                           ? "/v3/auth/authenticate"
                                           : w->step
                                             == NGX_HTTP_DISCOVERY_REGISTRY_RANGE
                                             ? "/v3/kv/range" : "/v3/watch",
                                           len, w->answer);
        return;
    }

    if (w->step == NGX_HTTP_DISCOVERY_REGISTRY_AUTH) {
        if (discovery_registry_auth_token(w->answer, w->received, &token,
                                          &err)
            != DISCOVERY_OK)
        {
            ngx_http_discovery_registry_failed("authentication: %s",
                                               err.text);
            return;
        }

        if (token.len >= sizeof(w->token)) {
            discovery_buf_free(&token);
            ngx_http_discovery_registry_failed("authentication: the token "
                                               "is too long");
            return;
        }

        w->token_len = token.len;
        w->token_at = ngx_current_msec;
        ngx_memcpy(w->token, token.data, token.len);
        discovery_buf_free(&token);

        ngx_http_discovery_registry_start(NGX_HTTP_DISCOVERY_REGISTRY_RANGE);
        return;
    }

    if (discovery_registry_load(w->registry, w->answer, w->received, &pages,
                                &err)
        != DISCOVERY_OK)
    {
        ngx_http_discovery_registry_failed("range read: %s", err.text);
        return;
    }

    ngx_http_discovery_registry_oversized();

    if (pages == 0) {
        /* the next page */
        ngx_http_discovery_registry_start(NGX_HTTP_DISCOVERY_REGISTRY_RANGE);
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, w->log, 0,
                   "discovery: registry read at revision %L in %uz pages",
                   discovery_registry_revision(w->registry), pages);

    ngx_http_discovery_registry_publish(NGX_HTTP_DISCOVERY_REGISTRY_UP);
    ngx_http_discovery_registry_start(NGX_HTTP_DISCOVERY_REGISTRY_WATCH);
}


/*
 * A value larger than an answer of DISCOVERY_REGISTRY_MAX_ANSWER (etcd's
 * --max-request-bytes over 12 MB) was read without it, its key alone: the
 * read goes on, and the value is refused (a service's is invalid, a
 * routes' is none, the overrides held stay).  Said for each such key,
 * at each read.
 */

static void
ngx_http_discovery_registry_oversized(void)
{
    u_char                                 *p;
    discovery_buf_t                         key;
    discovery_error_t                       err;
    ngx_http_discovery_registry_watcher_t  *w;
    u_char                                  line[256 * 6 + 2];

    w = &ngx_http_discovery_watcher;

    if (discovery_registry_range_oversized(w->registry, &key, &err)
        != DISCOVERY_OK)
    {
        return;
    }

    if (key.len) {
        p = ngx_http_discovery_registry_escape(line, key.data,
                                               ngx_min(key.len, 256));
        ngx_log_error(NGX_LOG_ERR, w->log, 0,
                      "discovery: the value of the registry's key %*s is "
                      "larger than an answer of %uz bytes: read without it, "
                      "as a value refused", p - line, line,
                      (size_t) DISCOVERY_REGISTRY_MAX_ANSWER);
    }

    discovery_buf_free(&key);
}


/* the watch stream's messages received so far */

static void
ngx_http_discovery_registry_watch(void)
{
    int                                     what;
    discovery_error_t                       err;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;

    for ( ;; ) {
        if (discovery_registry_watch_next(w->registry, &what, &err)
            != DISCOVERY_OK)
        {
            /* from the write callback: the transfer stops, and fails */
            w->error_len = ngx_cpystrn(w->error, (u_char *) err.text,
                                       DISCOVERY_ERROR_LEN)
                           - w->error;
            return;
        }

        switch (what) {

        case DISCOVERY_WATCH_MORE:
            return;

        case DISCOVERY_WATCH_CREATED:

            /* not while its watches are compacted again and again */
            if (w->compacted == 0
                || ngx_current_msec - w->compacted
                   >= NGX_HTTP_DISCOVERY_REGISTRY_RETRY_MAX)
            {
                w->failures = 0;
            }

            w->watching = 1;
            ngx_http_discovery_registry_publish(NGX_HTTP_DISCOVERY_REGISTRY_UP);
            break;

        case DISCOVERY_WATCH_EVENTS:
            ngx_http_discovery_registry_publish(NGX_HTTP_DISCOVERY_REGISTRY_UP);
            break;

        case DISCOVERY_WATCH_COMPACTED:
            ngx_log_error(NGX_LOG_WARN, w->log, 0,
                          "discovery: the registry's revision %L was "
                          "compacted: reading it again",
                          discovery_registry_revision(w->registry) + 1);
            w->error_len = ngx_cpystrn(w->error, (u_char *) "compacted",
                                       DISCOVERY_ERROR_LEN)
                           - w->error;
            return;

        default: /* DISCOVERY_WATCH_CANCELED */
            w->error_len = ngx_cpystrn(w->error, (u_char *) err.text,
                                       DISCOVERY_ERROR_LEN)
                           - w->error;
            return;
        }
    }
}


/* what the registry holds and how it goes, into the zone */

static void
ngx_http_discovery_registry_publish(ngx_uint_t state)
{
    u_char                                 *p;
    size_t                                  count, valid;
    uint64_t                                version;
    discovery_buf_t                         json;
    discovery_error_t                       err;
    ngx_slab_pool_t                        *shpool;
    ngx_http_discovery_registry_sh_t       *rsh;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;
    shpool = w->dmcf->shpool;

    json.data = NULL;
    json.len = 0;

    version = discovery_registry_version(w->registry);

    if (version != w->version
        && discovery_registry_status(w->registry, &json, &err) != DISCOVERY_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, w->log, 0,
                      "discovery: cannot render the registry: %s", err.text);
    }

    count = discovery_registry_count(w->registry, &valid);

    ngx_shmtx_lock(&shpool->mutex);

    rsh = w->dmcf->sh->registry;

    if (rsh->state != state) {
        rsh->state = state;
        rsh->since = ngx_time();
    }

    rsh->endpoint = w->endpoint % w->conf->urls.nelts;

    /* a process that has not read yet says nothing of the revision */
    if (discovery_registry_revision(w->registry)) {
        rsh->revision = discovery_registry_revision(w->registry);
    }

    if (state != NGX_HTTP_DISCOVERY_REGISTRY_UP) {
        rsh->error_len = w->error_len;
        ngx_memcpy(rsh->error, w->error, w->error_len);
    }

    if (json.data) {
        p = ngx_slab_alloc_locked(shpool, json.len);

        if (p) {
            ngx_memcpy(p, json.data, json.len);

            if (rsh->services) {
                ngx_slab_free_locked(shpool, rsh->services);
            }

            rsh->services = p;
            rsh->services_len = json.len;
            rsh->count = count;
            rsh->valid = valid;
            w->version = version;
        }
    }

    ngx_shmtx_unlock(&shpool->mutex);

    if (state == NGX_HTTP_DISCOVERY_REGISTRY_UP) {
        if (!w->settle.timer_set) {
            ngx_add_timer(&w->settle, NGX_HTTP_DISCOVERY_REGISTRY_SETTLE);
        }

        ngx_http_discovery_registry_overrides_apply();
    }

    if (json.data && w->version != version) {
        ngx_log_error(NGX_LOG_ALERT, w->log, 0,
                      "discovery: no room in the zone for the registry's "
                      "%uz services", count);
    }

    discovery_buf_free(&json);
}


static void
ngx_http_discovery_registry_settle_handler(ngx_event_t *ev)
{
    if (ngx_exiting || ngx_terminate || ngx_quit
        || !ngx_http_discovery_watcher.leased)
    {
        return;
    }

    ngx_http_discovery_registry_follow();
}


/*
 * When the valid services differ from the configuration's, the gateway
 * reloads its configuration, which takes them in: the zone holds them
 * for the master, and a file beside the state file for the next start.
 * Asked once per set: a reload that fails (nginx.conf broken meanwhile)
 * is not asked again until the set changes.
 */

static void
ngx_http_discovery_registry_follow(void)
{
    u_char                                 *p;
    int64_t                                 revision;
    ngx_pid_t                               master;
    ngx_msec_t                              credit;
    discovery_buf_t                         serving;
    discovery_error_t                       err;
    ngx_slab_pool_t                        *shpool;
    ngx_http_discovery_registry_sh_t       *rsh;
    ngx_http_discovery_registry_conf_t     *rcf;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;
    rcf = w->conf;
    shpool = w->dmcf->shpool;

    if (discovery_registry_serving(w->registry, &serving, &err)
        != DISCOVERY_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, w->log, 0,
                      "discovery: cannot render the registry's services: %s",
                      err.text);
        return;
    }

    revision = discovery_registry_revision(w->registry);

    /* none, and none configured ("{}": the registry's empty set) */

    if ((serving.len == rcf->serving.len
         && ngx_memcmp(serving.data, rcf->serving.data, serving.len) == 0)
        || (rcf->serving.len == 0 && serving.len == 2))
    {
        /*
         * The configuration's: the table reflects this revision (not a
         * handle's that has read nothing yet, and never an older one).
         */

        ngx_shmtx_lock(&shpool->mutex);

        if (revision > w->dmcf->sh->registry->table_revision) {
            w->dmcf->sh->registry->table_revision = revision;
        }

        ngx_shmtx_unlock(&shpool->mutex);

        discovery_buf_free(&serving);
        return;
    }

    if (serving.len == w->asked_len
        && ngx_memcmp(serving.data, w->asked, serving.len) == 0)
    {
        discovery_buf_free(&serving);
        return;
    }

    ngx_shmtx_lock(&shpool->mutex);

    rsh = w->dmcf->sh->registry;

    /* the zone outlives the watcher: its credit holds across the reloads */

    credit = NGX_HTTP_DISCOVERY_REGISTRY_BURST
             * NGX_HTTP_DISCOVERY_REGISTRY_RELOAD;

    if (rsh->reloaded
        && ngx_current_msec - rsh->reloaded < credit - rsh->credit)
    {
        credit = rsh->credit + (ngx_current_msec - rsh->reloaded);
    }

    if (credit < NGX_HTTP_DISCOVERY_REGISTRY_RELOAD) {
        ngx_shmtx_unlock(&shpool->mutex);
        discovery_buf_free(&serving);

        if (!w->settle.timer_set) {
            ngx_add_timer(&w->settle,
                          NGX_HTTP_DISCOVERY_REGISTRY_RELOAD - credit);
        }

        return;
    }

    p = ngx_slab_alloc_locked(shpool, serving.len);

    if (p) {
        ngx_memcpy(p, serving.data, serving.len);

        if (rsh->serving) {
            ngx_slab_free_locked(shpool, rsh->serving);
        }

        rsh->serving = p;
        rsh->serving_len = serving.len;
        rsh->serving_revision = revision;
        rsh->reloaded = ngx_max(ngx_current_msec, 1);
        rsh->credit = credit - NGX_HTTP_DISCOVERY_REGISTRY_RELOAD;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    if (p == NULL) {
        ngx_log_error(NGX_LOG_ALERT, w->log, 0,
                      "discovery: no room in the zone for the registry's "
                      "services");
        discovery_buf_free(&serving);
        return;
    }

    ngx_http_discovery_registry_save(serving.data, serving.len, revision);

    if (w->asked) {
        ngx_free(w->asked);
    }

    w->asked = serving.data;
    w->asked_len = serving.len;

    master = getppid();

    if (ngx_process != NGX_PROCESS_WORKER || master <= 1) {
        ngx_log_error(NGX_LOG_WARN, w->log, 0,
                      "discovery: the registry's services changed at "
                      "revision %L; without a master process they are taken "
                      "in at the next start", revision);
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, w->log, 0,
                  "discovery: the registry's services changed at revision "
                  "%L: reloading the configuration", revision);

    /* not kill(): the master may run as root, the workers as nobody */
    (void) ngx_http_discovery_reload_ask(w->log);

    w->asked_revision = revision;

    if (w->took.timer_set) {
        ngx_del_timer(&w->took);
    }

    ngx_add_timer(&w->took, NGX_HTTP_DISCOVERY_REGISTRY_TOOK);
}


/*
 * The reload asked for has not come: a reload that works makes this
 * worker exit, and its timers are not run.  nginx said why in the
 * master's [emerg]; the status page's last_error says that it did not
 * happen, until another error replaces it.
 */

static void
ngx_http_discovery_registry_took_handler(ngx_event_t *ev)
{
    size_t                                  len;
    ngx_http_discovery_registry_sh_t       *rsh;
    ngx_http_discovery_registry_watcher_t  *w;
    u_char                                  error[DISCOVERY_ERROR_LEN];

    w = &ngx_http_discovery_watcher;

    if (ngx_exiting || ngx_terminate || ngx_quit || !w->leased) {
        return;
    }

    /* not w->error: that one stops the transfer in flight */

    len = ngx_snprintf(error, DISCOVERY_ERROR_LEN,
                       "the registry's services of revision %L were not "
                       "taken in: the reload asked for did not happen "
                       "within %d s (see the error log)", w->asked_revision,
                       NGX_HTTP_DISCOVERY_REGISTRY_TOOK / 1000)
          - error;

    ngx_log_error(NGX_LOG_WARN, w->log, 0, "discovery: %*s", len, error);

    ngx_shmtx_lock(&w->dmcf->shpool->mutex);

    rsh = w->dmcf->sh->registry;
    rsh->error_len = len;
    ngx_memcpy(rsh->error, error, len);

    ngx_shmtx_unlock(&w->dmcf->shpool->mutex);
}


/*
 * The management API's overrides with a registry: an API write changes
 * the zone of the gateway that answers it at once, and the watcher puts
 * the zone's controls to PREFIX/overrides/controls within 100 ms; every
 * gateway's watcher applies that key's changes to its zone.  The last
 * write wins; a change etcd brings while a local one waits for its put
 * is overwritten by it.
 */

static void
ngx_http_discovery_registry_overrides_apply(void)
{
    int                                     present;
    u_char                                 *p;
    size_t                                  len;
    int64_t                                 next;
    uint64_t                                version;
    ngx_uint_t                              first;
    discovery_buf_t                         out;
    discovery_error_t                       err;
    const unsigned char                    *data;
    ngx_http_discovery_shctx_t             *sh;
    ngx_http_discovery_main_conf_t         *dmcf;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;
    dmcf = w->dmcf;
    sh = dmcf->sh;

    version = discovery_registry_overrides(w->registry, &data, &len,
                                           &present);

    if (version == w->overrides_version) {
        return;
    }

    first = (w->overrides_version == (uint64_t) -1);
    w->overrides_version = version;

    if (!present) {
        /*
         * etcd never had overrides: the zone's, if any, go there (a
         * gateway that had them before its registry, or a write that
         * came before the first read); nothing is taken from etcd.
         */
        if (first && dmcf->sh->controls_len) {
            w->synced = 0;
            return;
        }

        /* none in etcd, none here: etcd holds the zone's */

        ngx_shmtx_lock(&dmcf->shpool->mutex);

        if (sh->controls_len == 0 && sh->controls_version == w->synced) {
            ngx_http_discovery_registry_synced_locked(w->synced);
        }

        ngx_shmtx_unlock(&dmcf->shpool->mutex);

        return;
    }

    /* what has expired meanwhile is not taken back */

    out.data = NULL;
    out.len = 0;
    next = 0;

    if (len) {
        switch (discovery_controls_expire(data, len, ngx_time(), &out, &next,
                                          &err))
        {
        case DISCOVERY_OK:
            data = out.data;
            len = out.len;
            break;

        case DISCOVERY_UNCHANGED:
            break;

        default:
            ngx_log_error(NGX_LOG_ERR, w->log, 0,
                          "discovery: the registry's overrides are not "
                          "used: %s", err.text);
            return;
        }
    }

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    if (sh->controls_version != w->synced) {
        /* a local write waits for its put, which overwrites these */
        ngx_shmtx_unlock(&dmcf->shpool->mutex);
        discovery_buf_free(&out);
        return;
    }

    if (sh->controls_len == len
        && (len == 0 || ngx_memcmp(sh->controls, data, len) == 0))
    {
        /* etcd holds the zone's */
        ngx_http_discovery_registry_synced_locked(w->synced);
        ngx_shmtx_unlock(&dmcf->shpool->mutex);
        discovery_buf_free(&out);
        return;
    }

    p = NULL;

    if (len) {
        p = ngx_slab_alloc_locked(dmcf->shpool, len);

        if (p == NULL) {
            ngx_shmtx_unlock(&dmcf->shpool->mutex);
            discovery_buf_free(&out);

            ngx_log_error(NGX_LOG_ALERT, w->log, 0,
                          "discovery zone \"%V\" is full: the registry's "
                          "overrides (%uz bytes) were not applied",
                          &dmcf->shm_zone->shm.name, len);
            return;
        }

        ngx_memcpy(p, data, len);
    }

    if (sh->controls) {
        ngx_slab_free_locked(dmcf->shpool, sh->controls);
    }

    sh->controls = p;
    sh->controls_len = len;
    sh->controls_expiry = (time_t) next;
    sh->controls_version++;
    ngx_http_discovery_registry_synced_locked(sh->controls_version);

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    discovery_buf_free(&out);

    ngx_log_error(NGX_LOG_NOTICE, w->log, 0,
                  "discovery: the overrides changed in the registry");

    ngx_http_discovery_publish_controls();
}


static void
ngx_http_discovery_registry_overrides_put(void)
{
    int                                     rc;
    u_char                                 *copy;
    size_t                                  len;
    discovery_error_t                       err;
    ngx_atomic_uint_t                       version;
    ngx_http_discovery_main_conf_t         *dmcf;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;
    dmcf = w->dmcf;

    if (w->put.easy || dmcf->sh->controls_version == w->synced) {
        return;
    }

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    version = dmcf->sh->controls_version;
    len = dmcf->sh->controls_len;
    copy = len ? ngx_alloc(len, w->log) : NULL;

    if (copy) {
        ngx_memcpy(copy, dmcf->sh->controls, len);
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    if (len && copy == NULL) {
        return;
    }

    /* over what a put found, else the revision last read or watched */

    rc = discovery_registry_overrides_request(w->registry, copy, len,
                                              w->put_found, &w->put.body,
                                              &err);

    if (copy) {
        ngx_free(copy);
    }

    if (rc != DISCOVERY_OK) {
        ngx_log_error(NGX_LOG_ERR, w->log, 0,
                      "discovery: cannot put the overrides: %s", err.text);
        return;
    }

    w->put.timeout = w->conf->timeout;

    if (ngx_http_discovery_registry_send(&w->put, "/v3/kv/txn") != NGX_OK) {
        return;
    }

    w->put_version = version;
}


static void
ngx_http_discovery_registry_put_done(CURLcode result)
{
    int                                     written;
    long                                    status;
    int64_t                                 found;
    discovery_error_t                       err;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;

    status = 0;
    curl_easy_getinfo(w->put.easy, CURLINFO_RESPONSE_CODE, &status);

    if (result == CURLE_OK && ngx_http_discovery_registry_refused(status)) {
        /* put again on the next tick, with the new token */
        ngx_http_discovery_registry_call_free(&w->put);
        return;
    }

    if (result != CURLE_OK || status != 200) {
        /* tried again on the next tick */
        ngx_log_error(NGX_LOG_ERR, w->log, 0,
                      "discovery: putting the overrides to the registry "
                      "failed: %s",
                      result != CURLE_OK ? curl_easy_strerror(result)
                                         : "an HTTP status other than 200");
        ngx_http_discovery_registry_call_free(&w->put);
        return;
    }

    written = 0;
    found = 0;

    if (discovery_registry_overrides_answer(w->put.answer, w->put.received,
                                            &written, &found, &err)
        != DISCOVERY_OK)
    {
        ngx_log_error(NGX_LOG_ERR, w->log, 0,
                      "discovery: putting the overrides to the registry "
                      "failed: %s", err.text);

    } else if (written) {
        w->put_found = -1;

        ngx_shmtx_lock(&w->dmcf->shpool->mutex);
        ngx_http_discovery_registry_synced_locked(w->put_version);
        ngx_shmtx_unlock(&w->dmcf->shpool->mutex);

    } else {
        /*
         * Another write came after the overrides this watcher saw: the
         * next tick writes over it, as the last write wins.  A process
         * that no longer watches, whose view is the older, has no next
         * tick: the watcher after it writes what is left to write.
         */
        w->put_found = found;

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, w->log, 0,
                       "discovery: the registry's overrides changed "
                       "before they were put (now at revision %L)", found);
    }

    ngx_http_discovery_registry_call_free(&w->put);
}


/*
 * The zone's controls_version etcd holds: this watcher's, and the zone's
 * for the watchers after it, where versions only grow (an old worker's
 * put may end late).
 */

static void
ngx_http_discovery_registry_synced_locked(ngx_atomic_uint_t version)
{
    ngx_http_discovery_registry_sh_t       *rsh;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;
    rsh = w->dmcf->sh->registry;

    w->synced = version;

    if (!rsh->overrides_known || version > rsh->overrides_synced) {
        rsh->overrides_synced = version;
        rsh->overrides_known = 1;
    }
}


/*
 * share=on: each service is polled by one gateway of the fleet.  The
 * watcher keeps an etcd lease of NGX_HTTP_DISCOVERY_SHARE_TTL seconds for
 * its gateway (kept in the zone: a reload's new worker keeps it too),
 * claims the services nobody claims (PREFIX/pollers/NAME, created bound
 * to the lease), writes what its gateway's polls of its services found to
 * PREFIX/routes/NAME when it differs from what etcd holds, and applies
 * what the others write for theirs.  A gateway whose lease is not known
 * to be alive (etcd unreachable) polls every service itself.
 */

static void
ngx_http_discovery_registry_share(void)
{
    u_char                                 *value, *table, *name;
    size_t                                  len;
    int64_t                                 lease, claim, held_lease;
    uint32_t                                hash;
    uint64_t                                version;
    ngx_int_t                               rc;
    ngx_msec_t                              now;
    ngx_uint_t                              i, k, trusted;
    discovery_error_t                       err;
    ngx_atomic_uint_t                       generation;
    const unsigned char                    *held;
    size_t                                  held_len;
    ngx_http_discovery_share_t             *sh;
    ngx_http_discovery_service_t           *service;
    ngx_http_discovery_registry_sh_t       *rsh;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;
    rsh = w->dmcf->sh->registry;
    now = ngx_current_msec;

    if (!w->leased || ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    /* the lease: granted once, kept alive every 500 ms */

    if (w->lease_call.easy == NULL
        && (rsh->lease == 0
            || now - w->kept_alive >= NGX_HTTP_DISCOVERY_SHARE_KEEP))
    {
        w->kept_alive = now;

        if (discovery_registry_lease_request(rsh->lease,
                                             NGX_HTTP_DISCOVERY_SHARE_TTL,
                                             &w->lease_call.body, &err)
            == DISCOVERY_OK)
        {
            (void) ngx_http_discovery_registry_send(&w->lease_call,
                                                    rsh->lease
                                                    ? "/v3/lease/keepalive"
                                                    : "/v3/lease/grant");
        }
    }

    /* not trusted: this gateway polls every service itself */

    trusted = ngx_http_discovery_registry_trusted();

    /*
     * A watcher that has not read etcd yet (a reload's new worker) leaves
     * the records as the last one set them while the lease holds: each
     * reload made every gateway poll every service once more.
     */

    if (trusted && discovery_registry_revision(w->registry) == 0) {
        return;
    }

    /* every service's poller again on a change, or every tick */

    version = discovery_registry_share_version(w->registry);

    if (version != w->share_version
        || trusted != w->trusted
        || now - w->pollers_at >= NGX_HTTP_DISCOVERY_REGISTRY_TICK)
    {
        ngx_http_discovery_registry_pollers(trusted,
                                            version != w->share_version);
        w->share_version = version;
        w->trusted = trusted;
        w->pollers_at = now;
    }

    if (!trusted) {
        return;
    }

    lease = rsh->lease;

    ngx_http_discovery_registry_look();

    if (w->share_call.easy) {
        return;
    }

    /* the values of this gateway's table, when it changed */

    if (w->values_generation != w->dmcf->sh->generation) {
        table = ngx_http_discovery_table_copy(w->dmcf, &len, &generation);

        if (table) {
            discovery_buf_free(&w->values);

            if (discovery_share_values(table, len, &w->values, &err)
                == DISCOVERY_OK)
            {
                w->values_generation = generation;

            } else {
                ngx_log_error(NGX_LOG_ALERT, w->log, 0,
                              "discovery: cannot render the routes to "
                              "share: %s", err.text);
            }

            /* none points into the values freed, whatever came instead */
            ngx_http_discovery_registry_values();

            ngx_free(table);
        }
    }

    /*
     * The claims of services this gateway no longer has (a reload took
     * them out) are given up: the others would wait for its routes.
     */

    if (!w->orphans_read) {
        w->orphans_read = 1;
        ngx_http_discovery_registry_orphans(lease);
    }

    if (w->orphan < w->orphans.len) {
        name = w->orphans.data + w->orphan;
        len = ngx_strlen(name);
        w->orphan += len + 1;

        if (discovery_registry_release_request(w->registry, (char *) name,
                                               len, lease,
                                               &w->share_call.body, &err)
            != DISCOVERY_OK)
        {
            discovery_buf_free(&w->share_call.body);
            return;
        }

        ngx_log_error(NGX_LOG_NOTICE, w->log, 0,
                      "discovery: the claim of service \"%s\", which this "
                      "gateway no longer has, is given up", name);

        w->share_claim = 2;
        w->share_index = 0;
        (void) ngx_http_discovery_registry_send(&w->share_call, "/v3/kv/txn");
        return;
    }

    /*
     * One request at a time, a claim or a write of routes, taking the
     * services in turn from where the last one was made.
     */

    service = w->dmcf->services.elts;

    for (k = 0; k < w->dmcf->services.nelts; k++) {
        i = (w->share_cursor + k) % w->dmcf->services.nelts;
        sh = &w->share[i];
        claim = discovery_registry_poller(w->registry,
                                          (char *) service[i].name.data,
                                          service[i].name.len);

        if (claim == 0) {
            if (sh->claimed
                && now - sh->claimed < NGX_HTTP_DISCOVERY_SHARE_AGAIN)
            {
                continue;
            }

            sh->claimed = ngx_max(now, 1);

            rc = discovery_registry_claim_request(w->registry,
                                                  (char *)
                                                  service[i].name.data,
                                                  service[i].name.len, lease,
                                                  &w->share_call.body, &err);
            w->share_claim = 1;

        } else if (claim == lease) {
            value = sh->value;
            len = sh->value_len;

            if (len == 0) {
                continue;               /* not polled yet */
            }

            if (discovery_registry_routes(w->registry,
                                          (char *) service[i].name.data,
                                          service[i].name.len, &held,
                                          &held_len, &held_lease)
                && held_lease == lease
                && held_len == len
                && ngx_memcmp(held, value, len) == 0)
            {
                continue;               /* etcd has it */
            }

            hash = ngx_crc32_long(value, len);

            if (hash == sh->written
                && now - sh->written_at < NGX_HTTP_DISCOVERY_SHARE_AGAIN)
            {
                continue;               /* written, not yet seen */
            }

            rc = discovery_registry_routes_request(w->registry,
                                                   (char *)
                                                   service[i].name.data,
                                                   service[i].name.len, lease,
                                                   value, len,
                                                   &w->share_call.body, &err);
            w->share_claim = 0;
            w->share_hash = hash;

        } else {
            continue;
        }

        if (rc != DISCOVERY_OK) {
            ngx_log_error(NGX_LOG_ALERT, w->log, 0,
                          "discovery: cannot share service \"%V\": %s",
                          &service[i].name, err.text);
            discovery_buf_free(&w->share_call.body);
            return;
        }

        w->share_index = i;
        w->share_cursor = i + 1;

        (void) ngx_http_discovery_registry_send(&w->share_call,
                                                "/v3/kv/txn");
        return;
    }
}


/*
 * The claims seen are trusted while etcd keeps this gateway's own lease
 * alive: once etcd is out of reach, the others' claims are as old as its
 * own.
 */

static ngx_uint_t
ngx_http_discovery_registry_trusted(void)
{
    ngx_http_discovery_registry_sh_t  *rsh;

    rsh = ngx_http_discovery_watcher.dmcf->sh->registry;

    return rsh->lease
           && (ngx_msec_int_t) (rsh->lease_until - ngx_current_msec) > 0;
}


/*
 * share=on: the others' leases, looked at in turn.  etcd revokes an
 * expired lease at its next check, every 500 ms, so a dead gateway's
 * claims went 3 to 3.5 s after its last keepalive.  A lease kept alive
 * every 500 ms never has under 2.5 s left; one etcd says has under 1 s
 * left has had no keepalive for 2 s and is revoked here, so that its
 * claims go 2 to 2.3 s after its last keepalive.  Only while the claims
 * are trusted.
 */

static void
ngx_http_discovery_registry_look(void)
{
    int64_t                                 own;
    discovery_error_t                       err;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;

    if (w->look_call.easy) {
        return;
    }

    if (!w->leased || ngx_exiting || ngx_terminate || ngx_quit
        || !ngx_http_discovery_registry_trusted())
    {
        w->look_lease = 0;
        return;
    }

    own = w->dmcf->sh->registry->lease;

    if (w->look_lease == 0) {
        if (w->looked_at
            && ngx_current_msec - w->looked_at
               < NGX_HTTP_DISCOVERY_SHARE_LOOK)
        {
            return;
        }

        w->looked_at = ngx_max(ngx_current_msec, 1);
    }

    w->look_lease = discovery_registry_claimant(w->registry, own,
                                                w->look_lease);
    if (w->look_lease == 0) {
        return;                         /* this round is over */
    }

    if (discovery_registry_lease_request(w->look_lease, 0,
                                         &w->look_call.body, &err)
        != DISCOVERY_OK)
    {
        w->look_lease = 0;
        return;
    }

    w->look_revoke = 0;

    if (ngx_http_discovery_registry_send(&w->look_call,
                                         "/v3/lease/timetolive")
        != NGX_OK)
    {
        w->look_lease = 0;
    }
}


static void
ngx_http_discovery_registry_look_done(CURLcode result)
{
    long                                    status;
    int64_t                                 lease, ttl;
    discovery_error_t                       err;
    ngx_http_discovery_registry_sh_t       *rsh;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;
    rsh = w->dmcf->sh->registry;

    /* a revocation's answer has no lease: its status says */

    status = ngx_http_discovery_registry_lease_read(&w->look_call, result,
                                                    &lease, &ttl, &err);

    if (result == CURLE_OK && ngx_http_discovery_registry_refused(status)) {
        w->look_lease = 0;
        return;
    }

    if (w->look_revoke) {
        if (result == CURLE_OK && status == 200) {
            ngx_log_error(NGX_LOG_NOTICE, w->log, 0,
                          "discovery: the registry's lease %xL was not kept "
                          "alive for 2 s: revoked, its services are claimed "
                          "again", w->look_lease);

        } else if (result == CURLE_OK && status == 404) {
            /* another gateway revoked it first, or it expired meanwhile */
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, w->log, 0,
                           "discovery: the registry's lease %xL is gone "
                           "already", w->look_lease);

        } else {
            ngx_log_error(NGX_LOG_ERR, w->log, 0,
                          "discovery: revoking the registry's lease %xL "
                          "failed: %s", w->look_lease, err.text);
        }

        ngx_http_discovery_registry_look();
        return;
    }

    /*
     * Under a second left (an answer without "TTL"), and alive (not -1):
     * revoked.  A failed look is not one: the next round looks again.
     */

    if (lease != w->look_lease) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, w->log, 0,
                       "discovery: looking at the registry's lease %xL "
                       "failed: %s", w->look_lease,
                       lease ? "an answer about another lease" : err.text);
    }

    if (lease == w->look_lease && ttl == 0
        && w->look_lease != rsh->lease)
    {
        if (discovery_registry_lease_request(w->look_lease, 0,
                                             &w->look_call.body, &err)
            == DISCOVERY_OK)
        {
            w->look_revoke = 1;

            if (ngx_http_discovery_registry_send(&w->look_call,
                                                 "/v3/lease/revoke")
                == NGX_OK)
            {
                return;
            }
        }
    }

    ngx_http_discovery_registry_look();
}


/* the configuration's service names, "NAME\0"..., to ngx_free() */

static u_char *
ngx_http_discovery_registry_names(size_t *len)
{
    u_char                                 *names, *p;
    ngx_uint_t                              i;
    ngx_http_discovery_service_t           *service;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;
    service = w->dmcf->services.elts;

    *len = 1;

    for (i = 0; i < w->dmcf->services.nelts; i++) {
        *len += service[i].name.len + 1;
    }

    names = ngx_alloc(*len, w->log);
    if (names == NULL) {
        return NULL;
    }

    p = names;

    for (i = 0; i < w->dmcf->services.nelts; i++) {
        p = ngx_cpymem(p, service[i].name.data, service[i].name.len);
        *p++ = '\0';
    }

    *len = p - names;

    return names;
}


/* the services `lease` claims that this configuration does not have */

static void
ngx_http_discovery_registry_orphans(int64_t lease)
{
    u_char                                 *names;
    size_t                                  len;
    discovery_error_t                       err;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;

    names = ngx_http_discovery_registry_names(&len);
    if (names == NULL) {
        return;
    }

    discovery_buf_free(&w->orphans);
    w->orphan = 0;

    if (discovery_registry_orphans(w->registry, lease, names, len,
                                   &w->orphans, &err)
        != DISCOVERY_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, w->log, 0,
                      "discovery: cannot find the claims to give up: %s",
                      err.text);
    }

    ngx_free(names);
}


/*
 * Who polls each service, into its record: this gateway unless another's
 * claim is trusted (this gateway's lease alive, and the claimant wrote
 * the service's routes within an interval and a timeout of claiming it,
 * else it is a claim that never polls).  A service that comes to this
 * gateway is polled at once; one that another polls gets its routes.
 */

static void
ngx_http_discovery_registry_pollers(ngx_uint_t trusted, ngx_uint_t changed)
{
    size_t                                  held_len;
    int64_t                                 claim, lease, held_lease;
    ngx_msec_t                              now, grace;
    ngx_uint_t                              i, poller, was, look;
    const unsigned char                    *held;
    ngx_http_discovery_record_t            *rec;
    ngx_http_discovery_share_t             *sh;
    ngx_http_discovery_service_t           *service;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;
    service = w->dmcf->services.elts;
    lease = w->dmcf->sh->registry->lease;
    now = ngx_current_msec;

    for (i = 0; i < w->dmcf->services.nelts; i++) {
        sh = &w->share[i];
        held = NULL;
        held_len = 0;

        claim = discovery_registry_poller(w->registry,
                                          (char *) service[i].name.data,
                                          service[i].name.len);
        look = changed;

        if (claim != sh->lease) {
            sh->previous = sh->lease;
            sh->lease = claim;
            sh->since = now;
            sh->warned = 0;
            look = 1;
        }

        /*
         * Routes count as the claimant's when written with its lease (a
         * put of anyone else's is not taken), and not refused here;
         * looked at again when etcd's keys changed, not at every tick.
         */

        if (look) {
            sh->held = discovery_registry_routes(w->registry,
                                                 (char *) service[i].name.data,
                                                 service[i].name.len, &held,
                                                 &held_len, &held_lease)
                       && held_lease == claim
                       && !(sh->rejected
                            && sh->rejected
                               == ngx_crc32_long((u_char *) held, held_len));
        }

        poller = DISCOVERY_POLLER_SELF;

        if (trusted && claim > 0 && claim != lease) {
            grace = service[i].interval + service[i].timeout
                    + NGX_HTTP_DISCOVERY_SHARE_TTL * 1000;

            if (sh->held || now - sh->since < grace) {
                poller = DISCOVERY_POLLER_OTHER;

            } else if (!sh->warned) {
                sh->warned = 1;
                ngx_log_error(NGX_LOG_WARN, w->log, 0,
                              "discovery: service \"%V\" is claimed by lease "
                              "%xL, which wrote no routes for it that this "
                              "gateway takes within %M ms: this gateway "
                              "polls it too", &service[i].name, claim, grace);
            }
        }

        /*
         * Another's claim went (its gateway died, or gave it up): every
         * gateway claims the service, one wins.  Until this gateway's
         * claim is answered, or for NGX_HTTP_DISCOVERY_SHARE_AGAIN, it
         * polls nothing (every gateway polled each such service at once,
         * the losers too) and serves the routes it has.
         */

        if (trusted && claim == 0 && sh->previous > 0
            && sh->previous != lease
            && now - sh->since < NGX_HTTP_DISCOVERY_SHARE_AGAIN)
        {
            poller = DISCOVERY_POLLER_OTHER;
        }

        ngx_shmtx_lock(&w->dmcf->shpool->mutex);

        rec = ngx_http_discovery_record_of(w->dmcf->sh, &service[i]);
        was = DISCOVERY_POLLER_NONE;

        if (rec) {
            was = rec->poller;
            rec->poller = poller;
            rec->poller_lease = (claim > 0) ? claim : 0;
        }

        ngx_shmtx_unlock(&w->dmcf->shpool->mutex);

        if (rec == NULL) {
            continue;
        }

        if (was == DISCOVERY_POLLER_OTHER && poller != DISCOVERY_POLLER_OTHER)
        {
            ngx_log_error(NGX_LOG_NOTICE, w->log, 0,
                          "discovery: service \"%V\" is polled by this "
                          "gateway now", &service[i].name);

            sh->applied = 0;
            ngx_http_discovery_poll_now(&service[i]);
            continue;
        }

        if (poller == DISCOVERY_POLLER_OTHER
            && sh->held
            && (look || was != DISCOVERY_POLLER_OTHER)
            && discovery_registry_routes(w->registry,
                                         (char *) service[i].name.data,
                                         service[i].name.len, &held,
                                         &held_len, &held_lease))
        {
            ngx_http_discovery_registry_share_apply(&service[i], held,
                                                    held_len);
        }
    }
}


/*
 * Another gateway's poll of a service, as it wrote it: taken as if this
 * gateway had polled, or not at all, with the reason in last_error.
 */

static void
ngx_http_discovery_registry_share_apply(ngx_http_discovery_service_t *service,
    const u_char *value, size_t len)
{
    int                                     rc;
    uint32_t                                hash, state;
    ngx_str_t                              *prefix;
    ngx_uint_t                              i;
    discovery_buf_t                         routes;
    discovery_log_t                         dlog;
    discovery_error_t                       err;
    discovery_parser_t                     *parser;
    ngx_http_discovery_share_t             *sh;
    ngx_http_discovery_record_t            *rec;
    ngx_http_discovery_log_ctx_t            lctx;
    ngx_http_discovery_outcome_t            outcome;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;
    sh = &w->share[service->index];

    hash = ngx_crc32_long((u_char *) value, len);

    if (hash == sh->applied) {
        return;
    }

    sh->applied = hash;

    routes.data = NULL;
    routes.len = 0;
    err.text[0] = '\0';

    lctx.log = w->log;
    lctx.service = &service->name;
    dlog.handler = ngx_http_discovery_log_handler;
    dlog.data = &lctx;

    parser = NULL;

    if (len > w->dmcf->max_size) {
        /* as a poll's document of that size would be */
        ngx_snprintf((u_char *) err.text, DISCOVERY_ERROR_LEN,
                     "%uz bytes, more than discovery_max_size (%uz)%Z",
                     len, w->dmcf->max_size);
        rc = DISCOVERY_ERROR;

    } else {
        rc = discovery_share_state(value, len,
                                   (const char *) service->url.data,
                                   service->url.len, &state, &err);
    }

    if (rc == DISCOVERY_OK) {
        parser = discovery_parser_create(DISCOVERY_FORMAT_ROUTES, &dlog);
        rc = parser ? DISCOVERY_OK : DISCOVERY_NOMEM;
    }

    if (rc == DISCOVERY_OK && service->prefixes) {
        prefix = service->prefixes->elts;

        for (i = 0; rc == DISCOVERY_OK && i < service->prefixes->nelts; i++) {
            rc = discovery_parser_add_prefix(parser, (char *) prefix[i].data,
                                             prefix[i].len, &err);
        }
    }

    if (rc == DISCOVERY_OK) {
        rc = discovery_parser_feed(parser, (const char *) value, len, &err);
    }

    if (rc == DISCOVERY_OK) {
        rc = discovery_parser_finish(parser, &routes, &err);
    }

    if (parser) {
        discovery_parser_destroy(parser);
    }

    if (rc != DISCOVERY_OK) {
        sh->rejected = hash;
        sh->held = 0;

        if (err.text[0] == '\0') {
            ngx_cpystrn((u_char *) err.text, (u_char *) "out of memory",
                        DISCOVERY_ERROR_LEN);
        }

        ngx_log_error(NGX_LOG_ERR, w->log, 0,
                      "discovery: the routes of service \"%V\" in the "
                      "registry are not used: %s", &service->name, err.text);

        ngx_shmtx_lock(&w->dmcf->shpool->mutex);

        rec = ngx_http_discovery_record_of(w->dmcf->sh, service);

        if (rec) {
            rec->last_error_len = ngx_snprintf(rec->last_error,
                                               DISCOVERY_ERROR_LEN,
                                               "the routes in the registry "
                                               "are not used: %s", err.text)
                                  - rec->last_error;
        }

        ngx_shmtx_unlock(&w->dmcf->shpool->mutex);

        discovery_buf_free(&routes);
        return;
    }

    ngx_memzero(&outcome, sizeof(ngx_http_discovery_outcome_t));

    outcome.state = state;
    outcome.ok = (state == DISCOVERY_STATE_HEALTHY);
    outcome.routes = &routes;
    outcome.result = DISCOVERY_METRICS_POLL_SUCCESS;

    if (!outcome.ok) {
        ngx_str_set(&outcome.error, "unhealthy, as polled by another "
                                    "gateway");
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, w->log, 0,
                   "discovery: service \"%V\" as another gateway polled it",
                   &service->name);

    ngx_http_discovery_report(w->dmcf, service, &outcome, w->log);

    discovery_buf_free(&routes);
}


/*
 * Each service's value among w->values ("NAME\0VALUE\0" in the table's
 * roster order, the configuration's), found once per table.
 */

static void
ngx_http_discovery_registry_values(void)
{
    u_char                                 *p, *last, *v;
    size_t                                  n;
    ngx_uint_t                              i;
    ngx_http_discovery_service_t           *service;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;
    service = w->dmcf->services.elts;

    p = w->values.data;
    last = p + w->values.len;

    for (i = 0; i < w->dmcf->services.nelts; i++) {
        w->share[i].value = NULL;
        w->share[i].value_len = 0;

        if (p == NULL || p >= last) {
            continue;
        }

        n = ngx_strlen(p);
        v = p + n + 1;

        if (v >= last) {
            p = NULL;
            continue;
        }

        /* a table of another configuration (a reload's): none is used */

        if (n == service[i].name.len
            && ngx_strncmp(p, service[i].name.data, n) == 0)
        {
            w->share[i].value = v;
            w->share[i].value_len = ngx_strlen(v);
        }

        p = v + ngx_strlen(v) + 1;
    }
}


/*
 * A lease's answer (a grant's, a keepalive's or a time to live's): the
 * lease and TTL it gives, or *lease 0 and why in err (etcd's reason, when
 * it gave one); returns the HTTP status.  The call is freed.
 */

static long
ngx_http_discovery_registry_lease_read(
    ngx_http_discovery_registry_call_t *call, CURLcode result,
    int64_t *lease, int64_t *ttl, discovery_error_t *err)
{
    long  status;

    status = 0;
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);

    *lease = 0;
    *ttl = 0;

    if (result != CURLE_OK) {
        ngx_cpystrn((u_char *) err->text,
                    (u_char *) curl_easy_strerror(result),
                    DISCOVERY_ERROR_LEN);

    } else if (discovery_registry_lease_answer(call->answer, call->received,
                                               lease, ttl, err)
               == DISCOVERY_OK
               && status != 200)
    {
        ngx_snprintf((u_char *) err->text, DISCOVERY_ERROR_LEN,
                     "HTTP status %l%Z", status);
        *lease = 0;
    }

    ngx_http_discovery_registry_call_free(call);

    return status;
}


static void
ngx_http_discovery_registry_lease_done(CURLcode result)
{
    long                                    status;
    int64_t                                 lease, ttl;
    discovery_error_t                       err;
    ngx_http_discovery_registry_sh_t       *rsh;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;
    rsh = w->dmcf->sh->registry;

    status = ngx_http_discovery_registry_lease_read(&w->lease_call, result,
                                                    &lease, &ttl, &err);

    if (result == CURLE_OK && ngx_http_discovery_registry_refused(status)) {
        return;
    }

    ngx_shmtx_lock(&w->dmcf->shpool->mutex);

    if (lease > 0 && ttl > 0) {
        /* from when it was asked: etcd's TTL ran from before the answer */
        rsh->lease = lease;
        rsh->lease_until = w->kept_alive
                           + ngx_min(ttl, NGX_HTTP_DISCOVERY_SHARE_TTL) * 1000;

    } else if (lease > 0) {
        /* etcd forgot it (it expired): a new one at the next tick */
        rsh->lease = 0;
    }

    ngx_shmtx_unlock(&w->dmcf->shpool->mutex);

    if (lease > 0 && ttl > 0) {
        if (w->lease_failed) {
            ngx_log_error(NGX_LOG_NOTICE, w->log, 0,
                          "discovery: the registry's lease %xL is alive",
                          lease);
        }

        w->lease_failed = 0;
        return;
    }

    if (lease > 0) {
        ngx_log_error(NGX_LOG_WARN, w->log, 0,
                      "discovery: the registry's lease %xL is gone (expired, "
                      "or revoked by another gateway): its services are "
                      "claimed again with a new one", lease);
        w->kept_alive = 0;
        return;
    }

    /* said once: the watch says how etcd goes */

    if (!w->lease_failed) {
        ngx_log_error(NGX_LOG_WARN, w->log, 0,
                      "discovery: the registry's lease: %s; the services "
                      "are polled by this gateway until it is kept alive",
                      err.text);
        w->lease_failed = 1;
    }
}


static void
ngx_http_discovery_registry_share_done(CURLcode result)
{
    int                                     succeeded;
    long                                    status;
    ngx_uint_t                              i;
    discovery_error_t                       err;
    ngx_http_discovery_service_t           *service;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;
    i = w->share_index;
    service = w->dmcf->services.elts;

    status = 0;
    curl_easy_getinfo(w->share_call.easy, CURLINFO_RESPONSE_CODE, &status);

    succeeded = 0;

    if (result != CURLE_OK) {
        ngx_cpystrn((u_char *) err.text,
                    (u_char *) curl_easy_strerror(result),
                    DISCOVERY_ERROR_LEN);

    } else if (discovery_registry_txn_answer(w->share_call.answer,
                                             w->share_call.received,
                                             &succeeded, &err)
               == DISCOVERY_OK)
    {
        result = (status == 200) ? CURLE_OK : CURLE_HTTP_RETURNED_ERROR;
        ngx_snprintf((u_char *) err.text, DISCOVERY_ERROR_LEN,
                     "HTTP status %l%Z", status);

    } else {
        result = CURLE_HTTP_RETURNED_ERROR;
    }

    ngx_http_discovery_registry_call_free(&w->share_call);

    if (status == 401 && ngx_http_discovery_registry_refused(status)) {
        /* the claim or write is made again once the watch is back */
        return;
    }

    if (w->share_claim == 2) {
        if (result != CURLE_OK) {
            ngx_log_error(NGX_LOG_ERR, w->log, 0,
                          "discovery: giving up a claim in the registry "
                          "failed: %s", err.text);
        }

        ngx_http_discovery_registry_share();
        return;
    }

    if (result != CURLE_OK) {
        if (!w->share[i].failed) {
            ngx_log_error(NGX_LOG_ERR, w->log, 0,
                          "discovery: %s service \"%V\" in the registry "
                          "failed: %s", w->share_claim ? "claiming"
                          : "writing the routes of", &service[i].name,
                          err.text);
        }

        /* tried again after a second, said again once it worked */
        w->share[i].failed = 1;

        if (!w->share_claim) {
            w->share[i].written = w->share_hash;
            w->share[i].written_at = ngx_current_msec;
        }

        return;
    }

    w->share[i].failed = 0;

    if (w->share_claim) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, w->log, 0,
                       "discovery: claim of service \"%V\": %d",
                       &service[i].name, succeeded);

    } else if (succeeded) {
        w->share[i].written = w->share_hash;
        w->share[i].written_at = ngx_current_msec;

    } else {
        ngx_log_error(NGX_LOG_WARN, w->log, 0,
                      "discovery: the routes of service \"%V\" were not "
                      "written: this gateway's claim of it is gone",
                      &service[i].name);
    }

    /* the next one at once */
    ngx_http_discovery_registry_share();
}


/*
 * A watch silent for timeout=: its member is asked a linearizable read of
 * one key, counted only, within timeout=.  A member frozen (SIGSTOP, a
 * paused VM, a hung process) keeps the watch open and silent, its kernel
 * answering TCP keepalive, and cannot end it as "hasleader" would; etcd's
 * progress notifications come every 10 minutes.  Not GET /health: etcd
 * 3.4 says "false" there during an alarm (NOSPACE), while its members
 * still serve reads and watches: every member would be left in turn.
 * The read needs what the watch needs, the token included.
 */

static void
ngx_http_discovery_registry_check_handler(ngx_event_t *ev)
{
    discovery_error_t                       err;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;

    if (ngx_exiting || ngx_terminate || ngx_quit || !w->leased
        || w->step != NGX_HTTP_DISCOVERY_REGISTRY_WATCH || !w->watching
        || w->check_call.easy)
    {
        return;
    }

    if (discovery_registry_check_request(w->registry, &w->check_call.body,
                                         &err)
        != DISCOVERY_OK
        || ngx_http_discovery_registry_send(&w->check_call, "/v3/kv/range")
           != NGX_OK)
    {
        ngx_http_discovery_registry_call_free(&w->check_call);
        ngx_add_timer(ev, w->conf->timeout);
        return;
    }

    w->checked = ngx_current_msec;
}


static void
ngx_http_discovery_registry_check_done(CURLcode result)
{
    long                                    status;
    discovery_error_t                       err;
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;

    status = 0;
    curl_easy_getinfo(w->check_call.easy, CURLINFO_RESPONSE_CODE, &status);

    /* why it failed, if it did: etcd's reason, else the status */

    if (result == CURLE_OK
        && discovery_registry_answer_error(w->check_call.answer,
                                           w->check_call.received, &err)
           == DISCOVERY_OK)
    {
        ngx_snprintf((u_char *) err.text, DISCOVERY_ERROR_LEN,
                     "HTTP status %l%Z", status);
    }

    ngx_http_discovery_registry_call_free(&w->check_call);

    if (result == CURLE_OK && ngx_http_discovery_registry_refused(status)) {
        return;
    }

    /*
     * Answered 200: the member read, whatever became of the body.  The
     * watch received meanwhile: its member is alive, however slow.
     */

    if (status == 200 || (ngx_msec_int_t) (w->heard - w->checked) >= 0) {
        if (w->watching && discovery_registry_watch_pending(w->registry) == 0)
        {
            ngx_add_timer(&w->check, w->conf->timeout);
        }

        return;
    }

    if (result == CURLE_OPERATION_TIMEDOUT) {
        ngx_http_discovery_registry_failed("the watch was silent and its "
                                           "member did not answer a check "
                                           "within %M ms", w->conf->timeout);
        return;
    }

    ngx_http_discovery_registry_failed("the watch was silent and its member "
                                       "failed a check: %s",
                                       result == CURLE_OK
                                       ? err.text
                                       : curl_easy_strerror(result));
}


/* a short request to the current member: its answer into call->answer */

static ngx_int_t
ngx_http_discovery_registry_send(ngx_http_discovery_registry_call_t *call,
    const char *path)
{
    CURLcode                                rc;
    ngx_str_t                              *url;
    struct curl_slist                      *list;
    ngx_http_discovery_registry_watcher_t  *w;
    u_char                                  buf[NGX_HTTP_DISCOVERY_LINE_MAX];

    w = &ngx_http_discovery_watcher;

    call->answer = ngx_alloc(NGX_HTTP_DISCOVERY_SHARE_ANSWER, w->log);
    call->received = 0;

    list = call->answer ? curl_slist_append(NULL,
                                            "Content-Type: application/json")
                        : NULL;

    if (list && w->token_len) {
        call->headers = list;
        ngx_snprintf(buf, sizeof(buf), "Authorization: %*s%Z",
                     w->token_len, w->token);
        list = curl_slist_append(call->headers, (char *) buf);
    }

    call->headers = list;
    call->easy = list ? curl_easy_init() : NULL;

    if (call->easy == NULL) {
        ngx_http_discovery_registry_call_free(call);
        return NGX_ERROR;
    }

    url = w->conf->urls.elts;
    url = &url[w->endpoint % w->conf->urls.nelts];
    ngx_snprintf(buf, sizeof(buf), "%V%s%Z", url, path);

    rc = curl_easy_setopt(call->easy, CURLOPT_URL, (char *) buf);
    rc |= curl_easy_setopt(call->easy, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(call->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(call->easy, CURLOPT_HTTPHEADER, call->headers);
    rc |= curl_easy_setopt(call->easy, CURLOPT_POST, 1L);
    rc |= curl_easy_setopt(call->easy, CURLOPT_POSTFIELDSIZE,
                           (long) call->body.len);
    rc |= curl_easy_setopt(call->easy, CURLOPT_POSTFIELDS, call->body.data);
    rc |= ngx_http_discovery_curl_handle(&w->curl, call->easy);
    rc |= curl_easy_setopt(call->easy, CURLOPT_TIMEOUT_MS,
                           (long) (call->timeout ? call->timeout
                                   : ngx_min(w->conf->timeout,
                                             NGX_HTTP_DISCOVERY_SHARE_TTL
                                             * 1000)));
    rc |= ngx_http_discovery_registry_tls(call->easy, w->dmcf);
    rc |= curl_easy_setopt(call->easy, CURLOPT_WRITEFUNCTION,
                           ngx_http_discovery_registry_keep);
    rc |= curl_easy_setopt(call->easy, CURLOPT_WRITEDATA, call);

    if (rc != CURLE_OK
        || curl_multi_add_handle(w->curl.multi, call->easy) != CURLM_OK)
    {
        ngx_log_error(NGX_LOG_ERR, w->log, 0,
                      "discovery: cannot send \"%s\" to the registry", path);
        ngx_http_discovery_registry_call_free(call);
        return NGX_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, w->log, 0,
                   "discovery: registry request %s", buf);

    return NGX_OK;
}


static size_t
ngx_http_discovery_registry_keep(char *ptr, size_t size, size_t nmemb,
    void *userdata)
{
    ngx_http_discovery_registry_call_t *call = userdata;

    size_t  len;

    len = size * nmemb;

    if (call->received + len > NGX_HTTP_DISCOVERY_SHARE_ANSWER) {
        return 0;               /* not an answer of etcd's to these */
    }

    ngx_memcpy(call->answer + call->received, ptr, len);
    call->received += len;

    return len;
}


/* ends a request to etcd, in flight or not, and frees what it holds */

static void
ngx_http_discovery_registry_call_free(ngx_http_discovery_registry_call_t *call)
{
    if (call->easy) {
        curl_multi_remove_handle(ngx_http_discovery_watcher.curl.multi,
                                 call->easy);
        curl_easy_cleanup(call->easy);
        call->easy = NULL;
    }

    if (call->headers) {
        curl_slist_free_all(call->headers);
        call->headers = NULL;
    }

    discovery_buf_free(&call->body);

    if (call->answer) {
        ngx_free(call->answer);
        call->answer = NULL;
    }

    call->received = 0;
}


/*
 * "REVISION PREFIX\nJSON" beside the state file, for a start while etcd is
 * down
 */

static void
ngx_http_discovery_registry_save(u_char *serving, size_t len,
    int64_t revision)
{
    u_char                                 *p;
    ngx_fd_t                                fd;
    ngx_str_t                              *state, path;
    ngx_http_discovery_registry_watcher_t  *w;
    u_char                                  head[NGX_INT64_LEN + 2
                                                 + NGX_MAX_PATH];
    u_char                                  name[NGX_MAX_PATH];
    u_char                                  temp[NGX_MAX_PATH];

    w = &ngx_http_discovery_watcher;
    state = &w->dmcf->state;

    if (state->len == 0 || state->len + sizeof(".registry") > NGX_MAX_PATH) {
        return;
    }

    path.data = name;
    path.len = ngx_sprintf(name, "%V.registry", state) - name;
    name[path.len] = '\0';

    /*
     * The directory is the worker user's: a temporary file of a name
     * nobody can guess, made only where nothing is (O_EXCL, O_NOFOLLOW),
     * as the state file's; a fixed name was followed through a planted
     * link, truncating what it pointed to.
     */

    fd = ngx_http_discovery_state_create(&path, temp, w->log);
    if (fd == NGX_INVALID_FILE) {
        return;
    }

    /* the prefix, so that another prefix's services are not taken */

    if (w->conf->prefix.len > NGX_MAX_PATH) {
        ngx_close_file(fd);
        (void) ngx_delete_file(temp);
        return;
    }

    p = ngx_sprintf(head, "%L %V\n", revision, &w->conf->prefix);

    if (ngx_write_fd(fd, head, p - head) != p - head
        || ngx_write_fd(fd, serving, len) != (ssize_t) len)
    {
        ngx_log_error(NGX_LOG_ERR, w->log, ngx_errno,
                      "discovery: cannot write \"%s\"", temp);
        ngx_close_file(fd);
        (void) ngx_delete_file(temp);
        return;
    }

    ngx_close_file(fd);

    if (ngx_rename_file(temp, name) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ERR, w->log, ngx_errno,
                      ngx_rename_file_n " \"%s\" to \"%s\" failed",
                      temp, name);
        (void) ngx_delete_file(temp);
    }
}


/*
 * The status page's "registry": the zone's part, copied under its lock,
 * as a JSON object.
 */

ngx_int_t
ngx_http_discovery_registry_status(ngx_pool_t *pool,
    ngx_http_discovery_main_conf_t *dmcf, ngx_str_t *out)
{
    u_char                            *p, *last;
    size_t                             len;
    ngx_str_t                         *url;
    ngx_uint_t                         i;
    ngx_http_discovery_registry_sh_t  *rsh;
    ngx_http_discovery_registry_conf_t  *rcf;

    rcf = dmcf->registry;

    if (rcf == NULL || dmcf->sh == NULL) {
        ngx_str_null(out);
        return NGX_OK;
    }

    url = rcf->urls.elts;

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    rsh = dmcf->sh->registry;

    len = sizeof("{\"type\":\"etcd\",\"prefix\":,\"endpoints\":[],"
                 "\"state\":\"connecting\",\"since\":,\"endpoint\":,"
                 "\"revision\":,\"table_revision\":,\"last_error\":,"
                 "\"services_count\":,"
                 "\"services_valid\":,\"services\":[]}")
          + 6 * rcf->prefix.len + 2 + 3 * NGX_INT64_LEN
          + 6 * DISCOVERY_ERROR_LEN + 2 + 4 * NGX_INT64_LEN
          + (rsh ? rsh->services_len : 0)
          + sizeof(",\"share\":{\"ttl\":,\"lease\":\"\"}")
          + 2 * NGX_INT64_LEN;

    for (i = 0; i < rcf->urls.nelts; i++) {
        len += 6 * url[i].len + 3;
    }

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        ngx_shmtx_unlock(&dmcf->shpool->mutex);
        return NGX_ERROR;
    }

    out->data = p;
    last = p + len;

    p = ngx_slprintf(p, last, "{\"type\":\"etcd\",\"prefix\":");
    p = ngx_http_discovery_registry_escape(p, rcf->prefix.data,
                                           rcf->prefix.len);
    p = ngx_slprintf(p, last, ",\"endpoints\":[");

    for (i = 0; i < rcf->urls.nelts; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_http_discovery_registry_escape(p, url[i].data, url[i].len);
    }

    *p++ = ']';

    /* share=on: the gateway's lease, which its claims are bound to */

    if (!rcf->share) {
        p = ngx_cpymem(p, ",\"share\":null", sizeof(",\"share\":null") - 1);

    } else if (rsh && rsh->lease) {
        p = ngx_slprintf(p, last, ",\"share\":{\"ttl\":%d,\"lease\":\"%xL\"}",
                         NGX_HTTP_DISCOVERY_SHARE_TTL, rsh->lease);

    } else {
        p = ngx_slprintf(p, last, ",\"share\":{\"ttl\":%d,\"lease\":null}",
                         NGX_HTTP_DISCOVERY_SHARE_TTL);
    }

    if (rsh == NULL) {
        p = ngx_slprintf(p, last, ",\"state\":\"connecting\",\"since\":null,"
                         "\"endpoint\":null,\"revision\":0,"
                         "\"table_revision\":0,"
                         "\"last_error\":null,\"services_count\":0,"
                         "\"services_valid\":0,\"services\":[]}");

    } else {
        p = ngx_slprintf(p, last, ",\"state\":\"%V\",\"since\":%T,"
                         "\"endpoint\":",
                         &ngx_http_discovery_registry_states[rsh->state],
                         rsh->since);
        p = ngx_http_discovery_registry_escape(p, url[rsh->endpoint].data,
                                               url[rsh->endpoint].len);
        p = ngx_slprintf(p, last, ",\"revision\":%L,\"table_revision\":%L,"
                         "\"last_error\":", rsh->revision,
                         rsh->table_revision ? rsh->table_revision
                                             : rcf->serving_revision);

        if (rsh->error_len) {
            p = ngx_http_discovery_registry_escape(p, rsh->error,
                                                   rsh->error_len);

        } else {
            p = ngx_cpymem(p, "null", 4);
        }

        p = ngx_slprintf(p, last, ",\"services_count\":%ui,"
                         "\"services_valid\":%ui,\"services\":",
                         rsh->count, rsh->valid);

        if (rsh->services) {
            p = ngx_cpymem(p, rsh->services, rsh->services_len);

        } else {
            p = ngx_cpymem(p, "[]", 2);
        }

        *p++ = '}';
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    out->len = p - out->data;

    return NGX_OK;
}


/* a JSON string: room for 6 bytes a byte and the quotes */

static u_char *
ngx_http_discovery_registry_escape(u_char *p, u_char *data, size_t len)
{
    *p++ = '"';
    p += discovery_json_escape(p, data, len);
    *p++ = '"';

    return p;
}


static size_t
ngx_http_discovery_registry_write(char *ptr, size_t size, size_t nmemb,
    void *userdata)
{
    ngx_http_discovery_registry_watcher_t *w = userdata;

    long                status;
    u_char             *p;
    size_t              len, need;
    discovery_error_t   err;

    len = size * nmemb;

    status = 0;
    curl_easy_getinfo(w->watch.easy, CURLINFO_RESPONSE_CODE, &status);

    if (w->step == NGX_HTTP_DISCOVERY_REGISTRY_WATCH && status == 200) {
        w->heard = ngx_current_msec;

        if (discovery_registry_watch_feed(w->registry, (u_char *) ptr, len,
                                          &err)
            != DISCOVERY_OK)
        {
            w->error_len = ngx_cpystrn(w->error, (u_char *) err.text,
                                       DISCOVERY_ERROR_LEN)
                           - w->error;
            return 0;
        }

        ngx_http_discovery_registry_watch();

        if (w->error_len) {
            return 0;
        }

        /* created, and no message begun: it may be silent */

        if (w->watching && discovery_registry_watch_pending(w->registry) == 0)
        {
            if (w->stalled.timer_set) {
                ngx_del_timer(&w->stalled);
            }

            /* silent from now: its member is checked after timeout= */
            ngx_add_timer(&w->check, w->conf->timeout);

        } else {
            if (!w->stalled.timer_set) {
                ngx_add_timer(&w->stalled, w->conf->timeout);
            }

            if (w->check.timer_set) {
                ngx_del_timer(&w->check);
            }
        }

        return len;
    }

    /* a unary answer, or an error instead of the stream */

    need = w->received + len;

    if (need > DISCOVERY_REGISTRY_MAX_ANSWER) {
        w->oversize = 1;
        w->error_len = ngx_snprintf(w->error, DISCOVERY_ERROR_LEN,
                                    "the answer is larger than %uz bytes",
                                    (size_t)
                                    DISCOVERY_REGISTRY_MAX_ANSWER)
                       - w->error;
        return 0;
    }

    if (need > w->answer_size) {
        need = ngx_max(need, ngx_max(w->answer_size * 2, 4096));

        p = ngx_alloc(need, w->log);
        if (p == NULL) {
            w->error_len = ngx_cpystrn(w->error, (u_char *) "out of memory",
                                       DISCOVERY_ERROR_LEN)
                           - w->error;
            return 0;
        }

        if (w->answer) {
            ngx_memcpy(p, w->answer, w->received);
            ngx_free(w->answer);
        }

        w->answer = p;
        w->answer_size = need;
    }

    ngx_memcpy(w->answer + w->received, ptr, len);
    w->received += len;

    return len;
}


/* a transfer libcurl ended: the watcher's request, or the put of overrides */

static void
ngx_http_discovery_registry_ended(CURL *easy, CURLcode result)
{
    ngx_http_discovery_registry_watcher_t  *w;

    w = &ngx_http_discovery_watcher;

    if (w->put.easy && easy == w->put.easy) {
        ngx_http_discovery_registry_put_done(result);
        return;
    }

    if (w->lease_call.easy && easy == w->lease_call.easy) {
        ngx_http_discovery_registry_lease_done(result);
        return;
    }

    if (w->share_call.easy && easy == w->share_call.easy) {
        ngx_http_discovery_registry_share_done(result);
        return;
    }

    if (w->check_call.easy && easy == w->check_call.easy) {
        ngx_http_discovery_registry_check_done(result);
        return;
    }

    if (w->look_call.easy && easy == w->look_call.easy) {
        ngx_http_discovery_registry_look_done(result);
        return;
    }

    if (easy != w->watch.easy) {
        return;
    }

    if (w->step == NGX_HTTP_DISCOVERY_REGISTRY_WATCH
        && w->error_len == sizeof("compacted") - 1
        && ngx_strncmp(w->error, "compacted", w->error_len) == 0)
    {
        /*
         * Not a failure: the same member, read again at once.  But a
         * member whose watches are compacted again and again, right
         * after each read, is broken: read again at once, it made the
         * watcher spin; it fails, as any other error.
         */

        if (w->compacted == 0
            || ngx_current_msec - w->compacted
               >= NGX_HTTP_DISCOVERY_REGISTRY_RETRY_MAX)
        {
            w->compacted = ngx_max(ngx_current_msec, 1);
            ngx_http_discovery_registry_start(
                                        NGX_HTTP_DISCOVERY_REGISTRY_RANGE);
            return;
        }

        w->error_len = ngx_cpystrn(w->error, (u_char *)
                                   "the watch was compacted again right "
                                   "after a read", DISCOVERY_ERROR_LEN)
                       - w->error;
    }

    ngx_http_discovery_registry_finish(result);
}
