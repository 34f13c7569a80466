/*
 * Invitation timers (PROTOCOL.md section 4) with short settings:
 * invite_timeout 1 s, ring_timeout 2 s, caller_grace 1 s. Each failure must
 * reach both inboxes, say `"by":"server"` and the right reason, and carry a
 * server time within TIMER_SLACK_MS of the due time (PROTOCOL.md promises
 * 200 ms; the rest is margin for a loaded test machine, and under valgrind,
 * whose broker is slower, rt_slack_ms widens it).
 */
#include <string.h>

#include "harness.h"

#define TIMER_SLACK_MS rt_slack_ms(400)

static struct broker *start(void)
{
    static const char *const opts[] = {"invite_timeout 1", "ring_timeout 2", "caller_grace 1",
                                       "max_invite_timeout 30", NULL};
    struct broker_opts o = {.plugin_opts = opts};
    return broker_start(&o);
}

/* Waits for a failure of `id` on uid's inbox, long enough for any timer here. */
static cJSON *expect_failure_at(const char *file, int line, struct client *c, const char *uid,
                                const char *id, const char *reason, const char *caller,
                                const char *callee)
{
    cJSON *ev = client_wait_json(c, inbox(uid), 15000, "type", "failure", "id", id, (char *)NULL);
    if (!ev) {
        client_dump(c);
        rt_fail(file, line, "%s: no failure for %s on %s", client_id(c), id, inbox(uid));
    }
    rt_check_stamp(file, line, ev, "failure", id, caller, callee, "server");
    rt_expect_str(file, line, ev, "reason", reason);
    rt_expect_keys(file, line, ev, "type", "id", "caller", "callee", "by", "ts", "reason",
                   (char *)NULL);
    return ev;
}
#define EXPECT_FAILURE(c, uid, id, reason, caller, callee)                                         \
    expect_failure_at(__FILE__, __LINE__, (c), (uid), (id), (reason), (caller), (callee))

/* Checks that the server time `ts` of a timer event is within the slack after
 * `due` (both ms since the epoch). */
#define CHECK_DUE(ts, due)                                                                         \
    do {                                                                                           \
        long long t_ = (ts), d_ = (due);                                                           \
        CHECKF(t_ >= d_ && t_ <= d_ + TIMER_SLACK_MS,                                              \
               "timer fired at %lld, %+lld ms from its due time %lld (allowed 0..%d)", t_,         \
               t_ - d_, d_, TIMER_SLACK_MS);                                                       \
    } while (0)

