
/*
 * Discovery-driven routing: the module's definition, its directives'
 * table, its configuration and what each worker starts and stops.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_discovery.h"


#define NGX_HTTP_DISCOVERY_DEFAULT_ZONE   (8 * 1024 * 1024)


static ngx_int_t ngx_http_discovery_init(ngx_conf_t *cf);
static void *ngx_http_discovery_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_discovery_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_discovery_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_discovery_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_discovery_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_discovery_init_process(ngx_cycle_t *cycle);
static void ngx_http_discovery_exit_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_discovery_noncanonical[] = {
    { ngx_string("reject"), NGX_HTTP_DISCOVERY_NONCANONICAL_REJECT },
    { ngx_string("redirect"), NGX_HTTP_DISCOVERY_NONCANONICAL_REDIRECT },
    { ngx_string("pass"), NGX_HTTP_DISCOVERY_NONCANONICAL_PASS },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_discovery_overlap[] = {
    { ngx_string("allow"), 0 },
    { ngx_string("deny"), 1 },
    { ngx_null_string, 0 }
};


static ngx_conf_post_t  ngx_http_discovery_max_size_post =
    { ngx_http_discovery_max_size };


static ngx_command_t  ngx_http_discovery_commands[] = {

    { ngx_string("discovery_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_discovery_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("discovery_service"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_discovery_service,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("discovery_registry"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_discovery_registry,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("discovery_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_discovery_main_conf_t, max_size),
      &ngx_http_discovery_max_size_post },

    { ngx_string("discovery_state"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_discovery_main_conf_t, state),
      NULL },

    { ngx_string("discovery_overlap"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_discovery_main_conf_t, overlap_deny),
      &ngx_http_discovery_overlap },

    { ngx_string("discovery_ssl_verify"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_discovery_main_conf_t, ssl_verify),
      NULL },

    { ngx_string("discovery_ssl_trusted_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_discovery_ssl_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_discovery_main_conf_t, ssl_trusted_certificate),
      NULL },

    { ngx_string("discovery_ssl_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_discovery_ssl_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_discovery_main_conf_t, ssl_certificate),
      NULL },

    { ngx_string("discovery_ssl_certificate_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_discovery_ssl_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_discovery_main_conf_t, ssl_certificate_key),
      NULL },

    { ngx_string("discovery_route"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_discovery_route,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_discovery_loc_conf_t, route),
      NULL },

    { ngx_string("discovery_balancer"),
      NGX_HTTP_UPS_CONF|NGX_CONF_NOARGS,
      ngx_http_discovery_balancer,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("discovery_noncanonical"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_discovery_loc_conf_t, noncanonical),
      &ngx_http_discovery_noncanonical },

    { ngx_string("discovery_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_discovery_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("discovery_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_discovery_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("discovery_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_discovery_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_discovery_module_ctx = {
    ngx_http_discovery_add_variables,      /* preconfiguration */
    ngx_http_discovery_init,               /* postconfiguration */

    ngx_http_discovery_create_main_conf,   /* create main configuration */
    ngx_http_discovery_init_main_conf,     /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_discovery_create_loc_conf,    /* create location configuration */
    ngx_http_discovery_merge_loc_conf      /* merge location configuration */
};


ngx_module_t  ngx_http_discovery_module = {
    NGX_MODULE_V1,
    &ngx_http_discovery_module_ctx,        /* module context */
    ngx_http_discovery_commands,           /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_discovery_init_module,        /* init module */
    ngx_http_discovery_init_process,       /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_discovery_exit_process,       /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * Called for every configuration read, nginx -t included, once the
 * configuration's error_log is in use.
 */

static ngx_int_t
ngx_http_discovery_init_module(ngx_cycle_t *cycle)
{
    /* at debug level, also in an nginx built without --with-debug */
    ngx_log_error(NGX_LOG_DEBUG, cycle->log, 0,
                  "discovery: module version %s", NGX_HTTP_DISCOVERY_VERSION);

    /* how the registry's watcher will ask this master to reload */
    ngx_http_discovery_reload_init_module(cycle);

    return NGX_OK;
}


/*
 * The handler is pushed last, so it runs first in the access phase: the
 * variables are set before auth_request and the like, and "satisfy any"
 * cannot skip routing.
 */

static ngx_int_t
ngx_http_discovery_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_discovery_access_handler;

    if (ngx_http_discovery_balancer_check(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_discovery_metrics_init(cf);
}


static void *
ngx_http_discovery_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_discovery_main_conf_t  *dmcf;

    dmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_discovery_main_conf_t));
    if (dmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&dmcf->services, cf->pool, 4,
                       sizeof(ngx_http_discovery_service_t))
        != NGX_OK)
    {
        return NULL;
    }

    dmcf->zone_size = NGX_CONF_UNSET_SIZE;
    dmcf->max_size = NGX_CONF_UNSET_SIZE;
    dmcf->overlap_deny = NGX_CONF_UNSET_UINT;
    dmcf->ssl_verify = NGX_CONF_UNSET;

    return dmcf;
}


