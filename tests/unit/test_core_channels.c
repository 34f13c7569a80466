/*
 * Channels (SPEC 8.2) through the core's public API (core_fixture.h): the
 * joined and members answers, member events, the coalesced count and its
 * erasure, disconnects and takeovers, the READ and WRITE checks, the stats,
 * and that every record is freed once the sessions are gone.
 */
#include "core_fixture.h"
#include "rtm_message.h" /* enum rtm_err: the index of rtm_core_stats.refused */

#include <stdio.h>
#include <string.h>

/* --- helpers -------------------------------------------------------------------- */

/* rtm/c/{ch}/{what}, in one of a few rotating buffers. */
static const char *ch_topic(const char *ch, const char *what)
{
    static char buf[8][160];
    static unsigned next;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof(buf[0]), "rtm/c/%s/%s", ch, what);
    return b;
}

static enum rtm_verdict request(const struct rtm_client *c, const char *ch, const char *what)
{
    return send_raw(c, ch_topic(ch, what), "", 0, false);
}

/* A request that is applied: RTM_PASS, after forgetting what came before. */
static void apply(const struct rtm_client *c, const char *ch, const char *what)
{
    rec_clear();
    enum rtm_verdict v = request(c, ch, what);
    if (v != RTM_PASS && T.rec.npubs)
        print_error("%s %s: %s\n", what, ch, T.rec.pubs[0].payload);
    assert_int_equal(v, RTM_PASS);
}

static void join(const struct rtm_client *c, const char *ch)
{
    apply(c, ch, "join");
}

static void leave(const struct rtm_client *c, const char *ch)
{
    apply(c, ch, "leave");
}

/* The only publish to `c`'s inbox is a `type` answer aimed at `c` alone,
 * about `ch` with `count` members, listing exactly `uids` (NULL-terminated). */
static void expect_answer(const struct rtm_client *c, const char *type, const char *ch,
                          int64_t count, bool truncated, const char *const *uids)
{
    const struct pub *p = only_on(inbox(c->uid));
    assert_non_null(p->client_id);
    assert_string_equal(p->client_id, c->client_id);
    assert_int_equal(p->qos, 1);
    assert_false(p->retain);
    assert_keys(p->json, "type", "channel", "count", "members", "truncated", "ts", NULL);
    assert_string_equal(jstr(p->json, "type"), type);
    assert_string_equal(jstr(p->json, "channel"), ch);
    assert_int_equal(jnum(p->json, "count"), count);
    assert_int_equal(jnum(p->json, "ts"), T.now);
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(p->json, "truncated");
    assert_true(cJSON_IsBool(tr));
    assert_int_equal(cJSON_IsTrue(tr), truncated);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(p->json, "members");
    assert_true(cJSON_IsArray(m));
    int n = 0;
    for (const cJSON *e = m->child; e; e = e->next, n++) {
        assert_non_null(uids[n]);
        assert_true(cJSON_IsString(e));
        assert_string_equal(e->valuestring, uids[n]);
    }
    assert_null(uids[n]);
}

#define UIDS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NO_UIDS   ((const char *const[]){NULL})

/* The only publish on the channel's events topic is this member event. */
static void expect_event(const char *ch, const char *type, const char *uid, int64_t count)
{
    const struct pub *p = only_on(ch_topic(ch, "events"));
    assert_null(p->client_id);
    assert_int_equal(p->qos, 1);
    assert_false(p->retain);
    assert_keys(p->json, "type", "channel", "uid", "count", "ts", NULL);
    assert_string_equal(jstr(p->json, "type"), type);
    assert_string_equal(jstr(p->json, "channel"), ch);
    assert_string_equal(jstr(p->json, "uid"), uid);
    assert_int_equal(jnum(p->json, "count"), count);
    assert_int_equal(jnum(p->json, "ts"), T.now);
}

/* The only publish on the channel's count topic is its retained count. */
static void expect_count(const char *ch, int64_t count)
{
    const struct pub *p = only_on(ch_topic(ch, "count"));
    assert_null(p->client_id);
    assert_int_equal(p->qos, 1);
    assert_true(p->retain);
    assert_keys(p->json, "channel", "count", "ts", NULL);
    assert_string_equal(jstr(p->json, "channel"), ch);
    assert_int_equal(jnum(p->json, "count"), count);
    assert_int_equal(jnum(p->json, "ts"), T.now);
}

