
/*
 * discovery_metrics: every routed request counted into its route's slot
 * in the zone (lock-free, in the log phase), the gateway's own answers,
 * the polls, and the scrape that renders them, off the event loop when
 * there are many routes.  The core keeps the slots' index and renders.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_discovery.h"


/* seconds a slot let go stays counters: a request may still count into it */
#define NGX_HTTP_DISCOVERY_METRICS_GRACE    10

/* how often a worker looks for a table no one assigned slots for, in ms */
#define NGX_HTTP_DISCOVERY_METRICS_CHECK    1000

/* a scrape of more routes than this is rendered in a background thread */
#define NGX_HTTP_DISCOVERY_METRICS_LARGE    2000

/* how long to wait for another process's assignment, in ms */
#define NGX_HTTP_DISCOVERY_METRICS_WAIT     5000


typedef struct {
    ngx_http_discovery_main_conf_t  *dmcf;
    ngx_uint_t                       locked;     /* the caller holds it */
    size_t                           reserve;    /* bytes slots leave free */
} ngx_http_discovery_metrics_memory_t;


/* one per worker: the look for tables not assigned */
typedef struct {
    ngx_http_discovery_main_conf_t  *dmcf;
    ngx_event_t                      check;
    ngx_atomic_uint_t                seen_generation;
    uint64_t                         seen_assigned;
#if (NGX_THREADS)
    ngx_http_discovery_task_t        task;
    unsigned                         assigning:1;
#endif
} ngx_http_discovery_metrics_worker_t;


/* a scrape, rendered from the zone, in a background thread if large */
typedef struct {
    ngx_http_request_t              *request;
    discovery_metrics_view_t         view;
    discovery_buf_t                  text;
    discovery_error_t                err;
    ngx_int_t                        rc;
    unsigned                         large:1;
#if (NGX_THREADS)
    ngx_http_discovery_task_t        task;
#endif
} ngx_http_discovery_metrics_page_t;


static ngx_int_t ngx_http_discovery_metrics_log(ngx_http_request_t *r);
static ngx_int_t ngx_http_discovery_metrics_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_discovery_metrics_view(ngx_http_request_t *r,
    ngx_http_discovery_main_conf_t *dmcf, discovery_metrics_view_t *view);
static ngx_uint_t ngx_http_discovery_metrics_openmetrics(
    ngx_http_request_t *r);
static void ngx_http_discovery_metrics_render(void *data, ngx_log_t *log);
#if (NGX_THREADS)
static void ngx_http_discovery_metrics_rendered(ngx_event_t *ev);
static void ngx_http_discovery_metrics_assign_handler(void *data,
    ngx_log_t *log);
static void ngx_http_discovery_metrics_assigned(ngx_event_t *ev);
#endif
static ngx_int_t ngx_http_discovery_metrics_send(
    ngx_http_discovery_metrics_page_t *page);
static void ngx_http_discovery_metrics_freed(void *data);
static void ngx_http_discovery_metrics_check(ngx_event_t *ev);
static void ngx_http_discovery_metrics_assign_current(
    ngx_http_discovery_main_conf_t *dmcf, ngx_log_t *log);
static size_t ngx_http_discovery_metrics_reserve(
    ngx_http_discovery_main_conf_t *dmcf, size_t len);
static ngx_int_t ngx_http_discovery_metrics_claim(
    ngx_http_discovery_metrics_sh_t *m, ngx_log_t *log);
static size_t ngx_http_discovery_metrics_block(size_t size);
static uint64_t ngx_http_discovery_metrics_alloc(void *data, size_t size);
static void ngx_http_discovery_metrics_release(void *data, uint64_t offset,
    size_t size);
static void ngx_http_discovery_metrics_expire_locked(
    ngx_http_discovery_main_conf_t *dmcf, ngx_uint_t all);
static ngx_http_discovery_record_t *ngx_http_discovery_metrics_record(
    ngx_http_discovery_shctx_t *sh, const char *name, size_t len);
