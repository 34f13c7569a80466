/*
 * Every error code the core answers a request with, and a client without
 * a uid (core_fixture.h has the fixture).
 */
#include "core_fixture.h"

#include <stdio.h>
#include <string.h>

/* ================================================================================
 * Errors
 * ================================================================================ */

static void test_error_bad_request(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);

    /* Not JSON, not an object, empty: neither id nor request is known. */
    expect_error(&alice, "bob", "hello", "bad_request", NULL, NULL);
    expect_error(&alice, "bob", "[1,2]", "bad_request", NULL, NULL);
    expect_error_raw(&alice, inbox("bob"), "", 0, false, "bad_request", NULL, NULL);
    /* Retained: refused, and nothing was created. */
    expect_error_raw(&alice, inbox("bob"), INVITE("c-1"), strlen(INVITE("c-1")), true,
                     "bad_request", "c-1", "invite");
    assert_int_equal(stats().calls_live, 0);
    /* An unknown type keeps the id but names no request. */
    expect_error(&alice, "bob", ANSWER("hangup", "c-1"), "bad_request", "c-1", NULL);
    /* A missing id names the request only. */
    expect_error(&bob, "alice", "{\"type\":\"accept\"}", "bad_request", NULL, "accept");
    /* A value out of range. */
    expect_error(&alice, "bob", "{\"type\":\"invite\",\"id\":\"c-1\",\"timeout\":0}", "bad_request",
                 "c-1", "invite");
    assert_int_equal(stats().calls_live, 0);

    /* The wrong inbox: the callee sends accept to its own inbox. */
    T.now += 10;
    expect_replace(&alice, "bob", INVITE("c-1"));
    expect_error(&bob, "bob", ANSWER("accept", "c-1"), "bad_request", "c-1", "accept");
    expect_error(&alice, "alice", ANSWER("cancel", "c-1"), "bad_request", "c-1", "cancel");
    expect_error(&alice, "alice", ANSWER("refuse", "c-1"), "bad_request", "c-1", "refuse");
    /* The caller cancels its own invitation through a third inbox. */
    expect_error(&alice, "carol", ANSWER("cancel", "c-1"), "bad_request", "c-1", "cancel");
    /* Nothing changed: the real answer still works. */
    assert_int_equal(stats().calls_live, 1);
    const cJSON *j = expect_replace(&bob, "alice", ANSWER("accept", "c-1"));
    assert_event(j, "accept", "c-1", "alice", "bob", "bob", T.now);
}

static void test_error_unknown_invitation(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    expect_error(&bob, "alice", ANSWER("accept", "nope"), "unknown_invitation", "nope", "accept");
    expect_error(&bob, "alice", ANSWER("ringing", "nope"), "unknown_invitation", "nope", "ringing");
    expect_error(&bob, "alice", ANSWER("refuse", "nope"), "unknown_invitation", "nope", "refuse");
    expect_error(&alice, "bob", ANSWER("cancel", "nope"), "unknown_invitation", "nope", "cancel");
    struct rtm_core_stats s = stats();
    assert_int_equal(s.calls_live + s.calls_remembered, 0);
}

static void test_error_not_party(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    online(&carol);
    expect_replace(&alice, "bob", INVITE("c-1"));
    /* Only the callee answers; only the caller cancels. */
    expect_error(&alice, "bob", ANSWER("accept", "c-1"), "not_party", "c-1", "accept");
    expect_error(&alice, "bob", ANSWER("ringing", "c-1"), "not_party", "c-1", "ringing");
    expect_error(&bob, "alice", ANSWER("cancel", "c-1"), "not_party", "c-1", "cancel");
    /* Ended, the roles still hold. */
    expect_replace(&alice, "bob", INVITE("c-2"));
    expect_replace(&alice, "bob", ANSWER("cancel", "c-2"));
    expect_error(&alice, "bob", ANSWER("refuse", "c-2"), "not_party", "c-2", "refuse");
    expect_error(&bob, "alice", ANSWER("cancel", "c-2"), "not_party", "c-2", "cancel");
    assert_int_equal(stats().calls_live, 1);
    expect_replace(&bob, "alice", ANSWER("ringing", "c-1"));
}

