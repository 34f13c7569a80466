/*
 * The Mosquitto adapter: the only file that calls the broker. It parses the
 * options, registers one table of callbacks, turns each broker event into a
 * core call with the current time, and carries out what the core emits
 * (publish, log). Everything it owns hangs off one struct rtm_plugin, the
 * userdata of every callback.
 */
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "rtm_conns.h"
#include "rtm_core.h"
#include "rtm_guard.h"
#include "rtm_background.h"
#include "rtm_topic.h"
#include "rtm_waker.h"

#define RTM_EXPORT __attribute__((visibility("default")))

/* Without a TICK for this long (per_listener_settings true in 2.0.11 never
 * sends one), other events run the tick work themselves. */
#define TICK_STALL_MS 1000
/* Mosquitto 2.0's loop turns at least every 100 ms, so TICK comes that
 * often; on 2.1 the waker keeps it so (rtm_waker.h). */
#define TICK_EVERY_MS 100

/* Events of Mosquitto 2.1 that 2.0's headers do not name; 2.0 refuses to
 * register them (MOSQ_ERR_NOT_SUPPORTED), and the plugin then does without. */
#ifndef MOSQ_EVT_CONNECT
#define MOSQ_EVT_CONNECT 11
#endif
#ifndef MOSQ_EVT_CLIENT_OFFLINE
#define MOSQ_EVT_CLIENT_OFFLINE 28
#endif

/* 2.1's CONNECT event data, which begins like every client event's. */
struct evt_connect {
    void *future;
    struct mosquitto *client;
};

/* 2.1's CLIENT_OFFLINE event data is 2.0's DISCONNECT data, field for field. */

struct rtm_plugin {
    mosquitto_plugin_id_t *id;
    struct rtm_config cfg;
    struct rtm_sink sink;
    struct rtm_core *core;
    struct rtm_background *background;
    struct rtm_conns *conns; /* client ids, and messages for one connection until TICK */
    struct rtm_guard guard;  /* tells Wills from PUBLISHes under the prefix */
    const struct mosquitto *loader_client; /* the registry loader, while connected */
    uint32_t registered;                   /* bit i: callbacks[i] is registered */
    bool has_connect;                      /* the broker sends CONNECT (2.1) */
    struct rtm_waker *waker;               /* 2.1 only: keeps its loop turning */
    int64_t epoch_offset_ns;               /* wall clock minus monotonic clock, at load */
    int64_t last_tick_ms;
    int64_t next_stats_ms;
    bool stall_reported;
    /* From a RELOAD event to the next tick: the BASIC_AUTH events between
     * are Mosquitto asking again about clients it already holds. */
    bool reloading;
    /* TICK durations since the last stats report. */
    uint64_t ticks;
    uint64_t tick_total_ns;
    uint64_t tick_max_ns;
};

/* AddressSanitizer's allocator keeps its own books; glibc's mallinfo2()
 * cannot see them. Weak, so that the plain build needs no sanitizer. */
extern size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Epoch milliseconds that never jump: wall time at load, advanced by the
 * monotonic clock. The offset is kept in nanoseconds, so that the result is
 * the wall clock's own millisecond, not one behind it by rounding. */
static int64_t now_ms(const struct rtm_plugin *p)
{
    return (p->epoch_offset_ns + clock_ns(CLOCK_MONOTONIC)) / 1000000;
}

static void publish_now(const char *client_id, const struct rtm_publish *m)
{
    int rc = mosquitto_broker_publish_copy(client_id, m->topic, (int)m->payload_len, m->payload,
                                           m->qos, m->retain, NULL);
    if (rc != MOSQ_ERR_SUCCESS)
        mosquitto_log_printf(MOSQ_LOG_WARNING, "rtm: could not publish to %s (error %d)", m->topic,
                             rc);
}

static void publish_held(void *ud, const char *client_id, const struct rtm_publish *m)
{
    (void)ud;
    publish_now(client_id, m);
}

/* A message for every subscriber goes to the broker at once; one for a
 * single connection waits for the TICK, so that it cannot reach a newer
 * connection that takes the client id over before the broker delivers it
 * (rtm_conns.h). */
