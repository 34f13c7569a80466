/*
 * rtm-loadgen lifecycle: callers and callees completing invite -> ringing ->
 * accept, through the plugin (rtm/u/{uid}/call) and, as the baseline, the
 * same payloads as plain pub/sub through the broker without it
 * (plain/u/{uid}/call). Pair i is caller <tag>a<i> and callee <tag>b<i>, each
 * subscribed to its own inbox at QoS 1; every message is published at QoS 1.
 *
 * The invite's content carries its publish time, the accept's response
 * carries the accept's publish time, so both latencies are measured without
 * tables. An ending goes to both inboxes (SPEC 4.2: the callee's other
 * devices stop ringing): the plugin publishes the callee's copy itself; the
 * baseline callee publishes its accept to both inboxes, so both sides carry
 * the same four messages per call (invite, ringing, accept twice).
 *
 * With --control, a second broker without the plugin runs the baseline's
 * latency repetitions too: how far its p99 ratios to the first (L9, L10)
 * move with no change at all is the noise floor of L6 and L8.
 */
#include "lg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONTENT_LEN 64
#define PACE_US     100
#define CALIBRATE_S 1.5 /* closed loop, to choose the latency phase's offered load */
#define REPS_MAX    64

enum mode { IDLE, CLOSED, OPEN };

struct pair {
    char to_callee[64]; /* the callee's inbox: where invites go */
    char to_caller[64]; /* the caller's inbox: where ringing and accept go */
    uint64_t seq;
    int in_flight;
};

struct life {
    const char *name;
    bool plain;   /* the baseline: the callee sends the ending's second copy */
    unsigned run; /* in every id: a second run against the same broker reuses none */
    const struct lg_broker *broker;
    int n;
    struct lg_conn *callers, *callees;
    struct pair *p;
    enum mode mode;
    int window;
    double rate;
    int64_t open_start;
    uint64_t open_sent;
    int next;
    bool counting;
    int64_t lat_from, lat_until;
    uint64_t completed, delivered, errors;
    int64_t started, finished;
    struct lg_samples inv, acc;
};

/* One repetition's numbers. */
struct life_rep {
    double calls_s, cpu_us, util, per_call;
    double inv50, inv99, acc50, acc99; /* ms */
    long preempted; /* involuntary switches of the broker and the load generator */
    double lg_util; /* the load generator's own CPU use */
};

/* Invites at `stamp`: now in the closed loop, the time the call was due in
 * the open loop (see lg_flow.c). */
static void start_call(struct life *l, int i, int64_t stamp)
{
    struct pair *p = &l->p[i];
    char buf[256], content[CONTENT_LEN + 1];
    lg_put19(content, stamp);
    memset(content + 19, 'x', CONTENT_LEN - 19);
    content[CONTENT_LEN] = '\0';
    int len = snprintf(buf, sizeof(buf),
                       "{\"type\":\"invite\",\"id\":\"c%x-%d-%llu\",\"content\":\"%s\","
                       "\"channel\":\"room-1\"}",
                       l->run, i, (unsigned long long)p->seq++, content);
    if (lg_publish(&l->callers[i], p->to_callee, buf, len, 1, false)) {
        p->in_flight++;
        l->started++;
    }
}

static bool in_window(const struct life *l, int64_t t)
{
    return t >= l->lat_from && t < l->lat_until;
}

static void callee_got(struct lg_conn *c, const struct mosquitto_message *m, int64_t now)
{
    struct life *l = c->ud;
    const char *pl = m->payload;
    size_t n = (size_t)m->payloadlen, tlen = 0, idlen = 0;
    const char *type = lg_field(pl, n, "type", &tlen);
    l->delivered += l->counting;
    if (!type || tlen < 2 || type[0] != 'i')
        return; /* the copy of our own accept in our inbox */
    int64_t sent = lg_field_ll(pl, n, "content", 0);
    if (in_window(l, sent))
        lg_samples_add(&l->inv, now - sent);
    const char *id = lg_field(pl, n, "id", &idlen);
    char buf[160], stamp[20];
    const char *to = l->p[c->idx].to_caller;
    int len = snprintf(buf, sizeof(buf), "{\"type\":\"ringing\",\"id\":\"%.*s\"}", (int)idlen, id);
    lg_publish(c, to, buf, len, 1, false);
    lg_put19(stamp, lg_now_ns());
    len = snprintf(buf, sizeof(buf), "{\"type\":\"accept\",\"id\":\"%.*s\",\"response\":\"%.19s\"}",
                   (int)idlen, id, stamp);
    lg_publish(c, to, buf, len, 1, false);
    if (l->plain)
        lg_publish(c, l->p[c->idx].to_callee, buf, len, 1, false);
}

