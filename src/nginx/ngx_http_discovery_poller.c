
/*
 * The poller: fetches each service's route document, or makes a gRPC
 * service's reflection and health calls, with libcurl's multi-socket
 * interface, driven by nginx's own event loop, so that a slow or hanging
 * service never blocks the worker.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <curl/curl.h>

#include "ngx_http_discovery.h"


typedef struct ngx_http_discovery_poll_s  ngx_http_discovery_poll_t;


/* this worker's polling of one service */
typedef struct {
    ngx_http_discovery_service_t  *service;
    ngx_event_t                    timer;
    ngx_http_discovery_poll_t     *poll;         /* in flight, or NULL */
    CURL                          *easy;         /* kept for reuse */
} ngx_http_discovery_polling_t;


struct ngx_http_discovery_poll_s {
    ngx_http_discovery_polling_t  *polling;
    CURL                          *easy;
    discovery_parser_t            *parser;
    discovery_grpc_t              *grpc;         /* a gRPC poll's calls */
    struct curl_slist             *headers;      /* with If-None-Match */
    u_char                        *body;         /* the document as read */
    size_t                         received;
    size_t                         body_size;    /* allocated */
    discovery_buf_t                routes;       /* parsed from the body */
    uint64_t                       hash;         /* of the routes */
#if (NGX_THREADS)
    ngx_http_discovery_task_t      task;         /* the parse, if large */
#endif
    ngx_uint_t                     conditional;  /* If-None-Match sent */
    size_t                         etag_len;     /* of the answer */
    u_char                         etag[NGX_HTTP_DISCOVERY_ETAG_LEN];
    discovery_log_t                dlog;
    ngx_http_discovery_log_ctx_t   lctx;

    /* the first option libcurl refused, and why */
    const char                    *refused;
    CURLcode                       refused_rc;

    size_t                         error_len;
    u_char                         error[DISCOVERY_ERROR_LEN];
    char                           curl_error[CURL_ERROR_SIZE];

    /* of a gRPC poll: when it started, and the current call's path */
    ngx_msec_t                     started;
    const char                    *call;

    /* the current call's grpc-status (-1: none yet) and grpc-message */
    ngx_int_t                      grpc_status;
    size_t                         grpc_message_len;
    u_char                         grpc_message[256];

    /* libcurl wanted a socket watched, and no connection was free */
    unsigned                       starved:1;
    unsigned                       not_modified:1;
    unsigned                       parsing:1;     /* in a thread */
    unsigned                       rejected:1;    /* the document was bad */
};


/*
 * curl_easy_setopt() on a poll's handle.  The first option libcurl
 * refuses (out of memory, a libcurl built without it) is kept and fails
 * the poll: it would not be the poll configured.
 */
#define ngx_http_discovery_setopt(poll, option, value)                       \
    ngx_http_discovery_setopt_result(poll, #option,                          \
                                     curl_easy_setopt((poll)->easy, option,  \
                                                      value))


/* one per worker: polls are this process's own business */
typedef struct {
    ngx_http_discovery_main_conf_t  *dmcf;
    ngx_http_discovery_polling_t    *polling;    /* by service index */
    ngx_http_discovery_curl_t        curl;
    struct curl_slist               *headers;
    struct curl_slist               *grpc_headers;
    ngx_log_t                       *log;

    /* polls in flight, at most max_polls: the rest wait their turn */
    ngx_uint_t                       polls;
    ngx_uint_t                       max_polls;
    ngx_event_t                      starved;    /* posted: polls to fail */
} ngx_http_discovery_poller_t;


static void ngx_http_discovery_poll_handler(ngx_event_t *ev);
static void ngx_http_discovery_poll_start(
    ngx_http_discovery_polling_t *polling, ngx_str_t *etag);
static void ngx_http_discovery_poll_setup(ngx_http_discovery_poll_t *poll,
    ngx_http_discovery_service_t *service,
    ngx_http_discovery_main_conf_t *dmcf);
static void ngx_http_discovery_setopt_result(ngx_http_discovery_poll_t *poll,
    const char *option, CURLcode rc);
static ngx_int_t ngx_http_discovery_poll_conditional(
    ngx_http_discovery_poll_t *poll, ngx_str_t *etag);
static size_t ngx_http_discovery_poll_header(char *buf, size_t size,
    size_t nitems, void *userdata);
static void ngx_http_discovery_grpc_header(ngx_http_discovery_poll_t *poll,
    u_char *p, u_char *last);
static size_t ngx_http_discovery_poll_write(char *ptr, size_t size,
    size_t nmemb, void *userdata);
static void ngx_http_discovery_poll_finish(ngx_http_discovery_poll_t *poll,
    CURLcode result);
static void ngx_http_discovery_poll_parse(void *data, ngx_log_t *log);
#if (NGX_THREADS)
static void ngx_http_discovery_poll_parsed(ngx_event_t *ev);
#endif
static void ngx_http_discovery_poll_done(ngx_http_discovery_poll_t *poll);
static ngx_int_t ngx_http_discovery_grpc_call(ngx_http_discovery_poll_t *poll);
static void ngx_http_discovery_grpc_answer(ngx_http_discovery_poll_t *poll,
    discovery_grpc_answer_t *answer);
static void ngx_http_discovery_grpc_finish(ngx_http_discovery_poll_t *poll,
    CURLcode result);
static void ngx_http_discovery_poll_failed(
    ngx_http_discovery_service_t *service, ngx_str_t *error,
    ngx_uint_t result, ngx_msec_t duration);
static void ngx_http_discovery_poll_free(ngx_http_discovery_poll_t *poll);
static void ngx_http_discovery_poll_error(ngx_http_discovery_poll_t *poll,
    const char *fmt, ...);
