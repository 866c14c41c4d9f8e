
/*
 * The request side: the access-phase handler that routes each request by
 * this worker's router, the answers it sends when it cannot route (JSON,
 * or gRPC's own to a gRPC request), and the variables that tell its
 * decision.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_discovery.h"


/* the strings of a match, in the order they sit in ngx_http_discovery_ctx_t */
enum {
    NGX_HTTP_DISCOVERY_SERVICE = 0,
    NGX_HTTP_DISCOVERY_UPSTREAM,
    NGX_HTTP_DISCOVERY_ROUTE,
    NGX_HTTP_DISCOVERY_ALLOW,
    NGX_HTTP_DISCOVERY_TEXTS
};

/* variables that come from the owner's configuration, not the match */
#define NGX_HTTP_DISCOVERY_SCHEME    100
#define NGX_HTTP_DISCOVERY_HOST      101
#define NGX_HTTP_DISCOVERY_PROTOCOL  102

/* gRPC status codes of the answers the gateway gives a gRPC request */
#define NGX_HTTP_DISCOVERY_GRPC_INVALID_ARGUMENT  3
#define NGX_HTTP_DISCOVERY_GRPC_UNIMPLEMENTED     12
#define NGX_HTTP_DISCOVERY_GRPC_UNAVAILABLE       14


/*
 * A request's match, made small: it shares the request pool with
 * everything nginx and the proxy allocate per request, and a few dozen
 * bytes more can cost another pool block per request.  The strings
 * follow the structure, end to end, in one allocation (ctx + 1).
 */

typedef struct {
    ngx_http_discovery_service_t  *service;      /* the owner, or NULL */
    u_char                        *uri;          /* r->uri.data decided on */
    uint64_t                       hint;         /* for metrics, or 0 */
    uint32_t                       len[NGX_HTTP_DISCOVERY_TEXTS];
    uint16_t                       status;       /* DISCOVERY_MATCH_* */
    unsigned                       auth:1;
    unsigned                       grpc:1;       /* a gRPC route */
    unsigned                       decided:1;    /* by the access phase */
} ngx_http_discovery_ctx_t;


static ngx_http_discovery_ctx_t *ngx_http_discovery_lookup(
    ngx_http_request_t *r);
static ngx_http_discovery_ctx_t *ngx_http_discovery_unmatched(
    ngx_http_request_t *r, int status);
static ngx_http_discovery_ctx_t *ngx_http_discovery_decide(
    ngx_http_request_t *r, discovery_match_t *m);
static void ngx_http_discovery_remember(ngx_http_request_t *r,
    ngx_http_discovery_ctx_t *ctx);
