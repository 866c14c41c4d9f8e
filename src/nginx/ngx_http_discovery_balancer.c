
/*
 * discovery_balancer: an upstream block whose requests go to the upstream
 * of the service the access phase routed them to, so that a static
 * "proxy_pass http://NAME" routes as "proxy_pass http://$discovery_upstream"
 * does, without the variable's URL script, URL parsing and search of the
 * upstreams by name on every request.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_discovery.h"


static ngx_int_t ngx_http_discovery_balancer_init(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_discovery_balancer_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_discovery_balancer_unknown(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us, ngx_str_t *name, ngx_str_t *upstream);
static ngx_int_t ngx_http_discovery_balancer_refuse(ngx_http_request_t *r);
static ngx_int_t ngx_http_discovery_balancer_get_peer(ngx_peer_connection_t *pc,
    void *data);
static void ngx_http_discovery_balancer_free_peer(ngx_peer_connection_t *pc,
    void *data, ngx_uint_t state);
static ngx_int_t ngx_http_discovery_balancer_own(ngx_conf_t *cf,
    ngx_http_discovery_service_t *service);


/*
 * discovery_balancer;  in an upstream block, alone: the block's servers,
 * balancing method and keepalive are the services' own, in their blocks.
 */

char *
ngx_http_discovery_balancer(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_addr_t                       *addr;
    struct sockaddr_in               *sin;
    ngx_http_upstream_server_t       *placeholder;
    ngx_http_upstream_srv_conf_t     *uscf, **balancer;
    ngx_http_discovery_main_conf_t   *dmcf;

    uscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_upstream_module);

    if (uscf->peer.init_upstream == ngx_http_discovery_balancer_init) {
        return "is duplicate";
    }

    if (uscf->peer.init_upstream) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"discovery_balancer\" after another balancing "
                           "method or \"keepalive\" in upstream \"%V\": "
                           "they belong in the services' own upstream "
                           "blocks", &uscf->host);
        return NGX_CONF_ERROR;
    }

    if (uscf->servers == NULL || uscf->servers->nelts) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"discovery_balancer\" in upstream \"%V\", "
                           "which has \"server\" lines: its servers are "
                           "the routed services'", &uscf->host);
        return NGX_CONF_ERROR;
    }

    /*
     * An upstream block must have a server: a placeholder, never used (a
     * "server" line after it is refused).  It has an address, down, so
     * that a balancing method after this directive builds its peers and
     * ngx_http_discovery_balancer_check() can say what went wrong.
     */

    placeholder = ngx_array_push(uscf->servers);
    if (placeholder == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(placeholder, sizeof(ngx_http_upstream_server_t));

    addr = ngx_pcalloc(cf->pool, sizeof(ngx_addr_t));
    if (addr == NULL) {
        return NGX_CONF_ERROR;
    }

    sin = ngx_pcalloc(cf->pool, sizeof(struct sockaddr_in));
    if (sin == NULL) {
        return NGX_CONF_ERROR;
    }

    sin->sin_family = AF_INET;

    addr->sockaddr = (struct sockaddr *) sin;
    addr->socklen = sizeof(struct sockaddr_in);
    ngx_str_set(&addr->name, "discovery_balancer");

    ngx_str_set(&placeholder->name, "discovery_balancer");
    placeholder->addrs = addr;
    placeholder->naddrs = 1;
    placeholder->weight = 1;
    placeholder->down = 1;

    uscf->peer.init_upstream = ngx_http_discovery_balancer_init;

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_discovery_module);

    if (dmcf->balancers == NULL) {
        dmcf->balancers = ngx_array_create(cf->pool, 1,
                                       sizeof(ngx_http_upstream_srv_conf_t *));
        if (dmcf->balancers == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    balancer = ngx_array_push(dmcf->balancers);
    if (balancer == NULL) {
        return NGX_CONF_ERROR;
    }

    *balancer = uscf;

    return NGX_CONF_OK;
}


ngx_uint_t
ngx_http_discovery_is_balancer(ngx_http_upstream_srv_conf_t *uscf)
{
    return uscf->peer.init_upstream == ngx_http_discovery_balancer_init;
}


/* at the end of "http", by the upstream module, for each balancer block */

static ngx_int_t
ngx_http_discovery_balancer_init(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us)
{
    if (us->servers->nelts > 1) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"server\" in upstream \"%V\", which has "
                      "\"discovery_balancer\", in %s:%ui: its servers are "
                      "the routed services'",
                      &us->host, us->file_name, us->line);
        return NGX_ERROR;
    }

    /* the zone would copy the block's peers, which it has none of */

    if (us->shm_zone) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"zone\" in upstream \"%V\", which has "
                      "\"discovery_balancer\", in %s:%ui: a zone belongs in "
                      "the services' own upstream blocks",
                      &us->host, us->file_name, us->line);
        return NGX_ERROR;
    }

    us->peer.init = ngx_http_discovery_balancer_init_peer;

    return NGX_OK;
}


