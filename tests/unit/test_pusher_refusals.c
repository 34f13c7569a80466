/*
 * Unit tests for plugin/push/pusher.c, the push dispatcher (rtm_pusher.h, SPEC 6.3):
 * requests the provider refuses are never retried; invalid tokens are
 * removed from the registry with their retained registrations cleared, and a
 * configuration error is logged without the master secret. The fixture
 * (recording sender and sink, fake clock) is pusher_fixture.h.
 */
#include "pusher_fixture.h"

#include <stdio.h>

/* ==================================================================================
 * Refusals
 * ================================================================================== */

static void test_invalid_tokens_removed(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");
    reg("bob", "tablet", "tok-2");
    reg("carol", "phone", "tok-3");
    invite("c-1", "bob", FAR);
    assert_int_equal(P.nsubs, 1);
    clear();
    respond(P.subs[0].tag, 400, ERR_1011);
    /* Both of the request's registrations are gone, with their retained messages. */
    assert_int_equal(devices_of("bob"), 0);
    assert_int_equal(devices_of("carol"), 1);
    assert_true(has_device("carol", "phone", "tok-3"));
    assert_int_equal(P.rec.npubs, 2);
    expect_cleared("bob", "phone");
    expect_cleared("bob", "tablet");
    assert_int_equal(count_topic("rtm/u/alice/call"), 0); /* no pushed event */
    expect_stats(0, 1, 1, 0, 0, 1, 0, 2);
    /* Never retried. */
    clear();
    assert_int_equal(tick_until_submitted(P.now, P.now + 70000), -1);
    /* A token already unregistered meanwhile is not cleared twice. */
    reg("bob", "phone", "tok-1");
    reg("bob", "tablet", "tok-2");
    P.now += 1000;
    invite("c-2", "bob", P.now + 30000);
    uint64_t tag = P.subs[0].tag;
    rtm_registry_remove(P.registry, "bob", "tablet");
    clear();
    respond(tag, 400, ERR_1011);
    assert_int_equal(P.rec.npubs, 1);
    expect_cleared("bob", "phone");
    assert_int_equal(devices_of("bob"), 0);
    assert_int_equal(stats().tokens_removed, 3);
}

static void test_config_error_not_retried(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");
    static const struct {
        long status;
        const char *body;
    } cases[] = {
        {401, ERR_AUTH},
        {401, NULL},
        {400, ERR_APPKEY},
        {400, "{\"error\":{\"code\":1003,\"message\":\"Parameter value is invalid\"}}"},
        {403, "{\"error\":{\"code\":2003,\"message\":\"The appKey is blocked\"}}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        clear();
        char id[16];
        snprintf(id, sizeof(id), "c-%zu", i);
        invite(id, "bob", FAR);
        assert_int_equal(P.nsubs, 1);
        uint64_t tag = P.subs[0].tag;
        clear();
        respond(tag, cases[i].status, cases[i].body);
        if (count_logs_at(RTM_LOG_ERR) != 1)
            print_error("case %zu: %zu error lines\n", i, count_logs_at(RTM_LOG_ERR));
        assert_int_equal(count_logs_at(RTM_LOG_ERR), 1);
        assert_true(secret_kept());
        assert_int_equal(P.rec.npubs, 0);
        assert_int_equal(tick_until_submitted(P.now, P.now + 70000), -1);
        assert_int_equal(devices_of("bob"), 1); /* not the tokens' fault */
        struct rtm_pusher_stats s = stats();
        assert_int_equal(s.failed, i + 1);
        assert_int_equal(s.retried, 0);
        assert_int_equal(s.jobs, 0);
    }
}

static void test_other_refusal_not_retried(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");
    invite("c-1", "bob", FAR);
    uint64_t tag = P.subs[0].tag;
    clear();
    respond(tag, 400, "{\"error\":{\"code\":1030,\"message\":\"internal service timeout\"}}");
    assert_int_equal(P.rec.npubs, 0);
    assert_true(P.rec.nlogs >= 1);
    assert_int_equal(tick_until_submitted(P.now, P.now + 70000), -1);
    assert_int_equal(devices_of("bob"), 1);
    expect_stats(0, 1, 1, 0, 0, 1, 0, 0);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, pusher_setup, pusher_teardown)
    const struct CMUnitTest tests[] = {
        T_(test_invalid_tokens_removed),
        T_(test_config_error_not_retried),
        T_(test_other_refusal_not_retried),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
