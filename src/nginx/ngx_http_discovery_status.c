
/*
 * discovery_status: everything the gateway knows, as JSON.  The zone is
 * copied under the lock and rendered outside it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_discovery.h"


/* a table from this size on leaves enough freed memory to return */
#define NGX_HTTP_DISCOVERY_STATUS_TRIM  (256 * 1024)


static ngx_int_t ngx_http_discovery_status_copy(ngx_http_request_t *r,
    ngx_http_discovery_main_conf_t *dmcf, u_char **snapshot, size_t *len,
    discovery_service_stats_t **stats, size_t *n, ngx_str_t *table_error);
static void ngx_http_discovery_status_freed(void *data);


static ngx_str_t  ngx_http_discovery_status_type =
    ngx_string("application/json");


ngx_int_t
ngx_http_discovery_status_handler(ngx_http_request_t *r)
{
    size_t                           len, n;
    u_char                          *snapshot;
    ngx_int_t                        rc;
    ngx_buf_t                       *b;
    ngx_str_t                        table_error;
    ngx_pool_cleanup_t              *cln;
    discovery_buf_t                  json;
    discovery_error_t                err;
    discovery_service_stats_t       *stats;
    ngx_http_discovery_main_conf_t  *dmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_discovery_module);

    snapshot = NULL;
    len = 0;
    stats = NULL;
    n = 0;

    ngx_str_null(&table_error);

    if (dmcf->sh
        && ngx_http_discovery_status_copy(r, dmcf, &snapshot, &len, &stats,
                                          &n, &table_error)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (discovery_status_render(snapshot, len, stats, n,
                                (const char *) table_error.data,
                                table_error.len, NGX_HTTP_DISCOVERY_VERSION,
                                &json, &err)
        != DISCOVERY_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "discovery: cannot render the status: %s", err.text);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_create_temp_buf(r->pool, json.len + 1);
    if (b == NULL) {
        discovery_buf_free(&json);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, json.data, json.len);
    *b->last++ = LF;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    discovery_buf_free(&json);

    if (len > NGX_HTTP_DISCOVERY_STATUS_TRIM) {
        /* once the request's pool, the copy of the page with it, is gone */
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cln->handler = ngx_http_discovery_status_freed;
    }

    return ngx_http_discovery_send(r, NGX_HTTP_OK,
                                   &ngx_http_discovery_status_type, b);
}


static ngx_int_t
ngx_http_discovery_status_copy(ngx_http_request_t *r,
    ngx_http_discovery_main_conf_t *dmcf, u_char **snapshot, size_t *len,
    discovery_service_stats_t **stats, size_t *n, ngx_str_t *table_error)
{
    size_t                        i, size, failed_len;
    u_char                       *p;
    ngx_queue_t                  *q;
    discovery_service_stats_t    *st;
    ngx_http_discovery_record_t  *rec;

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    i = 0;
    size = dmcf->sh->snapshot_len;

    for (q = ngx_queue_head(&dmcf->sh->records);
         q != ngx_queue_sentinel(&dmcf->sh->records);
         q = ngx_queue_next(q))
    {
        rec = ngx_queue_data(q, ngx_http_discovery_record_t, queue);
        size += rec->name.len + rec->last_error_len;
        i++;
    }

    st = ngx_palloc(r->pool, i * sizeof(discovery_service_stats_t));
    p = ngx_pnalloc(r->pool, size);

    if (st == NULL || p == NULL) {
        ngx_shmtx_unlock(&dmcf->shpool->mutex);
        return NGX_ERROR;
    }

    *stats = st;
    *n = i;
    *snapshot = p;
    *len = dmcf->sh->snapshot_len;
    failed_len = dmcf->sh->failed_len;

    p = ngx_cpymem(p, dmcf->sh->snapshot, dmcf->sh->snapshot_len);

    for (q = ngx_queue_head(&dmcf->sh->records);
         q != ngx_queue_sentinel(&dmcf->sh->records);
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
        st++;
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    if (failed_len) {
        table_error->data = ngx_pnalloc(r->pool, NGX_MAX_ERROR_STR);
        if (table_error->data == NULL) {
            return NGX_ERROR;
        }

        table_error->len = ngx_snprintf(table_error->data, NGX_MAX_ERROR_STR,
                               "a table of %uz bytes does not fit in "
                               "discovery zone \"%V\" of %uz bytes",
                               failed_len, &dmcf->shm_zone->shm.name,
                               dmcf->shm_zone->shm.size)
                           - table_error->data;
    }

    return NGX_OK;
}


static void
ngx_http_discovery_status_freed(void *data)
{
    ngx_http_discovery_publish_freed();
}