static void ngx_http_discovery_poll_ended(CURL *easy, CURLcode result);
static void ngx_http_discovery_poll_starved(CURL *easy);
static struct curl_slist *ngx_http_discovery_poll_headers(char *header);
static struct curl_slist *ngx_http_discovery_grpc_headers(void);


static ngx_http_discovery_poller_t  ngx_http_discovery_poller;

/*
 * Polls in flight in one worker, at most: a quarter of worker_connections,
 * the rest being the clients'.  Polls due beyond that wait about this long
 * (milliseconds) for a turn; 10,000 services all due at start go out in
 * waves, not in one burst that takes every connection.
 */
#define NGX_HTTP_DISCOVERY_POLL_WAIT  50

/*
 * Poll timers expire on multiples of this (milliseconds), so that the
 * polls due within it wake the worker once: 10,000 services every 10 s
 * cost 1,000 wake-ups a second otherwise, more than the polls themselves.
 */
#define NGX_HTTP_DISCOVERY_POLL_TICK  16

/*
 * A document larger than this (bytes) is parsed in a background thread:
 * 25,000 routes took 40 ms of the event loop, which requests then waited
 * for.  A smaller one, about a millisecond's work at most, is parsed at
 * once, as the thread's round trip would cost more.
 */
#define NGX_HTTP_DISCOVERY_PARSE_INLINE  (16 * 1024)

/* the body's first allocation, doubled as it grows */
#define NGX_HTTP_DISCOVERY_BODY_SIZE     (16 * 1024)

static void ngx_http_discovery_starved(ngx_event_t *ev);

/* ev->data of the timers, as nginx's own timers without a connection */
static ngx_connection_t  ngx_http_discovery_poller_dumb;


ngx_int_t
ngx_http_discovery_poller_init_worker(ngx_cycle_t *cycle,
    ngx_http_discovery_main_conf_t *dmcf)
{
    CURLMcode                       rc;
    ngx_uint_t                      i;
    ngx_http_discovery_polling_t   *polling;
    ngx_http_discovery_poller_t    *poller;
    ngx_http_discovery_service_t   *service;

    poller = &ngx_http_discovery_poller;

    polling = ngx_pcalloc(cycle->pool,
                          dmcf->services.nelts
                          * sizeof(ngx_http_discovery_polling_t));
    if (polling == NULL) {
        return NGX_ERROR;
    }

    poller->dmcf = dmcf;
    poller->polling = polling;
    poller->log = cycle->log;

    if (ngx_http_discovery_curl_init(&poller->curl, cycle->log,
                                     ngx_http_discovery_poll_ended,
                                     ngx_http_discovery_poll_starved)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    poller->headers = ngx_http_discovery_poll_headers(NULL);
    if (poller->headers == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "discovery: curl_slist_append() failed");
        return NGX_ERROR;
    }

    /* what gRPC over HTTP/2 asks of a call; no Accept, no Expect */

    poller->grpc_headers = ngx_http_discovery_grpc_headers();
    if (poller->grpc_headers == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "discovery: curl_slist_append() failed");
        return NGX_ERROR;
    }

    ngx_http_discovery_poller_dumb.fd = (ngx_socket_t) -1;

    poller->max_polls = ngx_max(cycle->connection_n / 4, 1);

    /*
     * libcurl's cache of idle connections holds 4 per transfer in flight
     * by default: polls due in one tick finished, their last ones closed
     * the connections the next tick's polls then made again (a fifth of
     * 1,000 polls a second to one backend).  It holds as many as the polls
     * a worker may have in flight.
     */

    rc = curl_multi_setopt(poller->curl.multi, CURLMOPT_MAXCONNECTS,
                           (long) poller->max_polls);

    if (rc != CURLM_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "discovery: curl_multi_setopt(CURLMOPT_MAXCONNECTS) "
                      "failed: %s", curl_multi_strerror(rc));
        return NGX_ERROR;
    }
    poller->starved.handler = ngx_http_discovery_starved;
    poller->starved.data = &ngx_http_discovery_poller_dumb;
    poller->starved.log = cycle->log;

    /* every process tries at once; the zone's lease picks one per service */

    service = dmcf->services.elts;

    for (i = 0; i < dmcf->services.nelts; i++) {
        polling[i].service = &service[i];

        polling[i].timer.handler = ngx_http_discovery_poll_handler;
        polling[i].timer.data = &ngx_http_discovery_poller_dumb;
        polling[i].timer.log = cycle->log;
        polling[i].timer.cancelable = 1;

        ngx_add_timer(&polling[i].timer, 1);
    }

    return NGX_OK;
}


void
ngx_http_discovery_poller_exit_worker(ngx_cycle_t *cycle)
{
    ngx_uint_t                      i;
    ngx_http_discovery_poller_t    *poller;
    ngx_http_discovery_polling_t   *polling;

    poller = &ngx_http_discovery_poller;

    if (poller->curl.multi == NULL) {
        return;
    }

    if (poller->starved.posted) {
        ngx_delete_posted_event(&poller->starved);
    }

    polling = poller->polling;

    for (i = 0; i < poller->dmcf->services.nelts; i++) {
        if (polling[i].poll) {
            ngx_http_discovery_poll_free(polling[i].poll);
        }

        if (polling[i].easy) {
            curl_easy_cleanup(polling[i].easy);
            polling[i].easy = NULL;
        }
    }

    ngx_http_discovery_curl_cleanup(&poller->curl);
    curl_slist_free_all(poller->headers);
    curl_slist_free_all(poller->grpc_headers);

    ngx_http_discovery_release_leases(poller->dmcf);
}


