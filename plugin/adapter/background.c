/*
 * Background services (see rtm_background.h). Everything here runs on the
 * broker thread except inside rtm_http and rtm_loader, which own their
 * threads and talk back only through their queues.
 *
 * Push dispatch follows the HTTP worker: while it holds DISPATCH_AHEAD
 * requests (all its connections busy, as many again ready), the core's
 * pushes wait here, copied, and are handed to the pusher on the TICKs that
 * drain results. A burst of invitations then costs the broker thread only a
 * copy each; building the requests (device lookup, JSON) is spread over the
 * burst's HTTP round trips instead of landing on the broker thread in the
 * same few milliseconds as the invitations. The worker still has a request
 * ready for every connection that frees up, so pushes go out as fast as
 * before (an idle broker TICKs at least every 100 ms in Mosquitto 2.0).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtm_http.h"
#include "rtm_list.h"
#include "rtm_loader.h"
#include "rtm_pusher.h"
#include "rtm_registry.h"
#include "rtm_background.h"

#define CONNECT_TIMEOUT_MAX_MS 5000
#define DISPATCH_AHEAD         (2 * RTM_HTTP_CONNECTIONS)
/* When TICKs come less than BUSY_TICK_MS apart, the loop is busy with
 * traffic: each TICK then takes at most TICK_BATCH answers and builds at
 * most TICK_BATCH requests, so the answers to a round of 16 requests, which
 * arrive together, do not hold the loop for a millisecond at once (measured:
 * up to 850 us TICKs). An idle broker TICKs only every 100 ms and takes
 * everything. */
#define BUSY_TICK_MS 2
#define TICK_BATCH   2

/* The registry read-back, for the log and the stats. With
 * registry_listener none there is nothing to read: ready at once. */
enum registry_state { REGISTRY_LOADING, REGISTRY_READY, REGISTRY_FAILED };
static const char *const registry_names[] = {"loading", "ready", "failed"};

/* A push of the core's, waiting for the HTTP worker. */
struct deferred {
    struct rtm_list link; /* in rtm_background.deferred */
    struct rtm_push_copy push;
};

struct rtm_background {
    const struct rtm_config *cfg;
    struct rtm_core *core;
    const struct rtm_sink *sink;
    struct rtm_push_settings settings;
    struct rtm_push_options options; /* plugin_opt_jpush_options, read once */
    struct rtm_pusher *pusher;
    struct rtm_http *http;     /* NULL: dry run */
    struct rtm_loader *loader; /* until the registry is read back */
    enum registry_state registry;
    unsigned registry_failures; /* rounds the loader failed, as logged */
    bool ticked;                /* the broker's loop runs */
    struct rtm_list deferred;   /* oldest first */
    size_t ndeferred;
    int64_t now_ms;  /* of the TICK being handled, for results */
    int64_t last_ms; /* of the TICK before */
    char loader_filter[RTM_PREFIX_MAX + 32];
};

static void slog(struct rtm_background *s, enum rtm_log_level level, const char *line)
{
    s->sink->log(s->sink->ud, level, line);
}

static int submit(void *ud, uint64_t tag, struct rtm_push_request *req)
{
    struct rtm_background *s = ud;
    return rtm_http_submit(s->http, tag, req);
}

static bool call_pending(void *ud, const char *caller, const char *call_id)
{
    struct rtm_background *s = ud;
    return rtm_core_call_pending(s->core, caller, call_id);
}

static void on_result(void *ud, const struct rtm_http_result *r)
{
    struct rtm_background *s = ud;
    struct rtm_push_response resp = {
        .status = r->status,
        .body = r->body,
        .body_len = r->body_len,
        .retry_after = r->retry_after,
        .rate_limit_reset = r->rate_limit_reset,
        .error = r->error,
    };
    rtm_pusher_result(s->pusher, r->tag, &resp, s->now_ms);
}

/* --- push dispatch ------------------------------------------------------- */

static size_t http_pending(struct rtm_background *s)
{
    struct rtm_http_stats st;
    rtm_http_stats(s->http, &st);
    return st.pending;
}

/* The core's push hook: straight to the pusher unless the worker is full
 * (or nothing is sent: dry run). While pushes wait, push_queue_max bounds
 * them and the worker's requests together; one that cannot be copied goes
 * straight, and the pusher reports it as it always did. */