static uint32_t ngx_http_discovery_metrics_method(ngx_http_request_t *r);
static ngx_int_t ngx_http_discovery_metrics_undecided(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_discovery_metrics_worker_t  ngx_http_discovery_metrics_worker;

/* the check timer's ev->data, as nginx's own timers without a connection */
static ngx_connection_t  ngx_http_discovery_metrics_dumb;


static ngx_str_t  ngx_http_discovery_metrics_decision =
    ngx_string("discovery_metrics_decision");

static ngx_str_t  ngx_http_discovery_metrics_text =
    ngx_string("text/plain; version=0.0.4; charset=utf-8");
static ngx_str_t  ngx_http_discovery_metrics_om =
    ngx_string("application/openmetrics-text; version=1.0.0; charset=utf-8");


/* discovery_metrics [buckets=0.005,0.01,...]; */

char *
ngx_http_discovery_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_discovery_loc_conf_t *dlcf = conf;

    size_t                           n;
    uint32_t                         ms[DISCOVERY_METRICS_MAX_BUCKETS];
    ngx_str_t                       *value, text;
    ngx_uint_t                       i;
    discovery_error_t                err;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_discovery_main_conf_t  *dmcf;

    if (dlcf->metrics_file) {
        return "is duplicate";
    }

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_discovery_module);
    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "buckets=", 8) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        text.data = value[i].data + 8;
        text.len = value[i].len - 8;

        if (discovery_metrics_parse_buckets((const char *) text.data,
                                            text.len, ms, &n, &err)
            != DISCOVERY_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid buckets \"%V\": %s", &text,
                               err.text);
            return NGX_CONF_ERROR;
        }

        /* one set of counters in the zone: one set of bounds */
        if (dmcf->metrics_buckets_set
            && (dmcf->nbuckets != n
                || ngx_memcmp(dmcf->buckets_ms, ms, n * sizeof(uint32_t))
                   != 0))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "buckets \"%V\" differ from those of another "
                               "\"discovery_metrics\"", &text);
            return NGX_CONF_ERROR;
        }

        dmcf->metrics_buckets_set = 1;
        dmcf->nbuckets = n;
        ngx_memcpy(dmcf->buckets_ms, ms, n * sizeof(uint32_t));
    }

    dmcf->metrics = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_discovery_metrics_handler;

    dlcf->metrics_file = ngx_pnalloc(cf->pool, cf->conf_file->file.name.len
                                               + NGX_INT_T_LEN + 2);
    if (dlcf->metrics_file == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(dlcf->metrics_file, "%V:%ui%Z", &cf->conf_file->file.name,
                cf->conf_file->line);

    return NGX_CONF_OK;
}


/* postconfiguration: the default bounds, and the log phase's handler */

ngx_int_t
ngx_http_discovery_metrics_init(ngx_conf_t *cf)
{
    ngx_http_variable_t              *var;
    ngx_http_handler_pt              *h;
    ngx_http_core_main_conf_t        *cmcf;
    ngx_http_discovery_main_conf_t   *dmcf;

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_discovery_module);

    if (!dmcf->metrics) {
        /* no scrape: nothing is counted, and requests pay nothing */
        return NGX_OK;
    }

    if (!dmcf->metrics_buckets_set) {
        dmcf->nbuckets = DISCOVERY_METRICS_POLL_BUCKETS;
        ngx_memcpy(dmcf->buckets_ms, discovery_metrics_poll_buckets_ms,
                   DISCOVERY_METRICS_POLL_BUCKETS * sizeof(uint32_t));
    }

    /*
     * The access phase's first decision, kept for the log phase in a
     * variable's slot of the request: the slot outlives the module's
     * context, which an internal redirect (error_page) clears, and costs
     * no allocation per request, where a few dozen bytes more can cost
     * the request's pool another block.  Not in the variables' hash: no
     * configuration names it.
     */
    var = ngx_http_add_variable(cf, &ngx_http_discovery_metrics_decision,
                                NGX_HTTP_VAR_NOHASH);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_discovery_metrics_undecided;

    dmcf->decided_index = ngx_http_get_variable_index(cf,
                                        &ngx_http_discovery_metrics_decision);
    if (dmcf->decided_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_discovery_metrics_log;

    return NGX_OK;
}


/*
 * At start and on every reload, in the master: the zone's counters, kept
 * over a reload.  New bounds make every route's slot start again.
 */

ngx_int_t
ngx_http_discovery_metrics_init_zone(ngx_http_discovery_main_conf_t *dmcf,
    ngx_log_t *log)
{
    u_char                               *p;
    size_t                                size;
    uint64_t                              capacity;
    discovery_metrics_memory_t            memory;
    ngx_http_discovery_shctx_t           *sh;
    ngx_http_discovery_metrics_sh_t      *m;
    ngx_http_discovery_metrics_memory_t   mem;

    if (!dmcf->metrics) {
        return NGX_OK;
    }

    sh = dmcf->sh;

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    if (sh->metrics == NULL) {
        sh->metrics = ngx_slab_calloc_locked(dmcf->shpool,
                                       sizeof(ngx_http_discovery_metrics_sh_t));
    }

    m = sh->metrics;

    if (m == NULL) {
        ngx_shmtx_unlock(&dmcf->shpool->mutex);
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "discovery zone \"%V\" has no room for the metrics",
                      &dmcf->shm_zone->shm.name);
        return NGX_OK;
    }

    if (m->index == NULL) {
        /* an entry per 512 bytes of zone: more routes than fit anyway */
        capacity = 1024;
        while (capacity * 512 < dmcf->shm_zone->shm.size) {
            capacity *= 2;
        }

        size = discovery_metrics_index_size(capacity);
        p = ngx_slab_alloc_locked(dmcf->shpool, size);

        if (p == NULL) {
            ngx_shmtx_unlock(&dmcf->shpool->mutex);
            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "discovery zone \"%V\" has no room for the index "
                          "of the routes' counters (%uz bytes): requests are "
                          "counted in nginx_discovery_metrics_overflow_total"
                          "{reason=\"no_slot\"}",
                          &dmcf->shm_zone->shm.name, size);
            return NGX_OK;
        }

        m->index = discovery_metrics_index_init(p, capacity, dmcf->buckets_ms,
                                                dmcf->nbuckets);
        ngx_shmtx_unlock(&dmcf->shpool->mutex);
        return NGX_OK;
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    if (discovery_metrics_index_buckets(m->index, dmcf->buckets_ms,
                                        dmcf->nbuckets))
    {
        return NGX_OK;
    }

    if (ngx_http_discovery_metrics_claim(m, log) != NGX_OK) {
        return NGX_OK;
    }

    mem.dmcf = dmcf;
    mem.locked = 1;
    mem.reserve = dmcf->shm_zone->shm.size / 4;
    memory.alloc = ngx_http_discovery_metrics_alloc;
    memory.release = ngx_http_discovery_metrics_release;
    memory.data = &mem;

    ngx_shmtx_lock(&dmcf->shpool->mutex);
    discovery_metrics_clear(m->index, (u_char *) dmcf->shpool,
                            dmcf->buckets_ms, dmcf->nbuckets, &memory);
    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    (void) ngx_atomic_cmp_set(&m->assigning, ngx_pid, 0);

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "discovery: the request duration buckets changed: the "
                  "routes' counters start again");

    return NGX_OK;
}