static void caller_got(struct lg_conn *c, const struct mosquitto_message *m, int64_t now)
{
    struct life *l = c->ud;
    const char *pl = m->payload;
    size_t n = (size_t)m->payloadlen, tlen = 0;
    const char *type = lg_field(pl, n, "type", &tlen);
    l->delivered += l->counting;
    if (!type || tlen < 2 || (type[0] == 'r' && type[1] == 'i'))
        return; /* ringing */
    if (type[0] == 'a') {
        int64_t sent = lg_field_ll(pl, n, "response", 0);
        if (in_window(l, sent))
            lg_samples_add(&l->acc, now - sent);
        l->completed += l->counting;
    } else if (l->errors++ < 3) {
        lg_note("lifecycle %s: unexpected %.*s", l->name, m->payloadlen, pl);
    }
    l->p[c->idx].in_flight--;
    l->finished++;
    if (l->mode == CLOSED) {
        while (l->p[c->idx].in_flight < l->window)
            start_call(l, c->idx, now);
    }
}

static void life_setup(struct life *l, const char *name, const char *prefix,
                       const struct lg_broker *b, int pairs)
{
    memset(l, 0, sizeof(*l));
    l->name = name;
    l->plain = strcmp(prefix, "plain") == 0;
    l->run = (unsigned)(lg_now_ns() / 1000) & 0xffffffu;
    l->broker = b;
    l->n = pairs;
    l->callers = calloc((size_t)pairs, sizeof(*l->callers));
    l->callees = calloc((size_t)pairs, sizeof(*l->callees));
    l->p = calloc((size_t)pairs, sizeof(*l->p));
    if (!l->callers || !l->callees || !l->p)
        lg_die("out of memory");
    for (int i = 0; i < pairs; i++) {
        snprintf(l->p[i].to_callee, sizeof(l->p[i].to_callee), "%s/u/lcb%d/call", prefix, i);
        snprintf(l->p[i].to_caller, sizeof(l->p[i].to_caller), "%s/u/lca%d/call", prefix, i);
    }
    char fmt[40];
    snprintf(fmt, sizeof(fmt), "%s/u/%%s/call", prefix);
    size_t up = lg_open_many(l->callers, (size_t)pairs, b->port, "lca", caller_got, l, 64, 10000);
    up += lg_open_many(l->callees, (size_t)pairs, b->port, "lcb", callee_got, l, 64, 10000);
    if (up != 2 * (size_t)pairs)
        lg_die("lifecycle %s: only %zu of %d connections up", name, up, 2 * pairs);
    if (!lg_subscribe_all(l->callers, (size_t)pairs, "lca", fmt, 1, 10000) ||
        !lg_subscribe_all(l->callees, (size_t)pairs, "lcb", fmt, 1, 10000))
        lg_die("lifecycle %s: inbox subscriptions failed", name);
}

static void life_free(struct life *l)
{
    lg_free_all(l->callers, (size_t)l->n);
    lg_free_all(l->callees, (size_t)l->n);
    lg_samples_free(&l->inv);
    lg_samples_free(&l->acc);
    free(l->callers);
    free(l->callees);
    free(l->p);
}

static void pump(struct life *l, int64_t now)
{
    if (l->mode != OPEN)
        return;
    double due = (double)(now - l->open_start) * l->rate / (double)LG_NS;
    int sends = 0;
    while ((double)l->open_sent < due && sends++ < 2000) {
        start_call(l, l->next, l->open_start + (int64_t)((double)l->open_sent * LG_NS / l->rate));
        l->next = (l->next + 1) % l->n;
        l->open_sent++;
    }
}

static void run_for(struct life *l, double secs)
{
    int64_t end = lg_now_ns() + (int64_t)(secs * LG_NS);
    while (lg_now_ns() < end) {
        lg_poll_us(PACE_US);
        pump(l, lg_now_ns());
    }
}

static void drain(struct life *l)
{
    l->mode = IDLE;
    int64_t deadline = lg_now_ns() + 10 * LG_NS;
    while (l->finished < l->started && lg_now_ns() < deadline)
        lg_poll(1);
    if (l->finished < l->started)
        lg_note("lifecycle %s: %lld calls never completed", l->name,
                (long long)(l->started - l->finished));
    l->started = l->finished = 0;
    for (int i = 0; i < l->n; i++)
        l->p[i].in_flight = 0;
}

