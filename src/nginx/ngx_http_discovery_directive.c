
/*
 * The directives: discovery_zone, discovery_service with its URL and
 * options, discovery_status, discovery_route, the TLS files of the polls;
 * and, at the end of "http", the upstream each service proxies to.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_discovery.h"


#define NGX_HTTP_DISCOVERY_MIN_ZONE       (64 * 1024)


static char *ngx_http_discovery_service_url(ngx_conf_t *cf,
    ngx_http_discovery_service_t *service, ngx_str_t *url);
static char *ngx_http_discovery_credential(ngx_conf_t *cf, ngx_str_t *in,
    ngx_str_t *out);
static char *ngx_http_discovery_implicit_upstream(ngx_conf_t *cf,
    ngx_http_discovery_service_t *service);
static char *ngx_http_discovery_service_option(ngx_conf_t *cf,
    ngx_http_discovery_service_t *service, ngx_str_t *value);


char *
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


char *
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

    if (dmcf->registry && dmcf->registry->adding) {
        service->registry = 1;
        service->file = (u_char *) "the registry";
        service->line = 0;
    }
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

            if (service->grpc) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"uri=\" does not apply to the gRPC "
                                   "service \"%V\": it is polled by "
                                   "reflection", &service->name);
                return NGX_CONF_ERROR;
            }

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

    /* a gRPC service's calls name their own paths */

    if (service->grpc) {
        service->format = DISCOVERY_FORMAT_GRPC;
        ngx_str_null(&uri);
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

    /* a registry service's host name is resolved by proxy_pass's resolver */

    if (service->upstream_opt.len == 0 && !service->registry
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

    service->implicit = ngx_http_upstream_add(cf, &u, 0);
    if (service->implicit == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * "http[s]://[user[:password]@]host[:port][/path]", or "grpc[s]://" and
 * no path.  The credentials are kept apart for the polls; service->url,
 * which the status page and the logs show, has the password as "***", and
 * the URL polled has none.  A gRPC service is polled over HTTP/2 at
 * "http[s]://host:port", the default ports being grpc_pass's.
 */

static char *
ngx_http_discovery_service_url(ngx_conf_t *cf,
    ngx_http_discovery_service_t *service, ngx_str_t *url)
{
    u_char     *p, *at, *slash, *last;
    ngx_str_t   scheme, polled, rest, user, password;
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

    } else if (url->len >= 7
               && ngx_strncasecmp(url->data, (u_char *) "grpc://", 7) == 0)
    {
        ngx_str_set(&scheme, "grpc://");
        u.default_port = 80;
        service->grpc = 1;

    } else if (url->len >= 8
               && ngx_strncasecmp(url->data, (u_char *) "grpcs://", 8) == 0)
    {
        ngx_str_set(&scheme, "grpcs://");
        u.default_port = 443;
        service->https = 1;
        service->grpc = 1;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid URL \"%V\" of discovery_service \"%V\", "
                           "it must start with \"http://\", \"https://\", "
                           "\"grpc://\" or \"grpcs://\"",
                           url, &service->name);
        return NGX_CONF_ERROR;
    }

    if (service->grpc && service->https) {
        ngx_str_set(&polled, "https://");

    } else if (service->grpc) {
        ngx_str_set(&polled, "http://");

    } else {
        polled = scheme;
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

    /* gRPC clients call /package.Service/Method at the server's root */

    if (service->grpc && ngx_strlchr(rest.data, rest.data + rest.len, '/')) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the gRPC URL \"%V\" of discovery_service \"%V\" "
                           "cannot have a path", &service->url,
                           &service->name);
        return NGX_CONF_ERROR;
    }

    /* polled: scheme and the rest, no credentials */

    service->base.len = polled.len + rest.len;
    service->base.data = ngx_pnalloc(cf->pool, service->base.len);
    if (service->base.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_cpymem(service->base.data, polled.data, polled.len);
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

        } else if (s.len == 4 && ngx_strncmp(s.data, "grpc", 4) == 0) {
            service->format = DISCOVERY_FORMAT_GRPC;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid format \"%V\", it must be "
                               "\"auto\", \"routes\", \"openapi\" or "
                               "\"grpc\"", &s);
            return NGX_CONF_ERROR;
        }

        /* the URL's scheme says how the service is polled */

        if (service->grpc != (service->format == DISCOVERY_FORMAT_GRPC)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"format=%V\" of discovery_service \"%V\" "
                               "needs %s URL", &s, &service->name,
                               service->grpc ? "an http:// or https://"
                                            : "a grpc:// or grpcs://");
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value->data, "grpc_internal=", 14) == 0) {
        s.data = value->data + 14;
        s.len = value->len - 14;

        if (s.len == 2 && ngx_strncmp(s.data, "on", 2) == 0) {
            service->grpc_internal = 1;

        } else if (s.len == 3 && ngx_strncmp(s.data, "off", 3) == 0) {
            service->grpc_internal = 0;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\", it must be "
                               "\"grpc_internal=on\" or \"grpc_internal=off\"",
                               value);
            return NGX_CONF_ERROR;
        }

        if (!service->grpc) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" of discovery_service \"%V\" needs a "
                               "grpc:// or grpcs:// URL", value,
                               &service->name);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", value);

    return NGX_CONF_ERROR;
}


/* discovery_api [write=on|off]: the management API's location */

char *
ngx_http_discovery_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_discovery_loc_conf_t *dlcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (dlcf->api_write != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;
    dlcf->api_write = 0;

    if (cf->args->nelts == 2) {
        if (ngx_strcmp(value[1].data, "write=on") == 0) {
            dlcf->api_write = 1;

        } else if (ngx_strcmp(value[1].data, "write=off") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_discovery_api_handler;

    dlcf->api_file = ngx_pnalloc(cf->pool, cf->conf_file->file.name.len
                                           + NGX_INT_T_LEN + 2);
    if (dlcf->api_file == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(dlcf->api_file, "%V:%ui%Z", &cf->conf_file->file.name,
                cf->conf_file->line);

    return NGX_CONF_OK;
}


char *
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

char *
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

char *
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


char *
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
 * The block found is discovery_balancer's too; one that has
 * discovery_balancer itself would send the service's requests back to it.
 */

char *
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
                break;
            }
        }

        if (j < umcf->upstreams.nelts
            && ngx_http_discovery_is_balancer(uscfp[j]))
        {
            if (!service[i].registry) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "upstream \"%V\" of discovery_service \"%V\" "
                              "has \"discovery_balancer\", which would send "
                              "the service's requests back to itself, "
                              "in %s:%ui", name, &service[i].name,
                              service[i].file, service[i].line);
                return NGX_CONF_ERROR;
            }

            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "upstream \"%V\" of the registry's service \"%V\" "
                          "has \"discovery_balancer\": proxying to %V",
                          name, &service[i].name, &service[i].host_port);
            continue;
        }

        if (j < umcf->upstreams.nelts) {
            service[i].upstream = *name;
            service[i].uscf = uscfp[j];
            continue;
        }

        /* a registry service is not worth failing the configuration */
        if (service[i].upstream_opt.len && service[i].registry) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "upstream \"%V\" of the registry's service \"%V\" "
                          "is not defined: proxying to %V", name,
                          &service[i].name, &service[i].host_port);
            continue;
        }

        /* the check runs at the end of "http": name the service's line */
        if (service[i].upstream_opt.len) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "upstream \"%V\" of discovery_service \"%V\" "
                          "is not defined in %s:%ui", name, &service[i].name,
                          service[i].file, service[i].line);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}
