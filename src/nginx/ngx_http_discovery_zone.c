
/*
 * The shared zone: one record per service (health, poll lease, last
 * outcome), kept in step with the configured services at start and on
 * every reload, and the snapshot of the route table, which publishing
 * replaces and each worker turns into its own router.  A record's lease
 * says which process polls the service.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_discovery.h"


/* how long past its timeout a poll's lease holds, for a dead poller */
#define NGX_HTTP_DISCOVERY_LEASE_SLACK  1000

#define NGX_HTTP_DISCOVERY_FNV_BASIS    0xcbf29ce484222325ULL


static ngx_int_t ngx_http_discovery_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_discovery_sync_roster(
    ngx_http_discovery_main_conf_t *dmcf, ngx_log_t *log);
static ngx_int_t ngx_http_discovery_adopt_locked(
    ngx_http_discovery_main_conf_t *dmcf, u_char *loaded, size_t loaded_len,
    discovery_service_conf_t *roster, ngx_http_discovery_image_t *image,
    ngx_log_t *log);
static ngx_int_t ngx_http_discovery_roster_table_locked(
    ngx_http_discovery_main_conf_t *dmcf, u_char *old, size_t old_len,
    discovery_service_conf_t *roster, discovery_buf_t *table,
    discovery_buf_t *built, ngx_log_t *log);
static ngx_int_t ngx_http_discovery_records_alloc_locked(
    ngx_http_discovery_main_conf_t *dmcf, ngx_http_discovery_record_t **added,
    size_t *need);
static void ngx_http_discovery_records_free_locked(
    ngx_http_discovery_main_conf_t *dmcf,
    ngx_http_discovery_record_t **added);
static void ngx_http_discovery_roster_commit_locked(
    ngx_http_discovery_main_conf_t *dmcf, ngx_http_discovery_record_t **added,
    u_char *p, size_t size, discovery_buf_t *table,
    ngx_http_discovery_image_t *image);
static ngx_http_discovery_image_t *ngx_http_discovery_roster_image_locked(
    ngx_http_discovery_main_conf_t *dmcf, discovery_buf_t *table,
    discovery_buf_t *built, ngx_log_t *log);
static void ngx_http_discovery_restore_health(
    ngx_http_discovery_main_conf_t *dmcf, discovery_buf_t *snapshot,
    ngx_http_discovery_image_t *image, discovery_service_conf_t *roster);
static uint64_t ngx_http_discovery_fingerprint(
    ngx_http_discovery_service_t *service);
static uint64_t ngx_http_discovery_fnv(uint64_t h, u_char *p, size_t len);
static void ngx_http_discovery_set_etag(ngx_http_discovery_record_t *rec,
    ngx_str_t *etag);
static ngx_http_discovery_record_t *ngx_http_discovery_record(
    ngx_http_discovery_shctx_t *sh, ngx_str_t *name);
static ngx_http_discovery_record_t *ngx_http_discovery_record_create_locked(
    ngx_http_discovery_main_conf_t *dmcf,
    ngx_http_discovery_service_t *service);


static void ngx_http_discovery_zone_origins(
    ngx_http_discovery_main_conf_t *dmcf, ngx_http_discovery_zone_copy_t *c);


static ngx_str_t  ngx_http_discovery_zone_name = ngx_string("discovery");


ngx_int_t
ngx_http_discovery_zone_add(ngx_conf_t *cf,
    ngx_http_discovery_main_conf_t *dmcf)
{
    ngx_shm_zone_t  *shm_zone;

    shm_zone = ngx_shared_memory_add(cf, &ngx_http_discovery_zone_name,
                                     dmcf->zone_size,
                                     &ngx_http_discovery_module);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "discovery zone is already defined");
        return NGX_ERROR;
    }

    shm_zone->init = ngx_http_discovery_init_zone;
    shm_zone->data = dmcf;
    dmcf->shm_zone = shm_zone;

    return NGX_OK;
}


/*
 * Runs in the master at start and on every reload.  A reload with the
 * zone unchanged finds the old table in `data` and keeps it: only the
 * roster follows the new configuration.
 */

static ngx_int_t
ngx_http_discovery_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_discovery_main_conf_t  *odmcf = data;

    size_t                           len;
    ngx_slab_pool_t                 *shpool;
    ngx_http_discovery_main_conf_t  *dmcf;

    dmcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

#if (NGX_LINUX && defined MADV_HUGEPAGE)

    /*
     * Requests probe the router image and the metrics' index at random:
     * with 4 KiB pages a probe of a large table costs a TLB miss besides
     * a cache miss.  Linux backs shared memory with huge pages only when
     * /sys/kernel/mm/transparent_hugepage/shmem_enabled lets it: "advise"
     * takes this advice, the default "never" ignores it.  The workers
     * inherit the advice with the mapping.
     */

    if (madvise(shm_zone->shm.addr, shm_zone->shm.size, MADV_HUGEPAGE)
        == -1)
    {
        ngx_log_error(NGX_LOG_INFO, shm_zone->shm.log, ngx_errno,
                      "discovery: madvise(MADV_HUGEPAGE) of zone \"%V\" "
                      "failed", &shm_zone->shm.name);
    }

