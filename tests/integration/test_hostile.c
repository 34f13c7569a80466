/*
 * Hostile clients (SPEC 7): many connections send thousands of malformed,
 * oversized, deeply nested, wrongly typed and invalid UTF-8 messages, try
 * wildcard subscriptions over other users' inboxes and devices, and try to
 * speak as someone else. Afterwards:
 * - every refused publish of an attacker with a valid uid got exactly one
 *   `error` event, and no attacker received anything of another user's;
 * - SPEC 8 abuse (forged peer and channel messages, retained and oversized
 *   messages, channel messages from non-members, joins over max_channels,
 *   other users' attributes, attributes over the limits, unwritable and
 *   malformed channel and attribute topics) got one error each too;
 * - Wills under the prefix (forged calls, presence, registrations; retained
 *   or not, MQTT 3.1.1 and 5) from attackers killed with SIGKILL were all
 *   refused: no victim saw one, and none was stored;
 * - the victims saw nothing but their own traffic, and a normal call works;
 * - the plugin's state (users, sessions, calls, timers, devices, push jobs,
 *   channels, memberships, attributes and the records in its pool, from
 *   $SYS/broker/rtm/stats) is back to its
 *   baseline, and a second, identical attack leaves the process heap where
 *   the first one left it;
 * - the sanitizer build reports nothing (broker_stop checks the log).
 */
#include <stdio.h>
#include <string.h>

#include "jpush_mock.h"

#define ATTACKERS 24
#define REPEATS   4 /* times each attacker sends the malformed set */
#define ROUNDS    2
/* Heap the broker may still gain between two identical attacks: its own
 * growth-only tables and allocator slack. A leak of even 16 bytes per
 * refused message (about 3,000 per attack) would exceed it. */
#define HEAP_SLACK (32 * 1024)

struct payload {
    const char *text; /* NULL: generated into `buf` */
    size_t len;
};

/* A JSON object prefix followed by `depth` opening brackets. */
static struct payload deep(char *buf, size_t size, size_t depth)
{
    size_t n = (size_t)snprintf(buf, size, "{\"type\":\"invite\",\"id\":\"deep\",\"x\":");
    while (depth-- > 0 && n < size - 1)
        buf[n++] = '[';
    return (struct payload){buf, n};
}

static struct payload filled(char *buf, size_t size, size_t len)
{
    size_t n = (size_t)snprintf(buf, size, "{\"type\":\"invite\",\"id\":\"big\",\"content\":\"");
    while (n < len - 2 && n < size - 2)
        buf[n++] = 'A';
    buf[n++] = '"';
    buf[n++] = '}';
    return (struct payload){buf, n};
}

#define P(s)                                                                                       \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }

/* Call messages that must each be refused with bad_request. */
static const struct payload malformed[] = {
    P(""),
    P("{"),
    P("null"),
    P("[]"),
    P("\"invite\""),
    P("{\"type\":\"invite\"}"),
    P("{\"type\":1,\"id\":\"t1\"}"),
    P("{\"type\":\"invite\",\"id\":5}"),
    P("{\"type\":\"invite\",\"id\":\"t2\",\"timeout\":\"10\"}"),
    P("{\"type\":\"invite\",\"id\":\"t3\",\"timeout\":1e308}"),
    P("{\"type\":\"invite\",\"id\":\"t4\",\"timeout\":-1}"),
    P("{\"type\":\"invite\",\"id\":\"t5\",\"timeout\":3.5}"),
    P("{\"type\":\"invite\",\"id\":\"t6\",\"content\":{}}"),
    P("{\"type\":\"invite\",\"id\":\"t7\",\"channel\":[1,2]}"),
    P("{\"type\":\"invite\",\"id\":\"t8\",\"channel\":\"a\\nb\"}"),
    P("{\"type\":\"invite\",\"id\":\"../../etc\"}"),
    P("{\"type\":\"invite\",\"id\":\"x\",\"id\":\"y\"}"),
    P("{\"type\":\"invite\",\"id\":\"a\\u0000b\"}"),
    P("{\"type\":\"hack\",\"id\":\"t9\"}"),
    P("{\"type\":\"invite\",\"id\":"
      "\"0123456789012345678901234567890123456789012345678901234567890123456789\"}"),
    P("\xc0\xaf"),
    P("{\"type\":\"invite\",\"id\":\"u1\",\"content\":\"\xed\xa0\x80\"}"),
    P("{\"type\":\"invite\",\"id\":\"u2\",\"content\":\"\xff\xfe\"}"),
    P("{\"type\":\"invite\",\"id\":\"u3\",\"content\":\"\xf4\x90\x80\x80\"}"),
    P("\x00\x01\x02\x03"),
    P("{\"type\":\"accept\",\"id\":\"not-a-call\"}"),
    P("{\"type\":\"cancel\",\"id\":\"victim-call\",\"caller\":\"alice\"}"),
};

