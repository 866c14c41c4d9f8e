
/*
 * discovery_api: the management API.  The core answers each request from
 * a copy of the zone's table and controls and this worker's router; a
 * write's new controls go into the zone under its lock, and the publisher
 * puts them into the next table, which every worker reads.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_discovery.h"


/*
 * From this size of table on, a read that does not ask this worker's
 * router is answered in a background thread, as the status page is: at
 * 100,000 routes GET /services or /routes took about as long as the status
 * page's 170 ms of the event loop, and the dashboard asks every 3 s.
 */
#define NGX_HTTP_DISCOVERY_API_LARGE     (256 * 1024)

/* how often a worker looks for expired overrides */
#define NGX_HTTP_DISCOVERY_EXPIRY_CHECK  1000

/* POST .../poll: how often the poll's end is looked for, and how long */
#define NGX_HTTP_DISCOVERY_POLL_CHECK    25
#define NGX_HTTP_DISCOVERY_POLL_SETTLE   150

/* a write that raced another one is worked out again, this many times */
#define NGX_HTTP_DISCOVERY_API_TRIES     8


typedef struct {
    ngx_http_request_t              *request;
    ngx_event_t                      wait;       /* POST .../poll */
    ngx_http_discovery_service_t    *service;
    uint64_t                         polls;      /* when it was asked for */
    ngx_msec_t                       deadline;
    ngx_msec_t                       reported;   /* 0: not yet */
    ngx_str_t                        path;       /* GET, once polled */
} ngx_http_discovery_api_ctx_t;


#if (NGX_THREADS)

/* a read answered in a background thread: its table is large */
typedef struct {
    ngx_http_request_t              *request;
    discovery_api_request_t          req;
    discovery_api_view_t             view;
    discovery_api_answer_t           answer;
    discovery_error_t                err;
    int                              rc;
    ngx_http_discovery_task_t        task;
} ngx_http_discovery_api_job_t;

#endif


static void ngx_http_discovery_api_body(ngx_http_request_t *r);
static void ngx_http_discovery_api_run(ngx_http_request_t *r,
    ngx_str_t *method, ngx_str_t *path, ngx_str_t *body,
    ngx_uint_t too_large);
static ngx_int_t ngx_http_discovery_api_store(
    ngx_http_discovery_main_conf_t *dmcf, ngx_atomic_uint_t version,
    discovery_buf_t *controls, int64_t next_expiry, ngx_log_t *log);
static void ngx_http_discovery_api_poll(ngx_http_request_t *r,
    ngx_str_t *name);
static void ngx_http_discovery_api_poll_wait(ngx_event_t *ev);
static ngx_int_t ngx_http_discovery_api_elsewhere(ngx_http_request_t *r,
    ngx_str_t *name, int64_t lease);
static void ngx_http_discovery_api_cleanup(void *data);
static ngx_int_t ngx_http_discovery_api_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *allow, u_char *json, size_t len);
static ngx_int_t ngx_http_discovery_api_path(ngx_http_request_t *r,
    ngx_str_t *path);
static ngx_table_elt_t *ngx_http_discovery_api_header(ngx_http_request_t *r,
    const char *name, size_t len);
static void ngx_http_discovery_api_expire(ngx_event_t *ev);
#if (NGX_THREADS)
static ngx_int_t ngx_http_discovery_api_background(ngx_http_request_t *r,
    discovery_api_request_t *req, discovery_api_view_t *view);
static void ngx_http_discovery_api_work(void *data, ngx_log_t *log);
static void ngx_http_discovery_api_worked(ngx_event_t *ev);
static void ngx_http_discovery_api_freed(void *data);
#endif


static ngx_str_t  ngx_http_discovery_api_type = ngx_string("application/json");
static ngx_str_t  ngx_http_discovery_api_get = ngx_string("GET");
static ngx_str_t  ngx_http_discovery_api_no_zone = ngx_string(
    "{\"error\":{\"status\":503,\"code\":\"NoZone\",\"text\":\"no "
    "discovery_service is configured: there is no table to change\"}}");

