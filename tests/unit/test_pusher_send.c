/*
 * Unit tests for plugin/push/pusher.c, the push dispatcher (rtm_pusher.h, SPEC 6.2
 * and 6.3): whom a push goes to (targets and batches of at most
 * RTM_PUSH_BATCH_MAX tokens), the `pushed` event an accepted request
 * publishes, call_cancel to the tokens the invite woke, and the sender's edge
 * cases (dry run, a full queue, stray results, freeing with work pending).
 * The fixture (recording sender and sink, fake clock) is pusher_fixture.h.
 */
#include "pusher_fixture.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Registers `n` devices "d0000".. with tokens "tok-0000".. for `uid`. */
static void reg_many(const char *uid, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char device[32], token[32]; /* room for any size_t */
        snprintf(device, sizeof(device), "d%04zu", i);
        snprintf(token, sizeof(token), "tok-%04zu", i);
        reg(uid, device, token);
    }
}

/* ==================================================================================
 * Targets and batches
 * ================================================================================== */

static void test_no_devices(void **state)
{
    (void)state;
    boot();
    invite("c-1", "bob", FAR);
    assert_int_equal(P.submit_calls, 0);
    assert_int_equal(P.rec.npubs, 0);
    if (P.rec.nlogs != 1)
        print_error("%zu log lines, expected one\n", P.rec.nlogs);
    assert_int_equal(P.rec.nlogs, 1);
    assert_non_null(strstr(P.rec.logs[0].text, "bob"));
    expect_stats(0, 0, 0, 0, 0, 0, 0, 0);
    /* Nothing was woken, so nothing is told to stop ringing. */
    clear();
    cancel("c-1", "bob", FAR);
    assert_int_equal(P.submit_calls, 0);
    assert_int_equal(P.rec.npubs, 0);
}

static void test_one_device_ok(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "1a0018970a2b3c4d5e6");
    reg("carol", "phone", "carol-token");
    invite("c-1", "bob", T0 + 30000);
    assert_int_equal(P.nsubs, 1);
    const struct sub *s = &P.subs[0];
    expect_request(s, "call_invite", "c-1");
    static const char *const want[] = {"1a0018970a2b3c4d5e6"};
    expect_audience(s, want, 1);
    assert_int_equal(ttl_of(s), 30);
    assert_int_equal(P.rec.npubs, 0); /* nothing is told before the provider answers */
    expect_stats(1, 1, 1, 0, 0, 0, 0, 0);

    uint64_t tag = s->tag;
    clear();
    P.now += 120;
    respond(tag, 200, OK_BODY);
    expect_pushed("c-1", "bob", 1);
    assert_int_equal(P.submit_calls, 0);
    expect_stats(0, 1, 1, 1, 0, 0, 0, 0);

    /* The same answer again (a duplicate from the worker) changes nothing. */
    clear();
    respond(tag, 200, OK_BODY);
    assert_int_equal(P.rec.npubs, 0);
    expect_stats(0, 1, 1, 1, 0, 0, 0, 0);
    tick_at(P.now + 60000);
    assert_int_equal(P.submit_calls, 0);
}

static void test_1500_devices_two_batches(void **state)
{
    (void)state;
    boot();
    reg_many("bob", 1500);
    assert_int_equal(devices_of("bob"), 1500);
    invite("c-1", "bob", T0 + 30000);
    assert_int_equal(P.nsubs, 2);
    expect_request(&P.subs[0], "call_invite", "c-1");
    expect_request(&P.subs[1], "call_invite", "c-1");
    assert_true(P.subs[0].tag != P.subs[1].tag);

    /* 1000 + 500, together every token exactly once. */
    const cJSON *a = audience(&P.subs[0]), *b = audience(&P.subs[1]);
    size_t na = (size_t)cJSON_GetArraySize(a), nb = (size_t)cJSON_GetArraySize(b);
    assert_true((na == 1000 && nb == 500) || (na == 500 && nb == 1000));
    const char **all = calloc(1500, sizeof(*all));
    char(*names)[16] = calloc(1500, sizeof(*names));
    assert_non_null(all);
    assert_non_null(names);
    for (size_t i = 0; i < 1500; i++) {
        snprintf(names[i], sizeof(names[i]), "tok-%04zu", i);
        all[i] = names[i];
    }
    cJSON *both = cJSON_CreateObject();
    assert_non_null(both);
    struct sub merged = {0};
    merged.body = both;
    cJSON *aud = cJSON_AddObjectToObject(both, "audience");
    cJSON *ids = cJSON_AddArrayToObject(aud, "registration_id");
    assert_non_null(ids);
    const cJSON *id;
    cJSON_ArrayForEach(id, a)
    {
        cJSON_AddItemToArray(ids, cJSON_CreateString(id->valuestring));
    }
    cJSON_ArrayForEach(id, b)
    {
        cJSON_AddItemToArray(ids, cJSON_CreateString(id->valuestring));
    }
    expect_audience(&merged, all, 1500);
    cJSON_Delete(both);
    free(all);
    free(names);
    expect_stats(2, 1, 2, 0, 0, 0, 0, 0);

    /* One pushed event per accepted request, counting that request's devices. */
    uint64_t tag_a = P.subs[0].tag, tag_b = P.subs[1].tag;
    clear();
    P.now += 100;
    respond(tag_b, 200, OK_BODY);
    expect_pushed("c-1", "bob", nb);
    clear();
    P.now += 100;
    respond(tag_a, 200, OK_BODY);
    expect_pushed("c-1", "bob", na);
    expect_stats(0, 1, 2, 2, 0, 0, 0, 0);

    /* The cancel goes to the same 1500 in batches of at most 1000. */
    clear();
    cancel("c-1", "bob", T0 + 30000);
    assert_int_equal(P.nsubs, 2);
    assert_int_equal(
        cJSON_GetArraySize(audience(&P.subs[0])) + cJSON_GetArraySize(audience(&P.subs[1])), 1500);
    assert_true(cJSON_GetArraySize(audience(&P.subs[0])) <= RTM_PUSH_BATCH_MAX);
    assert_true(cJSON_GetArraySize(audience(&P.subs[1])) <= RTM_PUSH_BATCH_MAX);
    expect_request(&P.subs[0], "call_cancel", "c-1");
}

