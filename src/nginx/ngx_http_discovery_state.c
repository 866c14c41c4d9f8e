
/*
 * discovery_state: the published table on disk, so that after a restart
 * routes are served before the first poll completes.  The file holds the
 * snapshot exactly as in the zone: the core checks it when it is read.
 *
 * The file's directory must be writable by the worker user, who can
 * therefore put anything there: a symbolic link, a FIFO, a file under the
 * name of our temporary file.  Hence:
 *
 *   - only the processes that run as the worker user write the file: the
 *     workers, or nginx alone with master_process off.  The master runs
 *     as root and never writes it: a table the master publishes (the
 *     roster, at start and on every reload) is written by the first
 *     worker it starts;
 *   - a temporary file is created under a name nobody can guess, and only
 *     if nothing is there under that name (O_EXCL, O_NOFOLLOW): no link
 *     planted in the directory is ever followed;
 *   - the file is read only if it is a regular file, not through a link,
 *     and without waiting (a FIFO would block the open of a reader);
 *   - nginx -t neither reads nor writes it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_discovery.h"


/* no table of this module comes near: a bigger file is not ours */
#define NGX_HTTP_DISCOVERY_STATE_MAX  (1024 * 1024 * 1024)

/* mkostemps() replaces the Xs; the suffix tells what the file is */
#define NGX_HTTP_DISCOVERY_STATE_TMP     ".XXXXXX.tmp"
#define NGX_HTTP_DISCOVERY_STATE_SUFFIX  ".tmp"

/* beside the state file: its table's router image */
#define NGX_HTTP_DISCOVERY_STATE_IMAGE   ".image"


/*
 * One per worker: writes the tables it publishes, one at a time, in a
 * background thread: a write and its fsync() may take long, and would
 * stop every request of the worker meanwhile.
 */
typedef struct {
    ngx_http_discovery_main_conf_t  *dmcf;
    ngx_log_t                       *log;
    discovery_buf_t                  table;      /* to write; owned */
    ngx_atomic_uint_t                generation;
    unsigned                         running:1;
    unsigned                         again:1;    /* published meanwhile */
    unsigned                         exiting:1;
#if (NGX_THREADS)
    ngx_http_discovery_task_t        task;
#endif
} ngx_http_discovery_saver_t;


static ngx_fd_t ngx_http_discovery_state_open(ngx_str_t *path,
    const char *what, ngx_log_t *log, ngx_uint_t level, size_t *len);
static ngx_int_t ngx_http_discovery_state_read(ngx_fd_t fd, ngx_str_t *path,
    const char *what, ngx_log_t *log, u_char *buf, size_t len);
static void ngx_http_discovery_state_start(ngx_http_discovery_saver_t *saver);
static void ngx_http_discovery_state_write_handler(void *data, ngx_log_t *log);
#if (NGX_THREADS)
static void ngx_http_discovery_state_written(ngx_event_t *ev);
#endif
static void ngx_http_discovery_state_done(ngx_http_discovery_saver_t *saver);
static void ngx_http_discovery_state_sync(ngx_http_discovery_main_conf_t *dmcf,
    ngx_log_t *log);
static void ngx_http_discovery_state_save(ngx_http_discovery_main_conf_t *dmcf,
    discovery_buf_t *snapshot, ngx_atomic_uint_t generation, ngx_log_t *log);
static void ngx_http_discovery_state_save_image(
    ngx_http_discovery_main_conf_t *dmcf, discovery_buf_t *snapshot,
    ngx_atomic_uint_t generation, ngx_log_t *log);
static ngx_int_t ngx_http_discovery_state_write(ngx_fd_t fd, u_char *data,
    size_t len);
static void ngx_http_discovery_state_sync_dir(
    ngx_http_discovery_main_conf_t *dmcf, ngx_log_t *log);


/* set once this process runs as the worker user: see the top of the file */
static ngx_uint_t  ngx_http_discovery_state_writer;