/* The only publish on `topic` (others may come with it) erased it: empty,
 * retained, to everyone. */
static void expect_erased_among(const char *topic)
{
    assert_int_equal(count_on(topic), 1);
    for (size_t i = 0; i < T.rec.npubs; i++) {
        const struct pub *p = &T.rec.pubs[i];
        if (strcmp(p->topic, topic) == 0) {
            assert_null(p->client_id);
            assert_true(p->retain);
            assert_int_equal(p->payload_len, 0);
        }
    }
}

/* The request is refused: RTM_DENY and one error, to the sending session's
 * inbox only, that names the topic. */
static void expect_refused(const struct rtm_client *c, const char *topic, bool retain,
                           const char *code)
{
    rec_clear();
    assert_int_equal(send_raw(c, topic, "", 0, retain), RTM_DENY);
    assert_int_equal(T.rec.npubs, 1);
    const struct pub *p = &T.rec.pubs[0];
    assert_string_equal(p->topic, inbox(c->uid));
    assert_non_null(p->client_id);
    assert_string_equal(p->client_id, c->client_id);
    assert_false(p->retain);
    assert_keys(p->json, "type", "code", "message", "topic", "ts", NULL);
    assert_string_equal(jstr(p->json, "type"), "error");
    assert_string_equal(jstr(p->json, "code"), code);
    assert_string_equal(jstr(p->json, "topic"), topic);
    assert_int_equal(jnum(p->json, "ts"), T.now);
    rec_clear();
}

static enum rtm_acl acl_read(const struct rtm_client *c, const char *topic, const char *payload,
                             bool retain)
{
    return rtm_core_acl(T.core, c, RTM_ACCESS_READ, topic, payload, strlen(payload), retain, T.now);
}

static enum rtm_acl acl_write(const struct rtm_client *c, const char *topic)
{
    return rtm_core_acl(T.core, c, RTM_ACCESS_WRITE, topic, "hi", 2, false, T.now);
}

static void expect_channels(size_t channels, size_t memberships)
{
    struct rtm_core_stats s = stats();
    assert_int_equal(s.channels, channels);
    assert_int_equal(s.memberships, memberships);
}

/* Every client in `cs` goes away, a second passes and then two more: no
 * channel, membership or record of any kind is left. */
static void expect_all_freed(const struct rtm_client *const *cs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        disc(cs[i]);
    tick();
    tick_at(T.now + 1000);
    tick_at(T.now + 2000);
    expect_channels(0, 0);
    assert_int_equal(stats().pool_records, 0);
    assert_int_equal(stats().timers, 0);
}

/* --- joined answers --------------------------------------------------------------- */

static void test_join_answer_sorted(void **state)
{
    (void)state;
    boot();
    online(&carol);
    online(&alice);
    online(&bob);
    join(&carol, "room");
    assert_int_equal(T.rec.npubs, 2);
    expect_answer(&carol, "joined", "room", 1, false, UIDS("carol"));
    expect_event("room", "member_joined", "carol", 1);
    rec_clear();
    tick();
    assert_int_equal(T.rec.npubs, 1);
    expect_count("room", 1);

    T.now += 10;
    join(&alice, "room");
    assert_int_equal(T.rec.npubs, 2);
    expect_answer(&alice, "joined", "room", 2, false, UIDS("alice", "carol"));
    expect_event("room", "member_joined", "alice", 2);
    join(&bob, "room");
    assert_int_equal(T.rec.npubs, 2);
    expect_answer(&bob, "joined", "room", 3, false, UIDS("alice", "bob", "carol"));
    expect_event("room", "member_joined", "bob", 3);

    /* A member asks again: the same list, as `members`, to it alone. */
    apply(&carol, "room", "members");
    assert_int_equal(T.rec.npubs, 1);
    expect_answer(&carol, "members", "room", 3, false, UIDS("alice", "bob", "carol"));
    expect_channels(1, 3);
    const struct rtm_client *all[] = {&alice, &bob, &carol};
    expect_all_freed(all, 3);
}

