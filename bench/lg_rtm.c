/*
 * rtm-loadgen rtm: what SPEC 8's peer messages and channels cost, side by
 * side with the same traffic as plain pub/sub through the broker without
 * the plugin (topics under plain/ instead of rtm/), the repetitions
 * alternating between the brokers (BENCHMARKS.md, Method):
 *
 *   R1, R2  peer messages (lg_flow.c): --pairs senders and receivers on
 *           rtm/u/{P}/msg/{S}, QoS 1, 64 B; throughput closed loop, latency
 *           open loop at --load times the slower broker's throughput.
 *   R3      a channel of --count members, all joined and subscribed to
 *           rtm/c/{ch}/msg/+ (QoS 0); member 0 publishes, keeping the
 *           deliveries of 16 messages in flight; deliveries per second.
 *   R4      --users sessions joining and leaving a channel in a closed loop
 *           (a join, its answer, then leave and join again), against as many
 *           clients connecting and disconnecting on the broker without it.
 *   R7      joins at --rate a second, and as many leaves, for --drive seconds
 *           into 4 channels; a member of all four counts the messages on each
 *           channel's count topic, subscribed one by one.
 *
 * Without --rtm only the baseline runs and the plugin's columns read n/a.
 */
#include "lg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPS_MAX     64
#define FAN_PAYLOAD  64
#define FAN_WINDOW   16  /* R3's messages in flight, each to every member */
#define CHURN_CHS    10  /* session i of R4 uses channel churn<i % 10> */
#define COAL_CHS     4   /* R7's channels */
#define COAL_SESSION 400 /* R7's joining sessions, each in one channel */
#define COAL_SECS    64
#define PACE_US      100

enum { PLAIN, PLUGIN, SIDES };

static const char *const prefixes[SIDES] = {"plain", "rtm"};

/* The brokers of a run; b[PLUGIN] is NULL without --rtm. */
struct run {
    const struct lg_opts *o;
    const struct lg_broker *b[SIDES];
};

/* Which side goes k-th in repetition r: the order alternates. */
static int side_at(int r, int k)
{
    return (r + k) % SIDES;
}

static int64_t secs_ns(double s)
{
    return (int64_t)(s * LG_NS);
}

static double cpu_per(int64_t cpu0, int64_t cpu1, uint64_t n)
{
    return cpu0 >= 0 && cpu1 >= cpu0 && n ? (double)(cpu1 - cpu0) / 1000.0 / (double)n : NAN;
}

/* A row from per-repetition values: the median of each side's, and the
 * median of the per-repetition ratios. */
static void rep_row(const char *key, const char *what, const char *unit, int digits,
                    double v[SIDES][REPS_MAX], int n, const char *target)
{
    double r[REPS_MAX];
    for (int i = 0; i < n; i++)
        r[i] = v[PLUGIN][i] / v[PLAIN][i];
    double ratio = lg_median(r, (size_t)n);
    lg_row(key, what, unit, digits, lg_median(v[PLUGIN], (size_t)n), lg_median(v[PLAIN], (size_t)n),
           ratio, target);
}

/* --- R1, R2: peer messages --------------------------------------------------------- */

/* The A/A control of R2: the plain broker measured again in each latency
 * repetition, after both sides, so that the ratio of its two windows shows
 * how far p99 moves with nothing changed (the noise floor of R2). */
static struct lg_flow_rep again[REPS_MAX];

