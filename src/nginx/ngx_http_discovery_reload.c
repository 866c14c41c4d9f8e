
/*
 * How the registry's watcher, in a worker, makes the master reload the
 * configuration, when the workers run as another user than the master.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <pthread.h>

#include "ngx_http_discovery.h"


/*
 * A worker cannot kill() the master when the master runs as root and the
 * workers as "user nobody": the kernel refuses a signal to a process of
 * another user (EPERM).  But the signal the kernel sends to a file's
 * owner (fcntl F_SETOWN) when the file becomes readable is checked
 * against the credentials of whoever set the owner, not of whoever wrote.
 * nginx relies on this itself: ngx_spawn_process() makes the master the
 * owner of its end of each worker's channel (FIOASYNC, F_SETOWN), but the
 * master only notes the SIGIO and never reads a channel.  So the master
 * holds the read end of a pipe of its own, as its owner, with SIGHUP as
 * the signal (F_SETSIG): a worker writes a byte to the write end, and the
 * kernel sends the master SIGHUP, which nginx's own handler takes as
 * "nginx -s reload".  nginx logs it as "received from 65": the kernel's
 * POLLIN|POLLRDNORM lies where a kill()'s sender would.  The kernel holds
 * the owner as a process, not a number: once the master is gone nothing
 * is signalled, even to a process given its pid again.
 *
 * Chosen over a process the master forks (as root) to signal it when a
 * worker writes to it: that one must be reaped, die with the master,
 * not be started by nginx -t or per reload, and be forked once nginx has
 * daemonized, which no module hook follows; here there is no process, and
 * only the owner has to wait for the daemonizing fork (pthread_atfork).
 *
 * F_SETSIG keeps the owner's credentials, so a process holding the read
 * end could choose the signal the master gets: only the master keeps it,
 * the others close it as they start.  The master empties the pipe at
 * each configuration it reads, hence at each reload a write causes (Linux
 * 5.5 to 5.14 signalled only a pipe that was empty).
 */

#if (NGX_LINUX)

static ngx_fd_t    ngx_http_discovery_reload_pipe[2] = { -1, -1 };

/* the process F_SETOWN named, 0: none yet */
static ngx_pid_t   ngx_http_discovery_reload_owner;

static ngx_uint_t  ngx_http_discovery_reload_atfork;


static void ngx_http_discovery_reload_prepare(void);
static void ngx_http_discovery_reload_close(ngx_uint_t i, ngx_log_t *log);


/*
 * In the master (the one to be: nginx has not daemonized yet when it
 * first reads its configuration), for each configuration it reads.
 */

void
ngx_http_discovery_reload_init_module(ngx_cycle_t *cycle)
{
    u_char                           buf[64];
    u_long                           on;
    ngx_fd_t                        *fd;
    ngx_core_conf_t                 *ccf;
    ngx_http_discovery_main_conf_t  *dmcf;

    fd = ngx_http_discovery_reload_pipe;

    if (ngx_test_config) {
        return;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);
    dmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_discovery_module);

    if (!ccf->master || dmcf == NULL || dmcf->registry == NULL) {
        ngx_http_discovery_reload_close(0, cycle->log);
        ngx_http_discovery_reload_close(1, cycle->log);
        ngx_http_discovery_reload_owner = 0;
        return;
    }

    if (fd[0] != -1) {
        /* what the workers wrote: this reload takes it in */
        while (read(fd[0], buf, sizeof(buf)) > 0) { /* void */ }
        return;
    }

    if (pipe2(fd, O_NONBLOCK|O_CLOEXEC) == -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "discovery: pipe2() failed: the registry's changes "
                      "will need a reload by hand");
        return;
    }

    on = 1;

    if (fcntl(fd[0], F_SETSIG, ngx_signal_value(NGX_RECONFIGURE_SIGNAL))
        == -1
        || ioctl(fd[0], FIOASYNC, &on) == -1)
    {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "discovery: fcntl(F_SETSIG) or ioctl(FIOASYNC) failed: "
                      "the registry's changes will need a reload by hand");
        ngx_http_discovery_reload_close(0, cycle->log);
        ngx_http_discovery_reload_close(1, cycle->log);
        return;
    }

    /*
     * The master is named the owner before it forks a process: only then
     * is it known, nginx's daemonizing fork having come since.  Once per
     * process: glibc drops the handler if the module is unloaded.
     */

    if (!ngx_http_discovery_reload_atfork) {
        if (pthread_atfork(ngx_http_discovery_reload_prepare, NULL, NULL)
            != 0)
        {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "discovery: pthread_atfork() failed: the "
                          "registry's changes will need a reload by hand");
            return;
        }

        ngx_http_discovery_reload_atfork = 1;
    }
}


