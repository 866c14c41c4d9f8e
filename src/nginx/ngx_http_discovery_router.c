
/*
 * This worker's router, switched to a newer table once the next request
 * or, in an idle worker, a timer sees it.  A table normally comes with its
 * router image in the zone, built once by whoever published it: the worker
 * reads that in place, and switching costs a view of it.  The worker's
 * slot among the zone's readers says which image it reads, so that an
 * image is freed only once no worker reads it.
 *
 * A table whose image did not fit the zone gets a router of the worker's
 * own, built from a copy of the table: a large one in a background thread
 * (_background.c) while requests go on with the previous router.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_discovery.h"


/* how often an idle worker looks for a newer table, in milliseconds */
#define NGX_HTTP_DISCOVERY_REFRESH  250

/*
 * Tables up to this size (some thousands of routes, built in a few
 * milliseconds) are built at once, on the request that sees them: their
 * requests see the table the status page shows as soon as it shows it.
 */
#define NGX_HTTP_DISCOVERY_BUILD_AT_ONCE  (256 * 1024)


/* one per worker: the router its requests use, and how it got it */
typedef struct {
    ngx_http_discovery_main_conf_t   *dmcf;
    /* the configuration the worker started with: builds in threads read it */
    ngx_http_discovery_main_conf_t   *started;
    discovery_router_t               *router;
    ngx_atomic_uint_t                 generation;  /* of the router's table */
    unsigned                          shared:1;    /* router views the zone */

    /* the image the router views, and one view() opened, not installed */
    ngx_http_discovery_image_t       *image;
    ngx_http_discovery_image_t       *viewed;

    /* this worker's slot among the zone's readers, or NULL */
    ngx_http_discovery_reader_t      *reader;
    ngx_http_discovery_shctx_t       *reader_sh;   /* of the slot */
    unsigned                          reader_warned:1;

    /* the configured service of each in the table's roster, or NULL */
    ngx_http_discovery_service_t    **owners;
    ngx_uint_t                        nowners;

    ngx_event_t                       refresh;

#if (NGX_THREADS)
    /* a build in a thread: what it reads and writes while it runs */
    ngx_http_discovery_task_t         task;
    unsigned                          building:1;
    ngx_atomic_uint_t                 build_generation;
    discovery_router_t               *built;
    discovery_error_t                 build_err;

    /* the router a new one replaced, destroyed in a thread */
    ngx_http_discovery_task_t         retire;
    discovery_router_t               *retired;
#endif
} ngx_http_discovery_router_t;


static ngx_int_t ngx_http_discovery_router_refresh(
    ngx_http_discovery_router_t *rt, ngx_uint_t at_once);
static discovery_router_t *ngx_http_discovery_router_build(
    ngx_http_discovery_main_conf_t *dmcf, ngx_atomic_uint_t *generation,
    discovery_error_t *err);
static discovery_router_t *ngx_http_discovery_router_view(
    ngx_http_discovery_router_t *rt, ngx_atomic_uint_t *generation);
static void ngx_http_discovery_router_reader(ngx_http_discovery_router_t *rt,
    ngx_uint_t claim);
static void ngx_http_discovery_router_read(ngx_http_discovery_router_t *rt,
    ngx_atomic_uint_t generation);
static ngx_int_t ngx_http_discovery_router_install(
    ngx_http_discovery_router_t *rt, discovery_router_t *router,
    ngx_atomic_uint_t generation, ngx_uint_t shared, discovery_error_t *err);
#if (NGX_THREADS)
static void ngx_http_discovery_router_build_handler(void *data,
    ngx_log_t *log);
static void ngx_http_discovery_router_built(ngx_event_t *ev);
static void ngx_http_discovery_router_retire_handler(void *data,
    ngx_log_t *log);
static void ngx_http_discovery_router_retired(ngx_event_t *ev);
#endif
static ngx_http_discovery_service_t **ngx_http_discovery_router_owners(
    ngx_http_discovery_main_conf_t *dmcf, discovery_router_t *router,
    ngx_uint_t *n);
static ngx_uint_t ngx_http_discovery_router_named(
    ngx_http_discovery_service_t *service, discovery_service_conf_t *conf);
static void ngx_http_discovery_router_refresh_handler(ngx_event_t *ev);


static ngx_http_discovery_router_t  ngx_http_discovery_router;

/* the refresh timer's ev->data, as nginx's own timers without a connection */
static ngx_connection_t  ngx_http_discovery_router_dumb;


