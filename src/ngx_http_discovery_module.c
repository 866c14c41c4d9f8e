
/*
 * Discovery-driven routing: directives, variables and the access-phase
 * handler that routes each request by the discovered table.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_discovery.h"


#define NGX_HTTP_DISCOVERY_DEFAULT_ZONE   (8 * 1024 * 1024)
#define NGX_HTTP_DISCOVERY_MIN_ZONE       (64 * 1024)
#define NGX_HTTP_DISCOVERY_REFRESH        250


/* discovery_noncanonical */
#define NGX_HTTP_DISCOVERY_NONCANONICAL_REJECT    0
#define NGX_HTTP_DISCOVERY_NONCANONICAL_REDIRECT  1
#define NGX_HTTP_DISCOVERY_NONCANONICAL_PASS      2

/* a request turned away before routing, as ngx_http_discovery_ctx_t says */
#define NGX_HTTP_DISCOVERY_NOT_CANONICAL          100


typedef struct {
    ngx_flag_t                     route;
    ngx_uint_t                     noncanonical;

    /* discovery_status here: where, for a location that also routes */
    u_char                        *status_file;
    ngx_uint_t                     status_line;
} ngx_http_discovery_loc_conf_t;


/* the strings of a match, in the order they sit in ngx_http_discovery_ctx_t */
enum {
    NGX_HTTP_DISCOVERY_SERVICE = 0,
    NGX_HTTP_DISCOVERY_UPSTREAM,
    NGX_HTTP_DISCOVERY_ROUTE,
    NGX_HTTP_DISCOVERY_ALLOW,
    NGX_HTTP_DISCOVERY_TEXTS
};

/* variables that come from the owner's configuration, not the match */
#define NGX_HTTP_DISCOVERY_SCHEME  100
#define NGX_HTTP_DISCOVERY_HOST    101


/*
 * A request's match, made small: it shares the request pool with
 * everything nginx and the proxy allocate per request, and a few dozen
 * bytes more can cost another pool block per request.  The strings
 * follow the structure, end to end, in one allocation.
 */

typedef struct {
    u_char                        *text;
    ngx_http_discovery_service_t  *service;      /* the owner, or NULL */
    uint32_t                       len[NGX_HTTP_DISCOVERY_TEXTS];
    uint16_t                       status;       /* DISCOVERY_MATCH_* */
    unsigned                       auth:1;
} ngx_http_discovery_ctx_t;


static ngx_http_discovery_ctx_t *ngx_http_discovery_lookup(
    ngx_http_request_t *r);
static ngx_http_discovery_ctx_t *ngx_http_discovery_decide(
    ngx_http_request_t *r, discovery_match_t *m);
static ngx_int_t ngx_http_discovery_access_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_discovery_canonical(ngx_http_request_t *r,
    ngx_uint_t action);
static ngx_int_t ngx_http_discovery_send_json(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *detail, ngx_str_t *path,
    ngx_str_t *service, ngx_str_t *allow);
static ngx_int_t ngx_http_discovery_send_error(ngx_http_request_t *r,
    ngx_http_discovery_ctx_t *ctx);
static ngx_uint_t ngx_http_discovery_has_error_page(ngx_http_request_t *r,
    ngx_uint_t status);
static ngx_str_t ngx_http_discovery_text(ngx_http_discovery_ctx_t *ctx,
    ngx_uint_t which);
static ngx_int_t ngx_http_discovery_set_header(ngx_http_request_t *r,
    ngx_str_t *name, ngx_str_t *value);
static u_char *ngx_http_discovery_json_string(u_char *p, ngx_str_t *s);
static time_t ngx_http_discovery_retry_after(ngx_http_discovery_ctx_t *ctx);
static ngx_http_discovery_service_t *ngx_http_discovery_owner(
    ngx_http_request_t *r, discovery_match_t *m);

