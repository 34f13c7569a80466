/*
 * Channels (SPEC 8.2) through the real broker: joined and members answers,
 * member events and the retained count as sessions join, leave, drop and
 * time out; messages and events reach member sessions only; refusals name
 * their topic with PUBACK 0x87; wildcards that list channels are refused;
 * and a count stored before a restart is never shown after it.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

#define RC_NO_MATCHING_SUBSCRIBERS 0x10
#define RC_NOT_AUTHORIZED          0x87

static struct broker *start(const char *const *plugin_opts)
{
    struct broker_opts o = {.plugin_opts = plugin_opts};
    return broker_start(&o);
}

static const char *ch_topic(const char *ch, const char *what)
{
    return rt_fmt("rtm/c/%s/%s", ch, what);
}

static void subscribe(struct client *c, const char *filter)
{
    int granted = client_subscribe(c, filter, 1);
    CHECKF(granted == 1, "%s: subscribing to %s granted 0x%02x", client_id(c), filter,
           (unsigned)granted);
}

/* A client of `uid` (MQTT `protocol`) listening to its inbox. */
static struct client *open_uid(const struct broker *b, const char *id, const char *uid,
                               int protocol)
{
    struct client_opts o = {.client_id = id, .username = uid, .protocol = protocol};
    struct client *c = client_open_v(b, &o);
    subscribe(c, inbox(uid));
    return c;
}

/* Publishes an applied request: nobody subscribes to request topics, so an
 * MQTT 5 publisher hears "no matching subscribers". */
static void request(struct client *c, const char *ch, const char *what)
{
    int rc = client_publish(c, ch_topic(ch, what), "", 0, 1, false);
    CHECKF(rc == 0 || rc == RC_NO_MATCHING_SUBSCRIBERS, "%s %s by %s: reason code 0x%02x", what, ch,
           client_id(c), (unsigned)rc);
}

static void expect_members_at(const char *file, int line, const cJSON *j, ...)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "members");
    if (!cJSON_IsArray(m))
        rt_fail(file, line, "no members array");
    va_list ap;
    va_start(ap, j);
    const cJSON *e = m->child;
    for (const char *uid = va_arg(ap, const char *); uid; uid = va_arg(ap, const char *)) {
        if (!e || !cJSON_IsString(e) || strcmp(e->valuestring, uid) != 0) {
            char *text = cJSON_PrintUnformatted(j);
            rt_fail(file, line, "members: expected %s next in %s", uid, text ? text : "?");
        }
        e = e->next;
    }
    va_end(ap);
    if (e)
        rt_fail(file, line, "members: more uids than expected");
}
#define EXPECT_MEMBERS(j, ...) expect_members_at(__FILE__, __LINE__, (j), __VA_ARGS__, (char *)NULL)

/* Checks a joined or members answer. */
static void expect_answer_at(const char *file, int line, const cJSON *j, const char *type,
                             const char *ch, int count)
{
    rt_expect_keys(file, line, j, "type", "channel", "count", "members", "truncated", "ts",
                   (char *)NULL);
    rt_expect_str(file, line, j, "type", type);
    rt_expect_str(file, line, j, "channel", ch);
    rt_expect_int(file, line, j, "count", count);
    rt_expect_bool(file, line, j, "truncated", false);
    rt_expect_ts_now(file, line, j);
}

/* Asks `what` (join or members) and returns the answer, checked. */
static cJSON *ask_at(const char *file, int line, struct client *c, const char *uid, const char *ch,
                     const char *what, int count)
{
    const char *type = strcmp(what, "join") == 0 ? "joined" : "members";
    request(c, ch, what);
    cJSON *j = client_wait_json(c, inbox(uid), WAIT_MS, "type", type, "channel", ch, (char *)NULL);
    if (!j) {
        client_dump(c);
        rt_fail(file, line, "%s: no %s answer for %s", client_id(c), type, ch);
    }
    expect_answer_at(file, line, j, type, ch, count);
    return j;
}
#define JOIN(c, uid, ch, n)    ask_at(__FILE__, __LINE__, (c), (uid), (ch), "join", (n))
#define MEMBERS(c, uid, ch, n) ask_at(__FILE__, __LINE__, (c), (uid), (ch), "members", (n))