/*
 * The management API asks for a poll now: the service is due at once,
 * and this process's timer for it fires next; a poll in flight elsewhere
 * (its lease) is the one waited for.
 */

void
ngx_http_discovery_poll_now(ngx_http_discovery_service_t *service)
{
    ngx_http_discovery_poller_t     *poller;
    ngx_http_discovery_record_t     *rec;
    ngx_http_discovery_polling_t    *polling;
    ngx_http_discovery_main_conf_t  *dmcf;

    poller = &ngx_http_discovery_poller;
    dmcf = poller->dmcf;

    if (poller->curl.multi == NULL) {
        return;
    }

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    rec = ngx_http_discovery_record_of(dmcf->sh, service);

    if (rec) {
        rec->next_poll = ngx_current_msec;
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    polling = &poller->polling[service->index];

    if (polling->poll == NULL) {
        ngx_add_timer(&polling->timer, 1);
    }
}


static void
ngx_http_discovery_poll_handler(ngx_event_t *ev)
{
    ngx_str_t                        etag;
    ngx_msec_t                       next;
    ngx_http_discovery_poller_t     *poller;
    ngx_http_discovery_polling_t    *polling;
    ngx_http_discovery_service_t    *service;
    u_char                           buf[NGX_HTTP_DISCOVERY_ETAG_LEN];

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    polling = ngx_http_discovery_event_owner(ev, ngx_http_discovery_polling_t,
                                             timer);
    poller = &ngx_http_discovery_poller;
    service = polling->service;
    next = service->interval;
    etag.data = buf;
    etag.len = 0;

    if (polling->poll == NULL && poller->polls >= poller->max_polls) {
        /* its turn comes when others are done; no lease taken meanwhile */
        next = NGX_HTTP_DISCOVERY_POLL_WAIT
               + ngx_random() % NGX_HTTP_DISCOVERY_POLL_WAIT;

    } else if (polling->poll == NULL
               && ngx_http_discovery_claim(poller->dmcf, service, &next, &etag)
                  == NGX_OK)
    {
        ngx_http_discovery_poll_start(polling, &etag);
    }

    next += NGX_HTTP_DISCOVERY_POLL_TICK
            - (ngx_current_msec + next) % NGX_HTTP_DISCOVERY_POLL_TICK;

    ngx_add_timer(ev, next);
}


/* a poll that cannot start is a failed poll, said and reported as one */

static void
ngx_http_discovery_poll_start(ngx_http_discovery_polling_t *polling,
    ngx_str_t *etag)
{
    CURL                             *easy;
    CURLMcode                         rc;
    ngx_str_t                        *prefix, error;
    ngx_uint_t                        i;
    discovery_error_t                 err;
    ngx_http_discovery_poll_t        *poll;
    ngx_http_discovery_poller_t      *poller;
    ngx_http_discovery_service_t     *service;
    ngx_http_discovery_main_conf_t   *dmcf;

    poller = &ngx_http_discovery_poller;
    dmcf = poller->dmcf;
    service = polling->service;

    poll = ngx_calloc(sizeof(ngx_http_discovery_poll_t), poller->log);
    if (poll == NULL) {
        ngx_str_set(&error, "cannot start the poll: out of memory");
        ngx_http_discovery_poll_failed(service, &error,
                                       DISCOVERY_METRICS_POLL_FAILURE, 0);
        return;
    }

    poll->polling = polling;
    poll->lctx.log = poller->log;
    poll->lctx.service = &service->name;
    poll->dlog.handler = ngx_http_discovery_log_handler;
    poll->dlog.data = &poll->lctx;

    poll->grpc_status = -1;

    if (service->grpc) {
        poll->grpc = discovery_grpc_create(service->grpc_internal
                                           ? DISCOVERY_GRPC_INTERNAL : 0,
                                           dmcf->max_size);
        if (poll->grpc == NULL) {
            ngx_http_discovery_poll_error(poll, "cannot start the poll: "
                                          "out of memory");
            goto failed;
        }

    } else {
        poll->parser = discovery_parser_create((int) service->format,
                                               &poll->dlog);
        if (poll->parser == NULL) {
            ngx_http_discovery_poll_error(poll, "cannot start the poll: "
                                          "out of memory");
            goto failed;
        }
    }

    if (service->prefixes) {
        prefix = service->prefixes->elts;

        for (i = 0; i < service->prefixes->nelts; i++) {
            if ((poll->grpc
                 ? discovery_grpc_add_prefix(poll->grpc,
                                             (const char *) prefix[i].data,
                                             prefix[i].len, &err)
                 : discovery_parser_add_prefix(poll->parser,
                                               (const char *) prefix[i].data,
                                               prefix[i].len, &err))
                != DISCOVERY_OK)
            {
                ngx_http_discovery_poll_error(poll, "cannot start the poll: "
                                              "%s", err.text);
                goto failed;
            }
        }
    }

    if (etag->len && ngx_http_discovery_poll_conditional(poll, etag) != NGX_OK)
    {
        ngx_http_discovery_poll_error(poll, "cannot start the poll: "
                                      "curl_slist_append() failed");
        goto failed;
    }

    /*
     * A service's handle serves all its polls: a new one costs allocating
     * and clearing several kilobytes, and its download buffer, per poll.
     * The options the same for every poll are set once, in poll_setup();
     * every one that differs between polls (or a gRPC poll's calls) is set
     * below, every time.
     */

    easy = polling->easy;

    if (easy == NULL) {
        easy = curl_easy_init();
        if (easy == NULL) {
            ngx_http_discovery_poll_error(poll, "cannot start the poll: "
                                          "curl_easy_init() failed");
            goto failed;
        }
    }

    poll->easy = easy;

    if (polling->easy == NULL) {
        ngx_http_discovery_poll_setup(poll, service, dmcf);
        polling->easy = easy;
    }

    ngx_http_discovery_setopt(poll, CURLOPT_PRIVATE, poll);
    ngx_http_discovery_setopt(poll, CURLOPT_TIMEOUT_MS,
                              (long) service->timeout);
    ngx_http_discovery_setopt(poll, CURLOPT_HEADERDATA, poll);
    ngx_http_discovery_setopt(poll, CURLOPT_HTTPHEADER,
                              poll->headers ? poll->headers : poller->headers);
    ngx_http_discovery_setopt(poll, CURLOPT_ERRORBUFFER, poll->curl_error);
    ngx_http_discovery_setopt(poll, CURLOPT_WRITEDATA, poll);

    /* for poll_duration_seconds, and a gRPC poll's calls' timeouts */
    poll->started = ngx_current_msec;

    if (poll->grpc) {
        if (ngx_http_discovery_grpc_call(poll) != NGX_OK) {
            goto failed;
        }

    } else {
        ngx_http_discovery_setopt(poll, CURLOPT_URL, service->poll_url.data);
    }

    if (poll->refused) {
        ngx_http_discovery_poll_error(poll, "cannot start the poll: "
                                      "curl_easy_setopt(%s) failed: %s",
                                      poll->refused,
                                      curl_easy_strerror(poll->refused_rc));
        goto failed;
    }

    rc = curl_multi_add_handle(poller->curl.multi, easy);

    if (rc != CURLM_OK) {
        ngx_http_discovery_poll_error(poll, "cannot start the poll: "
                                      "curl_multi_add_handle() failed: %s",
                                      curl_multi_strerror(rc));
        goto failed;
    }

    polling->poll = poll;
    poller->polls++;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, poller->log, 0,
                   "discovery: polling \"%V\" at %V%V", &service->name,
                   &service->url, &service->uri);

    return;

failed:

    error.data = poll->error;
    error.len = poll->error_len;

    ngx_http_discovery_poll_failed(service, &error,
                                   DISCOVERY_METRICS_POLL_FAILURE, 0);

    /* a handle an option or libcurl refused is not kept: made anew next */

    if (poll->easy) {
        curl_easy_cleanup(poll->easy);
        polling->easy = NULL;
    }

    if (poll->parser) {
        discovery_parser_destroy(poll->parser);
    }

    if (poll->grpc) {
        discovery_grpc_destroy(poll->grpc);
    }

    if (poll->headers) {
        curl_slist_free_all(poll->headers);
    }

    ngx_free(poll);
}


