/*
 * When the plugin pushes (SPEC 6.2, PROTOCOL.md section 7), watched on the
 * mock JPush: an invite to a callee with no live session pushes all its
 * devices at once; an online callee that has not rung within push_fallback_ms
 * (500 ms here) is pushed anyway; one that rings in time is not; an
 * invitation pushes call_invite at most once; a pushed invitation that ends
 * sends call_cancel to the same devices, unless push_on_cancel is off, with
 * extras.reason: answered_elsewhere when the callee accepted or refused (its
 * other devices must stop ringing), else the ending's reason (canceled,
 * no_response, peer_offline, expired, caller_offline).
 *
 * "No push" is shown by a sentinel: after the window in which the push would
 * have gone (push_fallback_ms plus the 200 ms timer precision, or the ending
 * that would have caused it), alice calls carol, who is offline, and the
 * mock's next request must be carol's push.
 */
#include <string.h>

#include "jpush_mock.h"

#define FALLBACK_MS 500
/* Timers fire within 200 ms of their due time; a little more for the push
 * to be handed to the worker. */
#define FALLBACK_WINDOW_MS (FALLBACK_MS + 400)
#define PUSH_WAIT_MS       (5000 * rt_time_scale())

struct env {
    struct mock *m;
    struct broker *b;
    struct client *alice;
    int records; /* push requests the mock has recorded so far */
};

/* A broker pushing to a fresh mock; bob (d1, d2) and carol (c1) have
 * registered and gone offline; alice is connected, subscribed to her inbox
 * and to presence. */
static void setup(struct env *e, const char *extra_opt)
{
    static const char *opts[] = {
        "push_fallback_ms 500", "invite_timeout 5", "ring_timeout 3", "caller_grace 1", NULL, NULL};
    opts[4] = extra_opt;
    e->m = mock_start(NULL);
    struct broker_opts o = {.plugin_opts = mock_plugin_opts(e->m, opts)};
    e->b = broker_start(&o);
    e->records = 0;
    e->alice = open5(e->b, "alice", NULL);
    CHECK_EQ_INT(client_subscribe(e->alice, inbox("alice"), 1), 1);
    CHECK_EQ_INT(client_subscribe(e->alice, "rtm/presence/+", 1), 1);
    struct client *bob = open5(e->b, "bob-phone", "bob");
    device_register(bob, "bob", "d1", "android", "tok-b1");
    device_register(bob, "bob", "d2", "ios", "tok-b2");
    client_free(bob);
    wait_offline(e->alice, "bob");
    struct client *carol = open5(e->b, "carol-phone", "carol");
    device_register(carol, "carol", "c1", "android", "tok-c1");
    client_free(carol);
    wait_offline(e->alice, "carol");
}

static const char *invite(struct env *e, const char *callee, const char *extra)
{
    const char *id = rt_uniq("call");
    rt_send(e->alice, inbox(callee),
            rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"%s%s}", id, extra ? "," : "",
                   extra ? extra : ""));
    return id;
}

/* Waits for the mock's next request and returns it (all so far in *list). */
static const cJSON *next_push(struct env *e, cJSON **list)
{
    e->records++;
    cJSON *all = MOCK_EXPECT(e->m, e->records, PUSH_WAIT_MS);
    if (list)
        *list = all;
    return cJSON_GetArrayItem(all, e->records - 1);
}

static const cJSON *expect_push_at(const char *file, int line, struct env *e, const char *kind,
                                   const char *id)
{
    const cJSON *rec = next_push(e, NULL);
    if (strcmp(rec_kind(rec), kind) != 0 || strcmp(rec_call_id(rec), id) != 0) {
        mock_dump(e->m);
        rt_fail(file, line, "push request #%d is %s %s, expected %s %s", e->records, rec_kind(rec),
                rec_call_id(rec), kind, id);
    }
    return rec;
}
#define EXPECT_PUSH(e, kind, id) expect_push_at(__FILE__, __LINE__, (e), (kind), (id))

