/*
 * Presence (PROTOCOL.md section 6): retained `rtm/presence/{uid}` follows
 * connects, disconnects, abrupt drops, keepalive timeouts and takeovers; a
 * connection refused by authentication never shows its user online.
 */
#include <string.h>

#include "harness.h"

static struct broker *start(void)
{
    struct broker_opts o = {0};
    return broker_start(&o);
}

static const char *presence(const char *uid)
{
    return rt_fmt("rtm/presence/%s", uid);
}

/* Waits for bob's next presence message and checks its exact shape. */
static cJSON *expect_presence_at(const char *file, int line, struct client *c, const char *uid,
                                 bool online, int sessions)
{
    struct msg *m = client_wait_fields(c, presence(uid), WAIT_MS, (char *)NULL);
    if (!m || !m->json) {
        client_dump(c);
        rt_fail(file, line, "%s: no presence message for %s (expected online %s)", client_id(c),
                uid, online ? "true" : "false");
    }
    cJSON *j = m->json;
    rt_expect_str(file, line, j, "uid", uid);
    rt_expect_bool(file, line, j, "online", online);
    if (online) {
        rt_expect_int(file, line, j, "sessions", sessions);
        rt_expect_keys(file, line, j, "uid", "online", "sessions", "ts", (char *)NULL);
    } else {
        rt_expect_keys(file, line, j, "uid", "online", "ts", (char *)NULL);
    }
    rt_expect_ts_now(file, line, j);
    if (m->qos != 1)
        rt_fail(file, line, "presence delivered at QoS %d, expected 1 (published at QoS 1)",
                m->qos);
    return j;
}
#define EXPECT_PRESENCE(c, uid, online, sessions)                                                  \
    expect_presence_at(__FILE__, __LINE__, (c), (uid), (online), (sessions))

static struct client *observer(const struct broker *b, const char *id, const char *filter)
{
    struct client *c = client_open(b, id, NULL);
    CHECK_EQ_INT(client_subscribe(c, filter, 1), 1);
    return c;
}

static void test_online_then_offline(void)
{
    struct broker *b = start();
    struct client *carol = observer(b, "carol", "rtm/presence/bob");
    struct client *bob = client_open(b, "bob-phone", "bob");
    EXPECT_PRESENCE(carol, "bob", true, 1);

    /* A later subscriber gets the current state at once, retained. */
    struct client *dave = client_open(b, "dave", NULL);
    CHECK_EQ_INT(client_subscribe(dave, "rtm/presence/+", 1), 1);
    struct msg *r = client_wait_msg(dave, presence("bob"), WAIT_MS);
    CHECKF(r != NULL, "no retained presence for bob");
    CHECKF(r->retain, "bob's presence was not delivered as retained");
    CHECK(r->json != NULL);
    EXPECT_BOOL(r->json, "online", true);
    EXPECT_INT(r->json, "sessions", 1);

    client_disconnect(bob);
    EXPECT_PRESENCE(carol, "bob", false, 0);
    EXPECT_PRESENCE(dave, "bob", false, 0);
    /* The retained state is now offline. */
    struct client *erin = client_open(b, "erin", NULL);
    CHECK_EQ_INT(client_subscribe(erin, "rtm/presence/bob", 1), 1);
    struct msg *r2 = client_wait_msg(erin, presence("bob"), WAIT_MS);
    CHECKF(r2 != NULL && r2->retain && r2->json, "no retained offline presence for bob");
    EXPECT_BOOL(r2->json, "online", false);
    EXPECT_NOTHING_ELSE(carol, NULL);
    client_free(bob);
    client_free(carol);
    client_free(dave);
    client_free(erin);
    broker_free(b);
}

static void test_session_count(void)
{
    struct broker *b = start();
    struct client *carol = observer(b, "carol", "rtm/presence/bob");
    struct client *bob1 = client_open(b, "bob-1", "bob");
    EXPECT_PRESENCE(carol, "bob", true, 1);
    struct client *bob2 = client_open(b, "bob-2", "bob");
    EXPECT_PRESENCE(carol, "bob", true, 2);
    client_disconnect(bob1);
    EXPECT_PRESENCE(carol, "bob", true, 1);
    client_disconnect(bob2);
    EXPECT_PRESENCE(carol, "bob", false, 0);
    /* Exactly one message per change. */
    struct client *bob3 = client_open(b, "bob-3", "bob");
    EXPECT_PRESENCE(carol, "bob", true, 1);
    EXPECT_NOTHING_ELSE(carol, NULL);
    client_free(bob1);
    client_free(bob2);
    client_free(bob3);
    client_free(carol);
    broker_free(b);
}

static void test_abrupt_drop(void)
{
    struct broker *b = start();
    struct client *carol = observer(b, "carol", "rtm/presence/bob");
    int rc = -1;
    struct raw *bob = raw_connect(b->port, "bob", NULL, NULL, 60, true, &rc);
    CHECK_EQ_INT(rc, 0);
    EXPECT_PRESENCE(carol, "bob", true, 1);
    raw_drop(bob);
    EXPECT_PRESENCE(carol, "bob", false, 0);
    EXPECT_NOTHING_ELSE(carol, NULL);
    client_free(carol);
    broker_free(b);
}