static char *
ngx_http_discovery_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_discovery_main_conf_t *dmcf = conf;

    ngx_conf_init_size_value(dmcf->zone_size,
                             NGX_HTTP_DISCOVERY_DEFAULT_ZONE);
    ngx_conf_init_size_value(dmcf->max_size, 1024 * 1024);
    ngx_conf_init_uint_value(dmcf->overlap_deny, 0);
    ngx_conf_init_value(dmcf->ssl_verify, 1);

    if ((dmcf->ssl_certificate.len == 0)
        != (dmcf->ssl_certificate_key.len == 0))
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"discovery_ssl_certificate\" and "
                      "\"discovery_ssl_certificate_key\" go together: "
                      "\"%s\" has no pair",
                      dmcf->ssl_certificate.len
                      ? dmcf->ssl_certificate.data
                      : dmcf->ssl_certificate_key.data);
        return NGX_CONF_ERROR;
    }

    if (dmcf->state.len
        && ngx_http_discovery_state_names(cf, dmcf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* the registry's services, known when the configuration is read */

    if (dmcf->registry
        && ngx_http_discovery_registry_services(cf, dmcf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (dmcf->services.nelts == 0 && dmcf->registry == NULL) {
        if (dmcf->route_file) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"discovery_route on\" with no discovery_service "
                          "to route to in %s:%ui",
                          dmcf->route_file, dmcf->route_line);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (ngx_http_discovery_upstreams(cf, dmcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_discovery_balancer_upstreams(cf, dmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_discovery_zone_add(cf, dmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_discovery_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_discovery_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_discovery_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->route = NGX_CONF_UNSET;
    conf->noncanonical = NGX_CONF_UNSET_UINT;
    conf->api_write = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_discovery_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_discovery_loc_conf_t *prev = parent;
    ngx_http_discovery_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->route, prev->route, 0);

    /* the access phase would route the status page's own requests */
    if (conf->route && conf->status_file) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"discovery_status\" in a location with "
                      "\"discovery_route on\" is never served in %s:%ui",
                      conf->status_file, conf->status_line);
        return NGX_CONF_ERROR;
    }
    if (conf->route && conf->metrics_file) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"discovery_metrics\" in a location with "
                      "\"discovery_route on\" is never served in %s",
                      conf->metrics_file);
        return NGX_CONF_ERROR;
    }
    if (conf->route && conf->api_file) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"discovery_api\" in a location with "
                      "\"discovery_route on\" is never served in %s",
                      conf->api_file);
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_uint_value(conf->noncanonical, prev->noncanonical,
                              NGX_HTTP_DISCOVERY_NONCANONICAL_REJECT);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_discovery_init_process(ngx_cycle_t *cycle)
{
    ngx_http_discovery_main_conf_t  *dmcf;

    /* in the cache manager and loader as well */
    ngx_http_discovery_reload_init_process(cycle);

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    dmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_discovery_module);

    if (dmcf == NULL || dmcf->sh == NULL) {
        return NGX_OK;
    }

#if (NGX_THREADS)
    ngx_http_discovery_background_init_worker(cycle);
#endif

    ngx_http_discovery_router_init_worker(cycle, dmcf);

    /* this process writes the state file, never the master: see there */
    ngx_http_discovery_state_init_worker(cycle, dmcf);

    if (ngx_http_discovery_publish_init_worker(cycle, dmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_discovery_api_init_worker(cycle, dmcf);
    ngx_http_discovery_metrics_init_worker(cycle, dmcf);

    ngx_http_discovery_registry_init_worker(cycle, dmcf);

    return ngx_http_discovery_poller_init_worker(cycle, dmcf);
}


/* each part does nothing in a process where it did not start */

static void
ngx_http_discovery_exit_process(ngx_cycle_t *cycle)
{
    /* what the last polls found is not lost, and written at once */
    ngx_http_discovery_state_exit_worker(cycle);
    ngx_http_discovery_api_exit_worker(cycle);
    ngx_http_discovery_metrics_exit_worker(cycle);
    ngx_http_discovery_publish_exit_worker(cycle);

    ngx_http_discovery_registry_exit_worker(cycle);
    ngx_http_discovery_poller_exit_worker(cycle);

    ngx_http_discovery_router_exit_worker(cycle);

#if (NGX_THREADS)
    /* the others waited for their tasks: the threads have nothing left */
    ngx_http_discovery_background_exit_worker(cycle);
#endif
}
