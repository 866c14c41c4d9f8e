
/*
 * Publishing: what polls change is gathered for a moment and applied to
 * the zone's table in one new snapshot, which replaces the old one (in
 * its place when the zone has no room for both) and goes to the state
 * file.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_discovery.h"


/* how long the polls that change the table gather before it is published */
#define NGX_HTTP_DISCOVERY_PUBLISH_DELAY  50


/* what a poll of a service changed, waiting for the next publication */
typedef struct {
    ngx_http_discovery_service_t  *service;
    unsigned                       pending:1;
    discovery_buf_t                routes;       /* data NULL: as before */
    uint64_t                       hash;
    size_t                         etag_len;
    u_char                         etag[NGX_HTTP_DISCOVERY_ETAG_LEN];
} ngx_http_discovery_change_t;


/* one per worker: what its own polls changed */
typedef struct {
    ngx_http_discovery_main_conf_t  *dmcf;
    ngx_http_discovery_change_t     *changes;    /* by service index */
    ngx_event_t                      event;      /* set: changes pending */
    ngx_log_t                       *log;
} ngx_http_discovery_publisher_t;


static void ngx_http_discovery_publish_handler(ngx_event_t *ev);
static void ngx_http_discovery_publish_pending(
    ngx_http_discovery_publisher_t *pub);
static int ngx_http_discovery_apply_locked(
    ngx_http_discovery_publisher_t *pub, discovery_poll_t *polls,
    ngx_http_discovery_record_t **recs, ngx_http_discovery_change_t **pending,
    ngx_uint_t n, discovery_buf_t *out, ngx_atomic_uint_t *generation);
static ngx_atomic_uint_t ngx_http_discovery_publish_locked(
    ngx_http_discovery_main_conf_t *dmcf, discovery_buf_t *snapshot,
    ngx_log_t *log, ngx_uint_t alert);
static void ngx_http_discovery_published(ngx_http_discovery_main_conf_t *dmcf,
    discovery_buf_t *snapshot, ngx_atomic_uint_t generation, ngx_log_t *log);


static ngx_http_discovery_publisher_t  ngx_http_discovery_publisher;

/* the publish timer's ev->data, as nginx's own timers without a connection */
static ngx_connection_t  ngx_http_discovery_publish_dumb;


ngx_int_t
ngx_http_discovery_publish_init_worker(ngx_cycle_t *cycle,
    ngx_http_discovery_main_conf_t *dmcf)
{
    ngx_uint_t                       i;
    ngx_http_discovery_service_t    *service;
    ngx_http_discovery_publisher_t  *pub;

    pub = &ngx_http_discovery_publisher;

    pub->changes = ngx_pcalloc(cycle->pool,
                               dmcf->services.nelts
                               * sizeof(ngx_http_discovery_change_t));
    if (pub->changes == NULL) {
        return NGX_ERROR;
    }

    service = dmcf->services.elts;

    for (i = 0; i < dmcf->services.nelts; i++) {
        pub->changes[i].service = &service[i];
    }

    pub->dmcf = dmcf;
    pub->log = cycle->log;

    ngx_http_discovery_publish_dumb.fd = (ngx_socket_t) -1;

    pub->event.handler = ngx_http_discovery_publish_handler;
    pub->event.data = &ngx_http_discovery_publish_dumb;
    pub->event.log = cycle->log;
    pub->event.cancelable = 1;

    return NGX_OK;
}


/* a worker that exits publishes what it has pending first */

void
ngx_http_discovery_publish_exit_worker(ngx_cycle_t *cycle)
{
    ngx_http_discovery_publisher_t  *pub;

    pub = &ngx_http_discovery_publisher;

    if (pub->changes == NULL) {
        return;
    }

    ngx_http_discovery_publish_pending(pub);
}


/*
 * Keeps what a poll changed for a publication shortly after, which covers
 * every poll that finishes meanwhile: when many services turn healthy at
 * once (at start, for one), one publication per poll would encode the
 * whole table for each, and make each worker rebuild its router for each.
 * The routes are taken from the outcome.
 */

