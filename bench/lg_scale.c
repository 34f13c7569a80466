/*
 * rtm-loadgen scale: --count pending invitations through the broker, then
 * let them all time out. Callers sc<i> (online, subscribed to their inboxes
 * for the failures) invite distinct offline uids sv<k> at a fixed --rate,
 * with a "timeout" long enough that all of them are pending for --idle
 * seconds after the last one is created, even when creation runs at only
 * two thirds of the rate. Invitation k's timeout is longer by (k % --spread)
 * creation spans, so the timers fire in --spread consecutive waves at
 * --rate / --spread each: every expiry publishes a failure to both inboxes,
 * and at 20,000 a second those deliveries alone fill the broker's core (the
 * run reports how busy it was), which would measure Mosquitto's queue
 * rather than the plugin's timers. Measured:
 *  - RSS (VmRSS) and, with plugin_opt_stats_heap, heap (heap_bytes) of the broker after
 *    creation minus after warm-up, per invitation;
 *  - TICK time from the plugin's stats while nothing is due;
 *  - timer lateness from the plugin's stats while they fire (the largest
 *    per-interval p99, an upper bound of the overall p99), and as the
 *    callers see it: failure received minus (invite published + timeout).
 */
#include "lg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PACE_US 100

struct scale {
    const struct lg_opts *o;
    struct lg_conn *callers;
    int n_callers;
    struct lg_monitor mon;
    int64_t *pub_ns; /* publish time of invitation k */
    long timeout_s;  /* of the first wave */
    long span_s;     /* the nominal creation time: the gap between two waves' timeouts */
    long failures;
    struct lg_samples late; /* client-observed lateness, ns */
    bool stats;             /* the plugin reports its stats every second */
};

static long timeout_of(const struct scale *s, long k)
{
    return s->timeout_s + (k % s->o->spread) * s->span_s;
}

static void caller_got(struct lg_conn *c, const struct mosquitto_message *m, int64_t now)
{
    struct scale *s = c->ud;
    size_t tlen = 0, idlen = 0;
    const char *type = lg_field(m->payload, (size_t)m->payloadlen, "type", &tlen);
    const char *id = lg_field(m->payload, (size_t)m->payloadlen, "id", &idlen);
    if (!type || type[0] != 'f' || !id || idlen < 3 || id[0] != 's')
        return;
    long k = strtol(id + 2, NULL, 10);
    if (k < 0 || k >= s->o->count)
        return;
    s->failures++;
    lg_samples_add(&s->late, now - (s->pub_ns[k] + timeout_of(s, k) * LG_NS));
}

static void setup(struct scale *s, const struct lg_opts *o)
{
    memset(s, 0, sizeof(*s));
    s->o = o;
    s->n_callers = o->pairs;
    s->callers = calloc((size_t)o->pairs, sizeof(*s->callers));
    s->pub_ns = calloc((size_t)o->count, sizeof(*s->pub_ns));
    if (!s->callers || !s->pub_ns)
        lg_die("out of memory");
    if (!lg_monitor_open(&s->mon, o->rtm.port, "smon"))
        lg_die("scale: no stats monitor on port %d", o->rtm.port);
    size_t up =
        lg_open_many(s->callers, (size_t)o->pairs, o->rtm.port, "sc", caller_got, s, 64, 10000);
    if (up != (size_t)o->pairs ||
        !lg_subscribe_all(s->callers, (size_t)o->pairs, "sc", "rtm/u/%s/call", 0, 10000))
        lg_die("scale: callers not ready");
}

/* Sends every invitation at the fixed rate; returns the publish time of the
 * first. */
static int64_t create_all(struct scale *s)
{
    char topic[64], buf[128];
    const struct lg_opts *o = s->o;
    int64_t start = lg_now_ns();
    long k = 0;
    while (k < o->count) {
        lg_poll_us(PACE_US);
        int64_t now = lg_now_ns();
        double due = (double)(now - start) * o->rate / (double)LG_NS;
        for (int burst = 0; k < o->count && (double)k < due && burst < 2000; burst++, k++) {
            snprintf(topic, sizeof(topic), "rtm/u/sv%08ld/call", k);
            int len = snprintf(buf, sizeof(buf),
                               "{\"type\":\"invite\",\"id\":\"sc%08ld\",\"timeout\":%ld}", k,
                               timeout_of(s, k));
            s->pub_ns[k] = now;
            lg_publish(&s->callers[k % s->n_callers], topic, buf, len, 1, false);
        }
    }
    return start;
}

