/*
 * The topic table of PROTOCOL.md section 2: who may subscribe and publish
 * where under the prefix, and that broad filters outside it never carry
 * another user's inbox.
 */
#include <string.h>

#include "harness.h"

#define SUBACK_FAIL_V3    0x80
#define RC_NOT_AUTHORIZED 0x87

static struct broker *start(void)
{
    static const char *const opts[] = {"invite_timeout 20", "ring_timeout 20", "caller_grace 5",
                                       NULL};
    struct broker_opts o = {.plugin_opts = opts};
    return broker_start(&o);
}

struct sub_case {
    const char *filter;
    bool allowed;
};

static const struct sub_case bob_subs[] = {
    {"rtm/u/alice/call", false},
    {"rtm/#", false},
    {"rtm/+", false},
    {"rtm/+/bob/call", false},
    {"rtm/u/+/call", false},
    {"rtm/u/#", false},
    {"rtm/u/+/devices/#", false},
    {"rtm/u/alice/devices/+", false},
    {"rtm/u/alice/#", false},
    {"rtm/other", false},
    {"rtm/", false},
    {"rtm/presence/+", true},
    {"rtm/presence/#", true},
    {"rtm/presence/alice", true},
    {"rtm/u/bob/call", true},
    {"rtm/u/bob/#", true},
    {"rtm/u/bob/devices/+", true},
    {"other/topic", true},
    {"#", true},
    {"rtm", true}, /* the bare prefix is outside it: other_topics allow */
};

static void check_subs(struct client *c, int fail_code)
{
    for (size_t i = 0; i < sizeof(bob_subs) / sizeof(bob_subs[0]); i++) {
        int got = client_subscribe(c, bob_subs[i].filter, 1);
        if (bob_subs[i].allowed)
            CHECKF(got == 1, "bob subscribing to %s: got 0x%02x, expected QoS 1 granted",
                   bob_subs[i].filter, (unsigned)got);
        else
            CHECKF(got == fail_code, "bob subscribing to %s: got 0x%02x, expected 0x%02x",
                   bob_subs[i].filter, (unsigned)got, (unsigned)fail_code);
    }
}

static void test_subscribe_rules(void)
{
    struct broker *b = start();
    struct client *bob3 = client_open(b, "bob-3", "bob");
    check_subs(bob3, SUBACK_FAIL_V3);
    struct client_opts o5 = {.client_id = "bob-5", .username = "bob", .protocol = 5};
    struct client *bob5 = client_open_v(b, &o5);
    check_subs(bob5, RC_NOT_AUTHORIZED);
    client_free(bob3);
    client_free(bob5);
    broker_free(b);
}

