
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

#if (NGX_THREADS && NGX_LINUX)
#include <malloc.h>
#endif



/*
 * Publications start at most this often, in milliseconds: a change after a
 * quiet moment is published at once, and the polls that change the table
 * meanwhile gather for the next one.
 */
#define NGX_HTTP_DISCOVERY_PUBLISH_DELAY  50

/* how often a publication is worked out again on a table newer than its own */
#define NGX_HTTP_DISCOVERY_PUBLISH_TRIES  8

/* what the core may say about one publication, at most */
#define NGX_HTTP_DISCOVERY_SAID_MAX       (64 * 1024)


/* what a poll of a service changed, waiting for the next publication */
typedef struct {
    ngx_http_discovery_service_t  *service;
    unsigned                       pending:1;
    discovery_buf_t                routes;       /* data NULL: as before */
    uint64_t                       poll;         /* the poll they came from */
    uint64_t                       hash;
    size_t                         etag_len;
    u_char                         etag[NGX_HTTP_DISCOVERY_ETAG_LEN];
} ngx_http_discovery_change_t;


typedef struct ngx_http_discovery_publication_s
    ngx_http_discovery_publication_t;


/* one per worker: what its own polls changed, and what it publishes */
typedef struct {
    ngx_http_discovery_main_conf_t    *dmcf;
    ngx_http_discovery_change_t       *changes;  /* by service index */
    ngx_event_t                        event;    /* set: changes pending */
    ngx_log_t                         *log;

    /* publications in order; the first one runs */
    ngx_http_discovery_publication_t  *queue;
    ngx_http_discovery_publication_t **last;
    unsigned                           running:1;
    unsigned                           exiting:1;
    unsigned                           controls:1; /* the API wrote them */
    ngx_msec_t                         started;  /* the last publication */

#if (NGX_THREADS && NGX_LINUX)
    /* memory freed since the last trim, and a trim in a thread */
    unsigned                           untrimmed:1;
    unsigned                           trimming:1;
    ngx_http_discovery_task_t          trim;
#endif
} ngx_http_discovery_publisher_t;


/*
 * Changes taken over from the publisher, applied to a copy of the zone's
 * table off the event loop; the new table replaces the zone's if that is
 * still the one it was made from.
 */
struct ngx_http_discovery_publication_s {
    ngx_http_discovery_publication_t  *next;
    ngx_http_discovery_publisher_t    *pub;
    ngx_uint_t                         n;
    ngx_http_discovery_change_t       *changes;  /* n; their routes owned */
    discovery_poll_t                  *polls;    /* n */
    ngx_uint_t                         tries;
    unsigned                           controls:1; /* only them, maybe */
    unsigned                           no_controls:1; /* not copied */

    /* the zone's controls, copied with the table, for it to carry */
    discovery_buf_t                    zcontrols;

    u_char                            *base;     /* a copy of the table */
    size_t                             base_len;
    ngx_atomic_uint_t                  base_generation;

    /* the table's image, read where it lies while a reader slot holds it */
    ngx_http_discovery_image_t        *base_image;
    ngx_http_discovery_reader_t       *base_reader;

    /* written by work(), in a thread */
    int                                rc;
    discovery_buf_t                    out;
    u_char                            *ztable;   /* out's copy in the zone */
    size_t                             ztable_size;
    discovery_image_t                 *image;    /* out's router, laid out */
    discovery_table_t                 *decoded;  /* out, for the metrics */
    size_t                             image_len;
    ngx_http_discovery_image_t        *zimage;   /* written in the zone */
    discovery_metrics_assigned_t       assigned; /* shown once installed */
    unsigned                           image_failed:1;
    unsigned                           declined:1;  /* nothing to do */
    discovery_error_t                  err;
    u_char                            *said;     /* the core's messages */
    size_t                             said_len;
    size_t                             said_size;
    ngx_uint_t                         said_lost;

#if (NGX_THREADS)
    ngx_http_discovery_task_t          task;
#endif
};


static void ngx_http_discovery_publish_soon(
    ngx_http_discovery_publisher_t *pub);
static void ngx_http_discovery_publish_handler(ngx_event_t *ev);
static void ngx_http_discovery_publish_pending(
    ngx_http_discovery_publisher_t *pub);
static ngx_http_discovery_publication_t *ngx_http_discovery_publication(
    ngx_http_discovery_publisher_t *pub, ngx_uint_t n);
static void ngx_http_discovery_publish_next(
    ngx_http_discovery_publisher_t *pub);
static ngx_uint_t ngx_http_discovery_publish_take(
    ngx_http_discovery_publisher_t *pub);
static ngx_uint_t ngx_http_discovery_publication_stale_locked(
    ngx_http_discovery_publication_t *p);
static ngx_int_t ngx_http_discovery_publication_base(
    ngx_http_discovery_publication_t *p);
static void ngx_http_discovery_publication_work(void *data, ngx_log_t *log);
static void ngx_http_discovery_publication_release_image(
    ngx_http_discovery_publication_t *p);
static uint64_t ngx_http_discovery_thread_usec(void);
static void ngx_http_discovery_publication_controls(
    ngx_http_discovery_publication_t *p);
#if (NGX_THREADS && NGX_LINUX)
static void ngx_http_discovery_publish_trim(
    ngx_http_discovery_publisher_t *pub);
static void ngx_http_discovery_publish_trim_handler(void *data,
    ngx_log_t *log);
static void ngx_http_discovery_publish_trimmed(ngx_event_t *ev);
#endif
static void ngx_http_discovery_publication_settle(
    ngx_http_discovery_publication_t *p);
static void ngx_http_discovery_publication_said(void *data, int level,
    const char *msg, size_t len);
#if (NGX_THREADS)
static void ngx_http_discovery_publication_applied(ngx_event_t *ev);
#endif
static void ngx_http_discovery_publication_install(
    ngx_http_discovery_publication_t *p);
static void ngx_http_discovery_publication_log(
    ngx_http_discovery_publication_t *p);
static void ngx_http_discovery_publication_forget(
    ngx_http_discovery_publication_t *p);