static void sink_publish(void *ud, const struct rtm_publish *m)
{
    struct rtm_plugin *p = ud;
    if (!m->handle) {
        publish_now(NULL, m);
        return;
    }
    /* The core only names a live client (rtm_publish), so the handle may be
     * followed here, and only here. */
    const char *client_id = mosquitto_client_id(m->handle);
    if (!client_id) {
        /* A refused connection's id is already gone: NULL would send the
         * message to every subscriber of the topic. */
        mosquitto_log_printf(MOSQ_LOG_DEBUG, "rtm: dropped a message to %s: its client has no id",
                             m->topic);
        return;
    }
    if (rtm_conns_post(p->conns, client_id, m) != 0)
        mosquitto_log_printf(MOSQ_LOG_ERR, "rtm: out of memory; dropped a message to %s", m->topic);
}

static void sink_log(void *ud, enum rtm_log_level level, const char *line)
{
    static const int levels[] = {
        [RTM_LOG_DEBUG] = MOSQ_LOG_DEBUG,   [RTM_LOG_INFO] = MOSQ_LOG_INFO,
        [RTM_LOG_NOTICE] = MOSQ_LOG_NOTICE, [RTM_LOG_WARNING] = MOSQ_LOG_WARNING,
        [RTM_LOG_ERR] = MOSQ_LOG_ERR,
    };
    (void)ud;
    mosquitto_log_printf(levels[level], "%s", line);
}

static struct rtm_client client_of(const struct rtm_plugin *p, struct mosquitto *client)
{
    struct rtm_client c = {
        .handle = client,
        .uid = rtm_identity_uid(&p->cfg, mosquitto_client_username(client),
                                mosquitto_client_id(client)),
        .client_id = mosquitto_client_id(client),
    };
    return c;
}

/* Resident memory of the broker process: one short read, cheap enough for
 * every report. 0 when /proc cannot be read. */