/* what every poll of a service shares: its sockets' close, credentials, TLS */

static void
ngx_http_discovery_poll_setup(ngx_http_discovery_poll_t *poll,
    ngx_http_discovery_service_t *service,
    ngx_http_discovery_main_conf_t *dmcf)
{
    ngx_http_discovery_setopt_result(poll, "CURLOPT_CLOSESOCKETFUNCTION",
                                     ngx_http_discovery_curl_handle(
                                         &ngx_http_discovery_poller.curl,
                                         poll->easy));

    /* a string option is copied, and the protocols' list parsed, when set */

    ngx_http_discovery_setopt(poll, CURLOPT_NOSIGNAL, 1L);
    ngx_http_discovery_setopt(poll, CURLOPT_FOLLOWLOCATION, 0L);
    ngx_http_discovery_setopt(poll, CURLOPT_PROTOCOLS_STR, "http,https");
    ngx_http_discovery_setopt(poll, CURLOPT_MAXFILESIZE_LARGE,
                              (curl_off_t) dmcf->max_size);
    ngx_http_discovery_setopt(poll, CURLOPT_HEADERFUNCTION,
                              ngx_http_discovery_poll_header);
    ngx_http_discovery_setopt(poll, CURLOPT_WRITEFUNCTION,
                              ngx_http_discovery_poll_write);

    if (service->user.len) {
        ngx_http_discovery_setopt(poll, CURLOPT_HTTPAUTH,
                                  (long) CURLAUTH_BASIC);
        ngx_http_discovery_setopt(poll, CURLOPT_USERNAME, service->user.data);
        ngx_http_discovery_setopt(poll, CURLOPT_PASSWORD,
                                  service->password.data
                                  ? (char *) service->password.data : "");
    }

    ngx_http_discovery_setopt(poll, CURLOPT_SSL_VERIFYPEER,
                              dmcf->ssl_verify ? 1L : 0L);
    ngx_http_discovery_setopt(poll, CURLOPT_SSL_VERIFYHOST,
                              dmcf->ssl_verify ? 2L : 0L);

    if (dmcf->ssl_trusted_certificate.len) {
        ngx_http_discovery_setopt(poll, CURLOPT_CAINFO,
                                  dmcf->ssl_trusted_certificate.data);
    }

    if (dmcf->ssl_certificate.len) {
        ngx_http_discovery_setopt(poll, CURLOPT_SSLCERT,
                                  dmcf->ssl_certificate.data);
        ngx_http_discovery_setopt(poll, CURLOPT_SSLKEY,
                                  dmcf->ssl_certificate_key.data);
    }
}


/* keeps the first option libcurl refused, which fails the poll */

static void
ngx_http_discovery_setopt_result(ngx_http_discovery_poll_t *poll,
    const char *option, CURLcode rc)
{
    if (rc != CURLE_OK && poll->refused == NULL) {
        poll->refused = option;
        poll->refused_rc = rc;
    }
}


/*
 * Asks for the document only if it changed since the published routes
 * were read from it: an unchanged document is not parsed again, which
 * matters for large tables polled often.
 */

