/*
 * Unit tests for plugin/push/pusher.c, the push dispatcher (rtm_pusher.h, SPEC 6.3):
 * retries of a failed request, with jittered exponential backoff,
 * Retry-After and X-Rate-Limit-Reset, only while the invitation is pending,
 * and never past its expiry. The fixture (recording sender and sink, fake
 * clock) is pusher_fixture.h.
 */
#include "pusher_fixture.h"

#include <inttypes.h>
#include <string.h>

/* ==================================================================================
 * Retries
 * ================================================================================== */

/* The backoff: retry k (from 0) comes no sooner than half its cap and no later
 * than the cap, which doubles from 500 ms and stops at 30 s. Several seeds,
 * so the jitter is exercised; never before the minimum. */
static void test_retry_backoff(void **state)
{
    (void)state;
    int64_t first_delays[24];
    size_t nseeds = sizeof(first_delays) / sizeof(first_delays[0]);
    for (size_t seed = 1; seed <= nseeds; seed++) {
        clear();
        rtm_pusher_free(P.pusher);
        P.pusher = NULL;
        rtm_registry_free(P.registry);
        P.registry = NULL;
        P.now = T0;
        boot_seed(seed * 0x9E3779B97F4A7C15ULL);
        reg("bob", "phone", "tok-1");
        invite("c-1", "bob", FAR);
        assert_int_equal(P.nsubs, 1);
        int64_t cap = 500;
        for (unsigned attempt = 0; attempt + 1 < RTM_PUSH_MAX_ATTEMPTS; attempt++) {
            uint64_t tag = P.subs[P.nsubs - 1].tag;
            size_t before = P.submit_calls;
            int64_t at = P.now;
            size_t asked = P.pending_asked;
            respond(tag, 500, ERR_500);
            assert_int_equal(P.submit_calls, before); /* only a tick resends */
            assert_true(P.pending_asked > asked);
            assert_string_equal(P.pending_last, "c-1");
            assert_string_equal(P.pending_caller, "alice");
            int64_t max = cap < 30000 ? cap : 30000;
            int64_t d = tick_until_submitted(at, at + max + 1000);
            if (d < max / 2 || d > max)
                print_error("seed %zu retry %u after %" PRId64 " ms, expected [%" PRId64
                            ", %" PRId64 "]\n",
                            seed, attempt + 1, d, max / 2, max);
            assert_true(d >= max / 2 && d <= max);
            if (attempt == 0)
                first_delays[seed - 1] = d;
            assert_int_equal(P.nsubs, attempt + 2);
            const struct sub *s = &P.subs[P.nsubs - 1];
            expect_request(s, "call_invite", "c-1");
            static const char *const want[] = {"tok-1"};
            expect_audience(s, want, 1);
            /* time_to_live counts from the retry, not from the first try. */
            int64_t left = FAR - P.now;
            assert_int_equal(ttl_of(s), (left + 999) / 1000);
            cap *= 2;
        }
        /* The last allowed attempt fails too: given up, no further send. */
        assert_int_equal(P.nsubs, RTM_PUSH_MAX_ATTEMPTS);
        P.now += 5;
        respond(P.subs[P.nsubs - 1].tag, 500, ERR_500);
        assert_int_equal(tick_until_submitted(P.now, P.now + 70000), -1);
        assert_int_equal(P.nsubs, RTM_PUSH_MAX_ATTEMPTS);
        assert_int_equal(P.rec.npubs, 0);
        expect_stats(0, 1, RTM_PUSH_MAX_ATTEMPTS, 0, RTM_PUSH_MAX_ATTEMPTS - 1, 1, 0, 0);
        assert_true(count_logs_at(RTM_LOG_WARNING) >= 1);
    }
    /* Jittered: the seeds do not all wait the same time. */
    bool varied = false;
    for (size_t i = 1; i < nseeds; i++)
        varied = varied || first_delays[i] != first_delays[0];
    assert_true(varied);
}

/* A retry that succeeds tells the caller once, like a first try. */
static void test_retry_then_ok(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");
    reg("bob", "tablet", "tok-2");
    invite("c-1", "bob", FAR);
    respond(P.subs[0].tag, 503, NULL);
    assert_int_equal(P.rec.npubs, 0);
    assert_true(tick_until_submitted(P.now, P.now + 1000) > 0);
    assert_int_equal(P.nsubs, 2);
    uint64_t tag = P.subs[1].tag;
    clear();
    respond(tag, 200, OK_BODY);
    expect_pushed("c-1", "bob", 2);
    expect_stats(0, 1, 2, 1, 1, 0, 0, 0);
}

