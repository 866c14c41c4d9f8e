
/*
 * discovery_status: everything the gateway knows, as JSON.  The zone is
 * copied under the lock and rendered outside it, in a background thread
 * when the table is large.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_discovery.h"


/* a page rendered from the zone's copy, in a background thread if large */
typedef struct {
    ngx_http_request_t              *request;
    u_char                          *snapshot;
    size_t                           len;
    discovery_service_stats_t       *stats;
    size_t                           n;
    ngx_str_t                        table_error;
    ngx_str_t                        registry;     /* JSON object, or empty */
    discovery_buf_t                  json;
    discovery_error_t                err;
    ngx_int_t                        rc;
#if (NGX_THREADS)
    ngx_http_discovery_task_t        task;
#endif
} ngx_http_discovery_status_page_t;


static ngx_int_t ngx_http_discovery_status_copy(ngx_http_request_t *r,
    ngx_http_discovery_main_conf_t *dmcf,
    ngx_http_discovery_status_page_t *page);
static void ngx_http_discovery_status_render(void *data, ngx_log_t *log);
#if (NGX_THREADS)
static void ngx_http_discovery_status_rendered(ngx_event_t *ev);
#endif
static ngx_int_t ngx_http_discovery_status_send(
    ngx_http_discovery_status_page_t *page);
static void ngx_http_discovery_status_freed(void *data);


/*
 * From this size of table on, the page is rendered in a background thread
 * (about 170 ms of a worker at 100,000 routes, which its requests waited
 * for), and the memory it took goes back to the system afterwards.
 */
#define NGX_HTTP_DISCOVERY_STATUS_LARGE  (256 * 1024)


static ngx_str_t  ngx_http_discovery_status_type =
    ngx_string("application/json");


ngx_int_t
ngx_http_discovery_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                          rc;
    ngx_pool_cleanup_t                *cln;
    ngx_http_discovery_main_conf_t    *dmcf;
    ngx_http_discovery_status_page_t  *page;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_discovery_module);

    page = ngx_pcalloc(r->pool, sizeof(ngx_http_discovery_status_page_t));
    if (page == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    page->request = r;

    if (dmcf->sh && ngx_http_discovery_status_copy(r, dmcf, page) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (page->len > NGX_HTTP_DISCOVERY_STATUS_LARGE) {
        /* once the request's pool, the copy of the page with it, is gone */
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cln->handler = ngx_http_discovery_status_freed;

#if (NGX_THREADS)
        if (ngx_http_discovery_task_post(&page->task, page,
                                         ngx_http_discovery_status_render,
                                         ngx_http_discovery_status_rendered,
                                         r->connection->log)
            == NGX_OK)
        {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "discovery: status of a table of %uz bytes "
                           "rendered in a background thread", page->len);

            r->main->count++;
            return NGX_DONE;
        }
#endif
    }

    ngx_http_discovery_status_render(page, r->connection->log);

    return ngx_http_discovery_status_send(page);
}


/* in a background thread for a large table: reads only the page */

static void
ngx_http_discovery_status_render(void *data, ngx_log_t *log)
{
    ngx_http_discovery_status_page_t  *page = data;

    page->rc = discovery_status_render(page->snapshot, page->len, page->stats,
                                       page->n,
                                       (const char *) page->table_error.data,
                                       page->table_error.len,
                                       NGX_HTTP_DISCOVERY_VERSION,
                                       (const char *) page->registry.data,
                                       page->registry.len,
                                       &page->json, &page->err);
}


#if (NGX_THREADS)

static void
ngx_http_discovery_status_rendered(ngx_event_t *ev)
{
    ngx_http_discovery_status_page_t  *page = ev->data;

    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = page->request;
    c = r->connection;

    ngx_http_finalize_request(r, ngx_http_discovery_status_send(page));
    ngx_http_run_posted_requests(c);
}

#endif


static ngx_int_t
ngx_http_discovery_status_send(ngx_http_discovery_status_page_t *page)
{
    ngx_http_request_t  *r;

    r = page->request;

    if (page->rc != DISCOVERY_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "discovery: cannot render the status: %s",
                      page->err.text);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_discovery_send_rendered(r, &ngx_http_discovery_status_type,
                                            &page->json);
}


static ngx_int_t
ngx_http_discovery_status_copy(ngx_http_request_t *r,
    ngx_http_discovery_main_conf_t *dmcf,
    ngx_http_discovery_status_page_t *page)
{
    u_char                          *p;
    ngx_http_discovery_zone_copy_t   copy;

    if (ngx_http_discovery_zone_copy(r->pool, dmcf, &copy) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_discovery_registry_status(r->pool, dmcf, &page->registry)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    page->snapshot = copy.snapshot;
    page->len = copy.snapshot_len;
    page->stats = copy.stats;
    page->n = copy.n;

    if (copy.failed_len) {
        p = ngx_pnalloc(r->pool, NGX_MAX_ERROR_STR);
        if (p == NULL) {
            return NGX_ERROR;
        }

        page->table_error.data = p;
        page->table_error.len = ngx_snprintf(p, NGX_MAX_ERROR_STR,
                                    "a table of %uz bytes does not fit in "
                                    "discovery zone \"%V\" of %uz bytes",
                                    copy.failed_len,
                                    &dmcf->shm_zone->shm.name,
                                    dmcf->shm_zone->shm.size)
                                - p;
    }

    return NGX_OK;
}


static void
ngx_http_discovery_status_freed(void *data)
{
    ngx_http_discovery_publish_freed();
}