/* ==================================================================================
 * call_cancel
 * ================================================================================== */

static void test_cancel_goes_to_the_woken_tokens(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");
    reg("bob", "tablet", "tok-2");
    invite("c-1", "bob", T0 + 30000);
    respond(P.subs[0].tag, 200, OK_BODY);
    /* The registry changes after the invite went out. */
    rtm_registry_remove(P.registry, "bob", "tablet");
    reg("bob", "laptop", "tok-9");
    reg("carol", "phone", "tok-1"); /* tok-1 moved to carol */
    clear();
    P.now += 3000;
    cancel("c-1", "bob", T0 + 30000);
    assert_int_equal(P.nsubs, 1);
    expect_request(&P.subs[0], "call_cancel", "c-1");
    static const char *const want[] = {"tok-1", "tok-2"};
    expect_audience(&P.subs[0], want, 2);
    assert_int_equal(ttl_of(&P.subs[0]), 27);
    expect_stats(1, 0, 2, 1, 0, 0, 0, 0);
    /* Its success tells the caller nothing: `pushed` is about invitations. */
    uint64_t tag = P.subs[0].tag;
    clear();
    respond(tag, 200, OK_BODY);
    assert_int_equal(P.rec.npubs, 0);
    expect_stats(0, 0, 2, 2, 0, 0, 0, 0);
    /* The cancel was the call's last push: a second one sends nothing. */
    clear();
    cancel("c-1", "bob", T0 + 30000);
    assert_int_equal(P.submit_calls, 0);
}

/* `kind` of invitation `id` placed by `caller`. */
static void push_from(enum rtm_push_kind kind, const char *caller, const char *id,
                      const char *callee)
{
    struct rtm_push p = {
        .kind = kind,
        .call_id = id,
        .caller = caller,
        .callee = callee,
        .channel = "",
        .expires_at = T0 + 30000,
        .why = "test",
        .now_ms = P.now,
    };
    rtm_pusher_on_push(P.pusher, &p);
}

/* Two callers' invitations with the same id are two records: each cancel
 * goes to the devices its own invite woke, and only once. */
static void test_same_id_two_callers(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-b");
    reg("dave", "phone", "tok-d");
    push_from(RTM_PUSH_CALL_INVITE, "alice", "c-1", "bob");
    push_from(RTM_PUSH_CALL_INVITE, "carol", "c-1", "dave");
    assert_int_equal(stats().calls, 2);
    clear();
    push_from(RTM_PUSH_CALL_CANCEL, "carol", "c-1", "dave");
    assert_int_equal(P.nsubs, 1);
    const cJSON *extras = field(field(field(P.subs[0].body, "notification"), "android"), "extras");
    assert_string_equal(str_field(extras, "rtm"), "call_cancel");
    assert_string_equal(str_field(extras, "caller"), "carol");
    static const char *const dave_tokens[] = {"tok-d"};
    expect_audience(&P.subs[0], dave_tokens, 1);
    assert_int_equal(stats().calls, 1);
    clear();
    push_from(RTM_PUSH_CALL_CANCEL, "carol", "c-1", "dave");
    assert_int_equal(P.nsubs, 0);
    push_from(RTM_PUSH_CALL_CANCEL, "alice", "c-1", "bob");
    assert_int_equal(P.nsubs, 1);
    expect_request(&P.subs[0], "call_cancel", "c-1");
    static const char *const bob_tokens[] = {"tok-b"};
    expect_audience(&P.subs[0], bob_tokens, 1);
    assert_int_equal(stats().calls, 0);
}

