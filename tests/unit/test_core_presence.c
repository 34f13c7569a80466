/*
 * Presence and the delivery of pending invites to a callee that connects
 * (core_fixture.h has the fixture).
 */
#include "core_fixture.h"

/* ================================================================================
 * Presence
 * ================================================================================ */

static void test_presence_sessions(void **state)
{
    (void)state;
    boot();
    conn(&alice);
    expect_quiet(); /* nothing until the tick */
    T.now += 40;
    tick();
    assert_int_equal(T.rec.npubs, 1);
    expect_presence(&T.rec.pubs[0], "alice", true, 1);
    rec_clear();
    tick();
    expect_quiet();

    T.now += 100;
    conn(&alice2);
    expect_quiet();
    tick();
    assert_int_equal(T.rec.npubs, 1);
    expect_presence(&T.rec.pubs[0], "alice", true, 2);
    rec_clear();

    T.now += 100;
    disc(&alice);
    expect_quiet();
    tick();
    assert_int_equal(T.rec.npubs, 1);
    expect_presence(&T.rec.pubs[0], "alice", true, 1);
    rec_clear();

    T.now += 100;
    disc(&alice2);
    tick();
    assert_int_equal(T.rec.npubs, 1);
    expect_presence(&T.rec.pubs[0], "alice", false, 0);
    rec_clear();
    T.now += 100;
    tick();
    expect_quiet();
    struct rtm_core_stats s = stats();
    assert_int_equal(s.users, 0);
    assert_int_equal(s.sessions, 0);
}

static void test_presence_takeover(void **state)
{
    (void)state;
    boot();
    online(&alice);
    /* The new connection authenticates before the old one is dropped. */
    T.now += 100;
    conn(&alice_again);
    disc(&alice);
    tick();
    expect_quiet();
    assert_int_equal(stats().sessions, 1);
    tick();
    expect_quiet();
    /* The old handle is gone for good; the new session is the live one. */
    disc(&alice);
    tick();
    expect_quiet();
    T.now += 100;
    disc(&alice_again);
    tick();
    assert_int_equal(T.rec.npubs, 1);
    expect_presence(&T.rec.pubs[0], "alice", false, 0);
}

static void test_presence_refused_connection(void **state)
{
    (void)state;
    boot();
    conn(&bob);
    disc(&bob);
    tick();
    expect_quiet();
    struct rtm_core_stats s = stats();
    assert_int_equal(s.users, 0);
    assert_int_equal(s.sessions, 0);
    /* A refused second session does not change an online user's count. */
    online(&bob);
    conn(&bob2);
    disc(&bob2);
    tick();
    expect_quiet();
}

/* A session that lives less than one tick (accepted, publishes, gone) never
 * shows the user online, so there is nothing to publish: the user was
 * offline before and is offline after. */
static void test_presence_short_session_is_not_a_change(void **state)
{
    (void)state;
    boot();
    /* bob has placed a live call, so the core keeps his record. */
    online(&bob);
    expect_replace(&bob, "dave", INVITE_T("c-1", 60));
    offline(&bob);
    conn(&bob);
    expect_error(&bob, "alice", ANSWER("accept", "nope"), "unknown_invitation", "nope", "accept");
    disc(&bob);
    rec_clear();
    tick();
    expect_quiet();

    /* carol is named by nothing: the core frees her record once her
     * offline presence is out. The same short session must stay quiet. */
    online(&carol);
    offline(&carol);
    assert_int_equal(stats().users, 2);
    conn(&carol);
    expect_error(&carol, "alice", ANSWER("accept", "nope"), "unknown_invitation", "nope", "accept");
    disc(&carol);
    rec_clear();
    tick();
    expect_quiet();
}

static void test_presence_confirmed_by_publish(void **state)
{
    (void)state;
    boot();
    online(&alice);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob",
                   "{\"type\":\"invite\",\"id\":\"c-1\",\"timeout\":60,"
                   "\"channel\":\"room\"}");
    T.now += 30;
    conn(&bob);
    expect_quiet();
    /* bob publishes before any tick: confirmed at once, its pending invite
     * delivered to it, then its request handled. */
    rec_clear();
    const cJSON *j = expect_replace(&bob, "alice", ANSWER("ringing", "c-1"));
    assert_event(j, "ringing", "c-1", "alice", "bob", "bob", T.now);
    const struct pub *p = only_on(inbox("bob"));
    assert_string_equal(p->client_id, "bob-phone");
    assert_event(p->json, "invite", "c-1", "alice", "bob", "alice", t0);
    assert_int_equal(T.rec.npubs, 1);
    /* Presence waits for the tick; the invite is not delivered twice. */
    rec_clear();
    T.now += 20;
    tick();
    assert_int_equal(T.rec.npubs, 1);
    expect_presence(only_on(presence_topic("bob")), "bob", true, 1);
}

