/*
 * rtm-loadgen push: --count offline users pd<i>, each with one registered
 * device, are invited at once (paced at 10,000 invites/s) by online callers
 * pc<j>, with the mock JPush answering every push after --delay-ms. Unrelated
 * pub/sub (lg_flow.c, open loop) runs all along; its latency during each
 * burst (first invite to the last `pushed` event) is compared with a quiet
 * window of the same broker just before it, and a second quiet window of the
 * same length after the burst has settled is compared with the first: that
 * A/A control is the noise floor of the burst/quiet ratio. Both ratios are
 * medians of per-round ratios (each round's windows are minutes apart at
 * most), so one window disturbed by another process does not decide them.
 * The mock's own records give the push rate: requests / (last request -
 * first invite).
 * The broker main thread's run-queue wait (schedstat: runnable, not running)
 * shows whether anything else took its CPU during the burst. Each round ends
 * with two controls, each measured over a window as long as the push burst:
 * the same burst of invitations to --count offline users pn<i> without
 * devices (what the invitations cost without any push), then as many plain
 * QoS 1 messages of the same size at the same pace to a topic outside rtm/
 * that nobody subscribes to (what any such burst costs the broker).
 */
#include "lg.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#define PACE_US     100
#define INVITE_RATE 10000 /* invitations per second in a burst */

/* The windows of a round whose unrelated latency is measured; the last
 * three are also the kinds of burst. */
enum window {
    W_QUIET,   /* before the burst */
    W_BURST,   /* invitations to users with a device: pushed */
    W_CONTROL, /* quiet again, once the burst has settled: A/A */
    W_NOPUSH,  /* the same invitations to users without devices */
    W_PLAIN,   /* as many plain messages, at the same pace */
    W_COUNT
};

static const char *const window_name[W_COUNT] = {"quiet", "during the burst", "in the A/A control",
                                                 "during the burst without push",
                                                 "during the plain burst"};

struct push {
    const struct lg_opts *o;
    struct lg_conn *callers;
    int nc;
    struct lg_monitor mon;
    struct lg_flow *flow;
    int round;
    long pushed;
    int64_t last_pushed;
    int64_t *pub_ns;
    struct lg_samples push_lat;
    struct lg_samples win[W_COUNT]; /* unrelated latency, pooled over rounds */
    /* Each round's p99 ratio of each window to its quiet one (NaN when a
     * window had no samples), and of the push burst to the burst without
     * push: the rows report their medians. */
    double ratio[W_COUNT][64], push_own[64];
    int nratios;
    /* Broker CPU over the quiet and burst windows: wall, main thread (on CPU
     * and waiting for it), others. */
    int64_t quiet_ns, quiet_main, quiet_wait, burst_ns, burst_main, burst_wait, burst_threads;
    long pushes, requests;
    int64_t mock_cpu;    /* the mock's CPU over the bursts, ns (-1: no pid) */
    long long overflows; /* listen queue overflows over the bursts */
};

/* The broker's CPU at one moment: main thread on CPU, main thread runnable
 * but waiting for a CPU, its other threads on CPU (ns). */
struct cpu_mark {
    int64_t at, main, wait, threads;
};

/* The second field of the main thread's schedstat: time spent runnable on
 * a run queue, waiting for the CPU; -1 when unreadable. */
static int64_t runq_wait_ns(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", pid, pid);
    FILE *f = fopen(path, "r");
    long long run = -1, wait = -1;
    if (f) {
        if (fscanf(f, "%lld %lld", &run, &wait) != 2)
            wait = -1;
        fclose(f);
    }
    return wait;
}

static struct cpu_mark cpu_mark(int pid)
{
    struct cpu_mark m = {lg_now_ns(), lg_cpu_ns(pid), runq_wait_ns(pid), lg_threads_cpu_ns(pid)};
    return m;
}

/* --- the mock's control API: one blocking HTTP/1.1 request on loopback -------------- */

static bool send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

static char *read_all(int fd)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    for (ssize_t n; buf && (n = read(fd, buf + len, cap - len - 1)) > 0;) {
        len += (size_t)n;
        if (cap - len < 4096) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf)
        buf[len] = '\0';
    return buf;
}