static ngx_http_discovery_ctx_t *ngx_http_discovery_remembered(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_discovery_canonical(ngx_http_request_t *r,
    ngx_uint_t action);
static void ngx_http_discovery_rendered_free(void *data);
static ngx_int_t ngx_http_discovery_send_json(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *detail, ngx_str_t *path,
    ngx_str_t *service, ngx_str_t *allow);
static ngx_int_t ngx_http_discovery_send_error(ngx_http_request_t *r,
    ngx_http_discovery_ctx_t *ctx);
static ngx_uint_t ngx_http_discovery_is_grpc(ngx_http_request_t *r);
static ngx_int_t ngx_http_discovery_send_grpc(ngx_http_request_t *r,
    ngx_uint_t code, ngx_str_t *message, ngx_str_t *subject);
static ngx_http_discovery_ctx_t *ngx_http_discovery_ctx(
    ngx_http_request_t *r);
static ngx_uint_t ngx_http_discovery_has_error_page(ngx_http_request_t *r,
    ngx_uint_t status);
static ngx_str_t ngx_http_discovery_text(ngx_http_discovery_ctx_t *ctx,
    ngx_uint_t which);
static u_char *ngx_http_discovery_json_string(u_char *p, ngx_str_t *s);
static time_t ngx_http_discovery_retry_after(ngx_http_discovery_ctx_t *ctx);

static ngx_int_t ngx_http_discovery_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_discovery_auth_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


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

    { ngx_string("discovery_protocol"), NULL, ngx_http_discovery_variable,
      NGX_HTTP_DISCOVERY_PROTOCOL, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("discovery_route_auth"), NULL,
      ngx_http_discovery_auth_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_discovery_allow = ngx_string("Allow");
static ngx_str_t  ngx_http_discovery_retry = ngx_string("Retry-After");
static ngx_str_t  ngx_http_discovery_json = ngx_string("application/json");
static ngx_str_t  ngx_http_discovery_grpc_type =
    ngx_string("application/grpc");
static ngx_str_t  ngx_http_discovery_grpc_status = ngx_string("grpc-status");
static ngx_str_t  ngx_http_discovery_grpc_message = ngx_string("grpc-message");


ngx_int_t
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

    ctx->decided = 1;

    ngx_http_discovery_remember(r, ctx);

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
    discovery_match_t                m;
    discovery_router_t              *router;
    ngx_http_discovery_main_conf_t  *dmcf;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_discovery_module);

    if (dmcf->sh == NULL) {
        /* no service is configured */
        return ngx_http_discovery_unmatched(r, DISCOVERY_MATCH_NOT_FOUND);
    }

    router = ngx_http_discovery_router_latest(dmcf);

    if (router == NULL) {
        return ngx_http_discovery_unmatched(r, DISCOVERY_MATCH_PENDING);
    }

    /* discovery_router_match() sets every field of m */

    /* only a GET can be a websocket handshake (RFC 6455, section 4.1) */
    websocket = r->method == NGX_HTTP_GET
                && r->headers_in.upgrade != NULL
                && r->headers_in.upgrade->value.len == 9
                && ngx_strncasecmp(r->headers_in.upgrade->value.data,
                                   (u_char *) "websocket", 9) == 0;

    (void) discovery_router_match(router,
                                  (const char *) r->method_name.data,
                                  r->method_name.len,
                                  (const char *) r->uri.data, r->uri.len,
                                  websocket, &m);

    return ngx_http_discovery_decide(r, &m);
}


/* the decision for a request no route was looked up for: status alone */

static ngx_http_discovery_ctx_t *
ngx_http_discovery_unmatched(ngx_http_request_t *r, int status)
{
    discovery_match_t  m;

    ngx_memzero(&m, sizeof(discovery_match_t));
    m.status = status;
    m.entry = DISCOVERY_NO_ENTRY;

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

    if (m->status == DISCOVERY_MATCH_FOUND) {
        ngx_http_discovery_router_hint_prefetch(m);
    }

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

    ctx->uri = r->uri.data;
    ctx->status = (uint16_t) m->status;
    ctx->decided = (m->status == NGX_HTTP_DISCOVERY_NOT_CANONICAL);
    ctx->auth = m->auth_required ? 1 : 0;
    ctx->grpc = m->protocol == DISCOVERY_PROTOCOL_GRPC ? 1 : 0;
    ctx->service = ngx_http_discovery_router_owner(m);
    p = (u_char *) (ctx + 1);

    for (i = 0; i < NGX_HTTP_DISCOVERY_TEXTS; i++) {
        ctx->len[i] = (uint32_t) lens[i];

        if (lens[i]) {
            p = ngx_cpymem(p, text[i], lens[i]);
        }
    }

    ctx->hint = m->status == DISCOVERY_MATCH_FOUND
                ? ngx_http_discovery_router_hint(m) : 0;

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
    int                        canonical;
    u_char                    *p;
    size_t                     len;
    ngx_str_t                  raw, detail;
    ngx_table_elt_t           *location;
    ngx_http_discovery_ctx_t  *ctx;

    raw = r->unparsed_uri;

    p = memchr(raw.data, '?', raw.len);
    if (p) {
        raw.len = p - raw.data;
    }

    canonical = discovery_path_is_canonical((const char *) raw.data, raw.len);

    if (canonical == 1) {
        return NGX_DECLINED;
    }

    /* the variables tell that no route was chosen */
    ctx = ngx_http_discovery_unmatched(r, NGX_HTTP_DISCOVERY_NOT_CANONICAL);

    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_discovery_remember(r, ctx);

    /* gRPC clients follow no redirect: the call is refused in its terms */

    if (ngx_http_discovery_is_grpc(r)) {
        ngx_str_set(&detail, "Path is not canonical");

        return ngx_http_discovery_send_grpc(r,
                                     NGX_HTTP_DISCOVERY_GRPC_INVALID_ARGUMENT,
                                     &detail, &raw);
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


/*
 * The access phase's first decision, kept where an internal redirect (an
 * error_page of the gateway's own 404 or of a proxied 500, an upstream's
 * X-Accel-Redirect) does not clear it: the request is counted once, by
 * where it was routed, whatever location it ends in.  Only with
 * discovery_metrics, in the request's slot of a variable no configuration
 * names (ngx_http_discovery_metrics_init()); subrequests share the
 * variables, so the main request's alone.
 */

static void
ngx_http_discovery_remember(ngx_http_request_t *r,
    ngx_http_discovery_ctx_t *ctx)
{
    ngx_http_variable_value_t       *v;
    ngx_http_discovery_main_conf_t  *dmcf;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_discovery_module);

    if (!dmcf->metrics || r != r->main) {
        return;
    }

    v = &r->variables[dmcf->decided_index];

    if (v->valid && !v->not_found) {
        /* the first decision counts */
        return;
    }

    v->data = (u_char *) ctx;
    v->len = 0;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    /* the slot's lines arrive while the request is proxied */
    if (ctx->hint) {
        discovery_metrics_prefetch((u_char *) dmcf->shpool, ctx->hint);
    }
}


static ngx_http_discovery_ctx_t *
ngx_http_discovery_remembered(ngx_http_request_t *r)
{
    ngx_http_variable_value_t       *v;
    ngx_http_discovery_main_conf_t  *dmcf;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_discovery_module);

    if (!dmcf->metrics || r != r->main) {
        return NULL;
    }

    v = &r->variables[dmcf->decided_index];

    if (!v->valid || v->not_found) {
        return NULL;
    }

    return (ngx_http_discovery_ctx_t *) v->data;
}


