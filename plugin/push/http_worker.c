/*
 * The HTTP worker (see rtm_http.h). The broker thread and the worker share
 * two lock-free hand-off stacks, `inbox` (submitted, not started) and
 * `outbox` (finished, not drained), plus the `stopping` flag and an eventfd
 * (each written by one side, read by the other). Each side pushes with a
 * CAS and the other takes the whole stack with one exchange, so neither
 * thread ever waits for the other: the broker thread never blocks on a
 * worker that the scheduler has put aside. Everything curl does, DNS and
 * TLS included, happens on the worker thread inside
 * curl_multi_socket_action(). The worker sleeps in epoll_wait() on curl's
 * sockets and the eventfd, which the broker thread writes when the inbox
 * stops being empty or the plugin stops.
 *
 * Event-driven (curl's multi_socket API) rather than curl_multi_perform():
 * perform() checks every transfer in flight with a poll() of its own each
 * time anything happens, which measured 9 poll() calls per push with 16
 * requests in flight. Here curl is told which socket is ready and touches
 * only that transfer, so an answer costs one epoll_wait() and its read.
 *
 * Cost on the broker's CPU: the worker runs under SCHED_IDLE (nice 19 if
 * that is refused), so on a busy core it only takes what the broker thread
 * leaves, and a waking broker thread preempts it at once. At most
 * RTM_HTTP_CONNECTIONS requests are in flight, each on a keep-alive
 * connection that the next request reuses; the rest wait in the worker's
 * own FIFO. A burst therefore never opens hundreds of connections at once.
 *
 * Memory: the worker never frees what the broker thread allocated (a job
 * and its request): it wipes the password as soon as the request is done,
 * and the broker thread frees both when it drains the result. A worker set
 * aside by the scheduler inside free() would otherwise hold the lock of the
 * broker thread's malloc arena. The easy handles are the worker's, kept for
 * reuse so that a request allocates almost nothing.
 */
#define _GNU_SOURCE /* SCHED_IDLE, gettid() */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "rtm_http.h"
#include "rtm_list.h"

#define POLL_MS    1000 /* longest sleep: the stop flag is checked at least this often */
#define MAX_EVENTS 32

struct job {
    struct job *next;    /* in inbox, outbox or the worker's waiting FIFO */
    struct rtm_list fly; /* in the worker's in-flight list */
    uint64_t tag;
    struct rtm_push_request req;
    CURL *easy;
    char *body;
    size_t body_len;
    char *retry_after;
    char *rate_limit_reset;
    char error[CURL_ERROR_SIZE];
    long status;
    int64_t started_ms;
    int64_t elapsed_ms;
};

/* A FIFO owned by one thread. */
struct queue {
    struct job *head;
    struct job **tail;
};

/* A lock-free stack between the two threads: one pushes, the other takes
 * everything at once (so there is no ABA problem). */
struct stack {
    _Atomic(struct job *) top;
};