#endif

    if (odmcf) {
        dmcf->sh = odmcf->sh;
        dmcf->shpool = odmcf->shpool;

        if (ngx_http_discovery_sync_roster(dmcf, shm_zone->shm.log)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_discovery_metrics_init_zone(dmcf, shm_zone->shm.log);
    }

    dmcf->shpool = shpool;

    if (shm_zone->shm.exists) {
        dmcf->sh = shpool->data;
        return NGX_OK;
    }

    dmcf->sh = ngx_slab_alloc(shpool, sizeof(ngx_http_discovery_shctx_t));
    if (dmcf->sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(dmcf->sh, sizeof(ngx_http_discovery_shctx_t));
    ngx_queue_init(&dmcf->sh->records);
    ngx_rbtree_init(&dmcf->sh->rbtree, &dmcf->sh->sentinel,
                    ngx_str_rbtree_insert_value);
    shpool->data = dmcf->sh;

    len = sizeof(" in discovery zone \"\"") + shm_zone->shm.name.len;

    shpool->log_ctx = ngx_slab_alloc(shpool, len);
    if (shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shpool->log_ctx, " in discovery zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a table too large for the zone is reported by the module itself */
    shpool->log_nomem = 0;

    if (ngx_http_discovery_sync_roster(dmcf, shm_zone->shm.log) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_discovery_metrics_init_zone(dmcf, shm_zone->shm.log);
}


/*
 * Makes the zone's records and the table's roster follow the services
 * of the configuration: records of removed services go, those of new or
 * re-pointed services start afresh and are polled at once.
 *
 * All or nothing: the new table is built and everything the new
 * configuration needs in the zone (its new records, room for its table)
 * is allocated before anything changes.  If that does not fit, what was
 * allocated is freed, the zone stays exactly as the old configuration
 * has it, and nginx fails the reload (or the start): the old workers go
 * on routing and polling as before.
 */

static ngx_int_t
ngx_http_discovery_sync_roster(ngx_http_discovery_main_conf_t *dmcf,
    ngx_log_t *log)
{
    u_char                         *p, *old, *loaded;
    size_t                          size, old_len, loaded_len, need;
    ngx_int_t                       rc;
    ngx_uint_t                      i, n, from_file, kept;
    discovery_buf_t                 table, built;
    discovery_service_conf_t       *roster;
    ngx_http_discovery_shctx_t     *sh;
    ngx_http_discovery_image_t     *image;
    ngx_http_discovery_record_t   **added;
    ngx_http_discovery_service_t   *service;

    sh = dmcf->sh;
    n = dmcf->services.nelts;
    service = dmcf->services.elts;

    roster = ngx_alloc(n * (sizeof(discovery_service_conf_t)
                            + sizeof(ngx_http_discovery_record_t *)),
                       log);
    if (roster == NULL) {
        return NGX_ERROR;
    }

    added = (ngx_http_discovery_record_t **) &roster[n];

    for (i = 0; i < n; i++) {
        service[i].fingerprint = ngx_http_discovery_fingerprint(&service[i]);

        roster[i].name = (const char *) service[i].name.data;
        roster[i].name_len = service[i].name.len;
        roster[i].url = (const char *) service[i].url.data;
        roster[i].url_len = service[i].url.len;
        roster[i].upstream = (const char *) service[i].upstream.data;
        roster[i].upstream_len = service[i].upstream.len;
    }

    /* a new zone: the table saved by the last run, if any; not for nginx -t */

    loaded = NULL;
    loaded_len = 0;

    if (sh->snapshot == NULL && dmcf->state.len && !ngx_test_config) {
        (void) ngx_http_discovery_state_load(dmcf, log, &loaded, &loaded_len);
    }

    from_file = (loaded != NULL);

    need = 0;
    table.data = NULL;
    table.len = 0;
    built.data = NULL;
    built.len = 0;
    image = NULL;

    rc = NGX_ERROR;

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    /* its router, saved beside it, read into the zone if the table stays */

    if (loaded) {
        image = ngx_http_discovery_state_image_locked(dmcf, log, loaded,
                                                      loaded_len);
    }

    kept = 0;

    if (image
        && ngx_http_discovery_adopt_locked(dmcf, loaded, loaded_len, roster,
                                           image, log)
           == NGX_OK)
    {
        /* the table as it was loaded, its generation too: see below */
        table.data = loaded;
        table.len = loaded_len;
        loaded = NULL;
        kept = 1;

    } else {
        if (image) {
            ngx_http_discovery_image_free_locked(dmcf, image);
            image = NULL;
        }

        old = loaded ? loaded : sh->snapshot;
        old_len = loaded ? loaded_len : sh->snapshot_len;

        if (ngx_http_discovery_roster_table_locked(dmcf, old, old_len, roster,
                                                   &table, &built, log)
            != NGX_OK)
        {
            goto done;
        }
    }

    /* "need" is what the zone must find room for: new records and table */

    if (ngx_http_discovery_records_alloc_locked(dmcf, added, &need)
        != NGX_OK)
    {
        goto too_small;
    }

    p = ngx_http_discovery_table_alloc_locked(dmcf, table.len, &size);

    if (p == NULL && from_file) {
        /* the routes of a larger zone's table: the polls bring them back */

        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "discovery zone \"%V\" of %uz bytes is too small for "
                      "the table loaded from \"%V\" (%uz bytes), started "
                      "without its routes",
                      &dmcf->shm_zone->shm.name, dmcf->shm_zone->shm.size,
                      &dmcf->state, table.len);

        from_file = 0;
        discovery_buf_free(&table);
        discovery_buf_free(&built);

        if (image) {
            ngx_http_discovery_image_free_locked(dmcf, image);
            image = NULL;
        }

        if (ngx_http_discovery_roster_table_locked(dmcf, NULL, 0, roster,
                                                   &table, &built, log)
            != NGX_OK)
        {
            ngx_http_discovery_records_free_locked(dmcf, added);
            goto done;
        }

        p = ngx_http_discovery_table_alloc_locked(dmcf, table.len, &size);
    }

    if (p == NULL) {
        ngx_http_discovery_records_free_locked(dmcf, added);
        goto too_small;
    }

    /* everything fits: from here on, nothing fails */

    if (image == NULL) {
        image = ngx_http_discovery_roster_image_locked(dmcf, &table, &built,
                                                       log);
    }

    ngx_http_discovery_roster_commit_locked(dmcf, added, p, size, &table,
                                            image);

    if (kept) {
        /* the state file and its image file hold this table: none written */
        sh->saved_generation = sh->generation;
    }

    /* a new zone takes the overrides over from the table it starts with */
    ngx_http_discovery_controls_restore_locked(dmcf, &table, log);

    if (from_file) {
        ngx_http_discovery_restore_health(dmcf, &table, image, roster);
    }

    image = NULL;
    rc = NGX_OK;
    goto done;

too_small:

    ngx_log_error(NGX_LOG_EMERG, log, 0,
                  "discovery zone \"%V\" of %uz bytes is too small for the "
                  "table of the new configuration (%uz bytes)",
                  &dmcf->shm_zone->shm.name, dmcf->shm_zone->shm.size,
                  need + table.len);

done:

    if (image) {
        ngx_http_discovery_image_free_locked(dmcf, image);
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    /*
     * The master does not write the state file (it runs as root, in a
     * directory of the worker user): the first worker it starts does, or
     * nginx alone once it runs.
     */

    if (table.data) {
        discovery_buf_free(&table);
    }

    discovery_buf_free(&built);

    if (loaded) {
        ngx_free(loaded);
    }

    ngx_free(roster);

    return rc;
}


/*
 * A start from the state file with its router read into the zone: when
 * the loaded table is kept as it is (the configuration's services and
 * overlap policy, checked by this module's rules), it is resealed in place
 * and the image given its generation, nothing decoded or built; else
 * NGX_DECLINED, and the table is made as on every start.
 */

static ngx_int_t
ngx_http_discovery_adopt_locked(ngx_http_discovery_main_conf_t *dmcf,
    u_char *loaded, size_t loaded_len, discovery_service_conf_t *roster,
    ngx_http_discovery_image_t *image, ngx_log_t *log)
{
    int                rc;
    uint64_t           generation;
    discovery_error_t  err;

    /*
     * The table keeps its generation, so that the state file and the
     * image file still hold it and the first worker writes neither (a
     * second's writing at 1,000,000 routes): a new zone starts from it.
     */

    rc = discovery_snapshot_check(loaded, loaded_len, &generation, &err);

    if (rc == DISCOVERY_OK && generation == 0) {
        rc = DISCOVERY_DECLINED;
    }

    if (rc == DISCOVERY_OK) {
        rc = discovery_snapshot_adopt_image(loaded, loaded_len, image->data,
                                            image->len, roster,
                                            dmcf->services.nelts,
                                            dmcf->overlap_deny, generation,
                                            &err);
    }

    if (rc == DISCOVERY_OK) {
        dmcf->sh->generation = generation - 1;   /* install() adds one */

        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "discovery: router image loaded from \"%V\"",
                      &dmcf->state_image);
        return NGX_OK;
    }

    if (rc == DISCOVERY_DECLINED) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "discovery: router image file \"%V\" not used: the "
                      "table is checked again", &dmcf->state_image);

    } else {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "discovery: router image file \"%V\" not used: %s",
                      &dmcf->state_image, err.text);
    }

    return NGX_DECLINED;
}