/*
 * What the access phase decided first for the request, for
 * discovery_metrics: a DISCOVERY_MATCH_* or NGX_HTTP_DISCOVERY_NOT_CANONICAL,
 * the service, the route and its hint (0: none).  NGX_DECLINED: the
 * request was not routed (a location without "discovery_route on", or an
 * answer before the access phase).
 */

ngx_int_t
ngx_http_discovery_decision(ngx_http_request_t *r, ngx_uint_t *status,
    ngx_str_t *service, ngx_str_t *route, uint64_t *hint)
{
    ngx_http_discovery_ctx_t  *ctx;

    ctx = ngx_http_discovery_remembered(r);

    if (ctx == NULL) {
        ctx = ngx_http_get_module_ctx(r, ngx_http_discovery_module);

        if (ctx == NULL || !ctx->decided) {
            return NGX_DECLINED;
        }
    }

    *status = ctx->status;
    *service = ngx_http_discovery_text(ctx, NGX_HTTP_DISCOVERY_SERVICE);
    *route = ngx_http_discovery_text(ctx, NGX_HTTP_DISCOVERY_ROUTE);
    *hint = ctx->hint;

    return NGX_OK;
}


/* one of the match's strings, NGX_HTTP_DISCOVERY_SERVICE to _ALLOW */

/*
 * For discovery_balancer: the service the access phase routed the request
 * to, as configured (NULL when this configuration has no such service),
 * its name and $discovery_upstream; NGX_DECLINED when the access phase
 * routed nothing here (no "discovery_route on", a subrequest, an answer of
 * the gateway's own).
 */

ngx_int_t
ngx_http_discovery_routed(ngx_http_request_t *r,
    ngx_http_discovery_service_t **service, ngx_str_t *name,
    ngx_str_t *upstream)
{
    ngx_http_discovery_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_discovery_module);

    if (ctx == NULL || !ctx->decided
        || ctx->status != DISCOVERY_MATCH_FOUND)
    {
        return NGX_DECLINED;
    }

    *service = ctx->service;
    *name = ngx_http_discovery_text(ctx, NGX_HTTP_DISCOVERY_SERVICE);
    *upstream = ngx_http_discovery_text(ctx, NGX_HTTP_DISCOVERY_UPSTREAM);

    return NGX_OK;
}