/* Waits for a member event; returns its message (for its arrival time). */
static struct msg *expect_event_at(const char *file, int line, struct client *c, const char *ch,
                                   const char *type, const char *uid, int count, int timeout_ms)
{
    struct msg *m = client_wait_fields(c, ch_topic(ch, "events"), timeout_ms, "type", type, "uid",
                                       uid, (char *)NULL);
    if (!m) {
        client_dump(c);
        rt_fail(file, line, "%s: no %s of %s in %s within %d ms", client_id(c), type, uid, ch,
                timeout_ms);
    }
    rt_expect_keys(file, line, m->json, "type", "channel", "uid", "count", "ts", (char *)NULL);
    rt_expect_str(file, line, m->json, "channel", ch);
    rt_expect_int(file, line, m->json, "count", count);
    if (m->retain)
        rt_fail(file, line, "a member event arrived retained");
    return m;
}
#define EXPECT_MEMBER_EVENT(c, ch, type, uid, n)                                                   \
    expect_event_at(__FILE__, __LINE__, (c), (ch), (type), (uid), (n), WAIT_MS)

/* Waits for the count `n` of `ch`. */
static struct msg *expect_count_at(const char *file, int line, struct client *c, const char *ch,
                                   int n, int timeout_ms)
{
    struct msg *m = client_wait_fields(c, ch_topic(ch, "count"), timeout_ms, "count",
                                       rt_fmt("%d", n), (char *)NULL);
    if (!m) {
        client_dump(c);
        rt_fail(file, line, "%s: no count %d for %s within %d ms", client_id(c), n, ch, timeout_ms);
    }
    rt_expect_keys(file, line, m->json, "channel", "count", "ts", (char *)NULL);
    rt_expect_str(file, line, m->json, "channel", ch);
    return m;
}
#define EXPECT_COUNT(c, ch, n) expect_count_at(__FILE__, __LINE__, (c), (ch), (n), WAIT_MS)

/* A refused publish: PUBACK 0x87 and an error naming the topic. */
static void expect_refused(struct client *c, const char *uid, const char *topic, bool retain,
                           const char *code)
{
    int rc = client_publish(c, topic, "x", 1, 1, retain);
    CHECKF(rc == RC_NOT_AUTHORIZED, "%s to %s: reason code 0x%02x, expected 0x87", code, topic,
           (unsigned)rc);
    EXPECT_TOPIC_ERROR(c, uid, code, topic);
}

/* --- members leaving by dropping, timing out and disconnecting --------------- */

/* bob's raw session (no DISCONNECT ever) joins and is answered on its own
 * connection, though it subscribed to nothing. */
static struct raw *raw_member(const struct broker *b, const char *id, const char *uid,
                              int keepalive, int count)
{
    int rc = -1;
    struct raw *r = raw_connect(b->port, id, uid, NULL, keepalive, true, &rc);
    CHECK_EQ_INT(rc, 0);
    raw_publish0(r, "rtm/c/room/join", "");
    const char *topic = NULL;
    const char *payload = raw_next_publish(r, &topic, WAIT_MS);
    CHECKF(payload, "%s: no joined answer", id);
    CHECKF(strcmp(topic, inbox(uid)) == 0, "%s: answered on %s", id, topic);
    cJSON *j = cJSON_Parse(payload);
    CHECKF(j, "%s: the answer is not JSON: %s", id, payload);
    expect_answer_at(__FILE__, __LINE__, j, "joined", "room", count);
    cJSON_Delete(j);
    return r;
}