void
ngx_http_discovery_metrics_init_worker(ngx_cycle_t *cycle,
    ngx_http_discovery_main_conf_t *dmcf)
{
    ngx_http_discovery_metrics_worker_t  *mw;

    if (!dmcf->metrics || dmcf->sh->metrics == NULL) {
        return;
    }

    mw = &ngx_http_discovery_metrics_worker;
    mw->dmcf = dmcf;

    ngx_http_discovery_metrics_dumb.fd = (ngx_socket_t) -1;

    mw->check.handler = ngx_http_discovery_metrics_check;
    mw->check.data = &ngx_http_discovery_metrics_dumb;
    mw->check.log = cycle->log;
    mw->check.cancelable = 1;

    ngx_add_timer(&mw->check, 1);
}


void
ngx_http_discovery_metrics_exit_worker(ngx_cycle_t *cycle)
{
    ngx_http_discovery_metrics_worker_t  *mw;

    mw = &ngx_http_discovery_metrics_worker;

    if (mw->dmcf == NULL) {
        return;
    }

#if (NGX_THREADS)
    if (mw->assigning) {
        ngx_http_discovery_task_wait(&mw->task.finished);
        mw->assigning = 0;
    }
#endif

    if (mw->check.timer_set) {
        ngx_del_timer(&mw->check);
    }
}


/*
 * A table no one assigned slots for (loaded at start, made by a reload,
 * or one whose publication failed after its assignment): this worker
 * assigns them, once the mismatch outlived a check, which a publication
 * in flight does not.
 */

static void
ngx_http_discovery_metrics_check(ngx_event_t *ev)
{
    uint64_t                              assigned;
    ngx_atomic_uint_t                     generation;
    ngx_http_discovery_metrics_sh_t      *m;
    ngx_http_discovery_metrics_worker_t  *mw;

    mw = &ngx_http_discovery_metrics_worker;
    m = mw->dmcf->sh->metrics;

    if (ngx_exiting) {
        return;
    }

    ngx_add_timer(ev, NGX_HTTP_DISCOVERY_METRICS_CHECK);

    if (m->index == NULL) {
        return;
    }

    if (m->released) {
        ngx_shmtx_lock(&mw->dmcf->shpool->mutex);
        ngx_http_discovery_metrics_expire_locked(mw->dmcf, 0);
        ngx_shmtx_unlock(&mw->dmcf->shpool->mutex);
    }

    generation = mw->dmcf->sh->generation;
    assigned = discovery_metrics_index_generation(m->index);

    if (generation == 0) {
        return;
    }

    if (generation == assigned) {
        mw->seen_generation = 0;

        /*
         * Routes that had no room, and slots let go since: the table is
         * assigned again, or its routes would count as overflow until
         * the next table, however long it comes.
         */
        if (!m->unassigned || !m->freed) {
            return;
        }

    } else if (assigned != 0
               && (mw->seen_generation != generation
                   || mw->seen_assigned != assigned))
    {
        mw->seen_generation = generation;
        mw->seen_assigned = assigned;
        return;
    }

    mw->seen_generation = 0;

#if (NGX_THREADS)
    if (mw->assigning) {
        return;
    }

    if (ngx_http_discovery_task_post(&mw->task, mw,
                                     ngx_http_discovery_metrics_assign_handler,
                                     ngx_http_discovery_metrics_assigned,
                                     ev->log)
        == NGX_OK)
    {
        mw->assigning = 1;
        return;
    }
#endif

    ngx_http_discovery_metrics_assign_current(mw->dmcf, ev->log);
}


#if (NGX_THREADS)

static void
ngx_http_discovery_metrics_assign_handler(void *data, ngx_log_t *log)
{
    ngx_http_discovery_metrics_worker_t  *mw = data;

    ngx_http_discovery_metrics_assign_current(mw->dmcf, log);
}


static void
ngx_http_discovery_metrics_assigned(ngx_event_t *ev)
{
    ngx_http_discovery_metrics_worker_t  *mw = ev->data;

    mw->assigning = 0;
}

