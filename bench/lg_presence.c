/*
 * rtm-loadgen presence: --count connections connect (at most 64 waiting for
 * their CONNACK at a time) and then disconnect, on the broker with the plugin
 * and on the one without. A watcher subscribed to rtm/presence/+ counts the
 * presence messages and when they arrive. The connections are raw MQTT
 * 3.1.1 sockets (lg_raw.c): one fd each. The first cycle on each broker
 * (after a small warm-up cycle) gives the RSS deltas: with everyone online,
 * and after everyone left (retained offline presence and user records stay).
 * Every cycle uses fresh uids p<rep>u<i>.
 */
#include "lg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct watch {
    struct lg_conn conn;
    char uid_prefix[16];
    long online, offline;
    int64_t last_on, last_off;
};

struct side {
    const char *name;
    const struct lg_broker *b;
    bool plugin;
    struct watch w;
    struct lg_monitor mon; /* plugin side only */
    long rss0, rss_on, rss_off;
    long long heap0, heap_off;
    double retained; /* plain side: RSS per retained presence-shaped message */
};

struct cycle {
    double connects_s, on_msgs_s, off_msgs_s;
};

static void watch_got(struct lg_conn *c, const struct mosquitto_message *m, int64_t now)
{
    struct watch *w = c->ud;
    size_t ulen = 0, olen = 0, plen = strlen(w->uid_prefix);
    const char *uid = lg_field(m->payload, (size_t)m->payloadlen, "uid", &ulen);
    const char *on = lg_field(m->payload, (size_t)m->payloadlen, "online", &olen);
    if (!uid || !on || ulen < plen || memcmp(uid, w->uid_prefix, plen) != 0)
        return;
    if (on[0] == 't') {
        w->online++;
        w->last_on = now;
    } else {
        w->offline++;
        w->last_off = now;
    }
}

static void open_watch(struct side *s, const char *prefix)
{
    struct watch *w = &s->w;
    char filter[40];
    lg_open(&w->conn, s->b->port, "pw", watch_got, w, 0);
    snprintf(filter, sizeof(filter), "%s/presence/+", prefix);
    int64_t deadline = lg_now_ns() + 5 * LG_NS;
    while (!w->conn.up && !w->conn.down && lg_now_ns() < deadline)
        lg_poll(5);
    if (!w->conn.up || !lg_subscribe(&w->conn, filter, 0) || !lg_wait_subs(&w->conn, 1, 5000))
        lg_die("presence %s: watcher not ready", s->name);
}

static bool wait_count(const long *counter, long want, int timeout_ms)
{
    int64_t deadline = lg_now_ns() + (int64_t)timeout_ms * LG_MS;
    while (*counter < want && lg_now_ns() < deadline)
        lg_poll(5);
    return *counter >= want;
}

static int64_t last_connack(const struct lg_raw *cs, size_t n)
{
    int64_t last = 0;
    for (size_t i = 0; i < n; i++)
        if (cs[i].connack_ns > last)
            last = cs[i].connack_ns;
    return last;
}

/* The broker's heap from a stats report newer than now (plugin side). */
static long long heap_now(struct side *s)
{
    if (!s->plugin)
        return -1;
    const struct lg_stat *st = lg_monitor_wait(&s->mon, lg_now_ns(), -1, 3000);
    return st ? st->heap_bytes : -1;
}

/* One connect/disconnect cycle of n fresh uids; `measure` reads the memory. */
static void run_cycle(struct side *s, const char *uid_prefix, long n, bool measure,
                      struct cycle *out)
{
    struct lg_raw *cs = calloc((size_t)n, sizeof(*cs));
    if (!cs)
        lg_die("out of memory");
    struct watch *w = &s->w;
    snprintf(w->uid_prefix, sizeof(w->uid_prefix), "%s", uid_prefix);
    w->online = w->offline = 0;
    int64_t t0 = lg_now_ns();
    size_t up = lg_raw_open_many(cs, (size_t)n, s->b->port, uid_prefix, 64, 120000);
    if (up != (size_t)n)
        lg_die("presence %s: only %zu of %ld connections up (fd limit? ulimit -n)", s->name, up, n);
    out->connects_s = (double)n * LG_NS / (double)(last_connack(cs, (size_t)n) - t0);
    if (s->plugin && !wait_count(&w->online, n, 60000))
        lg_note("presence: only %ld of %ld online messages", w->online, n);
    out->on_msgs_s =
        s->plugin && w->online ? (double)w->online * LG_NS / (double)(w->last_on - t0) : NAN;
    if (measure) {
        lg_pump(1000);
        s->rss_on = lg_rss_kb(s->b->pid);
    }
    int64_t t2 = lg_now_ns();
    lg_raw_close_all(cs, (size_t)n);
    if (s->plugin && !wait_count(&w->offline, n, 60000))
        lg_note("presence: only %ld of %ld offline messages", w->offline, n);
    out->off_msgs_s =
        s->plugin && w->offline ? (double)w->offline * LG_NS / (double)(w->last_off - t2) : NAN;
    if (measure) {
        lg_pump(1000);
        s->rss_off = lg_rss_kb(s->b->pid);
        s->heap_off = heap_now(s);
    }
    lg_raw_close_all(cs, (size_t)n); /* any that failed half-way */
    free(cs);
}

/* The broker without the plugin, fresh, storing n retained messages shaped
 * like the plugin's presence (same topic and payload lengths): its RSS
 * growth per message, to tell the retained store from the plugin's own. */