/* A user who is no party of an invitation is told what it would be told if
 * the invitation did not exist: same code, same message. Nothing changes. */
static void test_error_stranger_sees_nothing(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    online(&carol);
    expect_replace(&alice, "bob", INVITE("c-1"));
    expect_replace(&alice, "bob", INVITE("c-ended"));
    expect_replace(&alice, "bob", ANSWER("cancel", "c-ended"));
    static const char *const requests[][2] = {
        {"ringing", "alice"}, {"accept", "alice"}, {"refuse", "alice"}, {"cancel", "bob"}};
    static const char *const ids[] = {"c-1", "c-ended", "c-none"};
    char first[4][256];
    for (size_t r = 0; r < 4; r++) {
        for (size_t i = 0; i < 3; i++) {
            char json[128];
            snprintf(json, sizeof(json), "{\"type\":\"%s\",\"id\":\"%s\"}", requests[r][0], ids[i]);
            expect_error(&carol, requests[r][1], json, "unknown_invitation", ids[i],
                         requests[r][0]);
            /* The message differs only by the id it names. */
            const char *message = jstr(only_on(inbox("carol"))->json, "message");
            char *named = strstr(message, ids[i]);
            assert_non_null(named);
            char shape[256];
            snprintf(shape, sizeof(shape), "%.*s<id>%s", (int)(named - message), message,
                     named + strlen(ids[i]));
            if (i == 0)
                snprintf(first[r], sizeof(first[r]), "%s", shape);
            assert_string_equal(shape, first[r]);
        }
    }
    struct rtm_core_stats s = stats();
    assert_int_equal(s.calls_live, 1);
    assert_int_equal(s.calls_remembered, 1);
    /* The live call goes on. */
    const cJSON *j = expect_replace(&bob, "alice", ANSWER("accept", "c-1"));
    assert_event(j, "accept", "c-1", "alice", "bob", "bob", T.now);
}

static void test_error_invalid_state(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);

    expect_replace(&alice, "bob", INVITE("c-1"));
    expect_replace(&alice, "bob", ANSWER("cancel", "c-1"));
    T.now += 10;
    expect_error(&bob, "alice", ANSWER("accept", "c-1"), "invalid_state", "c-1", "accept");
    expect_error(&bob, "alice", ANSWER("ringing", "c-1"), "invalid_state", "c-1", "ringing");

    expect_replace(&alice, "bob", INVITE("c-2"));
    expect_replace(&bob, "alice", ANSWER("refuse", "c-2"));
    expect_error(&bob, "alice", ANSWER("ringing", "c-2"), "invalid_state", "c-2", "ringing");
    expect_error(&alice, "bob", ANSWER("cancel", "c-2"), "invalid_state", "c-2", "cancel");

    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-3"));
    expect_failure_at(t0 + INVITE_MS, "c-3", "alice", "bob", "no_response");
    expect_error(&alice, "bob", ANSWER("cancel", "c-3"), "invalid_state", "c-3", "cancel");
    expect_error(&bob, "alice", ANSWER("accept", "c-3"), "invalid_state", "c-3", "accept");
    /* The same caller re-sending the invite of an ended invitation. */
    expect_error(&alice, "bob", INVITE("c-3"), "invalid_state", "c-3", "invite");
    assert_int_equal(stats().calls_live, 0);
    assert_int_equal(stats().calls_remembered, 3);
}

static void test_error_duplicate_id(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    online(&carol);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-1"));
    T.now += 100;
    /* The same caller, to a different callee, while the first is live. */
    expect_error(&alice, "carol", INVITE("c-1"), "duplicate_id", "c-1", "invite");
    /* The original is untouched. */
    const cJSON *j = expect_replace(&alice, "bob", INVITE("c-1"));
    assert_event(j, "invite", "c-1", "alice", "bob", "alice", t0);
    assert_int_equal(stats().calls_live, 1);
    /* Remembered after its end: still alice's id, for another callee too. */
    expect_replace(&bob, "alice", ANSWER("refuse", "c-1"));
    expect_error(&alice, "carol", INVITE("c-1"), "duplicate_id", "c-1", "invite");
    expect_error(&alice, "dave", INVITE("c-1"), "duplicate_id", "c-1", "invite");
    assert_int_equal(stats().calls_live, 0);
}