void
ngx_http_discovery_router_init_worker(ngx_cycle_t *cycle,
    ngx_http_discovery_main_conf_t *dmcf)
{
    ngx_http_discovery_router_t  *rt;

    rt = &ngx_http_discovery_router;
    rt->dmcf = dmcf;
    rt->started = dmcf;

    ngx_http_discovery_router_reader(rt, 1);

    (void) ngx_http_discovery_router_refresh(rt, 1);

    /* idle workers pick up new tables too, not only on the next request */

    ngx_http_discovery_router_dumb.fd = (ngx_socket_t) -1;

    rt->refresh.handler = ngx_http_discovery_router_refresh_handler;
    rt->refresh.data = &ngx_http_discovery_router_dumb;
    rt->refresh.log = cycle->log;
    rt->refresh.cancelable = 1;

    ngx_add_timer(&rt->refresh, NGX_HTTP_DISCOVERY_REFRESH);
}


void
ngx_http_discovery_router_exit_worker(ngx_cycle_t *cycle)
{
    ngx_http_discovery_router_t  *rt;

    rt = &ngx_http_discovery_router;

#if (NGX_THREADS)
    /* a build in a background thread ends; the threads end after this */
    if (rt->building) {
        ngx_http_discovery_task_wait(&rt->task.finished);
        rt->building = 0;

        if (rt->built) {
            discovery_router_destroy(rt->built);
            rt->built = NULL;
        }
    }

    /* the same for a router being destroyed */
    if (rt->retired) {
        ngx_http_discovery_task_wait(&rt->retire.finished);
        rt->retired = NULL;
    }
#endif

    if (rt->router) {
        discovery_router_destroy(rt->router);
        rt->router = NULL;
        rt->image = NULL;

        ngx_free(rt->owners);
        rt->owners = NULL;
        rt->nowners = 0;
    }

    ngx_http_discovery_router_reader(rt, 0);
}


/*
 * The router of the newest table, for a request of the configuration
 * dmcf; NULL until a table could be read.
 */

discovery_router_t *
ngx_http_discovery_router_latest(ngx_http_discovery_main_conf_t *dmcf)
{
    ngx_http_discovery_router_t  *rt;

    rt = &ngx_http_discovery_router;

    /*
     * nginx alone (master_process off) reloads without calling
     * init_process again: a request of the new configuration gets a
     * router of its own.
     */
    if (rt->dmcf != dmcf) {
        /* the router's owners are services of the old configuration */
        rt->dmcf = dmcf;
        rt->generation = 0;
        (void) ngx_http_discovery_router_refresh(rt, 1);

    } else {
        (void) ngx_http_discovery_router_refresh(rt, 0);
    }

    return rt->router;
}


/*
 * The configured service that owns a match of the router that
 * ngx_http_discovery_router_latest() gave, or NULL: looked up by the
 * match's index in the table's roster, in what refresh found for it.
 */

ngx_http_discovery_service_t *
ngx_http_discovery_router_owner(discovery_match_t *m)
{
    ngx_http_discovery_router_t  *rt;

    rt = &ngx_http_discovery_router;

    if (m->service == NULL || m->service_index >= rt->nowners) {
        return NULL;
    }

    return rt->owners[m->service_index];
}


/*
 * For discovery_metrics: the hint of a match's route (see
 * discovery_metrics_hints) in the image of the router that
 * ngx_http_discovery_router_latest() gave, which this worker reads; 0
 * when it has none (a router of the worker's own, an image whose hints
 * were not set).
 */

uint64_t
ngx_http_discovery_router_hint(discovery_match_t *m)
{
    uint64_t                    *hints;
    ngx_http_discovery_image_t  *image;

    image = ngx_http_discovery_router.image;

    if (image == NULL || m->entry == DISCOVERY_NO_ENTRY) {
        return 0;
    }

    /* set before the image was installed, if ever */
    hints = image->hints;

    if (hints == NULL || m->entry >= image->nhints) {
        return 0;
    }

    return hints[m->entry];
}


/*
 * Starts loading a match's hint, which ngx_http_discovery_router_hint()
 * reads once the decision's strings are copied: the hints are an array
 * as long as the routes, probed at random.
 */

void
ngx_http_discovery_router_hint_prefetch(discovery_match_t *m)
{
    ngx_http_discovery_image_t  *image;

    image = ngx_http_discovery_router.image;

    if (image && image->hints && m->entry < image->nhints) {
        __builtin_prefetch(&image->hints[m->entry]);
    }
}