/* Topics under the prefix an attacker may not publish to: each refused with
 * an error event too (not_party, or bad_request naming the device). The bare
 * `rtm` is not among them: it is outside the prefix (other_topics). */
static const char *const forbidden_topics[] = {
    "rtm/presence/alice",
    "rtm/presence/mallory",
    "rtm/u/bob/devices/d1",
    "rtm/u/bob/devices/evil",
    "rtm/u/bob/call/extra",
    "rtm/u//call",
    "rtm/x",
    "rtm/u/bob/devices/",
    "rtm/u/bob/devices/d1/extra",
    "rtm/u/b%d/call/../call",
};

/* Filters that would reach other users' inboxes or devices: refused. */
static const char *const refused_filters[] = {
    "rtm/#",           "rtm/u/+/call",     "rtm/u/+/devices/#",   "rtm/u/bob/#",
    "rtm/u/+/+",       "rtm/+/+/+",        "rtm/u/bob/devices/+", "rtm/u/bob/call",
    "rtm/u/bob/msg/+", "rtm/u/+/attr/+",   "rtm/c/+/count",       "rtm/c/#",
    "rtm/c/+/msg/+",   "rtm/c/lobby/join", "rtm/u/+/msg/#",
};

/* Filters outside the prefix that still match it: allowed (other_topics
 * allow), but every delivery of another user's message is checked. */
static const char *const leaky_filters[] = {"#", "+/u/+/call", "+/+/+/+", "+/+/+/+/#"};

struct attacker {
    struct client *c;
    const char *uid; /* NULL: the client has no valid uid */
    int refusals;    /* publishes under the prefix that must each get an error */
};

static void send_counted(struct attacker *a, const char *topic, const void *payload, size_t len,
                         bool retain)
{
    /* A flood at QoS 0; now and then QoS 1, which waits for its PUBACK. */
    int qos = a->refusals % 32 == 0 ? 1 : 0;
    CHECK(client_publish(a->c, topic, payload, (int)len, qos, retain) >= 0);
    a->refusals++;
}

static void send_malformed(struct attacker *a)
{
    static char buf[32768];
    for (int r = 0; r < REPEATS; r++) {
        for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
            send_counted(a, inbox(r % 2 ? "alice" : "bob"), malformed[i].text, malformed[i].len,
                         false);
    }
    struct payload p = deep(buf, sizeof(buf), 20000);
    send_counted(a, inbox("bob"), p.text, p.len, false);
    p = filled(buf, sizeof(buf), 8193); /* one byte over max_payload */
    send_counted(a, inbox("bob"), p.text, p.len, false);
    p = filled(buf, sizeof(buf), sizeof(buf));
    send_counted(a, inbox("alice"), p.text, p.len, false);
    /* A well-formed invite, retained: call messages never are. */
    const char *retained = "{\"type\":\"invite\",\"id\":\"retained-call\"}";
    send_counted(a, inbox("bob"), retained, strlen(retained), true);
}

static void send_spoofs(struct attacker *a, int n)
{
    const char *forged = "{\"uid\":\"alice\",\"online\":false,\"ts\":1}";
    const char *device = "{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"stolen\"}";
    for (size_t i = 0; i < sizeof(forbidden_topics) / sizeof(forbidden_topics[0]); i++) {
        const char *topic =
            strchr(forbidden_topics[i], '%') ? rt_fmt(forbidden_topics[i], n) : forbidden_topics[i];
        send_counted(a, topic, i < 2 ? forged : device, strlen(i < 2 ? forged : device), true);
    }
}

