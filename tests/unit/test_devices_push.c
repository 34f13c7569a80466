/*
 * Unit tests for the core's push hook (SPEC 6.2) through rtm_core.h: when a
 * call_invite push goes out (callee offline, or still unanswered after
 * push_fallback_ms), when its call_cancel follows (the pushed call ended,
 * unless push_on_cancel is off) and the reason it carries, and when nothing
 * is pushed. The fixture (recording sink and push function, fake clock,
 * clients) is devices_fixture.h.
 */
#include "devices_fixture.h"

#include <stdio.h>
#include <string.h>

/* ==================================================================================
 * The push hook
 * ================================================================================== */

static void invite(const char *id, const char *extra)
{
    char json[256];
    snprintf(json, sizeof(json), "{\"type\":\"invite\",\"id\":\"%s\"%s}", id, extra);
    enum rtm_verdict v = send_raw(&alice, inbox("bob"), json, strlen(json), false);
    if (v != RTM_REPLACE && T.rec.npubs)
        print_error("invite refused: %s\n", T.rec.pubs[0].payload);
    assert_int_equal(v, RTM_REPLACE);
}

static void answer(const struct rtm_client *from, const char *to, const char *type, const char *id)
{
    char json[160];
    snprintf(json, sizeof(json), "{\"type\":\"%s\",\"id\":\"%s\"}", type, id);
    assert_int_equal(send_raw(from, inbox(to), json, strlen(json), false), RTM_REPLACE);
}

static size_t count_type(const char *type)
{
    size_t n = 0;
    for (size_t i = 0; i < T.rec.npubs; i++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(T.rec.pubs[i].json, "type");
        n += cJSON_IsString(t) && strcmp(t->valuestring, type) == 0;
    }
    return n;
}

/* `reason` NULL: the push must carry none (an invite). */
static void expect_push(const struct pushed *p, enum rtm_push_kind kind, const char *id,
                        const char *channel, int64_t expires_at, const char *reason)
{
    assert_int_equal(p->kind, kind);
    assert_string_equal(p->call_id, id);
    assert_string_equal(p->caller, "alice");
    assert_string_equal(p->callee, "bob");
    assert_string_equal(p->channel, channel);
    assert_int_equal(p->expires_at, expires_at);
    assert_int_equal(p->now_ms, T.now);
    assert_non_null(p->why);
    assert_true(p->why[0] != '\0');
    if (reason)
        assert_string_equal(p->reason, reason);
    else
        assert_null(p->reason);
}

/* bob has a registered device and no live session. */
static void bob_registered_and_away(void)
{
    online(&bob);
    expect_registered(&bob, "bob", "phone", REG("android", "tok-1"), REG("android", "tok-1"));
    offline(&bob);
}

static void test_push_offline_callee(void **state)
{
    (void)state;
    boot();
    bob_registered_and_away();
    online(&alice);
    int64_t t0 = T.now;
    invite("c-1", ",\"channel\":\"room-7\",\"timeout\":20");
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_INVITE, "c-1", "room-7", t0 + 20000, NULL);
    assert_string_equal(T.pushes[0].why, "callee offline");
    /* Once: the fallback for an online callee does not push it again. */
    rec_clear();
    for (T.now = t0 + 100; T.now < t0 + 20000; T.now += 100)
        tick_at(T.now);
    assert_int_equal(T.npushes, 0);
    assert_int_equal(count_type("failure"), 0);
}

static void test_push_fallback_online_callee(void **state)
{
    (void)state;
    T.cfg.push_fallback_ms = 1000;
    boot();
    online(&bob);
    expect_registered(&bob, "bob", "phone", REG("android", "tok-1"), REG("android", "tok-1"));
    online(&alice);
    int64_t created = T.now;
    int64_t deadline = created + T.cfg.invite_timeout_ms;
    invite("c-1", "");
    assert_int_equal(T.npushes, 0);
    for (int64_t t = created + 1; t < created + 1000; t += 37)
        tick_at(t);
    tick_at(created + 999);
    assert_int_equal(T.npushes, 0);
    tick_at(created + 1000);
    if (T.npushes != 1)
        print_error("%zu pushes at push_fallback_ms\n", T.npushes);
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_INVITE, "c-1", "", deadline, NULL);
    assert_non_null(strstr(T.pushes[0].why, "push_fallback_ms"));
    /* The push does not end the call: still pending until invite_timeout. */
    assert_int_equal(count_type("failure"), 0);
    assert_true(rtm_core_call_pending(T.core, "alice", "c-1"));
    rec_clear();
    for (int64_t t = created + 1100; t < deadline; t += 100)
        tick_at(t);
    tick_at(deadline - 1);
    assert_int_equal(T.npushes, 0);
    assert_int_equal(count_type("failure"), 0);
    assert_true(rtm_core_call_pending(T.core, "alice", "c-1"));
    /* Unanswered at invite_timeout: the failure, and the phone stops ringing. */
    tick_at(deadline);
    assert_int_equal(count_type("failure"), 2);
    assert_false(rtm_core_call_pending(T.core, "alice", "c-1"));
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_CANCEL, "c-1", "", deadline, "no_response");
}

