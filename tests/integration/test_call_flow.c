/*
 * The call lifecycle over a real broker: invite, ringing, and each ending
 * (accept, refuse, cancel), with every delivered message checked for the
 * stamp of PROTOCOL.md section 3, and QoS 1 re-sends of the same request.
 */
#include <string.h>

#include "harness.h"

static const char *const fast_timers[] = {"invite_timeout 1", "ring_timeout 2", "caller_grace 1",
                                          "max_invite_timeout 30", NULL};

static struct broker *start(void)
{
    struct broker_opts o = {.plugin_opts = fast_timers};
    return broker_start(&o);
}

/* alice invites bob with a long own timeout so the 1 s invite_timeout of the
 * config never interferes; returns the invite as bob received it. */
static cJSON *invite(struct client *alice, struct client *bob, const char *id)
{
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"timeout\":20}", id));
    cJSON *ev = EXPECT_EVENT(bob, "bob", "invite", id);
    CHECK_STAMP(ev, "invite", id, "alice", "bob", "alice");
    return ev;
}

static void test_invite_is_stamped(void)
{
    struct broker *b = start();
    /* alice is identified by her client id, bob by his username. */
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob-phone", "bob");
    const char *id = rt_uniq("stamp");

    int64_t before = now_wall_ms();
    rt_send(alice, inbox("bob"),
            rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"content\":\"{\\\"video\\\":true}\","
                   "\"channel\":\"room-42\",\"timeout\":7,\"caller\":\"mallory\","
                   "\"callee\":\"eve\",\"by\":\"mallory\",\"ts\":1,\"expires_at\":2,"
                   "\"extra\":\"not forwarded\"}",
                   id));
    cJSON *ev = EXPECT_EVENT(bob, "bob", "invite", id);
    int64_t after = now_wall_ms();
    CHECK_STAMP(ev, "invite", id, "alice", "bob", "alice");
    EXPECT_STR(ev, "content", "{\"video\":true}");
    EXPECT_STR(ev, "channel", "room-42");
    EXPECT_KEYS(ev, "type", "id", "caller", "callee", "by", "ts", "content", "channel",
                "expires_at");
    long long ts = GET_INT(ev, "ts");
    CHECKF(ts >= before - 1000 && ts <= after + 1000,
           "invite ts %lld is outside the time it was sent [%lld, %lld]", ts, (long long)before,
           (long long)after);
    EXPECT_INT(ev, "expires_at", ts + 7000);

    /* The callee rings: only the caller's inbox gets it, stamped. */
    rt_send(bob, inbox("alice"),
            rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\",\"by\":\"alice\",\"caller\":\"bob\"}", id));
    cJSON *ring = EXPECT_EVENT(alice, "alice", "ringing", id);
    CHECK_STAMP(ring, "ringing", id, "alice", "bob", "bob");
    EXPECT_KEYS(ring, "type", "id", "caller", "callee", "by", "ts");
    CHECK(GET_INT(ring, "ts") >= ts);

    /* The callee accepts: both inboxes get it. */
    rt_send(bob, inbox("alice"),
            rt_fmt("{\"type\":\"accept\",\"id\":\"%s\",\"response\":\"ok\"}", id));
    cJSON *acc_a = EXPECT_EVENT(alice, "alice", "accept", id);
    cJSON *acc_b = EXPECT_EVENT(bob, "bob", "accept", id);
    CHECK_STAMP(acc_a, "accept", id, "alice", "bob", "bob");
    CHECK_STAMP(acc_b, "accept", id, "alice", "bob", "bob");
    EXPECT_STR(acc_a, "response", "ok");
    EXPECT_STR(acc_b, "response", "ok");
    EXPECT_KEYS(acc_a, "type", "id", "caller", "callee", "by", "ts", "response");

    /* The accept came after everything else: nothing else was delivered
     * (no invite to alice, no ringing to bob, no error). */
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

static void test_invite_defaults(void)
{
    struct broker *b = start();
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);
    const char *id = rt_uniq("dflt");
    /* No content, no channel, no own timeout (invite_timeout is 1 s). */
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    cJSON *ev = EXPECT_EVENT(bob, "bob", "invite", id);
    CHECK_STAMP(ev, "invite", id, "alice", "bob", "alice");
    EXPECT_STR(ev, "content", "");
    EXPECT_STR(ev, "channel", "");
    EXPECT_INT(ev, "expires_at", GET_INT(ev, "ts") + 1000);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

