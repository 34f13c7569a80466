/*
 * rtm-loadgen unrelated: plain pub/sub on topics outside the plugin's prefix
 * (lg_flow.c), through the broker with the plugin loaded and holding
 * `pending` pending invitations and `users` online users, versus the broker
 * without it with the same online users. Capacity is a closed loop;
 * latency an open loop at --load times the slower broker's median capacity.
 */
#include "lg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

struct side {
    const char *name;
    const struct lg_broker *b;
    struct lg_conn *users;
    struct lg_flow *flow;
};

/* Every user sends its share of the invitations to offline uids, with a
 * timeout of a day so that they stay pending. */
static void invite_offline(struct side *s, const char *prefix, int users, long pending)
{
    char topic[64], buf[128];
    for (long k = 0; k < pending; k++) {
        snprintf(topic, sizeof(topic), "%s/u/uo%ld/call", prefix, k);
        int len = snprintf(buf, sizeof(buf),
                           "{\"type\":\"invite\",\"id\":\"bg%ld\",\"timeout\":86400}", k);
        lg_publish(&s->users[k % users], topic, buf, len, 1, false);
        if (k % 200 == 199)
            lg_poll(0);
    }
    if (!lg_wait_acks(s->users, (size_t)users, 30000))
        lg_die("unrelated %s: invitations not acknowledged", s->name);
}

static void side_setup(struct side *s, const char *name, const char *prefix,
                       const struct lg_broker *b, const struct lg_opts *o)
{
    s->name = name;
    s->b = b;
    s->users = calloc((size_t)o->users, sizeof(*s->users));
    if (!s->users)
        lg_die("out of memory");
    size_t up = lg_open_many(s->users, (size_t)o->users, b->port, "uu", NULL, s, 64, 30000);
    if (up != (size_t)o->users)
        lg_die("unrelated %s: only %zu of %d users up", name, up, o->users);
    char fmt[40];
    snprintf(fmt, sizeof(fmt), "%s/u/%%s/call", prefix);
    if (!lg_subscribe_all(s->users, (size_t)o->users, "uu", fmt, 1, 30000))
        lg_die("unrelated %s: inbox subscriptions failed", name);
    invite_offline(s, prefix, o->users, o->pending);
    s->flow = lg_flow_new(b->port, o->pairs, "f");
}

static void wait_pending(const struct lg_opts *o)
{
    struct lg_monitor mon;
    if (!lg_monitor_open(&mon, o->rtm.port, "umon"))
        lg_die("unrelated: no stats monitor");
    const struct lg_stat *st = lg_monitor_wait(&mon, 0, o->pending, 15000);
    if (!st)
        lg_die("unrelated: the plugin never reported %ld live calls", o->pending);
    lg_note("unrelated: plugin holds %lld live calls, %lld users, %lld sessions", st->calls_live,
            st->users, st->sessions);
    lg_monitor_free(&mon);
}

enum { PLAIN, PLUGIN, CONTROL, SIDES };

/* One repetition on every side, the order rotating from one repetition to
 * the next so that a drift of the machine hits every side alike. */
static void one_rep(struct side *sides, int nsides, const struct lg_opts *o, int r, double rate,
                    struct lg_flow_rep res[SIDES][64], bool warmup)
{
    for (int k = 0; k < nsides; k++) {
        int i = (r + k) % nsides;
        if (rate > 0)
            lg_flow_latency_rep(sides[i].flow, sides[i].b, o->warmup, o->seconds, rate, &res[i][r]);
        else
            lg_flow_capacity(sides[i].flow, sides[i].b, o->warmup, o->seconds, o->window,
                             &res[i][r]);
    }
    const struct lg_flow_rep *p = &res[PLAIN][r], *q = &res[PLUGIN][r];
    const struct lg_flow_rep *c = nsides > CONTROL ? &res[CONTROL][r] : NULL;
    if (warmup)
        return;
    if (rate > 0)
        lg_note("unrelated latency rep %d at %.0f msg/s: plain p50 %.3f p99 %.3f ms (broker "
                "%.0f%%, loadgen %.0f%% busy, %ld preemptions), plugin p50 %.3f p99 %.3f ms "
                "(%.0f%%, %.0f%%, %ld), control p99 %.3f ms (%ld)",
                r, rate, p->p50_ns / LG_MS, p->p99_ns / LG_MS, p->broker_util * 100,
                p->lg_util * 100, p->preempted, q->p50_ns / LG_MS, q->p99_ns / LG_MS,
                q->broker_util * 100, q->lg_util * 100, q->preempted, c ? c->p99_ns / LG_MS : NAN,
                c ? c->preempted : -1L);
    else
        lg_note("unrelated capacity rep %d: plain %.0f msg/s (broker %.0f%%, loadgen %.0f%% busy, "
                "%.2f us/msg, %ld preemptions), plugin %.0f msg/s (%.0f%%, %.0f%%, %.2f us/msg, "
                "%ld), control %.0f msg/s (%ld)",
                r, p->rate, p->broker_util * 100, p->lg_util * 100, p->cpu_us, p->preempted,
                q->rate, q->broker_util * 100, q->lg_util * 100, q->cpu_us, q->preempted,
                c ? c->rate : NAN, c ? c->preempted : -1L);
}