static void test_cancel_without_invite_push(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");
    cancel("c-1", "bob", T0 + 30000);
    assert_int_equal(P.submit_calls, 0);
    assert_int_equal(P.rec.npubs, 0);
    expect_stats(0, 0, 0, 0, 0, 0, 0, 0);
    /* Another call's invite does not make this call's cancel go anywhere. */
    invite("c-2", "bob", T0 + 30000);
    clear();
    cancel("c-1", "bob", T0 + 30000);
    assert_int_equal(P.submit_calls, 0);
    assert_int_equal(stats().calls, 1);
}

/* Remembering which tokens an invite woke does not last for ever. */
static void test_call_records_are_forgotten(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");
    for (int i = 0; i < 50; i++) {
        char id[16];
        snprintf(id, sizeof(id), "c-%d", i);
        invite(id, "bob", P.now + 30000);
        respond(P.subs[P.nsubs - 1].tag, 200, OK_BODY);
    }
    assert_int_equal(stats().calls, 50);
    tick_at(P.now + 3600 * 1000);
    assert_int_equal(stats().calls, 0);
    clear();
    cancel("c-0", "bob", T0 + 30000);
    assert_int_equal(P.submit_calls, 0);
}

/* ==================================================================================
 * Dry run, a full sender, stray results, teardown
 * ================================================================================== */

static void test_dry_run(void **state)
{
    (void)state;
    P.dry_run = true;
    boot();
    reg("bob", "phone", "tok-1");
    reg("bob", "tablet", "tok-2");
    invite("c-1", "bob", T0 + 30000);
    if (P.rec.nlogs != 1)
        print_error("%zu log lines, expected one\n", P.rec.nlogs);
    assert_int_equal(P.rec.nlogs, 1);
    assert_non_null(strstr(P.rec.logs[0].text, "phone"));
    assert_non_null(strstr(P.rec.logs[0].text, "tablet"));
    assert_non_null(strstr(P.rec.logs[0].text, "c-1"));
    assert_int_equal(P.rec.npubs, 0);
    assert_int_equal(P.submit_calls, 0);
    struct rtm_pusher_stats s = stats();
    assert_int_equal(s.sent, 0);
    assert_int_equal(s.jobs, 0);
    assert_int_equal(s.dropped, 0);
    /* Nothing to tick, nothing to answer. */
    clear();
    tick_at(P.now + 10000);
    assert_int_equal(P.rec.npubs, 0);
    /* Its cancel is logged the same way. */
    cancel("c-1", "bob", T0 + 30000);
    assert_int_equal(P.rec.nlogs, 1);
    assert_non_null(strstr(P.rec.logs[0].text, "c-1"));
    assert_int_equal(P.submit_calls, 0);
    /* No devices: one line saying so, as when sending. */
    clear();
    invite("c-2", "dave", T0 + 30000);
    assert_int_equal(P.rec.nlogs, 1);
}

static void test_queue_full(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");
    P.full = true;
    invite("c-1", "bob", FAR);
    assert_int_equal(P.submit_calls, 1);
    assert_int_equal(P.nsubs, 0);
    assert_int_equal(P.rec.npubs, 0);
    assert_true(count_logs_at(RTM_LOG_WARNING) >= 1);
    expect_sender(0, 0, 0, 1);

    /* Full when a retry is due: the retry is dropped, the job freed. */
    P.full = false;
    clear();
    invite("c-2", "bob", FAR);
    respond(P.subs[0].tag, 500, ERR_500);
    P.full = true;
    assert_true(tick_until_submitted(P.now, P.now + 1000) > 0);
    assert_int_equal(P.nsubs, 1);
    expect_sender(0, 1, 1, 2);
    /* Both batches of a big push refused: two drops. */
    reg_many("dave", 1200);
    clear();
    invite("c-3", "dave", FAR);
    assert_int_equal(P.submit_calls, 2);
    expect_sender(0, 1, 1, 4);
    /* Refused before it reached the pusher (services: the waiting pushes
     * are full): the same line, the same count, nothing sent. */
    clear();
    struct rtm_push push = {.kind = RTM_PUSH_CALL_INVITE,
                            .call_id = "c-4",
                            .caller = "alice",
                            .callee = "bob",
                            .expires_at = FAR,
                            .now_ms = P.now};
    rtm_pusher_drop(P.pusher, &push);
    assert_int_equal(P.rec.nlogs, 1);
    assert_non_null(
        strstr(P.rec.logs[0].text, "call_invite c-4 to bob dropped: the push queue is full"));
    assert_int_equal(P.submit_calls, 0); /* since clear() */
    expect_sender(0, 1, 1, 5);
}

