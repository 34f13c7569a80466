/*
 * Peer messages (SPEC 8.1) through the real broker: two users chat with any
 * bytes; the topic proves the sender; retained, oversized and too frequent
 * messages are refused with an error and PUBACK 0x87; only the peer reads;
 * MQTT 5 senders learn that nobody listens (0x10).
 */
#include <string.h>

#include "harness.h"

#define RC_NO_MATCHING_SUBSCRIBERS 0x10
#define RC_NOT_AUTHORIZED          0x87

static struct broker *start(void)
{
    static const char *const opts[] = {"max_message 100", "message_rate 5", NULL};
    struct broker_opts o = {.plugin_opts = opts};
    return broker_start(&o);
}

static struct client *open5(const struct broker *b, const char *uid)
{
    struct client_opts o = {.client_id = uid, .username = uid, .protocol = 5};
    struct client *c = client_open_v(b, &o);
    CHECK_EQ_INT(client_subscribe(c, inbox(uid), 1), 1);
    return c;
}

static const char *msg_topic(const char *peer, const char *sender)
{
    return rt_fmt("rtm/u/%s/msg/%s", peer, sender);
}

static void test_two_users_chat(void)
{
    struct broker *b = start();
    struct client *alice = open5(b, "alice");
    struct client *bob = open5(b, "bob");
    CHECK_EQ_INT(client_subscribe(alice, "rtm/u/alice/msg/+", 1), 1);
    CHECK_EQ_INT(client_subscribe(bob, "rtm/u/bob/#", 2), 2);

    /* Any bytes, NULs included, arrive exactly as sent. */
    static const char binary[] = {'h', 'i', 0, (char)0xff, '{', 0, 'x'};
    CHECK_EQ_INT(client_publish(bob, msg_topic("alice", "bob"), binary, sizeof(binary), 1, false),
                 0);
    struct msg *m = client_wait_msg(alice, msg_topic("alice", "bob"), WAIT_MS);
    CHECKF(m, "alice did not get bob's message");
    CHECK_EQ_INT(m->len, (int)sizeof(binary));
    CHECK(memcmp(m->payload, binary, sizeof(binary)) == 0);
    CHECK_EQ_INT(m->qos, 1);
    CHECK(!m->retain);

    /* QoS is kept as sent: 2 stays 2, 0 stays 0. */
    CHECK_EQ_INT(client_publish_str(alice, msg_topic("bob", "alice"), "hello bob", 2), 0);
    m = client_wait_msg(bob, msg_topic("bob", "alice"), WAIT_MS);
    CHECKF(m && strcmp(m->payload, "hello bob") == 0, "bob did not get alice's reply");
    CHECK_EQ_INT(m->qos, 2);
    CHECK_EQ_INT(client_publish_str(alice, msg_topic("bob", "alice"), "qos0", 0), 0);
    m = client_wait_msg(bob, msg_topic("bob", "alice"), WAIT_MS);
    CHECKF(m && strcmp(m->payload, "qos0") == 0, "bob did not get the QoS 0 message");
    CHECK_EQ_INT(m->qos, 0);
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

static void expect_refused(struct client *c, const char *topic, const char *payload, bool retain,
                           const char *code)
{
    int rc = client_publish(c, topic, payload, (int)strlen(payload), 1, retain);
    CHECKF(rc == RC_NOT_AUTHORIZED, "%s: reason code 0x%02x, expected 0x87", code, (unsigned)rc);
    EXPECT_TOPIC_ERROR(c, client_id(c), code, topic);
}

static void test_refusals(void)
{
    struct broker *b = start();
    struct client *alice = open5(b, "alice");
    struct client *bob = open5(b, "bob");
    struct client *mallory = open5(b, "mallory");
    CHECK_EQ_INT(client_subscribe(alice, "rtm/u/alice/msg/#", 1), 1);

    /* The topic proves the sender: mallory cannot write as bob. */
    expect_refused(mallory, msg_topic("alice", "bob"), "it is me, bob", false, "not_party");
    expect_refused(bob, msg_topic("alice", "bob"), "keep this", true, "bad_request");
    char big[102];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    expect_refused(bob, msg_topic("alice", "bob"), big, false, "bad_request");
    big[100] = '\0'; /* exactly max_message bytes is fine */
    CHECK_EQ_INT(client_publish_str(bob, msg_topic("alice", "bob"), big, 1), 0);
    CHECK(client_wait_msg(alice, msg_topic("alice", "bob"), WAIT_MS) != NULL);

    /* message_rate 5: carol's bucket is full, so her first five pass; the
     * bucket then refills one every 200 ms, and of three more sent back to
     * back at least one is refused. */
    struct client *carol = open5(b, "carol");
    int passed = 0, refused = 0;
    for (int i = 0; i < 8; i++) {
        int rc = client_publish_str(carol, msg_topic("alice", "carol"), rt_fmt("n%d", i), 1);
        CHECKF(rc == 0 || (i >= 5 && rc == RC_NOT_AUTHORIZED), "message %d: reason code 0x%02x", i,
               (unsigned)rc);
        rc == 0 ? passed++ : refused++;
    }
    CHECKF(refused >= 1, "8 messages at message_rate 5: none refused");
    EXPECT_TOPIC_ERROR(carol, "carol", "rate_limited", msg_topic("alice", "carol"));
    /* alice's deliveries travel on her own connection, in no set order with
     * carol's error: wait for each one that passed. */
    for (int i = 0; i < passed; i++)
        CHECKF(client_wait_msg(alice, msg_topic("alice", "carol"), WAIT_MS) != NULL,
               "alice got %d of carol's %d messages that passed", i, passed);
    client_free(carol);
    EXPECT_NOTHING_ELSE(alice, NULL);
    client_free(alice);
    client_free(bob);
    client_free(mallory);
    broker_free(b);
}

static void test_only_the_peer_reads(void)
{
    struct broker *b = start();
    struct client *alice = open5(b, "alice");
    struct client *eve = open5(b, "eve");
    const char *const refused[] = {"rtm/u/alice/msg/+", "rtm/u/alice/msg/bob", "rtm/u/alice/#",
                                   "rtm/u/+/msg/+",     "rtm/u/+/msg/#",       "rtm/#"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        int granted = client_subscribe(eve, refused[i], 1);
        CHECKF(granted >= 0x80, "eve may subscribe to %s (granted 0x%02x)", refused[i],
               (unsigned)granted);
    }
    /* An MQTT 5 sender learns that alice does not listen (RTM's peer
     * unreachable), and then that she does. */
    int rc = client_publish_str(eve, msg_topic("alice", "eve"), "anyone?", 1);
    CHECKF(rc == RC_NO_MATCHING_SUBSCRIBERS, "no subscriber: reason code 0x%02x, expected 0x10",
           (unsigned)rc);
    CHECK_EQ_INT(client_subscribe(alice, "rtm/u/alice/msg/+", 1), 1);
    CHECK_EQ_INT(client_publish_str(eve, msg_topic("alice", "eve"), "now?", 1), 0);
    struct msg *m = client_wait_msg(alice, msg_topic("alice", "eve"), WAIT_MS);
    CHECKF(m && strcmp(m->payload, "now?") == 0, "alice did not get eve's message");
    EXPECT_NOTHING_ELSE(eve, NULL);
    client_free(alice);
    client_free(eve);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"two_users_chat", test_two_users_chat},
        {"refusals", test_refusals},
        {"only_the_peer_reads", test_only_the_peer_reads},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