static void test_push_no_fallback_after_ringing(void **state)
{
    (void)state;
    T.cfg.push_fallback_ms = 1000;
    boot();
    online(&bob);
    online(&alice);
    int64_t created = T.now;
    invite("c-1", "");
    T.now = created + 999;
    answer(&bob, "alice", "ringing", "c-1");
    for (int64_t t = created + 1000; t <= created + 5000; t += 50)
        tick_at(t);
    assert_int_equal(T.npushes, 0);
    /* Refused after ringing: never pushed, so no cancel push either. */
    answer(&bob, "alice", "refuse", "c-1");
    assert_int_equal(T.npushes, 0);
    /* push_fallback_ms 0 turns the fallback off. */
    rtm_core_free(T.core);
    T.core = NULL;
    T.cfg.push_fallback_ms = 0;
    rec_clear();
    boot();
    online(&bob);
    online(&alice);
    created = T.now;
    invite("c-2", "");
    for (int64_t t = created + 100; t <= created + T.cfg.invite_timeout_ms; t += 100)
        tick_at(t);
    assert_int_equal(count_type("failure"), 2);
    assert_int_equal(T.npushes, 0);
}

static void test_push_cancel_when_pushed_call_ends(void **state)
{
    (void)state;
    boot();
    bob_registered_and_away();
    online(&alice);

    /* Canceled by the caller. */
    int64_t t0 = T.now;
    invite("c-1", ",\"channel\":\"room\"");
    assert_int_equal(T.npushes, 1);
    rec_clear();
    T.now += 1500;
    answer(&alice, "bob", "cancel", "c-1");
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_CANCEL, "c-1", "room", t0 + T.cfg.invite_timeout_ms,
                "canceled");
    /* A re-sent cancel pushes nothing more. */
    rec_clear();
    T.now += 10;
    answer(&alice, "bob", "cancel", "c-1");
    assert_int_equal(T.npushes, 0);

    /* Refused by the woken callee: its other devices stop ringing. */
    t0 = T.now;
    invite("c-2", "");
    rec_clear();
    online(&bob);
    T.now += 200;
    answer(&bob, "alice", "refuse", "c-2");
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_CANCEL, "c-2", "", t0 + T.cfg.invite_timeout_ms,
                "answered_elsewhere");
    offline(&bob);

    /* Failed (nobody answered): the failure's reason. */
    t0 = T.now;
    invite("c-3", ",\"timeout\":5");
    rec_clear();
    tick_at(t0 + 5000);
    assert_int_equal(count_type("failure"), 2);
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_CANCEL, "c-3", "", t0 + 5000, "peer_offline");
}

/* Accepted on the woken device: the callee's other pushed devices are told
 * to stop ringing, once; nothing more follows. */
static void test_push_answered_elsewhere_when_accepted(void **state)
{
    (void)state;
    boot();
    bob_registered_and_away();
    online(&alice);
    int64_t t0 = T.now;
    invite("c-1", "");
    assert_int_equal(T.npushes, 1);
    rec_clear();
    online(&bob); /* woken by the push */
    T.now += 300;
    answer(&bob, "alice", "ringing", "c-1");
    assert_int_equal(T.npushes, 0);
    T.now += 300;
    answer(&bob, "alice", "accept", "c-1");
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_CANCEL, "c-1", "", t0 + T.cfg.invite_timeout_ms,
                "answered_elsewhere");
    rec_clear();
    answer(&bob, "alice", "accept", "c-1"); /* a re-send */
    int64_t end = T.now + 120000;
    for (int64_t t = T.now; t < end; t += 1000)
        tick_at(t);
    assert_int_equal(T.npushes, 0);
}

static void test_push_on_cancel_off(void **state)
{
    (void)state;
    T.cfg.push_on_cancel = false;
    boot();
    bob_registered_and_away();
    online(&alice);
    int64_t t0 = T.now;
    invite("c-1", "");
    assert_int_equal(T.npushes, 1); /* the invite is still pushed */
    rec_clear();
    answer(&alice, "bob", "cancel", "c-1");
    assert_int_equal(T.npushes, 0);
    invite("c-2", ",\"timeout\":3");
    assert_int_equal(T.npushes, 1);
    rec_clear();
    tick_at(t0 + 3000);
    assert_int_equal(count_type("failure"), 2);
    assert_int_equal(T.npushes, 0);
    /* Nor when the woken callee answers. */
    invite("c-3", "");
    assert_int_equal(T.npushes, 1);
    rec_clear();
    online(&bob);
    answer(&bob, "alice", "accept", "c-3");
    assert_int_equal(T.npushes, 0);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, devices_setup, devices_teardown)
    const struct CMUnitTest tests[] = {
        T_(test_push_offline_callee),
        T_(test_push_fallback_online_callee),
        T_(test_push_no_fallback_after_ringing),
        T_(test_push_cancel_when_pushed_call_ends),
        T_(test_push_answered_elsewhere_when_accepted),
        T_(test_push_on_cancel_off),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