static ngx_int_t
ngx_http_discovery_poll_conditional(ngx_http_discovery_poll_t *poll,
    ngx_str_t *etag)
{
    u_char             *p;
    struct curl_slist  *list;
    u_char              header[sizeof("If-None-Match: ")
                               + NGX_HTTP_DISCOVERY_ETAG_LEN];

    p = ngx_cpymem(header, "If-None-Match: ", sizeof("If-None-Match: ") - 1);
    p = ngx_cpymem(p, etag->data, etag->len);
    *p = '\0';

    list = ngx_http_discovery_poll_headers(NULL);
    if (list == NULL) {
        return NGX_ERROR;
    }

    poll->headers = curl_slist_append(list, (char *) header);
    if (poll->headers == NULL) {
        curl_slist_free_all(list);
        return NGX_ERROR;
    }

    poll->conditional = 1;

    return NGX_OK;
}


/* keeps the answer's ETag, if it is one that can be sent back verbatim */

static size_t
ngx_http_discovery_poll_header(char *buf, size_t size, size_t nitems,
    void *userdata)
{
    ngx_http_discovery_poll_t *poll = userdata;

    u_char  *p, *last;
    size_t   n;

    n = size * nitems;
    p = (u_char *) buf;
    last = p + n;

    if (n > 5 && ngx_strncmp(p, "HTTP/", 5) == 0) {
        /* a new response, after a 100 Continue say */
        poll->etag_len = 0;
        poll->grpc_status = -1;
        poll->grpc_message_len = 0;
        return n;
    }

    if (poll->grpc) {
        ngx_http_discovery_grpc_header(poll, p, last);
        return n;
    }

    if (n <= 5 || ngx_strncasecmp(p, (u_char *) "ETag:", 5) != 0) {
        return n;
    }

    for (p += 5; p < last && (*p == ' ' || *p == '\t'); p++) { /* void */ }

    while (last > p && (last[-1] == CR || last[-1] == LF || last[-1] == ' '
                        || last[-1] == '\t'))
    {
        last--;
    }

    if (last - p == 0 || last - p > NGX_HTTP_DISCOVERY_ETAG_LEN) {
        return n;
    }

    for (buf = (char *) p; p < last; p++) {
        if (*p < 0x21 || *p > 0x7e) {
            return n;
        }
    }

    poll->etag_len = last - (u_char *) buf;
    ngx_memcpy(poll->etag, buf, poll->etag_len);

    return n;
}


/*
 * The body is kept whole, up to discovery_max_size, and parsed once read:
 * parsing it as it arrives would do on the event loop what a thread can.
 */

static size_t
ngx_http_discovery_poll_write(char *ptr, size_t size, size_t nmemb,
    void *userdata)
{
    ngx_http_discovery_poll_t *poll = userdata;

    long                     code;
    size_t                   n, max_size, grow;
    u_char                  *body;
    curl_off_t               length;
    discovery_error_t        err;
    discovery_grpc_answer_t  answer;

    n = size * nmemb;

    if (poll->grpc) {
        ngx_http_discovery_grpc_answer(poll, &answer);
        answer.grpc_status = -1;   /* trailers come at the end */

        if (discovery_grpc_feed(poll->grpc, &answer, ptr, n, &err)
            != DISCOVERY_OK)
        {
            ngx_http_discovery_poll_error(poll, "%s", err.text);
            return 0;
        }

        return n;
    }

    code = 0;
    curl_easy_getinfo(poll->easy, CURLINFO_RESPONSE_CODE, &code);

    if (code == 304 && poll->conditional) {
        return n;
    }

    if (code < 200 || code > 299) {
        ngx_http_discovery_poll_error(poll, "HTTP status %l", code);
        return 0;
    }

    max_size = ngx_http_discovery_poller.dmcf->max_size;

    if (n > max_size - poll->received) {
        ngx_http_discovery_poll_error(poll, "document larger than %uz bytes",
                                      max_size);
        return 0;
    }

    if (poll->received + n > poll->body_size) {
        grow = ngx_max(2 * poll->body_size, NGX_HTTP_DISCOVERY_BODY_SIZE);

        if (poll->body == NULL
            && curl_easy_getinfo(poll->easy,
                                 CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length)
               == CURLE_OK
            && length > 0)
        {
            /* the whole body at once: no copy as it grows */
            grow = (size_t) ngx_min((curl_off_t) max_size, length);
        }

        grow = ngx_min(ngx_max(grow, poll->received + n), max_size);

        body = realloc(poll->body, grow);
        if (body == NULL) {
            ngx_http_discovery_poll_error(poll, "out of memory for a "
                                          "document of %uz bytes",
                                          poll->received + n);
            return 0;
        }

        poll->body = body;
        poll->body_size = grow;
    }

    ngx_memcpy(poll->body + poll->received, ptr, n);
    poll->received += n;

    return n;
}