/* A persistent session's client that leaves, cleanly or not, is offline
 * (Mosquitto 2.1 reports it as CLIENT_OFFLINE, not DISCONNECT: the session
 * lives on), and a call to it fails as peer_offline; one that comes back
 * is online again. MQTT 5 with a session expiry, and MQTT 3.1.1 with clean
 * session off. */
static void test_persistent_session(void)
{
    struct broker *b = start();
    struct client *carol = observer(b, "carol", "rtm/presence/bob");
    struct client_opts o = {
        .client_id = "bob-phone", .username = "bob", .protocol = 5, .persistent = true};
    struct client *bob = client_open_v(b, &o);
    EXPECT_PRESENCE(carol, "bob", true, 1);
    client_disconnect(bob);
    EXPECT_PRESENCE(carol, "bob", false, 0);
    client_free(bob);
    bob = client_open_v(b, &o);
    EXPECT_PRESENCE(carol, "bob", true, 1);
    client_free(bob);
    EXPECT_PRESENCE(carol, "bob", false, 0);

    int rc = -1;
    struct raw *raw = raw_connect(b->port, "bob-tablet", "bob", NULL, 60, false, &rc);
    CHECK_EQ_INT(rc, 0);
    EXPECT_PRESENCE(carol, "bob", true, 1);
    raw_drop(raw);
    EXPECT_PRESENCE(carol, "bob", false, 0);

    struct client *alice = client_open_inbox(b, "alice-phone", "alice");
    const char *id = rt_uniq("persistent");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"timeout\":1}", id));
    cJSON *ev = EXPECT_TIMER_EVENT(alice, "alice", "failure", id);
    EXPECT_STR(ev, "reason", "peer_offline");
    EXPECT_NOTHING_ELSE(carol, NULL);
    client_free(alice);
    client_free(carol);
    broker_free(b);
}

struct presence_scan {
    const char *uid;
    int offline;
    int total;
    bool last_online;
    int last_sessions;
};

static void scan_presence(const struct msg *m, void *ud)
{
    struct presence_scan *s = ud;
    if (!m->json)
        return;
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(m->json, "uid");
    if (!cJSON_IsString(uid) || strcmp(uid->valuestring, s->uid) != 0)
        return;
    const cJSON *on = cJSON_GetObjectItemCaseSensitive(m->json, "online");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(m->json, "sessions");
    s->total++;
    s->last_online = cJSON_IsTrue(on);
    s->last_sessions = cJSON_IsNumber(n) ? (int)n->valuedouble : -1;
    if (!cJSON_IsTrue(on))
        s->offline++;
}

/* A client id reconnecting while its old connection is open. */
static void test_takeover_never_offline(void)
{
    struct broker *b = start();
    struct client *obs = observer(b, "observer", "rtm/presence/+");
    int rc = -1;
    struct raw *old = raw_connect(b->port, "bob-phone", "bob", NULL, 60, true, &rc);
    CHECK_EQ_INT(rc, 0);
    EXPECT_PRESENCE(obs, "bob", true, 1);

    struct client *taker = client_open(b, "bob-phone", "bob");
    CHECKF(raw_wait_closed(old, WAIT_MS), "the old connection was not taken over");
    raw_drop(old);
    /* Sentinel: erin connects after the takeover; her presence comes after
     * anything the takeover caused. */
    struct client *erin = client_open(b, "erin", NULL);
    EXPECT_PRESENCE(obs, "erin", true, 1);
    struct presence_scan s = {.uid = "bob"};
    client_foreach(obs, presence("bob"), scan_presence, &s);
    if (s.offline != 0 || !s.last_online || s.last_sessions != 1) {
        client_dump(obs);
        FAIL("takeover: bob shown offline %d time(s); last state online=%d sessions=%d "
             "(expected never offline, and online with 1 session)",
             s.offline, s.last_online, s.last_sessions);
    }
    /* The new connection is bob's session now. */
    client_consume_all(obs, presence("bob"), (char *)NULL);
    client_disconnect(taker);
    EXPECT_PRESENCE(obs, "bob", false, 0);
    client_free(taker);
    client_free(erin);
    client_free(obs);
    broker_free(b);
}

/* A silent client with keepalive 1 s is dropped by the broker: 2.0.11
 * checks keepalives about every 5 s, so offline comes within 1.5 x 1 s + 5 s
 * + 1 s slack. From 2.0.21 (and in 2.1) the broker files the client under
 * last packet + keepalive * 3 / 2 in whole seconds (1 s for keepalive 1)
 * and checks each second, so it may drop it from 1 s after its last packet:
 * that is the lower bound on every version. */
