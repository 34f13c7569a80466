/*
 * The HTTP worker (see rtm_http.h). The broker thread and the worker share
 * exactly two queues under one mutex: `inbox` (submitted, not started) and
 * `outbox` (finished, not drained). Everything curl does, DNS and TLS
 * included, happens on the worker thread inside curl_multi_perform(); the
 * worker sleeps in curl_multi_poll() and is woken by curl_multi_wakeup()
 * when work arrives or the plugin stops.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "rtm_http.h"
#include "rtm_list.h"

#define POLL_MS 1000

struct job {
    struct job *next;    /* in inbox or outbox */
    struct rtm_list fly; /* in the worker's in-flight list */
    uint64_t tag;
    struct rtm_push_request req;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    size_t body_len;
    char *retry_after;
    char *rate_limit_reset;
    char error[CURL_ERROR_SIZE];
    long status;
    int64_t started_ms;
    int64_t elapsed_ms;
};

struct queue {
    struct job *head;
    struct job **tail;
};

struct rtm_http {
    pthread_t thread;
    pthread_mutex_t lock;
    CURLM *multi;
    struct queue inbox;  /* under lock */
    struct queue outbox; /* under lock */
    bool stopping;       /* under lock */
    struct rtm_http_options opts;
    char *ca_file;
    /* Broker thread only: */
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

/* Empties `q` and returns what it held, oldest first. */
static struct job *queue_take(struct queue *q)
{
    struct job *all = q->head;
    queue_init(q);
    return all;
}

static void job_free(struct job *job)
{
    if (job->easy)
        curl_easy_cleanup(job->easy);
    curl_slist_free_all(job->headers);
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

static int setup_easy(struct rtm_http *h, struct job *job)
{
    CURL *e = curl_easy_init();
    if (!e)
        return -1;
    job->easy = e;
    job->headers = curl_slist_append(NULL, "Content-Type: application/json");
    /* No "Expect: 100-continue" round trip for large bodies. */
    struct curl_slist *more = job->headers ? curl_slist_append(job->headers, "Expect:") : NULL;
    if (!more)
        return -1;
    job->headers = more;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, job->req.url);
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, job->req.body);
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)job->req.body_len);
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, job->headers);
    bad |= curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    bad |= curl_easy_setopt(e, CURLOPT_USERNAME, job->req.username);
    bad |= curl_easy_setopt(e, CURLOPT_PASSWORD, job->req.password);
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, h->opts.timeout_ms);
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->opts.connect_timeout_ms);
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "mosquitto-rtm");
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, job);
    bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, job);
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, job->error);
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, job);
    if (h->ca_file)
        bad |= curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
    return bad ? -1 : 0;
}

/* Worker thread: the job is over, successfully or not; hand it back. */
static void finish(struct rtm_http *h, struct job *job, long status)
{
    job->status = status;
    job->elapsed_ms = mono_ms() - job->started_ms;
    if (rtm_list_linked(&job->fly)) {
        curl_multi_remove_handle(h->multi, job->easy);
        rtm_list_remove(&job->fly);
    }
    curl_easy_cleanup(job->easy);
    job->easy = NULL;
    curl_slist_free_all(job->headers);
    job->headers = NULL;
    rtm_push_request_free(&job->req); /* the credentials go as soon as possible */
    pthread_mutex_lock(&h->lock);
    queue_push(&h->outbox, job);
    pthread_mutex_unlock(&h->lock);
}

static void start(struct rtm_http *h, struct job *job, struct rtm_list *flying)
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
    rtm_list_add_tail(flying, &job->fly);
}

static void collect_done(struct rtm_http *h)
{
    CURLMsg *m;
    int left;
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
    }
}

static void abandon_flying(struct rtm_http *h, struct rtm_list *flying)
{
    while (!rtm_list_empty(flying)) {
        struct job *job = rtm_container_of(flying->next, struct job, fly);
        curl_multi_remove_handle(h->multi, job->easy);
        rtm_list_remove(&job->fly);
        job_free(job);
    }
}

static void *worker_main(void *arg)
{
    struct rtm_http *h = arg;
    struct rtm_list flying;
    rtm_list_init(&flying);
    for (;;) {
        pthread_mutex_lock(&h->lock);
        bool stopping = h->stopping;
        struct job *incoming = stopping ? NULL : queue_take(&h->inbox);
        pthread_mutex_unlock(&h->lock);
        if (stopping)
            break;
        while (incoming) {
            struct job *next = incoming->next;
            start(h, incoming, &flying);
            incoming = next;
        }
        int running;
        curl_multi_perform(h->multi, &running);
        collect_done(h);
        curl_multi_poll(h->multi, NULL, 0, POLL_MS, NULL);
    }
    abandon_flying(h, &flying);
    return NULL;
}

static void http_free(struct rtm_http *h)
{
    free_list(queue_take(&h->inbox));
    free_list(queue_take(&h->outbox));
    if (h->multi)
        curl_multi_cleanup(h->multi);
    pthread_mutex_destroy(&h->lock);
    free(h->ca_file);
    free(h);
    curl_global_cleanup();
}

struct rtm_http *rtm_http_start(const struct rtm_http_options *opts, char *err, size_t err_len)
{
    struct rtm_http *h = calloc(1, sizeof(*h));
    if (!h || pthread_mutex_init(&h->lock, NULL) != 0) {
        free(h);
        snprintf(err, err_len, "out of memory starting the HTTP worker");
        return NULL;
    }
    /* Here, on the broker thread, before any curl handle exists: libcurl's
     * global state must not be set up lazily from the worker thread. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        pthread_mutex_destroy(&h->lock);
        free(h);
        snprintf(err, err_len, "could not initialise libcurl");
        return NULL;
    }
    h->opts = *opts;
    queue_init(&h->inbox);
    queue_init(&h->outbox);
    h->ca_file = opts->ca_file ? strdup(opts->ca_file) : NULL;
    h->multi = curl_multi_init();
    if (!h->multi || (opts->ca_file && !h->ca_file)) {
        snprintf(err, err_len, "could not initialise libcurl");
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
    pthread_mutex_lock(&http->lock);
    queue_push(&http->inbox, job);
    pthread_mutex_unlock(&http->lock);
    curl_multi_wakeup(http->multi);
    http->pending++;
    http->submitted++;
    return 0;
}

size_t rtm_http_drain(struct rtm_http *http, rtm_http_result_fn fn, void *ud)
{
    pthread_mutex_lock(&http->lock);
    struct job *done = queue_take(&http->outbox);
    pthread_mutex_unlock(&http->lock);
    size_t n = 0;
    while (done) {
        struct job *next = done->next;
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
        done = next;
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
    pthread_mutex_lock(&http->lock);
    http->stopping = true;
    pthread_mutex_unlock(&http->lock);
    curl_multi_wakeup(http->multi);
    pthread_join(http->thread, NULL);
    http_free(http);
}