/* 600 users: each answer lists at most 512 uids, the first in uid order;
 * member events stop above member_events_max (512) and resume below it. */
#define CROWD 600
static struct rtm_client crowd[CROWD];
static char crowd_names[CROWD][2][16];

static void crowd_init(void)
{
    for (int i = 0; i < CROWD; i++) {
        snprintf(crowd_names[i][0], 16, "u%03d", i);
        snprintf(crowd_names[i][1], 16, "u%03d-phone", i);
        crowd[i] = (struct rtm_client){&crowd[i], crowd_names[i][0], crowd_names[i][1]};
    }
}

static void expect_crowd_answer(const struct rtm_client *c, const char *type, int64_t count)
{
    const struct pub *p = only_on(inbox(c->uid));
    assert_string_equal(jstr(p->json, "type"), type);
    assert_int_equal(jnum(p->json, "count"), count);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(p->json, "members");
    int n = 0;
    for (const cJSON *e = m->child; e; e = e->next, n++)
        assert_string_equal(e->valuestring, crowd_names[n][0]);
    assert_int_equal(n, count < 512 ? count : 512);
    assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p->json, "truncated")),
                     count > 512);
}

static void test_truncated_at_512(void **state)
{
    (void)state;
    boot();
    crowd_init();
    /* 7 and 600 are coprime: i * 7 % 600 visits every user, out of order. */
    for (int i = 0; i < CROWD; i++)
        online(&crowd[i * 7 % CROWD]);
    for (int i = 0; i < CROWD; i++) {
        const struct rtm_client *c = &crowd[i * 7 % CROWD];
        join(c, "big");
        assert_int_equal(count_on(ch_topic("big", "events")), i + 1 <= 512);
        if (i + 1 <= 512)
            expect_event("big", "member_joined", c->uid, i + 1);
    }
    expect_crowd_answer(&crowd[(CROWD - 1) * 7 % CROWD], "joined", CROWD);
    apply(&crowd[5], "big", "members");
    expect_crowd_answer(&crowd[5], "members", CROWD);
    tick();
    expect_count("big", CROWD);

    /* Leaving from k members is shown when k <= 512. */
    size_t left_events = 0;
    for (int i = 0; i < CROWD; i++) {
        leave(&crowd[i], "big");
        left_events += count_on(ch_topic("big", "events"));
        if (CROWD - i <= 512)
            expect_event("big", "member_left", crowd[i].uid, CROWD - i - 1);
    }
    assert_int_equal(left_events, 512);
    const struct rtm_client *all[CROWD];
    for (int i = 0; i < CROWD; i++)
        all[i] = &crowd[i];
    expect_all_freed(all, CROWD);
}

static void test_join_twice(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&alice2);
    join(&alice, "room");
    tick();
    T.now += 2000;
    /* Again: answered again, nothing else. */
    join(&alice, "room");
    assert_int_equal(T.rec.npubs, 1);
    expect_answer(&alice, "joined", "room", 1, false, UIDS("alice"));
    /* alice's second session: a membership, not a member. */
    join(&alice2, "room");
    assert_int_equal(T.rec.npubs, 1);
    expect_answer(&alice2, "joined", "room", 1, false, UIDS("alice"));
    expect_channels(1, 2);
    rec_clear();
    tick_at(T.now + 5000);
    expect_quiet();
    const struct rtm_client *all[] = {&alice, &alice2};
    expect_all_freed(all, 2);
}

static void test_leave_not_member(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    /* A channel nobody is in: nothing happens, nothing is made. */
    leave(&alice, "nowhere");
    expect_quiet();
    expect_channels(0, 0);
    size_t records = stats().pool_records;
    join(&alice, "room");
    tick();
    rec_clear();
    /* bob is not in it: nothing happens. */
    leave(&bob, "room");
    expect_quiet();
    tick_at(T.now + 3000);
    expect_quiet();
    expect_channels(1, 1);
    /* alice leaves: her member_left, and no answer. */
    leave(&alice, "room");
    assert_int_equal(T.rec.npubs, 1);
    expect_event("room", "member_left", "alice", 0);
    rec_clear();
    leave(&alice, "room");
    expect_quiet();
    tick();
    expect_erased_among(ch_topic("room", "count"));
    tick_at(T.now + 1000);
    /* The channel's records are gone; alice's join_rate bucket (a user
     * extension) stays while she is online, as every rate bucket does. */
    assert_int_equal(stats().pool_records, records + 1);
    const struct rtm_client *all[] = {&alice, &bob};
    expect_all_freed(all, 2);
}