static void ngx_http_discovery_publication_done(
    ngx_http_discovery_publication_t *p);
static void ngx_http_discovery_publication_pop(
    ngx_http_discovery_publisher_t *pub);
static void ngx_http_discovery_publication_free(
    ngx_http_discovery_publication_t *p);
static ngx_atomic_uint_t ngx_http_discovery_publish_locked(
    ngx_http_discovery_main_conf_t *dmcf, discovery_buf_t *snapshot,
    ngx_http_discovery_image_t *image, ngx_log_t *log, ngx_uint_t alert);
static void ngx_http_discovery_publication_zone_copies(
    ngx_http_discovery_publication_t *p);
static size_t ngx_http_discovery_table_size(size_t len);
static void ngx_http_discovery_taken_locked(
    ngx_http_discovery_main_conf_t *dmcf, u_char *table,
    ngx_http_discovery_image_t *image);
static void ngx_http_discovery_taken_reclaim_locked(
    ngx_http_discovery_main_conf_t *dmcf);
static ngx_uint_t ngx_http_discovery_image_read_locked(
    ngx_http_discovery_shctx_t *sh, ngx_atomic_uint_t generation);


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
    pub->queue = NULL;
    pub->last = &pub->queue;
    pub->started = ngx_current_msec - NGX_HTTP_DISCOVERY_PUBLISH_DELAY;
    ngx_http_discovery_publish_dumb.fd = (ngx_socket_t) -1;

    pub->event.handler = ngx_http_discovery_publish_handler;
    pub->event.data = &ngx_http_discovery_publish_dumb;
    pub->event.log = cycle->log;
    pub->event.cancelable = 1;

    return NGX_OK;
}


/*
 * A worker that exits publishes what it has pending first, on its own
 * event loop, once the publication running in a background thread, if
 * any, is over (the threads end after this).
 */

void
ngx_http_discovery_publish_exit_worker(ngx_cycle_t *cycle)
{
    ngx_http_discovery_publisher_t  *pub;

    pub = &ngx_http_discovery_publisher;

    if (pub->changes == NULL) {
        return;
    }

    pub->exiting = 1;

#if (NGX_THREADS && NGX_LINUX)
    if (pub->trimming) {
        ngx_http_discovery_task_wait(&pub->trim.finished);
        pub->trimming = 0;
    }
#endif

    if (pub->running) {
        /* the background thread's last write to it is task.finished */
        ngx_http_discovery_task_wait(&pub->queue->task.finished);
        ngx_http_discovery_publication_settle(pub->queue);
    }

    ngx_http_discovery_publish_pending(pub);
}


/*
 * Much memory was freed on the event loop outside a publication (a status
 * page of a large table decodes it and renders megabytes): it goes back
 * to the system as the publications' does, once nothing is published.
 * Without it an idle worker kept about 20 MB after one status page of
 * 100,000 routes, for good.
 */

void
ngx_http_discovery_publish_freed(void)
{
#if (NGX_THREADS && NGX_LINUX)
    ngx_http_discovery_publisher_t  *pub;

    pub = &ngx_http_discovery_publisher;

    if (pub->changes == NULL) {
        return;
    }

    pub->untrimmed = 1;

    if (!pub->running && pub->queue == NULL) {
        ngx_http_discovery_publish_trim(pub);
    }
#endif
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
    ngx_http_discovery_outcome_t *outcome, uint64_t hash, uint64_t poll)
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
        change->poll = poll;
        change->etag_len = (outcome->etag.len <= NGX_HTTP_DISCOVERY_ETAG_LEN)
                           ? outcome->etag.len : 0;
        ngx_memcpy(change->etag, outcome->etag.data, change->etag_len);
    }

    /* a state change alone keeps routes an earlier poll left pending */
    change->pending = 1;

    ngx_http_discovery_publish_soon(pub);
}


/*
 * The management API changed the zone's controls: a publication puts
 * them into the table, as soon as the polls would be.
 */

void
ngx_http_discovery_publish_controls(void)
{
    ngx_http_discovery_publisher_t  *pub;

    pub = &ngx_http_discovery_publisher;

    if (pub->changes == NULL) {
        return;
    }

    pub->controls = 1;

    ngx_http_discovery_publish_soon(pub);
}


/* a poll found the routes published: those an earlier one left are stale */

void
ngx_http_discovery_defer_drop_routes(ngx_http_discovery_service_t *service)
{
    ngx_http_discovery_change_t  *change;

    change = &ngx_http_discovery_publisher.changes[service->index];

    discovery_buf_free(&change->routes);
}


/*
 * The next publication: at once (in this turn of the event loop's
 * timers, so that what else this turn changes goes with it) when none
 * started within PUBLISH_DELAY, else when that has passed since the last.
 */

static void
ngx_http_discovery_publish_soon(ngx_http_discovery_publisher_t *pub)
{
    ngx_msec_int_t  wait;

    if (pub->event.timer_set) {
        return;
    }

    wait = (ngx_msec_int_t) (pub->started + NGX_HTTP_DISCOVERY_PUBLISH_DELAY
                             - ngx_current_msec);

    ngx_add_timer(&pub->event, (wait > 0) ? (ngx_msec_t) wait : 0);
}


static void
ngx_http_discovery_publish_handler(ngx_event_t *ev)
{
    ngx_http_discovery_publish_pending(
        ngx_http_discovery_event_owner(ev, ngx_http_discovery_publisher_t,
                                       event));
}


static void
ngx_http_discovery_publish_pending(ngx_http_discovery_publisher_t *pub)
{
    if (pub->event.timer_set) {
        ngx_del_timer(&pub->event);
    }

    ngx_http_discovery_publish_next(pub);
}


/*
 * Takes every pending change over into a new publication, the only one in
 * the queue: while a publication runs, changes stay pending, where a newer
 * poll of a service replaces an older one's.  0: nothing to publish.
 */

