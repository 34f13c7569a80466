/*
 * libFuzzer target: the adapter's bookkeeping of the broker's events, the
 * Will guard (plugin/adapter/guard.c) and the client-id table with its held mail
 * (plugin/adapter/conns.c), driven together as plugin/adapter/plugin.c drives them, by
 * sequences of what Mosquitto 2.0/2.1 does: logins, PUBLISHes with their
 * fan-out, drops with and without a Will, takeovers, Wills sent late (will
 * delay, session expiry, shutdown), check_retain_source's WRITE checks,
 * mail for one connection, and TICKs.
 *
 * A model of the same connections says what must happen: every Will is
 * refused at its WRITE check or reported once with all its deliveries
 * refused, no PUBLISH is ever taken for a Will, and held mail reaches a
 * connection only while it still holds its client id.
 *
 * Input: a sequence of operations, each one byte (its kind) and the bytes
 * its arguments need; an exhausted input reads as zeros.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "rtm_conns.h"
#include "rtm_guard.h"

#define HANDLES 5
#define IDS     3
#define MAIL    64

static const char *const ids[IDS] = {"bob-phone", "bob-tablet", "mallory"};
static const char *const topics[] = {"rtm/u/bob/call", "rtm/u/bob/devices/d1", "rtm/u/carol/call"};
#define TOPICS (sizeof(topics) / sizeof(topics[0]))
static const char payload[] = "{\"type\":\"invite\",\"id\":\"c1\"}";
#define LEN ((uint32_t)(sizeof(payload) - 1))

static struct {
    struct rtm_guard guard;
    struct rtm_conns *conns;
    char handles[HANDLES]; /* their addresses are the connections */
    bool live[HANDLES];
    int id_of[HANDLES];
    int holder[IDS]; /* the model's holder of each id; -1: nobody */
    /* Will reports. */
    int wills;
    char will_topic[RTM_GUARD_TOPIC_MAX + 1];
    bool will_retain;
    /* Held mail: what the model expects of each message at the next flush. */
    int mail_handle[MAIL];
    int mail_id[MAIL]; /* the client id it was posted for */
    int nmail;
    int sent;
} W;

static void on_will(void *ud, const struct rtm_guard_will *w)
{
    FUZZ_CHECK(ud == &W);
    W.wills++;
    snprintf(W.will_topic, sizeof(W.will_topic), "%s", w->topic);
    W.will_retain = w->retain;
}

static int pick(struct fuzz_reader *r, int n)
{
    return fuzz_byte(r) % n;
}

static const void *handle(int h)
{
    return &W.handles[h];
}

static bool superseded(int h)
{
    bool got = rtm_conns_superseded(W.conns, handle(h), ids[W.id_of[h]]);
    int holder = W.holder[W.id_of[h]];
    FUZZ_CHECK(got == (holder >= 0 && holder != h));
    return got;
}

static void login(int h, int id)
{
    rtm_guard_event(&W.guard);
    FUZZ_CHECK(rtm_conns_login(W.conns, handle(h), ids[id]) == 0);
    if (W.live[h] && W.holder[W.id_of[h]] == h)
        W.holder[W.id_of[h]] = -1;
    for (int i = 0; i < HANDLES; i++) {
        if (i != h && W.live[i] && W.id_of[i] == id && W.holder[id] == i)
            W.holder[id] = -1;
    }
    W.holder[id] = h;
    W.live[h] = true;
    W.id_of[h] = id;
}

static void disconnect(int h)
{
    rtm_guard_disconnect(&W.guard, handle(h));
    rtm_conns_logout(W.conns, handle(h));
    if (W.holder[W.id_of[h]] == h)
        W.holder[W.id_of[h]] = -1;
    W.live[h] = false;
}

/* The fan-out of a message: `n` READ checks, all delivered or all not. */
static void fan_out(const char *topic, int n, bool delivered)
{
    for (int i = 0; i < n; i++)
        FUZZ_CHECK(rtm_guard_read(&W.guard, topic, "stored copy", LEN) == delivered);
}