/* SPEC 8 requests an attacker may not make; each refused with an error
 * naming the topic (the malformed topics: not_party, naming none). The
 * broker runs with max_message 1024, max_attr_keys 3 and max_channels 4. */
static void send_rtm_abuse(struct attacker *a, int n)
{
    static char big[1025];
    memset(big, 'm', sizeof(big));
    const char *me = a->uid ? a->uid : rt_fmt("bad id/%d", n);
    send_counted(a, "rtm/u/bob/msg/alice", "forged", 6, false);
    send_counted(a, rt_fmt("rtm/u/bob/msg/%s", me), "kept", 4, true);
    send_counted(a, rt_fmt("rtm/u/bob/msg/%s", me), big, sizeof(big), false);
    send_counted(a, rt_fmt("rtm/c/room%d/msg/%s", n, me), "not a member", 12, false);
    send_counted(a, "rtm/c/lobby/msg/alice", "forged", 6, false);
    send_counted(a, "rtm/c/lobby/join", "", 0, true);
    send_counted(a, "rtm/c/lobby/members", "", 0, false);
    const char *count = "{\"channel\":\"lobby\",\"count\":99}";
    send_counted(a, "rtm/c/lobby/count", count, strlen(count), true);
    const char *event = "{\"type\":\"member_left\"}";
    send_counted(a, "rtm/c/lobby/events", event, strlen(event), false);
    send_counted(a, "rtm/c/bad room/join", "", 0, false);
    send_counted(a, "rtm/u/bob/attr/status", "hacked", 6, true);
    send_counted(a, rt_fmt("rtm/u/%s/attr/status", me), "not retained", 12, false);
    send_counted(a, rt_fmt("rtm/u/%s/attr/status", me), "\xff\xfe", 2, true);
    send_counted(a, rt_fmt("rtm/u/%s/attr/bad key", me), "x", 1, true);
    /* Limits: the fourth key and the fifth channel are each refused once;
     * the writes and joins below them are not refusals. */
    for (int k = 0; k < 4; k++) {
        const char *topic = rt_fmt("rtm/u/%s/attr/k%d", me, k);
        if (k < 3 || !a->uid)
            CHECK(client_publish(a->c, topic, "v", 1, 1, true) >= 0);
        else
            send_counted(a, topic, "v", 1, true);
    }
    for (int c = 0; c < 5; c++) {
        const char *topic = rt_fmt("rtm/c/h%d-%d/join", n, c);
        if (c < 4 || !a->uid)
            CHECK(client_publish(a->c, topic, "", 0, 1, false) >= 0);
        else
            send_counted(a, topic, "", 0, false);
    }
}

static void try_filters(struct attacker *a)
{
    for (size_t i = 0; i < sizeof(refused_filters) / sizeof(refused_filters[0]); i++)
        CHECKF(client_subscribe(a->c, refused_filters[i], 0) == 0x80, "%s may subscribe to %s",
               client_id(a->c), refused_filters[i]);
    for (size_t i = 0; i < sizeof(leaky_filters) / sizeof(leaky_filters[0]); i++)
        CHECK(client_subscribe(a->c, leaky_filters[i], 0) == 0);
}

/* Attacker n: odd ones have a valid uid, even ones a client id that is not
 * one (their requests are refused with a log line only: no inbox). */
static void attack(const struct broker *b, struct attacker *a, int n)
{
    a->uid = n % 2 ? rt_fmt("mallory%d", n) : NULL;
    const char *id = a->uid ? rt_fmt("%s-dev", a->uid) : rt_fmt("bad id/%d", n);
    a->c = client_open(b, id, a->uid);
    a->refusals = 0;
    try_filters(a);
    send_malformed(a);
    send_spoofs(a, n);
    send_rtm_abuse(a, n);
    client_flush(a->c);
}

/* What anyone may read: presence, member counts, users' attributes (SPEC
 * 3). An attacker with a uid also gets its own inbox and the member events
 * of the channels it joined. */