static void test_keepalive_timeout(void)
{
    struct broker *b = start();
    struct client *carol = observer(b, "carol", "rtm/presence/bob");
    int rc = -1;
    int64_t t0 = now_mono_ms();
    struct raw *bob = raw_connect(b->port, "bob", NULL, NULL, 1, true, &rc);
    CHECK_EQ_INT(rc, 0);
    EXPECT_PRESENCE(carol, "bob", true, 1);
    struct msg *m = client_wait_fields(carol, presence("bob"), 9000, (char *)NULL);
    CHECKF(m != NULL, "a silent client with keepalive 1 s was still online after 9 s");
    CHECK(m->json != NULL);
    EXPECT_BOOL(m->json, "online", false);
    long long took = m->at_ms - t0;
    CHECKF(took <= 1500 + 6000 + 500, "offline came %lld ms after the last packet", took);
    CHECKF(took >= 950, "offline came %lld ms after the last packet, before the keepalive", took);
    CHECKF(raw_wait_closed(bob, WAIT_MS), "the broker did not close the silent connection");
    raw_drop(bob);
    client_free(carol);
    broker_free(b);
}

/* plugin_opt_auth defer: password_file decides; a refused connection is never
 * shown online, and does not disturb a live session of the same user. */
static void test_auth_refused_never_online(void)
{
    static const char *const opts[] = {"auth defer", NULL};
    static const char *const users[] = {"bob:bob-secret", "carol:carol-secret", NULL};
    struct broker_opts bo = {.plugin_opts = opts, .passwd_users = users};
    struct broker *b = broker_start(&bo);
    struct client *obs = observer(b, "observer", "rtm/presence/+");

    /* Wrong password, MQTT 3.1.1 and 5, then no password at all. */
    struct client_opts w3 = {.client_id = "bob-1", .username = "bob", .password = "wrong"};
    struct client *c = client_new(b, &w3);
    int rc = client_connect(c);
    CHECKF(rc != 0 && rc != -1, "wrong password: CONNACK %d, expected a refusal", rc);
    client_free(c);
    struct client_opts w5 = {
        .client_id = "bob-2", .username = "bob", .password = "wrong", .protocol = 5};
    c = client_new(b, &w5);
    rc = client_connect(c);
    CHECKF(rc >= 0x80, "wrong password (MQTT 5): CONNACK reason %d, expected >= 0x80", rc);
    client_free(c);
    int raw_rc = -1;
    struct raw *r = raw_connect(b->port, "bob-3", "bob", NULL, 60, true, &raw_rc);
    CHECKF(raw_rc != 0, "no password: CONNACK %d, expected a refusal", raw_rc);
    raw_drop(r);

    /* Sentinel: carol logs in properly. */
    struct client_opts ok_c = {
        .client_id = "carol", .username = "carol", .password = "carol-secret"};
    struct client *carol = client_open_v(b, &ok_c);
    EXPECT_PRESENCE(obs, "carol", true, 1);
    if (client_count(obs, presence("bob"), (char *)NULL) != 0) {
        client_dump(obs);
        FAIL("a refused connection showed bob's presence");
    }

    /* bob logs in properly: online. */
    struct client_opts ok_b = {.client_id = "bob-4", .username = "bob", .password = "bob-secret"};
    struct client *bob = client_open_v(b, &ok_b);
    EXPECT_PRESENCE(obs, "bob", true, 1);
    /* A refused second login neither counts as a session nor, trying to take
     * over bob-4, ends the live one. */
    struct client_opts w4 = {.client_id = "bob-5", .username = "bob", .password = "nope"};
    c = client_new(b, &w4);
    rc = client_connect(c);
    CHECKF(rc != 0 && rc != -1, "wrong password: CONNACK %d, expected a refusal", rc);
    client_free(c);
    struct client_opts w6 = {.client_id = "bob-4", .username = "bob", .password = "nope"};
    c = client_new(b, &w6);
    rc = client_connect(c);
    CHECKF(rc != 0 && rc != -1, "wrong password takeover: CONNACK %d, expected a refusal", rc);
    client_free(c);
    /* Sentinel: carol leaves. */
    client_disconnect(carol);
    EXPECT_PRESENCE(obs, "carol", false, 0);
    EXPECT_NOTHING_ELSE(obs, presence("bob"));
    /* bob's live session is untouched and still counted. */
    CHECKF(!client_wait_disconnected(bob, 0), "the refused takeover disconnected bob-4");
    client_disconnect(bob);
    EXPECT_PRESENCE(obs, "bob", false, 0);
    client_free(bob);
    client_free(carol);
    client_free(obs);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"online_then_offline", test_online_then_offline},
        {"session_count", test_session_count},
        {"abrupt_drop", test_abrupt_drop},
        {"takeover_never_offline", test_takeover_never_offline},
        {"keepalive_timeout", test_keepalive_timeout},
        {"auth_refused_never_online", test_auth_refused_never_online},
        {"persistent_session", test_persistent_session},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
