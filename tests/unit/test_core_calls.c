/*
 * The core's calls when all goes well (core_fixture.h has the fixture):
 * every event stamped, re-sent requests answered as the first, and ended
 * ids remembered for a while, then forgotten.
 */
#include "core_fixture.h"

#include <stdlib.h>

/* ================================================================================
 * Happy paths
 * ================================================================================ */

static void test_invite_is_stamped(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    T.now += 1234;
    const cJSON *j = expect_replace(
        &alice, "bob",
        "{\"type\":\"invite\",\"id\":\"c-7f3a\",\"content\":\"{\\\"video\\\":true}\","
        "\"channel\":\"room-42\",\"caller\":\"mallory\",\"callee\":\"zed\",\"by\":\"mallory\","
        "\"ts\":5,\"expires_at\":7,\"reason\":\"x\",\"response\":\"r\",\"extra\":{\"a\":1}}");
    assert_keys(j, "type", "id", "caller", "callee", "by", "ts", "content", "channel", "expires_at",
                NULL);
    assert_event(j, "invite", "c-7f3a", "alice", "bob", "alice", T.now);
    assert_string_equal(jstr(j, "content"), "{\"video\":true}");
    assert_string_equal(jstr(j, "channel"), "room-42");
    assert_int_equal(jnum(j, "expires_at"), T.now + INVITE_MS);
    expect_quiet(); /* an invite is delivered as the broker's own copy only */

    /* content and channel absent: ""; the invite's own timeout sets expires_at. */
    j = expect_replace(&alice, "bob", INVITE_T("c-2", 5));
    assert_keys(j, "type", "id", "caller", "callee", "by", "ts", "content", "channel", "expires_at",
                NULL);
    assert_event(j, "invite", "c-2", "alice", "bob", "alice", T.now);
    assert_string_equal(jstr(j, "content"), "");
    assert_string_equal(jstr(j, "channel"), "");
    assert_int_equal(jnum(j, "expires_at"), T.now + 5000);
    expect_quiet();

    struct rtm_core_stats s = stats();
    assert_int_equal(s.calls_live, 2);
    assert_int_equal(s.calls_remembered, 0);
}

static void test_ringing_is_stamped(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-1"));
    T.now += 300;
    const cJSON *j = expect_replace(&bob, "alice",
                                    "{\"type\":\"ringing\",\"id\":\"c-1\",\"caller\":\"bob\","
                                    "\"by\":\"alice\",\"ts\":1,\"content\":\"x\","
                                    "\"expires_at\":3,\"extra\":true}");
    assert_keys(j, "type", "id", "caller", "callee", "by", "ts", NULL);
    assert_event(j, "ringing", "c-1", "alice", "bob", "bob", t0 + 300);
    expect_quiet(); /* ringing goes to the caller's inbox only */
    assert_int_equal(stats().calls_live, 1);
}

static void test_accept_reaches_both_inboxes(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    expect_replace(&alice, "bob", INVITE("c-1"));
    T.now += 100;
    expect_replace(&bob, "alice", ANSWER("ringing", "c-1"));
    T.now += 400;
    const cJSON *j = expect_replace(&bob, "alice",
                                    "{\"type\":\"accept\",\"id\":\"c-1\",\"response\":\"ok\","
                                    "\"caller\":\"x\",\"callee\":\"y\",\"by\":\"alice\","
                                    "\"ts\":9,\"expires_at\":9,\"reason\":\"no\",\"more\":[1]}");
    assert_keys(j, "type", "id", "caller", "callee", "by", "ts", "response", NULL);
    assert_event(j, "accept", "c-1", "alice", "bob", "bob", T.now);
    assert_string_equal(jstr(j, "response"), "ok");
    expect_own_copy(&bob);

    struct rtm_core_stats s = stats();
    assert_int_equal(s.calls_live, 0);
    assert_int_equal(s.calls_remembered, 1);
}

