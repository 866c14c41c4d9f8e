
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
    ngx_http_discovery_main_conf_t  *dmcf;
    discovery_router_t              *router;
    ngx_atomic_uint_t                generation;  /* of the router's table */
    ngx_event_t                      refresh;
} ngx_http_discovery_router_t;


static ngx_int_t ngx_http_discovery_router_refresh(
    ngx_http_discovery_router_t *rt);
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
 * Rebuilds this worker's router when the zone holds a newer table.  The
 * snapshot is copied under the lock and decoded outside it, so requests
 * in other workers never wait for a build.
 */

static ngx_int_t
ngx_http_discovery_router_refresh(ngx_http_discovery_router_t *rt)
{
    u_char                          *copy;
    size_t                           len;
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

    if (rt->router) {
        discovery_router_destroy(rt->router);
    }

    rt->router = router;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "discovery: router built for table %uA", generation);

    return NGX_OK;
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
