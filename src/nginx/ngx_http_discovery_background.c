
/*
 * The background: threads of each worker's own, below its event loop in
 * priority, where the work proportional to a document or the table runs
 * (parsing a large document, applying polls to the table, building its
 * router, writing the state file).  Not nginx's default thread pool: its
 * threads run at the event loop's priority, and on a busy core a request
 * that came while one of them ran waited for its time slice to end.
 * These run at nice +NGX_HTTP_DISCOVERY_NICE: the event loop takes the
 * core whenever it has work, and they still get a share of it when the
 * core is saturated, so tables keep changing under load.  Not SCHED_IDLE:
 * it starves them whenever anything else on the machine keeps the cores
 * busy (a test waited 8 s in vain for a table beside a compiler).
 *
 * A task's handler runs in a thread; then its event's handler runs on the
 * event loop, which looks for finished tasks on a timer while any are out.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_discovery.h"

#if (NGX_THREADS)

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#if (NGX_LINUX)
#include <malloc.h>
#endif


#define NGX_HTTP_DISCOVERY_THREADS  2
#define NGX_HTTP_DISCOVERY_NICE     10

/*
 * Blocks from this size are mapped on their own: a table's copies and
 * router images at 100,000 routes and more, and nothing a request of
 * nginx's own allocates (a gzip buffer is some hundred kilobytes).
 */
#define NGX_HTTP_DISCOVERY_MMAP_THRESHOLD  (4 * 1024 * 1024)

/* how often the event loop looks for finished tasks, in milliseconds */
#define NGX_HTTP_DISCOVERY_COLLECT  5


typedef struct {
    pthread_mutex_t               mutex;
    pthread_cond_t                cond;
    pthread_t                     threads[NGX_HTTP_DISCOVERY_THREADS];
    ngx_uint_t                    nthreads;
    ngx_uint_t                    exiting;

    ngx_http_discovery_task_t    *queued;     /* to run, in order */
    ngx_http_discovery_task_t   **last;
    ngx_http_discovery_task_t    *out;        /* posted, not collected */

    ngx_event_t                   collect;
    ngx_log_t                    *log;
} ngx_http_discovery_background_t;


static void *ngx_http_discovery_background_thread(void *data);
static void ngx_http_discovery_background_collect(ngx_event_t *ev);


static ngx_http_discovery_background_t  ngx_http_discovery_background;

/* the collect timer's ev->data, as nginx's own timers without a connection */
static ngx_connection_t  ngx_http_discovery_background_dumb;


void
ngx_http_discovery_background_init_worker(ngx_cycle_t *cycle)
{
    int                               err;
    sigset_t                          set, old;
    ngx_uint_t                        i;
    ngx_http_discovery_background_t  *bg;

    bg = &ngx_http_discovery_background;

    bg->last = &bg->queued;
    bg->log = cycle->log;

    ngx_http_discovery_background_dumb.fd = (ngx_socket_t) -1;

    bg->collect.handler = ngx_http_discovery_background_collect;
    bg->collect.data = &ngx_http_discovery_background_dumb;
    bg->collect.log = cycle->log;

#ifdef M_ARENA_MAX
    /*
     * An arena of glibc's allocator for the event loop and one for each
     * thread, and no more.  Not one for all: a thread decoding a table
     * allocates thousands of times a millisecond, and a request's pool
     * then waited for the arena's lock, held by a thread of lower
     * priority (at 1,000,000 routes, one in ten of the event loop's
     * switches out; none since).  What the threads free stays in their
     * arenas until the trim after each publication gives it back.
     * Before any thread has allocated.
     */
    if (mallopt(M_ARENA_MAX, 1 + NGX_HTTP_DISCOVERY_THREADS) == 0) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "discovery: mallopt(M_ARENA_MAX) failed");
    }
#endif

#ifdef M_MMAP_THRESHOLD
    /*
     * A table's large buffers (copies, encodings, router images: many
     * megabytes) are mapped on their own and unmapped when freed.  glibc
     * raises the threshold past the size of any such block freed, and the
     * next ones then stay in the heap once freed: 55 MB of a worker's
     * memory at 100,000 routes.  A fixed threshold keeps it.
     */
    if (mallopt(M_MMAP_THRESHOLD, NGX_HTTP_DISCOVERY_MMAP_THRESHOLD) == 0) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "discovery: mallopt(M_MMAP_THRESHOLD) failed");
    }
#endif

    if (pthread_mutex_init(&bg->mutex, NULL) != 0
        || pthread_cond_init(&bg->cond, NULL) != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "discovery: cannot start the background threads: "
                      "the table's work runs on the event loop");
        return;
    }

    /* the threads start with every signal blocked: they are the loop's */

    sigfillset(&set);
    (void) pthread_sigmask(SIG_BLOCK, &set, &old);

    for (i = 0; i < NGX_HTTP_DISCOVERY_THREADS; i++) {
        err = pthread_create(&bg->threads[i], NULL,
                             ngx_http_discovery_background_thread, bg);
        if (err) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, err,
                          "discovery: pthread_create() failed");
            break;
        }

        bg->nthreads++;
    }

    (void) pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (bg->nthreads == 0) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "discovery: no background thread: the table's work "
                      "runs on the event loop");
    }
}