static void op_login(struct fuzz_reader *r)
{
    int h = pick(r, HANDLES), id = pick(r, IDS);
    if (W.live[h])
        disconnect(h);
    login(h, id);
}

/* A PUBLISH by a connection that holds its id: WRITE, MESSAGE, fan-out. */
static void op_publish(struct fuzz_reader *r)
{
    int h = pick(r, HANDLES);
    const char *topic = topics[pick(r, TOPICS)];
    int reads = pick(r, 4);
    if (!W.live[h] || superseded(h))
        return;
    int before = W.wills;
    enum rtm_guard_write kind = rtm_guard_write(&W.guard, handle(h), false, topic, payload);
    FUZZ_CHECK(kind == RTM_GUARD_PUBLISH);
    rtm_guard_allowed(&W.guard, handle(h), ids[W.id_of[h]], topic, LEN, true);
    rtm_guard_message(&W.guard, handle(h), topic);
    fan_out(topic, reads, true);
    FUZZ_CHECK(W.wills == before);
}

/* A drop: DISCONNECT, then at once its Will, if it has one. */
static void op_drop(struct fuzz_reader *r)
{
    int h = pick(r, HANDLES);
    bool will = fuzz_byte(r) & 1;
    const char *topic = topics[pick(r, TOPICS)];
    if (!W.live[h])
        return;
    disconnect(h);
    if (will)
        FUZZ_CHECK(rtm_guard_write(&W.guard, handle(h), superseded(h), topic, payload) ==
                   RTM_GUARD_WILL);
}

/* A takeover: the new connection logs in, the old one's Will goes out (its
 * mail held before is never delivered), then the old one is reported gone. */
static void op_takeover(struct fuzz_reader *r)
{
    int old = pick(r, HANDLES), fresh = pick(r, HANDLES);
    uint8_t how = fuzz_byte(r);
    const char *topic = topics[pick(r, TOPICS)];
    if (!W.live[old] || W.live[fresh] || old == fresh || W.nmail == MAIL)
        return;
    int id = W.id_of[old];
    if (how & 2) {
        struct rtm_publish m = {handle(old), "rtm/u/bob/call", "error", 5, 1, false};
        FUZZ_CHECK(rtm_conns_post(W.conns, ids[id], &m) == 0);
        if (W.holder[id] < 0)
            W.holder[id] = old;
        W.mail_id[W.nmail] = id;
        W.mail_handle[W.nmail++] = old;
    }
    login(fresh, id);
    if (how & 1)
        FUZZ_CHECK(rtm_guard_write(&W.guard, handle(old), superseded(old), topic, payload) ==
                   RTM_GUARD_WILL);
    disconnect(old);
    FUZZ_CHECK(W.holder[id] == fresh && !superseded(fresh));
}

/* A Will sent long after its DISCONNECT: it looks like a PUBLISH until the
 * next event shows it got no MESSAGE; then it is reported once, every
 * delivery of it refused, and a retained one marked for erasing. */
static void op_late_will(struct fuzz_reader *r)
{
    int h = pick(r, HANDLES);
    const char *topic = topics[pick(r, TOPICS)];
    bool retain = fuzz_byte(r) & 1;
    int reads = pick(r, 4);
    if (W.live[h])
        return;
    rtm_guard_event(&W.guard); /* never straight after its DISCONNECT */
    int before = W.wills;
    enum rtm_guard_write kind =
        rtm_guard_write(&W.guard, handle(h), W.holder[W.id_of[h]] >= 0 && W.holder[W.id_of[h]] != h,
                        topic, payload);
    if (kind == RTM_GUARD_WILL)
        return; /* its id is held by another connection: refused outright */
    FUZZ_CHECK(kind == RTM_GUARD_PUBLISH);
    rtm_guard_allowed(&W.guard, handle(h), "late", topic, LEN, retain);
    fan_out(topic, reads, false);
    rtm_guard_event(&W.guard);
    FUZZ_CHECK(W.wills == before + 1);
    FUZZ_CHECK(strcmp(W.will_topic, topic) == 0 && W.will_retain == retain);
    fan_out(topic, 1, true); /* the next message on that topic is not the Will */
}