/* --- refusals ---------------------------------------------------------------------- */

static void test_max_channels(void **state)
{
    (void)state;
    T.cfg.max_channels = 3;
    boot();
    online(&alice);
    join(&alice, "a");
    join(&alice, "b");
    join(&alice, "c");
    expect_refused(&alice, ch_topic("d", "join"), false, "limit_exceeded");
    expect_channels(3, 3);
    /* Joining one it is in is not one more. */
    join(&alice, "c");
    expect_answer(&alice, "joined", "c", 1, false, UIDS("alice"));
    /* Another session has its own limit. */
    online(&alice2);
    join(&alice2, "d");
    expect_answer(&alice2, "joined", "d", 1, false, UIDS("alice"));
    leave(&alice, "b");
    join(&alice, "d");
    expect_answer(&alice, "joined", "d", 1, false, UIDS("alice"));
    expect_channels(3, 4);
    struct rtm_core_stats s = stats();
    assert_int_equal(s.refused[RTM_ERR_LIMIT_EXCEEDED], 1);
    const struct rtm_client *all[] = {&alice, &alice2};
    expect_all_freed(all, 2);
}

static void test_request_refusals(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    join(&alice, "room");
    /* Only a member session asks for the members. */
    expect_refused(&bob, ch_topic("room", "members"), false, "not_party");
    expect_refused(&bob, ch_topic("empty", "members"), false, "not_party");
    /* Requests are never retained, whatever they ask. */
    expect_refused(&bob, ch_topic("room", "join"), true, "bad_request");
    expect_refused(&alice, ch_topic("room", "leave"), true, "bad_request");
    expect_refused(&alice, ch_topic("room", "members"), true, "bad_request");
    /* A uid without a tracked session (dave never connected). */
    expect_refused(&dave, ch_topic("room", "join"), false, "bad_request");
    expect_channels(1, 1);
    struct rtm_core_stats s = stats();
    assert_int_equal(s.refused[RTM_ERR_NOT_PARTY], 2);
    assert_int_equal(s.refused[RTM_ERR_BAD_REQUEST], 4);
    const struct rtm_client *all[] = {&alice, &bob};
    expect_all_freed(all, 2);
}

/* --- member events ------------------------------------------------------------------ */

static void test_member_events_max(void **state)
{
    (void)state;
    T.cfg.member_events_max = 2;
    boot();
    online(&alice);
    online(&bob);
    online(&carol);
    join(&alice, "room");
    expect_event("room", "member_joined", "alice", 1);
    join(&bob, "room");
    expect_event("room", "member_joined", "bob", 2);
    join(&carol, "room");
    assert_int_equal(count_on(ch_topic("room", "events")), 0);
    /* From 3 to 2: not shown, like the join from 2 to 3. */
    leave(&carol, "room");
    assert_int_equal(T.rec.npubs, 0);
    leave(&bob, "room");
    expect_event("room", "member_left", "bob", 1);
    const struct rtm_client *all[] = {&alice, &bob, &carol};
    expect_all_freed(all, 3);
}

static void test_member_events_off(void **state)
{
    (void)state;
    T.cfg.member_events_max = 0;
    boot();
    online(&alice);
    join(&alice, "room");
    assert_int_equal(T.rec.npubs, 1); /* the answer only */
    expect_answer(&alice, "joined", "room", 1, false, UIDS("alice"));
    leave(&alice, "room");
    expect_quiet();
    const struct rtm_client *all[] = {&alice};
    expect_all_freed(all, 1);
}

/* --- the count ------------------------------------------------------------------------ */