/* Three sessions of two users: alice on MQTT 5 and 3.1.1, bob on a raw
 * socket with keepalive 2 s that is dropped without a DISCONNECT, as when
 * its process is killed. The others see bob leave and the count drop. */
static void test_member_dropped(void)
{
    struct broker *b = start(NULL);
    struct client *phone = open_uid(b, "alice-phone", "alice", 5);
    struct client *web = open_uid(b, "alice-web", "alice", 4);
    struct client *carol = open_uid(b, "carol", "carol", 5);
    subscribe(phone, ch_topic("room", "events"));
    subscribe(web, ch_topic("room", "events"));
    subscribe(carol, ch_topic("room", "count")); /* not a member: counts are for anyone */
    subscribe(carol, "rtm/presence/alice");

    cJSON *j = JOIN(phone, "alice", "room", 1);
    EXPECT_MEMBERS(j, "alice");
    EXPECT_MEMBER_EVENT(phone, "room", "member_joined", "alice", 1);
    j = JOIN(web, "alice", "room", 1); /* a second session: no event */
    EXPECT_MEMBERS(j, "alice");
    EXPECT_COUNT(carol, "room", 1);

    struct raw *bob = raw_member(b, "bob-raw", "bob", 2, 2);
    EXPECT_MEMBER_EVENT(phone, "room", "member_joined", "bob", 2);
    EXPECT_MEMBER_EVENT(web, "room", "member_joined", "bob", 2);
    EXPECT_COUNT(carol, "room", 2);

    int64_t dropped = now_mono_ms();
    raw_drop(bob);
    int window = rt_slack_ms(3000); /* 1.5 x keepalive */
    struct msg *m =
        expect_event_at(__FILE__, __LINE__, phone, "room", "member_left", "bob", 1, window);
    CHECKF(m->at_ms - dropped <= window, "member_left came %lld ms after the drop",
           (long long)(m->at_ms - dropped));
    EXPECT_MEMBER_EVENT(web, "room", "member_left", "bob", 1);
    /* The count follows within its second. */
    m = expect_count_at(__FILE__, __LINE__, carol, "room", 1, window + 1000);
    CHECKF(m->at_ms - dropped <= window + rt_slack_ms(1000),
           "the count dropped %lld ms after the drop", (long long)(m->at_ms - dropped));

    /* One of alice's two sessions goes: she is still a member. */
    CHECK(client_wait_json(carol, "rtm/presence/alice", WAIT_MS, "sessions", "2", (char *)NULL));
    client_free(web);
    CHECK(client_wait_json(carol, "rtm/presence/alice", WAIT_MS, "sessions", "1", (char *)NULL));
    j = MEMBERS(phone, "alice", "room", 1);
    EXPECT_MEMBERS(j, "alice");
    EXPECT_NOTHING_ELSE(phone, NULL);
    client_consume_all(carol, "rtm/presence/alice", (char *)NULL);
    EXPECT_NOTHING_ELSE(carol, NULL);
    client_free(phone);
    client_free(carol);
    broker_free(b);
}

/* A silent member (keepalive 2 s, no PINGREQ) is dropped by the broker:
 * 2.0.11 checks keepalives about every 5 s, so it leaves within 1.5 x 2 s
 * + 5 s (+ 1 s slack), and never before its keepalive. */