/* Only the plugin publishes presence. */
static void test_presence_is_read_only(void)
{
    struct broker *b = start();
    struct client *carol = client_open(b, "carol", NULL);
    CHECK_EQ_INT(client_subscribe(carol, "rtm/presence/bob", 1), 1);
    struct client_opts o5 = {.client_id = "bob-1", .username = "bob", .protocol = 5};
    struct client *bob = client_open_v(b, &o5);
    CHECK(client_wait_json(carol, "rtm/presence/bob", WAIT_MS, "online", "true", (char *)NULL));
    const char *fake = "{\"uid\":\"bob\",\"online\":false,\"ts\":1}";
    int rc = client_publish(bob, "rtm/presence/bob", fake, (int)strlen(fake), 1, true);
    CHECKF(rc == RC_NOT_AUTHORIZED, "publishing own presence: reason 0x%02x, expected 0x87",
           (unsigned)rc);
    const char *fake2 = "{\"uid\":\"alice\",\"online\":true,\"sessions\":9,\"ts\":1}";
    rc = client_publish(bob, "rtm/presence/alice", fake2, (int)strlen(fake2), 1, true);
    CHECKF(rc == RC_NOT_AUTHORIZED, "publishing alice's presence: reason 0x%02x, expected 0x87",
           (unsigned)rc);
    rc = client_publish(bob, "rtm/other", "x", 1, 1, false);
    CHECKF(rc == RC_NOT_AUTHORIZED, "publishing to rtm/other: reason 0x%02x, expected 0x87",
           (unsigned)rc);
    /* MQTT 3.1.1 has no reason codes: check by the effect. */
    struct client *bob3 = client_open(b, "bob-2", "bob");
    CHECK(client_wait_json(carol, "rtm/presence/bob", WAIT_MS, "sessions", "2", (char *)NULL));
    CHECK(client_publish(bob3, "rtm/presence/bob", fake, (int)strlen(fake), 1, true) >= 0);
    /* Sentinel: bob's third session is shown (sessions 3). */
    struct client *bob4 = client_open(b, "bob-4", "bob");
    cJSON *j = client_wait_json(carol, "rtm/presence/bob", WAIT_MS, (char *)NULL);
    CHECKF(j != NULL, "no presence change for bob's third session");
    EXPECT_BOOL(j, "online", true);
    EXPECT_INT(j, "sessions", 3);
    EXPECT_NOTHING_ELSE(carol, NULL);
    /* The retained state is the plugin's, for bob and for alice. */
    struct client *dave = client_open(b, "dave", NULL);
    CHECK_EQ_INT(client_subscribe(dave, "rtm/presence/+", 1), 1);
    cJSON *r = client_wait_json(dave, "rtm/presence/bob", WAIT_MS, (char *)NULL);
    CHECK(r != NULL);
    EXPECT_BOOL(r, "online", true);
    EXPECT_INT(r, "sessions", 3);
    /* Sentinel for dave: erin connects. */
    struct client *erin = client_open(b, "erin", NULL);
    CHECK(client_wait_json(dave, "rtm/presence/erin", WAIT_MS, "online", "true", (char *)NULL));
    CHECK_EQ_INT(client_count(dave, "rtm/presence/alice", (char *)NULL), 0);
    client_free(bob4);
    client_free(bob);
    client_free(bob3);
    client_free(carol);
    client_free(dave);
    client_free(erin);
    broker_free(b);
}

/* A '#' subscriber (allowed: other_topics allow) gets no inbox traffic of
 * other users: calls, answers and errors. */
static void test_wildcard_subscriber_sees_no_inbox(void)
{
    struct broker *b = start();
    struct client *eve = client_open(b, "eve", NULL);
    CHECK_EQ_INT(client_subscribe(eve, "#", 1), 1);
    /* Whatever the plugin grants for this one, it must not carry inboxes. */
    client_subscribe(eve, "+/u/+/call", 1);
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);

    const char *id = rt_uniq("spy");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(bob, "bob", "invite", id);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(alice, "alice", "ringing", id);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(alice, "alice", "accept", id);
    EXPECT_EVENT(bob, "bob", "accept", id);
    rt_send(alice, inbox("bob"), "not json");
    EXPECT_ERROR(alice, "alice", "bad_request", NULL, NULL);

    /* Sentinel: eve's own message outside the prefix. */
    CHECK(client_publish_str(eve, "other/sentinel", "s", 1) >= 0);
    CHECKF(client_wait_msg(eve, "other/sentinel", WAIT_MS) != NULL,
           "eve did not get her own message on #");
    struct msg *m;
    while ((m = client_wait_msg(eve, NULL, 0)) != NULL) {
        if (strncmp(m->topic, "rtm/u/", 6) == 0) {
            client_dump(eve);
            FAIL("a '#' subscriber received %s", m->topic);
        }
    }
    client_free(alice);
    client_free(bob);
    client_free(eve);
    broker_free(b);
}

/* A uid with characters outside A-Z a-z 0-9 _ . @ - may use other topics but
 * nothing under the prefix. */
