
/*
 * discovery_state: the published table on disk, so that after a restart
 * routes are served before the first poll completes.  The file holds the
 * snapshot exactly as in the zone: the core checks it when it is read.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_discovery_module.h"


/* no table of this module comes near: a bigger file is not ours */
#define NGX_HTTP_DISCOVERY_STATE_MAX  (1024 * 1024 * 1024)


/*
 * Reads the state file into *blob (ngx_alloc'ed), or warns and returns
 * NGX_DECLINED: a missing or damaged file never stops nginx.
 */

ngx_int_t
ngx_http_discovery_state_load(ngx_http_discovery_main_conf_t *dmcf,
    ngx_log_t *log, u_char **blob, size_t *len)
{
    u_char             *p;
    ssize_t             n;
    uint64_t            generation;
    ngx_fd_t            fd;
    ngx_file_info_t     fi;
    discovery_error_t   err;

    fd = ngx_open_file(dmcf->state.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_WARN, log, ngx_errno,
                      "discovery: state file \"%V\" not loaded",
                      &dmcf->state);
        return NGX_DECLINED;
    }

    p = NULL;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_WARN, log, ngx_errno,
                      "discovery: state file \"%V\" not loaded: "
                      ngx_fd_info_n " failed", &dmcf->state);
        goto failed;
    }

    *len = (size_t) ngx_file_size(&fi);

    if (*len == 0 || *len > NGX_HTTP_DISCOVERY_STATE_MAX) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "discovery: state file \"%V\" ignored: size %O",
                      &dmcf->state, ngx_file_size(&fi));
        goto failed;
    }

    p = ngx_alloc(*len, log);
    if (p == NULL) {
        goto failed;
    }

    n = ngx_read_fd(fd, p, *len);

    if (n != (ssize_t) *len) {
        ngx_log_error(NGX_LOG_WARN, log, ngx_errno,
                      "discovery: state file \"%V\" ignored: "
                      "read %z of %uz bytes", &dmcf->state, n, *len);
        goto failed;
    }

    if (discovery_snapshot_check(p, *len, &generation, &err) != DISCOVERY_OK)
    {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "discovery: state file \"%V\" ignored: %s",
                      &dmcf->state, err.text);
        goto failed;
    }

    (void) ngx_close_file(fd);

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "discovery: table %uL loaded from \"%V\"",
                  generation, &dmcf->state);

    *blob = p;

    return NGX_OK;

failed:

    if (p) {
        ngx_free(p);
    }

    (void) ngx_close_file(fd);

    return NGX_DECLINED;
}


/*
 * Writes a published table: a temporary file, fsync, then rename, so the
 * file is always a whole table.  The rename happens under the zone's lock
 * and only if no newer table was published meanwhile: the file never goes
 * back in time when two processes publish at once.
 */

void
ngx_http_discovery_state_save(ngx_http_discovery_main_conf_t *dmcf,
    discovery_buf_t *snapshot, ngx_atomic_uint_t generation, ngx_log_t *log)
{
    u_char     *p;
    ssize_t     n;
    ngx_fd_t    fd;
    ngx_int_t   renamed;
    u_char      tmp[NGX_MAX_PATH];

    p = ngx_snprintf(tmp, NGX_MAX_PATH - 1, "%V.%P.tmp", &dmcf->state,
                     ngx_pid);
    *p = '\0';

    fd = ngx_open_file(tmp, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE,
                       NGX_FILE_DEFAULT_ACCESS);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "discovery: cannot write state file \"%s\"", tmp);
        return;
    }

    n = ngx_write_fd(fd, snapshot->data, snapshot->len);

    if (n != (ssize_t) snapshot->len || fsync(fd) == -1) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "discovery: cannot write state file \"%s\"", tmp);
        (void) ngx_close_file(fd);
        (void) ngx_delete_file(tmp);
        return;
    }

    (void) ngx_close_file(fd);

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    renamed = 0;

    if (dmcf->sh->generation == generation) {
        if (ngx_rename_file(tmp, dmcf->state.data) == NGX_FILE_ERROR) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "discovery: " ngx_rename_file_n " \"%s\" to "
                          "\"%V\" failed", tmp, &dmcf->state);
        } else {
            renamed = 1;
        }
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    if (!renamed) {
        (void) ngx_delete_file(tmp);
    }
}