static void test_error_self_call(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&alice2);
    expect_error(&alice, "alice", INVITE("c-1"), "self_call", "c-1", "invite");
    expect_error(&alice2, "alice", INVITE("c-1"), "self_call", "c-1", "invite");
    struct rtm_core_stats s = stats();
    assert_int_equal(s.calls_live + s.calls_remembered, 0);
}

static void test_error_busy_limit(void **state)
{
    (void)state;
    T.cfg.busy_limit = 2;
    boot();
    online(&alice);
    online(&bob);
    online(&carol);
    online(&dave);
    expect_replace(&alice, "bob", INVITE("b-1"));
    expect_replace(&alice, "carol", INVITE("b-2"));
    expect_error(&alice, "dave", INVITE("b-3"), "busy_limit", "b-3", "invite");
    expect_error(&alice, "bob", INVITE("b-3"), "busy_limit", "b-3", "invite");
    /* A re-send is not a new invitation. */
    expect_replace(&alice, "carol", INVITE("b-2"));
    /* Other callers are not limited by alice's calls. */
    expect_replace(&bob, "carol", INVITE("b-4"));
    /* One ends: room for one more. */
    expect_replace(&bob, "alice", ANSWER("refuse", "b-1"));
    expect_replace(&alice, "dave", INVITE("b-3"));
    expect_error(&alice, "dave", INVITE("b-5"), "busy_limit", "b-5", "invite");
}

static void test_error_rate_limited(void **state)
{
    (void)state;
    T.cfg.invite_rate = 3; /* refills 1 per 20 s */
    boot();
    online(&alice);
    online(&bob);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("r-1"));
    expect_replace(&alice, "bob", INVITE("r-2"));
    expect_replace(&alice, "bob", INVITE("r-3"));
    expect_error(&alice, "bob", INVITE("r-4"), "rate_limited", "r-4", "invite");
    /* A re-send takes no token, and refusals do not drain the bucket. */
    expect_replace(&alice, "bob", INVITE("r-1"));
    expect_replace(&bob, "alice", INVITE("r-9")); /* per caller */
    T.now = t0 + 19999;
    expect_error(&alice, "bob", INVITE("r-4"), "rate_limited", "r-4", "invite");
    T.now = t0 + 20000;
    const cJSON *j = expect_replace(&alice, "bob", INVITE("r-4"));
    assert_event(j, "invite", "r-4", "alice", "bob", "alice", T.now);
    expect_error(&alice, "bob", INVITE("r-5"), "rate_limited", "r-5", "invite");
    T.now = t0 + 40000;
    expect_replace(&alice, "bob", INVITE("r-5"));
    expect_error(&alice, "bob", INVITE("r-6"), "rate_limited", "r-6", "invite");
}

static void test_client_without_uid(void **state)
{
    (void)state;
    boot();
    online(&bob);
    conn(&anon); /* not tracked */
    assert_int_equal(stats().sessions, 1);
    rec_clear();
    assert_int_equal(send_to(&anon, "bob", INVITE("c-1")), RTM_DENY);
    expect_quiet();
    assert_true(T.rec.nlogs > 0);
    assert_int_equal(send_to(&anon, "bob", "junk"), RTM_DENY);
    expect_quiet();
    struct rtm_core_stats s = stats();
    assert_int_equal(s.calls_live, 0);
    assert_int_equal(s.users, 1);
    /* Topics outside the prefix are not the core's. */
    assert_int_equal(send_raw(&anon, "other/topic", "x", 1, false), RTM_PASS);
    assert_int_equal(send_raw(&bob, "other/topic", "x", 1, true), RTM_PASS);
    expect_quiet();
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, core_setup, core_teardown)
    const struct CMUnitTest tests[] = {
        T_(test_error_bad_request),   T_(test_error_unknown_invitation),
        T_(test_error_not_party),     T_(test_error_stranger_sees_nothing),
        T_(test_error_invalid_state), T_(test_error_duplicate_id),
        T_(test_error_self_call),     T_(test_error_busy_limit),
        T_(test_error_rate_limited),  T_(test_client_without_uid),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