/*
 * After the other parts' exit: their tasks are over (they waited for
 * them), and the threads end.
 */

void
ngx_http_discovery_background_exit_worker(ngx_cycle_t *cycle)
{
    ngx_uint_t                        i;
    ngx_http_discovery_background_t  *bg;

    bg = &ngx_http_discovery_background;

    if (bg->nthreads == 0) {
        return;
    }

    pthread_mutex_lock(&bg->mutex);
    bg->exiting = 1;
    pthread_cond_broadcast(&bg->cond);
    pthread_mutex_unlock(&bg->mutex);

    for (i = 0; i < bg->nthreads; i++) {
        (void) pthread_join(bg->threads[i], NULL);
    }

    bg->nthreads = 0;

    if (bg->collect.timer_set) {
        ngx_del_timer(&bg->collect);
    }
}


/*
 * Queues the task: handler(ctx) in a thread, then done(ev) on the event
 * loop with ev->data = ctx.  NGX_ERROR: no thread, the caller does the
 * work at once.
 */

ngx_int_t
ngx_http_discovery_task_post(ngx_http_discovery_task_t *task, void *ctx,
    void (*handler)(void *data, ngx_log_t *log), ngx_event_handler_pt done,
    ngx_log_t *log)
{
    ngx_http_discovery_background_t  *bg;

    bg = &ngx_http_discovery_background;

    if (bg->nthreads == 0 || bg->exiting) {
        return NGX_ERROR;
    }

    task->ctx = ctx;
    task->handler = handler;
    task->finished = 0;
    task->event.data = ctx;
    task->event.handler = done;
    task->event.log = log;

    /* the event loop's own list: only it reads and writes task->out */
    task->out = bg->out;
    bg->out = task;

    pthread_mutex_lock(&bg->mutex);
    task->next = NULL;
    *bg->last = task;
    bg->last = &task->next;
    pthread_cond_signal(&bg->cond);
    pthread_mutex_unlock(&bg->mutex);

    if (!bg->collect.timer_set) {
        ngx_add_timer(&bg->collect, NGX_HTTP_DISCOVERY_COLLECT);
    }

    return NGX_OK;
}


static void *
ngx_http_discovery_background_thread(void *data)
{
    ngx_http_discovery_background_t  *bg = data;

    int                         nice;
    id_t                        tid;
    sigset_t                    set;
    ngx_http_discovery_task_t  *task;

    /* signals are the event loop's business, but for a fault's own */
    sigfillset(&set);
    sigdelset(&set, SIGILL);
    sigdelset(&set, SIGFPE);
    sigdelset(&set, SIGSEGV);
    sigdelset(&set, SIGBUS);
    (void) pthread_sigmask(SIG_SETMASK, &set, NULL);

    /*
     * On Linux a thread has a nice value of its own: the worker's
     * (worker_priority) plus NGX_HTTP_DISCOVERY_NICE, 19 at most.
     */
    tid = (id_t) syscall(SYS_gettid);
    errno = 0;
    nice = getpriority(PRIO_PROCESS, tid);

    if (errno == 0) {
        (void) setpriority(PRIO_PROCESS, tid,
                           ngx_min(nice + NGX_HTTP_DISCOVERY_NICE, 19));
    }

    for ( ;; ) {
        pthread_mutex_lock(&bg->mutex);

        while (bg->queued == NULL && !bg->exiting) {
            pthread_cond_wait(&bg->cond, &bg->mutex);
        }

        task = bg->queued;

        if (task == NULL) {
            /* exiting, and nothing left */
            pthread_mutex_unlock(&bg->mutex);
            return NULL;
        }

        bg->queued = task->next;

        if (bg->queued == NULL) {
            bg->last = &bg->queued;
        }

        pthread_mutex_unlock(&bg->mutex);

        task->handler(task->ctx, bg->log);

        ngx_memory_barrier();
        task->finished = 1;
    }
}


/* on the event loop: the done handler of each finished task */

static void
ngx_http_discovery_background_collect(ngx_event_t *ev)
{
    ngx_http_discovery_task_t        *task, **prev;
    ngx_http_discovery_background_t  *bg;

    bg = &ngx_http_discovery_background;

    prev = &bg->out;

    while (*prev) {
        task = *prev;

        if (!task->finished) {
            prev = &task->out;
            continue;
        }

        *prev = task->out;

        ngx_memory_barrier();

        /* may post tasks again, which go to the head of the list */
        task->event.handler(&task->event);

        prev = &bg->out;
    }

    /* while exiting too: nginx waits for the timer, and the work is done */
    if (bg->out) {
        ngx_add_timer(ev, NGX_HTTP_DISCOVERY_COLLECT);
    }
}

#endif