static double retained_control(const struct side *s, long n)
{
    struct lg_conn c;
    char topic[64], payload[96];
    lg_open(&c, s->b->port, "pctl", NULL, NULL, 0);
    int64_t deadline = lg_now_ns() + 5 * LG_NS;
    while (!c.up && !c.down && lg_now_ns() < deadline)
        lg_poll(5);
    lg_pump(500);
    long rss0 = lg_rss_kb(s->b->pid);
    for (long i = 0; i < n && c.up; i++) {
        snprintf(topic, sizeof(topic), "rtm/presence/c0u%ld", i);
        int len = snprintf(payload, sizeof(payload),
                           "{\"uid\":\"c0u%ld\",\"online\":true,\"sessions\":1,\"ts\":%lld}", i,
                           (long long)lg_wall_ms());
        lg_publish(&c, topic, payload, len, 1, true);
        if (i % 256 == 255)
            lg_poll(0);
    }
    bool acked = lg_wait_acks(&c, 1, 30000);
    lg_pump(1000);
    long rss1 = lg_rss_kb(s->b->pid);
    lg_close(&c);
    lg_pump(100);
    lg_free(&c);
    return acked && rss0 > 0 ? (double)(rss1 - rss0) * 1024 / (double)n : NAN;
}

static void side_setup(struct side *s, const char *name, const char *prefix,
                       const struct lg_broker *b, bool plugin, long n)
{
    memset(s, 0, sizeof(*s));
    s->name = name;
    s->b = b;
    s->plugin = plugin;
    open_watch(s, prefix);
    if (plugin && !lg_monitor_open(&s->mon, b->port, "pmon"))
        lg_die("presence: no stats monitor");
    s->retained = plugin ? NAN : retained_control(s, n);
    struct cycle warm;
    run_cycle(s, "pwu", 200, false, &warm);
    lg_pump(1000);
    s->rss0 = lg_rss_kb(b->pid);
    s->heap0 = heap_now(s);
}

static void print_rows(const struct side *pl, const struct side *rt, long n, struct cycle *pc,
                       struct cycle *rc, int reps)
{
    double dn = (double)n, on_p = (double)(rt->rss_on - rt->rss0) * 1024 / dn;
    double on_b = (double)(pl->rss_on - pl->rss0) * 1024 / dn;
    double held =
        rt->heap0 >= 0 && rt->heap_off >= 0 ? (double)(rt->heap_off - rt->heap0) / dn : NAN;
    char what[160];
    snprintf(what, sizeof(what),
             "presence %ld conns: plugin memory per online user (RSS delta with - without)", n);
    lg_row("P1", what, "B", 0, on_p - on_b, LG_NONE_BASE, NAN, "<= 200 B");
    lg_row("P2", "presence: broker RSS per connection", "B", 0, on_p, on_b, NAN, NULL);
    lg_row("P3",
           "presence: heap still held per user after all disconnected (stats heap_bytes: "
           "retained offline presence, user record)",
           "B", 0, held, LG_NONE_BASE, NAN, NULL);
    double cp[64], cb[64], on[64], off[64];
    for (int i = 0; i < reps; i++) {
        cp[i] = rc[i].connects_s;
        cb[i] = pc[i].connects_s;
        on[i] = rc[i].on_msgs_s;
        off[i] = rc[i].off_msgs_s;
    }
    lg_row("P4", "presence: connections accepted per second", "conn/s", 0,
           lg_median(cp, (size_t)reps), lg_median(cb, (size_t)reps), NAN, NULL);
    lg_row("P5", "presence: presence messages/s while connecting", "msg/s", 0,
           lg_median(on, (size_t)reps), LG_NONE_BASE, NAN, NULL);
    lg_row("P6", "presence: presence messages/s while disconnecting", "msg/s", 0,
           lg_median(off, (size_t)reps), LG_NONE_BASE, NAN, NULL);
    lg_row("P7",
           "presence control: broker RSS per retained presence-shaped message, without the plugin",
           "B", 0, pl->retained, LG_NONE_BASE, NAN, NULL);
}

int lg_presence(const struct lg_opts *o)
{
    if (o->reps < 1 || o->reps > 64)
        lg_die("--reps must be 1..64");
    struct side pl, rt;
    side_setup(&pl, "plain", "plain", &o->plain, false, o->count);
    side_setup(&rt, "plugin", "rtm", &o->rtm, true, o->count);
    struct cycle pc[64], rc[64];
    char prefix[16];
    for (int r = 0; r < o->reps; r++) {
        snprintf(prefix, sizeof(prefix), "p%du", r);
        struct side *first = r % 2 ? &rt : &pl, *second = r % 2 ? &pl : &rt;
        run_cycle(first, prefix, o->count, r == 0, r % 2 ? &rc[r] : &pc[r]);
        run_cycle(second, prefix, o->count, r == 0, r % 2 ? &pc[r] : &rc[r]);
        lg_note("presence rep %d, %ld conns: plain %.0f conn/s; plugin %.0f conn/s, %.0f online "
                "msgs/s, %.0f offline msgs/s",
                r, o->count, pc[r].connects_s, rc[r].connects_s, rc[r].on_msgs_s, rc[r].off_msgs_s);
    }
    lg_note("presence RSS kB: plain %ld -> %ld online -> %ld after; plugin %ld -> %ld -> %ld; "
            "plugin heap %lld -> %lld after",
            pl.rss0, pl.rss_on, pl.rss_off, rt.rss0, rt.rss_on, rt.rss_off, rt.heap0, rt.heap_off);
    print_rows(&pl, &rt, o->count, pc, rc, o->reps);
    lg_free(&pl.w.conn);
    lg_free(&rt.w.conn);
    lg_monitor_free(&rt.mon);
    return 0;
}
