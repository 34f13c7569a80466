/*
 * rtm-loadgen: pub/sub streams. Stream i is one publisher <tag>p<i> and one
 * subscriber <tag>s<i>, on <tag>/t/<i> at QoS 0 (lg_flow_new) or, as a peer
 * message (SPEC 8.1), on <prefix>/u/<tag>s<i>/msg/<tag>p<i> at any QoS
 * (lg_flow_new_peer). Payloads are 64 bytes carrying a monotonic send time,
 * so a delivery's latency is its receive time minus that. Closed loop
 * (capacity): each stream keeps `window` messages in flight, sending the
 * next one when one arrives. Open loop (latency): a fixed rate over all
 * streams, paced every 100 us; each message carries the time it was due,
 * not the time it went out, so a load generator held up (by a backlog of
 * deliveries after a broker stall, say) still counts the wait, as
 * independent clients would see it.
 */
#include "lg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAYLOAD_LEN  64
#define PACE_US      100
#define MAX_PER_PUMP 2000

enum mode { IDLE, CLOSED, OPEN };

struct stream {
    char topic[80];
    uint64_t sent, recvd;
};

struct lg_flow {
    int n;
    int qos;
    struct lg_conn *pubs, *subs;
    struct stream *st;
    enum mode mode;
    int window;
    double rate;
    int64_t open_start;
    uint64_t open_sent;
    int next;
    bool counting;
    int64_t lat_from, lat_until;
    uint64_t count;
    struct lg_samples sent_at, lat;
    char payload[PAYLOAD_LEN + 1];
};

static void send_one(struct lg_flow *f, int i, int64_t stamp)
{
    lg_put19(f->payload + 5, stamp);
    if (lg_publish(&f->pubs[i], f->st[i].topic, f->payload, PAYLOAD_LEN, f->qos, false))
        f->st[i].sent++;
}

static void refill(struct lg_flow *f, int i, int64_t now)
{
    struct stream *s = &f->st[i];
    while (s->sent - s->recvd < (uint64_t)f->window && f->pubs[i].fd >= 0)
        send_one(f, i, now);
}

static void on_delivery(struct lg_conn *c, const struct mosquitto_message *m, int64_t now)
{
    struct lg_flow *f = c->ud;
    if (m->payloadlen != PAYLOAD_LEN)
        return;
    f->st[c->idx].recvd++;
    int64_t sent = lg_field_ll(m->payload, PAYLOAD_LEN, "t", 0);
    if (f->counting)
        f->count++;
    if (sent >= f->lat_from && sent < f->lat_until) {
        lg_samples_add(&f->sent_at, sent);
        lg_samples_add(&f->lat, now - sent);
    }
    if (f->mode == CLOSED)
        refill(f, c->idx, now);
}

/* Without `prefix`: <tag>/t/<i>; with it, the peer topics (see above). */
static struct lg_flow *flow_new(int port, int streams, const char *tag, const char *prefix, int qos)
{
    struct lg_flow *f = calloc(1, sizeof(*f));
    if (!f)
        lg_die("out of memory");
    f->n = streams;
    f->qos = qos;
    f->pubs = calloc((size_t)streams, sizeof(*f->pubs));
    f->subs = calloc((size_t)streams, sizeof(*f->subs));
    f->st = calloc((size_t)streams, sizeof(*f->st));
    if (!f->pubs || !f->subs || !f->st)
        lg_die("out of memory");
    f->lat_from = f->lat_until = INT64_MAX;
    snprintf(f->payload, sizeof(f->payload), "{\"t\":%019d,\"p\":\"%032d\"}", 0, 0);
    char ids[40];
    snprintf(ids, sizeof(ids), "%sp", tag);
    size_t up = lg_open_many(f->pubs, (size_t)streams, port, ids, NULL, f, 64, 10000);
    snprintf(ids, sizeof(ids), "%ss", tag);
    up += lg_open_many(f->subs, (size_t)streams, port, ids, on_delivery, f, 64, 10000);
    if (up != 2 * (size_t)streams)
        lg_die("flow %s: only %zu of %d connections up on port %d", tag, up, 2 * streams, port);
    char filter[80];
    for (int i = 0; i < streams; i++) {
        char *topic = f->st[i].topic;
        if (prefix) {
            snprintf(topic, sizeof(f->st[i].topic), "%s/u/%ss%d/msg/%sp%d", prefix, tag, i, tag, i);
            snprintf(filter, sizeof(filter), "%s/u/%ss%d/msg/+", prefix, tag, i);
        } else {
            snprintf(topic, sizeof(f->st[i].topic), "%s/t/%d", tag, i);
            snprintf(filter, sizeof(filter), "%s", topic);
        }
        if (!lg_subscribe(&f->subs[i], filter, qos))
            lg_die("flow %s: subscribe failed", tag);
    }
    if (!lg_wait_subs(f->subs, (size_t)streams, 10000))
        lg_die("flow %s: no SUBACK", tag);
    return f;
}

struct lg_flow *lg_flow_new(int port, int streams, const char *tag)
{
    return flow_new(port, streams, tag, NULL, 0);
}

struct lg_flow *lg_flow_new_peer(int port, int streams, const char *tag, const char *prefix,
                                 int qos)
{
    return flow_new(port, streams, tag, prefix, qos);
}

void lg_flow_closed(struct lg_flow *f, int window)
{
    f->mode = CLOSED;
    f->window = window;
    int64_t now = lg_now_ns();
    for (int i = 0; i < f->n; i++)
        refill(f, i, now);
}