static ngx_uint_t
ngx_http_discovery_publish_take(ngx_http_discovery_publisher_t *pub)
{
    ngx_uint_t                        i, n, nelts;
    ngx_http_discovery_change_t      *change;
    ngx_http_discovery_publication_t *p;

    change = pub->changes;
    nelts = pub->dmcf->services.nelts;

    n = 0;
    for (i = 0; i < nelts; i++) {
        n += change[i].pending;
    }

    if (n == 0 && !pub->controls) {
        return 0;
    }

    p = ngx_http_discovery_publication(pub, n);

    if (p == NULL) {
        pub->controls = 0;

        /* nothing is recorded as published: the next polls fetch again */
        for (i = 0; i < nelts; i++) {
            change[i].pending = 0;
            discovery_buf_free(&change[i].routes);
        }

        return 0;
    }

    p->controls = pub->controls;
    pub->controls = 0;

    n = 0;

    for (i = 0; i < nelts; i++) {
        if (!change[i].pending) {
            continue;
        }

        /* the routes move with the change */
        p->changes[n++] = change[i];
        change[i].pending = 0;
        change[i].routes.data = NULL;
        change[i].routes.len = 0;
    }

    pub->queue = p;
    pub->last = &p->next;

    return 1;
}


static ngx_http_discovery_publication_t *
ngx_http_discovery_publication(ngx_http_discovery_publisher_t *pub,
    ngx_uint_t n)
{
    ngx_http_discovery_publication_t  *p;

    p = ngx_calloc(sizeof(ngx_http_discovery_publication_t)
                   + n * (sizeof(ngx_http_discovery_change_t)
                          + sizeof(discovery_poll_t)),
                   pub->log);
    if (p == NULL) {
        return NULL;
    }

    p->pub = pub;
    p->n = n;
    p->changes = (ngx_http_discovery_change_t *) &p[1];
    p->polls = (discovery_poll_t *) &p->changes[n];

    return p;
}


/*
 * Starts the publication at the head of the queue, unless one is running:
 * its table is worked out in a background thread, or at once where there
 * is none (nginx built without threads, or a worker exiting).
 */

static void
ngx_http_discovery_publish_next(ngx_http_discovery_publisher_t *pub)
{
    ngx_http_discovery_publication_t  *p;

    for ( ;; ) {
        if (pub->running) {
            return;
        }

        if (pub->queue == NULL && !ngx_http_discovery_publish_take(pub)) {
#if (NGX_THREADS && NGX_LINUX)
            ngx_http_discovery_publish_trim(pub);
#endif
            return;
        }

        p = pub->queue;
        pub->running = 1;
        pub->started = ngx_current_msec;

#if (NGX_THREADS)
        if (!ngx_exiting && !pub->exiting) {
            p->rc = DISCOVERY_ERROR;

            if (ngx_http_discovery_task_post(&p->task, p,
                                      ngx_http_discovery_publication_work,
                                      ngx_http_discovery_publication_applied,
                                      pub->log)
                == NGX_OK)
            {
                return;
            }
        }
#endif

        ngx_http_discovery_publication_work(p, pub->log);
        ngx_http_discovery_publication_settle(p);
    }
}


/*
 * Under the lock (in a thread, or at exit on the event loop): the table
 * the publication applies to, copied, and the state of each service it
 * carries.  A change whose service a reload
 * removed meanwhile is dropped.  NGX_DECLINED: nothing is left to do.
 */