static void peer_rep(struct lg_flow *f[SIDES], const struct run *u, int r, double rate,
                     struct lg_flow_rep out[SIDES][REPS_MAX])
{
    const struct lg_opts *o = u->o;
    for (int k = 0; k < SIDES; k++) {
        int s = side_at(r, k);
        struct lg_flow_rep *x = &out[s][r];
        *x = (struct lg_flow_rep){NAN, NAN, NAN, NAN, NAN, -1, NAN};
        if (!f[s])
            continue;
        if (rate > 0)
            lg_flow_latency_rep(f[s], u->b[s], o->warmup, o->seconds, rate, x);
        else
            lg_flow_capacity(f[s], u->b[s], o->warmup, o->seconds, o->window, x);
    }
    const struct lg_flow_rep *p = &out[PLAIN][r], *q = &out[PLUGIN][r];
    if (rate > 0) {
        again[r] = (struct lg_flow_rep){NAN, NAN, NAN, NAN, NAN, -1, NAN};
        if (f[PLAIN])
            lg_flow_latency_rep(f[PLAIN], u->b[PLAIN], o->warmup, o->seconds, rate, &again[r]);
        lg_note("peer latency rep %d at %.0f msg/s: plain p50 %.3f p99 %.3f ms (broker %.0f%%), "
                "plugin p50 %.3f p99 %.3f ms (%.0f%%), plain again p99 %.3f ms",
                r, rate, p->p50_ns / LG_MS, p->p99_ns / LG_MS, p->broker_util * 100,
                q->p50_ns / LG_MS, q->p99_ns / LG_MS, q->broker_util * 100,
                again[r].p99_ns / LG_MS);
    } else
        lg_note("peer throughput rep %d: plain %.0f msg/s (%.2f us/msg), plugin %.0f msg/s "
                "(%.2f us/msg)",
                r, p->rate, p->cpu_us, q->rate, q->cpu_us);
}

/* One field of every repetition, scaled, for rep_row. */
static void pick(struct lg_flow_rep in[SIDES][REPS_MAX], int n, size_t off, double scale,
                 double out[SIDES][REPS_MAX])
{
    for (int s = 0; s < SIDES; s++)
        for (int i = 0; i < n; i++)
            out[s][i] = *(const double *)((const char *)&in[s][i] + off) * scale;
}

static void peer_rows(const struct run *u)
{
    const struct lg_opts *o = u->o;
    int n = o->reps;
    struct lg_flow *f[SIDES] = {NULL};
    for (int s = 0; s < SIDES; s++)
        if (u->b[s])
            f[s] = lg_flow_new_peer(u->b[s]->port, o->pairs, "m", prefixes[s], 1);
    lg_note("peer: %d pairs on {plain,rtm}/u/ms<i>/msg/mp<i> (QoS 1, 64 B), window %d, %d reps "
            "of %.1f s",
            o->pairs, o->window, n, o->seconds);
    static struct lg_flow_rep cap[SIDES][REPS_MAX], lat[SIDES][REPS_MAX], warm[SIDES][REPS_MAX];
    peer_rep(f, u, 0, 0, warm); /* warm-up, discarded */
    for (int r = 0; r < n; r++)
        peer_rep(f, u, r, 0, cap);
    static double v[SIDES][REPS_MAX];
    pick(cap, n, offsetof(struct lg_flow_rep, rate), 1, v);
    double rate = o->load * fmin(lg_median(v[PLAIN], (size_t)n), lg_median(v[PLUGIN], (size_t)n));
    for (int r = 0; r < n; r++)
        peer_rep(f, u, r, rate, lat);
    rep_row("R1", "peer messages (rtm/u/{P}/msg/{S}, QoS 1, 64 B): throughput (closed loop)",
            "msg/s", 0, v, n, ">= 0.95x");
    pick(cap, n, offsetof(struct lg_flow_rep, cpu_us), 1, v);
    rep_row("R1.2", "peer messages: broker CPU per message", "us", 2, v, n, NULL);
    lg_row("R2.1", "peer messages: offered load for the latency rows", "msg/s", 0, rate, rate, NAN,
           NULL);
    pick(lat, n, offsetof(struct lg_flow_rep, p50_ns), 1.0 / LG_MS, v);
    rep_row("R2.2", "peer messages: latency p50", "ms", 3, v, n, NULL);
    pick(lat, n, offsetof(struct lg_flow_rep, p99_ns), 1.0 / LG_MS, v);
    rep_row("R2", "peer messages: latency p99 (open loop)", "ms", 3, v, n, "<= 1.1x");
    for (int r = 0; r < n; r++)
        v[PLUGIN][r] = again[r].p99_ns / LG_MS; /* the plain broker's second window */
    rep_row("R2.3",
            "peer messages: A/A control, plain p99 in a second window vs the first (noise "
            "floor of R2)",
            "ms", 3, v, n, NULL);
    for (int s = 0; s < SIDES; s++)
        if (f[s])
            lg_flow_free(f[s]);
}

/* --- R3: a channel message fanned out to every member ---------------------------------- */