/* The body of the answer, or NULL unless the status is 200. */
static char *http(int port, const char *method, const char *path, const char *body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char req[512];
    int len = snprintf(req, sizeof(req),
                       "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                       method, path, strlen(body), body);
    char *answer = NULL;
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        send_all(fd, req, (size_t)len))
        answer = read_all(fd);
    if (fd >= 0)
        close(fd);
    char *start = answer ? strstr(answer, "\r\n\r\n") : NULL;
    if (!start || strncmp(answer + 8, " 200", 4) != 0) {
        free(answer);
        return NULL;
    }
    char *out = strdup(start + 4);
    free(answer);
    return out;
}

static void mock_call(int port, const char *method, const char *path, const char *body)
{
    char *r = http(port, method, path, body);
    if (!r)
        lg_die("mock JPush on port %d: %s %s failed", port, method, path);
    free(r);
}

/* Forgets the mock's records and sets its answer delay again: a reset also
 * forgets the behaviour (the mock then answers at once). */
static void mock_reset(const struct lg_opts *o)
{
    char behaviour[64];
    snprintf(behaviour, sizeof(behaviour), "{\"delay_ms\":%d}", o->delay_ms);
    mock_call(o->mock_port, "POST", "/_mock/reset", "");
    mock_call(o->mock_port, "POST", "/_mock/behaviour", behaviour);
}

/* Requests the mock recorded, and the time of the last one (Unix seconds). */
static long mock_requests(int port, double *last)
{
    char *body = http(port, "GET", "/_mock/requests", "");
    cJSON *list = body ? cJSON_Parse(body) : NULL;
    free(body);
    long n = 0;
    *last = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, list)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "time");
        n++;
        if (cJSON_IsNumber(t) && t->valuedouble > *last)
            *last = t->valuedouble;
    }
    cJSON_Delete(list);
    return n;
}

/* --- setup ------------------------------------------------------------------------ */

static void caller_got(struct lg_conn *c, const struct mosquitto_message *m, int64_t now)
{
    struct push *p = c->ud;
    size_t tlen = 0, idlen = 0;
    const char *type = lg_field(m->payload, (size_t)m->payloadlen, "type", &tlen);
    const char *id = lg_field(m->payload, (size_t)m->payloadlen, "id", &idlen);
    if (!type || type[0] != 'p' || !id || id[0] != 'j')
        return;
    char *x = NULL;
    long round = strtol(id + 1, &x, 10), k = x && *x == 'x' ? strtol(x + 1, NULL, 10) : -1;
    if (round != p->round || k < 0 || k >= p->o->count)
        return;
    p->pushed++;
    p->last_pushed = now;
    lg_samples_add(&p->push_lat, now - p->pub_ns[k]);
}

static void register_devices(struct push *p)
{
    long n = p->o->count;
    struct lg_conn *us = calloc((size_t)n, sizeof(*us));
    if (!us)
        lg_die("out of memory");
    if (lg_open_many(us, (size_t)n, p->o->rtm.port, "pd", NULL, NULL, 64, 60000) != (size_t)n)
        lg_die("push: device owners could not connect");
    char topic[64], buf[128];
    for (long i = 0; i < n; i++) {
        snprintf(topic, sizeof(topic), "rtm/u/pd%ld/devices/d0", i);
        int len =
            snprintf(buf, sizeof(buf),
                     "{\"provider\":\"jpush\",\"platform\":\"android\",\"token\":\"tok%ld\"}", i);
        lg_publish(&us[i], topic, buf, len, 1, true);
    }
    if (!lg_wait_acks(us, (size_t)n, 30000))
        lg_die("push: registrations not acknowledged");
    for (long i = 0; i < n; i++)
        lg_close(&us[i]);
    lg_pump(500);
    lg_free_all(us, (size_t)n);
    free(us);
    int64_t deadline = lg_now_ns() + 15 * LG_NS;
    const struct lg_stat *st = lg_monitor_last(&p->mon);
    while ((!st || st->devices < n || st->sessions > p->nc + 1) && lg_now_ns() < deadline) {
        lg_poll(10);
        st = lg_monitor_last(&p->mon);
    }
    if (!st || st->devices < n)
        lg_die("push: the plugin holds %lld devices, not %ld", st ? st->devices : -1, n);
}