static ngx_http_discovery_saver_t  ngx_http_discovery_saver;


/* "<state>.image": see ngx_http_discovery_state_load_image() */

ngx_int_t
ngx_http_discovery_state_names(ngx_conf_t *cf,
    ngx_http_discovery_main_conf_t *dmcf)
{
    if (ngx_conf_full_name(cf->cycle, &dmcf->state, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    dmcf->state_image.len = dmcf->state.len
                            + sizeof(NGX_HTTP_DISCOVERY_STATE_IMAGE) - 1;
    dmcf->state_image.data = ngx_pnalloc(cf->pool, dmcf->state_image.len + 1);
    if (dmcf->state_image.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(dmcf->state_image.data, "%V" NGX_HTTP_DISCOVERY_STATE_IMAGE
                "%Z", &dmcf->state);

    return NGX_OK;
}


/*
 * Reads the state file into *blob (ngx_alloc'ed), or warns and returns
 * NGX_DECLINED: a missing or damaged file never stops nginx.
 */

ngx_int_t
ngx_http_discovery_state_load(ngx_http_discovery_main_conf_t *dmcf,
    ngx_log_t *log, u_char **blob, size_t *len)
{
    u_char             *p;
    ngx_fd_t            fd;
    uint64_t            generation;
    discovery_error_t   err;

    fd = ngx_http_discovery_state_open(&dmcf->state, "state file", log,
                                       NGX_LOG_WARN, len);
    if (fd == NGX_INVALID_FILE) {
        return NGX_DECLINED;
    }

    p = ngx_alloc(*len, log);

    if (p == NULL
        || ngx_http_discovery_state_read(fd, &dmcf->state, "state file", log,
                                         p, *len)
           != NGX_OK)
    {
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
 * The router image saved with the table just loaded, read from
 * "<state>.image" straight into a block of the zone, if the file holds it
 * whole: a start then takes it instead of building it (a second at
 * 1,000,000 routes).  Missing, damaged, of another table or without room
 * beside the table, the file is passed over: the image is built, as it
 * always can be.  In the master, at start, with the zone's lock held.
 */

ngx_http_discovery_image_t *
ngx_http_discovery_state_image_locked(ngx_http_discovery_main_conf_t *dmcf,
    ngx_log_t *log, u_char *table, size_t table_len)
{
    size_t                       len;
    ngx_fd_t                     fd;
    discovery_error_t            err;
    ngx_http_discovery_image_t  *image;
    u_char                       header[DISCOVERY_IMAGE_FILE_HEADER];

    fd = ngx_http_discovery_state_open(&dmcf->state_image,
                                       "router image file", log, NGX_LOG_INFO,
                                       &len);
    if (fd == NGX_INVALID_FILE) {
        return NULL;
    }

    image = NULL;

    if (len <= sizeof(header)
        || ngx_http_discovery_state_read(fd, &dmcf->state_image,
                                         "router image file", log, header,
                                         sizeof(header))
           != NGX_OK)
    {
        goto failed;
    }

    len -= sizeof(header);

    /* as publishing does: room left for the next table beside it */

    if (dmcf->shpool->pfree * ngx_pagesize
        < table_len + len + 2 * ngx_pagesize)
    {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "discovery: router image file \"%V\" not used: no "
                      "room in the zone", &dmcf->state_image);
        goto failed;
    }

    image = ngx_http_discovery_image_alloc_locked(dmcf, len, log);

    if (image == NULL
        || ngx_http_discovery_state_read(fd, &dmcf->state_image,
                                         "router image file", log,
                                         image->data, len)
           != NGX_OK)
    {
        goto failed;
    }

    if (discovery_image_file_check(header, image->data, len, table,
                                   table_len, &err)
        != DISCOVERY_OK)
    {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "discovery: router image file \"%V\" not used: %s",
                      &dmcf->state_image, err.text);
        goto failed;
    }

    (void) ngx_close_file(fd);

    return image;

failed:

    if (image) {
        ngx_http_discovery_image_free_locked(dmcf, image);
    }

    (void) ngx_close_file(fd);

    return NULL;
}


/*
 * Opens a file of ours for reading, *len receiving its size, or logs why
 * not at `level` (a missing file) or WARN and returns NGX_INVALID_FILE.
 * A regular file only, not through a link, and without waiting: see the
 * top of the file.
 */

static ngx_fd_t
ngx_http_discovery_state_open(ngx_str_t *path, const char *what,
    ngx_log_t *log, ngx_uint_t level, size_t *len)
{
    ngx_fd_t          fd;
    ngx_err_t         err;
    ngx_file_info_t   fi;

    fd = ngx_open_file(path->data,
                       NGX_FILE_RDONLY|NGX_FILE_NONBLOCK|NGX_FILE_NOFOLLOW,
                       NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        err = ngx_errno;

        if (err != NGX_ENOENT) {
            level = NGX_LOG_WARN;
        }

        ngx_log_error(level, log, err,
                      "discovery: %s \"%V\" not loaded%s", what, path,
                      (err == NGX_ELOOP) ? ": it is a symbolic link" : "");
        return NGX_INVALID_FILE;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_WARN, log, ngx_errno,
                      "discovery: %s \"%V\" not loaded: "
                      ngx_fd_info_n " failed", what, path);
        goto failed;
    }

    if (!ngx_is_file(&fi)) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "discovery: %s \"%V\" not loaded: not a regular file",
                      what, path);
        goto failed;
    }

    *len = (size_t) ngx_file_size(&fi);

    if (*len == 0 || *len > NGX_HTTP_DISCOVERY_STATE_MAX) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "discovery: %s \"%V\" ignored: size %O",
                      what, path, ngx_file_size(&fi));
        goto failed;
    }

    return fd;

