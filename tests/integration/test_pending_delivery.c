/*
 * PROTOCOL.md section 3, Delivery: a callee session that connects while an
 * invitation to it is pending receives the invite within one second, without
 * subscribing, whether its session is clean or persistent; and again when it
 * subscribes to its inbox.
 */
#include <string.h>

#include "harness.h"

#define PENDING_MS rt_slack_ms(1000) /* widened under valgrind only */

static struct broker *start(void)
{
    static const char *const opts[] = {"invite_timeout 20", "ring_timeout 20", "caller_grace 5",
                                       NULL};
    struct broker_opts o = {.plugin_opts = opts};
    return broker_start(&o);
}

/* Waits for the pending invite `id` on bob's inbox and checks it came within
 * PENDING_MS of the CONNACK. */
static cJSON *expect_pending_at(const char *file, int line, struct client *bob, const char *id,
                                const char *caller)
{
    struct msg *m =
        client_wait_fields(bob, inbox("bob"), WAIT_MS, "type", "invite", "id", id, (char *)NULL);
    if (!m) {
        client_dump(bob);
        rt_fail(file, line, "%s: pending invite %s not delivered after connecting", client_id(bob),
                id);
    }
    long long after = m->at_ms - client_connack_at(bob);
    if (after > PENDING_MS)
        rt_fail(file, line, "%s: pending invite %s came %lld ms after CONNACK (max %d)",
                client_id(bob), id, after, PENDING_MS);
    rt_check_stamp(file, line, m->json, "invite", id, caller, "bob", caller);
    return m->json;
}
#define EXPECT_PENDING(bob, id, caller) expect_pending_at(__FILE__, __LINE__, (bob), (id), (caller))

static void test_clean_session_without_subscribing(void)
{
    struct broker *b = start();
    struct client *alice = client_open_inbox(b, "alice", NULL);
    const char *id = rt_uniq("pend");
    rt_send(alice, inbox("bob"),
            rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"content\":\"hi\",\"channel\":\"c1\","
                   "\"timeout\":15}",
                   id));
    struct client *bob = client_open(b, "bob-phone", "bob");
    cJSON *inv = EXPECT_PENDING(bob, id, "alice");
    EXPECT_STR(inv, "content", "hi");
    EXPECT_STR(inv, "channel", "c1");
    EXPECT_INT(inv, "expires_at", GET_INT(inv, "ts") + 15000);

    /* Subscribing to the inbox delivers it again. */
    client_consume_all(bob, inbox("bob"), "type", "invite", "id", id, (char *)NULL);
    CHECK_EQ_INT(client_subscribe(bob, inbox("bob"), 1), 1);
    cJSON *again = EXPECT_EVENT(bob, "bob", "invite", id);
    EXPECT_INT(again, "expires_at", GET_INT(inv, "expires_at"));

    /* And the call goes on as usual. */
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(alice, "alice", "accept", id);
    EXPECT_EVENT(bob, "bob", "accept", id);
    /* Delivery is at-least-once: further copies of the invite are allowed. */
    client_consume_all(bob, inbox("bob"), "type", "invite", "id", id, (char *)NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    EXPECT_NOTHING_ELSE(alice, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

static void test_persistent_session(void)
{
    struct broker *b = start();
    struct client_opts o = {.client_id = "bob-tablet", .username = "bob", .persistent = true};
    struct client *bob = client_open_v(b, &o);
    CHECK_EQ_INT(client_subscribe(bob, inbox("bob"), 1), 1);
    client_free(bob);

    struct client *alice = client_open_inbox(b, "alice", NULL);
    const char *id = rt_uniq("pers");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    bob = client_open_v(b, &o);
    EXPECT_PENDING(bob, id, "alice");
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(alice, "alice", "ringing", id);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"refuse\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(alice, "alice", "refuse", id);
    EXPECT_EVENT(bob, "bob", "refuse", id);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

static void test_persistent_session_mqtt5(void)
{
    struct broker *b = start();
    struct client_opts o = {
        .client_id = "bob-web", .username = "bob", .persistent = true, .protocol = 5};
    struct client *bob = client_open_v(b, &o);
    CHECK_EQ_INT(client_subscribe(bob, inbox("bob"), 1), 1);
    client_free(bob);

    struct client *alice = client_open_inbox(b, "alice", NULL);
    const char *id = rt_uniq("pers5");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    bob = client_open_v(b, &o);
    EXPECT_PENDING(bob, id, "alice");
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

/* Every pending invitation is delivered, ended ones are not. */
static void test_only_pending_invitations(void)
{
    struct broker *b = start();
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *carol = client_open_inbox(b, "carol", NULL);
    const char *gone = rt_uniq("gone");
    const char *id1 = rt_uniq("p1");
    const char *id2 = rt_uniq("p2");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", gone));
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", gone));
    EXPECT_EVENT(alice, "alice", "cancel", gone);
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id1));
    rt_send(carol, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id2));

    struct client *bob = client_open(b, "bob", NULL);
    EXPECT_PENDING(bob, id1, "alice");
    EXPECT_PENDING(bob, id2, "carol");
    CHECK_EQ_INT(client_subscribe(bob, inbox("bob"), 1), 1);
    EXPECT_EVENT(bob, "bob", "invite", id1);
    EXPECT_EVENT(bob, "bob", "invite", id2);
    /* Sentinel: both callers cancel; bob sees those after anything before. */
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id1));
    rt_send(carol, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id2));
    EXPECT_EVENT(bob, "bob", "cancel", id1);
    EXPECT_EVENT(bob, "bob", "cancel", id2);
    CHECK_EQ_INT(client_count(bob, NULL, "id", gone, (char *)NULL), 0);
    client_consume_all(bob, inbox("bob"), "type", "invite", (char *)NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice);
    client_free(carol);
    client_free(bob);
    broker_free(b);
}

/* Only the callee's sessions get a pending invite; a third user connecting
 * gets nothing. */
static void test_not_to_others(void)
{
    struct broker *b = start();
    struct client *alice = client_open_inbox(b, "alice", NULL);
    const char *id = rt_uniq("mine");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    struct client *carol = client_open(b, "carol", NULL);
    struct client *bob = client_open(b, "bob", NULL);
    EXPECT_PENDING(bob, id, "alice");
    /* Sentinel for carol: an error on her own inbox comes after anything
     * delivered to her on connecting. */
    rt_send(carol, inbox("bob"), "not json");
    EXPECT_ERROR(carol, "carol", "bad_request", NULL, NULL);
    EXPECT_NOTHING_ELSE(carol, NULL);
    client_free(alice);
    client_free(carol);
    client_free(bob);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"clean_session_without_subscribing", test_clean_session_without_subscribing},
        {"persistent_session", test_persistent_session},
        {"persistent_session_mqtt5", test_persistent_session_mqtt5},
        {"only_pending_invitations", test_only_pending_invitations},
        {"not_to_others", test_not_to_others},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