static void setup(struct push *p, const struct lg_opts *o)
{
    memset(p, 0, sizeof(*p));
    p->o = o;
    p->nc = o->pairs;
    p->callers = calloc((size_t)p->nc, sizeof(*p->callers));
    p->pub_ns = calloc((size_t)o->count, sizeof(*p->pub_ns));
    if (!p->callers || !p->pub_ns)
        lg_die("out of memory");
    mock_reset(o);
    if (!lg_monitor_open(&p->mon, o->rtm.port, "jmon"))
        lg_die("push: no stats monitor");
    if (lg_open_many(p->callers, (size_t)p->nc, o->rtm.port, "pc", caller_got, p, 64, 10000) !=
            (size_t)p->nc ||
        !lg_subscribe_all(p->callers, (size_t)p->nc, "pc", "rtm/u/%s/call", 0, 10000))
        lg_die("push: callers not ready");
    register_devices(p);
    p->flow = lg_flow_new(o->rtm.port, 10, "g");
}

/* --- one round ---------------------------------------------------------------------- */

static void run_until(struct push *p, int64_t end, bool (*done)(const struct push *))
{
    while (lg_now_ns() < end && !(done && done(p))) {
        lg_poll_us(PACE_US);
        lg_flow_pump(p->flow, lg_now_ns());
    }
}

static bool all_pushed(const struct push *p)
{
    return p->pushed >= p->o->count;
}

/* Sends burst `kind` (W_BURST, W_NOPUSH or W_PLAIN): invitations to pd<k>
 * (with a device: pushed) or pn<k> (none: not pushed), or plain messages of
 * the same size to bench/burst/<k>; the k-th at k / INVITE_RATE s from the
 * first: by the clock, because a poll returns as soon as any of the
 * unrelated traffic arrives. Returns how long sending took, ns. */
static int64_t send_burst(struct push *p, enum window kind)
{
    char topic[64], buf[128];
    int64_t start = lg_now_ns();
    for (long k = 0; k < p->o->count;) {
        int64_t now = lg_now_ns();
        long due = (long)((now - start) * INVITE_RATE / LG_NS) + 1;
        for (; k < due && k < p->o->count; k++) {
            if (kind == W_PLAIN)
                snprintf(topic, sizeof(topic), "bench/burst/%ld", k);
            else
                snprintf(topic, sizeof(topic), "rtm/u/p%c%ld/call", kind == W_BURST ? 'd' : 'n', k);
            int len = snprintf(buf, sizeof(buf),
                               "{\"type\":\"invite\",\"id\":\"%c%dx%ld\",\"timeout\":600}",
                               kind == W_BURST ? 'j' : 'n', p->round, k);
            if (kind == W_BURST)
                p->pub_ns[k] = now;
            lg_publish(&p->callers[k % p->nc], topic, buf, len, 1, false);
        }
        lg_poll_us(PACE_US);
        lg_flow_pump(p->flow, lg_now_ns());
    }
    return lg_now_ns() - start;
}

/* CPU and kernel counters at the start of the quiet window, at the start of
 * the burst, and at its end; when each window starts and ends, and how
 * long sending each burst took (ns). */
struct marks {
    struct cpu_mark quiet, burst, end;
    int64_t mock0;
    long long overflows0;
    int64_t from[W_COUNT], to[W_COUNT], sending[W_COUNT];
};

/* The p99 of `s` in ms (NaN when empty). */
static double p99_ms(struct lg_samples *s)
{
    return s->n ? (double)lg_pct(s, 99) / LG_MS : NAN;
}

/* The window a sample sent at `t` belongs to, or -1. */
static int window_of(const struct marks *m, int64_t t)
{
    for (int k = 0; k < W_COUNT; k++)
        if (t >= m->from[k] && t < m->to[k])
            return k;
    return -1;
}