static void test_refuse(void)
{
    struct broker *b = start();
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);
    const char *id = rt_uniq("refuse");
    invite(alice, bob, id);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(alice, "alice", "ringing", id);
    rt_send(bob, inbox("alice"),
            rt_fmt("{\"type\":\"refuse\",\"id\":\"%s\",\"response\":\"busy\"}", id));
    cJSON *a = EXPECT_EVENT(alice, "alice", "refuse", id);
    cJSON *bb = EXPECT_EVENT(bob, "bob", "refuse", id);
    CHECK_STAMP(a, "refuse", id, "alice", "bob", "bob");
    CHECK_STAMP(bb, "refuse", id, "alice", "bob", "bob");
    EXPECT_STR(a, "response", "busy");
    EXPECT_STR(bb, "response", "busy");
    EXPECT_KEYS(a, "type", "id", "caller", "callee", "by", "ts", "response");
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

static void test_accept_before_ringing_without_response(void)
{
    struct broker *b = start();
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);
    const char *id = rt_uniq("quick");
    invite(alice, bob, id);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id));
    cJSON *a = EXPECT_EVENT(alice, "alice", "accept", id);
    cJSON *bb = EXPECT_EVENT(bob, "bob", "accept", id);
    CHECK_STAMP(a, "accept", id, "alice", "bob", "bob");
    CHECK_STAMP(bb, "accept", id, "alice", "bob", "bob");
    EXPECT_KEYS(a, "type", "id", "caller", "callee", "by", "ts");
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

static void test_cancel_by_caller(void)
{
    struct broker *b = start();
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);
    const char *id = rt_uniq("cancel");
    invite(alice, bob, id);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(alice, "alice", "ringing", id);
    rt_send(alice, inbox("bob"),
            rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\",\"by\":\"bob\",\"ts\":5}", id));
    cJSON *a = EXPECT_EVENT(alice, "alice", "cancel", id);
    cJSON *bb = EXPECT_EVENT(bob, "bob", "cancel", id);
    CHECK_STAMP(a, "cancel", id, "alice", "bob", "alice");
    CHECK_STAMP(bb, "cancel", id, "alice", "bob", "alice");
    EXPECT_KEYS(bb, "type", "id", "caller", "callee", "by", "ts");
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

/* PROTOCOL.md 3, Delivery: a re-send of the same request (same id, type and
 * sender), such as a QoS 1 retry, is forwarded again and is no error. */
static void test_resend_is_not_an_error(void)
{
    struct broker *b = start();
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);
    const char *id = rt_uniq("resend");
    const char *inv = rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"timeout\":20}", id);

    rt_send(alice, inbox("bob"), inv);
    cJSON *first = EXPECT_EVENT(bob, "bob", "invite", id);
    rt_wait_ms(20); /* so that a fresh stamp would differ from the first */
    rt_send(alice, inbox("bob"), inv);
    cJSON *second = EXPECT_EVENT(bob, "bob", "invite", id);
    CHECK_STAMP(second, "invite", id, "alice", "bob", "alice");
    /* The same invitation: the same deadline, and the ts of the first. */
    EXPECT_INT(second, "expires_at", GET_INT(first, "expires_at"));
    EXPECT_INT(second, "ts", GET_INT(first, "ts"));

    const char *ring = rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id);
    rt_send(bob, inbox("alice"), ring);
    EXPECT_EVENT(alice, "alice", "ringing", id);
    rt_send(bob, inbox("alice"), ring);
    cJSON *ring2 = EXPECT_EVENT(alice, "alice", "ringing", id);
    CHECK_STAMP(ring2, "ringing", id, "alice", "bob", "bob");

    const char *acc = rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id);
    rt_send(bob, inbox("alice"), acc);
    EXPECT_EVENT(alice, "alice", "accept", id);
    EXPECT_EVENT(bob, "bob", "accept", id);

    /* Sentinel: a fresh call between the two; by then any error would be in. */
    const char *id2 = rt_uniq("sentinel");
    invite(alice, bob, id2);
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id2));
    EXPECT_EVENT(alice, "alice", "cancel", id2);
    EXPECT_EVENT(bob, "bob", "cancel", id2);
    CHECK_EQ_INT(client_count(alice, NULL, "type", "error", (char *)NULL), 0);
    CHECK_EQ_INT(client_count(bob, NULL, "type", "error", (char *)NULL), 0);
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

