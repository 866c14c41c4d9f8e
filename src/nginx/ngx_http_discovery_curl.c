
/*
 * libcurl's multi-socket interface on nginx's event loop, for the poller
 * and the registry's watcher: each socket libcurl watches is an nginx
 * connection, libcurl's timer an nginx timer, and libcurl's sockets are
 * closed here, once nginx no longer watches them.
 *
 * libcurl may close a socket before it says CURL_POLL_REMOVE for it:
 * 7.88 does so, without the close callback, with a connection still being
 * made when its transfer's timeout passes (a peer that drops the
 * handshake, a worker stalled past the timeout).  Deleting the number
 * from epoll then failed (EBADF, an alert), or deleted the registration
 * of whatever connection had got the number meanwhile.  Such a socket is
 * recognised at CURL_POLL_REMOVE, its number closed or another socket's;
 * one libcurl closes through the close callback leaves nginx first.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_discovery.h"


/* the first size of the table of sockets by number */
#define NGX_HTTP_DISCOVERY_CURL_SOCKETS  64


static int ngx_http_discovery_curl_socket(CURL *easy, curl_socket_t s,
    int what, void *userp, void *socketp);
static ngx_int_t ngx_http_discovery_curl_keep(ngx_http_discovery_curl_t *curl,
    ngx_connection_t *c);
static ngx_uint_t ngx_http_discovery_curl_closed(
    ngx_http_discovery_curl_t *curl, curl_socket_t s);
static void ngx_http_discovery_curl_free(ngx_http_discovery_curl_t *curl,
    ngx_connection_t *c, ngx_uint_t flags);
static int ngx_http_discovery_curl_close(void *clientp, curl_socket_t s);
static int ngx_http_discovery_curl_timer(CURLM *multi, long timeout_ms,
    void *userp);
static void ngx_http_discovery_curl_timeout(ngx_event_t *ev);
static void ngx_http_discovery_curl_event(ngx_event_t *ev);
static void ngx_http_discovery_curl_done(ngx_http_discovery_curl_t *curl);


ngx_int_t
ngx_http_discovery_curl_init(ngx_http_discovery_curl_t *curl, ngx_log_t *log,
    ngx_http_discovery_curl_done_pt done,
    ngx_http_discovery_curl_starved_pt starved)
{
    CURLMcode  rc;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "discovery: curl_global_init() failed");
        return NGX_ERROR;
    }

    curl->done = done;
    curl->starved = starved;
    curl->log = log;

    curl->dumb.fd = (ngx_socket_t) -1;
    curl->dumb.data = curl;

    curl->timer.handler = ngx_http_discovery_curl_timeout;
    curl->timer.data = &curl->dumb;
    curl->timer.log = log;
    curl->timer.cancelable = 1;

    curl->multi = curl_multi_init();
    if (curl->multi == NULL) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "discovery: curl_multi_init() failed");
        return NGX_ERROR;
    }

    /* without them nothing would drive the transfers */

    rc = curl_multi_setopt(curl->multi, CURLMOPT_SOCKETFUNCTION,
                           ngx_http_discovery_curl_socket);

    if (rc == CURLM_OK) {
        rc = curl_multi_setopt(curl->multi, CURLMOPT_SOCKETDATA, curl);
    }

    if (rc == CURLM_OK) {
        rc = curl_multi_setopt(curl->multi, CURLMOPT_TIMERFUNCTION,
                               ngx_http_discovery_curl_timer);
    }

    if (rc == CURLM_OK) {
        rc = curl_multi_setopt(curl->multi, CURLMOPT_TIMERDATA, curl);
    }

    if (rc != CURLM_OK) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "discovery: curl_multi_setopt() failed: %s",
                      curl_multi_strerror(rc));
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * What every handle added to the multi needs: its sockets are closed
 * here.  A connection keeps the callback of the handle that opened it,
 * whichever handle closes it later, so every handle sets the same one.
 */

CURLcode
ngx_http_discovery_curl_handle(ngx_http_discovery_curl_t *curl, CURL *easy)
{
    CURLcode  rc;

    rc = curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION,
                          ngx_http_discovery_curl_close);

    if (rc == CURLE_OK) {
        rc = curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, curl);
    }

    return rc;
}


/* at exit, once every handle is removed: closes the connections kept */