static size_t resident_bytes(void)
{
    unsigned long long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    int got = fscanf(f, "%llu %llu", &pages, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return got == 2 && page > 0 ? (size_t)(resident * (unsigned long long)page) : 0;
}

/* Heap in use by the whole broker process, the plugin's threads included.
 * mallinfo2() walks every free chunk (and merges the fast bins) on this
 * thread, so only plugin_opt_stats_heap asks for it. */
static size_t heap_in_use(void)
{
    if (__sanitizer_get_current_allocated_bytes)
        return __sanitizer_get_current_allocated_bytes();
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* Every stats_interval: one log line, and the retained $SYS message. */
static void report_stats(struct rtm_plugin *p, int64_t now)
{
    if (p->cfg.stats_interval_s == 0 || now < p->next_stats_ms)
        return;
    p->next_stats_ms = now + (int64_t)p->cfg.stats_interval_s * 1000;
    struct rtm_stats st = {
        .rss_bytes = resident_bytes(),
        .has_heap = p->cfg.stats_heap,
        .heap_bytes = p->cfg.stats_heap ? heap_in_use() : 0,
        .ticks = p->ticks,
        .tick_avg_us = p->ticks ? p->tick_total_ns / p->ticks / 1000 : 0,
        .tick_max_us = p->tick_max_ns / 1000,
    };
    p->ticks = p->tick_total_ns = p->tick_max_ns = 0;
    rtm_core_stats(p->core, &st.core);
    rtm_core_timer_report(p->core, &st.timers);
    rtm_background_stats(p->background, &st);
    char line[640];
    rtm_stats_line(&st, line, sizeof(line));
    mosquitto_log_printf(MOSQ_LOG_INFO, "%s", line);
    size_t len = 0;
    char *json = rtm_stats_json(&st, now, &len);
    if (json && len > 0)
        sink_publish(p, &(struct rtm_publish){NULL, RTM_STATS_TOPIC, json, len, 0, true});
    free(json);
}

static void tick(struct rtm_plugin *p, int64_t now)
{
    int64_t start = clock_ns(CLOCK_MONOTONIC);
    p->last_tick_ms = now;
    p->reloading = false;
    rtm_core_tick(p->core, now);
    rtm_background_tick(p->background, now);
    size_t dropped = rtm_conns_flush(p->conns, publish_held, p);
    if (dropped > 0)
        mosquitto_log_printf(MOSQ_LOG_INFO,
                             "rtm: dropped %zu message(s) for connections taken over before "
                             "delivery",
                             dropped);
    uint64_t took = (uint64_t)(clock_ns(CLOCK_MONOTONIC) - start);
    p->ticks++;
    p->tick_total_ns += took;
    if (took > p->tick_max_ns)
        p->tick_max_ns = took;
    report_stats(p, now);
}

/* Runs the tick work from another event when the broker stopped ticking. */
static int64_t event_now(struct rtm_plugin *p)
{
    int64_t now = now_ms(p);
    if (now - p->last_tick_ms > TICK_STALL_MS) {
        if (!p->stall_reported)
            mosquitto_log_printf(MOSQ_LOG_WARNING,
                                 "rtm: no TICK event for %d ms%s; timers now run only when "
                                 "clients are active",
                                 TICK_STALL_MS,
                                 p->has_connect ? ""
                                                : " (is per_listener_settings true? Mosquitto "
                                                  "2.0 sends no TICK then)");
        p->stall_reported = true;
        tick(p, now);
    }
    return now;
}

/* The connection holds its client id from now on (rtm_conns.h). */
static void note_login(struct rtm_plugin *p, const struct rtm_client *c)
{
    if (rtm_conns_login(p->conns, c->handle, c->client_id) != 0)
        mosquitto_log_printf(MOSQ_LOG_ERR, "rtm: out of memory noting the connection of %s",
                             c->client_id);
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
    struct rtm_plugin *p = userdata;
    struct mosquitto_evt_basic_auth *ed = event_data;
    (void)event;
    rtm_guard_event(&p->guard);
    if (rtm_background_is_loader(p->background, mosquitto_client_id(ed->client), ed->password)) {
        p->loader_client = ed->client;
        return MOSQ_ERR_SUCCESS;
    }
    struct rtm_client c = client_of(p, ed->client);
    /* Asked again (a reload): decided without starting or ending a session.
     * A websocket client that connects later in the same loop pass is also
     * checked in full, but not tracked for presence. */
    bool again = p->reloading || rtm_core_has_session(p->core, ed->client);
    int64_t now = event_now(p);
    enum rtm_login_verdict verdict = again ? rtm_core_reauthenticate(p->core, &c, ed->password, now)
                                           : rtm_core_authenticate(p->core, &c, ed->password, now);
    if (verdict == RTM_LOGIN_REFUSE)
        return MOSQ_ERR_AUTH;
    if (!again) {
        note_login(p, &c);
        rtm_core_connect(p->core, &c, now);
    }
    return verdict == RTM_LOGIN_ACCEPT ? MOSQ_ERR_SUCCESS : MOSQ_ERR_PLUGIN_DEFER;
}

/* A configuration reload: Mosquitto re-runs BASIC_AUTH for every client it
 * holds right after this event, in the same loop iteration, before TICK.
 * Mosquitto 2.0 passes the event on to the plugins loaded after this one
 * only when it answers DEFER; 2.1 always does, and stops the broker on any
 * answer but SUCCESS. */
static int on_reload(int event, void *event_data, void *userdata)
{
    struct rtm_plugin *p = userdata;
    (void)event;
    (void)event_data;
    p->reloading = true;
    return p->has_connect ? MOSQ_ERR_SUCCESS : MOSQ_ERR_PLUGIN_DEFER;
}

static int on_disconnect(int event, void *event_data, void *userdata)
{
    struct rtm_plugin *p = userdata;
    struct mosquitto_evt_disconnect *ed = event_data;
    (void)event;
    rtm_guard_disconnect(&p->guard, ed->client);
    rtm_conns_logout(p->conns, ed->client);
    if (ed->client == p->loader_client) {
        p->loader_client = NULL;
        return MOSQ_ERR_SUCCESS;
    }
    rtm_core_disconnect(p->core, ed->client, event_now(p));
    return MOSQ_ERR_SUCCESS;
}

/* On every pass of the broker's loop: 2.0 always calls it, and 2.1 does
 * while the plugin leaves the event's next_s and next_ms at 0. */
static int on_tick(int event, void *event_data, void *userdata)
{
    struct rtm_plugin *p = userdata;
    (void)event;
    (void)event_data;
    rtm_guard_event(&p->guard);
    tick(p, now_ms(p));
    return MOSQ_ERR_SUCCESS;
}

/* Mosquitto 2.1: the broker accepted a connection, after every
 * authentication source, TLS certificate and extended auth included. */
static int on_connect(int event, void *event_data, void *userdata)
{
    struct rtm_plugin *p = userdata;
    struct evt_connect *ed = event_data;
    (void)event;
    rtm_guard_event(&p->guard);
    if (ed->client == p->loader_client)
        return MOSQ_ERR_SUCCESS;
    struct rtm_client c = client_of(p, ed->client);
    note_login(p, &c);
    rtm_core_connected(p->core, &c, event_now(p));
    return MOSQ_ERR_SUCCESS;
}

static enum rtm_access access_of(int access)
{
    switch (access) {
    case MOSQ_ACL_WRITE:
        return RTM_ACCESS_WRITE;
    case MOSQ_ACL_SUBSCRIBE:
        return RTM_ACCESS_SUBSCRIBE;
    case MOSQ_ACL_UNSUBSCRIBE:
        return RTM_ACCESS_UNSUBSCRIBE;
    default:
        return RTM_ACCESS_READ;
    }
}

/* A retained message the broker would deliver to the registry loader goes
 * to the core instead, by its topic's kind: a registration (or what sits on
 * a malformed device topic, which is logged) or an attribute. Nothing else
 * its filter matches is ever stored by the plugin, and the READ checks of
 * ordinary subscribers deal with it. */
static void load_retained(struct rtm_plugin *p, const struct mosquitto_evt_acl_check *ed)
{
    struct rtm_topic t;
    switch (rtm_topic_parse(p->cfg.topic_prefix, p->cfg.prefix_len, ed->topic, &t)) {
    case RTM_TOPIC_USER_ATTR:
    case RTM_TOPIC_CH_ATTR:
        rtm_core_load_attr(p->core, ed->topic, ed->payload, ed->payloadlen);
        break;
    default:
        if (t.device)
            rtm_core_load_device(p->core, ed->topic, ed->payload, ed->payloadlen);
        break;
    }
}

/* The registry loader may make one subscription; every retained message
 * the broker would deliver to it is read back instead. */
static int loader_acl(struct rtm_plugin *p, const struct mosquitto_evt_acl_check *ed)
{
    if (ed->access == MOSQ_ACL_SUBSCRIBE &&
        strcmp(ed->topic, rtm_background_loader_filter(p->background)) == 0)
        return MOSQ_ERR_SUCCESS;
    if (ed->access == MOSQ_ACL_READ && rtm_core_owns_topic(p->core, ed->topic))
        load_retained(p, ed);
    return MOSQ_ERR_ACL_DENIED;
}

/* A Will under the prefix found after it was queued (rtm_guard.h): its
 * deliveries are refused as they come, and a retained one is erased. */
static void on_late_will(void *ud, const struct rtm_guard_will *will)
{
    (void)ud;
    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         "rtm: refused the Will of client %s to %s: a Will cannot carry rtm "
                         "messages (found after the broker queued it%s)",
                         will->client_id, will->topic, will->retain ? "; erased" : "");
    if (will->retain)
        publish_now(NULL, &(struct rtm_publish){NULL, will->topic, "", 0, 1, true});
}

/* A WRITE check under the prefix: a Will is refused before the broker
 * queues it; a PUBLISH is decided by the core and then awaits its MESSAGE. */
static int check_write(struct rtm_plugin *p, const struct mosquitto_evt_acl_check *ed,
                       const struct rtm_client *c)
{
    bool superseded = rtm_conns_superseded(p->conns, ed->client, c->client_id);
    enum rtm_guard_write kind =
        rtm_guard_write(&p->guard, ed->client, superseded, ed->topic, ed->payload);
    if (kind == RTM_GUARD_WILL) {
        mosquitto_log_printf(MOSQ_LOG_NOTICE,
                             "rtm: refused the Will of client %s to %s: a Will cannot carry rtm "
                             "messages",
                             c->client_id ? c->client_id : "", ed->topic);
        return MOSQ_ERR_ACL_DENIED;
    }
    enum rtm_acl verdict = rtm_core_acl(p->core, c, RTM_ACCESS_WRITE, ed->topic, ed->payload,
                                        ed->payloadlen, ed->retain, event_now(p));
    if (verdict == RTM_ACL_ALLOW && kind == RTM_GUARD_PUBLISH)
        rtm_guard_allowed(&p->guard, ed->client, c->client_id, ed->topic, ed->payloadlen,
                          ed->retain);
    return verdict == RTM_ACL_ALLOW ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
}

/* The hottest path of the plugin: every publish and every delivery. Topics
 * outside the prefix cost one prefix comparison. */
static int on_acl_check(int event, void *event_data, void *userdata)
{
    struct rtm_plugin *p = userdata;
    struct mosquitto_evt_acl_check *ed = event_data;
    (void)event;
    if (ed->client == p->loader_client)
        return loader_acl(p, ed);
    if (!rtm_core_owns_topic(p->core, ed->topic)) {
        if (rtm_guard_busy(&p->guard))
            rtm_guard_event(&p->guard);
        return p->cfg.other_topics == RTM_OTHER_ALLOW ? MOSQ_ERR_SUCCESS : MOSQ_ERR_PLUGIN_DEFER;
    }
    struct rtm_client c = client_of(p, ed->client);
    if (ed->access == MOSQ_ACL_WRITE)
        return check_write(p, ed, &c);
    if (ed->access == MOSQ_ACL_READ) {
        if (!rtm_guard_read(&p->guard, ed->topic, ed->payload, ed->payloadlen))
            return MOSQ_ERR_ACL_DENIED;
    } else {
        rtm_guard_event(&p->guard);
    }
    switch (rtm_core_acl(p->core, &c, access_of(ed->access), ed->topic, ed->payload, ed->payloadlen,
                         ed->retain, event_now(p))) {
    case RTM_ACL_ALLOW:
        return MOSQ_ERR_SUCCESS;
    case RTM_ACL_DEFER:
        return MOSQ_ERR_PLUGIN_DEFER;
    default:
        return MOSQ_ERR_ACL_DENIED;
    }
}

/* Hands the stamped payload to the broker in place of the client's. */
static int replace_payload(struct mosquitto_evt_message *ed, struct rtm_message_result *res)
{
    char *buf = mosquitto_malloc(res->payload_len + 1);
    if (!buf) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "rtm: out of memory; dropped message to %s", ed->topic);
        free(res->payload);
        return MOSQ_ERR_ACL_DENIED; /* any other error would disconnect the client */
    }
    memcpy(buf, res->payload, res->payload_len);
    buf[res->payload_len] = '\0';
    free(res->payload);
    ed->payload = buf; /* the broker frees the old payload */
    ed->payloadlen = (uint32_t)res->payload_len;
    return MOSQ_ERR_SUCCESS;
}