/*
 * A balancing method or keepalive that came after discovery_balancer in
 * its block replaced or wrapped it: keepalive would keep the services'
 * connections in the balancer's block, the others would never route.
 * Checked once every module's configuration is complete.
 */

ngx_int_t
ngx_http_discovery_balancer_check(ngx_conf_t *cf)
{
    ngx_uint_t                        i;
    ngx_http_upstream_srv_conf_t    **uscfp;
    ngx_http_discovery_main_conf_t   *dmcf;

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_discovery_module);

    if (dmcf->balancers == NULL) {
        return NGX_OK;
    }

    uscfp = dmcf->balancers->elts;

    for (i = 0; i < dmcf->balancers->nelts; i++) {
        if (uscfp[i]->peer.init != ngx_http_discovery_balancer_init_peer) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "upstream \"%V\" with \"discovery_balancer\" in "
                          "%s:%ui has another balancing method or "
                          "\"keepalive\": they belong in the services' own "
                          "upstream blocks",
                          &uscfp[i]->host, uscfp[i]->file_name,
                          uscfp[i]->line);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * Each service's upstream, found once, when the configuration is read:
 * its block (upstream= or its name, see ngx_http_discovery_upstreams()),
 * else the upstream made for its URL's host name, else one of its own for
 * its URL's host and port, resolved now.
 */

ngx_int_t
ngx_http_discovery_balancer_upstreams(ngx_conf_t *cf,
    ngx_http_discovery_main_conf_t *dmcf)
{
    ngx_uint_t                     i;
    ngx_http_discovery_service_t  *service;

    if (dmcf->balancers == NULL) {
        return NGX_OK;
    }

    service = dmcf->services.elts;

    for (i = 0; i < dmcf->services.nelts; i++) {

        if (service[i].uscf) {
            continue;
        }

        if (service[i].implicit) {
            service[i].uscf = service[i].implicit;
            continue;
        }

        if (ngx_http_discovery_balancer_own(cf, &service[i]) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * An upstream for "host:port", as proxy_pass makes one (every address of
 * the name, weight 1, max_fails=1 fail_timeout=10s), but not among the
 * upstream blocks, where "proxy_pass http://$discovery_upstream" would
 * find it instead of proxying to the address as it does.  A registry
 * service whose name does not resolve is not worth failing the
 * configuration: its requests are refused, and the reason logged.
 */

static ngx_int_t
ngx_http_discovery_balancer_own(ngx_conf_t *cf,
    ngx_http_discovery_service_t *service)
{
    ngx_url_t                      u;
    ngx_http_upstream_server_t    *server;
    ngx_http_upstream_srv_conf_t  *uscf;

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = service->host_port;
    u.default_port = service->port;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {

        if (service->registry) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "%s in \"%V\" of the registry's service \"%V\": "
                          "discovery_balancer cannot proxy to it",
                          u.err ? u.err : "invalid host", &service->host_port,
                          &service->name);
            return NGX_OK;
        }

        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "%s in \"%V\" of discovery_service \"%V\" in %s:%ui",
                      u.err ? u.err : "invalid host", &service->host_port,
                      &service->name, service->file, service->line);
        return NGX_ERROR;
    }

    uscf = ngx_pcalloc(cf->pool, sizeof(ngx_http_upstream_srv_conf_t));
    if (uscf == NULL) {
        return NGX_ERROR;
    }

    uscf->host = service->host;
    uscf->port = service->port;
    uscf->file_name = service->file;
    uscf->line = service->line;

    uscf->servers = ngx_array_create(cf->pool, 1,
                                     sizeof(ngx_http_upstream_server_t));
    if (uscf->servers == NULL) {
        return NGX_ERROR;
    }

    server = ngx_array_push(uscf->servers);
    if (server == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(server, sizeof(ngx_http_upstream_server_t));

    server->name = service->host_port;
    server->addrs = u.addrs;
    server->naddrs = u.naddrs;
    server->weight = 1;
    server->max_fails = 1;
    server->fail_timeout = 10;

    if (ngx_http_upstream_init_round_robin(cf, uscf) != NGX_OK) {
        return NGX_ERROR;
    }

    service->uscf = uscf;

    return NGX_OK;
}


/*
 * Per request: hands the request to the routed service's upstream, as
 * ngx_http_upstream_init_request() would have had "proxy_pass" named it,
 * and lets that upstream's own peer.init (round robin, least_conn,
 * keepalive...) choose the server.
 */

static ngx_int_t
ngx_http_discovery_balancer_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us)
{
    ngx_str_t                      name, upstream;
    ngx_http_upstream_t           *u;
    ngx_http_discovery_service_t  *service;

    u = r->upstream;

    if (ngx_http_discovery_routed(r, &service, &name, &upstream) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "discovery: a request that was not routed reached "
                      "upstream \"%V\": \"discovery_balancer\" needs "
                      "\"discovery_route on\" in the location that proxies "
                      "to it", &us->host);
        return NGX_ERROR;
    }

    if (service == NULL) {
        return ngx_http_discovery_balancer_unknown(r, us, &name, &upstream);
    }

    if (service->uscf == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "discovery: service \"%V\" has no upstream for "
                      "\"discovery_balancer\" in this configuration", &name);
        return ngx_http_discovery_balancer_refuse(r);
    }

    /* "http://NAME" would send plain text to a TLS port, and the reverse */

    if (u->ssl != service->https) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "discovery: service \"%V\" at \"%V\" is not reached "
                      "through \"%V%V\", which is %s: a location with "
                      "services of both kinds proxies to "
                      "\"$discovery_scheme://$discovery_upstream\"",
                      &name, &service->url, &u->schema, &us->host,
                      u->ssl ? "TLS" : "plain text");
        return ngx_http_discovery_balancer_refuse(r);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "discovery balancer: \"%V\" to upstream \"%V\"",
                   &name, &service->uscf->host);

    u->upstream = service->uscf;