failed:

    (void) ngx_close_file(fd);

    return NGX_INVALID_FILE;
}


static ngx_int_t
ngx_http_discovery_state_read(ngx_fd_t fd, ngx_str_t *path, const char *what,
    ngx_log_t *log, u_char *buf, size_t len)
{
    ssize_t  n;

    n = ngx_read_fd(fd, buf, len);

    if (n != (ssize_t) len) {
        ngx_log_error(NGX_LOG_WARN, log, ngx_errno,
                      "discovery: %s \"%V\" ignored: read %z of %uz bytes",
                      what, path, n, len);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Called by each worker, and by nginx alone, once it runs as the worker
 * user: from then on the process writes the tables it publishes.  The
 * first worker also writes the table the master published, if the file
 * does not hold it yet.
 */

void
ngx_http_discovery_state_init_worker(ngx_cycle_t *cycle,
    ngx_http_discovery_main_conf_t *dmcf)
{
    if (dmcf->state.len == 0 || ngx_test_config) {
        return;
    }

    ngx_http_discovery_state_writer = 1;

    ngx_http_discovery_saver.dmcf = dmcf;
    ngx_http_discovery_saver.log = cycle->log;

    if (ngx_worker == 0) {
        ngx_http_discovery_state_sync(dmcf, cycle->log);
    }
}


/*
 * The write running in a background thread, if any, is waited for (the
 * threads end after this): what is left is written here, and from now on
 * every table is written at once.
 */

void
ngx_http_discovery_state_exit_worker(ngx_cycle_t *cycle)
{
    ngx_http_discovery_saver_t  *saver;

    saver = &ngx_http_discovery_saver;

    if (saver->dmcf == NULL) {
        return;
    }

    saver->exiting = 1;

    if (saver->running) {
#if (NGX_THREADS)
        ngx_http_discovery_task_wait(&saver->task.finished);
#endif
        ngx_http_discovery_state_done(saver);
    }
}


/*
 * A table this process published, for the state file: takes it over.
 * While a write runs, the newest table is written after it instead.
 */

void
ngx_http_discovery_state_publish(ngx_http_discovery_main_conf_t *dmcf,
    discovery_buf_t *table, ngx_atomic_uint_t generation)
{
    ngx_http_discovery_saver_t  *saver;

    saver = &ngx_http_discovery_saver;

    if (!ngx_http_discovery_state_writer || saver->dmcf != dmcf) {
        discovery_buf_free(table);
        return;
    }

    if (saver->running) {
        saver->again = 1;
        discovery_buf_free(table);
        return;
    }

    saver->table = *table;
    saver->generation = generation;
    table->data = NULL;
    table->len = 0;

    ngx_http_discovery_state_start(saver);
}


static void
ngx_http_discovery_state_start(ngx_http_discovery_saver_t *saver)
{
    saver->running = 1;

#if (NGX_THREADS)
    if (!saver->exiting) {

        if (ngx_http_discovery_task_post(&saver->task, saver,
                                     ngx_http_discovery_state_write_handler,
                                     ngx_http_discovery_state_written,
                                     saver->log)
            == NGX_OK)
        {
            return;
        }
    }
#endif

    ngx_http_discovery_state_write_handler(saver, saver->log);
    ngx_http_discovery_state_done(saver);
}


/*
 * In a thread: the table given, then the zone's own if a newer one was
 * published meanwhile.  The zone's lock is taken only to copy a table and
 * to rename the file; errors are logged from here, as nginx's own thread
 * pools do.
 */

static void
ngx_http_discovery_state_write_handler(void *data, ngx_log_t *log)
{
    ngx_http_discovery_saver_t  *saver = data;

    if (saver->table.data) {
        ngx_http_discovery_state_save(saver->dmcf, &saver->table,
                                      saver->generation, saver->log);
    }

    ngx_http_discovery_state_sync(saver->dmcf, saver->log);
}


#if (NGX_THREADS)

static void
ngx_http_discovery_state_written(ngx_event_t *ev)
{
    ngx_http_discovery_state_done(ev->data);
}

#endif


static void
ngx_http_discovery_state_done(ngx_http_discovery_saver_t *saver)
{
    saver->running = 0;
    discovery_buf_free(&saver->table);

    if (saver->again) {
        /* no table of its own: the zone's newest */
        saver->again = 0;
        ngx_http_discovery_state_start(saver);
    }
}


/* writes the zone's table, unless the file holds it already */

static void
ngx_http_discovery_state_sync(ngx_http_discovery_main_conf_t *dmcf,
    ngx_log_t *log)
{
    discovery_buf_t              copy;
    ngx_atomic_uint_t            generation;
    ngx_http_discovery_shctx_t  *sh;

    if (!ngx_http_discovery_state_writer) {
        return;
    }

    sh = dmcf->sh;
    copy.data = NULL;

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    generation = sh->generation;

    if (sh->snapshot && generation != sh->saved_generation) {
        copy.len = sh->snapshot_len;
        copy.data = ngx_alloc(copy.len, log);

        if (copy.data) {
            ngx_memcpy(copy.data, sh->snapshot, copy.len);
        }
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    if (copy.data == NULL) {
        return;
    }

    ngx_http_discovery_state_save(dmcf, &copy, generation, log);

    ngx_free(copy.data);
}


/*
 * Writes a published table: a temporary file, fsync, then rename, so the
 * file is always a whole table.  The rename happens under the zone's lock
 * and only if no newer table was published meanwhile, nor this one
 * written already: the file never goes back in time when two processes
 * publish at once.
 */

static void
ngx_http_discovery_state_save(ngx_http_discovery_main_conf_t *dmcf,
    discovery_buf_t *snapshot, ngx_atomic_uint_t generation, ngx_log_t *log)
{
    ngx_fd_t                     fd;
    ngx_int_t                    renamed;
    ngx_http_discovery_shctx_t  *sh;
    u_char                       tmp[NGX_MAX_PATH];

    if (!ngx_http_discovery_state_writer) {
        return;
    }

    sh = dmcf->sh;

    fd = ngx_http_discovery_state_create(&dmcf->state, tmp, log);
    if (fd == NGX_INVALID_FILE) {
        return;
    }

    if (ngx_http_discovery_state_write(fd, snapshot->data, snapshot->len)
        != NGX_OK
        || fsync(fd) == -1)
    {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "discovery: cannot write state file \"%s\"", tmp);
        (void) ngx_close_file(fd);
        (void) ngx_delete_file(tmp);
        return;
    }

    (void) ngx_close_file(fd);

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    renamed = 0;

    if (sh->generation == generation && sh->saved_generation != generation) {
        if (ngx_rename_file(tmp, dmcf->state.data) == NGX_FILE_ERROR) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "discovery: " ngx_rename_file_n " \"%s\" to "
                          "\"%V\" failed", tmp, &dmcf->state);

        } else {
            sh->saved_generation = generation;
            renamed = 1;
        }
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    if (!renamed) {
        (void) ngx_delete_file(tmp);
        return;
    }

    /* the rename itself survives a crash only once the directory is synced */
    ngx_http_discovery_state_sync_dir(dmcf, log);

    ngx_http_discovery_state_save_image(dmcf, snapshot, generation, log);
}


/*
 * Writes the router image of the table just saved to "<state>.image", for
 * the next start: see ngx_http_discovery_state_load_image().  A reader
 * slot of this process keeps the image in the zone while it is written.
 * Not fsynced: the file is a cache whose header binds it to its table and
 * whose checksum finds a write cut short, and a start without it builds
 * the image.  Written only while the table is the newest: an image several
 * times the table's size is not written for a table already replaced.
 */

static void
ngx_http_discovery_state_save_image(ngx_http_discovery_main_conf_t *dmcf,
    discovery_buf_t *snapshot, ngx_atomic_uint_t generation, ngx_log_t *log)
{
    ngx_fd_t                      fd;
    ngx_int_t                     rc;
    ngx_uint_t                    i, renamed;
    discovery_error_t             err;
    ngx_http_discovery_shctx_t   *sh;
    ngx_http_discovery_image_t   *image;
    ngx_http_discovery_reader_t  *reader;
    u_char                        tmp[NGX_MAX_PATH];
    u_char                        header[DISCOVERY_IMAGE_FILE_HEADER];

    sh = dmcf->sh;
    image = NULL;
    reader = NULL;

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    if (sh->generation == generation && sh->image
        && sh->image->generation == generation)
    {
        for (i = 0; i < NGX_HTTP_DISCOVERY_READERS; i++) {
            if (ngx_http_discovery_reader_free(&sh->readers[i])) {
                reader = &sh->readers[i];
                reader->pid = ngx_pid;
                reader->generation = generation;
                image = sh->image;
                break;
            }
        }
    }

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    if (image == NULL) {
        return;
    }

    rc = NGX_ERROR;
    fd = NGX_INVALID_FILE;

    if (discovery_image_file_header(snapshot->data, snapshot->len, image->data,
                                    image->len, header, &err)
        != DISCOVERY_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "discovery: cannot save the router image: %s",
                      err.text);
        goto release;
    }

    fd = ngx_http_discovery_state_create(&dmcf->state_image, tmp, log);
    if (fd == NGX_INVALID_FILE) {
        goto release;
    }

    if (ngx_http_discovery_state_write(fd, header, sizeof(header)) != NGX_OK
        || ngx_http_discovery_state_write(fd, image->data, image->len)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "discovery: cannot write router image file \"%s\"",
                      tmp);
        goto release;
    }

    rc = NGX_OK;