static int on_message(int event, void *event_data, void *userdata)
{
    struct rtm_plugin *p = userdata;
    struct mosquitto_evt_message *ed = event_data;
    (void)event;
    if (!rtm_core_owns_topic(p->core, ed->topic)) {
        if (rtm_guard_busy(&p->guard))
            rtm_guard_event(&p->guard);
        return MOSQ_ERR_SUCCESS;
    }
    rtm_guard_message(&p->guard, ed->client, ed->topic);
    struct rtm_client c = client_of(p, ed->client);
    struct rtm_message_result res = rtm_core_message(p->core, &c, ed->topic, ed->payload,
                                                     ed->payloadlen, ed->retain, event_now(p));
    switch (res.verdict) {
    case RTM_PASS:
        return MOSQ_ERR_SUCCESS;
    case RTM_REPLACE:
        return replace_payload(ed, &res);
    default:
        return MOSQ_ERR_ACL_DENIED;
    }
}

/* One table for registering and unregistering, so the two never drift.
 * The optional events exist in Mosquitto 2.1 only: CONNECT shows clients
 * that pass no BASIC_AUTH (TLS certificate, extended auth) online, and
 * 2.1 reports a persistent session's client going away as CLIENT_OFFLINE,
 * not DISCONNECT (which comes only when the session ends). */