static void test_peer_offline(void)
{
    struct broker *b = start();
    /* bob has a persistent session that is offline: the broker queues his
     * inbox, so we can check that the failure reached it too. */
    struct client_opts bo = {.client_id = "bob-phone", .username = "bob", .persistent = true};
    struct client *bob = client_open_v(b, &bo);
    CHECK_EQ_INT(client_subscribe(bob, inbox("bob"), 1), 1);
    client_free(bob);

    struct client *alice = client_open_inbox(b, "alice", NULL);
    const char *id = rt_uniq("off");
    int64_t t0 = now_wall_ms();
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    int64_t t1 = now_wall_ms();
    cJSON *f = EXPECT_FAILURE(alice, "alice", id, "peer_offline", "alice", "bob");
    long long ts = GET_INT(f, "ts");
    CHECKF(ts >= t0 + 1000 - 20 && ts <= t1 + 1000 + TIMER_SLACK_MS,
           "peer_offline at %lld, expected 1000 ms after the invite sent in [%lld, %lld]", ts,
           (long long)t0, (long long)t1);

    /* bob comes back: his queued inbox holds the failure. */
    bob = client_open_v(b, &bo);
    cJSON *fb = EXPECT_FAILURE(bob, "bob", id, "peer_offline", "alice", "bob");
    EXPECT_INT(fb, "ts", ts);
    EXPECT_NOTHING_ELSE(alice, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

static void test_no_response(void)
{
    struct broker *b = start();
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);
    const char *id = rt_uniq("nr");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    cJSON *inv = EXPECT_EVENT(bob, "bob", "invite", id);
    long long expires = GET_INT(inv, "expires_at");
    CHECK_EQ_INT(expires, GET_INT(inv, "ts") + 1000);
    cJSON *fa = EXPECT_FAILURE(alice, "alice", id, "no_response", "alice", "bob");
    cJSON *fb = EXPECT_FAILURE(bob, "bob", id, "no_response", "alice", "bob");
    CHECK_DUE(GET_INT(fa, "ts"), expires);
    EXPECT_INT(fb, "ts", GET_INT(fa, "ts"));
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

/* The callee was offline at the invite but came online while it waited: that
 * is no_response, not peer_offline. */
static void test_callee_online_during_wait(void)
{
    struct broker *b = start();
    struct client *alice = client_open_inbox(b, "alice", NULL);
    const char *id = rt_uniq("late");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"timeout\":2}", id));
    struct client *bob = client_open_inbox(b, "bob", NULL);
    cJSON *inv = EXPECT_EVENT(bob, "bob", "invite", id);
    long long expires = GET_INT(inv, "expires_at");
    cJSON *fa = EXPECT_FAILURE(alice, "alice", id, "no_response", "alice", "bob");
    EXPECT_FAILURE(bob, "bob", id, "no_response", "alice", "bob");
    CHECK_DUE(GET_INT(fa, "ts"), expires);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

static void test_expired(void)
{
    struct broker *b = start();
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);
    const char *id = rt_uniq("exp");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    cJSON *inv = EXPECT_EVENT(bob, "bob", "invite", id);
    long long invited = GET_INT(inv, "ts");
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(alice, "alice", "ringing", id);
    /* ring_timeout (2 s) counts from the invite; the invite timer (1 s) no
     * longer applies once rung. */
    cJSON *fa = EXPECT_FAILURE(alice, "alice", id, "expired", "alice", "bob");
    cJSON *fb = EXPECT_FAILURE(bob, "bob", id, "expired", "alice", "bob");
    CHECK_DUE(GET_INT(fa, "ts"), invited + 2000);
    EXPECT_INT(fb, "ts", GET_INT(fa, "ts"));
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

/* An invite's own timeout replaces invite_timeout (1 s) and, when later than
 * invite + ring_timeout, also sets the ring deadline. */
static void test_own_timeout(void)
{
    struct broker *b = start();
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);

    const char *id = rt_uniq("own");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"timeout\":3}", id));
    cJSON *inv = EXPECT_EVENT(bob, "bob", "invite", id);
    long long invited = GET_INT(inv, "ts");
    EXPECT_INT(inv, "expires_at", invited + 3000);
    cJSON *f = EXPECT_FAILURE(alice, "alice", id, "no_response", "alice", "bob");
    CHECK_DUE(GET_INT(f, "ts"), invited + 3000);
    EXPECT_FAILURE(bob, "bob", id, "no_response", "alice", "bob");

    /* Rung: the ring deadline is max(invite + 2 s, invite + 3 s). */
    const char *id2 = rt_uniq("own");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"timeout\":3}", id2));
    cJSON *inv2 = EXPECT_EVENT(bob, "bob", "invite", id2);
    long long invited2 = GET_INT(inv2, "ts");
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id2));
    EXPECT_EVENT(alice, "alice", "ringing", id2);
    cJSON *f2 = EXPECT_FAILURE(alice, "alice", id2, "expired", "alice", "bob");
    CHECK_DUE(GET_INT(f2, "ts"), invited2 + 3000);
    EXPECT_FAILURE(bob, "bob", id2, "expired", "alice", "bob");
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

/* The caller leaves (clean DISCONNECT) after the callee rang. */
static void test_caller_offline_after_disconnect(void)
{
    struct broker *b = start();
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);
    const char *id = rt_uniq("gone");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"timeout\":20}", id));
    EXPECT_EVENT(bob, "bob", "invite", id);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(alice, "alice", "ringing", id);
    int64_t t0 = now_wall_ms();
    client_disconnect(alice);
    int64_t t1 = now_wall_ms();
    cJSON *f = EXPECT_FAILURE(bob, "bob", id, "caller_offline", "alice", "bob");
    long long ts = GET_INT(f, "ts");
    CHECKF(ts >= t0 + 1000 - 20 && ts <= t1 + 1000 + TIMER_SLACK_MS,
           "caller_offline at %lld, expected 1000 ms after the disconnect in [%lld, %lld]", ts,
           (long long)t0, (long long)t1);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

/* The caller's connection drops without DISCONNECT while its invites are
 * pending (one) and rung (the other): every live call it placed fails. */