/*
 * The table of the configuration's roster, from the old table's services,
 * and its router image in *built (data NULL if it could not be built).
 */

static ngx_int_t
ngx_http_discovery_roster_table_locked(ngx_http_discovery_main_conf_t *dmcf,
    u_char *old, size_t old_len, discovery_service_conf_t *roster,
    discovery_buf_t *table, discovery_buf_t *built, ngx_log_t *log)
{
    discovery_log_t               dlog;
    discovery_error_t             err;
    ngx_http_discovery_log_ctx_t  lctx;

    lctx.log = log;
    lctx.service = NULL;
    dlog.handler = ngx_http_discovery_log_handler;
    dlog.data = &lctx;

    if (discovery_snapshot_roster(old, old_len, roster, dmcf->services.nelts,
                                  dmcf->overlap_deny, dmcf->sh->generation + 1,
                                  table, built, &dlog, &err)
        != DISCOVERY_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "discovery: cannot build the table: %s", err.text);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A record for each service the zone has no record of at its URL, not
 * linked to the zone's list yet: added[i] for service i, NULL when its
 * record stays.  *need receives their size.  If one does not fit, none
 * is kept.
 */

static ngx_int_t
ngx_http_discovery_records_alloc_locked(ngx_http_discovery_main_conf_t *dmcf,
    ngx_http_discovery_record_t **added, size_t *need)
{
    size_t                         size;
    ngx_uint_t                     i, failed;
    ngx_http_discovery_record_t   *rec;
    ngx_http_discovery_service_t  *service;

    service = dmcf->services.elts;
    failed = 0;
    *need = 0;

    for (i = 0; i < dmcf->services.nelts; i++) {
        added[i] = NULL;

        rec = ngx_http_discovery_record(dmcf->sh, &service[i].name);

        if (rec
            && rec->url.len == service[i].url.len
            && ngx_strncmp(rec->url.data, service[i].url.data, rec->url.len)
               == 0)
        {
            continue;
        }

        size = sizeof(ngx_http_discovery_record_t) + service[i].name.len
               + service[i].url.len;
        *need += size;

        /* the others are still counted, for the message */
        if (!failed) {
            added[i] = ngx_http_discovery_record_create_locked(dmcf,
                                                               &service[i]);
            failed = (added[i] == NULL);
        }
    }

    if (failed) {
        ngx_http_discovery_records_free_locked(dmcf, added);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_discovery_records_free_locked(ngx_http_discovery_main_conf_t *dmcf,
    ngx_http_discovery_record_t **added)
{
    ngx_uint_t  i;

    for (i = 0; i < dmcf->services.nelts; i++) {
        if (added[i]) {
            ngx_slab_free_locked(dmcf->shpool, added[i]);
            added[i] = NULL;
        }
    }
}


/*
 * Applies what ngx_http_discovery_sync_roster() prepared: the records of
 * services no longer configured at their URL go, the new ones come in,
 * and the table at p (of size bytes) is published.
 */

static void
ngx_http_discovery_roster_commit_locked(ngx_http_discovery_main_conf_t *dmcf,
    ngx_http_discovery_record_t **added, u_char *p, size_t size,
    discovery_buf_t *table, ngx_http_discovery_image_t *image)
{
    ngx_uint_t                     i;
    ngx_queue_t                   *q, *next;
    ngx_http_discovery_shctx_t    *sh;
    ngx_http_discovery_record_t   *rec;
    ngx_http_discovery_service_t  *service;

    sh = dmcf->sh;
    service = dmcf->services.elts;

    /* the records a service keeps: those of its name at its URL */

    for (i = 0; i < dmcf->services.nelts; i++) {
        rec = added[i] ? NULL
                       : ngx_http_discovery_record(sh, &service[i].name);

        if (rec) {
            rec->kept = 1;
        }
    }

    for (q = ngx_queue_head(&sh->records);
         q != ngx_queue_sentinel(&sh->records);
         q = next)
    {
        next = ngx_queue_next(q);
        rec = ngx_queue_data(q, ngx_http_discovery_record_t, queue);

        if (rec->kept) {
            rec->kept = 0;
            continue;
        }

        ngx_queue_remove(q);
        ngx_rbtree_delete(&sh->rbtree, &rec->node.node);
        ngx_slab_free_locked(dmcf->shpool, rec);
    }

    for (i = 0; i < dmcf->services.nelts; i++) {
        if (added[i]) {
            ngx_queue_insert_tail(&sh->records, &added[i]->queue);
            ngx_rbtree_insert(&sh->rbtree, &added[i]->node.node);
            continue;
        }

        /*
         * A service whose document is now read otherwise: its published
         * routes were read with the old options, and a conditional poll
         * would keep them as long as the document does not change.  It
         * is polled at once, for the whole document; a poll in flight
         * with the old options is dropped when it ends.
         */

        rec = ngx_http_discovery_record(sh, &service[i].name);

        if (rec->fingerprint != service[i].fingerprint) {
            rec->fingerprint = service[i].fingerprint;
            rec->etag_len = 0;
            rec->routes_hash = 0;
            rec->lease_pid = 0;
            rec->next_poll = ngx_current_msec;

            ngx_log_error(NGX_LOG_INFO, dmcf->shm_zone->shm.log, 0,
                          "discovery: service \"%V\": its document is read "
                          "otherwise, polled again", &service[i].name);
        }
    }

    sh->failed_len = 0;

    ngx_memcpy(p, table->data, table->len);
    (void) ngx_http_discovery_table_install_locked(dmcf, p, size, table->len,
                                                   image);
}


/*
 * The router image of the roster's table, in the zone, or NULL: workers
 * then build their own.  In the master, at start or reload, with the lock
 * held as for the table itself; the table's room is taken already.
 */

static ngx_http_discovery_image_t *
ngx_http_discovery_roster_image_locked(ngx_http_discovery_main_conf_t *dmcf,
    discovery_buf_t *table, discovery_buf_t *built, ngx_log_t *log)
{
    ngx_http_discovery_image_t  *image;

    if (built->data == NULL) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "discovery: cannot build the router of the table: "
                      "workers build their own");
        return NULL;
    }

    /* as publishing does: room left for the next table beside it */

    image = NULL;

    if (dmcf->shpool->pfree * ngx_pagesize
        >= table->len + built->len + 2 * ngx_pagesize)
    {
        image = ngx_http_discovery_image_alloc_locked(dmcf, built->len, log);
    }

    if (image) {
        ngx_memcpy(image->data, built->data, built->len);

    } else {
        ngx_http_discovery_image_no_room(dmcf, log, table->len, built->len);
    }

    return image;
}


/*
 * A zone started from the state file: each record's health starts as the
 * table says, so that fails= still applies to the first polls after a
 * restart.  Called with the lock held.
 */

static void
ngx_http_discovery_restore_health(ngx_http_discovery_main_conf_t *dmcf,
    discovery_buf_t *snapshot, ngx_http_discovery_image_t *image,
    discovery_service_conf_t *roster)
{
    int                            rc, state;
    uint32_t                      *states;
    ngx_uint_t                     i;
    discovery_error_t              err;
    discovery_router_t            *router;
    ngx_http_discovery_record_t   *rec;
    ngx_http_discovery_service_t  *service;

    states = ngx_alloc(dmcf->services.nelts * sizeof(uint32_t),
                       ngx_cycle->log);
    if (states == NULL) {
        return;
    }

    /* the image, of the table, has the roster's states: nothing decoded */

    router = image ? discovery_router_open(image->data, image->len, &err)
                   : NULL;

    if (router) {
        rc = DISCOVERY_OK;

        for (i = 0; i < dmcf->services.nelts; i++) {
            state = discovery_router_state(router, i);
            states[i] = (state < 0) ? DISCOVERY_STATE_PENDING
                                    : (uint32_t) state;
        }

        discovery_router_destroy(router);

    } else {
        rc = discovery_snapshot_states(snapshot->data, snapshot->len, roster,
                                       dmcf->services.nelts, states, &err);
    }

    if (rc == DISCOVERY_OK) {
        service = dmcf->services.elts;

        for (i = 0; i < dmcf->services.nelts; i++) {
            rec = ngx_http_discovery_record(dmcf->sh, &service[i].name);
            if (rec) {
                rec->health.state = states[i];
            }
        }
    }

    ngx_free(states);
}


/* the tag of the document whose routes are now published */

static void
ngx_http_discovery_set_etag(ngx_http_discovery_record_t *rec, ngx_str_t *etag)
{
    rec->etag_len = (etag->len <= NGX_HTTP_DISCOVERY_ETAG_LEN) ? etag->len : 0;
    ngx_memcpy(rec->etag, etag->data, rec->etag_len);
}


/* the route set's encoding is the same for the same routes */

uint64_t
ngx_http_discovery_routes_hash(discovery_buf_t *routes)
{
    uint64_t  h;

    h = ngx_http_discovery_fnv(NGX_HTTP_DISCOVERY_FNV_BASIS, routes->data,
                               routes->len);

    /* 0 stands for "nothing published yet" */
    return h ? h : 1;
}


/*
 * What decides how a service's document is read: where it is fetched
 * (url and uri=), how it is parsed (format=) and which of its routes are
 * kept (prefix=, in order).  A reload that changes it makes the published
 * routes stale, though the document itself may be unchanged.
 */

static uint64_t
ngx_http_discovery_fingerprint(ngx_http_discovery_service_t *service)
{
    u_char      format;
    uint64_t    h;
    ngx_str_t  *prefix;
    ngx_uint_t  i;

    h = ngx_http_discovery_fnv(NGX_HTTP_DISCOVERY_FNV_BASIS,
                               service->poll_url.data, service->poll_url.len);

    format = (u_char) (service->format | (service->grpc_internal << 4));
    h = ngx_http_discovery_fnv(h, &format, 1);

    if (service->prefixes) {
        prefix = service->prefixes->elts;

        for (i = 0; i < service->prefixes->nelts; i++) {
            /* the NUL ends each: "/a" and "/b" differ from "/a/b" */
            h = ngx_http_discovery_fnv(h, prefix[i].data, prefix[i].len);
            h = ngx_http_discovery_fnv(h, (u_char *) "", 1);
        }
    }

    return h;
}


/* FNV-1a, continued from h */

static uint64_t
ngx_http_discovery_fnv(uint64_t h, u_char *p, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        h = (h ^ p[i]) * 0x100000001b3ULL;
    }

    return h;
}