void
ngx_http_discovery_defer(ngx_http_discovery_service_t *service,
    ngx_http_discovery_outcome_t *outcome, uint64_t hash)
{
    ngx_http_discovery_change_t     *change;
    ngx_http_discovery_publisher_t  *pub;

    pub = &ngx_http_discovery_publisher;
    change = &pub->changes[service->index];

    if (outcome->routes) {
        discovery_buf_free(&change->routes);

        change->routes = *outcome->routes;
        outcome->routes->data = NULL;
        outcome->routes->len = 0;

        change->hash = hash;
        change->etag_len = (outcome->etag.len <= NGX_HTTP_DISCOVERY_ETAG_LEN)
                           ? outcome->etag.len : 0;
        ngx_memcpy(change->etag, outcome->etag.data, change->etag_len);
    }

    /* a state change alone keeps routes an earlier poll left pending */
    change->pending = 1;

    if (!pub->event.timer_set) {
        ngx_add_timer(&pub->event, NGX_HTTP_DISCOVERY_PUBLISH_DELAY);
    }
}


/* a poll found the routes published: those an earlier one left are stale */

void
ngx_http_discovery_defer_drop_routes(ngx_http_discovery_service_t *service)
{
    ngx_http_discovery_change_t  *change;

    change = &ngx_http_discovery_publisher.changes[service->index];

    discovery_buf_free(&change->routes);
}


static void
ngx_http_discovery_publish_handler(ngx_event_t *ev)
{
    ngx_http_discovery_publish_pending(
        ngx_http_discovery_event_owner(ev, ngx_http_discovery_publisher_t,
                                       event));
}


/*
 * One new table for every pending poll, in the state each service's record
 * has now.  If it does not fit in the zone, the polls are applied one at a
 * time, as they would be alone: a service's table that fits is not held
 * back by another's that does not.
 */