static const struct {
    int event;
    MOSQ_FUNC_generic_callback fn;
    bool optional;
} callbacks[] = {
    {MOSQ_EVT_BASIC_AUTH, on_basic_auth, false}, {MOSQ_EVT_ACL_CHECK, on_acl_check, false},
    {MOSQ_EVT_MESSAGE, on_message, false},       {MOSQ_EVT_TICK, on_tick, false},
    {MOSQ_EVT_DISCONNECT, on_disconnect, false}, {MOSQ_EVT_RELOAD, on_reload, false},
    {MOSQ_EVT_CONNECT, on_connect, true},        {MOSQ_EVT_CLIENT_OFFLINE, on_disconnect, true},
};
#define CALLBACK_COUNT (sizeof(callbacks) / sizeof(callbacks[0]))
_Static_assert(CALLBACK_COUNT <= 32, "struct rtm_plugin.registered has 32 bits");

static void unregister_callbacks(struct rtm_plugin *p)
{
    for (size_t i = 0; i < CALLBACK_COUNT; i++) {
        if (p->registered & (1u << i))
            mosquitto_callback_unregister(p->id, callbacks[i].event, callbacks[i].fn, NULL);
    }
    p->registered = 0;
}

static int register_callbacks(struct rtm_plugin *p)
{
    for (size_t i = 0; i < CALLBACK_COUNT; i++) {
        int rc = mosquitto_callback_register(p->id, callbacks[i].event, callbacks[i].fn, NULL, p);
        if (rc == MOSQ_ERR_SUCCESS) {
            p->registered |= 1u << i;
        } else if (!callbacks[i].optional || rc != MOSQ_ERR_NOT_SUPPORTED) {
            mosquitto_log_printf(MOSQ_LOG_ERR,
                                 "rtm: not loaded: the broker refused the callback for event %d "
                                 "(error %d)",
                                 callbacks[i].event, rc);
            unregister_callbacks(p);
            return rc;
        }
    }
    return MOSQ_ERR_SUCCESS;
}