#endif


static void
ngx_http_discovery_metrics_assign_current(ngx_http_discovery_main_conf_t *dmcf,
    ngx_log_t *log)
{
    u_char             *copy;
    size_t              len;
    ngx_atomic_uint_t   generation;

    copy = ngx_http_discovery_table_copy(dmcf, &len, &generation);

    if (copy == NULL) {
        return;
    }

    /* the zone's table: installed already */
    ngx_http_discovery_metrics_assign(dmcf, copy, len, NULL, NULL, log);
    ngx_free(copy);
}


/*
 * Gives the routes of a table (a copy, out of the zone) their slots: by
 * the publisher before it installs the table, or by check() above.  In a
 * background thread, or on the event loop where there is none.  The
 * table's figures (its routes, conflicts, overlaps, and each service's
 * routes) are the scrape's at once for the zone's own table (keep NULL);
 * a table yet to be installed leaves them in *keep (its `own` NULL if
 * none), for ngx_http_discovery_metrics_installed_locked() to show once
 * it is: a table that is never installed (the zone full, one published
 * meanwhile) never shows.
 */

void
ngx_http_discovery_metrics_assign(ngx_http_discovery_main_conf_t *dmcf,
    u_char *table, size_t len, discovery_table_t *decoded,
    discovery_metrics_assigned_t *keep, ngx_log_t *log)
{
    ngx_str_t                             name;
    discovery_error_t                     err;
    discovery_metrics_memory_t            memory;
    discovery_metrics_assigned_t          a;
    ngx_http_discovery_metrics_sh_t      *m;
    ngx_http_discovery_metrics_memory_t   mem;

    m = dmcf->sh->metrics;

    if (!dmcf->metrics || m == NULL || m->index == NULL) {
        return;
    }

    if (ngx_http_discovery_metrics_claim(m, log) != NGX_OK) {
        return;
    }

    /* what is freed from now on may be room for what this leaves out */
    m->freed = 0;

    mem.dmcf = dmcf;
    mem.locked = 0;
    mem.reserve = ngx_http_discovery_metrics_reserve(dmcf, len);
    memory.alloc = ngx_http_discovery_metrics_alloc;
    memory.release = ngx_http_discovery_metrics_release;
    memory.data = &mem;

    if (discovery_metrics_assign(m->index, (u_char *) dmcf->shpool, table,
                                 len, decoded, &memory, &a, &err)
        != DISCOVERY_OK)
    {
        (void) ngx_atomic_cmp_set(&m->assigning, ngx_pid, 0);
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "discovery: cannot assign the routes' counters: %s",
                      err.text);
        return;
    }

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    if (keep == NULL) {
        ngx_http_discovery_metrics_installed_locked(dmcf, &a, a.generation);
    }

    ngx_http_discovery_metrics_expire_locked(dmcf, 0);

    if (a.unassigned && a.unassigned != m->unassigned) {
        name = dmcf->shm_zone->shm.name;
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "discovery zone \"%V\" has no room for the counters "
                      "of %uL routes: their requests are counted in "
                      "nginx_discovery_metrics_overflow_total"
                      "{reason=\"no_slot\"}", &name, a.unassigned);
    }

    m->unassigned = a.unassigned;

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    (void) ngx_atomic_cmp_set(&m->assigning, ngx_pid, 0);

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, log, 0,
                   "discovery: counters of table %uL: %uL kept, %uL added, "
                   "%uL removed, %uL without room", a.generation, a.kept,
                   a.added, a.removed, a.unassigned);

    if (keep) {
        *keep = a;
        return;
    }

    discovery_metrics_assigned_free(&a);
}


/*
 * The bytes of the zone that slots and hints leave free, the tables coming
 * first: a quarter of the zone, and room for a table of len bytes (the
 * publisher copies it in after) and for the next one, up to twice as
 * large, beside it; or a growing table would find the zone full where it
 * fitted without metrics, and not be routed.
 */

static size_t
ngx_http_discovery_metrics_reserve(ngx_http_discovery_main_conf_t *dmcf,
    size_t len)
{
    return ngx_max(dmcf->shm_zone->shm.size / 4, 3 * len);
}


/*
 * Gives an image no worker reads yet the hints of its routes, from the
 * slots assigned now: found here once rather than per request.  In the
 * publisher's thread; the hints are made outside the lock and copied in.
 * An image without them (a table read at start; no room beside what the
 * next tables may need, as for slots) counts its requests by their names.
 */