struct fan {
    struct lg_crowd k;
    char topic[64];
    bool closed;
    uint64_t sent;
};

static void fan_refill(struct fan *f)
{
    static const char payload[FAN_PAYLOAD + 1] =
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    while (f->closed && f->sent < FAN_WINDOW + f->k.delivered / f->k.n) {
        if (!lg_publish(&f->k.c[0], f->topic, payload, FAN_PAYLOAD, 0, false))
            return;
        f->sent++;
    }
}

static void fan_delivered(struct lg_crowd *k, int i, const struct mosquitto_message *m, int64_t now)
{
    (void)i, (void)m, (void)now;
    fan_refill(k->ud);
}

/* Members fm<i> subscribe to <prefix>/c/fan/msg/+ and, with the plugin,
 * join; false when not every join was answered. */
static bool fan_setup(struct fan *f, const struct lg_broker *b, const char *prefix,
                      const struct lg_opts *o, bool plugin)
{
    lg_crowd_open(&f->k, b->port, prefix, "fm", (size_t)o->count);
    f->k.ud = f;
    f->k.on_delivery = fan_delivered;
    char filter[64];
    snprintf(filter, sizeof(filter), "%s/c/fan/msg/+", prefix);
    snprintf(f->topic, sizeof(f->topic), "%s/c/fan/msg/fm0", prefix);
    if (!lg_crowd_subscribe(&f->k, filter, 0))
        lg_die("fan-out %s: subscriptions failed", prefix);
    if (!plugin)
        return true;
    for (size_t i = 0; i < f->k.n; i++) {
        lg_crowd_request(&f->k, i, "fan", "join");
        if (i % 128 == 127)
            lg_poll(0);
    }
    bool ok = lg_crowd_wait_joined(&f->k, f->k.n, 60000);
    lg_crowd_report_errors(&f->k, "fan-out joins");
    if (!ok)
        lg_note("fan-out: only %llu of %zu joins answered: no plugin rows",
                (unsigned long long)f->k.joined, f->k.n);
    return ok;
}

/* One repetition's numbers. */
struct fan_rep {
    double rate, cpu_us, broker_util, lg_util;
};

static void fan_rep(struct fan *f, const struct lg_broker *b, const struct lg_opts *o,
                    struct fan_rep *out)
{
    f->closed = true;
    fan_refill(f);
    lg_pump((int)(o->warmup * 1000));
    uint64_t d0 = f->k.delivered;
    int64_t cpu0 = b->pid > 0 ? lg_cpu_ns(b->pid) : -1, self0 = lg_cpu_ns(0), t0 = lg_now_ns();
    lg_pump((int)(o->seconds * 1000));
    uint64_t d1 = f->k.delivered;
    int64_t cpu1 = b->pid > 0 ? lg_cpu_ns(b->pid) : -1, self1 = lg_cpu_ns(0), t1 = lg_now_ns();
    f->closed = false;
    int64_t deadline = t1 + 10 * LG_NS;
    while (f->k.delivered < f->sent * f->k.n && lg_now_ns() < deadline)
        lg_poll(1);
    out->rate = (double)(d1 - d0) * LG_NS / (double)(t1 - t0);
    out->cpu_us = cpu_per(cpu0, cpu1, d1 - d0);
    out->broker_util = cpu0 >= 0 ? (double)(cpu1 - cpu0) / (double)(t1 - t0) : NAN;
    out->lg_util = (double)(self1 - self0) / (double)(t1 - t0);
}