/*
 * The record of service as this process's configuration has it: the same
 * URL, its document read the same way.  NULL when a reload removed the
 * service, re-pointed it or changed how its document is read: what this
 * process would poll or report is then outdated (it is on its way out).
 */

ngx_http_discovery_record_t *
ngx_http_discovery_record_of(ngx_http_discovery_shctx_t *sh,
    ngx_http_discovery_service_t *service)
{
    ngx_http_discovery_record_t  *rec;

    rec = ngx_http_discovery_record(sh, &service->name);

    if (rec == NULL
        || rec->url.len != service->url.len
        || ngx_strncmp(rec->url.data, service->url.data, rec->url.len) != 0
        || rec->fingerprint != service->fingerprint)
    {
        return NULL;
    }

    return rec;
}


static ngx_http_discovery_record_t *
ngx_http_discovery_record(ngx_http_discovery_shctx_t *sh, ngx_str_t *name)
{
    ngx_str_node_t  *sn;

    sn = ngx_str_rbtree_lookup(&sh->rbtree, name,
                               ngx_crc32_short(name->data, name->len));
    if (sn == NULL) {
        return NULL;
    }

    return (ngx_http_discovery_record_t *)
               ((u_char *) sn - offsetof(ngx_http_discovery_record_t, node));
}