struct rtm_http {
    pthread_t thread;
    CURLM *multi;
    struct stack inbox;  /* broker thread -> worker */
    struct stack outbox; /* worker -> broker thread */
    atomic_bool stopping;
    struct rtm_http_options opts;
    char *ca_file;
    struct curl_slist *headers; /* the same for every request */
    int wakefd;                 /* eventfd: broker thread -> worker */
    /* Worker thread only: */
    int epfd;             /* curl's sockets and wakefd */
    int64_t due_ms;       /* when curl wants its timers run; -1: never */
    struct queue waiting; /* taken from the inbox, not started yet */
    struct rtm_list flying;
    size_t nflying;
    CURL *idle[RTM_HTTP_CONNECTIONS]; /* easy handles between requests */
    size_t nidle;
    /* Broker thread only: */
    struct queue done; /* taken from the outbox, not yet handed over */
    size_t pending;
    uint64_t submitted;
    uint64_t refused;
    uint64_t completed;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void queue_init(struct queue *q)
{
    q->head = NULL;
    q->tail = &q->head;
}

static void queue_push(struct queue *q, struct job *job)
{
    job->next = NULL;
    *q->tail = job;
    q->tail = &job->next;
}

/* Takes the oldest job out of `q`, or NULL when it is empty. */
static struct job *queue_pop(struct queue *q)
{
    struct job *job = q->head;
    if (job) {
        q->head = job->next;
        if (!q->head)
            q->tail = &q->head;
        job->next = NULL;
    }
    return job;
}

/* Empties `q` and returns what it held, oldest first. */
static struct job *queue_take(struct queue *q)
{
    struct job *all = q->head;
    queue_init(q);
    return all;
}

/* Appends the list `jobs` (linked by next) to `q`. */
static void queue_append(struct queue *q, struct job *jobs)
{
    while (jobs) {
        struct job *next = jobs->next;
        queue_push(q, jobs);
        jobs = next;
    }
}

/* Pushes `job`; true when the stack was empty before. */
static bool stack_push(struct stack *s, struct job *job)
{
    struct job *top = atomic_load_explicit(&s->top, memory_order_relaxed);
    do {
        job->next = top;
    } while (!atomic_compare_exchange_weak_explicit(&s->top, &top, job, memory_order_release,
                                                    memory_order_relaxed));
    return top == NULL;
}

/* Empties the stack; returns what it held, oldest first. */
static struct job *stack_take(struct stack *s)
{
    struct job *newest = atomic_exchange_explicit(&s->top, NULL, memory_order_acquire);
    struct job *oldest = NULL;
    while (newest) {
        struct job *next = newest->next;
        newest->next = oldest;
        oldest = newest;
        newest = next;
    }
    return oldest;
}

/* Overwrites a secret in place (it is freed later, by its owner). */
static void wipe(char *s)
{
    if (!s)
        return;
    for (volatile char *p = s; *p; p++)
        *p = '\0';
}

static void job_free(struct job *job)
{
    if (job->easy)
        curl_easy_cleanup(job->easy);
    rtm_push_request_free(&job->req);
    free(job->body);
    free(job->retry_after);
    free(job->rate_limit_reset);
    free(job);
}

static void free_list(struct job *job)
{
    while (job) {
        struct job *next = job->next;
        job_free(job);
        job = next;
    }
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct job *job = userdata;
    size_t n = size * nmemb;
    size_t keep = job->body_len + n > RTM_HTTP_BODY_MAX ? RTM_HTTP_BODY_MAX - job->body_len : n;
    if (keep > 0) {
        char *grown = realloc(job->body, job->body_len + keep + 1);
        if (!grown)
            return 0; /* aborts the transfer: reported as an error */
        memcpy(grown + job->body_len, data, keep);
        job->body_len += keep;
        grown[job->body_len] = '\0';
        job->body = grown;
    }
    return n;
}

/* Keeps the value of header `name` if `line` is that header. */
static void keep_header(const char *line, size_t len, const char *name, char **slot)
{
    size_t name_len = strlen(name);
    if (len <= name_len || strncasecmp(line, name, name_len) != 0)
        return;
    const char *v = line + name_len;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    char *copy = strndup(v, (size_t)(end - v));
    if (copy) {
        free(*slot);
        *slot = copy;
    }
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
    struct job *job = userdata;
    size_t n = size * nmemb;
    keep_header(line, n, "retry-after:", &job->retry_after);
    keep_header(line, n, "x-rate-limit-reset:", &job->rate_limit_reset);
    return n;
}

/* A new easy handle with the options every request shares. */
static CURL *new_easy(struct rtm_http *h)
{
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
    bad |= curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, h->opts.timeout_ms);
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->opts.connect_timeout_ms);
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "mosquitto-rtm");
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    if (h->ca_file)
        bad |= curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
    if (bad) {
        curl_easy_cleanup(e);
        return NULL;
    }
    return e;
}

/* Gives `job` an easy handle, reused when one is idle (with its buffers:
 * a request then allocates almost nothing), set up for its request. */
static int setup_easy(struct rtm_http *h, struct job *job)
{
    CURL *e = h->nidle ? h->idle[--h->nidle] : new_easy(h);
    if (!e)
        return -1;
    job->easy = e;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, job->req.url);
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, job->req.body);
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)job->req.body_len);
    bad |= curl_easy_setopt(e, CURLOPT_USERNAME, job->req.username);
    bad |= curl_easy_setopt(e, CURLOPT_PASSWORD, job->req.password);
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, job);
    bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, job);
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, job->error);
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, job);
    return bad ? -1 : 0;
}

/* Takes the job's handle back for the next request: nothing in it may
 * point into the job (freed by the broker thread) or keep its credentials
 * (libcurl's copies are freed here). */