/* Which of the optional events the broker offers, for the start-up line. */
static bool registered_event(const struct rtm_plugin *p, int event)
{
    for (size_t i = 0; i < CALLBACK_COUNT; i++) {
        if (callbacks[i].event == event)
            return p->registered & (1u << i);
    }
    return false;
}

static int parse_options(struct rtm_config *cfg, struct mosquitto_opt *options, int count)
{
    struct rtm_option *opts = calloc(count > 0 ? (size_t)count : 1, sizeof(*opts));
    if (!opts)
        return MOSQ_ERR_NOMEM;
    for (int i = 0; i < count; i++) {
        opts[i].key = options[i].key;
        opts[i].value = options[i].value;
    }
    char err[256];
    rtm_config_defaults(cfg);
    int rc = rtm_config_parse(cfg, opts, (size_t)count, err, sizeof(err));
    free(opts);
    if (rc != 0) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "rtm: not loaded: %s", err);
        return MOSQ_ERR_INVAL;
    }
    return MOSQ_ERR_SUCCESS;
}

static const char *auth_name(enum rtm_auth_mode auth)
{
    switch (auth) {
    case RTM_AUTH_NONE:
        return "none";
    case RTM_AUTH_DEFER:
        return "defer";
    case RTM_AUTH_TOKEN:
        return "token";
    }
    return "?";
}

static void log_started(const struct rtm_plugin *p)
{
    const struct rtm_config *cfg = &p->cfg;
    mosquitto_log_printf(
        MOSQ_LOG_INFO, "rtm: mosquitto-rtm loaded: prefix %s/, auth %s, other topics %s; %s",
        cfg->topic_prefix, auth_name(cfg->auth),
        cfg->other_topics == RTM_OTHER_ALLOW ? "allow" : "defer",
        p->has_connect ? "the broker reports connections (CONNECT, CLIENT_OFFLINE: "
                         "Mosquitto 2.1 or later)"
                       : "connections seen at authentication (Mosquitto 2.0; needs "
                         "per_listener_settings false)");
    if (cfg->auth == RTM_AUTH_NONE && cfg->admin_count > 0)
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             "rtm: plugin_opt_admin_users is set with plugin_opt_auth none: any "
                             "client can connect as an admin uid; use token or defer");
    if (cfg->other_topics == RTM_OTHER_DEFER)
        mosquitto_log_printf(MOSQ_LOG_INFO,
                             "rtm: topics outside %s/ are left to other ACL sources; "
                             "without one the broker denies them",
                             cfg->topic_prefix);
}