void
ngx_http_discovery_metrics_hint(ngx_http_discovery_main_conf_t *dmcf,
    ngx_http_discovery_image_t *image, size_t table_len, ngx_log_t *log)
{
    size_t                            n, reserve;
    uint64_t                         *hints, *made;
    ngx_http_discovery_metrics_sh_t  *m;

    m = dmcf->sh->metrics;

    if (!dmcf->metrics || m == NULL || m->index == NULL) {
        return;
    }

    n = discovery_metrics_hint_count(image->data, image->len);

    if (n == 0) {
        return;
    }

    made = ngx_alloc(n * sizeof(uint64_t), log);
    if (made == NULL) {
        return;
    }

    if (discovery_metrics_hints(m->index, (u_char *) dmcf->shpool,
                                image->data, image->len, made, n)
        != DISCOVERY_OK)
    {
        ngx_free(made);
        return;
    }

    reserve = ngx_http_discovery_metrics_reserve(dmcf, table_len);

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    hints = NULL;

    if (dmcf->shpool->pfree * ngx_pagesize >= n * sizeof(uint64_t) + reserve)
    {
        hints = ngx_slab_alloc_locked(dmcf->shpool, n * sizeof(uint64_t));
    }

    if (hints) {
        ngx_memcpy(hints, made, n * sizeof(uint64_t));
        image->nhints = n;
        image->hints = hints;
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    ngx_free(made);
}


/* under the lock: the figures of the table of that generation, installed */

void
ngx_http_discovery_metrics_installed_locked(
    ngx_http_discovery_main_conf_t *dmcf, discovery_metrics_assigned_t *a,
    ngx_atomic_uint_t generation)
{
    ngx_uint_t                        i;
    ngx_http_discovery_record_t      *rec;
    ngx_http_discovery_metrics_sh_t  *m;

    m = dmcf->sh->metrics;

    if (m == NULL || a->own == NULL || a->generation != generation) {
        return;
    }

    m->generation = a->generation;
    m->routes = a->routes;
    m->conflicts = a->conflicts;
    m->overlaps = a->overlaps;

    for (i = 0; i < a->n; i++) {
        rec = ngx_http_discovery_metrics_record(dmcf->sh, a->services[i].name,
                                                a->services[i].name_len);
        if (rec) {
            rec->routed = a->services[i].routes;
            rec->rejected = a->services[i].rejected;
        }
    }
}


/* one process at a time changes the index; a dead one's claim is void */

static ngx_int_t
ngx_http_discovery_metrics_claim(ngx_http_discovery_metrics_sh_t *m,
    ngx_log_t *log)
{
    ngx_pid_t   holder;
    ngx_uint_t  waited;

    for (waited = 0; waited < NGX_HTTP_DISCOVERY_METRICS_WAIT; waited++) {

        if (ngx_atomic_cmp_set(&m->assigning, 0, ngx_pid)) {
            return NGX_OK;
        }

        holder = (ngx_pid_t) m->assigning;

        if (holder
            && kill(holder, 0) == -1 && ngx_errno == NGX_ESRCH
            && ngx_atomic_cmp_set(&m->assigning, holder, ngx_pid))
        {
            return NGX_OK;
        }

        ngx_msleep(1);
    }

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "discovery: the routes' counters were being assigned by "
                  "process %P for %d ms: not assigned this time",
                  (ngx_pid_t) m->assigning, NGX_HTTP_DISCOVERY_METRICS_WAIT);

    return NGX_DECLINED;
}


static uint64_t
ngx_http_discovery_metrics_alloc(void *data, size_t size)
{
    ngx_http_discovery_metrics_memory_t  *mem = data;

    u_char                           *p;
    size_t                            units;
    ngx_slab_pool_t                  *shpool;
    ngx_http_discovery_metrics_sh_t  *m;

    shpool = mem->dmcf->shpool;
    m = mem->dmcf->sh->metrics;
    size = ngx_http_discovery_metrics_block(size);
    units = (size + NGX_HTTP_DISCOVERY_SLOT_UNIT - 1)
            / NGX_HTTP_DISCOVERY_SLOT_UNIT;
    p = NULL;

    if (!mem->locked) {
        ngx_shmtx_lock(&shpool->mutex);
    }

    if (units <= NGX_HTTP_DISCOVERY_SLOT_SIZES && m->free[units]) {
        p = (u_char *) shpool + m->free[units];
        m->free[units] = *(uint64_t *) p;
        goto done;
    }

    if (units <= NGX_HTTP_DISCOVERY_SLOT_SIZES) {
        size = NGX_HTTP_DISCOVERY_SLOT_CHUNK;

        if (m->chunk_left >= units * NGX_HTTP_DISCOVERY_SLOT_UNIT) {
            goto cut;
        }
    }

    /* the tables come first: the reserve stays theirs to change */
    if (shpool->pfree * ngx_pagesize < size + mem->reserve) {
        goto done;
    }

    p = ngx_slab_alloc_locked(shpool, size);

    if (p == NULL || units > NGX_HTTP_DISCOVERY_SLOT_SIZES) {
        goto done;
    }

    /* what was left of the previous chunk is lost: less than a slot */
    m->chunk = p;
    m->chunk_left = NGX_HTTP_DISCOVERY_SLOT_CHUNK;

cut:

    p = m->chunk;
    m->chunk += units * NGX_HTTP_DISCOVERY_SLOT_UNIT;
    m->chunk_left -= units * NGX_HTTP_DISCOVERY_SLOT_UNIT;

done:

    if (!mem->locked) {
        ngx_shmtx_unlock(&shpool->mutex);
    }

    return p ? (uint64_t) (p - (u_char *) shpool) : 0;
}


/* a slot's block: the slot, then the note that lets it go */

