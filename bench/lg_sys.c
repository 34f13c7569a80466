/*
 * rtm-loadgen: a client that records the plugin's statistics reports, the
 * retained JSON on $SYS/broker/rtm/stats (README, plugin_opt_stats_interval).
 * The TICK and timer fields (tick_max_us, timer_late_p99_ms, ...) may be
 * missing from an older plugin: has_tick says whether they were there.
 */
#include "lg.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#define STATS_TOPIC "$SYS/broker/rtm/stats"

static long long num(const cJSON *o, const char *key, bool *found)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) {
        if (found)
            *found = false;
        return -1;
    }
    return (long long)v->valuedouble;
}

static void parse_stat(struct lg_stat *s, const cJSON *o)
{
    s->ts = num(o, "ts", NULL);
    s->users = num(o, "users", NULL);
    s->sessions = num(o, "sessions", NULL);
    s->calls_live = num(o, "calls_live", NULL);
    s->timers = num(o, "timers", NULL);
    s->devices = num(o, "devices", NULL);
    s->heap_bytes = num(o, "heap_bytes", NULL);
    s->pool_bytes = num(o, "pool_bytes", NULL);
    s->rss_bytes = num(o, "rss_bytes", NULL);
    s->channels = num(o, "channels", NULL);
    s->memberships = num(o, "memberships", NULL);
    s->attributes = num(o, "attributes", NULL);
    bool has = true;
    s->ticks = num(o, "ticks", &has);
    s->tick_avg_us = num(o, "tick_avg_us", &has);
    s->tick_max_us = num(o, "tick_max_us", &has);
    s->timers_fired = num(o, "timers_fired", &has);
    s->timer_late_p99_ms = num(o, "timer_late_p99_ms", &has);
    s->timer_late_max_ms = num(o, "timer_late_max_ms", &has);
    s->has_tick = has;
}

static void on_stats(struct lg_conn *c, const struct mosquitto_message *msg, int64_t now)
{
    struct lg_monitor *m = c->ud;
    cJSON *o = cJSON_ParseWithLength(msg->payload, (size_t)msg->payloadlen);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        struct lg_stat *nv = realloc(m->v, cap * sizeof(*nv));
        if (!nv)
            lg_die("out of memory");
        m->v = nv;
        m->cap = cap;
    }
    struct lg_stat *s = &m->v[m->n++];
    memset(s, 0, sizeof(*s));
    s->at_ns = now;
    parse_stat(s, o);
    cJSON_Delete(o);
}

bool lg_monitor_open(struct lg_monitor *m, int port, const char *client_id)
{
    memset(m, 0, sizeof(*m));
    lg_open(&m->conn, port, client_id, on_stats, m, 0);
    int64_t deadline = lg_now_ns() + 5 * LG_NS;
    while (!m->conn.up && !m->conn.down && lg_now_ns() < deadline)
        lg_poll(5);
    if (!m->conn.up)
        return false;
    return lg_subscribe(&m->conn, STATS_TOPIC, 0) && lg_wait_subs(&m->conn, 1, 5000);
}

const struct lg_stat *lg_monitor_last(const struct lg_monitor *m)
{
    return m->n ? &m->v[m->n - 1] : NULL;
}

const struct lg_stat *lg_monitor_wait(struct lg_monitor *m, int64_t after_ns, long long live,
                                      int timeout_ms)
{
    int64_t deadline = lg_now_ns() + (int64_t)timeout_ms * LG_MS;
    for (;;) {
        const struct lg_stat *s = lg_monitor_last(m);
        if (s && s->at_ns > after_ns && (live < 0 || s->calls_live >= live))
            return s;
        if (lg_now_ns() >= deadline)
            return NULL;
        lg_poll(5);
    }
}

void lg_monitor_free(struct lg_monitor *m)
{
    lg_free(&m->conn);
    free(m->v);
    m->v = NULL;
    m->n = m->cap = 0;
}
