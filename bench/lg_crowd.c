/*
 * rtm-loadgen: sessions that talk to the plugin's channels (lg.h, SPEC 8.2).
 * A session joins by publishing to <prefix>/c/<ch>/join and is answered on
 * its inbox with {"type":"joined",...}; errors come there too. The same
 * sessions on a broker without the plugin (prefix "plain") get no answers:
 * there they are only subscribers.
 */
#include "lg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool ends_with(const char *s, const char *end)
{
    size_t n = strlen(s), m = strlen(end);
    return n >= m && memcmp(s + n - m, end, m) == 0;
}

static void crowd_msg(struct lg_conn *c, const struct mosquitto_message *m, int64_t now)
{
    struct lg_crowd *k = c->ud;
    if (!ends_with(m->topic, "/call")) {
        k->delivered++;
        if (k->on_delivery)
            k->on_delivery(k, c->idx, m, now);
        return;
    }
    size_t len = 0;
    const char *type = lg_field(m->payload, (size_t)m->payloadlen, "type", &len);
    if (type && len == 6 && memcmp(type, "joined", 6) == 0) {
        k->joined++;
        if (k->on_joined)
            k->on_joined(k, c->idx, m, now);
    } else if (type && len == 5 && memcmp(type, "error", 5) == 0) {
        k->errors++;
        snprintf(k->last_error, sizeof(k->last_error), "%.*s", m->payloadlen,
                 (const char *)m->payload);
    }
}

void lg_crowd_open(struct lg_crowd *k, int port, const char *prefix, const char *tag, size_t n)
{
    memset(k, 0, sizeof(*k));
    snprintf(k->prefix, sizeof(k->prefix), "%s", prefix);
    snprintf(k->tag, sizeof(k->tag), "%s", tag);
    k->n = n;
    k->c = calloc(n, sizeof(*k->c));
    if (!k->c)
        lg_die("out of memory");
    size_t up = lg_open_many(k->c, n, port, tag, crowd_msg, k, 64, 60000);
    if (up != n)
        lg_die("%s sessions %s*: only %zu of %zu up on port %d (fd limit? ulimit -n)", prefix, tag,
               up, n, port);
    char fmt[40];
    snprintf(fmt, sizeof(fmt), "%s/u/%%s/call", prefix);
    if (!lg_subscribe_all(k->c, n, tag, fmt, 1, 60000))
        lg_die("%s sessions %s*: inbox subscriptions failed", prefix, tag);
}

bool lg_crowd_subscribe(struct lg_crowd *k, const char *filter, int qos)
{
    for (size_t i = 0; i < k->n; i++) {
        if (!lg_subscribe(&k->c[i], filter, qos))
            return false;
        if (i % 256 == 255)
            lg_poll(0);
    }
    return lg_wait_subs(k->c, k->n, 60000);
}

bool lg_crowd_request(struct lg_crowd *k, size_t i, const char *ch, const char *verb)
{
    char topic[128];
    snprintf(topic, sizeof(topic), "%s/c/%s/%s", k->prefix, ch, verb);
    return lg_publish(&k->c[i], topic, "{}", 2, 1, false);
}

bool lg_crowd_wait_joined(struct lg_crowd *k, uint64_t want, int timeout_ms)
{
    int64_t deadline = lg_now_ns() + (int64_t)timeout_ms * LG_MS;
    while (k->joined < want && k->joined + k->errors < want && lg_now_ns() < deadline)
        lg_poll(1);
    return k->joined >= want;
}

void lg_crowd_report_errors(const struct lg_crowd *k, const char *what)
{
    if (k->errors)
        lg_note("%s: %llu error answers on %s/u/%s*/call, the last: %s", what,
                (unsigned long long)k->errors, k->prefix, k->tag, k->last_error);
}

void lg_crowd_free(struct lg_crowd *k)
{
    lg_free_all(k->c, k->n);
    free(k->c);
    k->c = NULL;
    k->n = 0;
}