void
ngx_http_discovery_curl_cleanup(ngx_http_discovery_curl_t *curl)
{
    if (curl->multi == NULL) {
        return;
    }

    curl_multi_cleanup(curl->multi);
    curl->multi = NULL;

    if (curl->timer.timer_set) {
        ngx_del_timer(&curl->timer);
    }

    if (curl->sockets) {
        ngx_free(curl->sockets);
        curl->sockets = NULL;
        curl->nsockets = 0;
    }
}


/*
 * libcurl says which sockets to watch; each gets an nginx connection
 * whose events are level-triggered, since libcurl may leave data unread
 * between calls.
 */

static int
ngx_http_discovery_curl_socket(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp)
{
    ngx_http_discovery_curl_t  *curl = userp;
    ngx_connection_t           *c = socketp;

    ngx_uint_t  flags;

    if (what == CURL_POLL_REMOVE) {
        if (c) {
            /*
             * Usually the socket stays open, in libcurl's cache or until
             * closed; when libcurl has closed it already, it has left
             * epoll with the close.
             */
            flags = ngx_http_discovery_curl_closed(curl, s);
            ngx_http_discovery_curl_free(curl, c, flags);
            curl_multi_assign(curl->multi, s, NULL);
        }

        return 0;
    }

    if (c == NULL) {
        c = ngx_get_connection(s, curl->log);

        if (c && ngx_http_discovery_curl_keep(curl, c) != NGX_OK) {
            c->fd = (ngx_socket_t) -1;
            ngx_free_connection(c);
            c = NULL;
        }

        if (c == NULL) {
            if (curl->starved) {
                /* not -1, which would fail every transfer in flight */
                curl->starved(easy);
                return 0;
            }

            return -1;
        }

        c->data = curl;
        c->read->handler = ngx_http_discovery_curl_event;
        c->write->handler = ngx_http_discovery_curl_event;
        c->read->log = curl->log;
        c->write->log = curl->log;

        curl_multi_assign(curl->multi, s, c);
    }

    if ((what & CURL_POLL_IN) && !c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return -1;
        }

    } else if (!(what & CURL_POLL_IN) && c->read->active) {
        if (ngx_del_event(c->read, NGX_READ_EVENT, 0) != NGX_OK) {
            return -1;
        }
    }

    if ((what & CURL_POLL_OUT) && !c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return -1;
        }

    } else if (!(what & CURL_POLL_OUT) && c->write->active) {
        if (ngx_del_event(c->write, NGX_WRITE_EVENT, 0) != NGX_OK) {
            return -1;
        }
    }

    return 0;
}


/*
 * The connection of a socket, found by the socket's number when libcurl
 * closes it, and which socket had the number (a socket's inode is its
 * own while it is open).
 */

static ngx_int_t
ngx_http_discovery_curl_keep(ngx_http_discovery_curl_t *curl,
    ngx_connection_t *c)
{
    ngx_uint_t                         n;
    ngx_file_info_t                    fi;
    ngx_http_discovery_curl_socket_t  *sockets;

    if (ngx_fd_info(c->fd, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, curl->log, ngx_errno,
                      ngx_fd_info_n " of socket %d failed", c->fd);
        return NGX_ERROR;
    }

    if ((ngx_uint_t) c->fd >= curl->nsockets) {
        n = ngx_max(2 * curl->nsockets, (ngx_uint_t) c->fd + 1);
        n = ngx_max(n, NGX_HTTP_DISCOVERY_CURL_SOCKETS);

        sockets = ngx_calloc(n * sizeof(ngx_http_discovery_curl_socket_t),
                             curl->log);
        if (sockets == NULL) {
            return NGX_ERROR;
        }

        if (curl->sockets) {
            ngx_memcpy(sockets, curl->sockets,
                       curl->nsockets
                       * sizeof(ngx_http_discovery_curl_socket_t));
            ngx_free(curl->sockets);
        }

        curl->sockets = sockets;
        curl->nsockets = n;
    }

    curl->sockets[c->fd].connection = c;
    curl->sockets[c->fd].uniq = ngx_file_uniq(&fi);

    return NGX_OK;
}


/* libcurl closed the socket itself: the number is closed, or another's */