/* a record for service, not linked to the zone's list yet */

static ngx_http_discovery_record_t *
ngx_http_discovery_record_create_locked(ngx_http_discovery_main_conf_t *dmcf,
    ngx_http_discovery_service_t *service)
{
    u_char                       *p;
    ngx_http_discovery_record_t  *rec;

    rec = ngx_slab_calloc_locked(dmcf->shpool,
                                 sizeof(ngx_http_discovery_record_t)
                                 + service->name.len + service->url.len);
    if (rec == NULL) {
        return NULL;
    }

    p = (u_char *) rec + sizeof(ngx_http_discovery_record_t);

    rec->name.data = p;
    rec->name.len = service->name.len;
    p = ngx_cpymem(p, service->name.data, service->name.len);

    rec->node.str = rec->name;
    rec->node.node.key = ngx_crc32_short(rec->name.data, rec->name.len);

    rec->url.data = p;
    rec->url.len = service->url.len;
    ngx_memcpy(p, service->url.data, service->url.len);

    rec->fingerprint = service->fingerprint;

    return rec;
}


/*
 * Decides whether this process polls `service` now.  The zone's record
 * says when the next poll is due and who holds the lease, so exactly one
 * process polls per interval whatever the number of workers.  *next is
 * when to ask again; *etag (of NGX_HTTP_DISCOVERY_ETAG_LEN bytes) receives
 * the entity tag of the published document, for a conditional request.
 */