/* One repetition's numbers from its window (ns) and the broker's CPU (ns). */
static void summarise(struct life *l, double window, double cpu, struct life_rep *out)
{
    out->calls_s = (double)l->completed * LG_NS / window;
    out->cpu_us = l->completed ? cpu / 1000.0 / (double)l->completed : NAN;
    out->util = cpu / window;
    out->per_call = l->completed ? (double)l->delivered / (double)l->completed : NAN;
    out->inv50 = lg_pct_ns(&l->inv, 50) / LG_MS;
    out->inv99 = lg_pct_ns(&l->inv, 99) / LG_MS;
    out->acc50 = lg_pct_ns(&l->acc, 50) / LG_MS;
    out->acc99 = lg_pct_ns(&l->acc, 99) / LG_MS;
}

/* Runs one repetition: closed loop (rate <= 0) or open loop at `rate`. */
static void life_rep(struct life *l, const struct lg_opts *o, double rate, double secs,
                     struct life_rep *out)
{
    l->mode = rate > 0 ? OPEN : CLOSED;
    l->window = o->window;
    l->rate = rate;
    l->open_start = lg_now_ns();
    l->open_sent = 0;
    if (l->mode == CLOSED) {
        for (int i = 0; i < l->n; i++)
            for (int k = 0; k < l->window; k++)
                start_call(l, i, lg_now_ns());
    }
    run_for(l, o->warmup);
    lg_samples_clear(&l->inv);
    lg_samples_clear(&l->acc);
    l->completed = l->delivered = 0;
    long pre0 = lg_preempted(l->broker->pid) + lg_preempted(0);
    int64_t self0 = lg_cpu_ns(0), cpu0 = lg_cpu_ns(l->broker->pid), t0 = lg_now_ns();
    l->lat_from = t0;
    l->lat_until = INT64_MAX;
    l->counting = true;
    run_for(l, secs);
    int64_t t1 = lg_now_ns(), cpu1 = lg_cpu_ns(l->broker->pid);
    out->preempted = lg_preempted(l->broker->pid) + lg_preempted(0) - pre0;
    out->lg_util = (double)(lg_cpu_ns(0) - self0) / (double)(t1 - t0);
    l->counting = false;
    l->lat_until = t1;
    drain(l);
    summarise(l, (double)(t1 - t0), (double)(cpu1 - cpu0), out);
}

static void note_rep(const char *kind, const char *name, int r, const struct life_rep *x)
{
    lg_note("lifecycle %s %-6s rep %d: %.0f calls/s, broker %.0f%% (loadgen %.0f%%) busy, %.1f us "
            "broker CPU per call, %.2f deliveries per call, invite p50 %.3f p99 %.3f ms, accept "
            "p50 %.3f p99 %.3f ms, %ld preemptions",
            kind, name, r, x->calls_s, x->util * 100, x->lg_util * 100, x->cpu_us, x->per_call,
            x->inv50, x->inv99, x->acc50, x->acc99, x->preempted);
}

/* The brokers of a run: the baseline, the plugin's, and the optional A/A
 * control (a second baseline); out[k] holds side k's repetitions. */
enum side { PLAIN, RTM, CONTROL, SIDES };

static const char *const side_name[SIDES] = {"plain", "plugin", "control"};

/* The brokers' order in repetition r: alternating for two, and for three
 * each of the six orders in turn, so that no broker always follows the
 * same one (and inherits what it left behind) and a drift of the machine
 * hits them alike. */
static int side_at(int nsides, int r, int k)
{
    static const int orders[6][SIDES] = {{0, 1, 2}, {1, 2, 0}, {2, 0, 1},
                                         {0, 2, 1}, {2, 1, 0}, {1, 0, 2}};
    return nsides == SIDES ? orders[r % 6][k] : (r + k) % nsides;
}

static void run_reps(struct life *const *sides, int nsides, const struct lg_opts *o, double rate,
                     struct life_rep (*out)[REPS_MAX])
{
    const char *kind = rate > 0 ? "latency " : "capacity";
    for (int r = 0; r < o->reps; r++) {
        for (int k = 0; k < nsides; k++) {
            int side = side_at(nsides, r, k);
            life_rep(sides[side], o, rate, o->seconds, &out[side][r]);
        }
        for (int side = 0; side < nsides; side++)
            note_rep(kind, side_name[side], r, &out[side][r]);
    }
}

#define FIELD_AT(reps, i, off) (*(const double *)((const char *)&(reps)[i] + (off)))

/* Median of a field over the repetitions, and the median of the per-rep
 * ratios plugin / baseline. */
static void medians(const struct life_rep *pr, const struct life_rep *rr, int n, size_t off,
                    double *p, double *b, double *ratio)
{
    double vp[REPS_MAX], vb[REPS_MAX], vr[REPS_MAX];
    for (int i = 0; i < n; i++) {
        vp[i] = FIELD_AT(rr, i, off);
        vb[i] = FIELD_AT(pr, i, off);
        vr[i] = vp[i] / vb[i];
    }
    *p = lg_median(vp, (size_t)n);
    *b = lg_median(vb, (size_t)n);
    *ratio = lg_median(vr, (size_t)n);
}