static void release_easy(struct rtm_http *h, struct job *job)
{
    CURL *e = job->easy;
    job->easy = NULL;
    if (!e)
        return;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_USERNAME, NULL);
    bad |= curl_easy_setopt(e, CURLOPT_PASSWORD, NULL);
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, NULL);
    bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, NULL);
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, NULL);
    if (bad || h->nidle == RTM_HTTP_CONNECTIONS)
        curl_easy_cleanup(e);
    else
        h->idle[h->nidle++] = e;
}

/* Worker thread: the job is over, successfully or not; hand it back. Its
 * request (allocated by the broker thread) is freed when drained. */
static void finish(struct rtm_http *h, struct job *job, long status)
{
    job->status = status;
    job->elapsed_ms = mono_ms() - job->started_ms;
    if (rtm_list_linked(&job->fly)) {
        curl_multi_remove_handle(h->multi, job->easy);
        rtm_list_remove(&job->fly);
        h->nflying--;
    }
    release_easy(h, job);
    wipe(job->req.password); /* the credentials go as soon as possible */
    stack_push(&h->outbox, job);
}

static void start(struct rtm_http *h, struct job *job)
{
    job->started_ms = mono_ms();
    if (setup_easy(h, job) != 0) {
        snprintf(job->error, sizeof(job->error), "could not set up the request");
        finish(h, job, 0);
        return;
    }
    if (curl_multi_add_handle(h->multi, job->easy) != CURLM_OK) {
        snprintf(job->error, sizeof(job->error), "could not start the request");
        finish(h, job, 0);
        return;
    }
    rtm_list_add_tail(&h->flying, &job->fly);
    h->nflying++;
}

/* Starts waiting jobs, oldest first, while there is a free connection;
 * returns how many. */
static size_t start_waiting(struct rtm_http *h)
{
    size_t n = 0;
    for (; h->nflying < RTM_HTTP_CONNECTIONS && h->waiting.head; n++)
        start(h, queue_pop(&h->waiting));
    return n;
}

/* Hands back every finished transfer; returns how many. */
static size_t collect_done(struct rtm_http *h)
{
    CURLMsg *m;
    int left;
    size_t n = 0;
    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct job *job = NULL;
        CURLcode rc = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&job);
        long status = 0;
        if (rc == CURLE_OK)
            curl_easy_getinfo(job->easy, CURLINFO_RESPONSE_CODE, &status);
        else if (!job->error[0])
            snprintf(job->error, sizeof(job->error), "%s", curl_easy_strerror(rc));
        finish(h, job, status);
        n++;
    }
    return n;
}

static void abandon_all(struct rtm_http *h)
{
    while (!rtm_list_empty(&h->flying)) {
        struct job *job = rtm_container_of(h->flying.next, struct job, fly);
        curl_multi_remove_handle(h->multi, job->easy);
        rtm_list_remove(&job->fly);
        job_free(job);
    }
    h->nflying = 0;
    free_list(queue_take(&h->waiting));
    while (h->nidle)
        curl_easy_cleanup(h->idle[--h->nidle]);
}

/* The worker only ever gets CPU time the broker thread does not want: with
 * the broker pinned to one core, an equal share would come straight out of
 * MQTT latency. SCHED_IDLE still runs whenever the core is otherwise idle
 * (and gets a small share under full load), so pushes are delayed, never
 * lost. Threads curl starts (its DNS resolver) inherit the policy. */
static void lower_priority(void)
{
    struct sched_param none = {0};
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &none) != 0)
        setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
}

/* --- curl's multi_socket API: the worker's event loop -------------------- */

/* CURLMOPT_SOCKETFUNCTION: keeps the epoll set equal to what curl waits
 * for. `known` is set (curl_multi_assign) once a socket is in the set; a
 * failed ADD or MOD retries as the other, in case curl reused a number.
 * If both fail (ENOMEM, or the user's epoll watch limit), the socket stays
 * unwatched and the request ends at its timeout, a network error that is
 * retried. Never -1: curl 7.88 then marks the whole multi handle dead, and
 * the next curl_multi_socket_action() crashes on transfers not yet
 * connected (found in review, reproduced under ASan). */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *known)
{
    struct rtm_http *h = userp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(h->epfd, EPOLL_CTL_DEL, fd, NULL);
        return 0;
    }
    struct epoll_event ev = {.data.fd = fd};
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    int op = known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    bool watched =
        epoll_ctl(h->epfd, op, fd, &ev) == 0 ||
        epoll_ctl(h->epfd, op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) == 0;
    if (watched && !known)
        curl_multi_assign(h->multi, fd, h);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: when curl next wants its timers run. */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct rtm_http *h = userp;
    (void)multi;
    h->due_ms = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
    return 0;
}