static void
ngx_http_discovery_reload_prepare(void)
{
    if (ngx_process != NGX_PROCESS_MASTER
        || ngx_http_discovery_reload_pipe[0] == -1
        || ngx_http_discovery_reload_owner == ngx_pid)
    {
        return;
    }

    if (fcntl(ngx_http_discovery_reload_pipe[0], F_SETOWN, ngx_pid) == -1) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                      "discovery: fcntl(F_SETOWN) failed: the registry's "
                      "changes will need a reload by hand");
        return;
    }

    ngx_http_discovery_reload_owner = ngx_pid;
}


/* in each process the master forks: a worker keeps the write end */

void
ngx_http_discovery_reload_init_process(ngx_cycle_t *cycle)
{
    ngx_pid_t  owner;

    if (ngx_http_discovery_reload_pipe[0] == -1) {
        return;
    }

    owner = fcntl(ngx_http_discovery_reload_pipe[0], F_GETOWN);

    if (ngx_process == NGX_PROCESS_WORKER && owner != getppid()) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "discovery: the registry's reload would signal %P, "
                      "not the master %P: its changes will need a reload "
                      "by hand", owner, getppid());
    }

    ngx_http_discovery_reload_close(0, cycle->log);

    if (ngx_process != NGX_PROCESS_WORKER) {
        ngx_http_discovery_reload_close(1, cycle->log);
    }
}


/* in a worker: the master reloads its configuration */

ngx_int_t
ngx_http_discovery_reload_ask(ngx_log_t *log)
{
    ngx_err_t  err;

    if (ngx_http_discovery_reload_pipe[1] == -1) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "discovery: the master cannot be asked to reload "
                      "(see the error log at its start)");
        return NGX_ERROR;
    }

    if (write(ngx_http_discovery_reload_pipe[1], "r", 1) == 1) {
        return NGX_OK;
    }

    err = ngx_errno;

    /* full: the reloads it asks for, still to come, empty it */

    if (err == NGX_EAGAIN) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_ALERT, log, err,
                  "discovery: write() to the master's reload pipe failed");

    return NGX_ERROR;
}


static void
ngx_http_discovery_reload_close(ngx_uint_t i, ngx_log_t *log)
{
    if (ngx_http_discovery_reload_pipe[i] == -1) {
        return;
    }

    if (close(ngx_http_discovery_reload_pipe[i]) == -1) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "discovery: close() of the reload pipe failed");
    }

    ngx_http_discovery_reload_pipe[i] = -1;
}


#else

/* F_SETSIG is Linux's: elsewhere the workers must run as the master's user */

void
ngx_http_discovery_reload_init_module(ngx_cycle_t *cycle)
{
}


void
ngx_http_discovery_reload_init_process(ngx_cycle_t *cycle)
{
}


ngx_int_t
ngx_http_discovery_reload_ask(ngx_log_t *log)
{
    if (kill(getppid(), ngx_signal_value(NGX_RECONFIGURE_SIGNAL)) == -1) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "discovery: kill(%P, SIGHUP) failed", getppid());
        return NGX_ERROR;
    }

    return NGX_OK;
}

#endif