struct tick_summary {
    long reports;
    double max_us, avg_us, late_p99, late_max, fired;
};

/* Summarises the stats reports received in [from, to). */
static void summarise(const struct lg_monitor *m, int64_t from, int64_t to, struct tick_summary *t)
{
    memset(t, 0, sizeof(*t));
    bool has = true;
    double avg_sum = 0;
    for (size_t i = 0; i < m->n; i++) {
        const struct lg_stat *st = &m->v[i];
        if (st->at_ns < from || st->at_ns >= to)
            continue;
        has &= st->has_tick;
        t->reports++;
        t->max_us = fmax(t->max_us, (double)st->tick_max_us);
        avg_sum += (double)st->tick_avg_us;
        t->fired += (double)st->timers_fired;
        if (st->timers_fired > 0) {
            t->late_p99 = fmax(t->late_p99, (double)st->timer_late_p99_ms);
            t->late_max = fmax(t->late_max, (double)st->timer_late_max_ms);
        }
    }
    t->avg_us = t->reports ? avg_sum / (double)t->reports : NAN;
    if (t->fired == 0)
        t->late_p99 = t->late_max = NAN;
    if (!has || t->reports == 0)
        t->max_us = t->avg_us = t->late_p99 = t->late_max = t->fired = NAN;
}

static void wait_fired(struct scale *s, int64_t deadline)
{
    int64_t last_misc = lg_now_ns();
    while (s->failures < s->o->count && lg_now_ns() < deadline) {
        lg_poll(5);
        if (lg_now_ns() - last_misc > 10 * LG_NS) {
            lg_misc(s->callers, (size_t)s->n_callers);
            last_misc = lg_now_ns();
        }
    }
}

static void label(char *buf, size_t size, long n)
{
    if (n >= 1000000 && n % 1000000 == 0)
        snprintf(buf, size, "%ldM", n / 1000000);
    else if (n >= 1000 && n % 1000 == 0)
        snprintf(buf, size, "%ldk", n / 1000);
    else
        snprintf(buf, size, "%ld", n);
}

static void print(const char *lbl, const char *suffix, const char *what, const char *unit,
                  int digits, double v, const char *target)
{
    char key[48], text[200];
    snprintf(key, sizeof(key), "S%s%s", lbl, suffix);
    snprintf(text, sizeof(text), "scale %s pending: %s", lbl, what);
    lg_row(key, text, unit, digits, v, LG_NONE_BASE, NAN, target);
}

/* What one run measured. */
struct result {
    long rss0, rss1;
    long long heap0, heap1; /* -1: no report */
    struct tick_summary idle, fire;
    double fire_util; /* the broker's CPU use while the timers fired */
};

/* Creates every invitation; returns when the plugin reports them all live. */
static int64_t create_and_count(struct scale *s, struct result *r)
{
    const struct lg_opts *o = s->o;
    int64_t t0 = create_all(s);
    if (!lg_wait_acks(s->callers, (size_t)s->n_callers, 60000))
        lg_die("scale: invitations not acknowledged");
    int64_t t_created = lg_now_ns();
    const struct lg_stat *st =
        s->stats ? lg_monitor_wait(&s->mon, t_created, o->count, 30000) : NULL;
    r->rss1 = lg_rss_kb(o->rtm.pid);
    r->heap1 = st ? st->heap_bytes : -1;
    double secs = (double)(t_created - t0) / LG_NS;
    lg_note("scale: created in %.1f s (%.0f/s); %lld live calls; RSS %ld kB; %.1f s left before "
            "the first is due",
            secs, (double)o->count / secs, st ? st->calls_live : -1, r->rss1,
            (double)(t0 + s->timeout_s * LG_NS - lg_now_ns()) / LG_NS);
    return t0;
}

/* Idle: the reports received from one interval after creation to the first
 * due time. Firing: every report from then until all failures arrived. */