static void socket_action(struct rtm_http *h, curl_socket_t fd, int flags)
{
    int running;
    curl_multi_socket_action(h->multi, fd, flags, &running);
}

/* How long epoll_wait may sleep. One millisecond past curl's due time, as
 * mono_ms() truncates: curl then surely finds the timer expired (no busy
 * loop on a timer that is due by our clock and not yet by curl's). */
static int wait_ms(const struct rtm_http *h)
{
    if (h->due_ms < 0)
        return POLL_MS;
    int64_t left = h->due_ms - mono_ms();
    return left < 0 ? 0 : left < POLL_MS ? (int)left + 1 : POLL_MS;
}

static int select_flags(uint32_t events)
{
    return (events & EPOLLIN ? CURL_CSELECT_IN : 0) | (events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
           (events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
}

/* Resets the eventfd; the inbox itself is read by the loop. */
static void clear_wakeup(struct rtm_http *h)
{
    uint64_t count;
    if (read(h->wakefd, &count, sizeof(count)) < 0) {
        /* EAGAIN: already reset */
    }
}

/* Sleeps until a socket is ready, the inbox is written or a timer is due,
 * and lets curl handle just that. */
static void wait_for_events(struct rtm_http *h)
{
    struct epoll_event ev[MAX_EVENTS];
    int n = epoll_wait(h->epfd, ev, MAX_EVENTS, wait_ms(h));
    for (int i = 0; i < n; i++) {
        if (ev[i].data.fd == h->wakefd)
            clear_wakeup(h);
        else
            socket_action(h, ev[i].data.fd, select_flags(ev[i].events));
    }
    if (h->due_ms >= 0 && mono_ms() >= h->due_ms)
        socket_action(h, CURL_SOCKET_TIMEOUT, 0);
}

static void *worker_main(void *arg)
{
    struct rtm_http *h = arg;
    lower_priority();
    while (!atomic_load_explicit(&h->stopping, memory_order_acquire)) {
        queue_append(&h->waiting, stack_take(&h->inbox));
        /* curl starts new transfers when its timers run. */
        if (start_waiting(h) > 0)
            socket_action(h, CURL_SOCKET_TIMEOUT, 0);
        /* Freed connections take the next waiting requests at once. */
        if (collect_done(h) > 0)
            continue;
        wait_for_events(h);
        collect_done(h);
    }
    abandon_all(h);
    return NULL;
}

/* Wakes the worker (from the broker thread). */
static void wake(struct rtm_http *h)
{
    uint64_t one = 1;
    if (write(h->wakefd, &one, sizeof(one)) < 0) {
        /* EAGAIN: the counter is full, so a wakeup is pending anyway. */
    }
}

static void http_free(struct rtm_http *h)
{
    free_list(stack_take(&h->inbox));
    free_list(stack_take(&h->outbox));
    free_list(queue_take(&h->done));
    if (h->multi)
        curl_multi_cleanup(h->multi); /* may still remove sockets from epfd */
    if (h->epfd >= 0)
        close(h->epfd);
    if (h->wakefd >= 0)
        close(h->wakefd);
    curl_slist_free_all(h->headers);
    free(h->ca_file);
    free(h);
    curl_global_cleanup();
}

/* At most RTM_HTTP_CONNECTIONS connections, all kept for reuse; curl
 * reports its sockets and timers to the worker's event loop. */
static bool setup_multi(struct rtm_http *h)
{
    CURLM *multi = h->multi;
    return curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket) == CURLM_OK &&
           curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, h) == CURLM_OK &&
           curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer) == CURLM_OK &&
           curl_multi_setopt(multi, CURLMOPT_TIMERDATA, h) == CURLM_OK &&
           curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)RTM_HTTP_CONNECTIONS) ==
               CURLM_OK &&
           curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)RTM_HTTP_CONNECTIONS) ==
               CURLM_OK &&
           curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)RTM_HTTP_CONNECTIONS) == CURLM_OK;
}