static ngx_uint_t
ngx_http_discovery_curl_closed(ngx_http_discovery_curl_t *curl,
    curl_socket_t s)
{
    ngx_file_info_t  fi;

    if (ngx_fd_info(s, &fi) != NGX_FILE_ERROR
        && ngx_file_uniq(&fi) == curl->sockets[s].uniq)
    {
        return 0;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, curl->log, 0,
                   "discovery: libcurl closed socket %d before "
                   "CURL_POLL_REMOVE", s);

    return NGX_CLOSE_EVENT;
}


/*
 * Releases nginx's side of a socket.  The socket open, its events are
 * deleted from epoll; about to be closed (NGX_CLOSE_EVENT), they leave
 * it with the close, as in ngx_close_connection().
 */

static void
ngx_http_discovery_curl_free(ngx_http_discovery_curl_t *curl,
    ngx_connection_t *c, ngx_uint_t flags)
{
    if ((flags & NGX_CLOSE_EVENT) && ngx_del_conn) {
        (void) ngx_del_conn(c, NGX_CLOSE_EVENT);

    } else {
        if (c->read->active) {
            (void) ngx_del_event(c->read, NGX_READ_EVENT, flags);
        }

        if (c->write->active) {
            (void) ngx_del_event(c->write, NGX_WRITE_EVENT, flags);
        }
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    curl->sockets[c->fd].connection = NULL;

    c->fd = (ngx_socket_t) -1;
    ngx_free_connection(c);
}


/*
 * libcurl closes its sockets here.  A socket it did not say
 * CURL_POLL_REMOVE for first leaves nginx before it is closed; the late
 * CURL_POLL_REMOVE then finds no connection.
 */

static int
ngx_http_discovery_curl_close(void *clientp, curl_socket_t s)
{
    ngx_http_discovery_curl_t  *curl = clientp;

    ngx_connection_t  *c;

    c = (ngx_uint_t) s < curl->nsockets ? curl->sockets[s].connection : NULL;

    if (c) {
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, curl->log, 0,
                       "discovery: libcurl closes socket %d still watched",
                       s);

        ngx_http_discovery_curl_free(curl, c, NGX_CLOSE_EVENT);

        if (curl->multi) {
            curl_multi_assign(curl->multi, s, NULL);
        }
    }

    if (ngx_close_socket(s) == -1) {
        ngx_log_error(NGX_LOG_ALERT, curl->log, ngx_socket_errno,
                      ngx_close_socket_n " %d failed", s);
        return 1;
    }

    return 0;
}


static int
ngx_http_discovery_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    ngx_http_discovery_curl_t  *curl = userp;

    ngx_event_t  *ev;

    ev = &curl->timer;

    /*
     * ngx_add_timer() keeps a set timer that is due within 300 ms of the
     * new time (NGX_TIMER_LAZY_DELAY): a new transfer's "now" would wait
     * for whatever libcurl asked before, and transfers started meanwhile
     * would go out together in one burst.  libcurl's time replaces the
     * old one.
     */
    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    /* libcurl must not be called back from here: 0 means "next loop" */

    if (timeout_ms >= 0) {
        ngx_add_timer(ev, (ngx_msec_t) timeout_ms);
    }

    return 0;
}


static void
ngx_http_discovery_curl_timeout(ngx_event_t *ev)
{
    int                         running;
    ngx_connection_t           *c;
    ngx_http_discovery_curl_t  *curl;

    c = ev->data;
    curl = c->data;

    curl_multi_socket_action(curl->multi, CURL_SOCKET_TIMEOUT, 0, &running);

    ngx_http_discovery_curl_done(curl);
}


static void
ngx_http_discovery_curl_event(ngx_event_t *ev)
{
    int                         running;
    ngx_connection_t           *c;
    ngx_http_discovery_curl_t  *curl;

    c = ev->data;
    curl = c->data;

    /* c may be freed by the call: libcurl can drop the socket */
    curl_multi_socket_action(curl->multi, c->fd,
                             ev->write ? CURL_CSELECT_OUT : CURL_CSELECT_IN,
                             &running);

    ngx_http_discovery_curl_done(curl);
}


/* each transfer completed goes to its user */

static void
ngx_http_discovery_curl_done(ngx_http_discovery_curl_t *curl)
{
    int       left;
    CURLMsg  *msg;

    while ((msg = curl_multi_info_read(curl->multi, &left))) {
        if (msg->msg == CURLMSG_DONE) {
            curl->done(msg->easy_handle, msg->data.result);
        }
    }
}