/*
 * Rebuilds this worker's router when the zone holds a newer table: at
 * once when asked to, when the table is small or when the worker has no
 * router yet, else in a thread (requests go on with the router they
 * have).  The snapshot is copied under the lock and decoded outside it,
 * so requests in other workers never wait for a build.
 */

static ngx_int_t
ngx_http_discovery_router_refresh(ngx_http_discovery_router_t *rt,
    ngx_uint_t at_once)
{
    ngx_atomic_uint_t                generation;
    discovery_error_t                err;
    discovery_router_t              *router;
    ngx_http_discovery_main_conf_t  *dmcf;

    dmcf = rt->dmcf;

    /* generation 0 never has a table: a new worker always builds */
    generation = dmcf->sh->generation;

    if (generation == rt->generation) {
        return NGX_OK;
    }

#if (NGX_THREADS)
    if (rt->building && !at_once) {
        return NGX_OK;
    }
#endif

    router = ngx_http_discovery_router_view(rt, &generation);

    if (router) {
        return ngx_http_discovery_router_install(rt, router, generation, 1,
                                                 NULL);
    }

#if (NGX_THREADS)

    /* a router that answers "pending" is replaced as soon as it can be */

    if (!at_once
        && dmcf == rt->started
        && rt->router
        && !discovery_router_pending(rt->router)
        && !ngx_exiting
        && dmcf->sh->snapshot_len > NGX_HTTP_DISCOVERY_BUILD_AT_ONCE)
    {

        if (ngx_http_discovery_task_post(&rt->task, rt,
                                    ngx_http_discovery_router_build_handler,
                                    ngx_http_discovery_router_built,
                                    ngx_cycle->log)
            == NGX_OK)
        {
            rt->building = 1;
            return NGX_OK;
        }
    }
#endif

    router = ngx_http_discovery_router_build(dmcf, &generation, &err);

    return ngx_http_discovery_router_install(rt, router, generation, 0, &err);
}


/*
 * A router viewing the image of the zone's table, now marked as read by
 * this worker; NULL when the table has none (or the worker no slot).
 */

static discovery_router_t *
ngx_http_discovery_router_view(ngx_http_discovery_router_t *rt,
    ngx_atomic_uint_t *generation)
{
    discovery_error_t                err;
    discovery_router_t              *router;
    ngx_http_discovery_shctx_t      *sh;
    ngx_http_discovery_image_t      *image;
    ngx_http_discovery_main_conf_t  *dmcf;

    dmcf = rt->dmcf;
    sh = dmcf->sh;

    if (rt->reader == NULL || rt->reader_sh != sh) {
        return NULL;
    }

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    image = sh->image;

    if (image == NULL || image->generation != sh->generation) {
        ngx_shmtx_unlock(&dmcf->shpool->mutex);
        return NULL;
    }

    /*
     * A view first (constant time): only with one does the slot move on
     * to the new image, and then install() lets the previous one go.
     */
    router = discovery_router_open(image->data, image->len, &err);

    if (router) {
        rt->reader->generation = image->generation;
        *generation = image->generation;
        rt->viewed = image;
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    if (router == NULL) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "discovery: cannot read the router image of table "
                      "%uA: %s", *generation, err.text);
    }

    return router;
}


/* claims this worker's slot among the zone's readers, or gives it back */

static void
ngx_http_discovery_router_reader(ngx_http_discovery_router_t *rt,
    ngx_uint_t claim)
{
    ngx_uint_t                       i;
    ngx_http_discovery_shctx_t      *sh;
    ngx_http_discovery_reader_t     *reader;
    ngx_http_discovery_main_conf_t  *dmcf;

    /* no slot: also a worker that never started, with no service */
    if (!claim && rt->reader == NULL) {
        return;
    }

    dmcf = rt->started;
    sh = dmcf->sh;

    if (!claim && rt->reader_sh != sh) {
        return;
    }

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    if (!claim) {
        rt->reader->pid = 0;
        rt->reader->generation = 0;
        rt->reader = NULL;

        ngx_http_discovery_images_reclaim_locked(dmcf);
        ngx_shmtx_unlock(&dmcf->shpool->mutex);
        return;
    }

    for (i = 0; i < NGX_HTTP_DISCOVERY_READERS; i++) {
        reader = &sh->readers[i];

        if (ngx_http_discovery_reader_free(reader)) {
            reader->pid = ngx_pid;
            reader->generation = 0;
            rt->reader = reader;
            rt->reader_sh = sh;
            break;
        }
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    if (rt->reader == NULL && !rt->reader_warned) {
        rt->reader_warned = 1;
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "discovery: %d processes read the zone's routers "
                      "already: this worker builds its own until a slot "
                      "is free", NGX_HTTP_DISCOVERY_READERS);
    }
}