void lg_flow_open(struct lg_flow *f, double rate)
{
    f->mode = OPEN;
    f->rate = rate;
    f->open_start = lg_now_ns();
    f->open_sent = 0;
}

void lg_flow_pump(struct lg_flow *f, int64_t now)
{
    if (f->mode != OPEN)
        return;
    double due = (double)(now - f->open_start) * f->rate / (double)LG_NS;
    int sends = 0;
    while ((double)f->open_sent < due && sends++ < MAX_PER_PUMP) {
        send_one(f, f->next, f->open_start + (int64_t)((double)f->open_sent * LG_NS / f->rate));
        f->next = (f->next + 1) % f->n;
        f->open_sent++;
    }
}

static uint64_t in_flight(const struct lg_flow *f)
{
    uint64_t n = 0;
    for (int i = 0; i < f->n; i++)
        n += f->st[i].sent - f->st[i].recvd;
    return n;
}

void lg_flow_stop(struct lg_flow *f, int timeout_ms)
{
    f->mode = IDLE;
    int64_t deadline = lg_now_ns() + (int64_t)timeout_ms * LG_MS;
    while (in_flight(f) > 0 && lg_now_ns() < deadline)
        lg_poll(1);
}

void lg_flow_measure(struct lg_flow *f, int64_t from)
{
    f->counting = true;
    f->count = 0;
    f->lat_from = from;
    f->lat_until = INT64_MAX;
    lg_samples_clear(&f->sent_at);
    lg_samples_clear(&f->lat);
}

void lg_flow_end(struct lg_flow *f, int64_t until)
{
    f->counting = false;
    f->lat_until = until;
}

uint64_t lg_flow_count(const struct lg_flow *f)
{
    return f->count;
}

struct lg_samples *lg_flow_sent_at(struct lg_flow *f)
{
    return &f->sent_at;
}

struct lg_samples *lg_flow_latency(struct lg_flow *f)
{
    return &f->lat;
}

uint64_t lg_flow_lost(const struct lg_flow *f)
{
    return in_flight(f);
}

void lg_flow_free(struct lg_flow *f)
{
    lg_free_all(f->pubs, (size_t)f->n);
    lg_free_all(f->subs, (size_t)f->n);
    lg_samples_free(&f->sent_at);
    lg_samples_free(&f->lat);
    free(f->pubs);
    free(f->subs);
    free(f->st);
    free(f);
}

/* Polls and paces the flow for `ns`. */
static void run_for(struct lg_flow *f, int64_t ns)
{
    int64_t end = lg_now_ns() + ns;
    for (int64_t now = lg_now_ns(); now < end; now = lg_now_ns()) {
        lg_poll_us(PACE_US);
        lg_flow_pump(f, lg_now_ns());
    }
}

void lg_flow_capacity(struct lg_flow *f, const struct lg_broker *b, double warmup, double secs,
                      int window, struct lg_flow_rep *out)
{
    lg_flow_closed(f, window);
    run_for(f, (int64_t)(warmup * LG_NS));
    long pre0 = lg_preempted(b->pid) + lg_preempted(0);
    int64_t self0 = lg_cpu_ns(0), cpu0 = lg_cpu_ns(b->pid), t0 = lg_now_ns();
    lg_flow_measure(f, t0);
    run_for(f, (int64_t)(secs * LG_NS));
    int64_t t1 = lg_now_ns(), cpu1 = lg_cpu_ns(b->pid);
    out->preempted = lg_preempted(b->pid) + lg_preempted(0) - pre0;
    out->lg_util = (double)(lg_cpu_ns(0) - self0) / (double)(t1 - t0);
    lg_flow_end(f, t1);
    uint64_t n = lg_flow_count(f);
    lg_flow_stop(f, 5000);
    out->rate = (double)n * LG_NS / (double)(t1 - t0);
    out->cpu_us = n && cpu0 >= 0 ? (double)(cpu1 - cpu0) / 1000.0 / (double)n : -1;
    out->broker_util = cpu0 >= 0 ? (double)(cpu1 - cpu0) / (double)(t1 - t0) : -1;
}

void lg_flow_latency_rep(struct lg_flow *f, const struct lg_broker *b, double warmup, double secs,
                         double rate, struct lg_flow_rep *out)
{
    lg_flow_open(f, rate);
    run_for(f, (int64_t)(warmup * LG_NS));
    long pre0 = lg_preempted(b->pid) + lg_preempted(0);
    int64_t self0 = lg_cpu_ns(0), cpu0 = lg_cpu_ns(b->pid), t0 = lg_now_ns();
    lg_flow_measure(f, t0);
    run_for(f, (int64_t)(secs * LG_NS));
    int64_t t1 = lg_now_ns();
    out->preempted = lg_preempted(b->pid) + lg_preempted(0) - pre0;
    out->lg_util = (double)(lg_cpu_ns(0) - self0) / (double)(t1 - t0);
    out->broker_util = (double)(lg_cpu_ns(b->pid) - cpu0) / (double)(t1 - t0);
    lg_flow_end(f, t1);
    lg_flow_stop(f, 5000);
    out->rate = (double)f->lat.n * LG_NS / (double)(t1 - t0);
    out->p50_ns = lg_pct_ns(&f->lat, 50);
    out->p99_ns = lg_pct_ns(&f->lat, 99);
    out->cpu_us = -1;
}