/* The sentinel: a call to offline carol; its push must be the mock's next
 * request, so nothing else was pushed before it. Returns every request. */
static cJSON *sentinel_at(const char *file, int line, struct env *e)
{
    const char *id = invite(e, "carol", NULL);
    cJSON *list;
    const cJSON *rec = next_push(e, &list);
    if (strcmp(rec_call_id(rec), id) != 0) {
        mock_dump(e->m);
        rt_fail(file, line,
                "push request #%d is %s %s, expected only the sentinel call %s to "
                "carol: something was pushed that should not have been",
                e->records, rec_kind(rec), rec_call_id(rec), id);
    }
    return list;
}
#define SENTINEL(e) sentinel_at(__FILE__, __LINE__, (e))

/* extras.reason of a recorded push on `platform`, or NULL. */
static const char *extras_reason(const cJSON *rec, const char *platform)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(rec_body(rec), "notification");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(n, platform);
    const cJSON *r =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(p, "extras"), "reason");
    return cJSON_IsString(r) ? r->valuestring : NULL;
}

/* call_cancel goes to the devices the invite woke, with the same id, and
 * says why on both platforms. */
static void expect_cancel_push_at(const char *file, int line, struct env *e, const char *id,
                                  const char *reason)
{
    const cJSON *rec = expect_push_at(file, line, e, "call_cancel", id);
    rec_check_push(file, line, e->m, rec, "call_cancel", id, "tok-b1", "tok-b2", (char *)NULL);
    const char *android = extras_reason(rec, "android"), *ios = extras_reason(rec, "ios");
    if (!android || !ios || strcmp(android, reason) != 0 || strcmp(ios, reason) != 0) {
        mock_dump(e->m);
        rt_fail(file, line, "call_cancel %s: extras.reason %s (android), %s (ios); expected %s", id,
                android ? android : "(none)", ios ? ios : "(none)", reason);
    }
}
#define EXPECT_CANCEL_PUSH(e, id, reason)                                                          \
    expect_cancel_push_at(__FILE__, __LINE__, (e), (id), (reason))

static void teardown(struct env *e)
{
    expect_secret_not_logged(e->b, mock_master_secret(e->m));
    client_free(e->alice);
    broker_free(e->b);
}

static struct client *bob_online(struct env *e)
{
    struct client *bob = open5(e->b, "bob-phone", "bob");
    CHECK_EQ_INT(client_subscribe(bob, inbox("bob"), 1), 1);
    return bob;
}

static void test_offline_callee_once(void)
{
    struct env e;
    setup(&e, NULL);
    int64_t t0 = now_mono_ms();
    const char *id = invite(&e, "bob", NULL);
    const cJSON *rec = EXPECT_PUSH(&e, "call_invite", id);
    CHECK_PUSH(e.m, rec, "call_invite", id, "tok-b1", "tok-b2");
    cJSON *pushed = EXPECT_EVENT(e.alice, "alice", "pushed", id);
    EXPECT_INT(pushed, "devices", 2);
    /* Not again when push_fallback_ms passes. */
    int64_t left = t0 + FALLBACK_WINDOW_MS - now_mono_ms();
    if (left > 0)
        rt_wait_ms((int)left);
    cJSON *all = SENTINEL(&e);
    CHECK_EQ_INT(rec_count(all, "call_invite", id), 1);
    CHECK_EQ_INT(client_count(e.alice, inbox("alice"), "type", "pushed", "id", id, (char *)NULL),
                 1);
    teardown(&e);
}

