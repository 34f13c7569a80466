/*
 * The core's timers (core_fixture.h has the fixture): peer_offline,
 * no_response, expired, and caller_offline after the caller's grace.
 */
#include <stdio.h>

#include "core_fixture.h"

/* ================================================================================
 * Timers
 * ================================================================================ */

static void test_timer_peer_offline(void **state)
{
    (void)state;
    boot();
    online(&alice);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-1")); /* bob has never connected */
    assert_int_equal(rtm_core_next_due(T.core, T.now), INVITE_MS);
    expect_failure_at(t0 + INVITE_MS, "c-1", "alice", "bob", "peer_offline");
    assert_int_equal(stats().calls_live, 0);
    expect_error(&alice, "bob", ANSWER("cancel", "c-1"), "invalid_state", "c-1", "cancel");
}

static void test_timer_peer_offline_after_refused_connection(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    offline(&bob); /* seen before the invite, not while it waits */
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-1"));
    T.now += 500;
    conn(&bob); /* refused by a later authentication source */
    disc(&bob);
    expect_failure_at(t0 + INVITE_MS, "c-1", "alice", "bob", "peer_offline");

    /* Connecting, not yet confirmed, at the invite; then refused. */
    t0 = T.now;
    conn(&bob);
    expect_replace(&alice, "bob", INVITE("c-2"));
    disc(&bob);
    expect_failure_at(t0 + INVITE_MS, "c-2", "alice", "bob", "peer_offline");
}

static void test_timer_no_response(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    /* Online at the invite, and still online. */
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-1"));
    expect_failure_at(t0 + INVITE_MS, "c-1", "alice", "bob", "no_response");

    /* Online at the invite, gone before the deadline. */
    t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-2"));
    T.now += 100;
    offline(&bob);
    expect_failure_at(t0 + INVITE_MS, "c-2", "alice", "bob", "no_response");

    /* Offline at the invite, then online (confirmed) for a while. */
    t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-3"));
    T.now += 300;
    online(&bob);
    T.now += 300;
    offline(&bob);
    expect_failure_at(t0 + INVITE_MS, "c-3", "alice", "bob", "no_response");

    /* Offline at the invite; connects at the deadline's own tick: that tick
     * confirms it (and delivers the invite) before the timer fires. */
    t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-4"));
    rec_clear();
    T.now = t0 + INVITE_MS;
    conn(&bob);
    tick();
    assert_string_equal(only_type_on(inbox("bob"), "invite")->client_id, "bob-phone");
    expect_failure("c-4", "alice", "bob", "no_response");
}

static void test_timer_ring_expired(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-1"));
    T.now = t0 + 1000;
    expect_replace(&bob, "alice", ANSWER("ringing", "c-1"));
    /* Rung: the invite deadline no longer applies. */
    rec_clear();
    tick_at(t0 + INVITE_MS);
    expect_quiet();
    assert_int_equal(rtm_core_next_due(T.core, T.now), RING_MS - INVITE_MS);
    /* ring_timeout counts from the invite, not from ringing. */
    expect_failure_at(t0 + RING_MS, "c-1", "alice", "bob", "expired");
}

static void test_timer_invite_own_timeout(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    int64_t t0 = T.now;
    const cJSON *j = expect_replace(&alice, "bob", INVITE_T("c-1", 3));
    assert_int_equal(jnum(j, "expires_at"), t0 + 3000);
    rec_clear();
    tick_at(t0 + INVITE_MS);
    expect_quiet();
    expect_failure_at(t0 + 3000, "c-1", "alice", "bob", "no_response");

    /* Shorter than invite_timeout too. */
    t0 = T.now;
    expect_replace(&alice, "bob", INVITE_T("c-2", 1));
    expect_failure_at(t0 + 1000, "c-2", "alice", "bob", "no_response");
}

static void test_timer_ring_not_before_invite_timeout(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    int64_t t0 = T.now;
    const cJSON *j = expect_replace(&alice, "bob", INVITE_T("c-1", 10));
    assert_int_equal(jnum(j, "expires_at"), t0 + 10000);
    T.now = t0 + 1000;
    expect_replace(&bob, "alice", ANSWER("ringing", "c-1"));
    rec_clear();
    tick_at(t0 + RING_MS);
    expect_quiet();
    expect_failure_at(t0 + 10000, "c-1", "alice", "bob", "expired");
}

static void test_timer_fires_on_first_late_tick(void **state)
{
    (void)state;
    boot();
    online(&alice);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-1"));
    rec_clear();
    tick_at(t0 + INVITE_MS + 777); /* the broker's loop was late */
    expect_failure("c-1", "alice", "bob", "peer_offline");
    rec_clear();
    tick();
    expect_quiet();
}