static void on_push(void *ud, const struct rtm_push *push)
{
    struct rtm_background *s = ud;
    size_t pending = s->http ? http_pending(s) : 0;
    bool wait = s->http && (s->ndeferred || pending >= DISPATCH_AHEAD);
    if (wait && pending + s->ndeferred >= s->cfg->push_queue_max) {
        rtm_pusher_drop(s->pusher, push);
        return;
    }
    struct deferred *d = wait ? calloc(1, sizeof(*d)) : NULL;
    if (!d) {
        rtm_pusher_on_push(s->pusher, push);
        return;
    }
    rtm_push_copy_set(&d->push, push);
    rtm_list_add_tail(&s->deferred, &d->link);
    s->ndeferred++;
}

/* Hands waiting pushes to the pusher, oldest first, while the worker has
 * room; their time_to_live counts from now. An invitation that ended while
 * its push waited is not pushed (nor, then, is its call_cancel). */
static void dispatch_deferred(struct rtm_background *s, int64_t now_ms, size_t max)
{
    for (size_t n = 0; n < max && s->ndeferred && http_pending(s) < DISPATCH_AHEAD; n++) {
        struct deferred *d = rtm_container_of(s->deferred.next, struct deferred, link);
        rtm_list_remove(&d->link);
        s->ndeferred--;
        if (d->push.kind == RTM_PUSH_CALL_INVITE &&
            !rtm_core_call_pending(s->core, d->push.caller, d->push.call_id)) {
            char line[256];
            snprintf(line, sizeof(line),
                     "rtm: push call_invite %s to %s: the call ended before it was sent; dropped",
                     d->push.call_id, d->push.callee);
            slog(s, RTM_LOG_INFO, line);
            free(d);
            continue;
        }
        struct rtm_push push = rtm_push_copy_view(&d->push, now_ms);
        rtm_pusher_on_push(s->pusher, &push);
        free(d);
    }
}

static void free_deferred(struct rtm_background *s)
{
    while (s->ndeferred) {
        struct deferred *d = rtm_container_of(s->deferred.next, struct deferred, link);
        rtm_list_remove(&d->link);
        s->ndeferred--;
        free(d);
    }
}

void rtm_background_stats(const struct rtm_background *s, struct rtm_stats *out)
{
    struct rtm_pusher_stats ps = {0};
    if (s->pusher)
        rtm_pusher_stats(s->pusher, &ps);
    out->push_jobs = ps.jobs + ps.held + s->ndeferred;
    out->push_calls = ps.calls;
    out->registry = registry_names[s->registry];
    out->registry_failures = s->registry_failures;
}

static int start_push(struct rtm_background *s, char *err, size_t err_len)
{
    const struct rtm_config *cfg = s->cfg;
    s->settings = (struct rtm_push_settings){
        .endpoint = cfg->jpush_endpoint,
        .app_key = cfg->jpush_app_key,
        .master_secret = cfg->jpush_master_secret,
        .title = cfg->push_title,
        .alert = cfg->push_alert,
        .apns_production = cfg->apns_production,
    };
    if (cfg->jpush_options[0]) {
        if (rtm_push_options_prepare(cfg->jpush_options, &s->options) != 0) {
            snprintf(err, err_len, "out of memory reading plugin_opt_jpush_options");
            return -1;
        }
        s->settings.extra_options = &s->options;
    }
    bool dry_run = cfg->jpush_app_key[0] == '\0';
    if (!dry_run) {
        long timeout = (long)cfg->push_timeout_ms;
        struct rtm_http_options opts = {
            .queue_max = cfg->push_queue_max,
            .timeout_ms = timeout,
            .connect_timeout_ms =
                timeout < CONNECT_TIMEOUT_MAX_MS ? timeout : CONNECT_TIMEOUT_MAX_MS,
            .ca_file = cfg->jpush_ca_file[0] ? cfg->jpush_ca_file : NULL,
        };
        if (!(s->http = rtm_http_start(&opts, err, err_len)))
            return -1;
        char why[320];
        if (!opts.ca_file && !rtm_http_default_ca_ok(why, sizeof(why)))
            slog(s, RTM_LOG_WARNING, why);
    }
    struct rtm_pusher_env env = {
        .cfg = cfg,
        .sink = s->sink,
        .registry = rtm_core_registry(s->core),
        .provider = &rtm_push_jpush,
        .settings = &s->settings,
        .submit = dry_run ? NULL : submit,
        .call_pending = call_pending,
        .ud = s,
        .seed = (uint64_t)(uintptr_t)s,
        .registry_loading = strcmp(cfg->registry_listener, "none") != 0,
        .hash_key = *rtm_core_hash_key(s->core),
    };
    if (!(s->pusher = rtm_pusher_new(&env))) {
        snprintf(err, err_len, "out of memory starting the push dispatcher");
        return -1;
    }
    rtm_core_set_push(s->core, on_push, s);
    slog(s, RTM_LOG_INFO,
         dry_run ? "rtm: push: dry run (no plugin_opt_jpush_app_key): pushes are logged, not sent"
                 : "rtm: push: JPush enabled");
    return 0;
}