static void
ngx_http_discovery_publish_pending(ngx_http_discovery_publisher_t *pub)
{
    int                              rc;
    ngx_log_t                       *log;
    ngx_uint_t                       i, n, nelts;
    discovery_buf_t                  out;
    discovery_poll_t                *polls;
    ngx_atomic_uint_t                generation;
    ngx_http_discovery_shctx_t      *sh;
    ngx_http_discovery_record_t     *rec, **recs;
    ngx_http_discovery_change_t     *change, **pending;
    ngx_http_discovery_service_t    *service;
    ngx_http_discovery_main_conf_t  *dmcf;

    if (pub->event.timer_set) {
        ngx_del_timer(&pub->event);
    }

    dmcf = pub->dmcf;
    sh = dmcf->sh;
    log = pub->log;
    change = pub->changes;
    nelts = dmcf->services.nelts;

    n = 0;
    for (i = 0; i < nelts; i++) {
        n += change[i].pending;
    }

    if (n == 0) {
        return;
    }

    polls = ngx_alloc(n * (sizeof(discovery_poll_t)
                           + sizeof(ngx_http_discovery_record_t *)
                           + sizeof(ngx_http_discovery_change_t *)),
                      log);

    if (polls == NULL) {
        /* nothing is recorded as published: the next polls fetch again */
        for (i = 0; i < nelts; i++) {
            change[i].pending = 0;
            discovery_buf_free(&change[i].routes);
        }

        return;
    }

    recs = (ngx_http_discovery_record_t **) &polls[n];
    pending = (ngx_http_discovery_change_t **) &recs[n];

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    n = 0;

    for (i = 0; i < nelts; i++) {
        if (!change[i].pending) {
            continue;
        }

        service = change[i].service;
        rec = ngx_http_discovery_record_of(sh, service);

        if (rec == NULL) {
            /* the service was changed by a reload meanwhile */
            change[i].pending = 0;
            discovery_buf_free(&change[i].routes);
            continue;
        }

        polls[n].name = (const char *) service->name.data;
        polls[n].name_len = service->name.len;
        polls[n].url = (const char *) service->url.data;
        polls[n].url_len = service->url.len;
        polls[n].state = rec->health.state;
        polls[n].routes = change[i].routes.data;
        polls[n].routes_len = change[i].routes.len;

        recs[n] = rec;
        pending[n] = &change[i];
        n++;
    }

    rc = ngx_http_discovery_apply_locked(pub, polls, recs, pending, n, &out,
                                         &generation);

    if (rc == NGX_DECLINED) {
        rc = DISCOVERY_UNCHANGED;

        for (i = 0; i < n; i++) {
            discovery_buf_t    one;
            ngx_atomic_uint_t  g;

            if (ngx_http_discovery_apply_locked(pub, &polls[i], &recs[i],
                                                &pending[i], 1, &one, &g)
                != DISCOVERY_OK)
            {
                continue;
            }

            if (g == 0) {
                discovery_buf_free(&one);
                continue;
            }

            /* the last table published is the one to save */
            if (rc == DISCOVERY_OK) {
                discovery_buf_free(&out);
            }

            out = one;
            generation = g;
            rc = DISCOVERY_OK;
        }
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    if (rc == DISCOVERY_OK) {
        ngx_http_discovery_published(dmcf, &out, generation, log);
    }

    for (i = 0; i < n; i++) {
        pending[i]->pending = 0;
        discovery_buf_free(&pending[i]->routes);
    }

    ngx_free(polls);
}


/*
 * Applies n polls to the zone's table and publishes the result.  Records
 * the route hash and tag of each poll whose routes are now published, and
 * forgets the tag of each whose routes are not.  NGX_DECLINED: the table
 * of several polls did not fit, nothing was recorded or said.
 */

static int
ngx_http_discovery_apply_locked(ngx_http_discovery_publisher_t *pub,
    discovery_poll_t *polls, ngx_http_discovery_record_t **recs,
    ngx_http_discovery_change_t **pending, ngx_uint_t n,
    discovery_buf_t *out, ngx_atomic_uint_t *generation)
{
    int                              rc;
    ngx_log_t                       *log;
    ngx_uint_t                       i;
    discovery_log_t                  dlog;
    discovery_error_t                err;
    ngx_http_discovery_shctx_t      *sh;
    ngx_http_discovery_change_t     *change;
    ngx_http_discovery_log_ctx_t     lctx;
    ngx_http_discovery_main_conf_t  *dmcf;

    dmcf = pub->dmcf;
    sh = dmcf->sh;
    log = pub->log;

    /* the core's messages name the service when there is only one */
    lctx.log = log;
    lctx.service = (n == 1) ? &pending[0]->service->name : NULL;
    dlog.handler = ngx_http_discovery_log_handler;
    dlog.data = &lctx;

    rc = discovery_snapshot_apply_polls(sh->snapshot, sh->snapshot_len,
                                        polls, n, sh->generation + 1, out,
                                        &dlog, &err);

    *generation = 0;

    if (rc == DISCOVERY_OK) {
        *generation = ngx_http_discovery_publish_locked(dmcf, out, log,
                                                        n == 1);

        if (*generation == 0 && n > 1) {
            discovery_buf_free(out);
            return NGX_DECLINED;
        }
    }

    for (i = 0; i < n; i++) {
        change = pending[i];

        if (change->routes.data == NULL) {
            continue;
        }

        if (*generation || rc == DISCOVERY_UNCHANGED) {
            recs[i]->routes_hash = change->hash;
            recs[i]->etag_len = change->etag_len;
            ngx_memcpy(recs[i]->etag, change->etag, change->etag_len);

        } else {
            recs[i]->etag_len = 0;
        }
    }

    if (rc != DISCOVERY_OK && rc != DISCOVERY_UNCHANGED) {
        if (n == 1) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "discovery: service \"%V\": table not updated: %s",
                          &pending[0]->service->name, err.text);

        } else {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "discovery: the polls of %ui services: "
                          "table not updated: %s", n, err.text);
        }
    }

    return rc;
}