static void test_caller_grace(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE_T("c-1", 10));
    T.now = t0 + 100;
    expect_replace(&bob, "alice", ANSWER("ringing", "c-1"));
    disc(&alice);
    tick(); /* alice's offline presence */
    assert_int_equal(count_type("failure"), 0);
    assert_int_equal(rtm_core_next_due(T.core, T.now), GRACE_MS);
    expect_failure_at(t0 + 100 + GRACE_MS, "c-1", "alice", "bob", "caller_offline");
    assert_int_equal(stats().calls_live, 0);
}

static void test_caller_grace_counts_from_last_session(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&alice2);
    online(&bob);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE_T("c-1", 10));
    expect_replace(&alice, "bob", INVITE_T("c-2", 10));
    T.now = t0 + 100;
    offline(&alice);
    rec_clear();
    tick_at(t0 + 100 + GRACE_MS);
    expect_quiet();
    T.now = t0 + 2000;
    offline(&alice2);
    rec_clear();
    tick_at(t0 + 2000 + GRACE_MS - 1);
    expect_quiet();
    tick_at(t0 + 2000 + GRACE_MS);
    /* Every live call alice placed fails. */
    assert_int_equal(count_type("failure"), 4);
    assert_int_equal(count_on(inbox("alice")), 2);
    assert_int_equal(count_on(inbox("bob")), 2);
    for (size_t i = 0; i < T.rec.npubs; i++) {
        assert_string_equal(jstr(T.rec.pubs[i].json, "reason"), "caller_offline");
        assert_int_equal(jnum(T.rec.pubs[i].json, "ts"), T.now);
    }
    assert_int_equal(stats().calls_live, 0);
}

static void test_caller_grace_reconnect(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE_T("c-1", 10));
    T.now = t0 + 100;
    offline(&alice);
    T.now = t0 + 600;
    online(&alice2); /* back, confirmed within grace */
    rec_clear();
    tick_at(t0 + 100 + GRACE_MS);
    expect_quiet();
    tick_at(t0 + 5000);
    expect_quiet();
    assert_int_equal(stats().calls_live, 1);
    assert_int_equal(stats().timers, 1);
    expect_failure_at(t0 + 10000, "c-1", "alice", "bob", "no_response");
}

static void test_caller_grace_refused_reconnect(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE_T("c-1", 10));
    T.now = t0 + 100;
    offline(&alice);
    T.now = t0 + 600;
    conn(&alice2); /* refused: never confirmed */
    disc(&alice2);
    expect_failure_at(t0 + 100 + GRACE_MS, "c-1", "alice", "bob", "caller_offline");
}

/* The report of how late timers ran: 99 fire on time, one 250 ms late;
 * taking the report starts a new interval. */
static void test_timer_lateness_report(void **state)
{
    (void)state;
    T.cfg.busy_limit = 200;
    T.cfg.invite_rate = 200;
    boot();
    online(&alice);
    int64_t t0 = T.now;
    char json[64];
    for (int i = 0; i < 100; i++) {
        T.now = t0 + i; /* each one due INVITE_MS after it was sent */
        snprintf(json, sizeof(json), "{\"type\":\"invite\",\"id\":\"late-%d\"}", i);
        assert_int_equal(send_to(&alice, "bob", json), RTM_REPLACE);
    }
    struct rtm_timer_report r;
    rtm_core_timer_report(T.core, &r);
    assert_int_equal(r.fired, 0);
    for (int i = 0; i < 99; i++)
        tick_at(t0 + INVITE_MS + i);
    tick_at(t0 + INVITE_MS + 99 + 250);
    rtm_core_timer_report(T.core, &r);
    assert_int_equal(r.fired, 100);
    assert_int_equal(r.late_p99_ms, 0);
    assert_int_equal(r.late_max_ms, 250);
    rtm_core_timer_report(T.core, &r);
    assert_int_equal(r.fired, 0);
    assert_int_equal(r.late_max_ms, 0);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, core_setup, core_teardown)
    const struct CMUnitTest tests[] = {
        T_(test_timer_peer_offline),
        T_(test_timer_peer_offline_after_refused_connection),
        T_(test_timer_no_response),
        T_(test_timer_ring_expired),
        T_(test_timer_invite_own_timeout),
        T_(test_timer_ring_not_before_invite_timeout),
        T_(test_timer_fires_on_first_late_tick),
        T_(test_caller_grace),
        T_(test_caller_grace_counts_from_last_session),
        T_(test_caller_grace_reconnect),
        T_(test_caller_grace_refused_reconnect),
        T_(test_timer_lateness_report),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