static void test_count_coalesced(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    online(&carol);
    online(&dave);
    int64_t t0 = T.now;
    join(&alice, "room");
    assert_int_equal(count_on(ch_topic("room", "count")), 0);
    rec_clear();
    tick(); /* the first change goes out at once */
    expect_count("room", 1);
    /* Three changes within the second: one count, a second after the first. */
    T.now = t0 + 100;
    join(&bob, "room");
    T.now = t0 + 200;
    join(&carol, "room");
    T.now = t0 + 300;
    leave(&carol, "room");
    rec_clear();
    tick_at(t0 + 999);
    expect_quiet();
    tick_at(t0 + 1000);
    assert_int_equal(T.rec.npubs, 1);
    expect_count("room", 2);
    rec_clear();
    tick_at(t0 + 4000);
    expect_quiet();
    /* After a quiet second, a change goes out at once. */
    T.now = t0 + 5000;
    join(&dave, "room");
    rec_clear();
    tick();
    expect_count("room", 3);
    /* Changes that cancel out within the second publish nothing. */
    T.now = t0 + 5100;
    leave(&dave, "room");
    T.now = t0 + 5200;
    join(&dave, "room");
    rec_clear();
    tick_at(t0 + 6000);
    expect_quiet();
    tick_at(t0 + 9000);
    expect_quiet();
    assert_int_equal(stats().timers, 0);
    const struct rtm_client *all[] = {&alice, &bob, &carol, &dave};
    expect_all_freed(all, 4);
}

static void test_count_erased_when_empty(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    int64_t t0 = T.now;
    join(&alice, "room");
    tick();
    expect_count("room", 1);
    T.now = t0 + 1500;
    leave(&alice, "room");
    rec_clear();
    tick();
    assert_int_equal(T.rec.npubs, 1);
    expect_erased_among(ch_topic("room", "count"));
    expect_channels(0, 0);
    /* Back within the second after the erase, gone and back again: its
     * count waits for that second to end. */
    T.now = t0 + 1600;
    join(&bob, "room");
    T.now = t0 + 1700;
    leave(&bob, "room");
    rec_clear();
    tick();
    expect_quiet();
    T.now = t0 + 1800;
    join(&bob, "room");
    rec_clear();
    tick();
    tick_at(t0 + 2499);
    expect_quiet();
    tick_at(t0 + 2500);
    expect_count("room", 1);
    /* Empty again: the record lingers a second after the erase, then goes. */
    T.now = t0 + 4000;
    leave(&bob, "room");
    rec_clear();
    tick();
    expect_erased_among(ch_topic("room", "count"));
    assert_true(stats().pool_records > 0);
    offline(&alice);
    offline(&bob);
    tick_at(t0 + 4999);
    assert_int_equal(stats().pool_records, 1); /* the channel alone */
    rec_clear();
    tick_at(t0 + 5000);
    expect_quiet();
    assert_int_equal(stats().pool_records, 0);
    assert_int_equal(stats().timers, 0);
}

static void test_count_never_shown(void **state)
{
    (void)state;
    boot();
    online(&alice);
    /* Joined and gone before the timer fired: nothing ever published. */
    join(&alice, "room");
    leave(&alice, "room");
    rec_clear();
    tick();
    tick_at(T.now + 3000);
    expect_quiet();
    expect_channels(0, 0);
    /* Nothing pending, so the record went at once. */
    offline(&alice);
    assert_int_equal(stats().pool_records, 0);
    assert_int_equal(stats().timers, 0);
}

/* --- sessions ending -------------------------------------------------------------------- */

static void test_disconnect_leaves_all(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    join(&alice, "r1");
    join(&alice, "r2");
    join(&alice, "r3");
    join(&bob, "r1");
    tick();
    T.now += 2000;
    rec_clear();
    disc(&alice);
    assert_int_equal(count_type("member_left"), 3);
    expect_event("r1", "member_left", "alice", 1);
    expect_event("r2", "member_left", "alice", 0);
    expect_event("r3", "member_left", "alice", 0);
    rec_clear();
    tick();
    expect_count("r1", 1);
    expect_erased_among(ch_topic("r2", "count"));
    expect_erased_among(ch_topic("r3", "count"));
    expect_channels(1, 1);
    /* Its handle is a member of nothing any more. */
    assert_int_equal(acl_read(&alice, ch_topic("r1", "msg/bob"), "x", false), RTM_ACL_DENY);
    const struct rtm_client *all[] = {&bob};
    expect_all_freed(all, 1);
}