static ngx_int_t
ngx_http_discovery_publication_base(ngx_http_discovery_publication_t *p)
{
    size_t                           size;
    ngx_uint_t                       i, n;
    discovery_poll_t                *poll;
    ngx_http_discovery_shctx_t      *sh;
    ngx_http_discovery_record_t     *rec;
    ngx_http_discovery_change_t     *change;
    ngx_http_discovery_service_t    *service;
    ngx_http_discovery_main_conf_t  *dmcf;

    dmcf = p->pub->dmcf;
    sh = dmcf->sh;

    ngx_free(p->base);
    p->base = NULL;

    /* allocated before the lock; read without it, checked under it */
    size = sh->snapshot_len;

again:

    if (size) {
        p->base = ngx_alloc(size, p->pub->log);
        if (p->base == NULL) {
            ngx_http_discovery_publication_forget(p);
            return NGX_DECLINED;
        }
    }

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    if (sh->snapshot_len > size) {
        size = sh->snapshot_len;
        ngx_shmtx_unlock(&dmcf->shpool->mutex);
        ngx_free(p->base);
        p->base = NULL;
        goto again;
    }

    n = 0;

    for (i = 0; i < p->n; i++) {
        change = &p->changes[i];
        service = change->service;
        rec = ngx_http_discovery_record_of(sh, service);

        if (rec == NULL) {
            discovery_buf_free(&change->routes);
            continue;
        }

        if (change->routes.data && change->poll <= rec->published_poll) {
            /*
             * Another process published a later poll of the service (its
             * lease moved on): these routes are older than the table's.
             */
            discovery_buf_free(&change->routes);
        }

        p->changes[n] = *change;

        poll = &p->polls[n];
        poll->name = (const char *) service->name.data;
        poll->name_len = service->name.len;
        poll->url = (const char *) service->url.data;
        poll->url_len = service->url.len;
        poll->state = rec->health.state;
        poll->routes = p->changes[n].routes.data;
        poll->routes_len = p->changes[n].routes.len;

        n++;
    }

    p->n = n;

    /* the newest controls go with every publication: they are small */
    discovery_buf_free(&p->zcontrols);
    p->no_controls = 0;

    if (sh->controls) {
        p->zcontrols.data = ngx_alloc(sh->controls_len ? sh->controls_len : 1,
                                      p->pub->log);
        if (p->zcontrols.data) {
            p->zcontrols.len = sh->controls_len;
            ngx_memcpy(p->zcontrols.data, sh->controls, sh->controls_len);

        } else {
            /* not the table's without them: as they are, this time */
            p->no_controls = 1;
        }
    }

    if (p->controls) {
        n++;
    }

    if (n && sh->snapshot && p->base) {
        ngx_memcpy(p->base, sh->snapshot, sh->snapshot_len);
        p->base_len = sh->snapshot_len;

    } else {
        ngx_free(p->base);
        p->base = NULL;
    }

    p->base_generation = sh->generation;

    /*
     * The table's image, which the new one is made from: read outside the
     * lock, so held as a worker holds the image it reads, in a slot of
     * the zone's readers, until the new one is made.  An image is freed
     * only once no live process's slot names it.
     */
    p->base_image = NULL;
    p->base_reader = NULL;

    if (p->base && sh->image && sh->image->generation == sh->generation) {
        for (i = 0; i < NGX_HTTP_DISCOVERY_READERS; i++) {
            if (ngx_http_discovery_reader_free(&sh->readers[i])) {
                p->base_reader = &sh->readers[i];
                p->base_reader->pid = ngx_pid;
                p->base_reader->generation = sh->image->generation;
                p->base_image = sh->image;
                break;
            }
        }
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    if (n && p->base == NULL) {
        /* no table yet (the zone is being set up), or out of memory */
        ngx_http_discovery_publication_forget(p);
        return NGX_DECLINED;
    }

    return n ? NGX_OK : NGX_DECLINED;
}


/*
 * The whole table's work, in a thread: copying the zone's table, applying
 * the polls to it, and copying the new table and its router into blocks
 * of the zone that no one sees before install() publishes them.  Nothing
 * is shared but the zone, under its lock, and the configuration, which no
 * one changes.  What the core says is kept, and logged on the event loop.
 */

static void
ngx_http_discovery_publication_work(void *data, ngx_log_t *log)
{
    ngx_http_discovery_publication_t *p = data;

    u_char           line[256], *last;
    uint64_t         t[6];
    ngx_uint_t       i;
    discovery_log_t  dlog;

    t[0] = ngx_http_discovery_thread_usec();

    if (ngx_http_discovery_publication_base(p) != NGX_OK) {
        p->declined = 1;
        return;
    }

    t[1] = ngx_http_discovery_thread_usec();

    dlog.handler = ngx_http_discovery_publication_said;
    dlog.data = p;

    p->rc = DISCOVERY_UNCHANGED;

    if (p->n) {
        p->rc = discovery_snapshot_apply_polls(p->base, p->base_len, p->polls,
                                               p->n, p->base_generation + 1,
                                               &p->out, &p->image,
                                               p->base_image
                                               ? p->base_image->data : NULL,
                                               p->base_image
                                               ? p->base_image->len : 0,
                                               p->pub->dmcf->metrics
                                               ? &p->decoded : NULL,
                                               &dlog, &p->err);
    }

    if ((p->rc == DISCOVERY_OK || p->rc == DISCOVERY_UNCHANGED)
        && !p->no_controls)
    {
        ngx_http_discovery_publication_controls(p);
    }

    t[2] = ngx_http_discovery_thread_usec();
    t[3] = t[2];
    t[4] = t[2];

    if (p->rc == DISCOVERY_OK) {
        /* the new routes count from the table's first request on */
        discovery_metrics_assigned_free(&p->assigned);
        ngx_http_discovery_metrics_assign(p->pub->dmcf, p->out.data,
                                          p->out.len, p->decoded,
                                          &p->assigned, log);

        /* the table as decoded: not needed past the metrics */
        discovery_table_free(p->decoded);
        p->decoded = NULL;
        t[3] = ngx_http_discovery_thread_usec();

        ngx_http_discovery_publication_zone_copies(p);
        t[4] = ngx_http_discovery_thread_usec();
    }

    /* a patched image read the old one until written in the zone */
    ngx_http_discovery_publication_release_image(p);

#if (NGX_THREADS && NGX_LINUX)
    /* what the table's decoding took goes back to the system */
    (void) malloc_trim(0);
#endif

    if (p->rc != DISCOVERY_OK) {
        return;
    }

    /*
     * What each stage took, at debug level: cheap, once per table.  The
     * core's own stages of the apply are on a line of their own.
     */
    t[5] = ngx_http_discovery_thread_usec();

    for (i = 5; i > 0; i--) {
        t[i] = t[i] >= t[i - 1] ? t[i] - t[i - 1] : 0;
    }

    last = ngx_snprintf(line, sizeof(line),
                        "table %uA published in ms of thread CPU: "
                        "copy out %uL.%uL, apply and router image %uL.%uL, "
                        "metrics %uL.%uL, table copied and image written "
                        "into the zone %uL.%uL, trim %uL.%uL",
                        p->base_generation + 1,
                        t[1] / 1000, t[1] % 1000 / 100,
                        t[2] / 1000, t[2] % 1000 / 100,
                        t[3] / 1000, t[3] % 1000 / 100,
                        t[4] / 1000, t[4] % 1000 / 100,
                        t[5] / 1000, t[5] % 1000 / 100);

    ngx_http_discovery_publication_said(p, DISCOVERY_LOG_DEBUG,
                                        (const char *) line, last - line);
}


/* gives back the slot that held the table's image while it was read */

static void
ngx_http_discovery_publication_release_image(
    ngx_http_discovery_publication_t *p)
{
    ngx_http_discovery_main_conf_t  *dmcf;

    if (p->base_reader == NULL) {
        return;
    }

    dmcf = p->pub->dmcf;

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    p->base_reader->pid = 0;
    p->base_reader->generation = 0;

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    p->base_reader = NULL;
    p->base_image = NULL;
}


/* the calling thread's CPU time: a publication's stages are timed by it */

static uint64_t
ngx_http_discovery_thread_usec(void)
{
    struct timespec  ts;

    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) {
        return 0;
    }

    return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


/*
 * The table with the zone's controls, if it does not carry them yet:
 * compared where they lie, at the table's end, which costs nothing when
 * they are the same (most publications).
 */

static void
ngx_http_discovery_publication_controls(ngx_http_discovery_publication_t *p)
{
    int                 rc;
    u_char             *table;
    size_t              len;
    discovery_buf_t     out, from;
    discovery_error_t   err;
    discovery_image_t  *image;

    table = (p->rc == DISCOVERY_OK) ? p->out.data : p->base;
    len = (p->rc == DISCOVERY_OK) ? p->out.len : p->base_len;

    /*
     * The image of that table, which the new one is made from: the zone's;
     * one the polls just laid out is not written yet, and the new image is
     * then built whole (the API and the polls in one publication, rare).
     */
    from.data = NULL;
    from.len = 0;

    if (p->rc != DISCOVERY_OK && p->base_image) {
        from.data = p->base_image->data;
        from.len = p->base_image->len;
    }

    rc = discovery_snapshot_set_controls(table, len, p->zcontrols.data,
                                         p->zcontrols.len,
                                         p->base_generation + 1, &out,
                                         &image, from.data, from.len, &err);

    if (rc == DISCOVERY_OK) {
        discovery_buf_free(&p->out);
        discovery_image_free(p->image);
        p->out = out;
        p->image = image;
        p->rc = DISCOVERY_OK;

    } else if (rc != DISCOVERY_UNCHANGED) {
        ngx_http_discovery_publication_said(p, DISCOVERY_LOG_ERR,
                                            err.text, ngx_strlen(err.text));
    }
}


/* keeps one message of the core, for publication_install() to log */

static void
ngx_http_discovery_publication_said(void *data, int level, const char *msg,
    size_t len)
{
    ngx_http_discovery_publication_t *p = data;

    u_char  *said;
    size_t   need, size;

    need = p->said_len + sizeof(int) + sizeof(size_t) + len;

    if (need > NGX_HTTP_DISCOVERY_SAID_MAX) {
        p->said_lost++;
        return;
    }

    if (need > p->said_size) {
        size = ngx_max(need, 2 * p->said_size);
        said = realloc(p->said, size);

        if (said == NULL) {
            p->said_lost++;
            return;
        }

        p->said = said;
        p->said_size = size;
    }

    said = p->said + p->said_len;
    ngx_memcpy(said, &level, sizeof(int));
    ngx_memcpy(said + sizeof(int), &len, sizeof(size_t));
    ngx_memcpy(said + sizeof(int) + sizeof(size_t), msg, len);
    p->said_len = need;
}


#if (NGX_THREADS)

static void
ngx_http_discovery_publication_applied(ngx_event_t *ev)
{
    ngx_http_discovery_publication_t  *p = ev->data;

    ngx_http_discovery_publisher_t  *pub;

    pub = p->pub;

    ngx_http_discovery_publication_settle(p);
    ngx_http_discovery_publish_next(pub);
}

#endif


/* on the event loop, once work() is done: frees p unless worked out again */

static void
ngx_http_discovery_publication_settle(ngx_http_discovery_publication_t *p)
{
    if (p->declined) {
        p->pub->running = 0;
        ngx_http_discovery_publication_done(p);
        return;
    }

    ngx_http_discovery_publication_install(p);
}


/*
 * On the event loop: installs the publication's table if it still
 * replaces the one it was made from, records the route hash and tag of
 * each change now published (and forgets the tag of each that is not, so
 * that its next poll fetches the document again), and hands the table to
 * the state file.  A table published meanwhile by another process means
 * the work is done again on that one; a table of several changes that
 * does not fit is tried again one change at a time, as each would be
 * alone: a service's table that fits is not held back by another's.
 */

static void
ngx_http_discovery_publication_install(ngx_http_discovery_publication_t *p)
{
    ngx_log_t                          *log;
    ngx_uint_t                          i, published;
    ngx_atomic_uint_t                   generation;
    ngx_http_discovery_shctx_t         *sh;
    ngx_http_discovery_record_t        *rec;
    ngx_http_discovery_change_t        *change;
    ngx_http_discovery_publisher_t     *pub;
    ngx_http_discovery_image_t         *image;
    ngx_http_discovery_main_conf_t     *dmcf;
    ngx_http_discovery_publication_t   *one, **last;
    u_char                             *table;

    pub = p->pub;
    dmcf = pub->dmcf;
    sh = dmcf->sh;
    log = pub->log;

    pub->running = 0;

    ngx_http_discovery_publication_log(p);

    generation = 0;

    image = p->zimage;
    p->zimage = NULL;
    table = p->ztable;
    p->ztable = NULL;

    if (p->image_failed) {
        ngx_http_discovery_image_no_room(dmcf, log, p->out.len, p->image_len);
    }

    p->image_failed = 0;
    discovery_image_free(p->image);
    p->image = NULL;

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    /* published or freed below, under this hold of the lock */
    ngx_http_discovery_taken_locked(dmcf, NULL, NULL);

    if (sh->generation != p->base_generation
        || ngx_http_discovery_publication_stale_locked(p))
    {
        if (image) {
            ngx_http_discovery_image_free_locked(dmcf, image);
        }

        if (table) {
            ngx_slab_free_locked(dmcf->shpool, table);
        }

        ngx_shmtx_unlock(&dmcf->shpool->mutex);

        discovery_buf_free(&p->out);

        /* an exiting worker leaves the work to the others */
        if (++p->tries < NGX_HTTP_DISCOVERY_PUBLISH_TRIES && !pub->exiting) {
            /* publish_next() starts it again, on the newer table */
            return;
        }

        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "discovery: the table changed %ui times while the "
                      "polls of %ui services were applied to it; their "
                      "services are polled again", p->tries, p->n);

        ngx_http_discovery_publication_forget(p);
        ngx_http_discovery_publication_done(p);
        return;
    }

    if (p->rc == DISCOVERY_OK && table) {
        /* copied in the thread: only pointers change under the lock */
        dmcf->sh->failed_len = 0;
        generation = ngx_http_discovery_table_install_locked(dmcf, table,
                                                      p->ztable_size,
                                                      p->out.len, image);

    } else if (p->rc == DISCOVERY_OK) {
        generation = ngx_http_discovery_publish_locked(dmcf, &p->out, image,
                                                       log, p->n == 1);

        if (generation == 0 && image) {
            ngx_http_discovery_image_free_locked(dmcf, image);
        }

        if (generation == 0 && p->n > 1) {
            ngx_shmtx_unlock(&dmcf->shpool->mutex);

            /* one publication per change, in the place of this one */
            ngx_http_discovery_publication_pop(pub);
            last = &pub->queue;

            for (i = 0; i < p->n; i++) {
                one = ngx_http_discovery_publication(pub, 1);

                if (one == NULL) {
                    /* what is left is polled again */
                    ngx_http_discovery_publication_forget(p);
                    break;
                }

                one->changes[0] = p->changes[i];
                p->changes[i].routes.data = NULL;
                p->changes[i].routes.len = 0;

                one->next = *last;
                *last = one;
                last = &one->next;

                if (one->next == NULL) {
                    pub->last = &one->next;
                }
            }

            ngx_http_discovery_publication_free(p);
            return;
        }
    }

    published = (generation || p->rc == DISCOVERY_UNCHANGED);

    if (generation) {
        ngx_http_discovery_metrics_installed_locked(dmcf, &p->assigned,
                                                    generation);
    }

    for (i = 0; i < p->n; i++) {
        change = &p->changes[i];

        rec = ngx_http_discovery_record_of(sh, change->service);
        if (rec == NULL) {
            continue;
        }

        if (published) {
            /* the state of its record when the publication began */
            rec->republish = 0;
        }

        if (change->routes.data == NULL) {
            continue;
        }

        if (published) {
            rec->routes_hash = change->hash;
            rec->published_poll = change->poll;
            rec->etag_len = change->etag_len;
            ngx_memcpy(rec->etag, change->etag, change->etag_len);

        } else {
            rec->etag_len = 0;
        }
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    if (p->rc != DISCOVERY_OK && p->rc != DISCOVERY_UNCHANGED) {
        /* a state change it carried must not be lost with it */
        ngx_http_discovery_publication_forget(p);

        if (p->n == 1) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "discovery: service \"%V\": table not updated: %s",
                          &p->changes[0].service->name, p->err.text);

        } else {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "discovery: the polls of %ui services: "
                          "table not updated: %s", p->n, p->err.text);
        }
    }

    if (generation && dmcf->state.len) {
        /* the state file takes the table over */
        ngx_http_discovery_state_publish(dmcf, &p->out, generation);
    }

    ngx_http_discovery_publication_done(p);
}