/* Splits the round's samples into the windows, adds them to the pooled ones
 * and keeps the round's p99 ratios. */
static void classify(struct push *p, const struct marks *m)
{
    struct lg_samples *at = lg_flow_sent_at(p->flow), *lat = lg_flow_latency(p->flow);
    struct lg_samples w[W_COUNT];
    memset(w, 0, sizeof(w));
    for (size_t i = 0; i < at->n; i++) {
        int k = window_of(m, at->v[i]);
        if (k >= 0)
            lg_samples_add(&w[k], lat->v[i]);
    }
    char line[512];
    int used = snprintf(line, sizeof(line), "push round %d: unrelated p99", p->round);
    double q = p99_ms(&w[W_QUIET]);
    for (int k = 0; k < W_COUNT; k++) {
        for (size_t i = 0; i < w[k].n; i++)
            lg_samples_add(&p->win[k], w[k].v[i]);
        double v = p99_ms(&w[k]);
        p->ratio[k][p->nratios] = v / q;
        if (used > 0 && (size_t)used < sizeof(line))
            used += snprintf(line + used, sizeof(line) - (size_t)used, "%s %.3f ms %s (%.2fx)",
                             k ? "," : "", v, window_name[k], v / q);
        lg_samples_free(&w[k]);
    }
    p->push_own[p->nratios] = p->ratio[W_BURST][p->nratios] / p->ratio[W_NOPUSH][p->nratios];
    p->nratios++;
    lg_note("%s", line);
}

/* The median of the ratios that are numbers. */
static double median_ratio(const double *v, int n)
{
    double ok[64];
    size_t m = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]))
            ok[m++] = v[i];
    return lg_median(ok, m);
}

/* Run-queue wait since `from`, ns; -1 when the broker's schedstat is not
 * readable (it then stays -1). */
static int64_t wait_delta(int64_t sum, const struct cpu_mark *from, const struct cpu_mark *to)
{
    return sum >= 0 && from->wait >= 0 && to->wait >= 0 ? sum + to->wait - from->wait : -1;
}

/* Adds one round's CPU and counters to the totals; returns the round's
 * listen overflows. */
static long long account(struct push *p, const struct marks *m)
{
    const struct lg_opts *o = p->o;
    p->quiet_ns += m->burst.at - m->quiet.at;
    p->quiet_main += m->burst.main - m->quiet.main;
    p->quiet_wait = wait_delta(p->quiet_wait, &m->quiet, &m->burst);
    p->burst_ns += m->end.at - m->burst.at;
    p->burst_main += m->end.main - m->burst.main;
    p->burst_wait = wait_delta(p->burst_wait, &m->burst, &m->end);
    p->burst_threads += m->end.threads - m->burst.threads;
    p->pushes += p->pushed;
    int64_t mock1 = m->mock0 >= 0 ? lg_proc_cpu_ns(o->mock_pid) : -1;
    p->mock_cpu =
        m->mock0 >= 0 && mock1 >= 0 && p->mock_cpu >= 0 ? p->mock_cpu + mock1 - m->mock0 : -1;
    long long overflows = lg_listen_overflows() - m->overflows0;
    p->overflows += overflows;
    return overflows;
}

/* Window `kind`, as long as the push burst was, with its burst (if any)
 * sent at its start; then lets it settle. */
static void control_window(struct push *p, struct marks *m, enum window kind)
{
    m->from[kind] = lg_now_ns();
    m->to[kind] = m->from[kind] + (m->to[W_BURST] - m->from[W_BURST]);
    m->sending[kind] = send_burst(p, kind);
    run_until(p, m->to[kind], NULL);
    run_until(p, lg_now_ns() + 500 * LG_MS, NULL);
}