#if (NGX_HTTP_SSL)
    u->ssl_name = service->uscf->host;
#endif

    return service->uscf->peer.init(r, service->uscf);
}


/*
 * A service of the table that this worker's configuration does not have:
 * during a reload, one the new configuration added, routed by an old
 * worker, or one it removed, routed by a new worker until its routes are
 * gone.  It is proxied as "proxy_pass http://$discovery_upstream" would:
 * to the upstream block of that name, or to the address; the search by
 * name is for this moment only.  Its scheme is not known here.
 */

static ngx_int_t
ngx_http_discovery_balancer_unknown(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us, ngx_str_t *name, ngx_str_t *upstream)
{
    ngx_url_t                        url;
    ngx_uint_t                       i;
    ngx_http_upstream_t             *u;
    ngx_http_upstream_srv_conf_t   **uscfp;
    ngx_http_upstream_main_conf_t   *umcf;

    u = r->upstream;

    umcf = ngx_http_get_module_main_conf(r, ngx_http_upstream_module);
    uscfp = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        if ((uscfp[i]->flags & NGX_HTTP_UPSTREAM_CREATE)
            && !ngx_http_discovery_is_balancer(uscfp[i])
            && uscfp[i]->host.len == upstream->len
            && ngx_strncasecmp(uscfp[i]->host.data, upstream->data,
                               upstream->len) == 0)
        {
            u->upstream = uscfp[i];
#if (NGX_HTTP_SSL)
            u->ssl_name = uscfp[i]->host;
#endif
            return uscfp[i]->peer.init(r, uscfp[i]);
        }
    }

    ngx_memzero(&url, sizeof(ngx_url_t));

    url.url = *upstream;
    url.no_resolve = 1;

    if (upstream->len == 0
        || ngx_parse_url(r->pool, &url) != NGX_OK
        || url.addrs == NULL)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "discovery: service \"%V\" is not in this "
                      "configuration, and \"%V\" is not an address for "
                      "upstream \"%V\" to proxy to", name, upstream,
                      &us->host);
        return ngx_http_discovery_balancer_refuse(r);
    }

    u->resolved = ngx_pcalloc(r->pool, sizeof(ngx_http_upstream_resolved_t));
    if (u->resolved == NULL) {
        return NGX_ERROR;
    }

    u->resolved->sockaddr = url.addrs[0].sockaddr;
    u->resolved->socklen = url.addrs[0].socklen;
    u->resolved->name = url.addrs[0].name;
    u->resolved->naddrs = 1;
    u->resolved->host = url.host;
    u->resolved->port = url.port;

#if (NGX_HTTP_SSL)
    u->ssl_name = url.host;
#endif

    return ngx_http_upstream_create_round_robin_peer(r, u->resolved);
}


/* 502: a peer that is never there, and no other to try */

static ngx_int_t
ngx_http_discovery_balancer_refuse(ngx_http_request_t *r)
{
    ngx_http_upstream_t  *u;

    u = r->upstream;

    u->peer.get = ngx_http_discovery_balancer_get_peer;
    u->peer.free = ngx_http_discovery_balancer_free_peer;
    u->peer.data = NULL;
    u->peer.tries = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_discovery_balancer_get_peer(ngx_peer_connection_t *pc, void *data)
{
    return NGX_DECLINED;
}


static void
ngx_http_discovery_balancer_free_peer(ngx_peer_connection_t *pc, void *data,
    ngx_uint_t state)
{
}