/* Median over repetitions of a field (scaled), and of the per-rep ratios. */
static void flow_row(const char *key, const char *what, const char *unit, int digits,
                     const struct lg_flow_rep *pr, const struct lg_flow_rep *rr, int n, size_t off,
                     double scale, const char *target)
{
    double vp[64], vb[64], vr[64];
    for (int i = 0; i < n; i++) {
        vp[i] = *(const double *)((const char *)&rr[i] + off) * scale;
        vb[i] = *(const double *)((const char *)&pr[i] + off) * scale;
        vr[i] = vp[i] / vb[i];
    }
    lg_row(key, what, unit, digits, lg_median(vp, (size_t)n), lg_median(vb, (size_t)n),
           lg_median(vr, (size_t)n), target);
}

static void report(const struct lg_opts *o, double rate, struct lg_flow_rep cap[SIDES][64],
                   struct lg_flow_rep lat[SIDES][64], bool control)
{
    int n = o->reps;
    const size_t rate_at = offsetof(struct lg_flow_rep, rate);
    const size_t p99_at = offsetof(struct lg_flow_rep, p99_ns);
    flow_row("U1", "unrelated pub/sub: throughput (closed loop)", "msg/s", 0, cap[PLAIN],
             cap[PLUGIN], n, rate_at, 1, ">= 0.97x");
    flow_row("U2", "unrelated pub/sub: broker CPU per message", "us", 2, cap[PLAIN], cap[PLUGIN], n,
             offsetof(struct lg_flow_rep, cpu_us), 1, NULL);
    lg_row("U3", "unrelated pub/sub: offered load for the latency rows", "msg/s", 0, rate, rate,
           NAN, NULL);
    flow_row("U4", "unrelated pub/sub: latency p50", "ms", 3, lat[PLAIN], lat[PLUGIN], n,
             offsetof(struct lg_flow_rep, p50_ns), 1.0 / LG_MS, NULL);
    flow_row("U5", "unrelated pub/sub: latency p99", "ms", 3, lat[PLAIN], lat[PLUGIN], n, p99_at,
             1.0 / LG_MS, "<= 1.1x");
    if (!control)
        return;
    flow_row("U6", "A/A control, a 2nd broker without the plugin: throughput (noise floor of U1)",
             "msg/s", 0, cap[PLAIN], cap[CONTROL], n, rate_at, 1, NULL);
    flow_row("U7", "A/A control, a 2nd broker without the plugin: p99 (noise floor of U5)", "ms", 3,
             lat[PLAIN], lat[CONTROL], n, p99_at, 1.0 / LG_MS, NULL);
}

static void side_free(struct side *s, int users)
{
    lg_flow_free(s->flow);
    lg_free_all(s->users, (size_t)users);
    free(s->users);
}

int lg_unrelated(const struct lg_opts *o)
{
    if (o->reps < 1 || o->reps > 64)
        lg_die("--reps must be 1..64");
    struct side sides[SIDES] = {{0}};
    int nsides = o->control.port ? SIDES : CONTROL;
    side_setup(&sides[PLAIN], "plain", "plain", &o->plain, o);
    side_setup(&sides[PLUGIN], "plugin", "rtm", &o->rtm, o);
    if (nsides > CONTROL)
        side_setup(&sides[CONTROL], "control", "plain", &o->control, o);
    wait_pending(o);
    lg_note("unrelated: %d streams on f/t/<i> (QoS 0, 64 B), window %d, %d online users, %ld "
            "pending invitations (plugin side), %d reps of %.1f s%s",
            o->pairs, o->window, o->users, o->pending, o->reps, o->seconds,
            nsides > CONTROL ? ", with an A/A control broker" : "");
    static struct lg_flow_rep cap[SIDES][64], lat[SIDES][64], warm[SIDES][64];
    one_rep(sides, nsides, o, 0, 0, warm, true); /* warm-up, discarded */
    for (int r = 0; r < o->reps; r++)
        one_rep(sides, nsides, o, r, 0, cap, false);
    double caps[64], capr[64];
    for (int i = 0; i < o->reps; i++) {
        caps[i] = cap[PLAIN][i].rate;
        capr[i] = cap[PLUGIN][i].rate;
    }
    double slower = fmin(lg_median(caps, (size_t)o->reps), lg_median(capr, (size_t)o->reps));
    double rate = o->rate > 0 ? o->rate : o->load * slower;
    for (int r = 0; r < o->reps; r++)
        one_rep(sides, nsides, o, r, rate, lat, false);
    report(o, rate, cap, lat, nsides > CONTROL);
    for (int i = 0; i < nsides; i++)
        side_free(&sides[i], o->users);
    return 0;
}
