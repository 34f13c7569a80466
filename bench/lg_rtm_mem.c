/*
 * rtm-loadgen rtm-memory: what a channel membership (R5) and a user
 * attribute (R6) cost the plugin, from its stats report
 * ($SYS/broker/rtm/stats, every second in the bench) before and after:
 * pool_bytes (its record pool), heap_bytes (glibc's heap in use, the
 * broker's own allocations included; with plugin_opt_stats_heap) and the
 * broker's RSS.
 *
 * --count memberships: --count/5 sessions mj<i> stay connected; session i
 * joins the 5 channels mc<5 (i % 20) + j>, j < 5 (100 channels), then writes
 * 5 attributes of 32 bytes (retained, QoS 1) to rtm/u/mj<i>/attr/k<j>. As
 * many sessions write the same values to plain/u/mj<i>/attr/k<j> on the
 * broker without the plugin: the RSS a retained value costs there (R6.3).
 * Without --rtm only that runs.
 */
#include "lg.h"

#include <math.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>

#define PER_SESSION 5  /* channels joined, and attributes written, by each session */
#define GROUPS      20 /* sessions i and i + 20 share their channels */
#define VALUE       "0123456789abcdef0123456789abcdef"
#define VALUE_LEN   32

struct snap {
    long long pool, heap, rss;
};

/* The first stats report received after now, once the field at `off`
 * (memberships, attributes) reaches `want` or is not reported. */
static bool snapshot(struct lg_monitor *m, const struct lg_broker *b, size_t off, long long want,
                     struct snap *out)
{
    int64_t after = lg_now_ns(), deadline = after + 15 * LG_NS;
    for (;;) {
        const struct lg_stat *s = lg_monitor_last(m);
        long long have = s ? *(const long long *)((const char *)s + off) : 0;
        if (s && s->at_ns > after && (have < 0 || have >= want)) {
            out->pool = s->pool_bytes;
            out->heap = s->heap_bytes;
            out->rss = lg_rss_kb(b->pid) * 1024LL;
            return true;
        }
        if (lg_now_ns() >= deadline) {
            lg_note("memory: no stats report with %lld (have %lld) within 15 s", want, have);
            return false;
        }
        lg_poll(5);
    }
}

/* (after - before) / n, NaN when either is unknown. */
static double per(long long before, long long after, double n)
{
    return before >= 0 && after >= 0 && n > 0 ? (double)(after - before) / n : NAN;
}

/* Every session writes its attributes; returns how many were refused. */
static uint64_t write_attrs(struct lg_crowd *k)
{
    char topic[96];
    uint64_t errors = k->errors;
    for (size_t i = 0; i < k->n; i++) {
        for (int j = 0; j < PER_SESSION; j++) {
            snprintf(topic, sizeof(topic), "%s/u/%s%zu/attr/k%d", k->prefix, k->tag, i, j);
            lg_publish(&k->c[i], topic, VALUE, VALUE_LEN, 1, true);
        }
        if (i % 64 == 63)
            lg_poll(0);
    }
    if (!lg_wait_acks(k->c, k->n, 60000))
        lg_die("memory %s: attribute writes not acknowledged", k->prefix);
    lg_pump(500); /* error answers, if any */
    return k->errors - errors;
}

static void join_all(struct lg_crowd *k)
{
    char ch[32];
    for (size_t i = 0; i < k->n; i++) {
        for (int j = 0; j < PER_SESSION; j++) {
            snprintf(ch, sizeof(ch), "mc%zu", (i % GROUPS) * PER_SESSION + (size_t)j);
            lg_crowd_request(k, i, ch, "join");
        }
        if (i % 64 == 63)
            lg_poll(0);
    }
}

/* The plugin's side: memory before (s[0]), after the joins (s[1]) and
 * after the attributes (s[2]); returns how many attributes were accepted. */