static void test_presence_confirmed_by_subscribe(void **state)
{
    (void)state;
    boot();
    online(&alice);
    expect_replace(&alice, "bob", INVITE_T("c-1", 60));
    conn(&bob);
    rec_clear();
    /* Subscribing confirms it: the invite is delivered once, not twice. */
    assert_int_equal(
        rtm_core_acl(T.core, &bob, RTM_ACCESS_SUBSCRIBE, inbox("bob"), NULL, 0, false, T.now),
        RTM_ACL_ALLOW);
    assert_int_equal(T.rec.npubs, 1);
    assert_string_equal(only_on(inbox("bob"))->client_id, "bob-phone");
    rec_clear();
    tick();
    assert_int_equal(T.rec.npubs, 1);
    expect_presence(&T.rec.pubs[0], "bob", true, 1);
}

/* ================================================================================
 * Pending delivery
 * ================================================================================ */

static void test_pending_delivery(void **state)
{
    (void)state;
    boot();
    online(&alice);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob",
                   "{\"type\":\"invite\",\"id\":\"c-1\",\"timeout\":60,"
                   "\"content\":\"hi\",\"channel\":\"room\"}");
    T.now += 100;
    conn(&bob);
    expect_quiet();
    T.now += 50;
    tick();
    assert_int_equal(T.rec.npubs, 2); /* the invite, and bob's presence */
    const struct pub *p = only_on(inbox("bob"));
    assert_string_equal(p->client_id, "bob-phone");
    assert_int_equal(p->qos, 1);
    assert_false(p->retain);
    assert_keys(p->json, "type", "id", "caller", "callee", "by", "ts", "content", "channel",
                "expires_at", NULL);
    assert_event(p->json, "invite", "c-1", "alice", "bob", "alice", t0);
    assert_string_equal(jstr(p->json, "content"), "hi");
    assert_string_equal(jstr(p->json, "channel"), "room");
    assert_int_equal(jnum(p->json, "expires_at"), t0 + 60000);
    expect_presence(only_on(presence_topic("bob")), "bob", true, 1);
    rec_clear();
    tick();
    expect_quiet();

    /* Subscribing to its inbox again (a confirmed session) re-delivers. */
    assert_int_equal(
        rtm_core_acl(T.core, &bob, RTM_ACCESS_SUBSCRIBE, inbox("bob"), NULL, 0, false, T.now),
        RTM_ACL_ALLOW);
    p = only_on(inbox("bob"));
    assert_int_equal(T.rec.npubs, 1);
    assert_string_equal(p->client_id, "bob-phone");
    assert_event(p->json, "invite", "c-1", "alice", "bob", "alice", t0);
    rec_clear();
    assert_int_equal(
        rtm_core_acl(T.core, &bob, RTM_ACCESS_SUBSCRIBE, "rtm/u/bob/#", NULL, 0, false, T.now),
        RTM_ACL_ALLOW);
    assert_int_equal(T.rec.npubs, 1);
    assert_string_equal(only_on(inbox("bob"))->client_id, "bob-phone");
    rec_clear();
    /* A filter that does not cover the inbox: nothing. */
    assert_int_equal(
        rtm_core_acl(T.core, &bob, RTM_ACCESS_SUBSCRIBE, "rtm/presence/+", NULL, 0, false, T.now),
        RTM_ACL_ALLOW);
    expect_quiet();

    /* A second device gets it on its own. */
    conn(&bob2);
    tick();
    assert_int_equal(count_on(inbox("bob")), 1);
    assert_string_equal(only_on(inbox("bob"))->client_id, "bob-tablet");
    expect_presence(only_on(presence_topic("bob")), "bob", true, 2);

    /* Ended invitations are not delivered. */
    expect_replace(&alice, "bob", ANSWER("cancel", "c-1"));
    rec_clear();
    assert_int_equal(
        rtm_core_acl(T.core, &bob, RTM_ACCESS_SUBSCRIBE, inbox("bob"), NULL, 0, false, T.now),
        RTM_ACL_ALLOW);
    expect_quiet();
    offline(&bob2);
    conn(&bob2);
    tick();
    assert_int_equal(count_on(inbox("bob")), 0);
}

/* Debug lines (here: each presence change) only with debug_log. */
static void test_debug_lines_only_when_asked(void **state)
{
    (void)state;
    for (int asked = 0; asked <= 1; asked++) {
        T.cfg.debug_log = asked;
        boot();
        conn(&alice);
        T.now += 40;
        tick();
        assert_int_equal(T.rec.npubs, 1);
        size_t debug = 0;
        for (size_t i = 0; i < T.rec.nlogs; i++)
            if (T.rec.logs[i].level == RTM_LOG_DEBUG) {
                assert_string_equal(T.rec.logs[i].text, "rtm: presence alice online sessions=1");
                debug++;
            }
        assert_int_equal(debug, (size_t)asked);
        rtm_core_free(T.core);
        T.core = NULL;
        rec_clear();
    }
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, core_setup, core_teardown)
    const struct CMUnitTest tests[] = {
        T_(test_presence_sessions),
        T_(test_presence_takeover),
        T_(test_presence_refused_connection),
        T_(test_presence_short_session_is_not_a_change),
        T_(test_presence_confirmed_by_publish),
        T_(test_presence_confirmed_by_subscribe),
        T_(test_pending_delivery),
        T_(test_debug_lines_only_when_asked),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