static void test_online_fallback(void)
{
    struct env e;
    setup(&e, NULL);
    struct client *bob = bob_online(&e);
    int64_t t0 = now_wall_ms();
    const char *id = invite(&e, "bob", NULL);
    EXPECT_EVENT(bob, "bob", "invite", id);
    /* bob's app does not ring: pushed after push_fallback_ms. */
    const cJSON *rec = EXPECT_PUSH(&e, "call_invite", id);
    CHECK_PUSH(e.m, rec, "call_invite", id, "tok-b1", "tok-b2");
    long long after = rec_time_ms(rec) - t0;
    /* How late it may come is widened under valgrind (rt_slack_ms). */
    CHECKF(after >= FALLBACK_MS - 10 && after <= FALLBACK_MS + rt_slack_ms(1000),
           "the fallback push came %lld ms after the invite, expected %d ms (+ 200 ms timer "
           "precision)",
           after, FALLBACK_MS);
    cJSON *pushed = EXPECT_EVENT(e.alice, "alice", "pushed", id);
    EXPECT_INT(pushed, "devices", 2);
    /* Now it rings and is accepted: no second call_invite; the pushed
     * devices are told the call was answered elsewhere. */
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(e.alice, "alice", "ringing", id);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(e.alice, "alice", "accept", id);
    EXPECT_CANCEL_PUSH(&e, id, "answered_elsewhere");
    cJSON *all = SENTINEL(&e);
    CHECK_EQ_INT(rec_count(all, NULL, id), 2);
    client_free(bob);
    teardown(&e);
}

