/*
 * The user record's memory (plugin/services/users.c, rtm_context.h): unlike the other
 * core tests, these look inside the core. A user's extension (its timer and
 * device-registration bucket) exists only while one of them is in use, and
 * calls are walked oldest first though their lists are newest first.
 */
#include <stdio.h>
#include <string.h>

#include "core_fixture.h"
#include "rtm_calls.h"
#include "rtm_timers.h"
#include "rtm_users.h"

#define REG_PAYLOAD "{\"provider\":\"jpush\",\"platform\":\"android\",\"token\":\"1a0018970a0f\"}"

static struct rtm_user *user(const char *uid)
{
    return rtm_user_find(T.core, uid);
}

static void register_device(const struct rtm_client *c)
{
    char topic[96];
    snprintf(topic, sizeof(topic), "rtm/u/%s/devices/phone", c->uid);
    assert_int_equal(send_raw(c, topic, REG_PAYLOAD, strlen(REG_PAYLOAD), true), RTM_REPLACE);
    rec_clear();
}

/* Online users calling each other never need an extension. */
static void test_callers_and_callees_have_none(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    assert_null(user("alice")->ext);
    expect_replace(&alice, "bob", INVITE("c-1"));
    assert_null(user("alice")->ext);
    assert_null(user("bob")->ext);
    assert_int_equal(user("alice")->busy, 1);
    assert_false(rtm_hlist_empty(&user("alice")->calls_out));
    assert_false(rtm_hlist_empty(&user("bob")->calls_in));
    expect_replace(&bob, "alice", ANSWER("refuse", "c-1"));
    assert_int_equal(user("alice")->busy, 0);
    assert_true(rtm_hlist_empty(&user("alice")->calls_out));
    assert_true(rtm_hlist_empty(&user("bob")->calls_in));
    assert_null(user("alice")->ext);
    assert_null(user("bob")->ext);
}

/* caller_grace lives in the extension, which goes once the caller is back. */
static void test_grace_comes_and_goes(void **state)
{
    (void)state;
    boot();
    online(&alice);
    expect_replace(&alice, "bob", INVITE("c-1"));
    offline(&alice);
    struct rtm_user *a = user("alice");
    assert_non_null(a->ext);
    assert_ptr_equal(a->ext->user, a);
    assert_true(rtm_timer_armed(&a->ext->timer));
    assert_int_equal(a->ext->timer.kind, RTM_TIMER_CALLER_GRACE);
    online(&alice);
    assert_null(a->ext);

    /* Offline again; the last live call ending disarms it too. */
    offline(&alice);
    assert_non_null(a->ext);
    expect_replace(&bob, "alice", ANSWER("refuse", "c-1"));
    assert_null(a->ext);
    assert_int_equal(stats().timers, 1); /* the call's, until it is forgotten */
}

/* The grace runs out: every call fails, and the extension goes with it. */
static void test_grace_runs_out(void **state)
{
    (void)state;
    boot();
    online(&alice);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-1"));
    offline(&alice);
    tick_at(t0 + GRACE_MS);
    assert_int_equal(count_type("failure"), 2);
    assert_null(user("alice")->ext);
}

/* A registration draws from a bucket kept in the extension; once nothing
 * refers to the user, its timer holds the record until the bucket is full
 * again, and then both go. */
static void test_registration_bucket_lingers(void **state)
{
    (void)state;
    boot();
    online(&alice);
    register_device(&alice);
    struct rtm_user *a = user("alice");
    assert_non_null(a->ext);
    assert_int_not_equal(a->ext->buckets[RTM_LIMIT_REGISTRATIONS].tat_us, 0);
    assert_false(rtm_timer_armed(&a->ext->timer));
    offline(&alice);
    a = user("alice");
    assert_non_null(a);
    assert_int_equal(a->refs, 0);
    assert_int_equal(a->ext->timer.kind, RTM_TIMER_USER_LINGER);
    int64_t due = rtm_core_next_due(T.core, T.now);
    assert_true(due > 0);
    /* Back before the bucket is full: the linger stops, the bucket stays. */
    online(&alice);
    assert_non_null(a->ext);
    assert_false(rtm_timer_armed(&a->ext->timer));
    offline(&alice);
    tick_at(T.now + rtm_core_next_due(T.core, T.now));
    assert_null(user("alice"));
    assert_int_equal(stats().users, 0);
    assert_int_equal(stats().timers, 0);
}

/* Pending invites reach a new session oldest first, as they were placed. */
static void test_redelivered_oldest_first(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&carol);
    online(&dave);
    expect_replace(&alice, "bob", INVITE("c-1"));
    expect_replace(&carol, "bob", INVITE("c-2"));
    expect_replace(&dave, "bob", INVITE("c-3"));
    rec_clear();
    conn(&bob);
    tick();
    static const char *const want[] = {"c-1", "c-2", "c-3"};
    size_t seen = 0;
    for (size_t i = 0; i < T.rec.npubs; i++) {
        const struct pub *p = &T.rec.pubs[i];
        if (strcmp(p->topic, inbox("bob")) != 0)
            continue;
        assert_true(seen < 3);
        assert_string_equal(p->client_id, "bob-phone");
        assert_string_equal(jstr(p->json, "id"), want[seen++]);
    }
    assert_int_equal(seen, 3);
}

/* A caller gone for good fails its calls oldest first. */
static void test_caller_gone_oldest_first(void **state)
{
    (void)state;
    boot();
    online(&alice);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-1"));
    expect_replace(&alice, "carol", INVITE("c-2"));
    expect_replace(&alice, "dave", INVITE("c-3"));
    offline(&alice);
    tick_at(t0 + GRACE_MS);
    static const char *const want[] = {"c-1", "c-2", "c-3"};
    size_t seen = 0;
    for (size_t i = 0; i < T.rec.npubs; i++) {
        const struct pub *p = &T.rec.pubs[i];
        if (strcmp(p->topic, inbox("alice")) != 0)
            continue;
        assert_true(seen < 3);
        assert_string_equal(jstr(p->json, "type"), "failure");
        assert_string_equal(jstr(p->json, "id"), want[seen++]);
    }
    assert_int_equal(seen, 3);
    assert_int_equal(user("alice")->busy, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_callers_and_callees_have_none, core_setup,
                                        core_teardown),
        cmocka_unit_test_setup_teardown(test_grace_comes_and_goes, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_grace_runs_out, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_registration_bucket_lingers, core_setup,
                                        core_teardown),
        cmocka_unit_test_setup_teardown(test_redelivered_oldest_first, core_setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_caller_gone_oldest_first, core_setup, core_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