release:

    if (fd != NGX_INVALID_FILE) {
        (void) ngx_close_file(fd);
    }

    renamed = 0;

    ngx_shmtx_lock(&dmcf->shpool->mutex);

    reader->pid = 0;
    reader->generation = 0;

    /* the image goes with the file that holds its table, never older */

    if (rc == NGX_OK && sh->saved_generation == generation) {
        if (ngx_rename_file(tmp, dmcf->state_image.data) == NGX_FILE_ERROR) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "discovery: " ngx_rename_file_n " \"%s\" to "
                          "\"%V\" failed", tmp, &dmcf->state_image);
        } else {
            renamed = 1;
        }
    }

    ngx_http_discovery_images_reclaim_locked(dmcf);

    ngx_shmtx_unlock(&dmcf->shpool->mutex);

    if (fd != NGX_INVALID_FILE && !renamed) {
        (void) ngx_delete_file(tmp);
    }
}


/*
 * Creates "<state>.XXXXXX.tmp", the Xs random (mkostemps() draws them and
 * retries on a name in use), with O_EXCL and O_NOFOLLOW: whatever someone
 * put in the directory is never opened.  Mode 0644, as nginx gives its
 * files: the table holds no secret, and who looks after the gateway may
 * read it without becoming the worker user.  tmp receives the name.
 * The registry's file beside the state file is written so too.
 */