/*
 * The image of that generation is the one this worker reads (0: none, its
 * router is its own): those it no longer reads go, unless another does.
 */

static void
ngx_http_discovery_router_read(ngx_http_discovery_router_t *rt,
    ngx_atomic_uint_t generation)
{
    ngx_http_discovery_main_conf_t  *dmcf;

    dmcf = rt->dmcf;

    if (rt->reader == NULL || rt->reader_sh != dmcf->sh
        || (rt->reader->generation == generation && dmcf->sh->retired == NULL))
    {
        return;
    }

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    rt->reader->generation = generation;
    ngx_http_discovery_images_reclaim_locked(dmcf);

    ngx_shmtx_unlock(&dmcf->shpool->mutex);
}


/* the router of the zone's table; NULL: not enough memory, or see err */

static discovery_router_t *
ngx_http_discovery_router_build(ngx_http_discovery_main_conf_t *dmcf,
    ngx_atomic_uint_t *generation, discovery_error_t *err)
{
    u_char              *copy;
    size_t               len;
    discovery_router_t  *router;

    copy = ngx_http_discovery_table_copy(dmcf, &len, generation);

    if (copy == NULL) {
        ngx_cpystrn((u_char *) err->text, (u_char *) "no table to read",
                    DISCOVERY_ERROR_LEN);
        return NULL;
    }

    router = discovery_router_create(copy, len, err);
    ngx_free(copy);

    return router;
}


/* makes router, of the table of that generation, the one requests use */

static ngx_int_t
ngx_http_discovery_router_install(ngx_http_discovery_router_t *rt,
    discovery_router_t *router, ngx_atomic_uint_t generation,
    ngx_uint_t shared, discovery_error_t *err)
{
    ngx_uint_t                       n;
    ngx_http_discovery_service_t   **owners;

    /* a table that cannot be read is not retried until the next one */
    rt->generation = generation;

    if (router == NULL) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "discovery: cannot build the router for table %uA: %s",
                      generation, err->text);
        return NGX_ERROR;
    }

    owners = ngx_http_discovery_router_owners(rt->dmcf, router, &n);

    if (owners == NULL) {
        discovery_router_destroy(router);

        /* a view of an image its reader slot no longer keeps goes too */
        if (shared && rt->router && rt->shared) {
            discovery_router_destroy(rt->router);
            ngx_free(rt->owners);
            rt->router = NULL;
            rt->image = NULL;
            rt->owners = NULL;
            rt->nowners = 0;
        }

        return NGX_ERROR;
    }

    if (rt->router) {
#if (NGX_THREADS)
        /* a view is a few words; a router of the worker's own, maybe not */
        if (!rt->shared
            && rt->retired == NULL
            && rt->dmcf == rt->started
            && !ngx_exiting
            && rt->dmcf->sh->snapshot_len > NGX_HTTP_DISCOVERY_BUILD_AT_ONCE)
        {
            rt->retired = rt->router;

            if (ngx_http_discovery_task_post(&rt->retire, rt,
                                    ngx_http_discovery_router_retire_handler,
                                    ngx_http_discovery_router_retired,
                                    ngx_cycle->log)
                != NGX_OK)
            {
                rt->retired = NULL;
                discovery_router_destroy(rt->router);
            }

        } else {
            discovery_router_destroy(rt->router);
        }
#else
        discovery_router_destroy(rt->router);
#endif
        ngx_free(rt->owners);
    }

    rt->router = router;
    rt->shared = shared;
    rt->image = shared ? rt->viewed : NULL;
    rt->owners = owners;
    rt->nowners = n;

    ngx_http_discovery_router_read(rt, shared ? generation : 0);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "discovery: router %s table %uA",
                   shared ? "reads the zone's image of" : "built for",
                   generation);

    return NGX_OK;
}


#if (NGX_THREADS)

/* in a thread: reads only the zone, under its lock, and its own fields */

static void
ngx_http_discovery_router_build_handler(void *data, ngx_log_t *log)
{
    ngx_http_discovery_router_t  *rt = data;

    /* only for the configuration the worker started with */
    rt->built = ngx_http_discovery_router_build(rt->started,
                                                &rt->build_generation,
                                                &rt->build_err);
}