ngx_int_t
ngx_http_discovery_claim(ngx_http_discovery_main_conf_t *dmcf,
    ngx_http_discovery_service_t *service, ngx_msec_t *next, ngx_str_t *etag)
{
    ngx_int_t                     rc;
    ngx_msec_t                    now, late;
    ngx_http_discovery_record_t  *rec;

    now = ngx_current_msec;
    rc = NGX_DECLINED;
    *next = service->interval;

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    rec = ngx_http_discovery_record_of(dmcf->sh, service);

    if (rec == NULL) {
        /* changed by a reload: this process is on its way out */
        goto done;
    }

    if ((ngx_msec_int_t) (rec->next_poll - now) > 0) {
        *next = rec->next_poll - now;
        goto done;
    }

    if (rec->lease_pid && (ngx_msec_int_t) (rec->lease_until - now) > 0) {
        *next = rec->lease_until - now;
        goto done;
    }

    if (rec->poller == DISCOVERY_POLLER_OTHER) {
        /* share=on: another gateway polls it; its routes come from etcd */
        goto done;
    }

    rec->lease_pid = ngx_pid;
    rec->lease_until = now + service->timeout
                       + NGX_HTTP_DISCOVERY_LEASE_SLACK;

    if (rec->last_check == 0) {
        /*
         * All services are polled at start; after that their polls are
         * spread over the interval, so that many services do not make a
         * burst of polls in one turn of the event loop every interval.
         */
        rec->next_poll = now + service->interval
                         + service->interval * service->index
                           / dmcf->services.nelts;

    } else {
        /*
         * The next poll keeps the service's place in the interval even
         * when this one is late: after the event loop was held up (a large
         * table parsed, a slow disk), the timers that expired meanwhile
         * all fire in one turn, and polls scheduled from "now" would stay
         * bunched together from then on.
         */
        late = now - rec->next_poll;
        rec->next_poll += (late / service->interval + 1) * service->interval;

        /* after a poll late by most of an interval, not another at once */
        if (rec->next_poll - now < service->interval / 2) {
            rec->next_poll += service->interval;
        }
    }

    *next = rec->next_poll - now;
    etag->len = rec->etag_len;
    ngx_memcpy(etag->data, rec->etag, rec->etag_len);
    rc = NGX_OK;

done:

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    return rc;
}