static ngx_int_t ngx_http_discovery_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_discovery_auth_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static char *ngx_http_discovery_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_discovery_service(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_discovery_service_url(ngx_conf_t *cf,
    ngx_http_discovery_service_t *service, ngx_str_t *url);
static char *ngx_http_discovery_credential(ngx_conf_t *cf, ngx_str_t *in,
    ngx_str_t *out);
static char *ngx_http_discovery_implicit_upstream(ngx_conf_t *cf,
    ngx_http_discovery_service_t *service);
static char *ngx_http_discovery_service_option(ngx_conf_t *cf,
    ngx_http_discovery_service_t *service, ngx_str_t *value);
static char *ngx_http_discovery_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_discovery_route(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_discovery_max_size(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_discovery_ssl_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_discovery_upstreams(ngx_conf_t *cf,
    ngx_http_discovery_main_conf_t *dmcf);

static ngx_int_t ngx_http_discovery_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_discovery_init(ngx_conf_t *cf);
static void *ngx_http_discovery_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_discovery_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_discovery_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_discovery_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_discovery_init_process(ngx_cycle_t *cycle);
static void ngx_http_discovery_exit_process(ngx_cycle_t *cycle);
static void ngx_http_discovery_refresh_handler(ngx_event_t *ev);


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


void  *ngx_http_discovery_timer_ident[4] = {
    NULL, NULL, NULL, (void *) -1
};


ngx_module_t  ngx_http_discovery_module = {
    NGX_MODULE_V1,
    &ngx_http_discovery_module_ctx,        /* module context */
    ngx_http_discovery_commands,           /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_discovery_init_process,       /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_discovery_exit_process,       /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_discovery_vars[] = {

    { ngx_string("discovery_service"), NULL, ngx_http_discovery_variable,
      NGX_HTTP_DISCOVERY_SERVICE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("discovery_upstream"), NULL, ngx_http_discovery_variable,
      NGX_HTTP_DISCOVERY_UPSTREAM, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("discovery_route"), NULL, ngx_http_discovery_variable,
      NGX_HTTP_DISCOVERY_ROUTE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("discovery_scheme"), NULL, ngx_http_discovery_variable,
      NGX_HTTP_DISCOVERY_SCHEME, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("discovery_host"), NULL, ngx_http_discovery_variable,
      NGX_HTTP_DISCOVERY_HOST, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("discovery_route_auth"), NULL,
      ngx_http_discovery_auth_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_discovery_allow = ngx_string("Allow");
static ngx_str_t  ngx_http_discovery_retry = ngx_string("Retry-After");
static ngx_str_t  ngx_http_discovery_json = ngx_string("application/json");


static ngx_int_t
ngx_http_discovery_access_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_http_discovery_ctx_t       *ctx;
    ngx_http_discovery_loc_conf_t  *dlcf;

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_discovery_module);

    if (!dlcf->route) {
        return NGX_DECLINED;
    }

    /*
     * proxy_pass sends the request line's own URI unless nginx changed it
     * (rewrite, internal redirect): that one must say what was routed.
     */
    if (dlcf->noncanonical != NGX_HTTP_DISCOVERY_NONCANONICAL_PASS
        && r->valid_unparsed_uri)
    {
        rc = ngx_http_discovery_canonical(r, dlcf->noncanonical);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    ctx = ngx_http_discovery_lookup(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->status == DISCOVERY_MATCH_FOUND) {
        return NGX_DECLINED;
    }

    return ngx_http_discovery_send_error(r, ctx);
}


/*
 * Matches the request, in the access phase: after every rewrite, so the
 * URI matched is the one proxied.
 */

static ngx_http_discovery_ctx_t *
ngx_http_discovery_lookup(ngx_http_request_t *r)
{
    ngx_uint_t                       websocket;
    ngx_http_discovery_main_conf_t  *dmcf;
    discovery_match_t                m;

    ngx_memzero(&m, sizeof(discovery_match_t));

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_discovery_module);

    if (dmcf->sh == NULL) {
        /* no service is configured */
        m.status = DISCOVERY_MATCH_NOT_FOUND;
        return ngx_http_discovery_decide(r, &m);
    }

    (void) ngx_http_discovery_refresh_router(dmcf);

    if (dmcf->router == NULL) {
        m.status = DISCOVERY_MATCH_PENDING;
        return ngx_http_discovery_decide(r, &m);
    }

    /* only a GET can be a websocket handshake (RFC 6455, section 4.1) */
    websocket = r->method == NGX_HTTP_GET
                && r->headers_in.upgrade != NULL
                && r->headers_in.upgrade->value.len == 9
                && ngx_strncasecmp(r->headers_in.upgrade->value.data,
                                   (u_char *) "websocket", 9) == 0;

    (void) discovery_router_match(dmcf->router,
                                  (const char *) r->method_name.data,
                                  r->method_name.len,
                                  (const char *) r->uri.data, r->uri.len,
                                  websocket, &m);

    return ngx_http_discovery_decide(r, &m);
}


/*
 * Keeps a decision in the request's context.  The strings are copied: the
 * router they point into may be replaced by a newer table while the
 * request is still being proxied.  The router leaves a string it does not
 * set NULL.
 */

static ngx_http_discovery_ctx_t *
ngx_http_discovery_decide(ngx_http_request_t *r, discovery_match_t *m)
{
    u_char                    *p;
    size_t                     len, lens[NGX_HTTP_DISCOVERY_TEXTS];
    ngx_uint_t                 i;
    const char                *text[NGX_HTTP_DISCOVERY_TEXTS];
    ngx_http_discovery_ctx_t  *ctx;

    text[NGX_HTTP_DISCOVERY_SERVICE] = m->service;
    text[NGX_HTTP_DISCOVERY_UPSTREAM] = m->upstream;
    text[NGX_HTTP_DISCOVERY_ROUTE] = m->route;
    text[NGX_HTTP_DISCOVERY_ALLOW] = m->allow;
    lens[NGX_HTTP_DISCOVERY_SERVICE] = m->service_len;
    lens[NGX_HTTP_DISCOVERY_UPSTREAM] = m->upstream_len;
    lens[NGX_HTTP_DISCOVERY_ROUTE] = m->route_len;
    lens[NGX_HTTP_DISCOVERY_ALLOW] = m->allow_len;

    len = 0;
    for (i = 0; i < NGX_HTTP_DISCOVERY_TEXTS; i++) {
        len += lens[i];
    }

    ctx = ngx_palloc(r->pool, sizeof(ngx_http_discovery_ctx_t) + len);
    if (ctx == NULL) {
        return NULL;
    }

    ctx->status = (uint16_t) m->status;
    ctx->auth = m->auth_required ? 1 : 0;
    ctx->service = ngx_http_discovery_owner(r, m);
    ctx->text = (u_char *) (ctx + 1);

    p = ctx->text;

    for (i = 0; i < NGX_HTTP_DISCOVERY_TEXTS; i++) {
        ctx->len[i] = (uint32_t) lens[i];

        if (lens[i]) {
            p = ngx_cpymem(p, text[i], lens[i]);
        }
    }

#if (NGX_DEBUG)
    if (r->connection->log->log_level & NGX_LOG_DEBUG_HTTP) {
        ngx_str_t  service, route;

        service = ngx_http_discovery_text(ctx, NGX_HTTP_DISCOVERY_SERVICE);
        route = ngx_http_discovery_text(ctx, NGX_HTTP_DISCOVERY_ROUTE);

        ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "discovery: \"%V\" status:%ui service:\"%V\" "
                       "route:\"%V\"",
                       &r->uri, (ngx_uint_t) ctx->status, &service, &route);
    }
#endif

    ngx_http_set_ctx(r, ctx, ngx_http_discovery_module);

    return ctx;
}


/*
 * nginx routes on $uri, with dot segments resolved and slashes merged,
 * but proxy_pass forwards the request line's path as it came, and a
 * service that does not normalize it runs another route than the one
 * chosen ("/static/%2e%2e/users/1" is "/users/1" here, "/static/{rest}"
 * there).  Such a path is refused or redirected to its canonical form;
 * NGX_DECLINED lets a canonical one through.
 */

static ngx_int_t
ngx_http_discovery_canonical(ngx_http_request_t *r, ngx_uint_t action)
{
    int                 canonical;
    u_char             *p, *last;
    size_t              len;
    ngx_str_t           raw, detail;
    ngx_table_elt_t    *location;
    discovery_match_t   m;

    raw = r->unparsed_uri;
    last = raw.data + raw.len;

    for (p = raw.data; p < last && *p != '?'; p++) { /* void */ }

    raw.len = p - raw.data;

    canonical = discovery_path_is_canonical((const char *) raw.data, raw.len);

    if (canonical == 1) {
        return NGX_DECLINED;
    }

    /* the variables tell that no route was chosen */
    ngx_memzero(&m, sizeof(discovery_match_t));
    m.status = NGX_HTTP_DISCOVERY_NOT_CANONICAL;

    if (ngx_http_discovery_decide(r, &m) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* an escaped control character has no canonical form to redirect to */

    if (action == NGX_HTTP_DISCOVERY_NONCANONICAL_REJECT || canonical < 0) {
        ngx_str_set(&detail, "Path is not canonical");

        return ngx_http_discovery_send_json(r, NGX_HTTP_BAD_REQUEST, &detail,
                                            &raw, NULL, NULL);
    }

    /* the canonical path, escaped, then the query string as it came */

    location = ngx_list_push(&r->headers_out.headers);
    if (location == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_pnalloc(r->pool, 3 * raw.len + 1 + 1 + r->args.len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = discovery_path_canonicalize((const char *) raw.data, raw.len,
                                      (char *) p);
    if (len == 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    location->value.data = p;
    p += len;

    if (r->args.len) {
        *p++ = '?';
        p = ngx_cpymem(p, r->args.data, r->args.len);
    }

    location->value.len = p - location->value.data;

    location->hash = 1;
    ngx_str_set(&location->key, "Location");

    ngx_http_clear_location(r);
    r->headers_out.location = location;

    return NGX_HTTP_PERMANENT_REDIRECT;
}


/* one of the match's strings, NGX_HTTP_DISCOVERY_SERVICE to _ALLOW */

static ngx_str_t
ngx_http_discovery_text(ngx_http_discovery_ctx_t *ctx, ngx_uint_t which)
{
    ngx_str_t   s;
    ngx_uint_t  i;

    s.data = ctx->text;

    for (i = 0; i < which; i++) {
        s.data += ctx->len[i];
    }

    s.len = ctx->len[which];

    return s;
}


/* Answers 404, 405 or 503, after the headers each calls for. */

static ngx_int_t
ngx_http_discovery_send_error(ngx_http_request_t *r,
    ngx_http_discovery_ctx_t *ctx)
{
    time_t       retry;
    ngx_str_t    detail, value, service, allow;
    ngx_uint_t   status;

    service = ngx_http_discovery_text(ctx, NGX_HTTP_DISCOVERY_SERVICE);
    allow = ngx_http_discovery_text(ctx, NGX_HTTP_DISCOVERY_ALLOW);

    switch (ctx->status) {

    case DISCOVERY_MATCH_NOT_ALLOWED:
        status = NGX_HTTP_NOT_ALLOWED;
        ngx_str_set(&detail, "Method not allowed");
        if (ngx_http_discovery_set_header(r, &ngx_http_discovery_allow,
                                          &allow)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        break;

    case DISCOVERY_MATCH_UNAVAILABLE:
    case DISCOVERY_MATCH_PENDING:
        status = NGX_HTTP_SERVICE_UNAVAILABLE;
        if (ctx->status == DISCOVERY_MATCH_PENDING) {
            ngx_str_set(&detail, "Service discovery pending");
        } else {
            ngx_str_set(&detail, "Service unavailable");
        }

        /* from the pool: an error_page sends the header after we return */
        retry = ngx_http_discovery_retry_after(ctx);
        value.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
        if (value.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        value.len = ngx_sprintf(value.data, "%T", retry) - value.data;

        if (ngx_http_discovery_set_header(r, &ngx_http_discovery_retry,
                                          &value)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        break;

    default: /* DISCOVERY_MATCH_NOT_FOUND */
        status = NGX_HTTP_NOT_FOUND;
        ngx_str_set(&detail, "Endpoint not available");
        break;
    }

    return ngx_http_discovery_send_json(r, status, &detail, &r->uri,
                                        service.len ? &service : NULL,
                                        allow.len ? &allow : NULL);
}


/*
 * {"detail": ..., "path": ...} and the service and Allow when given,
 * valid JSON whatever the path holds; unless an error_page is set for
 * the status: then nginx's own error handling takes over.
 */

static ngx_int_t
ngx_http_discovery_send_json(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *detail, ngx_str_t *path, ngx_str_t *service, ngx_str_t *allow)
{
    size_t        len;
    u_char       *p;
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    if (ngx_http_discovery_has_error_page(r, status)) {
        return status;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    len = sizeof("{\"detail\": \"\", \"path\": \"\"}\n") - 1 + detail->len
          + discovery_json_escape(NULL, path->data, path->len);

    if (service) {
        len += sizeof(", \"service\": \"\"") - 1
               + discovery_json_escape(NULL, service->data, service->len);
    }

    if (allow) {
        len += sizeof(", \"allow\": \"\"") - 1 + allow->len;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(b->last, "{\"detail\": \"%V\", \"path\": ", detail);
    p = ngx_http_discovery_json_string(p, path);

    if (service) {
        p = ngx_cpymem(p, ", \"service\": ", sizeof(", \"service\": ") - 1);
        p = ngx_http_discovery_json_string(p, service);
    }

    if (allow) {
        /* methods are tokens: nothing to escape */
        p = ngx_sprintf(p, ", \"allow\": \"%V\"", allow);
    }

    *p++ = '}'; *p++ = LF;
    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_type = ngx_http_discovery_json;
    r->headers_out.content_type_len = ngx_http_discovery_json.len;
    r->headers_out.content_length_n = b->last - b->pos;

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    out.buf = b;
    out.next = NULL;

    ngx_http_finalize_request(r, ngx_http_output_filter(r, &out));

    return NGX_DONE;
}


/* the same test ngx_http_special_response_handler() makes */

static ngx_uint_t
ngx_http_discovery_has_error_page(ngx_http_request_t *r, ngx_uint_t status)
{
    ngx_uint_t                 i;
    ngx_http_err_page_t       *err_page;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (r->error_page || clcf->error_pages == NULL || r->uri_changes == 0) {
        return 0;
    }

    err_page = clcf->error_pages->elts;

    for (i = 0; i < clcf->error_pages->nelts; i++) {
        if (err_page[i].status == (ngx_int_t) status) {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_discovery_set_header(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key = *name;
    h->value = *value;

    return NGX_OK;
}


static u_char *
ngx_http_discovery_json_string(u_char *p, ngx_str_t *s)
{
    *p++ = '"';
    p += discovery_json_escape(p, s->data, s->len);
    *p++ = '"';

    return p;
}


/* an unhealthy service is polled again within its interval */

static time_t
ngx_http_discovery_retry_after(ngx_http_discovery_ctx_t *ctx)
{
    if (ctx->service == NULL) {
        return 1;
    }

    return ngx_max(ctx->service->interval / 1000, 1);
}


/*
 * The configured service that owns a match: the roster index the router
 * gives is checked by name, since a worker may read a table that a newer
 * configuration made (during a reload), whose roster is another.
 */

static ngx_http_discovery_service_t *
ngx_http_discovery_owner(ngx_http_request_t *r, discovery_match_t *m)
{
    ngx_uint_t                       i;
    ngx_http_discovery_service_t    *service;
    ngx_http_discovery_main_conf_t  *dmcf;

    if (m->service == NULL) {
        return NULL;
    }

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_discovery_module);
    service = dmcf->services.elts;

    i = m->service_index;

    if (i < dmcf->services.nelts
        && service[i].name.len == m->service_len
        && ngx_memcmp(service[i].name.data, m->service, m->service_len) == 0)
    {
        return &service[i];
    }

    for (i = 0; i < dmcf->services.nelts; i++) {
        if (service[i].name.len == m->service_len
            && ngx_memcmp(service[i].name.data, m->service, m->service_len)
               == 0)
        {
            return &service[i];
        }
    }

    return NULL;
}


/*
 * The variables tell the decision the access phase took: empty where no
 * request was routed (a location without "discovery_route on", a request
 * nginx refused before, a path that is not canonical) or none was found.
 */

static ngx_int_t
ngx_http_discovery_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                  value;
    ngx_http_discovery_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_discovery_module);

    if (ctx == NULL || ctx->status != DISCOVERY_MATCH_FOUND) {
        v->not_found = 1;
        return NGX_OK;
    }

    switch (data) {

    case NGX_HTTP_DISCOVERY_SCHEME:
        if (ctx->service == NULL) {
            v->not_found = 1;
            return NGX_OK;
        }

        if (ctx->service->https) {
            ngx_str_set(&value, "https");
        } else {
            ngx_str_set(&value, "http");
        }
        break;

    case NGX_HTTP_DISCOVERY_HOST:
        if (ctx->service == NULL) {
            v->not_found = 1;
            return NGX_OK;
        }

        value = ctx->service->host;
        break;

    default:
        value = ngx_http_discovery_text(ctx, data);
        break;
    }

    if (value.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = value.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = value.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_discovery_auth_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_discovery_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_discovery_module);

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    if (ctx && ctx->status == DISCOVERY_MATCH_FOUND && ctx->auth) {
        v->len = 1;
        v->data = (u_char *) "1";

    } else {
        v->len = 0;
        v->data = (u_char *) "";
    }

    return NGX_OK;
}


static char *
ngx_http_discovery_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_discovery_main_conf_t *dmcf = conf;

    ssize_t     size;
    ngx_str_t  *value;

    if (dmcf->zone_size != NGX_CONF_UNSET_SIZE) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[1]);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < NGX_HTTP_DISCOVERY_MIN_ZONE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "discovery zone \"%V\" is too small, "
                           "the minimum is 64k", &value[1]);
        return NGX_CONF_ERROR;
    }

    dmcf->zone_size = size;

    return NGX_CONF_OK;
}


static char *
ngx_http_discovery_service(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_discovery_main_conf_t *dmcf = conf;

    char                          *rv;
    u_char                        *p;
    ngx_str_t                     *value, uri;
    ngx_uint_t                     i;
    ngx_http_discovery_service_t  *service;

    value = cf->args->elts;

    for (i = 0; i < value[1].len; i++) {
        if (!(isalnum(value[1].data[i]) || value[1].data[i] == '_'
              || value[1].data[i] == '-' || value[1].data[i] == '.'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid service name \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (value[1].len == 0 || value[1].len > 64) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid service name \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    service = dmcf->services.elts;

    for (i = 0; i < dmcf->services.nelts; i++) {
        if (service[i].name.len == value[1].len
            && ngx_strncmp(service[i].name.data, value[1].data,
                           value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate discovery_service \"%V\"",
                               &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    service = ngx_array_push(&dmcf->services);
    if (service == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(service, sizeof(ngx_http_discovery_service_t));

    service->name = value[1];
    service->index = dmcf->services.nelts - 1;
    service->file = cf->conf_file->file.name.data;
    service->line = cf->conf_file->line;
    service->interval = 30000;
    service->timeout = 5000;
    service->fails = 1;
    service->passes = 1;
    service->format = DISCOVERY_FORMAT_AUTO;
    ngx_str_set(&uri, "/health?include_routes=true");

    rv = ngx_http_discovery_service_url(cf, service, &value[2]);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    for (i = 3; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "uri=", 4) == 0) {
            uri.data = value[i].data + 4;
            uri.len = value[i].len - 4;

            if (uri.len == 0 || uri.data[0] != '/') {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid uri \"%V\", it must start "
                                   "with \"/\"", &uri);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        rv = ngx_http_discovery_service_option(cf, service, &value[i]);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    service->uri = uri;

    /* curl wants a NUL-terminated URL */

    service->poll_url.len = service->base.len + uri.len;
    service->poll_url.data = ngx_pnalloc(cf->pool, service->poll_url.len + 1);
    if (service->poll_url.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_cpymem(service->poll_url.data, service->base.data,
                   service->base.len);
    p = ngx_cpymem(p, uri.data, uri.len);
    *p = '\0';

    if (service->upstream_opt.len == 0
        && ngx_http_discovery_implicit_upstream(cf, service) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * A service named by a host name proxies, through "$discovery_upstream"
 * ("host:port"), to an upstream nginx makes for that name here, as for
 * "proxy_pass http://host:port;": resolved when the configuration is read
 * (every address it has, used in turn), again on each reload, and no
 * resolver directive needed.  An address needs none.  An upstream block
 * named like the service, found later, is used instead.
 */

static char *
ngx_http_discovery_implicit_upstream(ngx_conf_t *cf,
    ngx_http_discovery_service_t *service)
{
    ngx_url_t  u;

    if (service->host.len && service->host.data[0] == '[') {
        return NGX_CONF_OK;
    }

    if (ngx_inet_addr(service->host.data, service->host.len) != INADDR_NONE) {
        return NGX_CONF_OK;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = service->host_port;
    u.no_resolve = 1;

    if (ngx_http_upstream_add(cf, &u, 0) == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * "http[s]://[user[:password]@]host[:port][/path]".  The credentials are
 * kept apart for the polls; service->url, which the status page and the
 * logs show, has the password as "***", and the URL polled has none.
 */

static char *
ngx_http_discovery_service_url(ngx_conf_t *cf,
    ngx_http_discovery_service_t *service, ngx_str_t *url)
{
    u_char     *p, *at, *slash, *last;
    ngx_str_t   scheme, rest, user, password;
    ngx_url_t   u;

    ngx_memzero(&u, sizeof(ngx_url_t));

    if (url->len >= 7 && ngx_strncasecmp(url->data, (u_char *) "http://", 7)
                         == 0)
    {
        ngx_str_set(&scheme, "http://");
        u.default_port = 80;

    } else if (url->len >= 8
               && ngx_strncasecmp(url->data, (u_char *) "https://", 8) == 0)
    {
        ngx_str_set(&scheme, "https://");
        u.default_port = 443;
        service->https = 1;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid URL \"%V\" of discovery_service \"%V\", "
                           "it must start with \"http://\" or \"https://\"",
                           url, &service->name);
        return NGX_CONF_ERROR;
    }

    rest.data = url->data + scheme.len;
    rest.len = url->len - scheme.len;
    last = rest.data + rest.len;

    /* userinfo: up to the last '@' before the path */

    slash = ngx_strlchr(rest.data, last, '/');
    if (slash == NULL) {
        slash = last;
    }

    at = NULL;
    for (p = rest.data; p < slash; p++) {
        if (*p == '@') {
            at = p;
        }
    }

    ngx_str_null(&user);
    ngx_str_null(&password);

    if (at) {
        user.data = rest.data;
        user.len = at - rest.data;

        p = ngx_strlchr(user.data, at, ':');
        if (p) {
            password.data = p + 1;
            password.len = at - password.data;
            user.len = p - user.data;
        }

        if (user.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "no user name before \"@\" in the URL "
                               "of discovery_service \"%V\"",
                               &service->name);
            return NGX_CONF_ERROR;
        }

        if (ngx_http_discovery_credential(cf, &user, &service->user)
            != NGX_CONF_OK
            || ngx_http_discovery_credential(cf, &password,
                                             &service->password)
               != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }

        rest.len = last - (at + 1);
        rest.data = at + 1;
    }

    /* shown, in errors too: "user:***@" and the rest */

    service->url.len = scheme.len + rest.len
                       + (user.len ? user.len + sizeof(":***@") - 1 : 0);
    service->url.data = ngx_pnalloc(cf->pool, service->url.len);
    if (service->url.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_cpymem(service->url.data, scheme.data, scheme.len);

    if (user.len) {
        p = ngx_cpymem(p, user.data, user.len);
        p = ngx_cpymem(p, password.data ? ":***@" : "@",
                       password.data ? 5 : 1);
    }

    p = ngx_cpymem(p, rest.data, rest.len);
    service->url.len = p - service->url.data;

    if (rest.len == 0 || rest.data[0] == '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no host in URL \"%V\" of discovery_service \"%V\"",
                           &service->url, &service->name);
        return NGX_CONF_ERROR;
    }

    u.url = rest;
    u.uri_part = 1;
    u.no_resolve = 1;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s in URL \"%V\" of discovery_service \"%V\"",
                           u.err ? u.err : "invalid host", &service->url,
                           &service->name);
        return NGX_CONF_ERROR;
    }

    if (u.host.len == 0
        || ngx_strlchr(u.uri.data, u.uri.data + u.uri.len, '?')
        || ngx_strlchr(u.uri.data, u.uri.data + u.uri.len, '#'))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid URL \"%V\" of discovery_service \"%V\"",
                           &service->url, &service->name);
        return NGX_CONF_ERROR;
    }

    while (rest.len && rest.data[rest.len - 1] == '/') {
        rest.len--;
        service->url.len--;
    }

    /* polled: scheme and the rest, no credentials */

    service->base.len = scheme.len + rest.len;
    service->base.data = ngx_pnalloc(cf->pool, service->base.len);
    if (service->base.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_cpymem(service->base.data, scheme.data, scheme.len);
    ngx_memcpy(p, rest.data, rest.len);

    service->host = u.host;
    service->port = u.port;

    service->host_port.len = u.host.len + sizeof(":65535") - 1;
    service->host_port.data = ngx_pnalloc(cf->pool, service->host_port.len);
    if (service->host_port.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_sprintf(service->host_port.data, "%V:%d", &u.host, (int) u.port);
    service->host_port.len = p - service->host_port.data;

    return NGX_CONF_OK;
}


/* a URL's user name or password, percent-decoded, NUL-terminated for curl */

static char *
ngx_http_discovery_credential(ngx_conf_t *cf, ngx_str_t *in, ngx_str_t *out)
{
    u_char  *p, *src;

    if (in->data == NULL) {
        ngx_str_null(out);
        return NGX_CONF_OK;
    }

    out->data = ngx_pnalloc(cf->pool, in->len + 1);
    if (out->data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = out->data;
    src = in->data;
    ngx_unescape_uri(&p, &src, in->len, 0);
    *p = '\0';
    out->len = p - out->data;

    return NGX_CONF_OK;
}


static char *
ngx_http_discovery_service_option(ngx_conf_t *cf,
    ngx_http_discovery_service_t *service, ngx_str_t *value)
{
    ngx_int_t   n;
    ngx_str_t   s, *prefix;
    ngx_msec_t  ms;

    if (ngx_strncmp(value->data, "interval=", 9) == 0) {
        s.data = value->data + 9;
        s.len = value->len - 9;

        ms = ngx_parse_time(&s, 0);
        if (ms == (ngx_msec_t) NGX_ERROR || ms < 1000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid interval \"%V\", "
                               "the minimum is 1s", &s);
            return NGX_CONF_ERROR;
        }

        service->interval = ms;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value->data, "timeout=", 8) == 0) {
        s.data = value->data + 8;
        s.len = value->len - 8;

        ms = ngx_parse_time(&s, 0);
        if (ms == (ngx_msec_t) NGX_ERROR || ms == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid timeout \"%V\"", &s);
            return NGX_CONF_ERROR;
        }

        service->timeout = ms;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value->data, "fails=", 6) == 0
        || ngx_strncmp(value->data, "passes=", 7) == 0)
    {
        s.data = (u_char *) ngx_strchr(value->data, '=') + 1;
        s.len = value->data + value->len - s.data;

        n = ngx_atoi(s.data, s.len);
        if (n == NGX_ERROR || n < 1 || n > 1000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", value);
            return NGX_CONF_ERROR;
        }

        if (value->data[0] == 'f') {
            service->fails = n;

        } else {
            service->passes = n;
        }

        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value->data, "upstream=", 9) == 0) {
        service->upstream_opt.data = value->data + 9;
        service->upstream_opt.len = value->len - 9;

        if (service->upstream_opt.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", value);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value->data, "prefix=", 7) == 0) {
        s.data = value->data + 7;
        s.len = value->len - 7;

        if (s.len == 0 || s.data[0] != '/') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid prefix \"%V\", it must start "
                               "with \"/\"", &s);
            return NGX_CONF_ERROR;
        }

        if (service->prefixes == NULL) {
            service->prefixes = ngx_array_create(cf->pool, 2,
                                                 sizeof(ngx_str_t));
            if (service->prefixes == NULL) {
                return NGX_CONF_ERROR;
            }
        }

        prefix = ngx_array_push(service->prefixes);
        if (prefix == NULL) {
            return NGX_CONF_ERROR;
        }

        *prefix = s;

        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value->data, "format=", 7) == 0) {
        s.data = value->data + 7;
        s.len = value->len - 7;

        if (s.len == 4 && ngx_strncmp(s.data, "auto", 4) == 0) {
            service->format = DISCOVERY_FORMAT_AUTO;

        } else if (s.len == 6 && ngx_strncmp(s.data, "routes", 6) == 0) {
            service->format = DISCOVERY_FORMAT_ROUTES;

        } else if (s.len == 7 && ngx_strncmp(s.data, "openapi", 7) == 0) {
            service->format = DISCOVERY_FORMAT_OPENAPI;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid format \"%V\", it must be "
                               "\"auto\", \"routes\" or \"openapi\"", &s);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", value);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_discovery_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_discovery_loc_conf_t *dlcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_discovery_status_handler;

    dlcf->status_file = cf->conf_file->file.name.data;
    dlcf->status_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


/* "discovery_route on" is remembered, for a configuration with no service */

static char *
ngx_http_discovery_route(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char                            *rv;
    ngx_http_discovery_loc_conf_t   *dlcf = conf;
    ngx_http_discovery_main_conf_t  *dmcf;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_discovery_module);

    if (dlcf->route == 1 && dmcf->route_file == NULL) {
        dmcf->route_file = cf->conf_file->file.name.data;
        dmcf->route_line = cf->conf_file->line;
    }

    return NGX_CONF_OK;
}


/* a file the polls' TLS needs: nginx -t says at once if it is missing */

static char *
ngx_http_discovery_ssl_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char             *rv;
    ngx_str_t        *file;
    ngx_file_info_t   fi;

    rv = ngx_conf_set_str_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    file = (ngx_str_t *) ((u_char *) conf + cmd->offset);

    if (ngx_conf_full_name(cf->cycle, file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_file_info(file->data, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_file_info_n " \"%s\" failed", file->data);
        return NGX_CONF_ERROR;
    }

    if (!ngx_is_file(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" is not a file", file->data);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_discovery_max_size(ngx_conf_t *cf, void *post, void *data)
{
    size_t *sp = data;

    if (*sp == 0) {
        return "must be greater than 0";
    }

    return NGX_CONF_OK;
}


/*
 * $discovery_upstream: upstream= when given (it must name an upstream
 * block), else the service's name when an upstream block has it, else the
 * URL's host:port, which proxy_pass uses without a resolver for addresses.
 */

static char *
ngx_http_discovery_upstreams(ngx_conf_t *cf,
    ngx_http_discovery_main_conf_t *dmcf)
{
    ngx_str_t                       *name;
    ngx_uint_t                       i, j;
    ngx_http_discovery_service_t    *service;
    ngx_http_upstream_srv_conf_t   **uscfp;
    ngx_http_upstream_main_conf_t   *umcf;

    umcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module);
    uscfp = umcf->upstreams.elts;
    service = dmcf->services.elts;

    for (i = 0; i < dmcf->services.nelts; i++) {

        name = service[i].upstream_opt.len ? &service[i].upstream_opt
                                           : &service[i].name;
        service[i].upstream = service[i].host_port;

        for (j = 0; j < umcf->upstreams.nelts; j++) {
            if ((uscfp[j]->flags & NGX_HTTP_UPSTREAM_CREATE)
                && uscfp[j]->host.len == name->len
                && ngx_strncasecmp(uscfp[j]->host.data, name->data,
                                   name->len) == 0)
            {
                service[i].upstream = *name;
                break;
            }
        }

        /* the check runs at the end of "http": name the service's line */
        if (j == umcf->upstreams.nelts && service[i].upstream_opt.len) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "upstream \"%V\" of discovery_service \"%V\" "
                          "is not defined in %s:%ui", name, &service[i].name,
                          service[i].file, service[i].line);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_discovery_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_discovery_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

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

    return NGX_OK;
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

    if (dmcf->services.nelts == 0) {
        if (dmcf->route_file) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"discovery_route on\" with no discovery_service "
                          "to route to in %s:%ui",
                          dmcf->route_file, dmcf->route_line);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (dmcf->state.len
        && ngx_conf_full_name(cf->cycle, &dmcf->state, 0) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_discovery_upstreams(cf, dmcf) != NGX_CONF_OK) {
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
    ngx_conf_merge_uint_value(conf->noncanonical, prev->noncanonical,
                              NGX_HTTP_DISCOVERY_NONCANONICAL_REJECT);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_discovery_init_process(ngx_cycle_t *cycle)
{
    ngx_http_discovery_main_conf_t  *dmcf;

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

    dmcf->log = cycle->log;

    (void) ngx_http_discovery_refresh_router(dmcf);

    /* this process writes the state file, never the master: see there */
    ngx_http_discovery_state_init(dmcf);

    /* idle workers pick up new tables too, not only on the next request */

    dmcf->refresh.handler = ngx_http_discovery_refresh_handler;
    dmcf->refresh.data = ngx_http_discovery_timer_ident;
    dmcf->refresh.log = cycle->log;
    dmcf->refresh.cancelable = 1;

    ngx_add_timer(&dmcf->refresh, NGX_HTTP_DISCOVERY_REFRESH);

    /* a worker that exits publishes what it has pending first */
    dmcf->publish.handler = ngx_http_discovery_publish_handler;
    dmcf->publish.data = ngx_http_discovery_timer_ident;
    dmcf->publish.log = cycle->log;
    dmcf->publish.cancelable = 1;

    return ngx_http_discovery_poller_init(cycle, dmcf);
}


static void
ngx_http_discovery_refresh_handler(ngx_event_t *ev)
{
    ngx_http_discovery_main_conf_t  *dmcf;

    dmcf = ngx_http_discovery_event_owner(ev, ngx_http_discovery_main_conf_t,
                                          refresh);

    if (ngx_exiting) {
        return;
    }

    (void) ngx_http_discovery_refresh_router(dmcf);

    ngx_add_timer(ev, NGX_HTTP_DISCOVERY_REFRESH);
}


static void
ngx_http_discovery_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_discovery_main_conf_t  *dmcf;

    dmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_discovery_module);

    if (dmcf == NULL || dmcf->sh == NULL) {
        return;
    }

    /* what the last polls found is not lost */
    ngx_http_discovery_publish_pending(dmcf);

    ngx_http_discovery_poller_exit(dmcf);

    if (dmcf->router) {
        discovery_router_destroy(dmcf->router);
        dmcf->router = NULL;
    }
}