/*
 * Replaces the zone's snapshot and returns its generation.  If the new one
 * does not fit, the old one stays and 0 is returned; with `alert`, an
 * alert says so once per size tried and the status page tells why.
 */

static ngx_atomic_uint_t
ngx_http_discovery_publish_locked(ngx_http_discovery_main_conf_t *dmcf,
    discovery_buf_t *snapshot, ngx_log_t *log, ngx_uint_t alert)
{
    u_char                      *p;
    size_t                       size;
    ngx_http_discovery_shctx_t  *sh;

    sh = dmcf->sh;

    p = ngx_http_discovery_table_alloc_locked(dmcf, snapshot->len, &size);

    if (p == NULL) {
        if (alert && sh->failed_len != snapshot->len) {
            sh->failed_len = snapshot->len;
            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "discovery zone \"%V\" of %uz bytes is full: "
                          "a table of %uz bytes was not published, "
                          "the previous one stays",
                          &dmcf->shm_zone->shm.name, dmcf->shm_zone->shm.size,
                          snapshot->len);
        }

        return 0;
    }

    sh->failed_len = 0;

    return ngx_http_discovery_table_install_locked(dmcf, p, size, snapshot);
}


/*
 * Room for a table of len bytes: a block of its own if the zone has room,
 * else the place of the current table if it is large enough.  That place
 * is overwritten only when the new table is installed, and every reader
 * copies the table under the lock: a table too large for two copies can
 * still be replaced (on reload, say, with the configuration unchanged).
 * The slab allocator gives whole pages to anything over half a page:
 * asking for all of them costs nothing, and a slightly longer table then
 * still fits in place.  *size receives the size of the block.
 */

u_char *
ngx_http_discovery_table_alloc_locked(ngx_http_discovery_main_conf_t *dmcf,
    size_t len, size_t *size)
{
    u_char                      *p;
    ngx_http_discovery_shctx_t  *sh;

    sh = dmcf->sh;

    *size = (len > ngx_pagesize / 2) ? ngx_align(len, ngx_pagesize) : len;

    p = ngx_slab_alloc_locked(dmcf->shpool, *size);
    if (p) {
        return p;
    }

    if (sh->snapshot && len <= sh->snapshot_size) {
        *size = sh->snapshot_size;
        return sh->snapshot;
    }

    return NULL;
}


/* publishes the table, copied to p from table_alloc_locked(): its generation */

ngx_atomic_uint_t
ngx_http_discovery_table_install_locked(ngx_http_discovery_main_conf_t *dmcf,
    u_char *p, size_t size, discovery_buf_t *table)
{
    ngx_http_discovery_shctx_t  *sh;

    sh = dmcf->sh;

    if (p != sh->snapshot) {
        if (sh->snapshot) {
            ngx_slab_free_locked(dmcf->shpool, sh->snapshot);
        }

        sh->snapshot = p;
        sh->snapshot_size = size;
    }

    ngx_memcpy(p, table->data, table->len);
    sh->snapshot_len = table->len;

    /* workers read the generation without the lock */
    ngx_memory_barrier();
    sh->generation++;

    return sh->generation;
}


/*
 * After the lock is released: what follows a worker's publication.  Its
 * table goes to the state file.  If a newer one was published meanwhile
 * and the file does not hold it yet, that one is written too: the master,
 * which publishes on reloads, never writes the file itself.
 */

static void
ngx_http_discovery_published(ngx_http_discovery_main_conf_t *dmcf,
    discovery_buf_t *snapshot, ngx_atomic_uint_t generation, ngx_log_t *log)
{
    if (generation && dmcf->state.len) {
        ngx_http_discovery_state_save(dmcf, snapshot, generation, log);
        ngx_http_discovery_state_sync(dmcf, log);
    }

    discovery_buf_free(snapshot);
}
