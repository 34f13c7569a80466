/*
 * MQTT 5 specifics: a refused request published at QoS 1 or 2 gets a
 * PUBACK/PUBREC reason code 0x87 (not authorized) as well as the error event;
 * accepted requests get a success code; MQTT 3.1.1 and 5 clients share calls.
 */
#include <string.h>

#include "harness.h"

#define RC_NOT_AUTHORIZED 0x87

static struct broker *start(void)
{
    static const char *const opts[] = {"invite_timeout 20", "ring_timeout 20", "caller_grace 5",
                                       NULL};
    struct broker_opts o = {.plugin_opts = opts};
    return broker_start(&o);
}

static struct client *open5(const struct broker *b, const char *id, const char *user)
{
    struct client_opts o = {.client_id = id, .username = user, .protocol = 5};
    struct client *c = client_open_v(b, &o);
    const char *uid = user ? user : id;
    CHECK_EQ_INT(client_subscribe(c, inbox(uid), 1), 1);
    return c;
}

static void expect_refused(struct client *c, const char *topic, const char *payload, int qos,
                           bool retain, const char *what)
{
    int rc = client_publish(c, topic, payload, (int)strlen(payload), qos, retain);
    CHECKF(rc == RC_NOT_AUTHORIZED,
           "%s at QoS %d: reason code 0x%02x, expected 0x87 (PROTOCOL.md: not authorized)", what,
           qos, (unsigned)rc);
}

static void test_refused_request_reason_code(void)
{
    struct broker *b = start();
    struct client *alice = open5(b, "alice", NULL);
    struct client *bob = open5(b, "bob", NULL);

    expect_refused(alice, inbox("bob"), "not json", 1, false, "not JSON");
    EXPECT_ERROR(alice, "alice", "bad_request", NULL, NULL);
    expect_refused(alice, inbox("bob"), "{\"type\":\"invite\",\"id\":\"r1\"}", 1, true,
                   "retained invite");
    EXPECT_ERROR(alice, "alice", "bad_request", "r1", "invite");
    const char *id = rt_uniq("self");
    expect_refused(alice, inbox("alice"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id), 1,
                   false, "self_call");
    EXPECT_ERROR(alice, "alice", "self_call", id, "invite");
    const char *nope = rt_uniq("nope");
    expect_refused(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", nope), 1,
                   false, "unknown_invitation");
    EXPECT_ERROR(bob, "bob", "unknown_invitation", nope, "accept");
    /* QoS 2: the refusal comes in the PUBREC. */
    expect_refused(alice, inbox("bob"), "[1]", 2, false, "not an object");
    EXPECT_ERROR(alice, "alice", "bad_request", NULL, NULL);

    /* An accepted request gets a success code (0, or 0x10 "no matching
     * subscribers" when nobody listens). */
    const char *ok = rt_uniq("ok");
    int rc = client_publish_str(alice, inbox("bob"),
                                rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", ok), 1);
    CHECKF(rc == 0 || rc == 0x10, "accepted invite: reason code 0x%02x", (unsigned)rc);
    EXPECT_EVENT(bob, "bob", "invite", ok);
    /* Refused after a valid start: a callee cancel is not_party. */
    expect_refused(bob, inbox("alice"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", ok), 1, false,
                   "not_party");
    EXPECT_ERROR(bob, "bob", "not_party", ok, "cancel");
    rc = client_publish_str(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", ok),
                            2);
    CHECKF(rc == 0 || rc == 0x10, "accepted accept at QoS 2: reason code 0x%02x", (unsigned)rc);
    EXPECT_EVENT(alice, "alice", "accept", ok);
    EXPECT_EVENT(bob, "bob", "accept", ok);
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

/* alice speaks MQTT 5, bob MQTT 3.1.1, and the other way round. */
static void test_mixed_versions(void)
{
    struct broker *b = start();
    struct client *alice = open5(b, "alice-web", "alice");
    struct client *bob = client_open_inbox(b, "bob-phone", "bob");

    const char *id = rt_uniq("mix");
    rt_send(alice, inbox("bob"),
            rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"content\":\"v5\"}", id));
    cJSON *inv = EXPECT_EVENT(bob, "bob", "invite", id);
    CHECK_STAMP(inv, "invite", id, "alice", "bob", "alice");
    EXPECT_STR(inv, "content", "v5");
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id));
    CHECK_STAMP(EXPECT_EVENT(alice, "alice", "ringing", id), "ringing", id, "alice", "bob", "bob");
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id));
    CHECK_STAMP(EXPECT_EVENT(alice, "alice", "accept", id), "accept", id, "alice", "bob", "bob");
    CHECK_STAMP(EXPECT_EVENT(bob, "bob", "accept", id), "accept", id, "alice", "bob", "bob");

    const char *id2 = rt_uniq("mix");
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id2));
    CHECK_STAMP(EXPECT_EVENT(alice, "alice", "invite", id2), "invite", id2, "bob", "alice", "bob");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"refuse\",\"id\":\"%s\"}", id2));
    CHECK_STAMP(EXPECT_EVENT(bob, "bob", "refuse", id2), "refuse", id2, "bob", "alice", "alice");
    EXPECT_EVENT(alice, "alice", "refuse", id2);
    /* Errors reach an MQTT 3.1.1 session as well. */
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id2));
    EXPECT_ERROR(bob, "bob", "invalid_state", id2, "cancel");
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"refused_request_reason_code", test_refused_request_reason_code},
        {"mixed_versions", test_mixed_versions},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