static void fan_rows(const struct run *u)
{
    const struct lg_opts *o = u->o;
    int n = o->reps;
    static struct fan f[SIDES];
    bool ok[SIDES] = {false};
    for (int s = 0; s < SIDES; s++)
        if (u->b[s])
            ok[s] = fan_setup(&f[s], u->b[s], prefixes[s], o, s == PLUGIN);
    lg_note("fan-out: %ld members subscribed to {plain,rtm}/c/fan/msg/+ (QoS 0, 64 B), %d "
            "messages in flight, %d reps of %.1f s",
            o->count, FAN_WINDOW, n, o->seconds);
    static double rate[SIDES][REPS_MAX], cpu[SIDES][REPS_MAX];
    for (int r = -1; r < n; r++) { /* r = -1: warm-up, discarded */
        struct fan_rep x[SIDES] = {{NAN, NAN, NAN, NAN}, {NAN, NAN, NAN, NAN}};
        for (int k = 0; k < SIDES; k++) {
            int s = side_at(r < 0 ? 0 : r, k);
            if (ok[s])
                fan_rep(&f[s], u->b[s], o, &x[s]);
        }
        if (r < 0)
            continue;
        for (int s = 0; s < SIDES; s++) {
            rate[s][r] = x[s].rate;
            cpu[s][r] = x[s].cpu_us;
        }
        lg_note("fan-out rep %d: plain %.0f deliveries/s (%.2f us each, broker %.0f%%, loadgen "
                "%.0f%% busy), plugin %.0f (%.2f us, %.0f%%, %.0f%%)",
                r, x[PLAIN].rate, x[PLAIN].cpu_us, x[PLAIN].broker_util * 100,
                x[PLAIN].lg_util * 100, x[PLUGIN].rate, x[PLUGIN].cpu_us,
                x[PLUGIN].broker_util * 100, x[PLUGIN].lg_util * 100);
    }
    char what[160];
    snprintf(what, sizeof(what),
             "channel message to %ld members vs a plain topic with %ld subscribers: deliveries/s",
             o->count, o->count);
    rep_row("R3", what, "msg/s", 0, rate, n, ">= 0.9x");
    rep_row("R3.2", "channel fan-out: broker CPU per delivery", "us", 3, cpu, n, NULL);
    for (int s = 0; s < SIDES; s++)
        if (u->b[s])
            lg_crowd_free(&f[s].k);
}

/* --- R4: joins and leaves against connects and disconnects ------------------------------ */

struct churn {
    struct lg_crowd k;
    bool running;
    uint64_t joins; /* join requests sent */
};

static void churn_channel(char *out, size_t size, int i)
{
    snprintf(out, size, "churn%d", i % CHURN_CHS);
}

/* A join answered: leave, and join again. */
static void churn_joined(struct lg_crowd *k, int i, const struct mosquitto_message *m, int64_t now)
{
    struct churn *c = k->ud;
    char ch[32];
    (void)m, (void)now;
    if (!c->running)
        return;
    churn_channel(ch, sizeof(ch), i);
    lg_crowd_request(k, (size_t)i, ch, "leave");
    if (lg_crowd_request(k, (size_t)i, ch, "join"))
        c->joins++;
}

/* Join+leave cycles a second (answered joins), closed loop. */
static double churn_rep(struct churn *c, const struct lg_opts *o)
{
    char ch[32];
    c->running = true;
    for (size_t i = 0; i < c->k.n; i++) {
        churn_channel(ch, sizeof(ch), (int)i);
        if (lg_crowd_request(&c->k, i, ch, "join"))
            c->joins++;
    }
    lg_pump((int)(o->warmup * 1000));
    uint64_t j0 = c->k.joined;
    int64_t t0 = lg_now_ns();
    lg_pump((int)(o->seconds * 1000));
    uint64_t j1 = c->k.joined;
    int64_t t1 = lg_now_ns();
    c->running = false;
    bool settled = lg_crowd_wait_joined(&c->k, c->joins, 10000);
    for (size_t i = 0; i < c->k.n; i++) {
        churn_channel(ch, sizeof(ch), (int)i);
        lg_crowd_request(&c->k, i, ch, "leave");
    }
    lg_wait_acks(c->k.c, c->k.n, 10000);
    return settled && j1 > j0 ? (double)(j1 - j0) * LG_NS / (double)(t1 - t0) : NAN;
}

/* Connect+disconnect cycles a second: raw clients (lg_raw.c) in batches of
 * 2 x --users, at most --users of them waiting for their CONNACK at once. */