/*
 * Whether a later poll of one of the publication's services was published
 * meanwhile without a new table (its routes were those published already):
 * then these routes are older than the table's.
 */

static ngx_uint_t
ngx_http_discovery_publication_stale_locked(
    ngx_http_discovery_publication_t *p)
{
    ngx_uint_t                     i;
    ngx_http_discovery_record_t   *rec;
    ngx_http_discovery_change_t   *change;

    for (i = 0; i < p->n; i++) {
        change = &p->changes[i];

        if (change->routes.data == NULL) {
            continue;
        }

        rec = ngx_http_discovery_record_of(p->pub->dmcf->sh, change->service);

        if (rec && change->poll <= rec->published_poll) {
            return 1;
        }
    }

    return 0;
}


/* logs what the core said while it worked on the publication */

static void
ngx_http_discovery_publication_log(ngx_http_discovery_publication_t *p)
{
    int                            level;
    u_char                        *said, *end;
    size_t                         len;
    ngx_http_discovery_log_ctx_t   lctx;

    /* the core's messages name the service when there is only one */
    lctx.log = p->pub->log;
    lctx.service = (p->n == 1) ? &p->changes[0].service->name : NULL;

    said = p->said;
    end = said + p->said_len;

    while (said < end) {
        ngx_memcpy(&level, said, sizeof(int));
        ngx_memcpy(&len, said + sizeof(int), sizeof(size_t));
        said += sizeof(int) + sizeof(size_t);

        ngx_http_discovery_log_handler(&lctx, level, (const char *) said, len);
        said += len;
    }

    if (p->said_lost) {
        ngx_log_error(NGX_LOG_WARN, p->pub->log, 0,
                      "discovery: %ui more messages about the table not "
                      "logged", p->said_lost);
    }

    ngx_free(p->said);
    p->said = NULL;
    p->said_len = 0;
    p->said_size = 0;
    p->said_lost = 0;
}