static ngx_str_t  ngx_http_discovery_api_zone_full = ngx_string(
    "{\"error\":{\"status\":503,\"code\":\"ZoneFull\",\"text\":\"the "
    "discovery zone has no room for the overrides: nothing was changed\"}}");
static ngx_str_t  ngx_http_discovery_api_busy = ngx_string(
    "{\"error\":{\"status\":503,\"code\":\"Busy\",\"text\":\"other "
    "writes kept changing the overrides meanwhile: nothing was changed, "
    "try again\"}}");

static ngx_event_t                      ngx_http_discovery_expiry;
static ngx_connection_t                 ngx_http_discovery_expiry_dumb;
static ngx_http_discovery_main_conf_t  *ngx_http_discovery_expiry_dmcf;


ngx_int_t
ngx_http_discovery_api_handler(ngx_http_request_t *r)
{
    ngx_int_t   rc;
    ngx_str_t   path, body;
    ngx_uint_t  too_large;

    if (ngx_http_discovery_api_path(r, &path) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* before the discard, which counts down content_length_n */
    too_large = (r->headers_in.content_length_n > DISCOVERY_API_MAX_BODY);

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD) || too_large) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        ngx_str_null(&body);

        r->main->count++;
        ngx_http_discovery_api_run(r, &r->method_name, &path, &body,
                                   too_large);
        return NGX_DONE;
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_discovery_api_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/* the whole body is read: into one buffer, from memory or its file */

static void
ngx_http_discovery_api_body(ngx_http_request_t *r)
{
    u_char       *p;
    off_t         len;
    ssize_t       n;
    ngx_str_t     path, body;
    ngx_buf_t    *b;
    ngx_uint_t    too_large;
    ngx_chain_t  *cl;

    if (ngx_http_discovery_api_path(r, &path) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    len = 0;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            len += ngx_buf_size(cl->buf);
        }
    }

    too_large = (len > DISCOVERY_API_MAX_BODY);
    ngx_str_null(&body);

    if (!too_large && len) {
        body.data = ngx_pnalloc(r->pool, (size_t) len);
        if (body.data == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        p = body.data;

        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            b = cl->buf;

            if (b->in_file) {
                n = ngx_read_file(b->file, p, (size_t) (b->file_last
                                                       - b->file_pos),
                                  b->file_pos);
                if (n == NGX_ERROR) {
                    ngx_http_finalize_request(r,
                                         NGX_HTTP_INTERNAL_SERVER_ERROR);
                    return;
                }

                p += n;

            } else {
                p = ngx_cpymem(p, b->pos, b->last - b->pos);
            }
        }

        body.len = p - body.data;
    }

    ngx_http_discovery_api_run(r, &r->method_name, &path, &body, too_large);
}


/*
 * Answers the request, r->main->count taken for it: a write that changes
 * the controls stores them in the zone, unless another write did so
 * meanwhile (then the answer is worked out again, on those).
 */