static size_t
ngx_http_discovery_metrics_block(size_t size)
{
    return ngx_align(size, 8) + sizeof(ngx_http_discovery_released_t);
}


/*
 * A slot out of the index: a request that found it just before may still
 * count into it, so it is reused only after a grace time.
 */

static void
ngx_http_discovery_metrics_release(void *data, uint64_t offset, size_t size)
{
    ngx_http_discovery_metrics_memory_t  *mem = data;

    ngx_slab_pool_t                  *shpool;
    ngx_http_discovery_released_t    *rel;
    ngx_http_discovery_metrics_sh_t  *m;

    shpool = mem->dmcf->shpool;
    m = mem->dmcf->sh->metrics;

    rel = (ngx_http_discovery_released_t *)
              ((u_char *) shpool + offset + ngx_align(size, 8));

    rel->size = (uint32_t) size;
    rel->at = (uint32_t) ngx_time();

    if (!mem->locked) {
        ngx_shmtx_lock(&shpool->mutex);
    }

    rel->next = m->released;
    m->released = rel;

    if (!mem->locked) {
        ngx_shmtx_unlock(&shpool->mutex);
    }
}


static void
ngx_http_discovery_metrics_expire_locked(ngx_http_discovery_main_conf_t *dmcf,
    ngx_uint_t all)
{
    u_char                           *p;
    size_t                            units;
    time_t                            now;
    ngx_http_discovery_released_t    *rel, **prev;
    ngx_http_discovery_metrics_sh_t  *m;

    m = dmcf->sh->metrics;
    now = ngx_time();
    prev = &m->released;

    while (*prev) {
        rel = *prev;

        if (!all
            && (time_t) rel->at + NGX_HTTP_DISCOVERY_METRICS_GRACE > now)
        {
            prev = &rel->next;
            continue;
        }

        /* the note goes with its block */
        *prev = rel->next;
        m->freed = 1;

        p = (u_char *) rel - ngx_align(rel->size, 8);
        units = (ngx_http_discovery_metrics_block(rel->size)
                 + NGX_HTTP_DISCOVERY_SLOT_UNIT - 1)
                / NGX_HTTP_DISCOVERY_SLOT_UNIT;

        if (units <= NGX_HTTP_DISCOVERY_SLOT_SIZES) {
            *(uint64_t *) p = m->free[units];
            m->free[units] = p - (u_char *) dmcf->shpool;

        } else {
            ngx_slab_free_locked(dmcf->shpool, p);
        }
    }
}


static ngx_http_discovery_record_t *
ngx_http_discovery_metrics_record(ngx_http_discovery_shctx_t *sh,
    const char *name, size_t len)
{
    ngx_str_t        key;
    ngx_str_node_t  *node;

    key.data = (u_char *) name;
    key.len = len;

    node = ngx_str_rbtree_lookup(&sh->rbtree, &key,
                                 ngx_crc32_short(key.data, key.len));

    if (node == NULL) {
        return NULL;
    }

    return (ngx_http_discovery_record_t *)
               ((u_char *) node - offsetof(ngx_http_discovery_record_t, node));
}


/* under the zone's lock, as the poll is reported */

void
ngx_http_discovery_metrics_poll_locked(ngx_http_discovery_record_t *rec,
    ngx_http_discovery_outcome_t *outcome)
{
    ngx_uint_t  i;

    if (outcome->result >= DISCOVERY_METRICS_POLL_RESULTS) {
        return;
    }

    rec->poll_results[outcome->result]++;

    for (i = 0; i < DISCOVERY_METRICS_POLL_BUCKETS; i++) {
        if (outcome->duration <= discovery_metrics_poll_buckets_ms[i]) {
            break;
        }
    }

    rec->poll_buckets[i]++;
    rec->poll_ms += outcome->duration;
}


/*
 * The log phase: the request counted where the access phase sent it.
 * Lock-free: a few atomic additions to its route's slot.
 */