static void test_refuse_before_ringing(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    expect_replace(&alice, "bob", INVITE("c-1"));
    T.now += 700;
    const cJSON *j = expect_replace(&bob, "alice", ANSWER("refuse", "c-1"));
    assert_keys(j, "type", "id", "caller", "callee", "by", "ts", NULL);
    assert_event(j, "refuse", "c-1", "alice", "bob", "bob", T.now);
    expect_own_copy(&bob);

    expect_replace(&alice, "bob", INVITE("c-2"));
    j = expect_replace(&bob, "alice", "{\"type\":\"refuse\",\"id\":\"c-2\",\"response\":\"busy\"}");
    assert_keys(j, "type", "id", "caller", "callee", "by", "ts", "response", NULL);
    assert_string_equal(jstr(j, "response"), "busy");
    expect_own_copy(&bob);
    assert_int_equal(stats().calls_live, 0);
}

static void test_cancel_reaches_both_inboxes(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    expect_replace(&alice, "bob", INVITE("c-1"));
    T.now += 50;
    expect_replace(&bob, "alice", ANSWER("ringing", "c-1"));
    T.now += 50;
    const cJSON *j = expect_replace(
        &alice, "bob", "{\"type\":\"cancel\",\"id\":\"c-1\",\"by\":\"bob\",\"response\":\"r\"}");
    assert_keys(j, "type", "id", "caller", "callee", "by", "ts", NULL);
    assert_event(j, "cancel", "c-1", "alice", "bob", "alice", T.now);
    expect_own_copy(&alice);
    assert_int_equal(stats().calls_live, 0);
    assert_int_equal(stats().calls_remembered, 1);
}

/* ================================================================================
 * Re-sends
 * ================================================================================ */

static void test_resend_invite(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&alice2);
    online(&bob);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob",
                   "{\"type\":\"invite\",\"id\":\"c-1\",\"content\":\"x\","
                   "\"channel\":\"ch\"}");
    T.now += 700;
    const cJSON *j = expect_replace(&alice, "bob",
                                    "{\"type\":\"invite\",\"id\":\"c-1\",\"content\":\"x\","
                                    "\"channel\":\"ch\"}");
    assert_keys(j, "type", "id", "caller", "callee", "by", "ts", "content", "channel", "expires_at",
                NULL);
    assert_event(j, "invite", "c-1", "alice", "bob", "alice", t0);
    assert_string_equal(jstr(j, "content"), "x");
    assert_string_equal(jstr(j, "channel"), "ch");
    assert_int_equal(jnum(j, "expires_at"), t0 + INVITE_MS);
    expect_quiet();
    /* From alice's other device too. */
    j = expect_replace(&alice2, "bob", INVITE("c-1"));
    assert_event(j, "invite", "c-1", "alice", "bob", "alice", t0);
    assert_int_equal(stats().calls_live, 1);
    /* The deadline is still counted from the first. */
    expect_failure_at(t0 + INVITE_MS, "c-1", "alice", "bob", "no_response");
}

static void test_resend_ringing(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    online(&bob2);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-1"));
    T.now = t0 + 500;
    expect_replace(&bob, "alice", ANSWER("ringing", "c-1"));
    T.now = t0 + 3000;
    const cJSON *j = expect_replace(&bob2, "alice", ANSWER("ringing", "c-1"));
    assert_keys(j, "type", "id", "caller", "callee", "by", "ts", NULL);
    assert_string_equal(jstr(j, "type"), "ringing");
    assert_string_equal(jstr(j, "by"), "bob");
    expect_quiet();
    /* A second ringing does not move the ring deadline. */
    expect_failure_at(t0 + RING_MS, "c-1", "alice", "bob", "expired");
}