static double plugin_side(const struct lg_opts *o, size_t sessions, struct snap s[3])
{
    double n = (double)(sessions * PER_SESSION);
    struct lg_monitor mon;
    if (!lg_monitor_open(&mon, o->rtm.port, "rmon"))
        lg_die("memory: no stats monitor");
    static struct lg_crowd k;
    lg_crowd_open(&k, o->rtm.port, "rtm", "mj", sessions);
    lg_pump(1000);
    snapshot(&mon, &o->rtm, offsetof(struct lg_stat, memberships), 0, &s[0]);

    join_all(&k);
    bool joined = lg_crowd_wait_joined(&k, (uint64_t)n, 120000);
    if (!joined)
        lg_note("memory: only %llu of %.0f joins answered", (unsigned long long)k.joined, n);
    lg_crowd_report_errors(&k, "memory joins");
    if (joined && k.errors == 0)
        snapshot(&mon, &o->rtm, offsetof(struct lg_stat, memberships), (long long)n, &s[1]);

    uint64_t refused = write_attrs(&k);
    double attrs = n - (double)refused;
    if (refused)
        lg_note("memory: %llu of %.0f attribute writes refused", (unsigned long long)refused, n);
    if (s[1].pool >= 0)
        snapshot(&mon, &o->rtm, offsetof(struct lg_stat, attributes), (long long)attrs, &s[2]);
    const struct lg_stat *last = lg_monitor_last(&mon);
    lg_note("memory: pool %lld -> %lld -> %lld B, heap %lld -> %lld -> %lld B, RSS %lld -> %lld "
            "-> %lld B; the plugin counts %lld channels, %lld memberships, %lld attributes",
            s[0].pool, s[1].pool, s[2].pool, s[0].heap, s[1].heap, s[2].heap, s[0].rss, s[1].rss,
            s[2].rss, last ? last->channels : -1, last ? last->memberships : -1,
            last ? last->attributes : -1);
    lg_crowd_free(&k);
    lg_monitor_free(&mon);
    return attrs;
}

int lg_rtm_memory(const struct lg_opts *o)
{
    if (!o->plain.port || !o->plain.pid)
        lg_die("rtm-memory needs --plain PORT:PID (and --rtm PORT:PID for the plugin's side)");
    size_t sessions = (size_t)o->count / PER_SESSION;
    double n = (double)(sessions * PER_SESSION);
    if (sessions < 1)
        lg_die("rtm-memory: --count must be at least %d", PER_SESSION);
    struct snap s[3] = {{-1, -1, -1}, {-1, -1, -1}, {-1, -1, -1}};
    double attrs = NAN;
    if (o->rtm.port && o->rtm.pid)
        attrs = plugin_side(o, sessions, s);
    else
        lg_note("rtm-memory: no --rtm, the baseline alone (the plugin's columns read n/a)");
    static struct lg_crowd plain;
    lg_crowd_open(&plain, o->plain.port, "plain", "mj", sessions);
    lg_pump(1000);
    long long plain0 = lg_rss_kb(o->plain.pid) * 1024LL;
    write_attrs(&plain);
    lg_pump(1000);
    long long plain1 = lg_rss_kb(o->plain.pid) * 1024LL;
    lg_note("memory: plain RSS %lld -> %lld B", plain0, plain1);
    lg_crowd_free(&plain);

    char what[200];
    snprintf(what, sizeof(what),
             "memory per channel membership (%.0f: %zu sessions x %d of 100 channels): plugin "
             "pool_bytes",
             n, sessions, PER_SESSION);
    lg_row("R5", what, "B", 1, per(s[0].pool, s[1].pool, n), LG_NONE_BASE, NAN, "<= 64 B");
    lg_row("R5.2", "memory per membership: heap in use (stats heap_bytes, the broker's own too)",
           "B", 1, per(s[0].heap, s[1].heap, n), LG_NONE_BASE, NAN, NULL);
    lg_row("R5.3", "memory per membership: broker RSS", "B", 0, per(s[0].rss, s[1].rss, n),
           LG_NONE_BASE, NAN, NULL);
    snprintf(what, sizeof(what),
             "memory per user attribute (%.0f of %d B): plugin pool_bytes beyond the value", n,
             VALUE_LEN);
    lg_row("R6", what, "B", 1, per(s[1].pool, s[2].pool, attrs) - VALUE_LEN, LG_NONE_BASE, NAN,
           "<= 96 B");
    lg_row("R6.2",
           "memory per attribute: heap in use beyond the value (the broker's retained copy too)",
           "B", 1, per(s[1].heap, s[2].heap, attrs) - VALUE_LEN, LG_NONE_BASE, NAN, NULL);
    lg_row("R6.3", "memory per attribute: broker RSS, vs a plain retained message of the value",
           "B", 0, per(s[1].rss, s[2].rss, attrs), per(plain0, plain1, n), NAN, NULL);
    return 0;
}