static void
ngx_http_discovery_router_built(ngx_event_t *ev)
{
    ngx_http_discovery_router_t  *rt = ev->data;

    discovery_router_t  *router;

    rt->building = 0;
    router = rt->built;
    rt->built = NULL;

    if (rt->started != rt->dmcf || rt->build_generation < rt->generation) {
        /* built at once meanwhile: a newer table, or a newer configuration */
        if (router) {
            discovery_router_destroy(router);
        }

        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "discovery: router for table %uA built in a thread",
                   rt->build_generation);

    (void) ngx_http_discovery_router_install(rt, router, rt->build_generation,
                                             0, &rt->build_err);
}


/* in a thread: the old router's memory goes back in one piece of work */

static void
ngx_http_discovery_router_retire_handler(void *data, ngx_log_t *log)
{
    ngx_http_discovery_router_t  *rt = data;

    discovery_router_destroy(rt->retired);
}


static void
ngx_http_discovery_router_retired(ngx_event_t *ev)
{
    ngx_http_discovery_router_t  *rt = ev->data;

    rt->retired = NULL;
}

#endif


/*
 * The configured service of each service in the router's table, by the
 * table's roster index, found by name once per table rather than per
 * request: during a reload, a worker may read a table that a newer
 * configuration made, whose roster is another.
 */

static ngx_http_discovery_service_t **
ngx_http_discovery_router_owners(ngx_http_discovery_main_conf_t *dmcf,
    discovery_router_t *router, ngx_uint_t *n)
{
    size_t                          count;
    ngx_uint_t                      i, j;
    discovery_error_t               err;
    discovery_service_conf_t       *roster;
    ngx_http_discovery_service_t   *service, **owners;

    if (discovery_router_roster(router, NULL, 0, &count, &err)
        != DISCOVERY_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "discovery: cannot read the router's roster: %s",
                      err.text);
        return NULL;
    }

    /* one more: a roster may be empty, and malloc(0) may be NULL */

    owners = ngx_calloc((count + 1) * sizeof(ngx_http_discovery_service_t *),
                        ngx_cycle->log);
    roster = ngx_alloc((count + 1) * sizeof(discovery_service_conf_t),
                       ngx_cycle->log);

    if (owners == NULL || roster == NULL) {
        goto failed;
    }

    if (discovery_router_roster(router, roster, count, &count, &err)
        != DISCOVERY_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "discovery: cannot read the router's roster: %s",
                      err.text);
        goto failed;
    }

    service = dmcf->services.elts;

    for (i = 0; i < count; i++) {

        /*
         * The roster is the configuration's order unless a reload is
         * under way: the service at the same index is looked at first,
         * so that 10,000 services cost 10,000 comparisons, not 10,000².
         */

        j = (i < dmcf->services.nelts) ? i : 0;

        if (dmcf->services.nelts == 0
            || !ngx_http_discovery_router_named(&service[j], &roster[i]))
        {
            for (j = 0; j < dmcf->services.nelts; j++) {
                if (ngx_http_discovery_router_named(&service[j],
                                                    &roster[i]))
                {
                    break;
                }
            }
        }

        if (j < dmcf->services.nelts) {
            owners[i] = &service[j];
        }
    }

    ngx_free(roster);

    *n = count;

    return owners;

failed:

    if (owners) {
        ngx_free(owners);
    }

    if (roster) {
        ngx_free(roster);
    }

    return NULL;
}


static ngx_uint_t
ngx_http_discovery_router_named(ngx_http_discovery_service_t *service,
    discovery_service_conf_t *conf)
{
    return service->name.len == conf->name_len
           && ngx_memcmp(service->name.data, conf->name, conf->name_len) == 0;
}


static void
ngx_http_discovery_router_refresh_handler(ngx_event_t *ev)
{
    ngx_http_discovery_router_t  *rt;

    rt = ngx_http_discovery_event_owner(ev, ngx_http_discovery_router_t,
                                        refresh);

    /*
     * An exiting worker goes on too (the timer does not keep it): one
     * lingering on long connections would pin its image in the zone.
     */
    (void) ngx_http_discovery_router_refresh(rt, 0);

    /* a slot freed by a worker that exited: this one may take it */
    if (rt->reader == NULL && !ngx_exiting) {
        ngx_http_discovery_router_reader(rt, 1);
    }

    ngx_add_timer(ev, NGX_HTTP_DISCOVERY_REFRESH);
}