/*
 * The publication's changes were not published: their records forget the
 * tag, so the next poll of each service fetches its document again.
 */

static void
ngx_http_discovery_publication_forget(ngx_http_discovery_publication_t *p)
{
    ngx_uint_t                       i;
    ngx_http_discovery_record_t     *rec;
    ngx_http_discovery_main_conf_t  *dmcf;

    dmcf = p->pub->dmcf;

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    for (i = 0; i < p->n; i++) {
        rec = ngx_http_discovery_record_of(dmcf->sh, p->changes[i].service);

        if (rec) {
            /* its next poll publishes its state, and routes, again */
            rec->etag_len = 0;
            rec->routes_hash = 0;
            rec->republish = 1;
        }
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);
}


/* the publication, at the head of the queue, is over */

static void
ngx_http_discovery_publication_done(ngx_http_discovery_publication_t *p)
{
    ngx_http_discovery_publication_pop(p->pub);
    ngx_http_discovery_publication_free(p);
}


static void
ngx_http_discovery_publication_pop(ngx_http_discovery_publisher_t *pub)
{
    ngx_http_discovery_publication_t  *p;

    p = pub->queue;
    pub->queue = p->next;

    if (pub->queue == NULL) {
        pub->last = &pub->queue;
    }
}


static void
ngx_http_discovery_publication_free(ngx_http_discovery_publication_t *p)
{
    ngx_uint_t  i;

    for (i = 0; i < p->n; i++) {
        discovery_buf_free(&p->changes[i].routes);
    }

    if (p->zimage || p->ztable) {
        ngx_shmtx_lock(&p->pub->dmcf->shpool->mutex);

        ngx_http_discovery_taken_locked(p->pub->dmcf, NULL, NULL);

        if (p->zimage) {
            ngx_http_discovery_image_free_locked(p->pub->dmcf, p->zimage);
        }

        if (p->ztable) {
            ngx_slab_free_locked(p->pub->dmcf->shpool, p->ztable);
        }

        ngx_shmtx_unlock(&p->pub->dmcf->shpool->mutex);
    }

    discovery_buf_free(&p->out);
    discovery_image_free(p->image);
    p->image = NULL;
    discovery_table_free(p->decoded);
    p->decoded = NULL;
    discovery_buf_free(&p->zcontrols);
    discovery_metrics_assigned_free(&p->assigned);
    ngx_free(p->said);
    ngx_free(p->base);

#if (NGX_THREADS && NGX_LINUX)
    p->pub->untrimmed = 1;
#endif

    ngx_free(p);
}


