/*
 * The push hook (core_fixture.h has the fixture): an offline callee is
 * pushed at the invite, an online one that has not rung after
 * push_fallback, and a pushed call that ends is cancelled on the callee's
 * devices, with the ending's reason (answered_elsewhere when answered).
 */
#include "core_fixture.h"

#include <inttypes.h>

/* ================================================================================
 * Push seam
 * ================================================================================ */

/* `reason` NULL: the push must carry none (an invite). */
static void expect_push(const struct pushed *p, enum rtm_push_kind kind, const char *id,
                        const char *caller, const char *callee, const char *channel,
                        int64_t expires_at, const char *reason)
{
    assert_int_equal(p->kind, kind);
    assert_string_equal(p->call_id, id);
    assert_string_equal(p->caller, caller);
    assert_string_equal(p->callee, callee);
    assert_string_equal(p->channel, channel);
    assert_int_equal(p->expires_at, expires_at);
    assert_int_equal(p->now_ms, T.now);
    assert_true(p->has_why);
    if (reason)
        assert_string_equal(p->reason, reason);
    else
        assert_null(p->reason);
}

/* An offline callee is pushed once, at the invite; the fallback (for an
 * online callee that has not rung) does not push it again. */
static void test_push_offline_callee(void **state)
{
    (void)state;
    T.cfg.push_fallback_ms = 5000;
    boot();
    rtm_core_set_push(T.core, rec_push, &T);
    online(&alice);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob",
                   "{\"type\":\"invite\",\"id\":\"c-1\",\"timeout\":10,\"channel\":\"room\"}");
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_INVITE, "c-1", "alice", "bob", "room", t0 + 10000,
                NULL);
    rec_clear();
    for (T.now = t0 + 100; T.now < t0 + 10000; T.now += 100)
        tick();
    if (T.npushes)
        print_error("pushed again at %" PRId64 " ms after the invite\n", T.pushes[0].now_ms - t0);
    assert_int_equal(T.npushes, 0);
    expect_quiet();
    /* Unanswered: the devices are told to stop ringing. */
    tick_at(t0 + 10000);
    expect_failure("c-1", "alice", "bob", "peer_offline");
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_CANCEL, "c-1", "alice", "bob", "room", t0 + 10000,
                "peer_offline");
}

static void test_push_fallback_online_callee(void **state)
{
    (void)state;
    T.cfg.push_fallback_ms = 5000;
    boot();
    rtm_core_set_push(T.core, rec_push, &T);
    online(&alice);
    online(&bob);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE_T("c-1", 10));
    assert_int_equal(T.npushes, 0);
    tick_at(t0 + 4999);
    assert_int_equal(T.npushes, 0);
    tick_at(t0 + 5000);
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_INVITE, "c-1", "alice", "bob", "", t0 + 10000, NULL);
    expect_quiet(); /* the push does not end the call */
    assert_int_equal(stats().calls_live, 1);
    assert_int_equal(rtm_core_next_due(T.core, T.now), 5000);
    rec_clear();
    expect_failure_at(t0 + 10000, "c-1", "alice", "bob", "no_response");

    /* Rung in time: no fallback; accepted unpushed: no cancel push. */
    rec_clear();
    t0 = T.now;
    expect_replace(&alice, "bob", INVITE_T("c-2", 10));
    expect_replace(&bob, "alice", ANSWER("ringing", "c-2"));
    tick_at(t0 + 5000);
    assert_int_equal(T.npushes, 0);
    expect_replace(&bob, "alice", ANSWER("accept", "c-2"));
    assert_int_equal(T.npushes, 0);

    /* A fallback shorter than the invite timeout only. */
    rec_clear();
    t0 = T.now;
    expect_replace(&alice, "bob", INVITE_T("c-3", 5));
    tick_at(t0 + 5000);
    expect_failure("c-3", "alice", "bob", "no_response");
    assert_int_equal(T.npushes, 0);
}

static void test_push_cancel_only_when_pushed(void **state)
{
    (void)state;
    boot();
    rtm_core_set_push(T.core, rec_push, &T);
    online(&alice);
    expect_replace(&alice, "bob", INVITE_T("c-1", 10));
    assert_int_equal(T.npushes, 1);
    rec_clear();
    expect_replace(&alice, "bob", ANSWER("cancel", "c-1"));
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_CANCEL, "c-1", "alice", "bob", "", T.now + 10000,
                "canceled");
    /* A re-sent cancel does not push again. */
    rec_clear();
    T.now += 10;
    expect_replace(&alice, "bob", ANSWER("cancel", "c-1"));
    assert_int_equal(T.npushes, 0);

    /* Accepted or refused after a push: the callee's other devices stop
     * ringing. The pushed ones are all told: which one answered is not known. */
    int64_t t2 = T.now;
    expect_replace(&alice, "bob", INVITE_T("c-2", 10));
    online(&bob);
    rec_clear();
    expect_replace(&bob, "alice", ANSWER("accept", "c-2"));
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_CANCEL, "c-2", "alice", "bob", "", t2 + 10000,
                "answered_elsewhere");
    offline(&bob);
    expect_replace(&alice, "bob", INVITE_T("c-4", 10));
    online(&bob);
    rec_clear();
    expect_replace(&bob, "alice", ANSWER("refuse", "c-4"));
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_CANCEL, "c-4", "alice", "bob", "", T.now + 10000,
                "answered_elsewhere");
    rec_clear();

    /* push_on_cancel off. */
    T.cfg.push_on_cancel = false;
    expect_replace(&alice, "carol", INVITE_T("c-3", 10));
    assert_int_equal(T.npushes, 1);
    rec_clear();
    expect_replace(&alice, "carol", ANSWER("cancel", "c-3"));
    assert_int_equal(T.npushes, 0);
    offline(&bob);
    expect_replace(&alice, "bob", INVITE_T("c-5", 10));
    assert_int_equal(T.npushes, 1);
    online(&bob);
    rec_clear();
    expect_replace(&bob, "alice", ANSWER("accept", "c-5"));
    assert_int_equal(T.npushes, 0);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, core_setup, core_teardown)
    const struct CMUnitTest tests[] = {
        T_(test_push_offline_callee),
        T_(test_push_fallback_online_callee),
        T_(test_push_cancel_only_when_pushed),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