static void test_resend_accept(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    online(&bob2);
    expect_replace(&alice, "bob", INVITE("c-1"));
    T.now += 100;
    int64_t t1 = T.now;
    expect_replace(&bob, "alice", "{\"type\":\"accept\",\"id\":\"c-1\",\"response\":\"ok\"}");
    char *first = dup_s(T.out);
    T.now += 400;
    /* The same accept again, e.g. a QoS 1 retry: let through with the first
     * ts, and copied to both inboxes again. */
    const cJSON *j =
        expect_replace(&bob, "alice", "{\"type\":\"accept\",\"id\":\"c-1\",\"response\":\"ok\"}");
    assert_event(j, "accept", "c-1", "alice", "bob", "bob", t1);
    assert_string_equal(T.out, first);
    free(first);
    expect_own_copy(&bob);
    /* From bob's other device. */
    j = expect_replace(&bob2, "alice", ANSWER("accept", "c-1"));
    assert_event(j, "accept", "c-1", "alice", "bob", "bob", t1);
    expect_own_copy(&bob2);
    /* A different answer is not a re-send. */
    expect_error(&bob, "alice", ANSWER("refuse", "c-1"), "invalid_state", "c-1", "refuse");
    expect_error(&alice, "bob", ANSWER("cancel", "c-1"), "invalid_state", "c-1", "cancel");
    expect_error(&bob, "alice", ANSWER("ringing", "c-1"), "invalid_state", "c-1", "ringing");
    assert_int_equal(stats().calls_remembered, 1);
}

static void test_resend_cancel(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    expect_replace(&alice, "bob", INVITE("c-1"));
    int64_t t1 = T.now;
    expect_replace(&alice, "bob", ANSWER("cancel", "c-1"));
    T.now += 900;
    const cJSON *j = expect_replace(&alice, "bob", ANSWER("cancel", "c-1"));
    assert_event(j, "cancel", "c-1", "alice", "bob", "alice", t1);
    expect_own_copy(&alice);
    expect_error(&bob, "alice", ANSWER("refuse", "c-1"), "invalid_state", "c-1", "refuse");
}

/* ================================================================================
 * Remembered and forgotten ids
 * ================================================================================ */

static void test_remembered_then_forgotten(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    online(&carol);
    expect_replace(&alice, "bob", INVITE("c-1"));
    T.now += 10;
    int64_t t1 = T.now;
    expect_replace(&alice, "bob", ANSWER("cancel", "c-1"));
    assert_int_equal(stats().calls_remembered, 1);

    rec_clear();
    tick_at(t1 + REMEMBER_MS - 1);
    expect_quiet();
    expect_error(&bob, "alice", ANSWER("accept", "c-1"), "invalid_state", "c-1", "accept");
    assert_int_equal(stats().calls_remembered, 1);

    tick_at(t1 + REMEMBER_MS);
    struct rtm_core_stats s = stats();
    assert_int_equal(s.calls_remembered, 0);
    assert_int_equal(s.calls_live, 0);
    assert_int_equal(s.timers, 0);
    expect_error(&bob, "alice", ANSWER("accept", "c-1"), "unknown_invitation", "c-1", "accept");
    expect_error(&alice, "bob", ANSWER("cancel", "c-1"), "unknown_invitation", "c-1", "cancel");
    /* alice may use the id again, for anyone. */
    const cJSON *j = expect_replace(&alice, "carol", INVITE("c-1"));
    assert_event(j, "invite", "c-1", "alice", "carol", "alice", T.now);
    assert_int_equal(stats().calls_live, 1);
}

static void test_remembered_for_a_long_ring_timeout(void **state)
{
    (void)state;
    T.cfg.ring_timeout_ms = 90000;
    boot();
    online(&alice);
    online(&bob);
    expect_replace(&alice, "bob", INVITE("c-1"));
    int64_t t1 = T.now;
    expect_replace(&bob, "alice", ANSWER("refuse", "c-1"));
    tick_at(t1 + 60000);
    expect_error(&alice, "bob", ANSWER("cancel", "c-1"), "invalid_state", "c-1", "cancel");
    tick_at(t1 + 89999);
    expect_error(&alice, "bob", ANSWER("cancel", "c-1"), "invalid_state", "c-1", "cancel");
    tick_at(t1 + 90000);
    expect_error(&alice, "bob", ANSWER("cancel", "c-1"), "unknown_invitation", "c-1", "cancel");
    expect_replace(&alice, "bob", INVITE("c-1"));
}