static void test_member_timed_out(void)
{
    struct broker *b = start(NULL);
    struct client *alice = open_uid(b, "alice", "alice", 5);
    subscribe(alice, ch_topic("room", "events"));
    subscribe(alice, ch_topic("room", "count"));
    JOIN(alice, "alice", "room", 1);
    EXPECT_MEMBER_EVENT(alice, "room", "member_joined", "alice", 1);
    EXPECT_COUNT(alice, "room", 1);
    struct raw *bob = raw_member(b, "bob-raw", "bob", 2, 2);
    int64_t last_packet = now_mono_ms(); /* the PUBACK of the joined answer */
    EXPECT_MEMBER_EVENT(alice, "room", "member_joined", "bob", 2);
    EXPECT_COUNT(alice, "room", 2);

    int bound = 3000 + 6000 + rt_slack_ms(500);
    struct msg *m =
        expect_event_at(__FILE__, __LINE__, alice, "room", "member_left", "bob", 1, bound + 1000);
    long long took = m->at_ms - last_packet;
    CHECKF(took <= bound, "member_left came %lld ms after bob's last packet", took);
    CHECKF(took >= 1900, "member_left came %lld ms after bob's last packet, before its keepalive",
           took);
    EXPECT_COUNT(alice, "room", 1);
    CHECKF(raw_wait_closed(bob, WAIT_MS), "the broker did not close the silent connection");
    raw_drop(bob);
    EXPECT_NOTHING_ELSE(alice, NULL);
    client_free(alice);
    broker_free(b);
}

/* --- who receives what --------------------------------------------------------- */

/* dave subscribes to the channel's messages and events but gets nothing
 * until he joins, and nothing after he leaves. Each check ends with a
 * sentinel: alice's peer message to dave, sent after the channel message
 * on the same connection, so it arrives after anything the channel sent. */
static void sentinel(struct client *alice, struct client *dave, const char *text)
{
    CHECK_EQ_INT(client_publish_str(alice, "rtm/u/dave/msg/alice", text, 1), 0);
    struct msg *m = client_wait_msg(dave, "rtm/u/dave/msg/alice", WAIT_MS);
    CHECKF(m && strcmp(m->payload, text) == 0, "dave did not get the sentinel %s", text);
}

static void send_msg(struct client *alice, const char *text)
{
    CHECK_EQ_INT(client_publish_str(alice, "rtm/c/room/msg/alice", text, 1), 0);
    struct msg *m = client_wait_msg(alice, "rtm/c/room/msg/alice", WAIT_MS);
    CHECKF(m && strcmp(m->payload, text) == 0, "alice did not get her own %s", text);
}

static void test_members_only(void)
{
    struct broker *b = start(NULL);
    struct client *alice = open_uid(b, "alice", "alice", 5);
    struct client *dave = open_uid(b, "dave", "dave", 5);
    subscribe(alice, "rtm/c/room/#");
    subscribe(dave, "rtm/c/room/msg/+");
    subscribe(dave, ch_topic("room", "events"));
    subscribe(dave, "rtm/u/dave/msg/+");
    JOIN(alice, "alice", "room", 1);
    EXPECT_MEMBER_EVENT(alice, "room", "member_joined", "alice", 1);
    EXPECT_COUNT(alice, "room", 1);

    send_msg(alice, "m1");
    sentinel(alice, dave, "s1");
    EXPECT_NOTHING_ELSE(dave, NULL);

    cJSON *j = JOIN(dave, "dave", "room", 2);
    EXPECT_MEMBERS(j, "alice", "dave");
    EXPECT_MEMBER_EVENT(dave, "room", "member_joined", "dave", 2);
    EXPECT_MEMBER_EVENT(alice, "room", "member_joined", "dave", 2);
    send_msg(alice, "m2");
    struct msg *m = client_wait_msg(dave, "rtm/c/room/msg/alice", WAIT_MS);
    CHECKF(m && strcmp(m->payload, "m2") == 0, "dave, a member, did not get m2");
    CHECK(!m->retain);

    request(dave, "room", "leave"); /* applied before its PUBACK */
    EXPECT_MEMBER_EVENT(alice, "room", "member_left", "dave", 1);
    send_msg(alice, "m3");
    sentinel(alice, dave, "s2");
    EXPECT_NOTHING_ELSE(dave, NULL);
    /* Counts 2 and 1 went out, or neither if dave came and went within
     * the second. */
    client_consume_all(alice, ch_topic("room", "count"), (char *)NULL);
    EXPECT_NOTHING_ELSE(alice, NULL);
    client_free(alice);
    client_free(dave);
    broker_free(b);
}

