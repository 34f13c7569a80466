/*
 * Unit tests for plugin/push/pusher.c while the device registry is read back at
 * start-up (rtm_pusher.h, SPEC 6.1): an invitation push waits, is not lost
 * and goes out when the registry is ready, to the devices read back, with
 * time_to_live as of then; one whose invitation ends first is dropped with
 * one log line, and so is its call_cancel; waiting pushes count against
 * push_queue_max. The fixture (recording sender and sink, fake clock) is
 * pusher_fixture.h.
 */
#include "pusher_fixture.h"

#include <string.h>

static size_t logs_with(const char *needle)
{
    size_t n = 0;
    for (size_t i = 0; i < P.rec.nlogs; i++)
        n += strstr(P.rec.logs[i].text, needle) != NULL;
    return n;
}

static void boot_loading(void)
{
    P.loading = true;
    boot();
}

/* The push waits; the devices the loader records meanwhile are the ones it
 * goes to, and its time_to_live counts from the moment it is sent. */
static void test_waits_then_goes_out(void **state)
{
    (void)state;
    boot_loading();
    invite("c-1", "bob", T0 + 30000);
    assert_int_equal(P.submit_calls, 0);
    assert_int_equal(logs_with("no registered device"), 0);
    assert_int_equal(logs_with("waiting for the device registry"), 1);
    assert_int_equal(stats().held, 1);
    reg("bob", "phone", "tok-read-back"); /* what the loader records */
    tick_at(T0 + 10000);
    assert_int_equal(P.submit_calls, 0);
    rtm_pusher_registry_ready(P.pusher, P.now);
    assert_int_equal(P.nsubs, 1);
    const struct sub *s = &P.subs[0];
    expect_request(s, "call_invite", "c-1");
    static const char *const want[] = {"tok-read-back"};
    expect_audience(s, want, 1);
    assert_int_equal(ttl_of(s), 20);
    assert_int_equal(stats().held, 0);
    uint64_t tag = s->tag;
    clear();
    respond(tag, 200, OK_BODY);
    expect_pushed("c-1", "bob", 1);
    /* Its call_cancel goes to the same device, as after any push. */
    cancel("c-1", "bob", T0 + 30000);
    assert_int_equal(P.nsubs, 1); /* clear() forgot the first */
    expect_request(&P.subs[0], "call_cancel", "c-1");
    expect_audience(&P.subs[0], want, 1);
}

/* Several waiting pushes go out oldest first; later ones do not wait. */
static void test_order_and_after(void **state)
{
    (void)state;
    boot_loading();
    reg("bob", "phone", "tok-b");
    reg("carol", "phone", "tok-c");
    invite("c-1", "bob", FAR);
    invite("c-2", "carol", FAR);
    assert_int_equal(P.submit_calls, 0);
    rtm_pusher_registry_ready(P.pusher, P.now);
    assert_int_equal(P.nsubs, 2);
    expect_request(&P.subs[0], "call_invite", "c-1");
    expect_request(&P.subs[1], "call_invite", "c-2");
    invite("c-3", "bob", FAR);
    assert_int_equal(P.nsubs, 3);
    expect_request(&P.subs[2], "call_invite", "c-3");
}

/* A call_cancel for a push that never went out does not go out either. */
static void test_cancel_while_waiting(void **state)
{
    (void)state;
    boot_loading();
    reg("bob", "phone", "tok-b");
    invite("c-1", "bob", FAR);
    clear();
    cancel("c-1", "bob", FAR);
    assert_int_equal(P.submit_calls, 0);
    assert_int_equal(P.rec.nlogs, 1);
    assert_non_null(strstr(P.rec.logs[0].text, "c-1"));
    assert_non_null(strstr(P.rec.logs[0].text, "not sent"));
    assert_int_equal(stats().held, 0);
    rtm_pusher_registry_ready(P.pusher, P.now);
    assert_int_equal(P.submit_calls, 0);
    assert_int_equal(P.rec.npubs, 0);
}

/* Invitations are named by caller and id: carol's cancel of her own c-1
 * drops her waiting push only, not alice's c-1. */