static double run_round(struct push *p)
{
    const struct lg_opts *o = p->o;
    struct marks m;
    memset(&m, 0, sizeof(m));
    mock_reset(o);
    run_until(p, lg_now_ns() + 300 * LG_MS, NULL); /* settle after the blocking call */
    m.quiet = cpu_mark(o->rtm.pid);
    lg_flow_measure(p->flow, m.quiet.at);
    run_until(p, m.quiet.at + (int64_t)(o->seconds * LG_NS), NULL);
    m.burst = cpu_mark(o->rtm.pid);
    m.from[W_QUIET] = m.quiet.at;
    m.to[W_QUIET] = m.from[W_BURST] = m.burst.at;
    double wall_b0 = (double)lg_wall_ms() / 1000.0;
    m.mock0 = o->mock_pid ? lg_proc_cpu_ns(o->mock_pid) : -1;
    m.overflows0 = lg_listen_overflows();
    p->pushed = 0;
    m.sending[W_BURST] = send_burst(p, W_BURST);
    run_until(p, m.burst.at + 30 * LG_NS, all_pushed);
    m.end = cpu_mark(o->rtm.pid);
    m.to[W_BURST] = (p->pushed ? p->last_pushed : m.end.at) + 1;
    long long overflows = account(p, &m);
    /* The A/A control: as long as the quiet window, once the burst has
     * settled (its last results drained, nothing queued in the broker). */
    run_until(p, lg_now_ns() + 500 * LG_MS, NULL);
    m.from[W_CONTROL] = lg_now_ns();
    m.to[W_CONTROL] = m.from[W_CONTROL] + (int64_t)(o->seconds * LG_NS);
    run_until(p, m.to[W_CONTROL], NULL);
    control_window(p, &m, W_NOPUSH);
    control_window(p, &m, W_PLAIN);
    lg_flow_end(p->flow, lg_now_ns());
    classify(p, &m);
    double last = 0;
    long reqs = mock_requests(o->mock_port, &last);
    double rate = reqs > 0 && last > wall_b0 ? (double)reqs / (last - wall_b0) : NAN;
    p->requests += reqs;
    lg_note("push round %d: bursts sent in %.1f ms (invitations), %.1f ms (without push), "
            "%.1f ms (plain); %ld of %ld pushed events in %.3f s; the mock got %ld requests, "
            "%.0f/s; %lld connections dropped by full listen queues",
            p->round, (double)m.sending[W_BURST] / LG_MS, (double)m.sending[W_NOPUSH] / LG_MS,
            (double)m.sending[W_PLAIN] / LG_MS, p->pushed, o->count,
            (double)(m.to[W_BURST] - m.from[W_BURST]) / LG_NS, reqs, rate, overflows);
    return rate;
}