static void
ngx_http_discovery_poll_finish(ngx_http_discovery_poll_t *poll,
    CURLcode result)
{
    long                              code;
    ngx_http_discovery_poller_t      *poller;
    ngx_http_discovery_service_t     *service;
    ngx_http_discovery_main_conf_t   *dmcf;

    if (poll->grpc) {
        ngx_http_discovery_grpc_finish(poll, result);
        return;
    }

    poller = &ngx_http_discovery_poller;
    service = poll->polling->service;
    dmcf = poller->dmcf;

    code = 0;
    curl_easy_getinfo(poll->easy, CURLINFO_RESPONSE_CODE, &code);

    if (poll->error_len) {
        /* the write callback stopped the transfer and said why */

    } else if (result == CURLE_FILESIZE_EXCEEDED) {
        ngx_http_discovery_poll_error(poll, "document larger than %uz bytes",
                                      dmcf->max_size);

    } else if ((result == CURLE_GOT_NOTHING || result == CURLE_RECV_ERROR
                || result == CURLE_SEND_ERROR)
               && code == 0 && service->https
               && dmcf->ssl_certificate.len == 0)
    {
        /*
         * a TLS service that wants a client certificate may just hang up,
         * or (TLS 1.3: its alert races our request) reset the connection
         */
        ngx_http_discovery_poll_error(poll, "%s (a service that requires a "
                                      "client certificate closes so: see "
                                      "discovery_ssl_certificate)",
                                      poll->curl_error[0]
                                      ? poll->curl_error
                                      : curl_easy_strerror(result));

    } else if (result != CURLE_OK) {
        ngx_http_discovery_poll_error(poll, "%s",
                                      poll->curl_error[0]
                                      ? poll->curl_error
                                      : curl_easy_strerror(result));

    } else if (code == 304 && poll->conditional) {
        poll->not_modified = 1;

    } else if (code < 200 || code > 299) {
        ngx_http_discovery_poll_error(poll, "HTTP status %l", code);

    } else {
        /* the handle is done with; the poll stays in flight until parsed */
        curl_multi_remove_handle(poller->curl.multi, poll->easy);

#if (NGX_THREADS)
        if (poll->received > NGX_HTTP_DISCOVERY_PARSE_INLINE) {
            poll->parsing = 1;

            if (ngx_http_discovery_task_post(&poll->task, poll,
                                             ngx_http_discovery_poll_parse,
                                             ngx_http_discovery_poll_parsed,
                                             poller->log)
                == NGX_OK)
            {
                return;
            }

            poll->parsing = 0;
        }
#endif

        ngx_http_discovery_poll_parse(poll, poller->log);
    }

    ngx_http_discovery_poll_done(poll);
}


/*
 * The body's routes, and their hash, in poll->routes and poll->hash; or
 * the error.  Perhaps in a thread: it touches nothing but the poll, and
 * the parser logs a rejected route as nginx's own threads log.
 */

static void
ngx_http_discovery_poll_parse(void *data, ngx_log_t *log)
{
    ngx_http_discovery_poll_t  *poll = data;

    discovery_error_t  err;

    if (discovery_parser_feed(poll->parser, (const char *) poll->body,
                              poll->received, &err)
        != DISCOVERY_OK
        || discovery_parser_finish(poll->parser, &poll->routes, &err)
           != DISCOVERY_OK)
    {
        ngx_http_discovery_poll_error(poll, "invalid document: %s", err.text);
        poll->rejected = 1;
        return;
    }

    poll->hash = ngx_http_discovery_routes_hash(&poll->routes);
}


#if (NGX_THREADS)

static void
ngx_http_discovery_poll_parsed(ngx_event_t *ev)
{
    ngx_http_discovery_poll_t  *poll = ev->data;

    poll->parsing = 0;
    ngx_http_discovery_poll_done(poll);
}

#endif


/* reports the poll's outcome to the zone, and frees the poll */

static void
ngx_http_discovery_poll_done(ngx_http_discovery_poll_t *poll)
{
    ngx_str_t                      error;
    ngx_http_discovery_outcome_t   outcome;
    ngx_http_discovery_poller_t   *poller;

    poller = &ngx_http_discovery_poller;

    ngx_memzero(&outcome, sizeof(ngx_http_discovery_outcome_t));

    if (poll->error_len) {
        error.data = poll->error;
        error.len = poll->error_len;

        ngx_http_discovery_poll_failed(poll->polling->service, &error,
                                       poll->rejected
                                       ? DISCOVERY_METRICS_POLL_REJECTED
                                       : DISCOVERY_METRICS_POLL_FAILURE,
                                       ngx_current_msec - poll->started);

    } else {
        outcome.ok = 1;
        outcome.result = poll->not_modified
                         ? DISCOVERY_METRICS_POLL_NOT_MODIFIED
                         : DISCOVERY_METRICS_POLL_SUCCESS;
        outcome.duration = ngx_current_msec - poll->started;

        /* a 304 to the published document's tag: nothing to parse */
        if (!poll->not_modified) {
            outcome.routes = &poll->routes;
            outcome.hash = poll->hash;
            outcome.etag.data = poll->etag;
            outcome.etag.len = poll->etag_len;
        }

        ngx_http_discovery_report(poller->dmcf, poll->polling->service,
                                  &outcome, poller->log);
    }

    ngx_http_discovery_poll_free(poll);
}


/*
 * One call of a gRPC poll, on the poll's handle: a POST over HTTP/2
 * (prior knowledge in cleartext, ALPN over TLS) with the request messages
 * the core framed, in what is left of the poll's timeout.
 */