static void test_online_rings_in_time(void)
{
    struct env e;
    setup(&e, NULL);
    struct client *bob = bob_online(&e);
    int64_t t0 = now_mono_ms();
    const char *id = invite(&e, "bob", NULL);
    EXPECT_EVENT(bob, "bob", "invite", id);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(e.alice, "alice", "ringing", id);
    int64_t left = t0 + FALLBACK_WINDOW_MS - now_mono_ms();
    if (left > 0)
        rt_wait_ms((int)left);
    /* Canceled unpushed: no call_cancel either. */
    rt_send(e.alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(bob, "bob", "cancel", id);
    cJSON *all = SENTINEL(&e);
    CHECK_EQ_INT(cJSON_GetArraySize(all), 1);
    CHECK_EQ_INT(client_count(e.alice, inbox("alice"), "type", "pushed", "id", id, (char *)NULL),
                 0);
    client_free(bob);
    teardown(&e);
}

static void test_cancel(void)
{
    struct env e;
    setup(&e, NULL);
    const char *id = invite(&e, "bob", NULL);
    EXPECT_PUSH(&e, "call_invite", id);
    rt_send(e.alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(e.alice, "alice", "cancel", id);
    EXPECT_CANCEL_PUSH(&e, id, "canceled");
    cJSON *all = SENTINEL(&e);
    CHECK_EQ_INT(rec_count(all, NULL, id), 2);
    teardown(&e);
}

static void test_refuse(void)
{
    struct env e;
    setup(&e, NULL);
    const char *id = invite(&e, "bob", NULL);
    EXPECT_PUSH(&e, "call_invite", id);
    /* Woken by the push, bob connects, gets the invite and refuses. */
    struct client *bob = bob_online(&e);
    EXPECT_EVENT(bob, "bob", "invite", id);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"refuse\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(e.alice, "alice", "refuse", id);
    EXPECT_CANCEL_PUSH(&e, id, "answered_elsewhere");
    client_free(bob);
    teardown(&e);
}

static void test_failure_no_response(void)
{
    struct env e;
    setup(&e, NULL);
    struct client *bob = bob_online(&e);
    const char *id = invite(&e, "bob", "\"timeout\":2");
    EXPECT_EVENT(bob, "bob", "invite", id);
    EXPECT_PUSH(&e, "call_invite", id); /* the fallback */
    cJSON *f = EXPECT_TIMER_EVENT(e.alice, "alice", "failure", id);
    EXPECT_STR(f, "reason", "no_response");
    EXPECT_CANCEL_PUSH(&e, id, "no_response");
    client_free(bob);
    teardown(&e);
}

static void test_failure_peer_offline(void)
{
    struct env e;
    setup(&e, NULL);
    const char *id = invite(&e, "bob", "\"timeout\":1");
    EXPECT_PUSH(&e, "call_invite", id);
    cJSON *f = EXPECT_TIMER_EVENT(e.alice, "alice", "failure", id);
    EXPECT_STR(f, "reason", "peer_offline");
    EXPECT_CANCEL_PUSH(&e, id, "peer_offline");
    teardown(&e);
}

static void test_failure_expired(void)
{
    struct env e;
    setup(&e, NULL);
    const char *id = invite(&e, "bob", "\"timeout\":2");
    EXPECT_PUSH(&e, "call_invite", id);
    struct client *bob = bob_online(&e);
    EXPECT_EVENT(bob, "bob", "invite", id);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(e.alice, "alice", "ringing", id);
    cJSON *f = EXPECT_TIMER_EVENT(e.alice, "alice", "failure", id); /* ring_timeout 3 */
    EXPECT_STR(f, "reason", "expired");
    EXPECT_CANCEL_PUSH(&e, id, "expired");
    client_free(bob);
    teardown(&e);
}

static void test_failure_caller_offline(void)
{
    struct env e;
    setup(&e, NULL);
    const char *id = invite(&e, "bob", NULL);
    EXPECT_PUSH(&e, "call_invite", id);
    EXPECT_EVENT(e.alice, "alice", "pushed", id);
    client_free(e.alice); /* caller_grace 1 */
    long mark = 0;
    CHECKF(broker_wait_log_line(e.b, mark, 5000, id, "caller_offline", (char *)NULL),
           "call %s did not fail with caller_offline", id);
    EXPECT_CANCEL_PUSH(&e, id, "caller_offline");
    e.alice = open5(e.b, "alice", NULL);
    teardown(&e);
}

/* The pushed callee connects on one device and accepts: its pushed devices
 * (all of them: the broker cannot tell which one answered) get one
 * call_cancel saying the call was answered elsewhere. */
static void test_accepted_answered_elsewhere(void)
{
    struct env e;
    setup(&e, NULL);
    const char *id = invite(&e, "bob", NULL);
    EXPECT_PUSH(&e, "call_invite", id);
    struct client *bob = bob_online(&e);
    EXPECT_EVENT(bob, "bob", "invite", id);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(e.alice, "alice", "accept", id);
    EXPECT_CANCEL_PUSH(&e, id, "answered_elsewhere");
    /* A re-sent accept pushes nothing more. */
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(e.alice, "alice", "accept", id);
    cJSON *all = SENTINEL(&e);
    CHECK_EQ_INT(rec_count(all, "call_cancel", id), 1);
    client_free(bob);
    teardown(&e);
}

static void test_push_on_cancel_off(void)
{
    struct env e;
    setup(&e, "push_on_cancel false");
    const char *id = invite(&e, "bob", NULL);
    EXPECT_PUSH(&e, "call_invite", id);
    rt_send(e.alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(e.alice, "alice", "cancel", id);
    const char *id2 = invite(&e, "bob", "\"timeout\":1");
    EXPECT_PUSH(&e, "call_invite", id2);
    cJSON *f = EXPECT_TIMER_EVENT(e.alice, "alice", "failure", id2);
    EXPECT_STR(f, "reason", "peer_offline");
    /* Nor when the woken callee answers. */
    const char *id3 = invite(&e, "bob", NULL);
    EXPECT_PUSH(&e, "call_invite", id3);
    struct client *bob = bob_online(&e);
    EXPECT_EVENT(bob, "bob", "invite", id3);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id3));
    EXPECT_EVENT(e.alice, "alice", "accept", id3);
    cJSON *all = SENTINEL(&e);
    CHECK_EQ_INT(rec_count(all, "call_cancel", NULL), 0);
    client_free(bob);
    teardown(&e);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"offline_callee_once", test_offline_callee_once},
        {"online_fallback", test_online_fallback},
        {"online_rings_in_time", test_online_rings_in_time},
        {"cancel", test_cancel},
        {"refuse", test_refuse},
        {"failure_no_response", test_failure_no_response},
        {"failure_peer_offline", test_failure_peer_offline},
        {"failure_expired", test_failure_expired},
        {"failure_caller_offline", test_failure_caller_offline},
        {"accepted_answered_elsewhere", test_accepted_answered_elsewhere},
        {"push_on_cancel_off", test_push_on_cancel_off},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
