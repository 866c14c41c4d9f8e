
/*
 * This worker's router: the lookup structure built from the zone's table,
 * rebuilt when a newer one is published, by the next request or, in an
 * idle worker, by a timer.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_discovery.h"


/* how often an idle worker looks for a newer table, in milliseconds */
#define NGX_HTTP_DISCOVERY_REFRESH  250


/* one per worker: each builds its own router from the shared table */
typedef struct {
    ngx_http_discovery_main_conf_t   *dmcf;
    discovery_router_t               *router;
    ngx_atomic_uint_t                 generation;  /* of the router's table */

    /* the configured service of each in the table's roster, or NULL */
    ngx_http_discovery_service_t    **owners;
    ngx_uint_t                        nowners;

    ngx_event_t                       refresh;
} ngx_http_discovery_router_t;


static ngx_int_t ngx_http_discovery_router_refresh(
    ngx_http_discovery_router_t *rt);
static ngx_http_discovery_service_t **ngx_http_discovery_router_owners(
    ngx_http_discovery_main_conf_t *dmcf, discovery_router_t *router,
    ngx_uint_t *n);
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

    (void) ngx_http_discovery_router_refresh(rt);

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

    if (rt->router) {
        discovery_router_destroy(rt->router);
        rt->router = NULL;

        ngx_free(rt->owners);
        rt->owners = NULL;
        rt->nowners = 0;
    }
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
        rt->dmcf = dmcf;
        rt->generation = 0;
    }

    (void) ngx_http_discovery_router_refresh(rt);

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
 * Rebuilds this worker's router when the zone holds a newer table.  The
 * snapshot is copied under the lock and decoded outside it, so requests
 * in other workers never wait for a build.
 */

static ngx_int_t
ngx_http_discovery_router_refresh(ngx_http_discovery_router_t *rt)
{
    u_char                          *copy;
    size_t                           len;
    ngx_uint_t                       n;
    ngx_atomic_uint_t                generation;
    discovery_error_t                err;
    discovery_router_t              *router;
    ngx_http_discovery_service_t   **owners;
    ngx_http_discovery_main_conf_t  *dmcf;

    dmcf = rt->dmcf;

    /* generation 0 never has a table: a new worker always builds */
    generation = dmcf->sh->generation;

    if (generation == rt->generation) {
        return NGX_OK;
    }

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    generation = dmcf->sh->generation;
    len = dmcf->sh->snapshot_len;
    copy = len ? ngx_alloc(len, ngx_cycle->log) : NULL;

    if (copy) {
        ngx_memcpy(copy, dmcf->sh->snapshot, len);
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    if (copy == NULL) {
        return NGX_ERROR;
    }

    router = discovery_router_create(copy, len, &err);
    ngx_free(copy);

    /* a table that cannot be read is not retried until the next one */
    rt->generation = generation;

    if (router == NULL) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "discovery: cannot build the router for table %uA: %s",
                      generation, err.text);
        return NGX_ERROR;
    }

    owners = ngx_http_discovery_router_owners(dmcf, router, &n);

    if (owners == NULL) {
        discovery_router_destroy(router);
        return NGX_ERROR;
    }

    if (rt->router) {
        discovery_router_destroy(rt->router);
        ngx_free(rt->owners);
    }

    rt->router = router;
    rt->owners = owners;
    rt->nowners = n;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "discovery: router built for table %uA", generation);

    return NGX_OK;
}


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
        for (j = 0; j < dmcf->services.nelts; j++) {
            if (service[j].name.len == roster[i].name_len
                && ngx_memcmp(service[j].name.data, roster[i].name,
                              roster[i].name_len)
                   == 0)
            {
                owners[i] = &service[j];
                break;
            }
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


static void
ngx_http_discovery_router_refresh_handler(ngx_event_t *ev)
{
    ngx_http_discovery_router_t  *rt;

    rt = ngx_http_discovery_event_owner(ev, ngx_http_discovery_router_t,
                                        refresh);

    if (ngx_exiting) {
        return;
    }

    (void) ngx_http_discovery_router_refresh(rt);

    ngx_add_timer(ev, NGX_HTTP_DISCOVERY_REFRESH);
}