static void
ngx_http_discovery_api_run(ngx_http_request_t *r, ngx_str_t *method,
    ngx_str_t *path, ngx_str_t *body, ngx_uint_t too_large)
{
    ngx_int_t                        rc;
    ngx_str_t                        allow, poll, *refusal;
    ngx_uint_t                       tries;
    ngx_table_elt_t                 *origin, *type;
    discovery_error_t                err;
    discovery_api_view_t             view;
    discovery_api_answer_t           answer;
    discovery_api_request_t          req;
    ngx_http_discovery_zone_copy_t   copy;
    ngx_http_discovery_loc_conf_t   *dlcf;
    ngx_http_discovery_main_conf_t  *dmcf;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_discovery_module);
    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_discovery_module);

    ngx_memzero(&req, sizeof(discovery_api_request_t));

    req.method = (const char *) method->data;
    req.method_len = method->len;
    req.path = (const char *) path->data;
    req.path_len = path->len;
    req.query = (const char *) r->args.data;
    req.query_len = r->args.len;
    req.body = (const char *) body->data;
    req.body_len = body->len;
    req.body_too_large = too_large ? 1 : 0;

    type = r->headers_in.content_type;

    if (type) {
        req.content_type = (const char *) type->value.data;
        req.content_type_len = type->value.len;
    }

    origin = ngx_http_discovery_api_header(r, "origin", 6);

    if (origin) {
        req.origin = (const char *) origin->value.data;
        req.origin_len = origin->value.len;
    }

    if (r->headers_in.host) {
        req.host = (const char *) r->headers_in.host->value.data;
        req.host_len = r->headers_in.host->value.len;
    }

    req.write = (dlcf->api_write == 1);
    req.persist_restart = (dmcf->state.len != 0);
    req.module_version = NGX_HTTP_DISCOVERY_VERSION;
    req.now = ngx_time();

    for (tries = 0; /* void */; tries++) {
        ngx_memzero(&copy, sizeof(ngx_http_discovery_zone_copy_t));

        if (dmcf->sh
            && ngx_http_discovery_zone_copy(r->pool, dmcf, &copy) != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_memzero(&view, sizeof(discovery_api_view_t));

        view.snapshot = copy.snapshot;
        view.snapshot_len = copy.snapshot_len;
        view.stats = copy.stats;
        view.n = copy.n;
        view.controls = copy.controls;
        view.controls_len = copy.controls_len;
        view.router = NULL;

#if (NGX_THREADS)
        if (copy.snapshot_len > NGX_HTTP_DISCOVERY_API_LARGE
            && !body->len
            && ((method->len == 3
                 && ngx_strncmp(method->data, "GET", 3) == 0)
                || (method->len == 4
                    && ngx_strncmp(method->data, "HEAD", 4) == 0))
            && !discovery_api_uses_router((const char *) path->data,
                                          path->len))
        {
            if (ngx_http_discovery_api_background(r, &req, &view) == NGX_OK) {
                return;
            }
        }
#endif

        if (dmcf->sh) {
            view.router = ngx_http_discovery_router_latest(dmcf);
        }

        if (discovery_api_handle(&req, &view, &answer, &err) != DISCOVERY_OK)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "discovery: the API cannot answer: %s", err.text);
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        if (!answer.controls_changed) {
            break;
        }

        if (dmcf->sh == NULL) {
            /* no zone to keep them in: no service is configured */
            discovery_buf_free(&answer.body);
            discovery_buf_free(&answer.controls);
            discovery_buf_free(&answer.poll);

            ngx_str_null(&allow);
            rc = ngx_http_discovery_api_send(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                        &allow, ngx_http_discovery_api_no_zone.data,
                        ngx_http_discovery_api_no_zone.len);
            ngx_http_finalize_request(r, rc);
            return;
        }

        rc = ngx_http_discovery_api_store(dmcf, copy.controls_version,
                                          &answer.controls,
                                          answer.next_expiry,
                                          r->connection->log);

        if (rc == NGX_OK) {
            ngx_http_discovery_publish_controls();
            break;
        }

        discovery_buf_free(&answer.body);
        discovery_buf_free(&answer.controls);
        discovery_buf_free(&answer.poll);

        if (rc == NGX_ERROR || tries == NGX_HTTP_DISCOVERY_API_TRIES) {
            /* an answer in JSON, as every other: the client may retry */
            refusal = (rc == NGX_ERROR) ? &ngx_http_discovery_api_zone_full
                                        : &ngx_http_discovery_api_busy;

            if (rc != NGX_ERROR) {
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "discovery: an API write lost the race to "
                              "other writes %ui times and was refused",
                              tries + 1);
            }

            ngx_str_null(&allow);
            rc = ngx_http_discovery_api_send(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                             &allow, refusal->data,
                                             refusal->len);
            ngx_http_finalize_request(r, rc);
            return;
        }
    }

    discovery_buf_free(&answer.controls);

    if (answer.poll.data && dmcf->sh) {
        poll.data = ngx_pnalloc(r->pool, answer.poll.len);
        if (poll.data == NULL) {
            discovery_buf_free(&answer.body);
            discovery_buf_free(&answer.poll);
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        poll.len = answer.poll.len;
        ngx_memcpy(poll.data, answer.poll.data, poll.len);

        discovery_buf_free(&answer.body);
        discovery_buf_free(&answer.poll);

        ngx_http_discovery_api_poll(r, &poll);
        return;
    }

    discovery_buf_free(&answer.poll);

    allow.data = (u_char *) answer.allow;
    allow.len = ngx_strlen(answer.allow);

    rc = ngx_http_discovery_api_send(r, answer.status, &allow,
                                     answer.body.data, answer.body.len);

    discovery_buf_free(&answer.body);

    ngx_http_finalize_request(r, rc);
}