static ngx_int_t
ngx_http_discovery_grpc_call(ngx_http_discovery_poll_t *poll)
{
    u_char                         *p;
    size_t                          len;
    ngx_msec_t                      spent;
    const char                     *path;
    const unsigned char            *body;
    ngx_http_discovery_service_t   *service;
    u_char                          url[2048];

    service = poll->polling->service;

    if (!discovery_grpc_next(poll->grpc, &path, &body, &len)) {
        ngx_http_discovery_poll_error(poll, "no gRPC call left");
        return NGX_ERROR;
    }

    spent = ngx_current_msec - poll->started;

    if (spent >= service->timeout) {
        ngx_http_discovery_poll_error(poll, "%s: timed out after %M ms",
                                      path, spent);
        return NGX_ERROR;
    }

    /* the base is a host and port, the path a checked service's name */

    if (service->base.len + ngx_strlen(path) + 1 > sizeof(url)) {
        ngx_http_discovery_poll_error(poll, "%s: URL too long", path);
        return NGX_ERROR;
    }

    p = ngx_cpymem(url, service->base.data, service->base.len);
    p = ngx_cpystrn(p, (u_char *) path, url + sizeof(url) - p);

    poll->call = path;
    poll->grpc_status = -1;
    poll->grpc_message_len = 0;

    /* libcurl copies the URL; the body stays the core's until the end */

    ngx_http_discovery_setopt(poll, CURLOPT_URL, url);
    ngx_http_discovery_setopt(poll, CURLOPT_HTTP_VERSION,
                              service->https
                              ? (long) CURL_HTTP_VERSION_2TLS
                              : (long) CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    ngx_http_discovery_setopt(poll, CURLOPT_POST, 1L);
    ngx_http_discovery_setopt(poll, CURLOPT_POSTFIELDSIZE, (long) len);
    ngx_http_discovery_setopt(poll, CURLOPT_POSTFIELDS, body);
    ngx_http_discovery_setopt(poll, CURLOPT_HTTPHEADER,
                              ngx_http_discovery_poller.grpc_headers);
    ngx_http_discovery_setopt(poll, CURLOPT_TIMEOUT_MS,
                              (long) (service->timeout - spent));

    /*
     * A connection per call: libcurl 7.88 sends nothing on an HTTP/2
     * connection with prior knowledge that it reuses, and the call would
     * hang until its timeout.
     */
    ngx_http_discovery_setopt(poll, CURLOPT_FORBID_REUSE, 1L);
    ngx_http_discovery_setopt(poll, CURLOPT_FRESH_CONNECT, 1L);

    if (poll->refused) {
        ngx_http_discovery_poll_error(poll, "cannot start the poll: "
                                      "curl_easy_setopt(%s) failed: %s",
                                      poll->refused,
                                      curl_easy_strerror(poll->refused_rc));
        return NGX_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_http_discovery_poller.log, 0,
                   "discovery: gRPC call of \"%V\": %s", &service->name,
                   path);

    return NGX_OK;
}


/*
 * The headers a poll starts with: User-Agent, then `header` (NULL: an
 * Accept of JSON, as every poll but a gRPC call's sends).
 * User-Agent is one of them rather than CURLOPT_USERAGENT, which libcurl
 * formats into a header anew for every request, then again into the
 * request (2.8% of a poll's instructions, measured by callgrind).
 */

static struct curl_slist *
ngx_http_discovery_poll_headers(char *header)
{
    struct curl_slist  *list, *next;

    list = curl_slist_append(NULL, "User-Agent: nginx-discovery/"
                                   NGINX_VERSION);
    if (list == NULL) {
        return NULL;
    }

    next = curl_slist_append(list, header ? header
                                          : "Accept: application/json");
    if (next == NULL) {
        curl_slist_free_all(list);
        return NULL;
    }

    return next;
}


static struct curl_slist *
ngx_http_discovery_grpc_headers(void)
{
    ngx_uint_t          i;
    struct curl_slist  *list, *next;

    static char  *headers[] = {
        "Content-Type: application/grpc",
        "TE: trailers",
        "Accept:",
        "Expect:",
    };

    list = ngx_http_discovery_poll_headers(headers[0]);
    if (list == NULL) {
        return NULL;
    }

    for (i = 1; i < sizeof(headers) / sizeof(headers[0]); i++) {
        next = curl_slist_append(list, headers[i]);
        if (next == NULL) {
            curl_slist_free_all(list);
            return NULL;
        }

        list = next;
    }

    return list;
}


/* grpc-status and grpc-message, in the headers or the trailers */

static void
ngx_http_discovery_grpc_header(ngx_http_discovery_poll_t *poll, u_char *p,
    u_char *last)
{
    u_char     *value;
    size_t      len;
    ngx_int_t   status;

    while (last > p && (last[-1] == CR || last[-1] == LF || last[-1] == ' '
                        || last[-1] == '\t'))
    {
        last--;
    }

    if (last - p > 12 && ngx_strncasecmp(p, (u_char *) "grpc-status:", 12)
                         == 0)
    {
        for (value = p + 12; value < last && *value == ' '; value++) {
            /* void */
        }

        status = ngx_atoi(value, last - value);
        poll->grpc_status = (status == NGX_ERROR || status > 1000)
                            ? 1000 : status;
        return;
    }

    if (last - p >= 13 && ngx_strncasecmp(p, (u_char *) "grpc-message:", 13)
                          == 0)
    {
        for (value = p + 13; value < last && *value == ' '; value++) {
            /* void */
        }

        len = ngx_min((size_t) (last - value), sizeof(poll->grpc_message));
        ngx_memcpy(poll->grpc_message, value, len);
        poll->grpc_message_len = len;
    }
}


/* what the current call's answer said so far */

static void
ngx_http_discovery_grpc_answer(ngx_http_discovery_poll_t *poll,
    discovery_grpc_answer_t *answer)
{
    long   code;
    char  *type;

    code = 0;
    curl_easy_getinfo(poll->easy, CURLINFO_RESPONSE_CODE, &code);

    type = NULL;
    curl_easy_getinfo(poll->easy, CURLINFO_CONTENT_TYPE, &type);

    answer->http_status = code;
    answer->content_type = type;
    answer->content_type_len = type ? ngx_strlen(type) : 0;
    answer->grpc_status = (int) poll->grpc_status;
    answer->grpc_message = (const char *) poll->grpc_message;
    answer->grpc_message_len = poll->grpc_message_len;
}


/*
 * A call of a gRPC poll ended: the core reads its answer and names the
 * next call, made on the same handle, or has the routes.
 */

static void
ngx_http_discovery_grpc_finish(ngx_http_discovery_poll_t *poll,
    CURLcode result)
{
    CURLM                    *multi;
    size_t                    len;
    CURLMcode                 rc;
    const char               *path;
    discovery_error_t         err;
    const unsigned char      *body;
    discovery_grpc_answer_t   answer;

    if (poll->error_len) {
        /* the write callback stopped the transfer and said why */

    } else if (result != CURLE_OK) {
        ngx_http_discovery_poll_error(poll, "%s: %s%s", poll->call,
                                      poll->curl_error[0]
                                      ? poll->curl_error
                                      : curl_easy_strerror(result),
                                      (result == CURLE_HTTP2
                                       || result == CURLE_HTTP2_STREAM
                                       || result == CURLE_UNSUPPORTED_PROTOCOL
                                       || result == CURLE_WEIRD_SERVER_REPLY
                                       || result == CURLE_GOT_NOTHING)
                                      ? " (not an HTTP/2 gRPC server?)" : "");

    } else {
        ngx_http_discovery_grpc_answer(poll, &answer);

        if (discovery_grpc_end(poll->grpc, &answer, &err) != DISCOVERY_OK) {
            ngx_http_discovery_poll_error(poll, "%s", err.text);

        } else if (discovery_grpc_next(poll->grpc, &path, &body, &len)) {
            /* the next call, on the same handle and connection */

            multi = ngx_http_discovery_poller.curl.multi;
            curl_multi_remove_handle(multi, poll->easy);

            if (ngx_http_discovery_grpc_call(poll) == NGX_OK) {
                rc = curl_multi_add_handle(multi, poll->easy);

                if (rc == CURLM_OK) {
                    return;
                }

                ngx_http_discovery_poll_error(poll, "cannot make the call "
                                              "%s: curl_multi_add_handle() "
                                              "failed: %s", poll->call,
                                              curl_multi_strerror(rc));
            }

        } else if (discovery_grpc_finish(poll->grpc, &poll->routes, &err)
                   != DISCOVERY_OK)
        {
            ngx_http_discovery_poll_error(poll, "%s", err.text);
            poll->rejected = 1;

        } else {
            poll->hash = ngx_http_discovery_routes_hash(&poll->routes);
        }
    }

    ngx_http_discovery_poll_done(poll);
}


/*
 * A failed poll: an error line, with the URL as shown (its password is
 * "***"), and the outcome for the service's record.
 */

static void
ngx_http_discovery_poll_failed(ngx_http_discovery_service_t *service,
    ngx_str_t *error, ngx_uint_t result, ngx_msec_t duration)
{
    ngx_http_discovery_poller_t   *poller;
    ngx_http_discovery_outcome_t   outcome;

    poller = &ngx_http_discovery_poller;

    ngx_log_error(NGX_LOG_ERR, poller->log, 0,
                  "discovery: poll of service \"%V\" at \"%V%V\" failed: %V",
                  &service->name, &service->url, &service->uri, error);

    ngx_memzero(&outcome, sizeof(ngx_http_discovery_outcome_t));
    outcome.error = *error;
    outcome.result = result;
    outcome.duration = duration;

    ngx_http_discovery_report(poller->dmcf, service, &outcome, poller->log);
}


static void
ngx_http_discovery_poll_free(ngx_http_discovery_poll_t *poll)
{
#if (NGX_THREADS)
    if (poll->parsing) {
        /* at exit: the thread may not touch the poll once it is freed */
        ngx_http_discovery_task_wait(&poll->task.finished);
    }
#endif

    poll->polling->poll = NULL;
    ngx_http_discovery_poller.polls--;

    /* the handle stays with the service for its next poll */
    curl_multi_remove_handle(ngx_http_discovery_poller.curl.multi,
                             poll->easy);

    if (poll->parser) {
        discovery_parser_destroy(poll->parser);
    }

    if (poll->grpc) {
        discovery_grpc_destroy(poll->grpc);
    }

    discovery_buf_free(&poll->routes);
    free(poll->body);

    if (poll->headers) {
        curl_slist_free_all(poll->headers);
    }

    ngx_free(poll);
}


static void
ngx_http_discovery_poll_error(ngx_http_discovery_poll_t *poll,
    const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(poll->error, poll->error + DISCOVERY_ERROR_LEN, fmt,
                      args);
    va_end(args);

    poll->error_len = p - poll->error;
}


/* a transfer libcurl ended: the poll's, once it is done with */

static void
ngx_http_discovery_poll_ended(CURL *easy, CURLcode result)
{
    ngx_http_discovery_poll_t  *poll;

    poll = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &poll);

    if (poll) {
        ngx_http_discovery_poll_finish(poll, result);
    }
}


/*
 * libcurl wanted a socket watched and no connection was free: the poll
 * fails once libcurl has returned (ngx_get_connection() said why).
 */

static void
ngx_http_discovery_poll_starved(CURL *easy)
{
    ngx_http_discovery_poll_t  *poll;

    poll = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &poll);

    if (poll) {
        poll->starved = 1;
        ngx_post_event(&ngx_http_discovery_poller.starved,
                       &ngx_posted_events);
    }
}


/* fails the polls that found no free connection for their socket */

static void
ngx_http_discovery_starved(ngx_event_t *ev)
{
    ngx_uint_t                      i;
    ngx_http_discovery_poll_t      *poll;
    ngx_http_discovery_poller_t    *poller;

    poller = &ngx_http_discovery_poller;

    for (i = 0; i < poller->dmcf->services.nelts; i++) {
        poll = poller->polling[i].poll;

        if (poll == NULL || !poll->starved || poll->parsing) {
            continue;
        }

        ngx_http_discovery_poll_error(poll, "no free connection in this "
                                      "worker: worker_connections are not "
                                      "enough");
        ngx_http_discovery_poll_finish(poll, CURLE_COULDNT_CONNECT);
    }
}