/* ================================================================================
 * Ids belong to their callers
 * ================================================================================ */

static const struct rtm_client mallory = {&mallory, "mallory", "mallory-phone"};

/* Two callers use the same id at once: two invitations, each going its
 * own way, neither touching the other. */
static void test_same_id_two_callers(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    online(&carol);
    online(&dave);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("call-1"));
    T.now += 10;
    const cJSON *j = expect_replace(&carol, "dave", INVITE("call-1"));
    assert_event(j, "invite", "call-1", "carol", "dave", "carol", t0 + 10);
    /* The other direction between the same two users is another invitation too. */
    j = expect_replace(&bob, "alice", INVITE("call-1"));
    assert_event(j, "invite", "call-1", "bob", "alice", "bob", t0 + 10);
    assert_int_equal(stats().calls_live, 3);

    T.now += 10;
    j = expect_replace(&bob, "alice", ANSWER("ringing", "call-1"));
    assert_event(j, "ringing", "call-1", "alice", "bob", "bob", T.now);
    j = expect_replace(&dave, "carol", ANSWER("refuse", "call-1"));
    assert_event(j, "refuse", "call-1", "carol", "dave", "dave", T.now);
    expect_own_copy(&dave);
    j = expect_replace(&alice, "bob", ANSWER("accept", "call-1"));
    assert_event(j, "accept", "call-1", "bob", "alice", "alice", T.now);
    expect_own_copy(&alice);
    /* alice's own call-1 is still ringing, and still hers to cancel. */
    assert_int_equal(stats().calls_live, 1);
    j = expect_replace(&alice, "bob", ANSWER("cancel", "call-1"));
    assert_event(j, "cancel", "call-1", "alice", "bob", "alice", T.now);
    expect_own_copy(&alice);
    struct rtm_core_stats s = stats();
    assert_int_equal(s.calls_live, 0);
    assert_int_equal(s.calls_remembered, 3);
}

/* An ended invitation holds its id for its own caller only: mallory cannot
 * squat on an id that alice will use. */
static void test_ended_id_not_squatted(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    online(&mallory);
    expect_replace(&mallory, "bob", INVITE("call-1"));
    expect_replace(&mallory, "bob", ANSWER("cancel", "call-1"));
    assert_int_equal(stats().calls_remembered, 1);
    const cJSON *j = expect_replace(&alice, "bob", INVITE("call-1"));
    assert_event(j, "invite", "call-1", "alice", "bob", "alice", T.now);
    expect_quiet();
    /* bob answers alice's; mallory's stays ended. */
    j = expect_replace(&bob, "alice", ANSWER("accept", "call-1"));
    assert_event(j, "accept", "call-1", "alice", "bob", "bob", T.now);
    expect_own_copy(&bob);
    expect_error(&bob, "mallory", ANSWER("accept", "call-1"), "invalid_state", "call-1", "accept");
    /* A live squat does not block alice either. */
    expect_replace(&mallory, "bob", INVITE("call-2"));
    j = expect_replace(&alice, "bob", INVITE("call-2"));
    assert_event(j, "invite", "call-2", "alice", "bob", "alice", T.now);
    assert_int_equal(stats().calls_live, 2);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, core_setup, core_teardown)
    const struct CMUnitTest tests[] = {
        T_(test_invite_is_stamped),
        T_(test_ringing_is_stamped),
        T_(test_accept_reaches_both_inboxes),
        T_(test_refuse_before_ringing),
        T_(test_cancel_reaches_both_inboxes),
        T_(test_resend_invite),
        T_(test_resend_ringing),
        T_(test_resend_accept),
        T_(test_resend_cancel),
        T_(test_remembered_then_forgotten),
        T_(test_remembered_for_a_long_ring_timeout),
        T_(test_same_id_two_callers),
        T_(test_ended_id_not_squatted),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