static int start_loader(struct rtm_background *s, char *err, size_t err_len)
{
    if (strcmp(s->cfg->registry_listener, "none") == 0) {
        slog(s, RTM_LOG_INFO,
             "rtm: registry_listener none: stored registrations are not read back");
        s->registry = REGISTRY_READY;
        return 0;
    }
    /* Four levels under the prefix: {prefix}/u/{uid}/devices/{device},
     * {prefix}/u/{uid}/attr/{key} and {prefix}/c/{ch}/attr/{key} are what
     * the plugin stores there (messages, also four levels deep, are never
     * retained). */
    snprintf(s->loader_filter, sizeof(s->loader_filter), "%s/+/+/+/+", s->cfg->topic_prefix);
    s->loader = rtm_loader_start(s->cfg->registry_listener, s->loader_filter, err, err_len);
    s->registry = REGISTRY_LOADING;
    return s->loader ? 0 : -1;
}

struct rtm_background *rtm_background_start(const struct rtm_config *cfg, struct rtm_core *core,
                                            const struct rtm_sink *sink, char *err, size_t err_len)
{
    struct rtm_background *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    s->core = core;
    s->sink = sink;
    rtm_list_init(&s->deferred);
    if (start_push(s, err, err_len) != 0 || start_loader(s, err, err_len) != 0) {
        rtm_background_stop(s);
        return NULL;
    }
    return s;
}

/* Each failed round is one error line; success releases the waiting
 * pushes (rtm_pusher_registry_ready). */
static void poll_loader(struct rtm_background *s, int64_t now_ms)
{
    struct rtm_loader_status st;
    char line[2048];
    rtm_loader_poll(s->loader, &st);
    if (st.failures > s->registry_failures) {
        s->registry_failures = st.failures;
        s->registry = REGISTRY_FAILED;
        snprintf(line, sizeof(line),
                 "rtm: device registry NOT read back (plugin_opt_registry_listener %s, attempt "
                 "%u): %s; pushes wait for it; retrying in %lld s",
                 s->cfg->registry_listener, st.failures, st.error, (long long)(st.retry_ms / 1000));
        slog(s, RTM_LOG_ERR, line);
    }
    if (st.state != RTM_LOADER_DONE)
        return;
    struct rtm_core_stats cs;
    rtm_core_stats(s->core, &cs);
    snprintf(line, sizeof(line),
             "rtm: device registry read back from the retained store: %zu device(s), %zu "
             "attribute(s), through %s%s%s%s",
             rtm_registry_count(rtm_core_registry(s->core)), cs.attributes, st.via,
             st.skipped[0] ? " (tried first: " : "", st.skipped, st.skipped[0] ? ")" : "");
    slog(s, RTM_LOG_INFO, line);
    rtm_loader_stop(s->loader);
    s->loader = NULL;
    s->registry = REGISTRY_READY;
    rtm_pusher_registry_ready(s->pusher, now_ms);
}

void rtm_background_tick(struct rtm_background *s, int64_t now_ms)
{
    s->now_ms = now_ms;
    if (s->http) {
        size_t max = now_ms - s->last_ms < BUSY_TICK_MS ? TICK_BATCH : SIZE_MAX;
        rtm_http_drain(s->http, max, on_result, s);
        dispatch_deferred(s, now_ms, max);
    }
    s->last_ms = now_ms;
    rtm_pusher_tick(s->pusher, now_ms);
    if (s->loader && !s->ticked)
        rtm_loader_go(s->loader); /* the broker opens its listeners before its loop */
    s->ticked = true;
    if (s->loader)
        poll_loader(s, now_ms);
}

bool rtm_background_is_loader(const struct rtm_background *s, const char *client_id,
                              const char *password)
{
    return s->loader && rtm_loader_login(s->loader, client_id, password);
}

const char *rtm_background_loader_filter(const struct rtm_background *s)
{
    return s->loader_filter;
}

void rtm_background_stop(struct rtm_background *s)
{
    if (!s)
        return;
    rtm_loader_stop(s->loader);
    rtm_http_stop(s->http);
    if (s->core)
        rtm_core_set_push(s->core, NULL, NULL);
    free_deferred(s);
    rtm_pusher_free(s->pusher);
    rtm_push_options_free(&s->options);
    free(s);
}