/* --- answers and refusals ---------------------------------------------------------- */

static void test_answers_and_refusals(void)
{
    static const char *const opts[] = {"max_channels 2", NULL};
    struct broker *b = start(opts);
    struct client *alice = open_uid(b, "alice", "alice", 5);
    struct client *bob = open_uid(b, "bob", "bob", 5);
    struct client *carol = open_uid(b, "carol", "carol", 5);

    cJSON *j = JOIN(bob, "bob", "a", 1);
    EXPECT_MEMBERS(j, "bob");
    j = JOIN(alice, "alice", "a", 2);
    EXPECT_MEMBERS(j, "alice", "bob");
    j = MEMBERS(bob, "bob", "a", 2);
    EXPECT_MEMBERS(j, "alice", "bob");
    JOIN(alice, "alice", "b", 1);
    expect_refused(alice, "alice", ch_topic("c", "join"), false, "limit_exceeded");
    j = JOIN(alice, "alice", "a", 2); /* again: not one more */
    EXPECT_MEMBERS(j, "alice", "bob");

    expect_refused(carol, "carol", ch_topic("a", "members"), false, "not_party");
    expect_refused(carol, "carol", ch_topic("a", "msg/carol"), false, "not_party");
    expect_refused(bob, "bob", ch_topic("a", "msg/alice"), false, "not_party");
    expect_refused(alice, "alice", ch_topic("a", "count"), true, "not_party");
    expect_refused(alice, "alice", ch_topic("a", "events"), false, "not_party");
    expect_refused(carol, "carol", ch_topic("a", "join"), true, "bad_request");
    expect_refused(alice, "alice", ch_topic("a", "msg/alice"), true, "bad_request");

    static const char *const refused[] = {"rtm/c/+/count", "rtm/c/#", "rtm/c/+/msg/+",
                                          "rtm/c/a/join", "rtm/c/a/members"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        int granted = client_subscribe(carol, refused[i], 1);
        CHECKF(granted >= 0x80, "carol may subscribe to %s (granted 0x%02x)", refused[i],
               (unsigned)granted);
    }

    /* Any user reads the count without joining, and it is retained: once
     * carol has seen it reach 2, erin subscribing later gets 2 at once. */
    subscribe(carol, ch_topic("a", "count"));
    EXPECT_COUNT(carol, "a", 2);
    client_consume_all(carol, ch_topic("a", "count"), (char *)NULL); /* 1 first, perhaps */
    struct client *erin = open_uid(b, "erin", "erin", 4);
    subscribe(erin, ch_topic("a", "count"));
    struct msg *m = client_wait_msg(erin, ch_topic("a", "count"), WAIT_MS);
    CHECKF(m && m->retain, "no retained count for a new subscriber");
    CHECK(m->json);
    EXPECT_INT(m->json, "count", 2);
    EXPECT_NOTHING_ELSE(erin, NULL);
    client_free(erin);
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    EXPECT_NOTHING_ELSE(carol, NULL);
    client_free(alice);
    client_free(bob);
    client_free(carol);
    broker_free(b);
}

/* --- never stale after a restart ------------------------------------------------------ */

static struct broker *start_persistent(void)
{
    static const char *const extra[] = {"persistence true", "persistence_location @DIR@/",
                                        "autosave_interval 1", NULL};
    struct broker_opts o = {.extra_lines = extra};
    return broker_start(&o);
}

/* alice and bob in "room", its count 2 retained. */
static void populate(struct broker *b, struct client **alice, struct client **bob)
{
    *alice = open_uid(b, "alice", "alice", 5);
    *bob = open_uid(b, "bob", "bob", 5);
    JOIN(*alice, "alice", "room", 1);
    JOIN(*bob, "bob", "room", 2);
    struct client *obs = open_uid(b, "observer-0", "observer-0", 5);
    subscribe(obs, ch_topic("room", "count"));
    struct msg *m = expect_count_at(__FILE__, __LINE__, obs, "room", 2, WAIT_MS);
    (void)m;
    client_free(obs);
}