static ngx_int_t
ngx_http_discovery_metrics_log(ngx_http_request_t *r)
{
    ngx_msec_int_t                    ms;
    ngx_str_t                         service, route;
    ngx_int_t                         rc;
    uint32_t                          method;
    uint64_t                          hint, duration;
    unsigned                          code;
    ngx_uint_t                        status, reason, overflow;
    ngx_time_t                       *tp;
    ngx_http_discovery_metrics_sh_t  *m;
    ngx_http_discovery_main_conf_t   *dmcf;

    if (ngx_http_discovery_decision(r, &status, &service, &route, &hint)
        != NGX_OK)
    {
        return NGX_OK;
    }

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_discovery_module);

    if (dmcf->sh == NULL || dmcf->sh->metrics == NULL) {
        return NGX_OK;
    }

    m = dmcf->sh->metrics;
    reason = 0;
    overflow = DISCOVERY_METRICS_OVERFLOWS;       /* none */

    switch (status) {

    case DISCOVERY_MATCH_FOUND:
        tp = ngx_timeofday();
        ms = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000
                               + (tp->msec - r->start_msec));

        if (m->index == NULL) {
            overflow = DISCOVERY_METRICS_OVERFLOW_NO_SLOT;
            break;
        }

        method = ngx_http_discovery_metrics_method(r);
        code = (unsigned) r->headers_out.status;
        duration = (uint64_t) ngx_max(ms, 0);

        /* where the table's image says the route counts, if it still does */
        rc = 0;

        if (hint) {
            rc = discovery_metrics_count_hinted(m->index,
                                                (u_char *) dmcf->shpool, hint,
                                                method, code, duration);
        }

        if (rc == 0) {
            rc = discovery_metrics_count(m->index, (u_char *) dmcf->shpool,
                                         (const char *) service.data,
                                         service.len,
                                         (const char *) route.data,
                                         route.len, method, code, duration);
        }

        if (rc == 1) {
            return NGX_OK;
        }

        if (rc < 0) {
            overflow = DISCOVERY_METRICS_OVERFLOW_UNKNOWN;
            break;
        }

        /*
         * No slot, while the zone's table has one for each of its routes:
         * the route is not in it, removed since the request was routed
         * (a request that outlived a table change, or one routed by a
         * worker's table of a moment before).  Told apart from the routes
         * with no room, whose cure is a larger zone.
         */

        if (m->unassigned == 0
            && discovery_metrics_index_generation(m->index)
               == dmcf->sh->generation)
        {
            overflow = DISCOVERY_METRICS_OVERFLOW_ROUTE_REMOVED;

        } else {
            overflow = DISCOVERY_METRICS_OVERFLOW_NO_SLOT;
        }

        break;

    case DISCOVERY_MATCH_NOT_FOUND:
        reason = DISCOVERY_METRICS_NOT_FOUND;
        break;

    case DISCOVERY_MATCH_NOT_ALLOWED:
        reason = DISCOVERY_METRICS_METHOD_NOT_ALLOWED;
        break;

    case DISCOVERY_MATCH_UNAVAILABLE:
    case DISCOVERY_MATCH_DRAINED:
        reason = DISCOVERY_METRICS_UNAVAILABLE;
        break;

    case DISCOVERY_MATCH_PENDING:
        reason = DISCOVERY_METRICS_PENDING;
        break;

    case DISCOVERY_MATCH_DISABLED:
        reason = DISCOVERY_METRICS_DISABLED;
        break;

    case NGX_HTTP_DISCOVERY_NOT_CANONICAL:
        reason = DISCOVERY_METRICS_NONCANONICAL;
        break;

    default:
        overflow = DISCOVERY_METRICS_OVERFLOW_UNKNOWN;
        break;
    }

    if (overflow == DISCOVERY_METRICS_OVERFLOWS) {
        (void) ngx_atomic_fetch_add(&m->gateway[reason], 1);

    } else {
        (void) ngx_atomic_fetch_add(&m->overflow[overflow], 1);
    }

    return NGX_OK;
}


/* the decision's slot, read before the access phase set it: none */

static ngx_int_t
ngx_http_discovery_metrics_undecided(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    v->not_found = 1;

    return NGX_OK;
}


/* the request's method as the router's bits; 0: not one of the nine */

static uint32_t
ngx_http_discovery_metrics_method(ngx_http_request_t *r)
{
    switch (r->method) {
    case NGX_HTTP_GET:
        return DISCOVERY_METHOD_GET;
    case NGX_HTTP_HEAD:
        return DISCOVERY_METHOD_HEAD;
    case NGX_HTTP_POST:
        return DISCOVERY_METHOD_POST;
    case NGX_HTTP_PUT:
        return DISCOVERY_METHOD_PUT;
    case NGX_HTTP_DELETE:
        return DISCOVERY_METHOD_DELETE;
    case NGX_HTTP_PATCH:
        return DISCOVERY_METHOD_PATCH;
    case NGX_HTTP_OPTIONS:
        return DISCOVERY_METHOD_OPTIONS;
    case NGX_HTTP_TRACE:
        return DISCOVERY_METHOD_TRACE;
    default:
        break;
    }

    if (r->method_name.len == 7
        && ngx_strncmp(r->method_name.data, "CONNECT", 7) == 0)
    {
        return DISCOVERY_METHOD_CONNECT;
    }

    return 0;
}