static void test_cancel_finds_its_own_caller(void **state)
{
    (void)state;
    boot_loading();
    reg("bob", "phone", "tok-b");
    invite("c-1", "bob", FAR); /* alice's */
    struct rtm_push theirs = {.kind = RTM_PUSH_CALL_INVITE,
                              .call_id = "c-1",
                              .caller = "carol",
                              .callee = "bob",
                              .channel = "",
                              .expires_at = FAR,
                              .why = "callee offline",
                              .now_ms = P.now};
    rtm_pusher_on_push(P.pusher, &theirs);
    assert_int_equal(stats().held, 2);
    theirs.kind = RTM_PUSH_CALL_CANCEL;
    theirs.reason = theirs.why = "canceled";
    rtm_pusher_on_push(P.pusher, &theirs);
    assert_int_equal(stats().held, 1);
    clear();
    rtm_pusher_registry_ready(P.pusher, P.now);
    assert_int_equal(P.nsubs, 1);
    expect_request(&P.subs[0], "call_invite", "c-1");
    assert_string_equal(P.pending_caller, "alice");
}

/* An invitation that ended without a call_cancel (accepted elsewhere, or
 * push_on_cancel off) is not pushed when the registry comes. */
static void test_ended_before_ready(void **state)
{
    (void)state;
    boot_loading();
    reg("bob", "phone", "tok-b");
    invite("c-1", "bob", FAR);
    P.pending = false;
    clear();
    rtm_pusher_registry_ready(P.pusher, P.now);
    assert_int_equal(P.submit_calls, 0);
    assert_string_equal(P.pending_last, "c-1");
    assert_int_equal(logs_with("not sent: the call ended"), 1);
    assert_int_equal(stats().held, 0);
}

/* The wait is bounded by the invitation's ringing deadline. */
static void test_deadline_passes(void **state)
{
    (void)state;
    boot_loading();
    reg("bob", "phone", "tok-b");
    invite("c-1", "bob", T0 + 5000);
    clear();
    tick_at(T0 + 4999);
    assert_int_equal(stats().held, 1);
    tick_at(T0 + 5000);
    assert_int_equal(stats().held, 0);
    assert_int_equal(logs_with("ringing deadline passed"), 1);
    rtm_pusher_registry_ready(P.pusher, P.now);
    assert_int_equal(P.submit_calls, 0);
}

/* Waiting pushes count against push_queue_max, like every waiting push. */
static void test_queue_bound(void **state)
{
    (void)state;
    P.cfg.push_queue_max = 2;
    boot_loading();
    reg("bob", "phone", "tok-b");
    invite("c-1", "bob", FAR);
    invite("c-2", "bob", FAR);
    invite("c-3", "bob", FAR);
    assert_int_equal(stats().held, 2);
    assert_int_equal(stats().dropped, 1);
    assert_int_equal(logs_with("c-3 to bob dropped: the push queue is full"), 1);
    rtm_pusher_registry_ready(P.pusher, P.now);
    assert_int_equal(P.nsubs, 2);
}

/* Not loading (registry_listener none): nothing waits. */
static void test_not_loading(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-b");
    invite("c-1", "bob", FAR);
    assert_int_equal(P.nsubs, 1);
    assert_int_equal(stats().held, 0);
}

/* Freed with pushes waiting: nothing leaks (the sanitizer build checks). */
static void test_free_while_waiting(void **state)
{
    (void)state;
    boot_loading();
    invite("c-1", "bob", FAR);
    invite("c-2", "bob", FAR);
    rtm_pusher_free(P.pusher);
    P.pusher = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_waits_then_goes_out, pusher_setup, pusher_teardown),
        cmocka_unit_test_setup_teardown(test_order_and_after, pusher_setup, pusher_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_while_waiting, pusher_setup, pusher_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_finds_its_own_caller, pusher_setup,
                                        pusher_teardown),
        cmocka_unit_test_setup_teardown(test_ended_before_ready, pusher_setup, pusher_teardown),
        cmocka_unit_test_setup_teardown(test_deadline_passes, pusher_setup, pusher_teardown),
        cmocka_unit_test_setup_teardown(test_queue_bound, pusher_setup, pusher_teardown),
        cmocka_unit_test_setup_teardown(test_not_loading, pusher_setup, pusher_teardown),
        cmocka_unit_test_setup_teardown(test_free_while_waiting, pusher_setup, pusher_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