static ngx_str_t
ngx_http_discovery_text(ngx_http_discovery_ctx_t *ctx, ngx_uint_t which)
{
    ngx_str_t   s;
    ngx_uint_t  i;

    s.data = (u_char *) (ctx + 1);

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

    if (ngx_http_discovery_is_grpc(r)) {
        switch (ctx->status) {

        case DISCOVERY_MATCH_UNAVAILABLE:
            ngx_str_set(&detail, "Service unavailable");
            return ngx_http_discovery_send_grpc(r,
                                        NGX_HTTP_DISCOVERY_GRPC_UNAVAILABLE,
                                        &detail, &service);

        case DISCOVERY_MATCH_PENDING:
            ngx_str_set(&detail, "Service discovery pending");
            return ngx_http_discovery_send_grpc(r,
                                        NGX_HTTP_DISCOVERY_GRPC_UNAVAILABLE,
                                        &detail, NULL);

        case DISCOVERY_MATCH_DRAINED:
            ngx_str_set(&detail, "Service drained");
            return ngx_http_discovery_send_grpc(r,
                                        NGX_HTTP_DISCOVERY_GRPC_UNAVAILABLE,
                                        &detail, &service);

        case DISCOVERY_MATCH_DISABLED:
            ngx_str_set(&detail, "Endpoint disabled");
            return ngx_http_discovery_send_grpc(r,
                                        NGX_HTTP_DISCOVERY_GRPC_UNIMPLEMENTED,
                                        &detail, &r->uri);

        case DISCOVERY_MATCH_NOT_ALLOWED:
            ngx_str_set(&detail, "Method not allowed");
            return ngx_http_discovery_send_grpc(r,
                                        NGX_HTTP_DISCOVERY_GRPC_UNIMPLEMENTED,
                                        &detail, &r->uri);

        default: /* DISCOVERY_MATCH_NOT_FOUND */
            ngx_str_set(&detail, "Endpoint not available");
            return ngx_http_discovery_send_grpc(r,
                                        NGX_HTTP_DISCOVERY_GRPC_UNIMPLEMENTED,
                                        &detail, &r->uri);
        }
    }

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
    case DISCOVERY_MATCH_DRAINED:
        status = NGX_HTTP_SERVICE_UNAVAILABLE;
        if (ctx->status == DISCOVERY_MATCH_PENDING) {
            ngx_str_set(&detail, "Service discovery pending");
        } else if (ctx->status == DISCOVERY_MATCH_DRAINED) {
            ngx_str_set(&detail, "Service drained");
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

    case DISCOVERY_MATCH_DISABLED:
        /* by an override of the management API; no service to name */
        status = NGX_HTTP_NOT_FOUND;
        ngx_str_set(&detail, "Endpoint disabled");
        service.len = 0;
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
 * A request gRPC's content type, "application/grpc" or "application/grpc+
 * proto" and the like, gets gRPC's own answers: a gRPC client reports an
 * HTTP error status as a transport failure.  Not "application/grpc-web":
 * another protocol, whose clients read trailers from the body.
 */

static ngx_uint_t
ngx_http_discovery_is_grpc(ngx_http_request_t *r)
{
    size_t            n;
    ngx_table_elt_t  *type;

    type = r->headers_in.content_type;
    n = sizeof("application/grpc") - 1;

    return type != NULL
           && type->value.len >= n
           && ngx_strncasecmp(type->value.data, (u_char *) "application/grpc",
                              n)
              == 0
           && (type->value.len == n
               || type->value.data[n] == '+'
               || type->value.data[n] == ';'
               || type->value.data[n] == ' ');
}


/*
 * A Trailers-Only answer: HTTP 200 and no body, grpc-status and
 * grpc-message ("detail: subject", percent-encoded as gRPC asks) in the
 * headers, which over HTTP/2 end the stream.  Not an error status: no
 * error_page applies.
 */

static ngx_int_t
ngx_http_discovery_send_grpc(ngx_http_request_t *r, ngx_uint_t code,
    ngx_str_t *message, ngx_str_t *subject)
{
    u_char     *p, *last, *src;
    size_t      len;
    ngx_int_t   rc;
    ngx_str_t   value;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    value.data = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    value.len = ngx_sprintf(value.data, "%ui", code) - value.data;

    if (ngx_http_discovery_set_header(r, &ngx_http_discovery_grpc_status,
                                      &value)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* bytes outside printable ASCII, and '%', as %XX */

    len = message->len;

    if (subject && subject->len) {
        len += 2 + 3 * subject->len;
    }

    value.data = ngx_pnalloc(r->pool, len);
    if (value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(value.data, message->data, message->len);

    if (subject && subject->len) {
        *p++ = ':'; *p++ = ' ';

        last = subject->data + subject->len;

        for (src = subject->data; src < last; src++) {
            if (*src < 0x20 || *src > 0x7e || *src == '%') {
                p = ngx_sprintf(p, "%%%02Xd", (int) *src);

            } else {
                *p++ = *src;
            }
        }
    }

    value.len = p - value.data;

    if (ngx_http_discovery_set_header(r, &ngx_http_discovery_grpc_message,
                                      &value)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type = ngx_http_discovery_grpc_type;
    r->headers_out.content_type_len = ngx_http_discovery_grpc_type.len;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    rc = ngx_http_send_header(r);
    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
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

    /* an answer in the access phase ends the request here */
    rc = ngx_http_discovery_send(r, status, &ngx_http_discovery_json, b);
    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/*
 * Sends b, the whole body, with that status and type; a HEAD request gets
 * the headers alone.  What ngx_http_output_filter() returns, for the
 * caller to finalize the request with.
 */

ngx_int_t
ngx_http_discovery_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_buf_t *b)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    r->headers_out.status = status;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_length_n = b->last - b->pos;

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * A 200 of a page the core rendered (a status page, a scrape), sent where
 * it lies, not copied: it may be tens of megabytes, and copying it would
 * stall the worker's other requests.  The request's pool frees it.
 */

ngx_int_t
ngx_http_discovery_send_rendered(ngx_http_request_t *r, ngx_str_t *type,
    discovery_buf_t *text)
{
    ngx_buf_t           *b;
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    b = ngx_calloc_buf(r->pool);

    if (cln == NULL || b == NULL) {
        discovery_buf_free(text);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_discovery_rendered_free;
    cln->data = text;

    if (text->len) {
        b->start = text->data;
        b->pos = b->start;
        b->last = b->start + text->len;
        b->end = b->last;
        b->memory = 1;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    return ngx_http_discovery_send(r, NGX_HTTP_OK, type, b);
}


static void
ngx_http_discovery_rendered_free(void *data)
{
    discovery_buf_free(data);
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


/* a response header; name and value must live as long as the request */

ngx_int_t
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

    ctx = ngx_http_discovery_ctx(r);

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

        /* for proxy_pass, or grpc_pass for a gRPC route */

        if (ctx->grpc) {
            if (ctx->service->https) {
                ngx_str_set(&value, "grpcs");
            } else {
                ngx_str_set(&value, "grpc");
            }

        } else if (ctx->service->https) {
            ngx_str_set(&value, "https");
        } else {
            ngx_str_set(&value, "http");
        }
        break;

    case NGX_HTTP_DISCOVERY_PROTOCOL:
        if (ctx->grpc) {
            ngx_str_set(&value, "grpc");
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

    ctx = ngx_http_discovery_ctx(r);

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


/*
 * The decision the variables tell.  Read in the rewrite phase (an "if"
 * choosing grpc_pass or proxy_pass by $discovery_protocol), before the
 * access phase routed the request, the route is looked up then, and again
 * once a rewrite changed the URI (a new r->uri.data); the access phase
 * looks it up again, for the URI as rewritten, and answers for a request
 * that is not routed.
 */

static ngx_http_discovery_ctx_t *
ngx_http_discovery_ctx(ngx_http_request_t *r)
{
    ngx_http_discovery_ctx_t       *ctx;
    ngx_http_phase_handler_t       *ph;
    ngx_http_core_main_conf_t      *cmcf;
    ngx_http_discovery_loc_conf_t  *dlcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_discovery_module);

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);
    ph = cmcf->phase_engine.handlers;

    if (ph[r->phase_handler].checker != ngx_http_core_rewrite_phase
        || (ctx && ctx->uri == r->uri.data))
    {
        return ctx;
    }

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_discovery_module);

    if (!dlcf->route) {
        return NULL;
    }

    return ngx_http_discovery_lookup(r);
}


ngx_int_t
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