/* Two sessions of one uid: alice stays a member until the last one leaves,
 * through a takeover of her first connection by a new one. */
static void test_takeover(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&alice2);
    online(&bob);
    join(&alice, "room");
    join(&alice2, "room");
    join(&bob, "room");
    tick();
    rec_clear();
    /* The new connection authenticates before the old one is gone. */
    conn(&alice_again);
    disc(&alice);
    tick();
    assert_int_equal(count_on(ch_topic("room", "events")), 0);
    join(&alice_again, "room");
    assert_int_equal(T.rec.npubs, 1);
    expect_answer(&alice_again, "joined", "room", 2, false, UIDS("alice", "bob"));
    offline(&alice2);
    T.now += 2000;
    rec_clear();
    disc(&alice_again);
    expect_event("room", "member_left", "alice", 1);
    rec_clear();
    tick();
    expect_count("room", 1);
    const struct rtm_client *all[] = {&bob};
    expect_all_freed(all, 1);
}

/* --- who may read and send --------------------------------------------------------------- */

static void test_read_messages_and_events(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    join(&alice, "room");
    join(&bob, "other"); /* a member of a channel, but not of this one */
    rec_clear();
    const char *const topics[] = {ch_topic("room", "msg/alice"), ch_topic("room", "events")};
    for (int i = 0; i < 2; i++) {
        const char *topic = topics[i];
        assert_int_equal(acl_read(&alice, topic, "hi", false), RTM_ACL_ALLOW);
        assert_int_equal(acl_read(&bob, topic, "hi", false), RTM_ACL_DENY);
        join(&bob, "room");
        assert_int_equal(acl_read(&bob, topic, "hi", false), RTM_ACL_ALLOW);
        leave(&bob, "room");
        assert_int_equal(acl_read(&bob, topic, "hi", false), RTM_ACL_DENY);
        rec_clear();
        /* Never retained: erased and denied, even to a member. */
        assert_int_equal(acl_read(&alice, topic, "old", true), RTM_ACL_DENY);
        assert_int_equal(T.rec.npubs, 1);
        expect_erased_among(topic);
        rec_clear();
        assert_int_equal(acl_read(&alice, topic, "", true), RTM_ACL_DENY);
        expect_quiet();
    }
    const struct rtm_client *all[] = {&alice, &bob};
    expect_all_freed(all, 2);
}

static void test_read_count(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    const char *topic = ch_topic("room", "count");
    const char *stale = "{\"channel\":\"room\",\"count\":5,\"ts\":1}";
    /* No record: a stored count is from before a restart, or foreign. */
    assert_int_equal(acl_read(&bob, topic, stale, true), RTM_ACL_DENY);
    expect_erased_among(topic);
    rec_clear();
    assert_int_equal(acl_read(&bob, topic, "not json", true), RTM_ACL_DENY);
    expect_erased_among(topic);
    rec_clear();
    assert_int_equal(acl_read(&bob, topic, stale, false), RTM_ACL_DENY);
    expect_quiet();
    /* The fan-out of an erase. */
    assert_int_equal(acl_read(&bob, topic, "", true), RTM_ACL_ALLOW);
    expect_quiet();
    /* Joined, the count not out yet: still stale. */
    join(&alice, "room");
    rec_clear();
    assert_int_equal(acl_read(&bob, topic, stale, true), RTM_ACL_DENY);
    expect_erased_among(topic);
    rec_clear();
    tick();
    expect_count("room", 1);
    /* What was published is shown to anyone, member or not. */
    char shown[256];
    snprintf(shown, sizeof(shown), "%s", only_on(topic)->payload);
    assert_int_equal(acl_read(&bob, topic, shown, true), RTM_ACL_ALLOW);
    assert_int_equal(acl_read(&alice, topic, shown, false), RTM_ACL_ALLOW);
    /* Another count is not shown, and not erased: ours may be queued behind it. */
    rec_clear();
    assert_int_equal(acl_read(&bob, topic, stale, true), RTM_ACL_DENY);
    assert_int_equal(acl_read(&bob, topic, "garbage", true), RTM_ACL_DENY);
    assert_int_equal(acl_read(&bob, topic, "{\"channel\":\"other\",\"count\":1,\"ts\":1}", true),
                     RTM_ACL_DENY);
    expect_quiet();
    /* A count of one member no longer holds once the count moved on. */
    join(&bob, "room");
    rec_clear();
    tick_at(T.now + 1000);
    expect_count("room", 2);
    assert_int_equal(acl_read(&bob, topic, shown, true), RTM_ACL_DENY);
    const struct rtm_client *all[] = {&alice, &bob};
    expect_all_freed(all, 2);
}