static double connect_rep(int port, const struct lg_opts *o, int rep)
{
    size_t n = 2 * (size_t)o->users;
    struct lg_raw *rs = calloc(n, sizeof(*rs));
    if (!rs)
        lg_die("out of memory");
    char prefix[32];
    uint64_t up = 0;
    int64_t start = lg_now_ns(), t0 = 0, warm = start + secs_ns(o->warmup);
    int64_t end = warm + secs_ns(o->seconds);
    for (unsigned b = 0; lg_now_ns() < end; b++) {
        if (!t0 && lg_now_ns() >= warm) {
            t0 = lg_now_ns();
            up = 0;
        }
        snprintf(prefix, sizeof(prefix), "cc%d.%u.", rep, b);
        up += lg_raw_open_many(rs, n, port, prefix, o->users, 10000);
        lg_raw_close_all(rs, n);
    }
    free(rs);
    return t0 ? (double)up * LG_NS / (double)(lg_now_ns() - t0) : NAN;
}

static void churn_rows(const struct run *u)
{
    const struct lg_opts *o = u->o;
    int n = o->reps;
    static struct churn c;
    if (u->b[PLUGIN]) {
        lg_crowd_open(&c.k, u->b[PLUGIN]->port, "rtm", "jl", (size_t)o->users);
        c.k.ud = &c;
        c.k.on_joined = churn_joined;
    }
    lg_note("churn: %d sessions joining and leaving churn0..%d (plugin) vs %d clients connecting "
            "and disconnecting (plain), %d reps of %.1f s",
            o->users, CHURN_CHS - 1, o->users, n, o->seconds);
    static double rate[SIDES][REPS_MAX];
    for (int r = 0; r < n; r++) {
        for (int k = 0; k < SIDES; k++) {
            int s = side_at(r, k);
            if (s == PLAIN)
                rate[s][r] = connect_rep(u->b[PLAIN]->port, o, r);
            else
                rate[s][r] = u->b[PLUGIN] ? churn_rep(&c, o) : NAN;
        }
        lg_note("churn rep %d: plugin %.0f joins+leaves/s, plain %.0f connects+disconnects/s", r,
                rate[PLUGIN][r], rate[PLAIN][r]);
    }
    rep_row("R4",
            "channel joins+leaves per second (closed loop) vs connects+disconnects per second",
            "/s", 0, rate, n, NULL);
    if (u->b[PLUGIN]) {
        lg_crowd_report_errors(&c.k, "churn");
        lg_crowd_free(&c.k);
    }
}

/* --- R7: member count coalescing ------------------------------------------------------------ */

struct coal {
    struct lg_crowd watch, drive;
    bool member[COAL_SESSION];
    int64_t t0, t1;                      /* the drive */
    long in_second[COAL_CHS][COAL_SECS]; /* count messages per second of the drive */
    int64_t last[COAL_CHS];              /* the last count message, from t0 on */
    int64_t min_gap;                     /* the shortest gap between two of one channel */
};

static void coal_count(struct lg_crowd *k, int i, const struct mosquitto_message *m, int64_t now)
{
    struct coal *c = k->ud;
    const char *p = strstr(m->topic, "/c/coal");
    (void)i;
    if (m->retain || !p || !c->t0 || now < c->t0)
        return;
    int ch = atoi(p + 7);
    const char *rest = strchr(p + 3, '/');
    if (ch < 0 || ch >= COAL_CHS || !rest || strcmp(rest, "/count") != 0)
        return;
    if (c->last[ch] && now - c->last[ch] < c->min_gap)
        c->min_gap = now - c->last[ch];
    c->last[ch] = now;
    int64_t sec = (now - c->t0) / LG_NS;
    if (now < c->t1 && sec < COAL_SECS)
        c->in_second[ch][sec]++;
}

/* The watcher subscribes to every channel's count, then joins them all, so
 * that no channel empties during the drive. */
static void coal_setup(struct coal *c, int port)
{
    char filter[64], ch[32];
    lg_crowd_open(&c->watch, port, "rtm", "cw", 1);
    c->watch.ud = c;
    c->watch.on_delivery = coal_count;
    for (int k = 0; k < COAL_CHS; k++) {
        snprintf(filter, sizeof(filter), "rtm/c/coal%d/count", k);
        if (!lg_subscribe(&c->watch.c[0], filter, 0))
            lg_die("coalescing: subscribe failed");
    }
    if (!lg_wait_subs(c->watch.c, 1, 10000))
        lg_die("coalescing: no SUBACK");
    for (int k = 0; k < COAL_CHS; k++) {
        snprintf(ch, sizeof(ch), "coal%d", k);
        lg_crowd_request(&c->watch, 0, ch, "join");
    }
    if (!lg_crowd_wait_joined(&c->watch, COAL_CHS, 10000))
        lg_note("coalescing: the watcher's joins were not all answered");
    lg_crowd_open(&c->drive, port, "rtm", "cd", COAL_SESSION);
    lg_pump(1200); /* past the watcher's own count messages */
}