/*
 * A copy of the zone's table (ngx_alloc'ed) and its generation, or NULL:
 * no table, or no memory.  The memory is allocated before the lock is
 * taken, which is held only for the copy.
 */

u_char *
ngx_http_discovery_table_copy(ngx_http_discovery_main_conf_t *dmcf,
    size_t *len, ngx_atomic_uint_t *generation)
{
    u_char  *copy;
    size_t   size;

    /* read without the lock: checked under it, and tried again if it grew */
    size = dmcf->sh->snapshot_len;

    for ( ;; ) {
        if (size == 0) {
            return NULL;
        }

        copy = ngx_alloc(size, ngx_cycle->log);
        if (copy == NULL) {
            return NULL;
        }

        ngx_shmtx_lock(&dmcf->shpool->mutex);

        *len = dmcf->sh->snapshot_len;

        if (*len <= size) {
            *generation = dmcf->sh->generation;
            ngx_memcpy(copy, dmcf->sh->snapshot, *len);
            ngx_shmtx_unlock(&dmcf->shpool->mutex);

            if (*len == 0) {
                ngx_free(copy);
                return NULL;
            }

            return copy;
        }

        ngx_shmtx_unlock(&dmcf->shpool->mutex);

        ngx_free(copy);
        size = *len;
    }
}


/*
 * The outcome of a poll.  Updates the record, runs the health state
 * machine and, when what routing sees has changed, has a new table
 * published shortly after, with the changes of other polls.
 */

void
ngx_http_discovery_report(ngx_http_discovery_main_conf_t *dmcf,
    ngx_http_discovery_service_t *service,
    ngx_http_discovery_outcome_t *outcome, ngx_log_t *log)
{
    int                            changed;
    uint64_t                       hash, poll;
    discovery_buf_t               *routes;
    ngx_http_discovery_shctx_t    *sh;
    ngx_http_discovery_record_t   *rec;

    sh = dmcf->sh;
    routes = outcome->routes;

    /* a whole route set's worth of work: not under the lock, if not done */
    hash = 0;

    if (routes) {
        hash = outcome->hash ? outcome->hash
                             : ngx_http_discovery_routes_hash(routes);
    }

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    rec = ngx_http_discovery_record_of(sh, service);

    if (rec == NULL) {
        /* the service was changed by a reload meanwhile */
        ngx_shmtx_unlock(&dmcf->shpool->mutex);
        return;
    }

    if (rec->lease_pid == ngx_pid) {
        rec->lease_pid = 0;
    }

    if (outcome->state == 0 && rec->poller == DISCOVERY_POLLER_OTHER) {
        /*
         * share=on: a poll begun before another gateway's claim was seen;
         * that gateway's routes are the service's now.
         */
        ngx_shmtx_unlock(&dmcf->shpool->mutex);
        return;
    }

    poll = ++rec->polls;

    if (outcome->state == 0) {
        ngx_http_discovery_metrics_poll_locked(rec, outcome);
    }

    if (outcome->ok && routes == NULL) {
        /*
         * A 304 to the published document's tag: the published routes are
         * this poll's, later than any change of them still in flight.
         */
        rec->published_poll = poll;
    }

    if (outcome->state) {
        /* the gateway that polled it counted fails= and passes= */
        changed = (rec->health.state != outcome->state);
        rec->health.state = outcome->state;
        rec->health.fails = 0;
        rec->health.passes = 0;

    } else {
        changed = discovery_health_update(&rec->health, outcome->ok,
                                          service->fails, service->passes);
    }

    rec->last_check = ngx_time();

    if (outcome->ok) {
        rec->last_success = rec->last_check;
        rec->last_error_len = 0;

    } else {
        rec->last_error_len = ngx_min(outcome->error.len,
                                      DISCOVERY_ERROR_LEN);
        ngx_memcpy(rec->last_error, outcome->error.data,
                   rec->last_error_len);
    }

    if (changed && rec->health.state == DISCOVERY_STATE_HEALTHY) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "discovery: service \"%V\" is healthy", &service->name);

    } else if (changed) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "discovery: service \"%V\" is unhealthy, "
                      "its routes answer 503", &service->name);
    }

    /*
     * Most polls change nothing: the table is not decoded for them, which
     * would cost in proportion to the whole table, under the lock.
     */

    if (!changed
        && !rec->republish
        && (routes == NULL || hash == rec->routes_hash))
    {
        if (routes) {
            /* a later poll than any change of its routes in flight */
            rec->published_poll = poll;
            ngx_http_discovery_set_etag(rec, &outcome->etag);
        }

        ngx_shmtx_unlock(&dmcf->shpool->mutex);

        if (routes) {
            /* routes an earlier poll left pending are outdated */
            ngx_http_discovery_defer_drop_routes(service);
        }

        return;
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    ngx_http_discovery_defer(service, outcome, hash, poll);
}


/* a worker going away hands its polls to the others at once */