static ngx_int_t
ngx_http_discovery_metrics_handler(ngx_http_request_t *r)
{
    ngx_int_t                           rc;
    ngx_pool_cleanup_t                 *cln;
    ngx_http_discovery_main_conf_t     *dmcf;
    ngx_http_discovery_metrics_page_t  *page;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_discovery_module);

    page = ngx_pcalloc(r->pool, sizeof(ngx_http_discovery_metrics_page_t));
    if (page == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    page->request = r;
    page->view.openmetrics = ngx_http_discovery_metrics_openmetrics(r);

    if (ngx_http_discovery_metrics_view(r, dmcf, &page->view) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (page->view.table_routes > NGX_HTTP_DISCOVERY_METRICS_LARGE) {
        page->large = 1;

        /* once the request's pool, the rendered page with it, is gone */
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cln->handler = ngx_http_discovery_metrics_freed;

#if (NGX_THREADS)
        if (ngx_http_discovery_task_post(&page->task, page,
                                         ngx_http_discovery_metrics_render,
                                         ngx_http_discovery_metrics_rendered,
                                         r->connection->log)
            == NGX_OK)
        {
            r->main->count++;
            return NGX_DONE;
        }
#endif
    }

    ngx_http_discovery_metrics_render(page, r->connection->log);

    return ngx_http_discovery_metrics_send(page);
}


/*
 * What the scrape renders: the counters are read where they lie, without
 * a lock; the services' records are copied under it.
 */

static ngx_int_t
ngx_http_discovery_metrics_view(ngx_http_request_t *r,
    ngx_http_discovery_main_conf_t *dmcf, discovery_metrics_view_t *view)
{
    ngx_uint_t                        i, pages;
    ngx_http_discovery_shctx_t       *sh;
    discovery_metrics_service_t      *s;
    ngx_http_discovery_record_t      *rec;
    ngx_http_discovery_service_t     *service;
    ngx_http_discovery_metrics_sh_t  *m;
    uint64_t                         *buckets;

    sh = dmcf->sh;

    if (sh == NULL || sh->metrics == NULL) {
        return NGX_OK;
    }

    m = sh->metrics;

    view->index = m->index;
    view->base = (u_char *) dmcf->shpool;

    for (i = 0; i < DISCOVERY_METRICS_REASONS; i++) {
        view->gateway[i] = m->gateway[i];
    }

    for (i = 0; i < DISCOVERY_METRICS_OVERFLOWS; i++) {
        view->overflow[i] = m->overflow[i];
    }

    s = ngx_pcalloc(r->pool, (dmcf->services.nelts + 1)
                             * sizeof(discovery_metrics_service_t));
    buckets = ngx_pcalloc(r->pool, (dmcf->services.nelts + 1)
                                   * (DISCOVERY_METRICS_POLL_BUCKETS + 1)
                                   * sizeof(uint64_t));
    if (s == NULL || buckets == NULL) {
        return NGX_ERROR;
    }

    view->services = s;
    service = dmcf->services.elts;

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    view->generation = sh->generation;
    view->table_routes = m->routes;
    view->conflicts = m->conflicts;
    view->overlaps = m->overlaps;

    pages = (dmcf->shpool->end - dmcf->shpool->start) / ngx_pagesize;
    view->zone_size = dmcf->shm_zone->shm.size;
    view->zone_used = view->zone_size
                      - ngx_min(pages, dmcf->shpool->pfree) * ngx_pagesize;

    for (i = 0; i < dmcf->services.nelts; i++) {
        rec = ngx_http_discovery_record_of(sh, &service[i]);

        s->name = (const char *) service[i].name.data;
        s->name_len = service[i].name.len;

        if (rec) {
            s->state = rec->health.state;
            s->last_success = rec->last_success;
            ngx_memcpy(s->polls, rec->poll_results, sizeof(s->polls));
            ngx_memcpy(buckets, rec->poll_buckets, sizeof(rec->poll_buckets));
            s->poll_buckets = buckets;
            s->poll_ms = rec->poll_ms;
            s->routes = rec->routed;
            s->rejected = rec->rejected;
            buckets += DISCOVERY_METRICS_POLL_BUCKETS + 1;
        }

        s++;
        view->n++;
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    return NGX_OK;
}


/* OpenMetrics when an Accept header prefers it, as Prometheus's does */

static ngx_uint_t
ngx_http_discovery_metrics_openmetrics(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == 6
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Accept", 6) == 0
            && discovery_metrics_accepts_openmetrics(
                   (const char *) h[i].value.data, h[i].value.len))
        {
            return 1;
        }
    }

    return 0;
}


/* in a background thread for many routes: reads only the page and zone */

static void
ngx_http_discovery_metrics_render(void *data, ngx_log_t *log)
{
    ngx_http_discovery_metrics_page_t  *page = data;

    page->rc = discovery_metrics_render(&page->view, &page->text, &page->err);
}


#if (NGX_THREADS)

static void
ngx_http_discovery_metrics_rendered(ngx_event_t *ev)
{
    ngx_http_discovery_metrics_page_t  *page = ev->data;

    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = page->request;
    c = r->connection;

    ngx_http_finalize_request(r, ngx_http_discovery_metrics_send(page));
    ngx_http_run_posted_requests(c);
}

#endif


/*
 * The rendered page is sent where it lies, freed with the request: a copy
 * into the request's pool would be made on the event loop, 160 MB of
 * allocation and copying at 100,000 routes, which every other request of
 * the worker would wait for.
 */

static ngx_int_t
ngx_http_discovery_metrics_send(ngx_http_discovery_metrics_page_t *page)
{
    ngx_http_request_t  *r;

    r = page->request;

    if (page->rc != DISCOVERY_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "discovery: cannot render the metrics: %s",
                      page->err.text);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_discovery_send_rendered(r,
                                         page->view.openmetrics
                                         ? &ngx_http_discovery_metrics_om
                                         : &ngx_http_discovery_metrics_text,
                                         &page->text);
}


static void
ngx_http_discovery_metrics_freed(void *data)
{
    ngx_http_discovery_publish_freed();
}