#if (NGX_THREADS)

/*
 * Posts a read to the background threads: the core answers it there from
 * the request's copy of the zone, without a router.  r->main->count is
 * the caller's already; the request is finalized once it is answered.
 */

static ngx_int_t
ngx_http_discovery_api_background(ngx_http_request_t *r,
    discovery_api_request_t *req, discovery_api_view_t *view)
{
    ngx_pool_cleanup_t            *cln;
    ngx_http_discovery_api_job_t  *job;

    job = ngx_pcalloc(r->pool, sizeof(ngx_http_discovery_api_job_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (job == NULL || cln == NULL) {
        return NGX_ERROR;
    }

    job->request = r;
    job->req = *req;
    job->view = *view;

    if (ngx_http_discovery_task_post(&job->task, job,
                                     ngx_http_discovery_api_work,
                                     ngx_http_discovery_api_worked,
                                     r->connection->log)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* what the answer took goes back once the request is gone */
    cln->handler = ngx_http_discovery_api_freed;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "discovery: API answer from a table of %uz bytes "
                   "worked out in a background thread",
                   view->snapshot_len);

    return NGX_OK;
}


static void
ngx_http_discovery_api_work(void *data, ngx_log_t *log)
{
    ngx_http_discovery_api_job_t  *job = data;

    job->rc = discovery_api_handle(&job->req, &job->view, &job->answer,
                                   &job->err);
}


static void
ngx_http_discovery_api_worked(ngx_event_t *ev)
{
    ngx_http_discovery_api_job_t  *job = ev->data;

    ngx_int_t            rc;
    ngx_str_t            allow;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = job->request;
    c = r->connection;

    if (job->rc != DISCOVERY_OK) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "discovery: the API cannot answer: %s", job->err.text);
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else {
        /* a read changes nothing and polls nothing */
        discovery_buf_free(&job->answer.controls);
        discovery_buf_free(&job->answer.poll);

        allow.data = (u_char *) job->answer.allow;
        allow.len = ngx_strlen(job->answer.allow);

        rc = ngx_http_discovery_api_send(r, job->answer.status, &allow,
                                         job->answer.body.data,
                                         job->answer.body.len);

        discovery_buf_free(&job->answer.body);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_discovery_api_freed(void *data)
{
    ngx_http_discovery_publish_freed();
}

#endif


/*
 * Replaces the zone's controls if they are still those of `version`:
 * NGX_DECLINED when another write came first, NGX_ERROR when the zone
 * has no room (an alert says so; nothing changes).
 */

static ngx_int_t
ngx_http_discovery_api_store(ngx_http_discovery_main_conf_t *dmcf,
    ngx_atomic_uint_t version, discovery_buf_t *controls, int64_t next_expiry,
    ngx_log_t *log)
{
    u_char                      *p;
    ngx_http_discovery_shctx_t  *sh;

    sh = dmcf->sh;

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    if (sh->controls_version != version) {
        ngx_shmtx_unlock(&dmcf->shpool->mutex);
        return NGX_DECLINED;
    }

    p = ngx_slab_alloc_locked(dmcf->shpool,
                              controls->len ? controls->len : 1);

    if (p == NULL) {
        ngx_shmtx_unlock(&dmcf->shpool->mutex);

        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "discovery zone \"%V\" of %uz bytes is full: the "
                      "API's overrides (%uz bytes) were not changed",
                      &dmcf->shm_zone->shm.name, dmcf->shm_zone->shm.size,
                      controls->len);
        return NGX_ERROR;
    }

    ngx_memcpy(p, controls->data, controls->len);

    if (sh->controls) {
        ngx_slab_free_locked(dmcf->shpool, sh->controls);
    }

    sh->controls = p;
    sh->controls_len = controls->len;
    sh->controls_expiry = (time_t) next_expiry;
    sh->controls_version++;

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    return NGX_OK;
}


/*
 * POST .../poll: the service is polled now, by this worker unless
 * another one polls it already, and the answer waits for the poll's
 * report and for its table to be published (or the poll's timeout).
 */

static void
ngx_http_discovery_api_poll(ngx_http_request_t *r, ngx_str_t *name)
{
    int64_t                          lease;
    ngx_uint_t                       i;
    ngx_pool_cleanup_t              *cln;
    ngx_http_discovery_record_t     *rec;
    ngx_http_discovery_service_t    *service;
    ngx_http_discovery_api_ctx_t    *ctx;
    ngx_http_discovery_main_conf_t  *dmcf;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_discovery_module);
    service = dmcf->services.elts;

    for (i = 0; i < dmcf->services.nelts; i++) {
        if (service[i].name.len == name->len
            && ngx_strncmp(service[i].name.data, name->data, name->len) == 0)
        {
            break;
        }
    }

    if (i == dmcf->services.nelts) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* share=on: another gateway of the fleet polls it, not this one */

    ngx_shmtx_lock(&dmcf->shpool->mutex);
    rec = ngx_http_discovery_record_of(dmcf->sh, &service[i]);
    lease = (rec && rec->poller == DISCOVERY_POLLER_OTHER)
            ? rec->poller_lease : -1;
    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    if (lease != -1) {
        ngx_http_finalize_request(r,
                                  ngx_http_discovery_api_elsewhere(r, name,
                                                                   lease));
        return;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_discovery_api_ctx_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (ctx == NULL || cln == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->request = r;
    ctx->service = &service[i];
    ctx->path.data = ngx_pnalloc(r->pool, sizeof("/services/") - 1
                                          + name->len);
    if (ctx->path.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the service's own path: what the GET after the poll answers */
    ctx->path.len = ngx_sprintf(ctx->path.data, "/services/%V", name)
                    - ctx->path.data;

    ngx_shmtx_lock(&dmcf->shpool->mutex);
    rec = ngx_http_discovery_record_of(dmcf->sh, ctx->service);
    ctx->polls = rec ? rec->polls : 0;
    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    ctx->deadline = ngx_current_msec + ctx->service->timeout
                    + NGX_HTTP_DISCOVERY_POLL_SETTLE + 1000;

    ctx->wait.handler = ngx_http_discovery_api_poll_wait;
    ctx->wait.data = ctx;
    ctx->wait.log = r->connection->log;

    cln->handler = ngx_http_discovery_api_cleanup;
    cln->data = ctx;

    ngx_http_discovery_poll_now(ctx->service);

    ngx_add_timer(&ctx->wait, NGX_HTTP_DISCOVERY_POLL_CHECK);
}


/*
 * 409: the service is polled by another gateway of the fleet (share=on),
 * whose lease is named (0: the claims are being made again); a poll here
 * would not be used.  A service's name
 * is letters, digits and "._-", nothing JSON escapes.
 */

static ngx_int_t
ngx_http_discovery_api_elsewhere(ngx_http_request_t *r, ngx_str_t *name,
    int64_t lease)
{
    u_char     *p, *last;
    size_t      len;
    ngx_str_t   allow;

    len = sizeof("{\"error\":{\"status\":409,\"code\":\"PolledElsewhere\","
                 "\"text\":\"service \\\"\\\" is polled by the gateway "
                 "of lease 0000000000000000 (share=on): ask that one, nothing "
                 "was polled here\"}}") - 1 + name->len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (lease > 0) {
        last = ngx_snprintf(p, len,
                            "{\"error\":{\"status\":409,\"code\":"
                            "\"PolledElsewhere\",\"text\":\"service "
                            "\\\"%V\\\" is polled by the gateway of lease %xL "
                            "(share=on): ask that one, nothing was polled "
                            "here\"}}", name, lease);

    } else {
        /* its owner's claim went, and the fleet's gateways claim it */
        last = ngx_snprintf(p, len,
                            "{\"error\":{\"status\":409,\"code\":"
                            "\"PolledElsewhere\",\"text\":\"service "
                            "\\\"%V\\\" is being claimed by a gateway of the "
                            "fleet (share=on): nothing was polled here\"}}",
                            name);
    }

    ngx_str_null(&allow);

    return ngx_http_discovery_api_send(r, NGX_HTTP_CONFLICT, &allow, p,
                                       last - p);
}


static void
ngx_http_discovery_api_poll_wait(ngx_event_t *ev)
{
    ngx_http_discovery_api_ctx_t *ctx = ev->data;

    ngx_str_t                        body;
    uint64_t                         polls;
    ngx_http_request_t              *r;
    ngx_http_discovery_record_t     *rec;
    ngx_http_discovery_main_conf_t  *dmcf;

    r = ctx->request;
    dmcf = ngx_http_get_module_main_conf(r, ngx_http_discovery_module);

    ngx_shmtx_lock(&dmcf->shpool->mutex);
    rec = ngx_http_discovery_record_of(dmcf->sh, ctx->service);
    polls = rec ? rec->polls : ctx->polls + 1;
    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    if (ctx->reported == 0 && polls > ctx->polls) {
        /* what the poll changed is published within a few ticks */
        ctx->reported = ngx_current_msec;
    }

    if ((ctx->reported == 0
         || ngx_current_msec - ctx->reported < NGX_HTTP_DISCOVERY_POLL_SETTLE)
        && (ngx_msec_int_t) (ctx->deadline - ngx_current_msec) > 0)
    {
        ngx_add_timer(ev, NGX_HTTP_DISCOVERY_POLL_CHECK);
        return;
    }

    ngx_str_null(&body);

    ngx_http_discovery_api_run(r, &ngx_http_discovery_api_get, &ctx->path,
                               &body, 0);
}


static void
ngx_http_discovery_api_cleanup(void *data)
{
    ngx_http_discovery_api_ctx_t *ctx = data;

    if (ctx->wait.timer_set) {
        ngx_del_timer(&ctx->wait);
    }
}


static ngx_int_t
ngx_http_discovery_api_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *allow, u_char *json, size_t len)
{
    ngx_str_t   name, value;
    ngx_buf_t  *b;

    ngx_str_set(&name, "Cache-Control");
    ngx_str_set(&value, "no-store");

    if (ngx_http_discovery_set_header(r, &name, &value) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (allow->len) {
        /* the answer's Allow, freed with the core's answer: copied */
        value.data = ngx_pnalloc(r->pool, allow->len);
        if (value.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        value.len = allow->len;
        ngx_memcpy(value.data, allow->data, allow->len);
        ngx_str_set(&name, "Allow");

        if (ngx_http_discovery_set_header(r, &name, &value) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, json, len);
    *b->last++ = LF;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    return ngx_http_discovery_send(r, status, &ngx_http_discovery_api_type, b);
}


/* the request's path below the API's location, "/" at least */

static ngx_int_t
ngx_http_discovery_api_path(ngx_http_request_t *r, ngx_str_t *path)
{
    size_t                     n;
    ngx_str_t                  rest;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    rest = r->uri;

#if (NGX_PCRE)
    if (clcf->regex == NULL)
#endif
    {
        if (r->uri.len >= clcf->name.len
            && ngx_strncmp(r->uri.data, clcf->name.data, clcf->name.len) == 0)
        {
            /* "location /api/" leaves "/services" of "/api/services" */
            n = clcf->name.len;

            if (n && clcf->name.data[n - 1] == '/') {
                n--;
            }

            rest.data = r->uri.data + n;
            rest.len = r->uri.len - n;
        }
    }

    if (rest.len == 0) {
        ngx_str_set(path, "/");
        return NGX_OK;
    }

    /* below the location, or a sibling ("/apix" of "location /api"): 404 */
    *path = rest;

    return NGX_OK;
}


static ngx_table_elt_t *
ngx_http_discovery_api_header(ngx_http_request_t *r, const char *name,
    size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


/*
 * Each worker looks for expired overrides every second; the first to see
 * one removes it, and its publisher makes the next table without it.
 */

void
ngx_http_discovery_api_init_worker(ngx_cycle_t *cycle,
    ngx_http_discovery_main_conf_t *dmcf)
{
    ngx_http_discovery_expiry_dmcf = dmcf;
    ngx_http_discovery_expiry_dumb.fd = (ngx_socket_t) -1;

    ngx_http_discovery_expiry.handler = ngx_http_discovery_api_expire;
    ngx_http_discovery_expiry.data = &ngx_http_discovery_expiry_dumb;
    ngx_http_discovery_expiry.log = cycle->log;
    ngx_http_discovery_expiry.cancelable = 1;

    ngx_add_timer(&ngx_http_discovery_expiry,
                  NGX_HTTP_DISCOVERY_EXPIRY_CHECK);
}


void
ngx_http_discovery_api_exit_worker(ngx_cycle_t *cycle)
{
    if (ngx_http_discovery_expiry.timer_set) {
        ngx_del_timer(&ngx_http_discovery_expiry);
    }
}


static void
ngx_http_discovery_api_expire(ngx_event_t *ev)
{
    int                              rc;
    u_char                          *p;
    int64_t                          next;
    time_t                           expiry;
    discovery_buf_t                  out;
    discovery_error_t                err;
    ngx_http_discovery_shctx_t      *sh;
    ngx_http_discovery_main_conf_t  *dmcf;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_add_timer(ev, NGX_HTTP_DISCOVERY_EXPIRY_CHECK);

    dmcf = ngx_http_discovery_expiry_dmcf;
    sh = dmcf->sh;

    /* read without the lock: most of the time there is none */
    expiry = sh->controls_expiry;

    if (expiry == 0 || expiry > ngx_time()) {
        return;
    }

    rc = DISCOVERY_UNCHANGED;
    out.data = NULL;

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    if (sh->controls && sh->controls_expiry
        && sh->controls_expiry <= ngx_time())
    {
        rc = discovery_controls_expire(sh->controls, sh->controls_len,
                                       ngx_time(), &out, &next, &err);

        if (rc == DISCOVERY_OK) {
            p = ngx_slab_alloc_locked(dmcf->shpool, out.len ? out.len : 1);

            if (p) {
                ngx_memcpy(p, out.data, out.len);
                ngx_slab_free_locked(dmcf->shpool, sh->controls);
                sh->controls = p;
                sh->controls_len = out.len;
                sh->controls_expiry = (time_t) next;
                sh->controls_version++;

            } else {
                rc = DISCOVERY_NOMEM;
            }

        } else if (rc == DISCOVERY_UNCHANGED) {
            sh->controls_expiry = (time_t) next;
        }
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    discovery_buf_free(&out);

    if (rc == DISCOVERY_OK) {
        ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                      "discovery: an override expired");
        ngx_http_discovery_publish_controls();

    } else if (rc != DISCOVERY_UNCHANGED) {
        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "discovery: expired overrides not removed: %s",
                      rc == DISCOVERY_NOMEM ? "the zone is full" : err.text);
    }
}


/*
 * A zone set up afresh (a start, not a reload) takes its controls from
 * the table it starts with: the state file's, which kept them.
 */

void
ngx_http_discovery_controls_restore_locked(
    ngx_http_discovery_main_conf_t *dmcf, discovery_buf_t *table,
    ngx_log_t *log)
{
    u_char                      *p;
    int64_t                      next;
    discovery_buf_t              out;
    discovery_error_t            err;
    ngx_http_discovery_shctx_t  *sh;

    sh = dmcf->sh;

    if (sh->controls || sh->controls_version) {
        return;
    }

    out.data = NULL;

    if (discovery_snapshot_controls(table->data, table->len, &out, &next,
                                    &err)
        != DISCOVERY_OK)
    {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "discovery: the table's overrides not restored: %s",
                      err.text);
        return;
    }

    if (out.len) {
        p = ngx_slab_alloc_locked(dmcf->shpool, out.len);

        if (p) {
            ngx_memcpy(p, out.data, out.len);
            sh->controls = p;
            sh->controls_len = out.len;
            sh->controls_expiry = (time_t) next;
            sh->controls_version = 1;

            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "discovery: overrides restored from the table");
        }
    }

    discovery_buf_free(&out);
}