static void leak_check(const struct msg *m, void *ud)
{
    const struct attacker *a = ud;
    const char *own = a->uid ? inbox(a->uid) : "";
    bool rtm = strncmp(m->topic, "rtm/", 4) == 0;
    bool public = strncmp(m->topic, "rtm/presence/", 13) == 0 ||
                  (strncmp(m->topic, "rtm/c/", 6) == 0 && strstr(m->topic, "/count")) ||
                  (strncmp(m->topic, "rtm/u/", 6) == 0 && strstr(m->topic, "/attr/"));
    bool joined = a->uid && strncmp(m->topic, "rtm/c/h", 7) == 0 && strstr(m->topic, "/events");
    CHECKF(!rtm || public || joined || strcmp(m->topic, own) == 0, "%s received %s: %s",
           client_id(a->c), m->topic, m->payload);
}

/* Every refused publish of an attacker with a valid uid: one error event. */
static void check_attacker(struct attacker *a)
{
    client_foreach(a->c, NULL, leak_check, a);
    if (!a->uid)
        return;
    int errors = client_count(a->c, inbox(a->uid), "type", "error", NULL);
    if (errors != a->refusals)
        client_dump(a->c);
    CHECKF(errors == a->refusals, "%s: %d error events for %d refused publishes", a->uid, errors,
           a->refusals);
}

/* The next stats message whose counts are the baseline's, after those
 * already received (which may predate an attack). */
static struct msg *wait_baseline(struct client *observer, int sessions)
{
    client_consume_all(observer, "$SYS/broker/rtm/stats", NULL);
    struct msg *m =
        client_wait_fields(observer, "$SYS/broker/rtm/stats", 15000, "users",
                           rt_fmt("%d", sessions), "sessions", rt_fmt("%d", sessions), "calls_live",
                           "0", "calls_remembered", "0", "timers", "0", "devices", "1", "push_jobs",
                           "0", "channels", "0", "memberships", "0", "attributes", "0", NULL);
    if (!m)
        client_dump(observer);
    CHECKF(m, "the plugin's state did not return to its baseline within 15 s");
    return m;
}

/* Its heap plus the slabs of the plugin's record pool, which the heap does
 * not count. */
static long long memory_of(const struct msg *m)
{
    return GET_INT(m->json, "heap_bytes") + GET_INT(m->json, "pool_bytes");
}

/* Attackers whose Wills forge what only the plugin or the owner may say;
 * each is killed with SIGKILL and its Will refused. */
static void send_wills(const struct broker *b, int round)
{
    static const struct {
        const char *topic, *payload;
    } wills[] = {
        {"rtm/u/bob/call", "{\"type\":\"invite\",\"id\":\"will-forged\",\"caller\":\"alice\","
                           "\"callee\":\"bob\",\"by\":\"alice\"}"},
        {"rtm/u/alice/call", "{\"type\":\"accept\",\"id\":\"will-forged\",\"caller\":\"alice\","
                             "\"callee\":\"bob\",\"by\":\"bob\"}"},
        {"rtm/presence/alice", "{\"uid\":\"alice\",\"online\":false,\"ts\":1}"},
        {"rtm/u/%s/devices/will", "{\"provider\":\"jpush\",\"platform\":\"ios\","
                                  "\"token\":\"will-forged\"}"},
    };
    for (size_t i = 0; i < sizeof(wills) / sizeof(wills[0]); i++) {
        for (int how = 0; how < 2; how++) {
            const char *uid = rt_fmt("willer%d", round * 16 + (int)i * 2 + how);
            const char *topic =
                strchr(wills[i].topic, '%') ? rt_fmt(wills[i].topic, uid) : wills[i].topic;
            struct rt_will w = {
                rt_fmt("%s-dev", uid), uid, how ? 5 : 4, topic, wills[i].payload, how == 1, 0};
            pid_t pid = rt_will_client_start(b, &w);
            rt_will_client_kill(b, pid, &w);
        }
    }
}

static void run_round(const struct broker *b, int round)
{
    struct attacker a[ATTACKERS];
    /* Every round is the same attack, with the same uids and channels:
     * Mosquitto 2.0.11 keeps a node in its retained store for every topic
     * that ever held a retained message (a member count, an attribute),
     * which fresh names in each round would add to the heap. */
    for (int i = 0; i < ATTACKERS; i++)
        attack(b, &a[i], i);
    /* Abrupt drops in the middle of a message. */
    for (int i = 0; i < 8; i++) {
        int rc = -1;
        struct raw *r = raw_connect(b->port, rt_fmt("dropper%d", i), NULL, NULL, 60, true, &rc);
        CHECK_EQ_INT(rc, 0);
        raw_publish0(r, inbox("bob"), "{\"type\":\"invite\",\"id\":\"dropped\"");
        raw_drop(r);
    }
    send_wills(b, round);
    for (int i = 0; i < ATTACKERS; i++) {
        check_attacker(&a[i]);
        client_free(a[i].c);
    }
}