static void test_retry_after_header(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");

    /* 500 with Retry-After: 2 -> not before 2000 ms. */
    invite("c-1", "bob", FAR);
    int64_t at = P.now;
    respond_full(P.subs[0].tag, 500, ERR_500, "2", NULL);
    assert_int_equal(tick_until_submitted(at, at + 1999), -1);
    tick_at(at + 2000);
    assert_int_equal(P.nsubs, 2);

    /* 429 (JPush 2002) with only X-Rate-Limit-Reset: 3 -> not before 3000 ms. */
    clear();
    invite("c-2", "bob", FAR);
    at = P.now;
    respond_full(P.subs[0].tag, 429,
                 "{\"error\":{\"code\":2002,\"message\":\"Request times exceeds the limit\"}}",
                 NULL, "3");
    assert_int_equal(tick_until_submitted(at, at + 2999), -1);
    tick_at(at + 3000);
    assert_int_equal(P.nsubs, 2);

    /* No HTTP response at all (DNS, connect, TLS, timeout): backoff. */
    clear();
    invite("c-3", "bob", FAR);
    at = P.now;
    respond(P.subs[0].tag, 0, NULL);
    int64_t d = tick_until_submitted(at, at + 1000);
    assert_true(d >= 250 && d <= 500);
    expect_stats(3, 3, 6, 0, 3, 0, 0, 0);
}

/* call_pending false when the answer comes: no retry. */
static void test_retry_stops_when_call_not_pending(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");
    invite("c-1", "bob", FAR);
    P.pending = false;
    respond_full(P.subs[0].tag, 500, ERR_500, "1", NULL);
    assert_true(P.pending_asked >= 1);
    assert_string_equal(P.pending_last, "c-1");
    assert_string_equal(P.pending_caller, "alice");
    assert_int_equal(tick_until_submitted(P.now, P.now + 70000), -1);
    assert_int_equal(P.nsubs, 1);
    assert_int_equal(P.rec.npubs, 0);
    expect_stats(0, 1, 1, 0, 0, 1, 0, 0);
}

/* The call ends while a retry waits: SPEC 6.3 retries only "while the
 * invitation is pending", so the armed retry must not ring the phone again
 * (it would arrive after the call_cancel push and, on iOS, replace it). */
static void test_retry_not_sent_after_call_ended(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");
    invite("c-1", "bob", FAR);
    respond_full(P.subs[0].tag, 500, ERR_500, "2", NULL);
    assert_int_equal(stats().retried, 1);
    /* The caller cancels before the retry is due. */
    P.now += 500;
    P.pending = false;
    clear();
    cancel("c-1", "bob", FAR);
    assert_int_equal(P.nsubs, 1);
    expect_request(&P.subs[0], "call_cancel", "c-1");
    respond(P.subs[0].tag, 200, OK_BODY);
    clear();
    tick_at(T0 + 2000);
    tick_at(T0 + 60000);
    size_t invites = 0;
    for (size_t i = 0; i < P.nsubs; i++) {
        const cJSON *x = field(field(field(P.subs[i].body, "notification"), "android"), "extras");
        invites += strcmp(str_field(x, "rtm"), "call_invite") == 0;
    }
    if (invites)
        print_error("a call_invite retry was sent at %" PRId64
                    " ms for a call that was no longer pending\n",
                    P.subs[0].at - T0);
    assert_int_equal(invites, 0);
    assert_int_equal(stats().jobs, 0);
}

/* The next attempt would be at or after expires_at: given up at once. */
static void test_retry_stops_at_expiry(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");

    invite("c-1", "bob", T0 + 2000);
    respond_full(P.subs[0].tag, 500, ERR_500, "2", NULL); /* due == expires_at */
    assert_int_equal(tick_until_submitted(P.now, T0 + 70000), -1);
    expect_stats(0, 1, 1, 0, 0, 1, 0, 0);

    clear();
    P.now = T0 + 100000;
    invite("c-2", "bob", P.now + 2001);
    int64_t at = P.now;
    respond_full(P.subs[0].tag, 500, ERR_500, "2", NULL); /* due just before it */
    assert_int_equal(tick_until_submitted(at, at + 1999), -1);
    tick_at(at + 2000);
    assert_int_equal(P.nsubs, 2);
    assert_int_equal(ttl_of(&P.subs[1]), 1);
    /* Backoff of at least 250 ms cannot fit into 250 ms: given up. */
    clear();
    P.now = T0 + 200000;
    invite("c-3", "bob", P.now + 250);
    respond(P.subs[0].tag, 502, NULL);
    assert_int_equal(tick_until_submitted(P.now, P.now + 70000), -1);
    /* A Retry-After past the deadline: given up too. */
    clear();
    P.now = T0 + 300000;
    invite("c-4", "bob", P.now + 30000);
    respond_full(P.subs[0].tag, 503, NULL, "120", NULL);
    assert_int_equal(tick_until_submitted(P.now, P.now + 130000), -1);
    /* c-2 was retried once and still waits for its answer. */
    struct rtm_pusher_stats s = stats();
    assert_int_equal(s.jobs, 1);
    assert_int_equal(s.failed, 3);
    assert_int_equal(s.retried, 1);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, pusher_setup, pusher_teardown)
    const struct CMUnitTest tests[] = {
        T_(test_retry_backoff),
        T_(test_retry_then_ok),
        T_(test_retry_after_header),
        T_(test_retry_stops_when_call_not_pending),
        T_(test_retry_not_sent_after_call_ended),
        T_(test_retry_stops_at_expiry),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