static void row(const char *key, const char *what, const char *unit, int digits,
                const struct life_rep *pr, const struct life_rep *rr, int n, size_t off,
                const char *target)
{
    double p, b, ratio;
    medians(pr, rr, n, off, &p, &b, &ratio);
    lg_row(key, what, unit, digits, p, b, ratio, target);
}

static void report(const struct lg_opts *o, double rate, const struct life_rep *cp,
                   const struct life_rep *cr, struct life_rep (*lat)[REPS_MAX], bool control)
{
    int n = o->reps;
    const struct life_rep *lp = lat[PLAIN], *lr = lat[RTM], *la = lat[CONTROL];
    row("L1", "lifecycle: completed calls/s (closed loop)", "calls/s", 0, cp, cr, n,
        offsetof(struct life_rep, calls_s), ">= 0.8x");
    row("L2", "lifecycle: broker CPU per completed call", "us", 1, cp, cr, n,
        offsetof(struct life_rep, cpu_us), NULL);
    row("L3", "lifecycle: messages delivered per completed call", "msgs", 2, cp, cr, n,
        offsetof(struct life_rep, per_call), NULL);
    lg_row("L4", "lifecycle: offered load for the latency rows", "calls/s", 0, rate, rate, NAN,
           NULL);
    row("L5", "lifecycle: invite publish -> received, p50", "ms", 3, lp, lr, n,
        offsetof(struct life_rep, inv50), NULL);
    row("L6", "lifecycle: invite publish -> received, p99", "ms", 3, lp, lr, n,
        offsetof(struct life_rep, inv99), "<= 1.5x");
    row("L7", "lifecycle: accept publish -> received by caller, p50", "ms", 3, lp, lr, n,
        offsetof(struct life_rep, acc50), NULL);
    row("L8", "lifecycle: accept publish -> received by caller, p99", "ms", 3, lp, lr, n,
        offsetof(struct life_rep, acc99), "<= 1.5x");
    if (!control)
        return;
    row("L9", "A/A control, a 2nd broker without the plugin: invite p99 (noise floor of L6)", "ms",
        3, lp, la, n, offsetof(struct life_rep, inv99), NULL);
    row("L10", "A/A control, a 2nd broker without the plugin: accept p99 (noise floor of L8)", "ms",
        3, lp, la, n, offsetof(struct life_rep, acc99), NULL);
}

int lg_lifecycle(const struct lg_opts *o)
{
    if (o->reps < 1 || o->reps > REPS_MAX)
        lg_die("--reps must be 1..%d", REPS_MAX);
    struct life plain, rtm, control;
    life_setup(&plain, "plain", "plain", &o->plain, o->pairs);
    life_setup(&rtm, "plugin", "rtm", &o->rtm, o->pairs);
    bool aa = o->control.port != 0;
    if (aa)
        life_setup(&control, "control", "plain", &o->control, o->pairs);
    struct life *const sides[SIDES] = {&plain, &rtm, &control};
    lg_note("lifecycle: %d pairs, window %d calls per caller (closed loop), %d reps of %.1f s "
            "after %.1f s warm-up",
            o->pairs, o->window, o->reps, o->seconds, o->warmup);
    /* Latency first, at a rate from a short closed-loop calibration (which
     * also warms both up): an ended call is remembered for 60 s, so the
     * capacity repetitions' calls would expire during a latency phase
     * after them, at four times the rate the latency phase makes calls. */
    static struct life_rep cap[SIDES][REPS_MAX], lat[SIDES][REPS_MAX];
    struct life_rep cal_p, cal_r, cal_c;
    life_rep(&plain, o, 0, CALIBRATE_S, &cal_p);
    life_rep(&rtm, o, 0, CALIBRATE_S, &cal_r);
    if (aa) /* warmed up like the other two; its throughput is not used */
        life_rep(&control, o, 0, CALIBRATE_S, &cal_c);
    double rate = o->rate > 0 ? o->rate : o->load * fmin(cal_p.calls_s, cal_r.calls_s);
    lg_note("lifecycle: latency at %.0f calls/s offered (%s)", rate,
            o->rate > 0 ? "--rate" : "--load x the slower broker's calibration throughput");
    run_reps(sides, aa ? SIDES : CONTROL, o, rate, lat);
    run_reps(sides, CONTROL, o, 0, cap); /* capacity: no control */
    report(o, rate, cap[PLAIN], cap[RTM], lat, aa);
    life_free(&plain);
    life_free(&rtm);
    if (aa)
        life_free(&control);
    return 0;
}