/* The re-send of an ending is a re-send too (not invalid_state): delivered
 * again to both inboxes, with the ts of the first (PROTOCOL.md 3). */
static void test_resend_of_ending(void)
{
    struct broker *b = start();
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);
    const char *id = rt_uniq("resend-end");
    invite(alice, bob, id);
    const char *acc = rt_fmt("{\"type\":\"accept\",\"id\":\"%s\",\"response\":\"ok\"}", id);
    rt_send(bob, inbox("alice"), acc);
    long long ts = GET_INT(EXPECT_EVENT(alice, "alice", "accept", id), "ts");
    EXPECT_EVENT(bob, "bob", "accept", id);
    rt_wait_ms(20); /* so that a fresh stamp would differ from the first */
    rt_send(bob, inbox("alice"), acc);
    cJSON *a = EXPECT_EVENT(alice, "alice", "accept", id);
    cJSON *bb = EXPECT_EVENT(bob, "bob", "accept", id);
    CHECK_STAMP(a, "accept", id, "alice", "bob", "bob");
    CHECK_STAMP(bb, "accept", id, "alice", "bob", "bob");
    EXPECT_INT(a, "ts", ts);
    EXPECT_INT(bb, "ts", ts);
    EXPECT_STR(a, "response", "ok");

    const char *id2 = rt_uniq("resend-cancel");
    invite(alice, bob, id2);
    const char *can = rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id2);
    rt_send(alice, inbox("bob"), can);
    EXPECT_EVENT(alice, "alice", "cancel", id2);
    long long ts2 = GET_INT(EXPECT_EVENT(bob, "bob", "cancel", id2), "ts");
    rt_wait_ms(20);
    rt_send(alice, inbox("bob"), can);
    cJSON *c1 = EXPECT_EVENT(bob, "bob", "cancel", id2);
    cJSON *c2 = EXPECT_EVENT(alice, "alice", "cancel", id2);
    CHECK_STAMP(c1, "cancel", id2, "alice", "bob", "alice");
    CHECK_STAMP(c2, "cancel", id2, "alice", "bob", "alice");
    EXPECT_INT(c1, "ts", ts2);
    EXPECT_INT(c2, "ts", ts2);
    CHECK_EQ_INT(client_count(alice, NULL, "type", "error", (char *)NULL), 0);
    CHECK_EQ_INT(client_count(bob, NULL, "type", "error", (char *)NULL), 0);
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

/* Two calls at once between different pairs do not mix. */
static void test_parallel_calls(void)
{
    struct broker *b = start();
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);
    struct client *carol = client_open_inbox(b, "carol", NULL);
    const char *id1 = rt_uniq("p1");
    const char *id2 = rt_uniq("p2");
    invite(alice, bob, id1);
    rt_send(carol, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"timeout\":20}", id2));
    cJSON *inv2 = EXPECT_EVENT(bob, "bob", "invite", id2);
    CHECK_STAMP(inv2, "invite", id2, "carol", "bob", "carol");
    rt_send(bob, inbox("carol"), rt_fmt("{\"type\":\"refuse\",\"id\":\"%s\"}", id2));
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id1));
    CHECK_STAMP(EXPECT_EVENT(carol, "carol", "refuse", id2), "refuse", id2, "carol", "bob", "bob");
    CHECK_STAMP(EXPECT_EVENT(alice, "alice", "accept", id1), "accept", id1, "alice", "bob", "bob");
    EXPECT_EVENT(bob, "bob", "refuse", id2);
    EXPECT_EVENT(bob, "bob", "accept", id1);
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(carol, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice);
    client_free(bob);
    client_free(carol);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"invite_is_stamped", test_invite_is_stamped},
        {"invite_defaults", test_invite_defaults},
        {"refuse", test_refuse},
        {"accept_before_ringing_without_response", test_accept_before_ringing_without_response},
        {"cancel_by_caller", test_cancel_by_caller},
        {"resend_is_not_an_error", test_resend_is_not_an_error},
        {"resend_of_ending", test_resend_of_ending},
        {"parallel_calls", test_parallel_calls},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