static void test_caller_offline_after_drop(void)
{
    struct broker *b = start();
    struct client *bob = client_open_inbox(b, "bob", NULL);
    struct client *carol = client_open_inbox(b, "carol", NULL);
    int rc = -1;
    struct raw *alice = raw_connect(b->port, "alice", NULL, NULL, 60, true, &rc);
    CHECK_EQ_INT(rc, 0);
    const char *id = rt_uniq("drop");
    const char *id2 = rt_uniq("drop");
    raw_publish0(alice, inbox("bob"),
                 rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"timeout\":20}", id));
    raw_publish0(alice, inbox("carol"),
                 rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"timeout\":20}", id2));
    EXPECT_EVENT(bob, "bob", "invite", id);
    EXPECT_EVENT(carol, "carol", "invite", id2);
    rt_send(carol, inbox("alice"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id2));
    /* alice's raw connection does not read: make sure the broker handled the
     * ringing (its error, if any, would come back to carol) before the drop. */
    rt_send(carol, inbox("bob"), "sentinel");
    EXPECT_ERROR(carol, "carol", "bad_request", NULL, NULL);
    int64_t t0 = now_wall_ms();
    raw_drop(alice);
    cJSON *f = EXPECT_FAILURE(bob, "bob", id, "caller_offline", "alice", "bob");
    long long ts = GET_INT(f, "ts");
    CHECKF(ts >= t0 + 1000 - 20 && ts <= t0 + 1000 + TIMER_SLACK_MS,
           "caller_offline at %lld, expected 1000 ms after the drop at %lld", ts, (long long)t0);
    cJSON *f2 = EXPECT_FAILURE(carol, "carol", id2, "caller_offline", "alice", "carol");
    EXPECT_INT(f2, "ts", ts);
    EXPECT_NOTHING_ELSE(bob, NULL);
    EXPECT_NOTHING_ELSE(carol, NULL);
    client_free(bob);
    client_free(carol);
    broker_free(b);
}

/* A caller that is back within caller_grace keeps its call. */
static void test_caller_back_within_grace(void)
{
    struct broker *b = start();
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);
    const char *id = rt_uniq("back");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"timeout\":20}", id));
    EXPECT_EVENT(bob, "bob", "invite", id);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(alice, "alice", "ringing", id);
    client_free(alice);
    alice = client_open_inbox(b, "alice", NULL);
    /* Bounded window: twice caller_grace plus the slack; no failure may come. */
    cJSON *f =
        client_wait_json(bob, inbox("bob"), 2000 + TIMER_SLACK_MS, "type", "failure", (char *)NULL);
    CHECKF(f == NULL, "the call failed though its caller came back within caller_grace");
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(alice, "alice", "accept", id);
    EXPECT_EVENT(bob, "bob", "accept", id);
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

/* After a failure the invitation is remembered: late messages about it get
 * invalid_state, and are not forwarded. */
static void test_late_message_after_failure(void)
{
    struct broker *b = start();
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);
    const char *id = rt_uniq("tardy");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(bob, "bob", "invite", id);
    EXPECT_FAILURE(alice, "alice", id, "no_response", "alice", "bob");
    EXPECT_FAILURE(bob, "bob", id, "no_response", "alice", "bob");
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id));
    EXPECT_ERROR(bob, "bob", "invalid_state", id, "ringing");
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id));
    EXPECT_ERROR(bob, "bob", "invalid_state", id, "accept");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id));
    EXPECT_ERROR(alice, "alice", "invalid_state", id, "cancel");
    /* Still remembered well after ring_timeout (2 s) has passed since the
     * invite: PROTOCOL.md keeps it max(ring_timeout, 60 s) after the end. */
    rt_wait_ms(2500);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"refuse\",\"id\":\"%s\"}", id));
    EXPECT_ERROR(bob, "bob", "invalid_state", id, "refuse");

    /* Sentinel: a new call, accepted, reaches both. */
    const char *id2 = rt_uniq("next");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"timeout\":20}", id2));
    EXPECT_EVENT(bob, "bob", "invite", id2);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id2));
    EXPECT_EVENT(alice, "alice", "accept", id2);
    EXPECT_EVENT(bob, "bob", "accept", id2);
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"peer_offline", test_peer_offline},
        {"no_response", test_no_response},
        {"callee_online_during_wait", test_callee_online_during_wait},
        {"expired", test_expired},
        {"own_timeout", test_own_timeout},
        {"caller_offline_after_disconnect", test_caller_offline_after_disconnect},
        {"caller_offline_after_drop", test_caller_offline_after_drop},
        {"caller_back_within_grace", test_caller_back_within_grace},
        {"late_message_after_failure", test_late_message_after_failure},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