static void no_attacker_state(const struct msg *m, void *ud)
{
    (void)ud;
    bool state = strstr(m->topic, "/attr/") || strncmp(m->topic, "rtm/c/", 6) == 0;
    CHECKF(!state || m->len == 0, "an attacker's %s is still stored: %s", m->topic, m->payload);
}

static void test_hostile_clients(void)
{
    /* The admin reads every retained message under the prefix at the end. */
    const char *opts[] = {"stats_interval 1",
                          "stats_heap true",
                          "admin_users late-observer",
                          "max_message 1024",
                          "max_attr_keys 3",
                          "max_channels 4",
                          "attr_rate 1000",
                          NULL};
    struct broker_opts o = {.plugin_opts = opts};
    struct broker *b = broker_start(&o);
    struct client *observer = client_open(b, "observer", NULL);
    CHECK_EQ_INT(client_subscribe(observer, "$SYS/broker/rtm/stats", 0), 0);
    struct client *alice = client_open_inbox(b, "alice-phone", "alice");
    struct client *bob = client_open_inbox(b, "bob-phone", "bob");
    device_register(bob, "bob", "d1", "android", "victim-token");
    CHECK_EQ_INT(client_subscribe(alice, "rtm/presence/+", 1), 1);

    /* Records the attack leaves allocated but out of every table would
     * show only here: the pool's slabs are 64 KiB, the heap does not hold
     * them. */
    long long records = GET_INT(wait_baseline(observer, 3)->json, "pool_records");
    long long heap[ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        run_round(b, round);
        struct msg *m = wait_baseline(observer, 3);
        heap[round] = memory_of(m);
        CHECKF(GET_INT(m->json, "pool_records") == records,
               "round %d left %lld records in the pool, %lld before the attacks", round + 1,
               GET_INT(m->json, "pool_records"), records);
    }
    CHECKF(heap[1] - heap[0] <= HEAP_SLACK,
           "the heap grew by %lld bytes between two identical attacks (heap %lld, then %lld)",
           heap[1] - heap[0], heap[0], heap[1]);

    /* The victims: a normal call, and nothing forged reached them. */
    const char *id = rt_uniq("after-attack");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(bob, "bob", "invite", id);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(alice, "alice", "accept", id);
    CHECK_EQ_INT(client_count(alice, "rtm/presence/alice", "online", "false", NULL), 0);
    CHECK_EQ_INT(client_count(bob, inbox("bob"), "type", "error", NULL), 0);
    CHECK_EQ_INT(client_count(bob, inbox("bob"), "id", "will-forged", NULL), 0);
    CHECK_EQ_INT(client_count(alice, inbox("alice"), "id", "will-forged", NULL), 0);
    /* Nothing forged was stored: an admin's new subscription to everything
     * gets the retained registration bob made, and no Will's. */
    struct client *root = client_open(b, "late-observer", NULL);
    CHECK_EQ_INT(client_subscribe(root, "#", 0), 0);
    CHECKF(client_wait_json(root, "rtm/u/bob/devices/d1", WAIT_MS, "token", "victim-token", NULL),
           "the admin did not get bob's retained registration");
    client_flush(root);
    CHECK_EQ_INT(client_count(root, NULL, "token", "will-forged", NULL), 0);
    CHECK_EQ_INT(client_count(root, NULL, "id", "will-forged", NULL), 0);
    CHECK_EQ_INT(client_count(root, "rtm/presence/alice", "online", "false", NULL), 0);
    /* The attackers' attributes went with their sessions, and their
     * channels' counts with their channels. */
    client_foreach(root, NULL, no_attacker_state, NULL);
    client_free(root);
    client_free(alice);
    client_free(bob);
    client_free(observer);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"hostile_clients", test_hostile_clients},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