static void test_unknown_tags_ignored(void **state)
{
    (void)state;
    boot();
    respond(0, 200, OK_BODY);
    respond(1, 500, ERR_500);
    respond(UINT64_MAX, 400, ERR_1011);
    assert_int_equal(P.rec.npubs, 0);
    assert_int_equal(P.submit_calls, 0);
    expect_stats(0, 0, 0, 0, 0, 0, 0, 0);

    reg("bob", "phone", "tok-1");
    invite("c-1", "bob", FAR);
    uint64_t tag = P.subs[0].tag;
    clear();
    respond(tag + 1, 400, ERR_1011);
    respond(tag ^ 0x8000000000000000ULL, 200, OK_BODY);
    assert_int_equal(P.rec.npubs, 0);
    assert_int_equal(devices_of("bob"), 1);
    expect_stats(1, 1, 1, 0, 0, 0, 0, 0);
    respond(tag, 200, OK_BODY);
    expect_pushed("c-1", "bob", 1);
    /* A late answer for a finished request is unknown too. */
    clear();
    respond(tag, 400, ERR_1011);
    assert_int_equal(P.rec.npubs, 0);
    assert_int_equal(devices_of("bob"), 1);
    expect_stats(0, 1, 1, 1, 0, 0, 0, 0);
}

/* Freed with requests in flight, a retry armed and call records kept: the
 * sanitizer build checks that nothing leaks (the teardown frees it). */
static void test_free_with_work_pending(void **state)
{
    (void)state;
    boot();
    reg_many("bob", 1500);
    reg("carol", "phone", "carol-1");
    invite("c-1", "bob", FAR);
    invite("c-2", "carol", FAR);
    respond(P.subs[2].tag, 500, ERR_500); /* a retry armed */
    invite("c-3", "carol", FAR);
    respond(P.subs[3].tag, 200, OK_BODY); /* remembered for its cancel */
    expect_stats(3, 3, 4, 1, 1, 0, 0, 0);
}

/* A push copied for later keeps each string whole up to its field's size
 * and cuts longer ones there, NUL-terminated inside the field: nothing is
 * written past the last field. */
static void test_push_copy_cuts_long_strings(void **state)
{
    (void)state;
    char long_text[200];
    memset(long_text, 'x', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    struct rtm_push push = {.kind = RTM_PUSH_CALL_INVITE,
                            .call_id = long_text,
                            .caller = long_text,
                            .callee = "bob",
                            .channel = NULL,
                            .expires_at = 42,
                            .why = long_text,
                            .reason = long_text};
    union {
        struct rtm_push_copy c;
        unsigned char bytes[sizeof(struct rtm_push_copy)];
    } u;
    memset(&u, 0x5A, sizeof(u));
    rtm_push_copy_set(&u.c, &push);
    assert_int_equal(strlen(u.c.call_id), sizeof(u.c.call_id) - 1);
    assert_int_equal(strlen(u.c.caller), sizeof(u.c.caller) - 1);
    assert_int_equal(strncmp(u.c.call_id, long_text, sizeof(u.c.call_id) - 1), 0);
    assert_string_equal(u.c.callee, "bob");
    assert_string_equal(u.c.channel, "");
    assert_int_equal(strlen(u.c.why), sizeof(u.c.why) - 1);
    assert_int_equal(strlen(u.c.reason), sizeof(u.c.reason) - 1);
    for (size_t i = offsetof(struct rtm_push_copy, reason) + sizeof(u.c.reason); i < sizeof(u); i++)
        assert_int_equal(u.bytes[i], 0x5A);
    struct rtm_push back = rtm_push_copy_view(&u.c, 7);
    assert_int_equal(back.expires_at, 42);
    assert_int_equal(back.now_ms, 7);
    assert_string_equal(back.callee, "bob");
    assert_int_equal(strncmp(back.reason, long_text, sizeof(u.c.reason) - 1), 0);
    /* No reason (an invite) comes back as none. */
    push.reason = NULL;
    rtm_push_copy_set(&u.c, &push);
    back = rtm_push_copy_view(&u.c, 7);
    assert_null(back.reason);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, pusher_setup, pusher_teardown)
    const struct CMUnitTest tests[] = {
        T_(test_no_devices),
        T_(test_one_device_ok),
        T_(test_1500_devices_two_batches),
        T_(test_cancel_goes_to_the_woken_tokens),
        T_(test_same_id_two_callers),
        T_(test_cancel_without_invite_push),
        T_(test_call_records_are_forgotten),
        T_(test_dry_run),
        T_(test_queue_full),
        T_(test_unknown_tags_ignored),
        T_(test_free_with_work_pending),
        cmocka_unit_test(test_push_copy_cuts_long_strings),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