void
ngx_http_discovery_release_leases(ngx_http_discovery_main_conf_t *dmcf)
{
    ngx_queue_t                  *q;
    ngx_http_discovery_record_t  *rec;

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    for (q = ngx_queue_head(&dmcf->sh->records);
         q != ngx_queue_sentinel(&dmcf->sh->records);
         q = ngx_queue_next(q))
    {
        rec = ngx_queue_data(q, ngx_http_discovery_record_t, queue);

        if (rec->lease_pid == ngx_pid) {
            rec->lease_pid = 0;
            rec->next_poll = ngx_current_msec;
        }
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);
}


void
ngx_http_discovery_log_handler(void *data, int level, const char *msg,
    size_t len)
{
    ngx_http_discovery_log_ctx_t  *lctx = data;

    ngx_uint_t  ngx_level;

    switch (level) {
    case DISCOVERY_LOG_ERR:
        ngx_level = NGX_LOG_ERR;
        break;
    case DISCOVERY_LOG_WARN:
        ngx_level = NGX_LOG_WARN;
        break;
    case DISCOVERY_LOG_INFO:
        ngx_level = NGX_LOG_INFO;
        break;
    default:
        ngx_level = NGX_LOG_DEBUG;
        break;
    }

    if (lctx->service) {
        ngx_log_error(ngx_level, lctx->log, 0, "discovery: service \"%V\": %*s",
                      lctx->service, len, msg);

    } else {
        ngx_log_error(ngx_level, lctx->log, 0, "discovery: %*s", len, msg);
    }
}


/*
 * A copy of the zone's table, the API's controls and each service's
 * record, allocated from `pool`, for the status page and the API: they
 * are rendered outside the lock.
 */

ngx_int_t
ngx_http_discovery_zone_copy(ngx_pool_t *pool,
    ngx_http_discovery_main_conf_t *dmcf, ngx_http_discovery_zone_copy_t *c)
{
    size_t                        i, size;
    u_char                       *p;
    ngx_queue_t                  *q;
    ngx_http_discovery_shctx_t   *sh;
    discovery_service_stats_t    *st;
    ngx_http_discovery_record_t  *rec;

    sh = dmcf->sh;

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    i = 0;
    size = sh->snapshot_len + sh->controls_len;

    for (q = ngx_queue_head(&sh->records);
         q != ngx_queue_sentinel(&sh->records);
         q = ngx_queue_next(q))
    {
        rec = ngx_queue_data(q, ngx_http_discovery_record_t, queue);
        size += rec->name.len + rec->last_error_len;
        i++;
    }

    st = ngx_palloc(pool, (i ? i : 1) * sizeof(discovery_service_stats_t));
    p = ngx_pnalloc(pool, size ? size : 1);

    if (st == NULL || p == NULL) {
        ngx_shmtx_unlock(&dmcf->shpool->mutex);
        return NGX_ERROR;
    }

    ngx_memzero(c, sizeof(ngx_http_discovery_zone_copy_t));

    c->stats = st;
    c->n = i;
    c->controls_version = sh->controls_version;
    c->failed_len = sh->failed_len;

    if (sh->snapshot) {
        c->snapshot = p;
        c->snapshot_len = sh->snapshot_len;
        p = ngx_cpymem(p, sh->snapshot, sh->snapshot_len);
    }

    if (sh->controls) {
        c->controls = p;
        c->controls_len = sh->controls_len;
        p = ngx_cpymem(p, sh->controls, sh->controls_len);
    }

    for (q = ngx_queue_head(&sh->records);
         q != ngx_queue_sentinel(&sh->records);
         q = ngx_queue_next(q))
    {
        rec = ngx_queue_data(q, ngx_http_discovery_record_t, queue);

        st->name = (const char *) p;
        st->name_len = rec->name.len;
        p = ngx_cpymem(p, rec->name.data, rec->name.len);

        st->last_error = (const char *) p;
        st->last_error_len = rec->last_error_len;
        p = ngx_cpymem(p, rec->last_error, rec->last_error_len);

        st->last_check = rec->last_check;
        st->last_success = rec->last_success;
        st->failures = rec->health.fails;
        st->registry = 0;
        st->poller = (int) rec->poller;
        st->poller_lease = rec->poller_lease;
        st++;
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    if (dmcf->registry) {
        ngx_http_discovery_zone_origins(dmcf, c);
    }

    return NGX_OK;
}


/* which of the copied records are the registry's services, by name */

static void
ngx_http_discovery_zone_origins(ngx_http_discovery_main_conf_t *dmcf,
    ngx_http_discovery_zone_copy_t *c)
{
    size_t                         i;
    ngx_uint_t                     j;
    ngx_http_discovery_service_t  *service;

    service = dmcf->services.elts;

    for (j = 0; j < dmcf->services.nelts; j++) {
        if (!service[j].registry) {
            continue;
        }

        for (i = 0; i < c->n; i++) {
            if (c->stats[i].name_len == service[j].name.len
                && ngx_strncmp(c->stats[i].name, service[j].name.data,
                               service[j].name.len)
                   == 0)
            {
                c->stats[i].registry = 1;
                break;
            }
        }
    }
}