#if (NGX_THREADS && NGX_LINUX)

/*
 * With nothing left to publish: what the publications freed on the event
 * loop, after the trim at the end of their work, goes back to the system
 * too, in a thread (it holds malloc's lock while it walks the heap).
 * Without it a gateway whose table stopped changing kept tens of
 * megabytes of freed heap at 100,000 routes.
 */

static void
ngx_http_discovery_publish_trim(ngx_http_discovery_publisher_t *pub)
{
    if (!pub->untrimmed || pub->trimming || pub->exiting || ngx_exiting) {
        return;
    }

    if (ngx_http_discovery_task_post(&pub->trim, pub,
                                     ngx_http_discovery_publish_trim_handler,
                                     ngx_http_discovery_publish_trimmed,
                                     pub->log)
        == NGX_OK)
    {
        pub->untrimmed = 0;
        pub->trimming = 1;
    }
}


static void
ngx_http_discovery_publish_trim_handler(void *data, ngx_log_t *log)
{
    (void) malloc_trim(0);
}


static void
ngx_http_discovery_publish_trimmed(ngx_event_t *ev)
{
    ngx_http_discovery_publisher_t  *pub = ev->data;

    pub->trimming = 0;
}

#endif


/*
 * Replaces the zone's snapshot and returns its generation.  If the new one
 * does not fit, the old one stays and 0 is returned; with `alert`, an
 * alert says so once per size tried and the status page tells why.
 */

static ngx_atomic_uint_t
ngx_http_discovery_publish_locked(ngx_http_discovery_main_conf_t *dmcf,
    discovery_buf_t *snapshot, ngx_http_discovery_image_t *image,
    ngx_log_t *log, ngx_uint_t alert)
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

    ngx_memcpy(p, snapshot->data, snapshot->len);

    return ngx_http_discovery_table_install_locked(dmcf, p, size,
                                                   snapshot->len, image);
}


/*
 * The block to ask for a table of len bytes.  The slab allocator gives
 * whole pages to anything over half a page: asking for all of them costs
 * nothing, and a slightly longer table then still fits in place.
 */

static size_t
ngx_http_discovery_table_size(size_t len)
{
    return (len > ngx_pagesize / 2) ? ngx_align(len, ngx_pagesize) : len;
}


/*
 * Room for a table of len bytes: a block of its own if the zone has room,
 * else the place of the current table if it is large enough.  That place
 * is overwritten only when the new table is installed, and every reader
 * copies the table under the lock: a table too large for two copies can
 * still be replaced (on reload, say, with the configuration unchanged).
 * *size receives the size of the block.
 */

u_char *
ngx_http_discovery_table_alloc_locked(ngx_http_discovery_main_conf_t *dmcf,
    size_t len, size_t *size)
{
    u_char                      *p;
    ngx_http_discovery_shctx_t  *sh;

    sh = dmcf->sh;

    *size = ngx_http_discovery_table_size(len);

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


/*
 * Publishes the table of len bytes at p, a block of size bytes from
 * table_alloc_locked(), where the caller copied it: its generation.
 */

ngx_atomic_uint_t
ngx_http_discovery_table_install_locked(ngx_http_discovery_main_conf_t *dmcf,
    u_char *p, size_t size, size_t len, ngx_http_discovery_image_t *image)
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

    sh->snapshot_len = len;

    /* the old image stays while a process reads it */
    if (sh->image) {
        sh->image->next = sh->retired;
        sh->retired = sh->image;
    }

    sh->image = image;

    if (image) {
        image->generation = sh->generation + 1;
    }

    /* workers read the generation without the lock */
    ngx_memory_barrier();
    sh->generation++;

    ngx_http_discovery_images_reclaim_locked(dmcf);

    return sh->generation;
}


/*
 * In the thread: blocks of the zone for the publication's table and its
 * router image, taken under the lock and filled outside it, before anyone
 * can see them: the table copied, the image written there from its layout
 * (once: not made in a buffer of the worker's and copied).  No block for
 * the table (the zone has no room for a second one): install() copies it
 * under the lock, perhaps in the place of the current one, and no image
 * is made.  No room for the image beside the table: none (image_failed,
 * once per size, for install() to log).
 */

static void
ngx_http_discovery_publication_zone_copies(ngx_http_discovery_publication_t *p)
{
    size_t                           size;
    u_char                          *table;
    discovery_error_t                err;
    ngx_http_discovery_image_t      *image;
    ngx_http_discovery_main_conf_t  *dmcf;

    dmcf = p->pub->dmcf;
    image = NULL;

    size = ngx_http_discovery_table_size(p->out.len);
    p->image_len = p->image ? discovery_image_size(p->image) : 0;

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    table = ngx_slab_alloc_locked(dmcf->shpool, size);

    if (table && p->image
        && dmcf->shpool->pfree * ngx_pagesize >= p->image_len + ngx_pagesize)
    {
        image = ngx_http_discovery_image_alloc_locked(dmcf, p->image_len,
                                                      p->pub->log);
    }

    if (image == NULL && p->image
        && dmcf->sh->failed_image_len != p->image_len)
    {
        dmcf->sh->failed_image_len = p->image_len;
        p->image_failed = 1;
    }

    ngx_http_discovery_taken_locked(dmcf, table, image);

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    if (table) {
        ngx_memcpy(table, p->out.data, p->out.len);
        p->ztable = table;
        p->ztable_size = size;
    }

    /* the image is written once, where workers will read it */

    if (image
        && discovery_image_write(p->image, image->data, &err) != DISCOVERY_OK)
    {
        ngx_http_discovery_publication_said(p, DISCOVERY_LOG_ERR,
                                            err.text, ngx_strlen(err.text));

        ngx_shmtx_lock(&dmcf->shpool->mutex);
        ngx_http_discovery_image_free_locked(dmcf, image);
        ngx_http_discovery_taken_locked(dmcf, table, NULL);
        ngx_shmtx_unlock(&dmcf->shpool->mutex);

        image = NULL;
    }

    p->zimage = image;

    /* where each route counts, before any worker reads the image */
    if (image) {
        ngx_http_discovery_metrics_hint(dmcf, image, p->out.len,
                                        p->pub->log);
    }

    /* without an image, workers build their own router from the table */
    discovery_image_free(p->image);
    p->image = NULL;
}