static void idle_and_fire(struct scale *s, int64_t t0, struct result *r)
{
    int64_t t_created = lg_now_ns(), first_due = t0 + s->timeout_s * LG_NS;
    while (lg_now_ns() < first_due)
        lg_poll(5);
    summarise(&s->mon, t_created + 1100 * LG_MS, s->stats ? first_due : 0, &r->idle);
    int64_t cpu0 = lg_cpu_ns(s->o->rtm.pid), f0 = lg_now_ns();
    wait_fired(s, first_due + (s->o->spread * s->span_s * 3 + 30) * LG_NS);
    r->fire_util = (double)(lg_cpu_ns(s->o->rtm.pid) - cpu0) / (double)(lg_now_ns() - f0);
    if (s->stats)
        lg_monitor_wait(&s->mon, lg_now_ns() + 100 * LG_MS, -1, 3000); /* the last interval */
    summarise(&s->mon, first_due, s->stats ? INT64_MAX : 0, &r->fire);
    lg_note("scale: %ld of %ld failures received; %ld idle reports, %ld firing reports (%.0f "
            "timers fired)",
            s->failures, s->o->count, r->idle.reports, r->fire.reports, r->fire.fired);
}

static void report(struct scale *s, const struct result *r)
{
    char lbl[32];
    label(lbl, sizeof(lbl), s->o->count);
    double n = (double)s->o->count;
    print(lbl, "-1", "plugin memory per pending invitation (broker RSS delta)", "B", 0,
          r->rss0 > 0 && r->rss1 > 0 ? (double)(r->rss1 - r->rss0) * 1024 / n : NAN, "<= 256 B");
    /* Only from a broker with plugin_opt_stats_heap, which bench/run.sh
     * leaves off here: walking the heap every second would delay the
     * timers this run measures. bench/core_scale measures the heap. */
    if (r->heap0 >= 0 && r->heap1 >= 0)
        print(lbl, "-2", "broker heap per pending invitation (stats heap_bytes delta)", "B", 0,
              (double)(r->heap1 - r->heap0) / n, NULL);
    print(lbl, "-3", "TICK time when nothing is due, max", "us", 0, r->idle.max_us, "< 1000 us");
    print(lbl, "-4", "TICK time when nothing is due, average", "us", 1, r->idle.avg_us, NULL);
    print(lbl, "-5", "timer lateness p99 (plugin stats, worst interval)", "ms", 0, r->fire.late_p99,
          "<= 200 ms");
    print(lbl, "-6", "timer lateness max (plugin stats)", "ms", 0, r->fire.late_max, NULL);
    print(lbl, "-7", "timer lateness p99 seen by callers (failure received - due)", "ms", 1,
          lg_pct_ns(&s->late, 99) / LG_MS, NULL);
    print(lbl, "-8", "TICK time while timers fire, max", "us", 0, r->fire.max_us, NULL);
    char what[120];
    /* Ended calls are remembered for ring_timeout (60 s, SPEC 4): at 1M their deletions fall
     * inside the firing window too, and count in -5, -6, -8 and here. */
    snprintf(what, sizeof(what),
             "broker CPU busy while timers fire (%.0f expiries/s, with the deletions due)",
             s->o->rate / s->o->spread);
    print(lbl, "-9", what, "%", 0, r->fire_util * 100, NULL);
}

int lg_scale(const struct lg_opts *o)
{
    struct scale s;
    struct result r;
    setup(&s, o);
    if (o->spread < 1 || o->spread > 16)
        lg_die("--spread must be 1..16");
    s.span_s = (long)ceil((double)o->count / o->rate);
    s.timeout_s = (long)ceil((double)o->count / o->rate * 1.5 + o->idle + 2);
    const struct lg_stat *w = lg_monitor_wait(&s.mon, lg_now_ns() + LG_NS, -1, 5000);
    if (!w) {
        lg_note("scale: no stats report within 5 s (plugin_opt_stats_interval 1 expected): the "
                "TICK and plugin-side lateness rows are n/a");
    }
    s.stats = w != NULL;
    r.rss0 = lg_rss_kb(o->rtm.pid);
    r.heap0 = w ? w->heap_bytes : -1;
    lg_note("scale: %ld invitations at %.0f/s from %d callers, timeouts %ld s + 0..%d x %ld s; "
            "baseline RSS %ld kB",
            o->count, o->rate, o->pairs, s.timeout_s, o->spread - 1, s.span_s, r.rss0);
    int64_t t0 = create_and_count(&s, &r);
    idle_and_fire(&s, t0, &r);
    report(&s, &r);
    lg_monitor_free(&s.mon);
    lg_free_all(s.callers, (size_t)s.n_callers);
    free(s.callers);
    free(s.pub_ns);
    lg_samples_free(&s.late);
    return s.failures == o->count ? 0 : 1;
}