/* Waits for an autosave that completes from now on (test_restart.c says
 * why a new inode marks it). */
static void wait_autosave(struct broker *b)
{
    const char *db = broker_dir_file(b, "mosquitto.db");
    struct stat st;
    ino_t before = stat(db, &st) == 0 ? st.st_ino : 0;
    long mark = broker_log_mark(b);
    CHECKF(broker_wait_log(b, mark, "Saving in-memory database", 5000),
           "no autosave within 5 s (autosave_interval 1)");
    int64_t deadline = now_mono_ms() + 5000;
    while (!(stat(db, &st) == 0 && st.st_ino != before)) {
        CHECKF(now_mono_ms() < deadline, "the autosave did not complete within 5 s");
        rt_wait_ms(10);
    }
}

struct count_scan {
    int stale; /* non-empty counts other than `want` */
    int want;
};

static void scan_count(const struct msg *m, void *ud)
{
    struct count_scan *s = ud;
    if (m->len == 0)
        return;
    const cJSON *n = m->json ? cJSON_GetObjectItemCaseSensitive(m->json, "count") : NULL;
    if (!cJSON_IsNumber(n) || (int)n->valuedouble != s->want)
        s->stale++;
}

/* After the restart nobody has joined: a new subscriber to the count gets
 * none (at most the empty message that erases the stale one), until a
 * member joins again. */
static void check_after_restart(struct broker *b, long mark)
{
    struct client *obs = open_uid(b, "observer-1", "observer-1", 5);
    subscribe(obs, ch_topic("room", "count"));
    CHECKF(broker_wait_log_line(b, mark, WAIT_MS, "erased the retained message on rtm/c/room/count",
                                (char *)NULL),
           "the stale count was not erased when read");
    /* A second subscriber: the store holds nothing for the room now. */
    struct client *obs2 = open_uid(b, "observer-2", "observer-2", 5);
    subscribe(obs2, ch_topic("room", "count"));
    /* Positive control, and the sentinel: carol joins; her count comes
     * after anything older. */
    struct client *carol = open_uid(b, "carol", "carol", 5);
    JOIN(carol, "carol", "room", 1);
    EXPECT_COUNT(obs, "room", 1);
    EXPECT_COUNT(obs2, "room", 1);
    struct count_scan s = {0, 1};
    client_foreach(obs, ch_topic("room", "count"), scan_count, &s);
    client_foreach(obs2, ch_topic("room", "count"), scan_count, &s);
    if (s.stale) {
        client_dump(obs);
        client_dump(obs2);
        FAIL("after the restart a count from before it was shown");
    }
    CHECK_EQ_INT(client_count(obs2, ch_topic("room", "count"), "count", "1", (char *)NULL), 1);
    client_free(carol);
    client_free(obs);
    client_free(obs2);
}

/* The members' sessions end with the broker (stopped cleanly, or killed
 * after an autosave), then it starts again from its store. */
static void restart(bool kill9)
{
    struct broker *b = start_persistent();
    struct client *alice, *bob;
    populate(b, &alice, &bob);
    if (kill9) {
        wait_autosave(b);
        broker_kill9(b);
    } else {
        broker_stop(b);
    }
    CHECK(client_wait_disconnected(alice, WAIT_MS));
    client_free(alice);
    client_free(bob);
    long mark = broker_log_mark(b);
    broker_restart(b);
    check_after_restart(b, mark);
    broker_free(b);
}

static void test_clean_restart(void)
{
    restart(false);
}

static void test_kill9_restart(void)
{
    restart(true);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"member_dropped", test_member_dropped},
        {"member_timed_out", test_member_timed_out},
        {"members_only", test_members_only},
        {"answers_and_refusals", test_answers_and_refusals},
        {"clean_restart", test_clean_restart},
        {"kill9_restart", test_kill9_restart},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