static void test_is_member_after_leave(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    const char *msg = ch_topic("room", "msg/alice");
    rec_clear();
    assert_int_equal(acl_write(&alice, msg), RTM_ACL_DENY);
    join(&alice, "room");
    join(&bob, "room");
    rec_clear();
    assert_int_equal(acl_write(&alice, msg), RTM_ACL_ALLOW);
    expect_quiet();
    /* A member writes only as itself. */
    assert_int_equal(acl_write(&bob, msg), RTM_ACL_DENY);
    leave(&alice, "room");
    rec_clear();
    assert_int_equal(acl_write(&alice, msg), RTM_ACL_DENY);
    const struct pub *p = only_on(inbox("alice"));
    assert_string_equal(jstr(p->json, "code"), "not_party");
    assert_string_equal(jstr(p->json, "topic"), msg);
    /* Another session of the same uid is not a member either. */
    online(&alice2);
    assert_int_equal(acl_write(&alice2, msg), RTM_ACL_DENY);
    const struct rtm_client *all[] = {&alice, &alice2, &bob};
    expect_all_freed(all, 3);
}

/* Many channels per session and many sessions per channel, joined and left
 * in mixed orders: the memberships stay exact on both sides. */
static void test_many_memberships(void **state)
{
    (void)state;
    T.cfg.max_channels = 40;
    T.cfg.join_rate = 1000;
    boot();
    const struct rtm_client *cs[] = {&alice, &alice2, &bob, &bob2, &carol};
    for (int i = 0; i < 5; i++)
        online(cs[i]);
    char name[40][8];
    for (int ch = 0; ch < 40; ch++) {
        snprintf(name[ch], sizeof(name[ch]), "c%02d", ch);
        for (int i = 0; i < 5; i++) {
            if ((ch + i) % 3 != 0)
                join(cs[i], name[ch]);
        }
    }
    size_t memberships = 0;
    for (int ch = 0; ch < 40; ch++) {
        for (int i = 0; i < 5; i++) {
            bool member = (ch + i) % 3 != 0;
            memberships += member;
            enum rtm_acl want = member ? RTM_ACL_ALLOW : RTM_ACL_DENY;
            char topic[512];
            snprintf(topic, sizeof(topic), "rtm/c/%s/events", name[ch]);
            assert_int_equal(acl_read(cs[i], topic, "{}", false), want);
        }
    }
    expect_channels(40, memberships);
    /* Every other channel left by everyone, from the last one down. */
    for (int ch = 39; ch >= 0; ch -= 2) {
        for (int i = 0; i < 5; i++)
            leave(cs[i], name[ch]);
    }
    for (int ch = 0; ch < 40; ch++) {
        char topic[512];
        snprintf(topic, sizeof(topic), "rtm/c/%s/msg/x", name[ch]);
        bool member = ch % 2 == 0 && (ch + 0) % 3 != 0;
        assert_int_equal(acl_read(&alice, topic, "m", false),
                         member ? RTM_ACL_ALLOW : RTM_ACL_DENY);
    }
    expect_all_freed(cs, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_join_answer_sorted, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_at_512, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_join_twice, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_leave_not_member, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_max_channels, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_request_refusals, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_member_events_max, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_member_events_off, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_count_coalesced, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_count_erased_when_empty, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_count_never_shown, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_leaves_all, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_takeover, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_read_messages_and_events, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_read_count, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_is_member_after_leave, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_many_memberships, core_setup, core_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
