/*
 * The HTTP worker: one thread running libcurl's multi interface, so that no
 * HTTP request, DNS lookup or TLS handshake ever runs on the broker's
 * thread. The broker thread submits requests (never blocking: a full queue
 * refuses at once) and drains finished results on its TICK. At most
 * RTM_HTTP_CONNECTIONS requests are in flight, on keep-alive connections
 * that later requests reuse; the others wait their turn in submission
 * order. The worker runs at the lowest CPU priority (SCHED_IDLE), below
 * the broker thread.
 *
 * Threading contract: every function here is called from one thread (the
 * broker's); the worker thread touches only the two lock-free hand-off
 * stacks, so neither thread ever waits for the other.
 */
#ifndef RTM_HTTP_H
#define RTM_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtm_push.h"

#define RTM_HTTP_BODY_MAX (64 * 1024) /* response bytes kept; the rest is dropped */
/* Requests in flight at once, hence connections to the provider. JPush
 * answers in tens to hundreds of milliseconds, so 16 keep-alive connections
 * carry far more pushes per second than its API quota allows. */
#define RTM_HTTP_CONNECTIONS 16

struct rtm_http_options {
    size_t queue_max; /* requests waiting or in flight; more are refused */
    long timeout_ms;  /* whole request, DNS and TLS included (not the wait for a connection) */
    long connect_timeout_ms;
    const char *ca_file; /* extra CA bundle (tests' private CA), or NULL */
};

/* One finished request, valid only during the drain callback. */
struct rtm_http_result {
    uint64_t tag; /* what the submitter passed */
    long status;  /* HTTP status, or 0 when no response came (see error) */
    const char *body;
    size_t body_len;
    const char *retry_after;      /* header value or NULL */
    const char *rate_limit_reset; /* header value or NULL */
    const char *error;            /* libcurl's explanation when status is 0, else "" */
    int64_t elapsed_ms;
};

struct rtm_http_stats {
    size_t pending; /* submitted, not yet drained */
    uint64_t submitted;
    uint64_t refused;   /* queue full */
    uint64_t completed; /* drained */
};

struct rtm_http;

/* Starts the worker thread. Returns NULL with `err` filled on failure. */
struct rtm_http *rtm_http_start(const struct rtm_http_options *opts, char *err, size_t err_len);

/* Queues `req` for sending; on success the worker owns it (and frees it).
 * Returns -1 without touching `req` when the queue is full or stopping. */
int rtm_http_submit(struct rtm_http *http, uint64_t tag, struct rtm_push_request *req);

typedef void (*rtm_http_result_fn)(void *ud, const struct rtm_http_result *result);

/* Hands up to `max` finished results to `fn`, oldest first; the rest wait
 * for the next call. Returns how many it handed over. */
size_t rtm_http_drain(struct rtm_http *http, size_t max, rtm_http_result_fn fn, void *ud);

void rtm_http_stats(struct rtm_http *http, struct rtm_http_stats *out);

/* Abandons queued and in-flight requests, joins the thread, frees all. */
void rtm_http_stop(struct rtm_http *http);

/* Checks, once at start-up (it touches the file system), that libcurl's
 * default CA bundle can be read: without it every HTTPS request fails its
 * certificate check (curl error 77), on a minimal Debian without the
 * ca-certificates package for one. Returns false and fills `why` with a log
 * line naming the path when it cannot; true when it can, or when libcurl
 * does not say which bundle it uses. */
bool rtm_http_default_ca_ok(char *why, size_t why_len);

/* The same check on given paths (NULL: not configured): `cainfo` must be a
 * readable file, else `capath` a readable directory. For tests. */
bool rtm_http_ca_ok(const char *cainfo, const char *capath, char *why, size_t why_len);

#endif