/* check_retain_source: a retained message's delivery, then a WRITE check of
 * the same stored message for its publisher (any connection, or none). */
static void op_retain_source(struct fuzz_reader *r)
{
    const char *topic = topics[pick(r, TOPICS)];
    int h = pick(r, HANDLES);
    static const char stored[] = "{}";
    rtm_guard_event(&W.guard);
    FUZZ_CHECK(rtm_guard_read(&W.guard, topic, stored, 2));
    FUZZ_CHECK(rtm_guard_write(&W.guard, handle(h), fuzz_byte(r) & 1, topic, stored) ==
               RTM_GUARD_SOURCE);
}

/* Mail for one live connection. */
static void op_post(struct fuzz_reader *r)
{
    int h = pick(r, HANDLES);
    if (!W.live[h] || W.nmail == MAIL)
        return;
    int id = W.id_of[h];
    struct rtm_publish m = {handle(h), "rtm/u/bob/call", "invite", 6, 1, false};
    FUZZ_CHECK(rtm_conns_post(W.conns, ids[id], &m) == 0);
    if (W.holder[id] < 0)
        W.holder[id] = h;
    W.mail_id[W.nmail] = id;
    W.mail_handle[W.nmail++] = h;
}

static int id_index(const char *client_id)
{
    for (int i = 0; i < IDS; i++) {
        if (strcmp(client_id, ids[i]) == 0)
            return i;
    }
    fuzz_fail(__FILE__, __LINE__, "mail for a client id nobody posted for");
}

static void count_sent(void *ud, const char *client_id, const struct rtm_publish *m)
{
    (void)ud;
    int h = (int)((const char *)m->handle - W.handles);
    FUZZ_CHECK(h >= 0 && h < HANDLES);
    int holder = W.holder[id_index(client_id)];
    FUZZ_CHECK(holder == h || holder < 0);
    W.sent++;
}

static void op_tick(void)
{
    rtm_guard_event(&W.guard);
    int want = 0;
    for (int i = 0; i < W.nmail; i++) {
        int holder = W.holder[W.mail_id[i]];
        want += holder == W.mail_handle[i] || holder < 0;
    }
    W.sent = 0;
    size_t dropped = rtm_conns_flush(W.conns, count_sent, NULL);
    FUZZ_CHECK(W.sent == want && (int)dropped == W.nmail - want);
    W.nmail = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    memset(&W, 0, sizeof(W));
    memset(W.holder, -1, sizeof(W.holder));
    rtm_guard_init(&W.guard, on_will, &W);
    W.conns = rtm_conns_new(NULL);
    FUZZ_CHECK(W.conns != NULL);
    struct fuzz_reader r = {data, size};
    while (r.left > 0) {
        switch (fuzz_byte(&r) % 8) {
        case 0:
            op_login(&r);
            break;
        case 1:
            op_publish(&r);
            break;
        case 2:
            op_drop(&r);
            break;
        case 3:
            op_takeover(&r);
            break;
        case 4:
            op_late_will(&r);
            break;
        case 5:
            op_retain_source(&r);
            break;
        case 6:
            op_post(&r);
            break;
        default:
            op_tick();
            break;
        }
    }
    op_tick();
    FUZZ_CHECK(rtm_conns_held(W.conns) == 0);
    for (int h = 0; h < HANDLES; h++) {
        if (W.live[h])
            disconnect(h);
    }
    FUZZ_CHECK(rtm_conns_count(W.conns) == 0);
    rtm_conns_free(W.conns);
    return 0;
}