/* Session i toggles its membership of coal<i % 4>, `rate` joins a second
 * and as many leaves, paced every 100 us. */
static void coal_drive(struct coal *c, double rate, double secs)
{
    char ch[32];
    uint64_t ops = 0;
    c->min_gap = INT64_MAX;
    c->t0 = lg_now_ns();
    c->t1 = c->t0 + secs_ns(secs);
    for (int64_t now = c->t0; now < c->t1; now = lg_now_ns()) {
        uint64_t due = (uint64_t)((double)(now - c->t0) * 2 * rate / LG_NS);
        for (int burst = 0; ops < due && burst < 2000; burst++, ops++) {
            size_t i = ops % COAL_SESSION;
            snprintf(ch, sizeof(ch), "coal%zu", i % COAL_CHS);
            lg_crowd_request(&c->drive, i, ch, c->member[i] ? "leave" : "join");
            c->member[i] = !c->member[i];
        }
        lg_poll_us(PACE_US);
    }
}

static void coal_rows(const struct run *u)
{
    const struct lg_opts *o = u->o;
    static struct coal c;
    double busiest = NAN, joins_s = NAN, silent = NAN;
    int secs = (int)o->drive;
    if (u->b[PLUGIN] && secs >= 1 && secs <= COAL_SECS) {
        coal_setup(&c, u->b[PLUGIN]->port);
        uint64_t j0 = c.drive.joined;
        coal_drive(&c, o->rate, secs);
        joins_s = (double)(c.drive.joined - j0) / secs;
        lg_pump(1500); /* the last change's count */
        double most = 0, none = 0;
        for (int k = 0; k < COAL_CHS; k++) {
            long total = 0;
            for (int s = 0; s < secs; s++) {
                total += c.in_second[k][s];
                none += c.in_second[k][s] == 0;
            }
            most = fmax(most, (double)total / secs);
            lg_note("coalescing: coal%d got %ld count messages in %d s, the last %.0f ms after "
                    "the drive",
                    k, total, secs, c.last[k] ? (double)(c.last[k] - c.t1) / LG_MS : NAN);
        }
        if (joins_s > 0) { /* else nothing changed: no verdict */
            busiest = most;
            silent = none;
        }
        lg_note("coalescing: the shortest gap between two count messages of a channel: %.0f ms",
                c.min_gap == INT64_MAX ? NAN : (double)c.min_gap / LG_MS);
        lg_crowd_report_errors(&c.drive, "coalescing");
        lg_crowd_free(&c.drive);
        lg_crowd_free(&c.watch);
    }
    char what[200];
    snprintf(what, sizeof(what),
             "member count at %.0f joins/s and as many leaves into %d channels: count messages "
             "per channel per second (the busiest)",
             o->rate, COAL_CHS);
    lg_row("R7", what, "msg/s", 2, busiest, LG_NONE_BASE, NAN, "<= 1.0");
    lg_row("R7.2", "member count: seconds of a channel with changes but no count message", "s", 0,
           silent, LG_NONE_BASE, NAN, "<= 0");
    lg_row("R7.3", "member count: joins answered per second during the drive", "/s", 0, joins_s,
           LG_NONE_BASE, NAN, NULL);
}

int lg_rtm(const struct lg_opts *o)
{
    if (o->reps < 1 || o->reps > REPS_MAX)
        lg_die("--reps must be 1..%d", REPS_MAX);
    if (!o->plain.port)
        lg_die("rtm needs --plain PORT:PID (and --rtm PORT:PID for the plugin's side)");
    struct run u = {o, {&o->plain, o->rtm.port ? &o->rtm : NULL}};
    if (!u.b[PLUGIN])
        lg_note("rtm: no --rtm, the baseline alone (the plugin's columns read n/a)");
    peer_rows(&u);
    fan_rows(&u);
    churn_rows(&u);
    coal_rows(&u);
    return 0;
}