static void test_invalid_uid(void)
{
    struct broker *b = start();
    struct client *bob = client_open_inbox(b, "bob", NULL);
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *obs = client_open(b, "observer", NULL);
    CHECK_EQ_INT(client_subscribe(obs, "rtm/presence/+", 1), 1);
    struct client_opts o = {.client_id = "weird-1", .username = "bad uid!", .protocol = 5};
    struct client *w = client_open_v(b, &o);
    CHECK_EQ_INT(client_subscribe(w, "rtm/presence/+", 1), RC_NOT_AUTHORIZED);
    CHECK_EQ_INT(client_subscribe(w, "rtm/u/bad uid!/call", 1), RC_NOT_AUTHORIZED);
    CHECK_EQ_INT(client_subscribe(w, "other/+", 1), 1);
    const char *id = rt_uniq("weird");
    int rc =
        client_publish_str(w, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id), 1);
    CHECKF(rc == RC_NOT_AUTHORIZED, "invite from an invalid uid: reason 0x%02x", (unsigned)rc);
    CHECK(client_publish_str(w, "other/x", "hello", 1) >= 0);
    CHECK(client_wait_msg(w, "other/x", WAIT_MS) != NULL);
    /* Sentinel: alice calls bob; bob got nothing from the invalid uid. */
    const char *id2 = rt_uniq("ok");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id2));
    EXPECT_EVENT(bob, "bob", "invite", id2);
    EXPECT_NOTHING_ELSE(bob, NULL);
    /* Nor is it ever shown in presence (sentinel: erin connects). */
    struct client *erin = client_open(b, "erin", NULL);
    CHECK(client_wait_json(obs, "rtm/presence/erin", WAIT_MS, "online", "true", (char *)NULL));
    CHECK_EQ_INT(client_count(obs, NULL, "uid", "bad uid!", (char *)NULL), 0);
    CHECK_EQ_INT(client_count(obs, "rtm/presence/bad uid!", (char *)NULL), 0);
    client_free(w);
    client_free(erin);
    client_free(obs);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

/* Issue 13: the bare prefix `rtm` is not under the prefix: it is decided by
 * other_topics like any topic outside, while `rtm/` (an empty level under
 * it) stays the plugin's. */
static void test_bare_prefix_is_other_topics(void)
{
    struct broker *b = start(); /* other_topics allow */
    struct client_opts o5 = {.client_id = "bob-5", .username = "bob", .protocol = 5};
    struct client *bob = client_open_v(b, &o5);
    CHECK_EQ_INT(client_subscribe(bob, "rtm", 1), 1);
    CHECK_EQ_INT(client_publish_str(bob, "rtm", "bare", 1), 0);
    struct msg *m = client_wait_msg(bob, "rtm", WAIT_MS);
    CHECKF(m && strcmp(m->payload, "bare") == 0, "no message on the bare topic rtm");
    CHECK_EQ_INT(client_subscribe(bob, "rtm/", 1), RC_NOT_AUTHORIZED);
    CHECK_EQ_INT(client_publish_str(bob, "rtm/", "x", 1), RC_NOT_AUTHORIZED);
    client_free(bob);
    broker_free(b);

    /* other_topics defer with no other ACL source: Mosquitto denies it, as it
     * denies other/topic. */
    struct broker_opts d = {.other_topics_default = true};
    b = broker_start(&d);
    bob = client_open_v(b, &o5);
    CHECK_EQ_INT(client_subscribe(bob, "other/topic", 1), RC_NOT_AUTHORIZED);
    CHECK_EQ_INT(client_subscribe(bob, "rtm", 1), RC_NOT_AUTHORIZED);
    CHECK_EQ_INT(client_publish_str(bob, "rtm", "x", 1), RC_NOT_AUTHORIZED);
    CHECK_EQ_INT(client_subscribe(bob, "rtm/presence/+", 1), 1);
    client_free(bob);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"subscribe_rules", test_subscribe_rules},
        {"presence_is_read_only", test_presence_is_read_only},
        {"wildcard_subscriber_sees_no_inbox", test_wildcard_subscriber_sees_no_inbox},
        {"invalid_uid", test_invalid_uid},
        {"bare_prefix_is_other_topics", test_bare_prefix_is_other_topics},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