ngx_fd_t
ngx_http_discovery_state_create(ngx_str_t *path, u_char *tmp, ngx_log_t *log)
{
    ngx_fd_t  fd;

    if (path->len + sizeof(NGX_HTTP_DISCOVERY_STATE_TMP) > NGX_MAX_PATH) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "discovery: state file name \"%V\" is too long", path);
        return NGX_INVALID_FILE;
    }

    ngx_sprintf(tmp, "%V" NGX_HTTP_DISCOVERY_STATE_TMP "%Z", path);

    fd = mkostemps((char *) tmp, sizeof(NGX_HTTP_DISCOVERY_STATE_SUFFIX) - 1,
                   O_CLOEXEC|O_NOFOLLOW);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "discovery: cannot create a temporary file for \"%V\"",
                      path);
        return NGX_INVALID_FILE;
    }

    if (fchmod(fd, NGX_FILE_DEFAULT_ACCESS) == -1) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "discovery: fchmod() \"%s\" failed", tmp);
        (void) ngx_close_file(fd);
        (void) ngx_delete_file(tmp);
        return NGX_INVALID_FILE;
    }

    return fd;
}


static ngx_int_t
ngx_http_discovery_state_write(ngx_fd_t fd, u_char *data, size_t len)
{
    size_t   written;
    ssize_t  n;

    for (written = 0; written < len; written += n) {
        n = ngx_write_fd(fd, data + written, len - written);

        if (n == -1 && ngx_errno == NGX_EINTR) {
            n = 0;
            continue;
        }

        if (n <= 0) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_http_discovery_state_sync_dir(ngx_http_discovery_main_conf_t *dmcf,
    ngx_log_t *log)
{
    u_char    *p;
    size_t     len;
    ngx_fd_t   fd;
    u_char     dir[NGX_MAX_PATH];

    /* the path is a full one (ngx_conf_full_name): it has a '/' */

    p = dmcf->state.data + dmcf->state.len;

    while (p > dmcf->state.data && p[-1] != '/') {
        p--;
    }

    len = p - dmcf->state.data;

    if (len > 1) {
        len--;                          /* "/var/lib/nginx", not ".../" */
    }

    if (len == 0 || len >= NGX_MAX_PATH) {
        return;
    }

    ngx_cpystrn(dir, dmcf->state.data, len + 1);

    fd = ngx_open_file(dir, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "discovery: " ngx_open_file_n " \"%s\" failed", dir);
        return;
    }

    if (fsync(fd) == -1) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "discovery: fsync() \"%s\" failed", dir);
    }

    (void) ngx_close_file(fd);
}