/* The secret key of the hash tables, fresh at every load (rtm_hash.h). */
static bool draw_hash_key(struct rtm_hash_key *key)
{
    if (getrandom(key, sizeof(*key), 0) == (ssize_t)sizeof(*key))
        return true;
    mosquitto_log_printf(MOSQ_LOG_ERR, "rtm: not loaded: no random bytes for the hash key: %s",
                         strerror(errno));
    return false;
}

static void plugin_free(struct rtm_plugin *p)
{
    rtm_waker_stop(p->waker);
    rtm_background_stop(p->background);
    rtm_conns_free(p->conns);
    rtm_core_free(p->core);
    rtm_config_free(&p->cfg);
    free(p);
}

/* Mosquitto 2.1 only: its loop may otherwise sleep for seconds (rtm_waker.h).
 * Plugins are initialised on the thread that then runs the loop. */
static bool start_waker(struct rtm_plugin *p)
{
    char err[128];
    p->waker = rtm_waker_start(pthread_self(), TICK_EVERY_MS, err, sizeof(err));
    if (!p->waker) {
        mosquitto_log_printf(MOSQ_LOG_ERR,
                             "rtm: not loaded: cannot keep the broker's loop "
                             "turning for timers: %s",
                             err);
        return false;
    }
    mosquitto_log_printf(MOSQ_LOG_INFO,
                         "rtm: waking the broker's loop every %d ms with signal %d (Mosquitto 2.1 "
                         "sleeps until its next event otherwise)",
                         TICK_EVERY_MS, rtm_waker_signal(p->waker));
    return true;
}

RTM_EXPORT int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
    for (int i = 0; i < supported_version_count; i++) {
        if (supported_versions[i] == 5)
            return 5;
    }
    return -1;
}

RTM_EXPORT int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
                                     struct mosquitto_opt *options, int option_count)
{
    struct rtm_plugin *p = calloc(1, sizeof(*p));
    if (!p)
        return MOSQ_ERR_NOMEM;
    p->id = identifier;
    int rc = parse_options(&p->cfg, options, option_count);
    if (rc != MOSQ_ERR_SUCCESS) {
        free(p);
        return rc;
    }
    p->sink = (struct rtm_sink){.ud = p, .publish = sink_publish, .log = sink_log};
    /* The wall clock is read between two monotonic reads: their midpoint is
     * the best guess of the monotonic time the wall clock was read at. */
    int64_t before = clock_ns(CLOCK_MONOTONIC);
    int64_t wall = clock_ns(CLOCK_REALTIME);
    p->epoch_offset_ns = wall - (before + (clock_ns(CLOCK_MONOTONIC) - before) / 2);
    p->last_tick_ms = now_ms(p);
    struct rtm_hash_key key;
    if (!draw_hash_key(&key)) {
        plugin_free(p);
        return MOSQ_ERR_UNKNOWN;
    }
    rtm_guard_init(&p->guard, on_late_will, p);
    p->core = rtm_core_new(&p->cfg, &p->sink, &key);
    p->conns = rtm_conns_new(&key);
    if (!p->core || !p->conns) {
        plugin_free(p);
        return MOSQ_ERR_NOMEM;
    }
    char err[256];
    p->background = rtm_background_start(&p->cfg, p->core, &p->sink, err, sizeof(err));
    if (!p->background) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "rtm: not loaded: %s", err);
        plugin_free(p);
        return MOSQ_ERR_UNKNOWN;
    }
    rc = register_callbacks(p);
    if (rc != MOSQ_ERR_SUCCESS) {
        plugin_free(p);
        return rc;
    }
    p->has_connect = registered_event(p, MOSQ_EVT_CONNECT);
    if (p->has_connect && !start_waker(p)) {
        unregister_callbacks(p);
        plugin_free(p);
        return MOSQ_ERR_UNKNOWN;
    }
    *userdata = p;
    log_started(p);
    return MOSQ_ERR_SUCCESS;
}

RTM_EXPORT int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options,
                                        int option_count)
{
    struct rtm_plugin *p = userdata;
    (void)options;
    (void)option_count;
    if (!p)
        return MOSQ_ERR_SUCCESS;
    unregister_callbacks(p);
    plugin_free(p);
    return MOSQ_ERR_SUCCESS;
}