struct rtm_http *rtm_http_start(const struct rtm_http_options *opts, char *err, size_t err_len)
{
    struct rtm_http *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, err_len, "out of memory starting the HTTP worker");
        return NULL;
    }
    /* Here, on the broker thread, before any curl handle exists: libcurl's
     * global state must not be set up lazily from the worker thread. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(h);
        snprintf(err, err_len, "could not initialise libcurl");
        return NULL;
    }
    h->opts = *opts;
    h->due_ms = -1;
    h->epfd = epoll_create1(EPOLL_CLOEXEC);
    h->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    atomic_init(&h->inbox.top, NULL);
    atomic_init(&h->outbox.top, NULL);
    atomic_init(&h->stopping, false);
    queue_init(&h->waiting);
    queue_init(&h->done);
    rtm_list_init(&h->flying);
    h->ca_file = opts->ca_file ? strdup(opts->ca_file) : NULL;
    h->multi = curl_multi_init();
    h->headers = curl_slist_append(NULL, "Content-Type: application/json");
    /* No "Expect: 100-continue" round trip for large bodies. */
    struct curl_slist *more = h->headers ? curl_slist_append(h->headers, "Expect:") : NULL;
    if (more)
        h->headers = more;
    if (!h->multi || (opts->ca_file && !h->ca_file) || !more || !setup_multi(h)) {
        snprintf(err, err_len, "could not initialise libcurl");
        http_free(h);
        return NULL;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = h->wakefd};
    if (h->epfd < 0 || h->wakefd < 0 || epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->wakefd, &ev) != 0) {
        snprintf(err, err_len, "could not set up the HTTP worker's epoll and eventfd: %s",
                 strerror(errno));
        http_free(h);
        return NULL;
    }
    if (pthread_create(&h->thread, NULL, worker_main, h) != 0) {
        snprintf(err, err_len, "could not start the HTTP worker thread");
        http_free(h);
        return NULL;
    }
    return h;
}

int rtm_http_submit(struct rtm_http *http, uint64_t tag, struct rtm_push_request *req)
{
    if (http->pending >= http->opts.queue_max) {
        http->refused++;
        return -1;
    }
    struct job *job = calloc(1, sizeof(*job));
    if (!job) {
        http->refused++;
        return -1;
    }
    rtm_list_init(&job->fly);
    job->tag = tag;
    job->req = *req;
    memset(req, 0, sizeof(*req));
    /* A non-empty inbox already has a wakeup on its way. */
    if (stack_push(&http->inbox, job))
        wake(http);
    http->pending++;
    http->submitted++;
    return 0;
}

size_t rtm_http_drain(struct rtm_http *http, size_t max, rtm_http_result_fn fn, void *ud)
{
    if (atomic_load_explicit(&http->outbox.top, memory_order_relaxed))
        queue_append(&http->done, stack_take(&http->outbox));
    size_t n = 0;
    for (struct job *done; n < max && (done = queue_pop(&http->done)) != NULL;) {
        struct rtm_http_result r = {
            .tag = done->tag,
            .status = done->status,
            .body = done->body ? done->body : "",
            .body_len = done->body_len,
            .retry_after = done->retry_after,
            .rate_limit_reset = done->rate_limit_reset,
            .error = done->status ? "" : done->error,
            .elapsed_ms = done->elapsed_ms,
        };
        fn(ud, &r);
        job_free(done);
        n++;
    }
    http->pending -= n;
    http->completed += n;
    return n;
}

void rtm_http_stats(struct rtm_http *http, struct rtm_http_stats *out)
{
    out->pending = http->pending;
    out->submitted = http->submitted;
    out->refused = http->refused;
    out->completed = http->completed;
}

void rtm_http_stop(struct rtm_http *http)
{
    if (!http)
        return;
    atomic_store_explicit(&http->stopping, true, memory_order_release);
    wake(http);
    pthread_join(http->thread, NULL);
    http_free(http);
}

bool rtm_http_ca_ok(const char *cainfo, const char *capath, char *why, size_t why_len)
{
    if (!cainfo && !capath)
        return true; /* libcurl's TLS library decides; nothing to check */
    if (cainfo && access(cainfo, R_OK) == 0)
        return true;
    if (!cainfo && access(capath, R_OK | X_OK) == 0)
        return true;
    snprintf(why, why_len,
             "rtm: push: no CA bundle at %s (libcurl's default): every request to JPush will "
             "fail its certificate check (curl error 77); install the ca-certificates package, "
             "or set plugin_opt_jpush_ca_file",
             cainfo ? cainfo : capath);
    return false;
}

bool rtm_http_default_ca_ok(char *why, size_t why_len)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    if (!v || v->age < CURLVERSION_NINTH) /* cainfo and capath came in libcurl 7.70 */
        return true;
    return rtm_http_ca_ok(v->cainfo, v->capath, why, why_len);
}