static void print_rows(struct push *p, double *rates, int n)
{
    struct lg_samples *win = p->win;
    double b99 = p99_ms(&win[W_BURST]), q99 = p99_ms(&win[W_QUIET]);
    double b50 = win[W_BURST].n ? (double)lg_pct(&win[W_BURST], 50) / LG_MS : NAN;
    double q50 = win[W_QUIET].n ? (double)lg_pct(&win[W_QUIET], 50) / LG_MS : NAN;
    char what[128];
    snprintf(what, sizeof(what), "push: %ld offline callees, mock answering after %d ms: pushes/s",
             p->o->count, p->o->delay_ms);
    lg_row("J1", what, "push/s", 0, lg_median(rates, (size_t)n), LG_NONE_BASE, NAN, NULL);
    lg_row("J2", "push: unrelated pub/sub p50, during the burst vs quiet", "ms", 3, b50, q50, NAN,
           NULL);
    lg_row("J3", "push: unrelated pub/sub p99, during the burst vs quiet", "ms", 3, b99, q99,
           median_ratio(p->ratio[W_BURST], p->nratios), "<= 1.1x");
    lg_row("J4", "push: invite published -> pushed event, p99", "ms", 1,
           lg_pct_ns(&p->push_lat, 99) / LG_MS, LG_NONE_BASE, NAN, NULL);
    lg_row("J5", "push: broker main thread busy, during the burst vs quiet", "%", 0,
           100.0 * (double)p->burst_main / (double)p->burst_ns,
           100.0 * (double)p->quiet_main / (double)p->quiet_ns, NAN, NULL);
    lg_row("J6", "push: broker CPU of its other threads (HTTP worker) per push", "us", 0,
           p->pushes ? (double)p->burst_threads / 1000.0 / (double)p->pushes : NAN, LG_NONE_BASE,
           NAN, NULL);
    lg_row("J7", "push: the mock JPush's CPU per request it received (the mock, not the plugin)",
           "us", 0,
           p->mock_cpu >= 0 && p->requests ? (double)p->mock_cpu / 1000.0 / (double)p->requests
                                           : NAN,
           LG_NONE_BASE, NAN, NULL);
    lg_row("J8", "push: TCP connections dropped by a full listen queue during the bursts", "conns",
           0, (double)p->overflows, LG_NONE_BASE, NAN, NULL);
    lg_row("J9",
           "push: A/A control, unrelated pub/sub p99 in a 2nd quiet window after the burst vs "
           "quiet (noise floor of J3)",
           "ms", 3, p99_ms(&win[W_CONTROL]), q99, median_ratio(p->ratio[W_CONTROL], p->nratios),
           NULL);
    lg_row("J10",
           "push: broker main thread runnable but waiting for its CPU, during the burst vs "
           "quiet",
           "%", 1, p->burst_wait >= 0 ? 100.0 * (double)p->burst_wait / (double)p->burst_ns : NAN,
           p->quiet_wait >= 0 ? 100.0 * (double)p->quiet_wait / (double)p->quiet_ns : NAN, NAN,
           NULL);
    lg_row("J11",
           "push: unrelated pub/sub p99 during the same invitations to users without devices "
           "(no push) vs quiet",
           "ms", 3, p99_ms(&win[W_NOPUSH]), q99, median_ratio(p->ratio[W_NOPUSH], p->nratios),
           NULL);
    lg_row("J12",
           "push: unrelated pub/sub p99 during as many plain QoS 1 messages at the same pace "
           "(no plugin work) vs quiet",
           "ms", 3, p99_ms(&win[W_PLAIN]), q99, median_ratio(p->ratio[W_PLAIN], p->nratios), NULL);
    lg_row("J13",
           "push: what push itself adds, unrelated pub/sub p99 during the burst vs the same "
           "burst without push",
           "ms", 3, b99, p99_ms(&win[W_NOPUSH]), median_ratio(p->push_own, p->nratios), NULL);
}

int lg_push(const struct lg_opts *o)
{
    if (o->reps < 1 || o->reps > 64)
        lg_die("--reps must be 1..64");
    struct push p;
    setup(&p, o);
    struct lg_flow_rep cap;
    double rate = o->rate;
    if (rate <= 0) {
        lg_flow_capacity(p.flow, &o->rtm, o->warmup, 1.0, 8, &cap);
        rate = o->load * cap.rate;
    }
    lg_note("push: unrelated traffic at %.0f msg/s on 10 streams; %d rounds of %ld invitations "
            "after %.1f s quiet",
            rate, o->reps, o->count, o->seconds);
    lg_flow_open(p.flow, rate);
    run_until(&p, lg_now_ns() + (int64_t)(o->warmup * LG_NS), NULL);
    double rates[64];
    for (int r = 0; r < o->reps; r++) {
        p.round = r;
        rates[r] = run_round(&p);
    }
    lg_flow_stop(p.flow, 5000);
    lg_note("push: pooled samples: %zu quiet, %zu during bursts, %zu in the A/A control windows, "
            "%zu during bursts without push, %zu during plain bursts",
            p.win[W_QUIET].n, p.win[W_BURST].n, p.win[W_CONTROL].n, p.win[W_NOPUSH].n,
            p.win[W_PLAIN].n);
    print_rows(&p, rates, o->reps);
    lg_flow_free(p.flow);
    lg_monitor_free(&p.mon);
    lg_free_all(p.callers, (size_t)p.nc);
    free(p.callers);
    free(p.pub_ns);
    lg_samples_free(&p.push_lat);
    for (int k = 0; k < W_COUNT; k++)
        lg_samples_free(&p.win[k]);
    return 0;
}