/*
 * A block for a router image of len bytes: its record, then the image, at
 * the alignment the core wants (the slab allocator aligns a block to its
 * size class, or a page, and the record takes a whole alignment unit).
 */

ngx_http_discovery_image_t *
ngx_http_discovery_image_alloc_locked(ngx_http_discovery_main_conf_t *dmcf,
    size_t len, ngx_log_t *log)
{
    size_t                       head;
    ngx_http_discovery_image_t  *image;

    head = ngx_align(sizeof(ngx_http_discovery_image_t),
                     DISCOVERY_ROUTER_IMAGE_ALIGN);

    image = ngx_slab_alloc_locked(dmcf->shpool, head + len);

    if (image == NULL) {
        return NULL;
    }

    if ((uintptr_t) image % DISCOVERY_ROUTER_IMAGE_ALIGN) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "discovery: a router image block is not aligned");
        ngx_slab_free_locked(dmcf->shpool, image);
        return NULL;
    }

    dmcf->sh->failed_image_len = 0;

    image->next = NULL;
    image->generation = 0;
    image->len = len;
    image->data = (u_char *) image + head;
    image->hints = NULL;
    image->nhints = 0;

    return image;
}


void
ngx_http_discovery_image_no_room(ngx_http_discovery_main_conf_t *dmcf,
    ngx_log_t *log, size_t table_len, size_t image_len)
{
    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "discovery zone \"%V\" of %uz bytes has no room for the "
                  "router of a table of %uz bytes (%uz bytes): each worker "
                  "builds its own",
                  &dmcf->shm_zone->shm.name, dmcf->shm_zone->shm.size,
                  table_len, image_len);
}


void
ngx_http_discovery_image_free_locked(ngx_http_discovery_main_conf_t *dmcf,
    ngx_http_discovery_image_t *image)
{
    if (image->hints) {
        ngx_slab_free_locked(dmcf->shpool, image->hints);
    }

    ngx_slab_free_locked(dmcf->shpool, image);
}


/*
 * Records the blocks this worker's thread took, not yet published (NULL,
 * NULL: none any more), freeing first those a killed worker left taken.
 * A worker has one publication at a time.  Without a free slot, nothing
 * is recorded: only a worker killed in those milliseconds leaks them.
 */

static void
ngx_http_discovery_taken_locked(ngx_http_discovery_main_conf_t *dmcf,
    u_char *table, ngx_http_discovery_image_t *image)
{
    ngx_uint_t                   i;
    ngx_http_discovery_taken_t  *taken, *slot;

    ngx_http_discovery_taken_reclaim_locked(dmcf);

    slot = NULL;

    for (i = 0; i < NGX_HTTP_DISCOVERY_READERS; i++) {
        taken = &dmcf->sh->taken[i];

        if (taken->pid == ngx_pid) {
            slot = taken;
            break;
        }

        if (taken->pid == 0 && slot == NULL) {
            slot = taken;
        }
    }

    if (slot == NULL) {
        return;
    }

    if (table == NULL && image == NULL) {
        if (slot->pid == ngx_pid) {
            slot->pid = 0;
            slot->table = NULL;
            slot->image = NULL;
        }

        return;
    }

    slot->pid = ngx_pid;
    slot->table = table;
    slot->image = image;
}


/* frees the blocks killed workers took and never published */

static void
ngx_http_discovery_taken_reclaim_locked(ngx_http_discovery_main_conf_t *dmcf)
{
    ngx_uint_t                   i;
    ngx_http_discovery_taken_t  *taken;

    for (i = 0; i < NGX_HTTP_DISCOVERY_READERS; i++) {
        taken = &dmcf->sh->taken[i];

        if (taken->pid == 0 || taken->pid == ngx_pid
            || !ngx_http_discovery_slot_free(taken->pid))
        {
            continue;
        }

        if (taken->table) {
            ngx_slab_free_locked(dmcf->shpool, taken->table);
        }

        if (taken->image) {
            ngx_http_discovery_image_free_locked(dmcf, taken->image);
        }

        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "discovery: freed the blocks of a table process %P "
                      "was copying when it exited", taken->pid);

        taken->pid = 0;
        taken->table = NULL;
        taken->image = NULL;
    }
}


/* frees the retired images no live process reads any more */

void
ngx_http_discovery_images_reclaim_locked(ngx_http_discovery_main_conf_t *dmcf)
{
    ngx_http_discovery_shctx_t   *sh;
    ngx_http_discovery_image_t   *image, **prev;

    ngx_http_discovery_taken_reclaim_locked(dmcf);

    sh = dmcf->sh;
    prev = &sh->retired;

    while (*prev) {
        image = *prev;

        if (ngx_http_discovery_image_read_locked(sh, image->generation)) {
            prev = &image->next;
            continue;
        }

        *prev = image->next;
        ngx_http_discovery_image_free_locked(dmcf, image);
    }
}


static ngx_uint_t
ngx_http_discovery_image_read_locked(ngx_http_discovery_shctx_t *sh,
    ngx_atomic_uint_t generation)
{
    ngx_uint_t                    i;
    ngx_http_discovery_reader_t  *reader;

    for (i = 0; i < NGX_HTTP_DISCOVERY_READERS; i++) {
        reader = &sh->readers[i];

        if (reader->generation != generation) {
            continue;
        }

        if (ngx_http_discovery_reader_free(reader)) {
            reader->pid = 0;
            reader->generation = 0;
            continue;
        }

        return 1;
    }

    return 0;
}
